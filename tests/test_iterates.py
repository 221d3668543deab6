"""Discrete methods and run_iterates against flows, closed forms and identities.

Theory: §2–§9 on docs/theory/index.md#section-map.

The exact flows are integrated here with scipy's DOP853 (rtol 1e-13), independently of
hambias.flow.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.integrate import solve_ivp

from hambias import (
    AbstractProblem,
    Euclidean,
    HAMGeometry,
    LinearRegression,
    LossProblem,
    gamma_from_init,
)
from hambias.geometry import mw_flow_time
from hambias.iterates import run_iterates
from hambias.methods import (
    GD,
    ExpStep,
    GDHyp,
    MirrorDescent,
    MWGradientDescent,
    OptaxMethod,
    exp_step,
    gd_hyp_step,
)
from hambias.status import Status

# Reference-flow tolerance: 1e-13 relative keeps the flow error ~1e3x below the smallest
# one-step error measured here (~1e-9), so it cannot bend a slope.
FLOW_RTOL, FLOW_ATOL = 1e-13, 1e-15
# One-step (local) error is O(eta^2), global error O(eta) (docs/theory/ham-flow.md#flow-order,
# docs/theory/exp-step.md#exp-step): acceptance windows.
LOCAL_SLOPE = (1.9, 2.1)
GLOBAL_SLOPE = (0.9, 1.1)
# docs/theory/ham-flow.md#flow-order: keep eta*alpha*|g| <= 0.1 so that the asymptotic regime holds.
ETA_ALPHA_G_MAX = 0.1
# Theorem 3.1: the leading term eta^2 x (sign(x) g + 2 lam)^2 has an O(eta) relative
# correction; at eta <= 1e-3 it must be within 5 % (docs/theory/exp-step.md#exp-step-consequences).
LEADING_TERM_RTOL = 0.05
# sinh identity of docs/theory/sign-choice.md#sinh-identity: both sides are computed from O(1)
# factors; 1e-12 leaves a 100x margin over the cancellation error eps/(eta*alpha*|g|) ~ 1e-14.
SINH_RTOL = 1e-12
# Balance m^2 - w^2: |m| = |w| is preserved bitwise by the symmetric update, so we demand
# agreement to the last bit of m^2 (4 eps relative covers the product's rounding).
BALANCE_RTOL = 4 * np.finfo(np.float64).eps
# vmap vs loop: the batched matmul sums in another order, so iterates agree to round-off
# accumulated over the run (observed <= 5e-16 absolute after 1000 steps).
VMAP_RTOL = 1e-12
# The same map written differently: XLA may contract a*b + c into one FMA in one program
# and not in another (1 ulp per step); on a contracting problem this stays at round-off.
SAME_MAP_RTOL = 1e-13
# O(eta) agreement windows: error ratio under eta-halving must be ~2.
HALVING_RATIO = (1.7, 2.3)
# (m, w) GD at η = 1e-3 against the γ = |c|/2 flow: first order in η with an O(1)
# constant (measured 4.3e-4); 2e-3 leaves a 4.6× margin and stays 100× below the control.
MW_FLOW_RTOL = 2e-3


def _problem(seed=0, d=3, n=6):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, n))
    y = rng.standard_normal(d)
    return LinearRegression(A, y), rng


def _np_grad(problem):
    A, y, d = np.asarray(problem.A), np.asarray(problem.y), problem.d
    return lambda x: A.T @ (A @ x - y) / d


def _ham_flow(problem, x0, t, alpha, beta, n_eval=2):
    """Exact HAM flow θ' = −(1 + α|θ|)∇f − βθ on [0, t] (scipy DOP853); states at n_eval times."""
    grad = _np_grad(problem)
    sol = solve_ivp(
        lambda _, x: -(1 + alpha * np.abs(x)) * grad(x) - beta * x,
        (0.0, t),
        np.asarray(x0),
        method="DOP853",
        t_eval=np.linspace(0.0, t, n_eval),
        rtol=FLOW_RTOL,
        atol=FLOW_ATOL,
    )
    assert sol.success, sol.message
    return sol.y.T


@eqx.filter_jit
def _iterate(method, problem, x0, n):
    """θ_n of ``method`` with a traced step count (one compilation for every n)."""
    state = jax.lax.fori_loop(0, n, lambda _, s: method.step(s, problem), method.init(x0))
    return method.params(state)


