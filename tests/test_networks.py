"""The field's models and conventions, each reproduced from the other code's own update rule.

Every reference below is written here from the published update (plain numpy, the
literature's variables and loss), not from hambias's formulas, and compared with the
hambias object that claims to be it: iterates to round-off where the claim is exact,
limits to the stated order where it is first order.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hambias as hb
from hambias.networks import diagonal_network

# Exact equivalences (a linear change of variables, the same floating-point operations in
# a different order): round-off over the steps run here.
EXACT_RTOL = 1e-12
# A network state rebuilt from θ: a square root, a division and a product of O(1) values.
INVARIANT_ATOL = 8 * np.finfo(float).eps
# First-order claims: GD at step η against the flow's limit is O(η); measured 0.8e-3 … 1.2e-3
# at the step sizes used.
FIRST_ORDER = 2e-3


@pytest.fixture(scope="module")
def problem():
    p, _ = hb.sparse_regression(jax.random.key(4), 10, 30, 3)
    return p, np.asarray(p.A), np.asarray(p.y)


def rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def _torch_mse_grad(A, y, x):
    """∇ of torch.nn.MSELoss()(Ax, y) = mean((Ax − y)²) with respect to x."""
    return 2.0 * A.T @ (A @ x - y) / A.shape[0]


def test_u2_minus_v2_with_torch_mse_is_mw_gd_with_four_eta(problem):
    # Woodworth et al.: x = u² − v², u₀ = v₀ = α, trained by SGD on the mean MSE; by the
    # chain rule u ← u − η·2u⊙∇L, v ← v + η·2v⊙∇L.  hambias: MWGradientDescent(4η) on its
    # loss ‖Ax − y‖²/(2d) from (m, w) = (2α, 0), and diagonal_network("u2-v2", α, "mean").
    p, A, y = problem
    alpha, eta, steps = 0.1, 0.05, 400
    u, v = np.full(30, alpha), np.full(30, alpha)
    for _ in range(steps):
        g = _torch_mse_grad(A, y, u * u - v * v)
        u, v = u - eta * 2 * u * g, v + eta * 2 * v * g
    mw = hb.run_iterates(hb.MWGradientDescent(4 * eta), p, (np.full(30, 2 * alpha),
                                                           np.zeros(30)), steps=steps)
    net = diagonal_network("u2-v2", alpha, loss="mean")
    own = hb.run_iterates(net.gd(eta), p, net.x0(30), steps=steps)
    assert rel(mw.x, u * u - v * v) <= EXACT_RTOL and rel(own.x, u * u - v * v) <= EXACT_RTOL
    assert float(net.geometry.gamma) == pytest.approx(2 * alpha**2, rel=1e-15)
    assert float(net.flow_time(steps, eta)) == pytest.approx(8 * eta * steps, rel=1e-15)


def test_u_times_v_from_root_two_alpha(problem):
    # Pesme & Flammarion, Even et al.: x = u ⊙ v, u₀ = √2α, v₀ = 0, GD on ½-mean loss.
    p, A, y = problem
    alpha, eta, steps = 0.05, 0.02, 300
    u, v = np.full(30, np.sqrt(2) * alpha), np.zeros(30)
    for _ in range(steps):
        g = A.T @ (A @ (u * v) - y) / A.shape[0]
        u, v = u - eta * v * g, v - eta * u * g
    net = diagonal_network("uv", alpha)
    own = hb.run_iterates(net.gd(eta), p, net.x0(30), steps=steps)
    mw = hb.run_iterates(hb.MWGradientDescent(eta), p, (np.full(30, np.sqrt(2) * alpha),
                                                       np.zeros(30)), steps=steps)
    assert rel(own.x, u * v) <= EXACT_RTOL and rel(mw.x, u * v) <= EXACT_RTOL
    assert float(net.geometry.gamma) == pytest.approx(alpha**2, rel=1e-15)


def test_pm_network_needs_gamma_u0_squared_plus_v0_squared(problem):
    # Azulay et al.'s ± network: w = u₊⊙v₊ − u₋⊙v₋ from the shape-s start, GD on ½-mean
    # loss (each factor's gradient by the chain rule).  Its limit is the m⊙w prediction at
    # γ = u₀² + v₀²; gamma_from_init(u₀, v₀) (one product's γ) misses it, and is 0 at s = 0.
    p, A, y = problem
    scale, eta, steps = 0.01, 0.02, 40_000
    for s in (0.5, 0.0):
        net = diagonal_network("pm_uv", scale, shape=s)
        u0, v0 = (float(a[0]) for a in net.start(1)[:2])
        up, vp, um, vm = (np.full(30, u0), np.full(30, v0), np.full(30, u0), np.full(30, v0))
        for _ in range(steps):
            g = A.T @ (A @ (up * vp - um * vm) - y) / A.shape[0]
            up, vp, um, vm = up - eta * vp * g, vp - eta * up * g, um + eta * vm * g, \
                vm + eta * um * g
        end = up * vp - um * vm
        right = hb.predict_limit(hb.PointwiseProduct(u0**2 + v0**2), p)
        assert float(net.gamma) == pytest.approx(u0**2 + v0**2, rel=1e-15)
        assert rel(end, right.x) <= FIRST_ORDER
        own = hb.run_iterates(net.gd(eta), p, net.x0(30), steps=steps, record_every=steps)
        assert rel(own.x, end) <= EXACT_RTOL
        wrong = float(hb.gamma_from_init(u0, v0))
        if s == 0:
            assert wrong == 0.0
            with pytest.raises(ValueError, match="gamma must be > 0"):
                hb.PointwiseProduct(wrong)
        else:  # measured 0.15 off at s = 0.5 (0.10 … 0.20 for s from 0.8 to 0.3)
            assert rel(end, hb.predict_limit(hb.PointwiseProduct(wrong), p).x) > 0.05


def test_exponentiated_gradient_is_exp_step(problem):
    # Cornford et al. (linclab EG optimiser, update_alg="eg", no momentum):
    # d_p = grad + wd·sign(p);  p ← p·exp(−lr·sign(p)·d_p).  On the same loss f this is
    # ExpStep(lr/2, wd/2).
    p, A, y = problem
    lr, wd, steps = 0.05, 0.01, 200
    x = np.abs(np.random.default_rng(0).standard_normal(30)) * 0.1 * np.sign(
        np.random.default_rng(1).standard_normal(30))
    ref = x.copy()
    for _ in range(steps):
        d_p = A.T @ (A @ ref - y) / A.shape[0] + wd * np.sign(ref)
        ref = ref * np.exp(np.sign(ref) * d_p * -lr)
    mine = hb.run_iterates(hb.ExpStep(lr / 2, wd / 2), p, x, steps=steps)
    assert rel(mine.x, ref) <= EXACT_RTOL


def test_torch_weight_decay_with_mean_loss_needs_half_beta(problem):
    # torch.optim.SGD(weight_decay=wd) on MSELoss: x ← x − lr(∇mean((Ax − y)²) + wd·x).
    # On hambias's f = ‖Ax − y‖²/(2d) that is GD(2·lr, wd/2): its limit is
    # predict_limit(Euclidean(), beta=wd/2), the ridge argmin f + (wd/2)‖x‖²/2.
    p, A, y = problem
    lr, wd, steps = 0.01, 0.1, 30_000
    x = np.zeros(30)
    for _ in range(steps):
        x = x - lr * (_torch_mse_grad(A, y, x) + wd * x)
    assert rel(x, hb.predict_limit(hb.Euclidean(), p, beta=wd / 2).x) <= 1e-10
    assert rel(x, hb.predict_limit(hb.Euclidean(), p, beta=wd).x) > 1e-2  # the natural guess


@pytest.mark.parametrize("kind", ["uv", "u2-v2"])
def test_large_step_gd_ends_at_its_effective_bias(problem, kind):
    # Even et al.: GD with a large step on a diagonal network ends at the m⊙w prediction of
    # a smaller γ∞ = γ₀ e^{−gain}; with the start shifted by the off-range part of its
    # increments the prediction is exact.  The flow's γ₀ misses it by O(η).
    p, A, y = problem
    net = diagonal_network(kind, 0.1)
    L = float(p.lipschitz())
    eta = (0.3 if kind == "uv" else 0.075) / L
    m = net.gd(eta)
    start = m.init(net.x0(30))
    run = hb.run_iterates(m, p, net.x0(30), steps=60_000, record_every=60_000)
    eff = m.effective_bias(start, run.state, p)
    assert np.all(eff.gain >= 0) and np.max(eff.gain) > 1e-2
    exact = hb.predict_limit(eff.geometry, p, eff.x0)
    assert rel(exact.x, run.x) <= 1e-12
    assert rel(hb.predict_limit(net.geometry, p, net.x0(30)).x, run.x) > 1e-3


def test_network_states_keep_the_invariants():
    theta = jnp.linspace(-1.0, 1.0, 7)
    for kind, shape in (("u2-v2", 0.0), ("uv", 0.0), ("pm_uv", 0.4), ("mw", 0.2)):
        net = diagonal_network(kind, 0.3, shape=shape)
        state = net.state(theta)
        np.testing.assert_allclose(net.params(state), theta, rtol=0, atol=INVARIANT_ATOL)
        start = net.start(7)
        np.testing.assert_allclose(np.concatenate(net.state(net.x0(7))), np.concatenate(start),
                                   rtol=0, atol=INVARIANT_ATOL)


def test_bad_networks_are_refused():
    with pytest.raises(ValueError, match="kind must be"):
        diagonal_network("deep", 0.1)
    with pytest.raises(ValueError, match="loss must be"):
        diagonal_network("uv", 0.1, loss="sum")
    with pytest.raises(ValueError, match="scale must be > 0"):
        diagonal_network("uv", 0.0)
    with pytest.raises(ValueError, match="shape"):
        diagonal_network("pm_uv", 0.1, shape=1.0)
    with pytest.raises(ValueError, match="shape is defined"):
        diagonal_network("uv", 0.1, shape=0.5)
