"""The converters of docs/conventions.md, checked against hambias's own flows and iterates.

Each parameterisation of the literature is simulated here in its own coordinates (u, v, …),
with its own loss scale, and compared with the hambias object the conventions page says
it maps onto: ``PointwiseProduct(γ)`` at a rescaled time, or ``MWGradientDescent`` /
``GDHyp`` at a rescaled step.  Loss scale c: the field's losses are c·f with
f = ‖Ax − y‖²/(2d) (hambias); c = 1 for the ½-mean, c = 2 for torch's mean MSE.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import hambias as hb

# Parameter-space ODEs are integrated with DOP853 at these tolerances; the hambias flows
# with rtol 1e-10.  Both errors are far below AGREE, the bar for "the same trajectory".
ODE_RTOL, ODE_ATOL = 1e-11, 1e-13
AGREE = 1e-7
# A wrong γ (the negative control) must miss by far more than AGREE.
MISS = 1e-3
# Exact reparameterisations of the iterates agree to rounding.
ITER_RTOL = 1e-12

LOSS_SCALES = {"half-mean (hambias)": 1.0, "mean MSE (torch)": 2.0}


@pytest.fixture(scope="module")
def problem():
    p, _ = hb.sparse_regression(jax.random.key(3), 6, 15, 2)
    return p


def _grad(problem, c):
    A, y = np.asarray(problem.A), np.asarray(problem.y)
    d = A.shape[0]
    return lambda x: c * A.T @ (A @ x - y) / d


def _param_flow(rhs, z0, t1):
    sol = solve_ivp(lambda t, z: rhs(z), (0.0, t1), z0, method="DOP853",
                    rtol=ODE_RTOL, atol=ODE_ATOL)
    assert sol.success
    return sol.y[:, -1]


def _hb_flow(gamma, problem, t1):
    res = hb.solve_flow(hb.PointwiseProduct(gamma), problem, np.zeros(problem.n), t1=t1,
                        rtol=1e-10, atol=1e-13)
    return np.asarray(res.x)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# -- u² − v² (Woodworth et al.; Vaškevičius et al.) ------------------------------------------
@pytest.mark.parametrize("c", LOSS_SCALES.values(), ids=LOSS_SCALES.keys())
def test_u2_minus_v2_flow_is_pointwise_product_2alpha2_at_time_4ct(problem, c):
    alpha, t = 0.3, 2.0
    g = _grad(problem, c)
    n = problem.n

    def rhs(z):
        u, v = z[:n], z[n:]
        gx = g(u * u - v * v)
        return np.concatenate([-2 * u * gx, 2 * v * gx])

    z = _param_flow(rhs, np.full(2 * n, alpha), t)
    x = z[:n] ** 2 - z[n:] ** 2
    assert _rel(_hb_flow(2 * alpha**2, problem, 4 * c * t), x) < AGREE
    # negative control: γ = α² (the u⊙v value) is a different flow
    assert _rel(_hb_flow(alpha**2, problem, 4 * c * t), x) > MISS


@pytest.mark.parametrize("c", LOSS_SCALES.values(), ids=LOSS_SCALES.keys())
def test_u2_minus_v2_gd_is_mw_gradient_descent(problem, c):
    """GD(η) on (u, v) for c·f equals MWGradientDescent(2cη) from (m, w) = (u+v, u−v)."""
    alpha, eta, steps = 0.3, 0.02, 200
    g = _grad(problem, c)
    n = problem.n
    u, v = np.full(n, alpha), np.full(n, alpha)
    for _ in range(steps):
        gx = g(u * u - v * v)
        u, v = u - eta * 2 * u * gx, v + eta * 2 * v * gx
    run = hb.run_iterates(hb.MWGradientDescent(2 * c * eta), problem,
                          (jnp.full(n, 2 * alpha), jnp.zeros(n)), steps=steps)
    np.testing.assert_allclose(np.asarray(run.x), u * u - v * v, rtol=ITER_RTOL, atol=1e-15)
    assert float(hb.gamma_from_init(2 * alpha, 0.0)) == pytest.approx(2 * alpha**2)


def test_woodworth_q_is_pointwise_product_potential():
    """α² q(x/α²), q(z) = 2 − √(4 + z²) + z arcsinh(z/2), is ψ_γ at γ = 2α²."""
    alpha = 0.4
    x = np.linspace(-3, 3, 41)
    z = x / alpha**2
    q = alpha**2 * (2 - np.sqrt(4 + z * z) + z * np.arcsinh(z / 2))
    psi = np.asarray(hb.PointwiseProduct(2 * alpha**2).coordinate_potential(x))
    np.testing.assert_allclose(q, psi, rtol=1e-12, atol=1e-14)


# -- u ⊙ v from (√2 α, 0) (Pesme et al.; Even et al.) ----------------------------------------
@pytest.mark.parametrize("c", LOSS_SCALES.values(), ids=LOSS_SCALES.keys())
def test_u_times_v_flow_is_pointwise_product_alpha2_at_time_2ct(problem, c):
    alpha, t = 0.3, 3.0
    g = _grad(problem, c)
    n = problem.n

    def rhs(z):
        u, v = z[:n], z[n:]
        gx = g(u * v)
        return np.concatenate([-v * gx, -u * gx])

    z0 = np.concatenate([np.full(n, np.sqrt(2) * alpha), np.zeros(n)])
    z = _param_flow(rhs, z0, t)
    x = z[:n] * z[n:]
    assert float(hb.gamma_from_init(np.sqrt(2) * alpha, 0.0)) == pytest.approx(alpha**2)
    assert _rel(_hb_flow(alpha**2, problem, 2 * c * t), x) < AGREE


def test_u_times_v_gd_is_mw_gradient_descent(problem):
    alpha, eta, steps = 0.3, 0.05, 200
    g = _grad(problem, 1.0)
    n = problem.n
    u, v = np.full(n, np.sqrt(2) * alpha), np.zeros(n)
    for _ in range(steps):
        gx = g(u * v)
        u, v = u - eta * v * gx, v - eta * u * gx
    run = hb.run_iterates(hb.MWGradientDescent(eta), problem,
                          (jnp.full(n, np.sqrt(2) * alpha), jnp.zeros(n)), steps=steps)
    np.testing.assert_allclose(np.asarray(run.x), u * v, rtol=ITER_RTOL, atol=1e-15)


# -- the ± network w = u₊⊙v₊ − u₋⊙v₋ (Azulay et al.) ------------------------------------------
def _shape_start(alpha, s):
    """The symmetric start of scale α and shape s ∈ [0, 1): u₀v₀ = α."""
    return np.sqrt(alpha * (1 - s) / (1 + s)), np.sqrt(alpha * (1 + s) / (1 - s))


@pytest.mark.parametrize("s", [0.0, 0.5, 0.9])
def test_pm_network_flow_is_pointwise_product_u0sq_plus_v0sq(problem, s):
    alpha, t, c = 0.05, 3.0, 1.0
    u0, v0 = _shape_start(alpha, s)
    g = _grad(problem, c)
    n = problem.n

    def rhs(z):
        up, vp, um, vm = z[:n], z[n:2 * n], z[2 * n:3 * n], z[3 * n:]
        gx = g(up * vp - um * vm)
        return np.concatenate([-vp * gx, -up * gx, vm * gx, um * gx])

    z0 = np.concatenate([np.full(n, u0), np.full(n, v0), np.full(n, u0), np.full(n, v0)])
    z = _param_flow(rhs, z0, t)
    w = z[:n] * z[n:2 * n] - z[2 * n:3 * n] * z[3 * n:]
    gamma = u0**2 + v0**2
    assert gamma == pytest.approx(2 * alpha * (1 + s * s) / (1 - s * s))
    assert _rel(_hb_flow(gamma, problem, 2 * c * t), w) < AGREE
    # negative control: the single-pair γ = |u₀² − v₀²|/2 is a different flow
    wrong = float(hb.gamma_from_init(u0, v0))
    if abs(wrong - gamma) > 1e-3 * gamma:
        assert _rel(_hb_flow(max(wrong, 1e-12), problem, 2 * c * t), w) > MISS


def test_pm_network_q_is_half_pointwise_product_potential():
    """Q(x) = (k/4)(1 − √(1 + 4x²/k²) + (2x/k) arcsinh(2x/k)), k = 2(u₀² + v₀²), is ½ψ_γ."""
    u0, v0 = _shape_start(0.1, 0.5)
    k = 2 * (u0**2 + v0**2)
    x = np.linspace(-2, 2, 41)
    q = (k / 4) * (1 - np.sqrt(1 + 4 * x * x / k**2) + (2 * x / k) * np.arcsinh(2 * x / k))
    psi = np.asarray(hb.PointwiseProduct(u0**2 + v0**2).coordinate_potential(x))
    np.testing.assert_allclose(q, psi / 2, rtol=1e-12, atol=1e-15)


# -- the m⊙w pair itself and its clock -------------------------------------------------------
def test_mw_gd_follows_pointwise_product_at_mw_flow_time(problem):
    """MWGradientDescent(η) for k steps ≈ PointwiseProduct(γ) flow at τ = 2ηk, error O(η)."""
    gamma, steps = 0.2, 400
    errs = []
    for eta in (2e-3, 1e-3):
        run = hb.run_iterates(hb.MWGradientDescent(eta, gamma=gamma), problem,
                              np.zeros(problem.n), steps=steps * round(2e-3 / eta))
        tau = float(hb.mw_flow_time(steps * round(2e-3 / eta), eta))
        errs.append(_rel(np.asarray(run.x), _hb_flow(gamma, problem, tau)))
    assert errs[0] < 1e-2
    assert errs[1] / errs[0] == pytest.approx(0.5, abs=0.1)  # first order in η


# -- HAM under another loss scale ------------------------------------------------------------
def test_ham_step_on_scaled_loss_is_rescaled_gdhyp(problem):
    """GD + HYP* with step η on c·f equals GDHyp(cη, α, β/c) on f."""
    c, eta, alpha, beta, steps = 2.0, 0.01, 3.0, 0.01, 100
    g = _grad(problem, c)
    x = np.zeros(problem.n)
    for _ in range(steps):
        gx = g(x)
        half = x - eta * gx
        x = half * np.exp(-eta * (alpha * np.sign(half) * gx + beta))
    run = hb.run_iterates(hb.GDHyp(c * eta, alpha, beta / c), problem, np.zeros(problem.n),
                          steps=steps)
    np.testing.assert_allclose(np.asarray(run.x), x, rtol=1e-10, atol=1e-14)