def _final(method, problem, x0, n):
    return np.asarray(_iterate(method, problem, x0, jnp.asarray(n)))


def _slope(etas, errs):
    return np.polyfit(np.log(etas), np.log(errs), 1)[0]


# --------------------------------------------------------------------------- orders
@pytest.mark.parametrize("star", [True, False])
def test_one_step_error_is_second_order(star):
    problem, rng = _problem(1)
    x0 = rng.choice([-1.0, 1.0], 6) * rng.uniform(0.5, 1.5, 6)  # away from 0: no flips
    alpha, beta = 2.0, 0.3
    g = np.asarray(problem.grad(x0))
    etas = 0.01 / 2.0 ** np.arange(5)
    assert etas[0] * alpha * np.max(np.abs(g)) <= ETA_ALPHA_G_MAX
    errs = []
    for eta in etas:
        x1 = np.asarray(gd_hyp_step(jnp.asarray(x0), jnp.asarray(g), eta, alpha, beta, star))
        errs.append(np.linalg.norm(x1 - _ham_flow(problem, x0, eta, alpha, beta)[-1]))
    s = _slope(etas, errs)
    assert LOCAL_SLOPE[0] <= s <= LOCAL_SLOPE[1], (s, errs)


@pytest.mark.parametrize("star", [True, False])
def test_global_error_is_first_order(star):
    problem, rng = _problem(2)
    x0 = rng.standard_normal(6)
    alpha, beta, T = 1.0, 0.1, 1.0
    path = _ham_flow(problem, x0, T, alpha, beta, n_eval=101)
    gmax = np.abs(np.apply_along_axis(_np_grad(problem), 1, path)).max()
    ns = 80 * 2 ** np.arange(5)
    etas = T / ns
    assert etas[0] * alpha * gmax <= ETA_ALPHA_G_MAX
    method = lambda eta: GDHyp(eta, alpha, beta, star)  # noqa: E731
    errs = [np.linalg.norm(_final(method(T / n), problem, x0, n) - path[-1]) for n in ns]
    s = _slope(etas, errs)
    assert GLOBAL_SLOPE[0] <= s <= GLOBAL_SLOPE[1], (s, errs)


# --------------------------------------------------------------------------- Theorem 3.1
def _exp_vs_mw(problem, x, eta, lam):
    g = problem.grad(x)
    method = MWGradientDescent(eta, weight_decay=lam)
    mw = method.params(method.step(method.init(x), problem))
    return np.asarray(exp_step(x, g, eta, lam) - mw), np.asarray(g)


def test_exp_step_is_first_order_mw_gd():
    problem, rng = _problem(3)
    x = jnp.asarray(rng.standard_normal(6))
    lam = 0.2
    etas = 1e-2 / 2.0 ** np.arange(5)
    errs = [np.linalg.norm(_exp_vs_mw(problem, x, eta, lam)[0]) for eta in etas]
    s = _slope(etas, errs)
    assert LOCAL_SLOPE[0] <= s <= LOCAL_SLOPE[1], (s, errs)
    # leading term η² x (sign(x) g + 2λ)² (docs/theory/exp-step.md#exp-step-leading-term)
    eta = 1e-3
    diff, g = _exp_vs_mw(problem, x, eta, lam)
    xn = np.asarray(x)
    lead = eta**2 * xn * (np.sign(xn) * g + 2 * lam) ** 2
    assert np.linalg.norm(diff - lead) <= LEADING_TERM_RTOL * np.linalg.norm(lead)


@pytest.mark.parametrize("lam", [0.0, 0.05])
def test_mw_balance_is_preserved_exactly(lam):
    problem, rng = _problem(4)
    x0 = rng.standard_normal(6)
    r = run_iterates(MWGradientDescent(0.05, weight_decay=lam), problem, x0, steps=300)
    m, w = (np.asarray(a) for a in r.state)
    assert not bool(r.diverged)
    assert np.all(np.abs(m * m - w * w) <= BALANCE_RTOL * (m * m + w * w))
    assert np.all(np.abs(m) == np.abs(w))  # |m| = |w| bitwise
    assert np.abs(np.asarray(r.x)).max() > 0  # it moved


def test_zero_stays_zero_under_exp_step_but_moves_under_hyp():
    problem, rng = _problem(5)
    x0 = rng.standard_normal(6)
    x0[2] = 0.0
    assert float(problem.grad(x0)[2]) != 0.0
    # the exp-step multiplies, so θ_{k,2} = 0 at every k iff it is 0 at the end
    assert _final(ExpStep(0.01), problem, x0, 50)[2] == 0.0
    assert _final(GDHyp(0.01, 1.0), problem, x0, 50)[2] != 0.0


# --------------------------------------------------------------------------- HYP vs HYP*
def test_hyp_vs_hyp_star_sinh_identity():
    rng = np.random.default_rng(6)
    n, eta, alpha, beta = 400, 0.05, 1.5, 0.2
    g = rng.standard_normal(n)
    x = rng.standard_normal(n)
    near = rng.random(n) < 0.5  # put half the coordinates within η|g| of 0 (same sign as g)
    x[near] = eta * g[near] * rng.uniform(0.05, 2.0, near.sum())
    phi = np.asarray(gd_hyp_step(x, g, eta, alpha, beta, star=False))
    phi_star = np.asarray(gd_hyp_step(x, g, eta, alpha, beta, star=True))
    x_half = x - eta * g
    flip = np.sign(x_half) != np.sign(x)
    assert 20 < flip.sum() < n - 20
    lhs = np.abs(phi - phi_star)[flip]
    rhs = (2 * np.abs(x_half) * np.exp(-eta * beta) * np.abs(np.sinh(eta * alpha * g)))[flip]
    np.testing.assert_allclose(lhs, rhs, rtol=SINH_RTOL)
    assert np.array_equal(phi[~flip], phi_star[~flip])


# --------------------------------------------------------------------------- m⊙w flow
def _mw_flow(problem, x0, tau, gamma):
    """Paper-normalised m⊙w flow ẋ = −√(x² + γ²)∇f at time τ (scipy DOP853)."""
    grad = _np_grad(problem)
    sol = solve_ivp(
        lambda _, x: -np.hypot(x, gamma) * grad(x),
        (0.0, tau),
        np.asarray(x0),
        method="DOP853",
        rtol=FLOW_RTOL,
        atol=FLOW_ATOL,
    )
    assert sol.success, sol.message
    return sol.y[:, -1]


def test_mw_gd_follows_pointwise_product_flow_with_half_gamma():
    problem, rng = _problem(7, d=4, n=8)
    m0 = rng.standard_normal(8)
    w0 = rng.standard_normal(8)
    gamma = np.asarray(gamma_from_init(m0, w0))  # |m0² − w0²| / 2
    x0 = m0 * w0
    errs, errs_c = [], []
    for eta in (2e-3, 1e-3):
        steps = int(round(0.5 / eta))
        tau = float(mw_flow_time(steps, eta))  # = 1.0
        x = _final(MWGradientDescent(eta), problem, (m0, w0), steps)
        ref = _mw_flow(problem, x0, tau, gamma)
        errs.append(np.linalg.norm(x - ref) / np.linalg.norm(ref))
        ref_c = _mw_flow(problem, x0, tau, 2 * gamma)  # PILoT's γ = |c| convention
        errs_c.append(np.linalg.norm(x - ref_c) / np.linalg.norm(ref_c))
    assert HALVING_RATIO[0] <= errs[0] / errs[1] <= HALVING_RATIO[1], errs  # O(η)
    # O(η) at η = 1e-3 (measured 4.3e-4); the γ = |c| control misses by ~0.2
    assert errs[1] < MW_FLOW_RTOL, errs
    assert min(errs_c) > 20 * errs[1], (errs_c, errs)  # negative control fails


def test_mw_init_from_gamma():
    x0 = jnp.array([-4.0, 0.0, 2.5, 1e-3])
    for gamma in (0.0, 0.7):
        m0, w0 = MWGradientDescent(0.1, gamma=gamma).init(x0)
        np.testing.assert_allclose(m0 * w0, x0, rtol=1e-15, atol=0)
        if gamma > 0:
            np.testing.assert_allclose(gamma_from_init(m0, w0), gamma, rtol=1e-14)
        else:
            assert np.array_equal(np.abs(m0), np.abs(w0))
            assert np.array_equal(np.asarray(w0), np.sqrt(np.abs(np.asarray(x0))))


# --------------------------------------------------------------------------- other methods
def test_gd_equals_mirror_descent_euclidean_and_optax_sgd():
    problem, rng = _problem(8)
    x0 = rng.standard_normal(6)
    a = _final(GD(0.1), problem, x0, 100)
    b = _final(MirrorDescent(Euclidean(), 0.1), problem, x0, 100)
    c = _final(OptaxMethod(optax.sgd(0.1)), problem, x0, 100)
    assert np.abs(a - _final(GD(0.1), problem, x0, 0)).max() > 0.1  # it moved
    np.testing.assert_allclose(b, a, rtol=SAME_MAP_RTOL, atol=0)
    np.testing.assert_allclose(c, a, rtol=SAME_MAP_RTOL, atol=0)


def test_mirror_descent_ham_agrees_with_hyp_star_to_first_order():
    problem, rng = _problem(9)
    x0 = rng.standard_normal(6)
    alpha, T = 2.0, 1.0
    diffs = []
    for n in (100, 200, 400):
        md = _final(MirrorDescent(HAMGeometry(alpha), T / n), problem, x0, n)
        hs = _final(GDHyp(T / n, alpha), problem, x0, n)
        diffs.append(np.linalg.norm(md - hs))
    for a, b in zip(diffs, diffs[1:]):
        assert HALVING_RATIO[0] <= a / b <= HALVING_RATIO[1], diffs


# --------------------------------------------------------------------------- run_iterates
def test_strided_records_match_every_step_run():
    problem, rng = _problem(10)
    x0 = rng.standard_normal(6) * 0.05  # small start: signs flip during the run
    method = GDHyp(0.2, 1.0)
    ref = rng.standard_normal(6)
    full = run_iterates(method, problem, x0, steps=23, reference=ref)
    part = run_iterates(method, problem, x0, steps=23, record_every=5, reference=ref)
    idx = [0, 5, 10, 15, 20, 23]
    assert part.steps.tolist() == idx
    for name in ("xs", "loss", "distance", "flips_init"):
        assert np.array_equal(np.asarray(getattr(part, name)), np.asarray(getattr(full, name))[idx])
    flips = np.asarray(full.flips_step)
    assert flips.sum() > 0
    expected = [0] + [flips[a + 1 : b + 1].sum() for a, b in zip(idx, idx[1:])]
    assert np.asarray(part.flips_step).tolist() == expected
    # per-step flips are reversals of sign between consecutive iterates
    xs = np.asarray(full.xs)
    assert flips[1:].tolist() == [int(np.sum(a * b < 0)) for a, b in zip(xs, xs[1:])]
    np.testing.assert_allclose(full.distance, np.linalg.norm(xs - ref, axis=1), rtol=1e-15)
    assert np.array_equal(np.asarray(part.x), xs[-1])


def test_divergence_is_reported_with_step_and_quantity():
    # f(θ) = (θ − 2.5)²/2, λ_max = 1: stable iff η(1 + α|θ*|) < 2
    # (docs/theory/stability.md#stability).
    problem = LinearRegression(jnp.eye(1), jnp.array([2.5]))
    alpha = 0.1
    eta_crit = 2.0 / (1.0 + alpha * 2.5)
    ok = run_iterates(GDHyp(0.9 * eta_crit, alpha), problem, jnp.zeros(1), steps=300)
    assert not bool(ok.diverged) and int(ok.divergence_step) == -1
    assert float(ok.loss[-1]) < 1e-20
    assert "without divergence" in ok.message
    bad = run_iterates(GDHyp(1.05 * eta_crit, alpha), problem, jnp.zeros(1), steps=300)
    assert bool(bad.diverged)
    k = int(bad.divergence_step)
    assert 0 < k <= 300
    assert f"step {k}" in bad.message
    assert Status(int(bad.status)).diverged and "diverged" in bad.message
    loss = np.asarray(bad.loss)
    assert np.all(np.isfinite(loss[:k])) and np.all(np.isnan(loss[k:]))
    assert np.all(np.asarray(bad.flips_step)[k:] == -1)
    assert np.all(np.isfinite(np.asarray(bad.x)))
    assert np.array_equal(np.asarray(bad.x), np.asarray(bad.xs)[k - 1])  # frozen at last accepted


class _BadGradient(AbstractProblem):
    """f = ½‖x‖² with a gradient that is ``bad`` (inf or NaN) below 0.5."""

    bad: float

    def loss(self, x):
        return 0.5 * jnp.sum(x * x)

    def grad(self, x):
        return jnp.where(x < 0.5, self.bad, x)


@pytest.mark.parametrize("bad", [np.inf, np.nan])
def test_nonfinite_iterate_is_reported(bad):
    r = run_iterates(GD(0.7), _BadGradient(jnp.asarray(bad)), jnp.array([1.0]), steps=10)
    assert bool(r.diverged) and int(r.status) == Status.NON_FINITE and int(r.divergence_step) == 2
    assert "NaN or inf" in r.message and "step 2" in r.message
    assert float(r.x[0]) == 1.0 - 0.7


def test_nonfinite_loss_is_reported():
    problem = LossProblem(lambda x: jnp.sum(jnp.sqrt(x)))  # NaN loss once x < 0
    r = run_iterates(GD(1.0), problem, jnp.array([0.3, 1.0]), steps=10)
    assert bool(r.diverged) and int(r.status) == Status.LOSS_BLOWUP and int(r.divergence_step) == 1
    assert "loss" in r.message and "step 1" in r.message


def test_vmap_over_alpha_equals_loop():
    problem, rng = _problem(11, d=5, n=12)
    x0 = rng.standard_normal(12)
    alphas = jnp.array([0.0, 0.5, 2.0, 8.0])

    def run(alpha):
        method = GDHyp(0.02, alpha, 0.01)
        return run_iterates(method, problem, x0, steps=300, record_every=30, reference=x0)

    batched = jax.vmap(run)(alphas)
    assert batched.xs.shape == (4, 11, 12)
    for i, a in enumerate(alphas):
        single = run(a)
        for name in ("xs", "loss", "distance"):
            np.testing.assert_allclose(
                getattr(batched, name)[i], getattr(single, name), rtol=VMAP_RTOL, atol=1e-300
            )
        assert np.array_equal(batched.flips_step[i], single.flips_step)
        assert bool(batched.diverged[i]) == bool(single.diverged)
    assert "all 4 runs" in batched.message


def test_bad_input_raises():
    problem, _ = _problem(12)
    x0 = np.zeros(6)
    with pytest.raises(ValueError, match="steps"):
        run_iterates(GD(0.1), problem, x0, steps=-1)
    with pytest.raises(ValueError, match="record_every"):
        run_iterates(GD(0.1), problem, x0, steps=10, record_every=0)
    with pytest.raises(ValueError, match=r"shape \(n,\) = \(6,\)"):
        run_iterates(GD(0.1), problem, np.zeros(5), steps=10)
    with pytest.raises(ValueError, match="finite"):
        run_iterates(GD(0.1), problem, np.full(6, np.nan), steps=10)
    with pytest.raises(ValueError, match="eta must be > 0"):
        GDHyp(0.0, 1.0)
    with pytest.raises(ValueError, match="reference"):
        run_iterates(GD(0.1), problem, x0, steps=10, reference=np.zeros(3))
    with pytest.raises(ValueError, match="pair"):
        MWGradientDescent(0.1).init((x0, x0, x0))


def test_signed_equals_sign_times_g():
    """The select-based sign(s)·g of the kernels equals jnp.sign(s)·g (zeros compared by value).

    The reference is XLA's sign, not numpy's: XLA on CPU treats subnormals as zero in
    both ``sign`` and comparisons, so sign(tiny/4) is 0 there (numpy says 1).
    """
    from hambias.methods import signed

    tiny = np.finfo(np.float64).tiny
    s = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, tiny / 4, -tiny / 4, 3.5, -2e300])
    s = np.concatenate([s, np.random.default_rng(0).standard_normal(50)])
    g = np.random.default_rng(1).standard_normal(s.size) * 10.0
    got = np.asarray(signed(jnp.asarray(s), jnp.asarray(g)))
    np.testing.assert_array_equal(got, np.asarray(jnp.sign(jnp.asarray(s)) * jnp.asarray(g)))
