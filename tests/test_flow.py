"""Tests of hambias.flow: the continuous flows.

Theory: docs/theory/ham-flow.md#ham-flow, docs/theory/mw-flow.md#mw-flow,
docs/theory/implicit-bias.md#implicit-bias, docs/theory/pl-rate.md#pl-rate and
docs/theory/explicit-bias.md#explicit-bias.

Every check compares against an independent reference: the other backend, the
exact (m, w) gradient flow integrated here with scipy, the KKT conditions of the
implicit-bias problem, a Newton/trust-region minimiser of f + βH_α, or the PL bound.
Compiles dominate the run time, so the fast tests share a few static
configurations (one geometry type × finite/infinite t1 each).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate

from hambias import (
    BetaSchedule,
    Euclidean,
    HAMGeometry,
    LinearRegression,
    LossProblem,
    PointwiseProduct,
    gamma_from_init,
    predict_limit,
    sparse_regression,
)
from hambias.flow import (
    AUTO_EXPLICIT_STEPS,
    STATUS_LEFT_DOMAIN,
    STATUS_MAX_STEPS,
    STATUS_SUCCESS,
    FlowResult,
    flow_vector_field,
    solve_flow,
    stationarity_residual,
)

# -- tolerance table -------------------------------------------------------------
# Tolerances requested from every solver in these tests.
RTOL, ATOL = 1e-10, 1e-12
# The default save grid from a traced t1 uses 10**linspace, the eager one numpy.geomspace:
# they differ in the last bits (a few ulps of float64).
GRID_RTOL = 1e-13
# Two independent adaptive solvers, each with local tolerance 1e-10, drift apart by
# the accumulated global error over a horizon of ~100 steps: allow 1000× rtol.
AGREE_TOL = 1e3 * RTOL
# diffrax crossings come from a quintic Hermite interpolant on the accepted steps (error
# O(h⁶), below the local error ~rtol), scipy's from brentq on its dense output (error
# ~rtol^(4/5) ≈ 1e-8 of a step): allow 100× the larger.
CROSSING_TOL = 1e-6
# ∇R(x_t) − ∇R(x₀) ∈ range(Aᵀ) is an invariant of the exact flow; the integrated
# one keeps it up to the accumulated integration error (~steps × rtol).
KKT_NULLSPACE_TOL = 1e-7
# steady_tol = 1e-9 on ‖∇f‖ bounds ‖Ax − y‖ by 1e-9·cond(A)·‖Ax₀ − y‖ (cond ≈ 5).
INTERP_TOL = 1e-7
# PL bound: the saved losses carry relative integration error ~rtol, and the
# integral ∫(1 + α min|θ|) is a lower Riemann sum on the save grid.
PL_SLACK = 1e-6
# f + βH_α is strongly convex with modulus ≥ β/(1 + α max|x|)²; a stationarity
# residual of 1e-9·‖∇F(x₀)‖ bounds the distance to its minimiser by ~1e-7.
BETA_TOL = 1e-6
# Newton on f + βH_α stops at a gradient norm near float64 round-off of ∇F.
NEWTON_GTOL = 1e-13
# m⊙w with γ = |c| (PILoT's constant) must miss the exact (m, w) flow by far more
# than the agreement tolerance: docs/theory/mw-flow.md#pilot-constant measured 0.12 for the limit.
WRONG_GAMMA_MIN_GAP = 1e-3
# solve_flow's default rtol; a point at a known time carries a global error of a few
# rtol (measured ≤ 0.7·rtol in 1-D, tests/test_range_flow.py): allow 100×, which is the
# 1e-6 asked of the small-γ example.
DEFAULT_RTOL = 1e-8
POINT_RTOL = 100 * DEFAULT_RTOL
# A passage time is off by the state's error over the speed at the crossing: relative
# 1e-7 (10·rtol) at the saddle jumps below (measured 1.3e-10 mirror, 1.3e-9 primal).
JUMP_RTOL = 10 * DEFAULT_RTOL
# t = ∞ stops at ‖∇f‖ ≤ 10·rtol·‖∇f(x₀)‖; the distance to the limit is that residual
# times the conditioning of A·diag(g⁻¹(x∞))·Aᵀ (measured ≤ 1.1e-6 relative): allow 10×.
LIMIT_RTOL = 1e-5


@pytest.fixture(scope="module")
def problem():
    # numpy-drawn (no eager JAX kernels to compile): 10 samples, 30 dims, 3-sparse truth
    rng = np.random.default_rng(3)
    A = rng.normal(size=(10, 30))
    x_star = np.zeros(30)
    x_star[rng.choice(30, 3, replace=False)] = rng.normal(size=3)
    return LinearRegression(A, A @ x_star, underdetermined=True, full_row_rank=True)


@pytest.fixture(scope="module")
def x0():
    return 0.3 * np.asarray(jax.random.normal(jax.random.key(4), (30,)))


def _geometries():
    return {
        "gd": Euclidean(),
        "gd_as_ham": HAMGeometry(0.0),  # α = 0 is GD exactly; shares the HAM compile
        "mw": PointwiseProduct(np.full(30, 0.2)),  # per-coordinate γ, as in the m⊙w test
        "ham": HAMGeometry(3.0),
    }


# -- input validation -------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"t1": 0.0}, "t1 must be > 0"),
        ({"t1": -1.0}, "t1 must be > 0"),
        ({"t1": float("nan")}, "t1 must be > 0"),
        ({"t1": 1.0, "beta": -0.1}, "beta must be"),
        ({"t1": 1.0, "backend": "torch"}, "backend must be"),
        ({"t1": 1.0, "method": "euler"}, "method for backend"),
        ({"t1": 1.0, "rtol": 0.0}, "rtol must be"),
        ({"t1": 1.0, "saveat": [0.0, 2.0]}, "saveat must be"),
        ({"t1": 1.0, "saveat": [0.5, 0.1]}, "saveat must be"),
        ({"t1": 1.0, "n_save": 1}, "n_save must be"),
    ],
)
def test_bad_options_raise(problem, x0, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_flow(Euclidean(), problem, x0, **kwargs)


def test_bad_x0_raises(problem, x0):
    with pytest.raises(ValueError, match=r"shape \(30,\)"):
        solve_flow(Euclidean(), problem, x0[:-1], t1=1.0)
    with pytest.raises(ValueError, match="vector"):
        solve_flow(Euclidean(), problem, x0.reshape(5, 6), t1=1.0)
    bad = x0.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN or inf"):
        solve_flow(Euclidean(), problem, bad, t1=1.0)
    with pytest.raises(ValueError, match="float64"):
        solve_flow(Euclidean(), problem, jnp.asarray(x0, dtype=jnp.float32), t1=1.0)


def test_negative_alpha_needs_x0_inside_box(problem, x0):
    # α = −2: the box is |x| < 0.5, and x0 has coordinates beyond it.
    assert np.max(np.abs(x0)) > 0.5
    with pytest.raises(ValueError, match="inside the box"):
        solve_flow(HAMGeometry(-2.0), problem, x0, t1=1.0)


def test_vector_field_and_residual_formulas():
    p = LossProblem(lambda x: 0.5 * jnp.sum((x - 1.0) ** 2))
    x = jnp.array([2.0, -0.5])
    g = HAMGeometry(4.0)
    expected = -(1 + 4 * jnp.abs(x)) * (x - 1.0) - 0.3 * x
    np.testing.assert_allclose(flow_vector_field(g, p, x, beta=0.3), expected, rtol=1e-15)
    expected_res = jnp.linalg.norm((x - 1.0) + 0.3 * x / (1 + 4 * jnp.abs(x)))
    np.testing.assert_allclose(stationarity_residual(g, p, x, beta=0.3), expected_res, rtol=1e-15)


# -- backends agree -------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", [pytest.param("gd", marks=pytest.mark.slow), "gd_as_ham", "mw", "ham"])
def test_backends_agree(problem, x0, name):
    # the reference shares nothing with the default solve: scipy, primal coordinates
    geometry = _geometries()[name]
    ref = solve_flow(geometry, problem, x0, t1=4.0, backend="scipy", method="DOP853",
                     coordinates="primal", rtol=RTOL, atol=ATOL)
    res = solve_flow(geometry, problem, x0, t1=4.0, rtol=RTOL, atol=ATOL)
    assert isinstance(res, FlowResult)
    assert res.converged and ref.converged, (res.message, ref.message)
    assert res.xs.shape == (201, 30) and float(res.ts[-1]) == 4.0
    np.testing.assert_array_equal(res.ts, ref.ts)
    np.testing.assert_allclose(res.xs, ref.xs, rtol=0, atol=AGREE_TOL * np.max(np.abs(ref.xs)))
    np.testing.assert_array_equal(res.xs[0], x0)
    # the flow moved: the agreement is not that of two copies of x0
    assert float(problem.loss(res.x)) < 1e-2 * float(problem.loss(x0))


# -- t = ∞ and the implicit bias (docs/theory/implicit-bias.md#implicit-bias) ------------
def test_ham_limit_satisfies_kkt(problem, x0):
    geometry = HAMGeometry(3.0)
    res = solve_flow(geometry, problem, 0.1 * x0, t1=np.inf, rtol=RTOL, atol=ATOL)
    assert res.converged, res.message
    assert "steady state" in res.message
    x = res.x
    A, y = np.asarray(problem.A), np.asarray(problem.y)
    assert np.linalg.norm(A @ x - y) <= INTERP_TOL * np.linalg.norm(y)
    # ∇R(x∞) − ∇R(x₀) must lie in range(Aᵀ): its null-space component vanishes.
    v = np.asarray(geometry.mirror_map(x) - geometry.mirror_map(0.1 * x0))
    q, _ = np.linalg.qr(A.T)
    null_part = v - q @ (q.T @ v)
    assert np.linalg.norm(null_part) <= KKT_NULLSPACE_TOL * np.linalg.norm(v)
    # ... and the bias is not that of GD: the limit differs from the min-L2 interpolant.
    l2 = np.asarray(problem.min_norm_interpolant(0.1 * x0))
    assert np.linalg.norm(x - l2) > 1e3 * INTERP_TOL * np.linalg.norm(l2)
    # the rows after the steady state repeat it
    assert float(res.ts[-1]) == float(res.stats["t_final"]) < 1e6
    np.testing.assert_array_equal(res.xs[-2], res.x)


def test_steady_state_not_reached_is_reported(problem, x0):
    # An unattainable stationarity tolerance: the explicit solver spends its budget.
    res = solve_flow(HAMGeometry(3.0), problem, 0.1 * x0, t1=np.inf, method="tsit5",
                     steady_tol=1e-30, max_steps=AUTO_EXPLICIT_STEPS, rtol=RTOL, atol=ATOL)
    assert int(res.status) == STATUS_MAX_STEPS and not res.converged
    assert "maximum number of steps" in res.message
    ref = solve_flow(HAMGeometry(3.0), problem, 0.1 * x0, t1=np.inf, backend="scipy",
                     method="RK45", max_steps=20)
    assert int(ref.status) == STATUS_MAX_STEPS and not ref.converged
    assert np.all(np.isnan(np.asarray(ref.xs[-2])))  # no fake steady state after a failure
    assert "blows up" not in res.message  # ‖x‖ stayed O(‖x₀‖)


@pytest.mark.slow
def test_t_inf_backends_agree(problem, x0):
    geometry = HAMGeometry(3.0)
    a = solve_flow(geometry, problem, 0.1 * x0, t1=np.inf, rtol=RTOL, atol=ATOL)
    b = solve_flow(geometry, problem, 0.1 * x0, t1=np.inf, backend="scipy", rtol=RTOL, atol=ATOL)
    assert a.converged and b.converged
    np.testing.assert_allclose(a.x, b.x, atol=AGREE_TOL * np.max(np.abs(b.x)), rtol=0)


# -- m⊙w against the exact (m, w) gradient flow (docs/theory/mw-flow.md#mw-flow) ---------
def test_pointwise_product_is_the_mw_flow_at_double_time(problem):
    rng = np.random.default_rng(5)
    m0 = rng.normal(0.0, 0.5, 30)
    w0 = rng.normal(0.0, 0.5, 30)
    A, y, d = np.asarray(problem.A), np.asarray(problem.y), problem.d

    def mw_rhs(t, z):
        m, w = z[:30], z[30:]
        g = A.T @ (A @ (m * w) - y) / d
        return np.concatenate([-w * g, -m * g])

    t_exact = np.linspace(0.0, 1.5, 200)  # 200 save times: the compile of the default grid
    exact = integrate.solve_ivp(mw_rhs, (0.0, 1.5), np.concatenate([m0, w0]), method="DOP853",
                                t_eval=t_exact, rtol=1e-12, atol=1e-14)
    x_exact = (exact.y[:30] * exact.y[30:]).T
    gamma = np.asarray(gamma_from_init(m0, w0))
    taus = 2.0 * t_exact
    flow = solve_flow(PointwiseProduct(gamma), problem, m0 * w0, t1=3.0, saveat=taus,
                      rtol=RTOL, atol=ATOL)
    assert flow.converged
    scale = np.max(np.abs(x_exact))
    np.testing.assert_allclose(flow.xs[:-1], x_exact, rtol=0, atol=AGREE_TOL * scale)
    # Negative control: PILoT's γ = |m₀² − w₀²| does not reproduce the (m, w) flow.
    wrong = solve_flow(PointwiseProduct(2.0 * gamma), problem, m0 * w0, t1=3.0, saveat=taus,
                       rtol=RTOL, atol=ATOL)
    assert np.max(np.abs(np.asarray(wrong.xs[:-1]) - x_exact)) > WRONG_GAMMA_MIN_GAP * scale


# -- PL rate (docs/theory/pl-rate.md#pl-rate) -------------------------------------------
def test_pl_bound_and_ham_never_slower_than_gd(problem, x0):
    alpha = 3.0
    lam = float(problem.pl_constant())
    # the bound is a statement about the exact flow at every t: integrate to t1 rather
    # than hold the state once it meets the steady-state criterion
    ham = solve_flow(HAMGeometry(alpha), problem, x0, t1=20.0, rtol=RTOL, atol=ATOL,
                     stop_at_steady_state=False)
    # GD as HAM with α = 0 (inverse metric exactly 1), to share one compiled solver
    gd = solve_flow(HAMGeometry(0.0), problem, x0, t1=20.0, rtol=RTOL, atol=ATOL,
                    stop_at_steady_state=False)
    ts, xs = np.asarray(ham.ts), np.asarray(ham.xs)
    loss = np.array([float(problem.loss(x)) for x in xs])
    rate = 1.0 + alpha * np.min(np.abs(xs), axis=1)
    integral = np.concatenate([[0.0], np.cumsum(np.diff(ts) * np.minimum(rate[1:], rate[:-1]))])
    bound = loss[0] * np.exp(-lam * integral)
    assert np.all(loss <= bound * (1 + PL_SLACK))
    assert np.all(bound <= loss[0] * np.exp(-lam * ts) * (1 + PL_SLACK))
    assert loss[-1] < 1e-6 * loss[0]  # the bound was tested over a real decrease
    gd_loss = np.array([float(problem.loss(x)) for x in np.asarray(gd.xs)])
    for target in (1e-2, 1e-4, 1e-6):
        t_ham = ts[np.argmax(loss <= target * loss[0])]
        t_gd = ts[np.argmax(gd_loss <= target * loss[0])]
        assert gd_loss[-1] > target * loss[0] or t_ham <= t_gd


# -- β > 0 (docs/theory/explicit-bias.md#explicit-bias) ----------------------------------
def test_beta_flow_converges_to_minimiser_of_f_plus_beta_h(problem, x0):
    alpha, beta = 3.0, 0.5
    res = solve_flow(HAMGeometry(alpha), problem, x0, t1=np.inf, beta=beta, rtol=RTOL, atol=ATOL)
    assert res.converged, res.message
    assert np.all(np.isfinite(np.asarray(res.xs)))
    A, y, d = np.asarray(problem.A), np.asarray(problem.y), problem.d

    def F(x):
        u = alpha * np.abs(x)
        return 0.5 * np.sum((A @ x - y) ** 2) / d + beta * np.sum(u - np.log1p(u)) / alpha**2

    def grad(x):
        return A.T @ (A @ x - y) / d + beta * x / (1 + alpha * np.abs(x))

    def hess(x):
        return A.T @ A / d + np.diag(beta / (1 + alpha * np.abs(x)) ** 2)

    # damped Newton from 0 (F is strictly convex and C²): an independent minimiser
    ref = np.zeros(30)
    for _ in range(100):
        step = np.linalg.solve(hess(ref), grad(ref))
        s = 1.0
        while F(ref - s * step) > F(ref) and s > 1e-8:
            s *= 0.5
        ref = ref - s * step
        if np.linalg.norm(grad(ref)) < NEWTON_GTOL:
            break
    assert np.linalg.norm(grad(ref)) < NEWTON_GTOL
    np.testing.assert_allclose(res.x, ref, rtol=0, atol=BETA_TOL * np.max(np.abs(ref)))
    # β replaces the implicit bias: a different x0 reaches the same point.
    other = solve_flow(HAMGeometry(alpha), problem, -x0, t1=np.inf, beta=beta, rtol=RTOL,
                       atol=ATOL)
    assert other.converged
    np.testing.assert_allclose(other.x, ref, rtol=0, atol=BETA_TOL * np.max(np.abs(ref)))


# -- zero crossings ------------------------------------------------------------------------
def test_zero_crossings_agree_between_backends(problem, x0):
    geometry = HAMGeometry(3.0)
    a = solve_flow(geometry, problem, x0, t1=4.0, zero_crossings=True, max_steps=4000,
                   rtol=RTOL, atol=ATOL)
    b = solve_flow(geometry, problem, x0, t1=4.0, zero_crossings=True, backend="scipy",
                   method="DOP853", rtol=RTOL, atol=ATOL)
    ca, cb = np.asarray(a.crossing_times), np.asarray(b.crossing_times)
    assert ca.shape == cb.shape == (30, 8)
    np.testing.assert_array_equal(np.isnan(ca), np.isnan(cb))
    assert np.sum(~np.isnan(ca)) >= 2  # the test sees real crossings
    np.testing.assert_allclose(ca, cb, rtol=0, atol=CROSSING_TOL)
    assert int(a.stats["crossings_dropped"]) == 0
    # every coordinate with an odd number of crossings ends with the opposite sign
    odd = np.sum(~np.isnan(ca), axis=1) % 2 == 1
    flipped = np.sign(np.asarray(a.x)) != np.sign(x0)
    np.testing.assert_array_equal(odd, flipped)


# -- batching -------------------------------------------------------------------------------
def test_vmap_over_alpha_and_t1_equals_loop(problem, x0):
    # t1 is traced too: one batch mixes finite horizons and a steady-state solve.
    alphas = jnp.array([0.5, 3.0, 20.0])
    t1s = jnp.array([2.0, 0.5, jnp.inf])

    def run(a, t1):
        return solve_flow(HAMGeometry(a), problem, x0, t1=t1, method="tsit5", rtol=RTOL,
                          atol=ATOL, max_steps=AUTO_EXPLICIT_STEPS)

    batched = jax.vmap(run)(alphas, t1s)
    assert batched.xs.shape == (3, 201, 30)
    np.testing.assert_array_equal(batched.t1, t1s)
    for i, (a, t1) in enumerate(zip(alphas, t1s, strict=True)):
        single = run(float(a), float(t1))
        # the save grid built from a traced t1 is the eager one (before the steady state,
        # after which the rows repeat the final time)
        before = np.asarray(single.ts[:-1]) < min(float(single.t_final), float(batched.ts[i, -1]))
        np.testing.assert_allclose(batched.ts[i, :-1][before], single.ts[:-1][before],
                                   rtol=GRID_RTOL)
        assert int(single.status) == int(batched.status[i]) == STATUS_SUCCESS
        np.testing.assert_allclose(batched.xs[i], single.xs, rtol=0,
                                   atol=AGREE_TOL * np.max(np.abs(single.xs)))


@pytest.mark.slow
def test_vmap_over_problems_equals_loop(x0):
    problems = [sparse_regression(jax.random.key(k), 10, 30, 3)[0] for k in range(3)]  # seeded
    stacked = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *problems)

    def run(p):
        return solve_flow(HAMGeometry(3.0), p, x0, t1=np.inf, rtol=RTOL, atol=ATOL)

    batched = jax.vmap(run)(stacked)
    for i, p in enumerate(problems):
        single = run(p)
        assert single.converged and bool(batched.converged[i])
        np.testing.assert_allclose(batched.x[i], single.x, rtol=0,
                                   atol=AGREE_TOL * np.max(np.abs(single.x)))


# -- compilation: one program per configuration ---------------------------------------------
def test_new_t1_x0_alpha_or_save_times_do_not_recompile(monkeypatch):
    # Count traces of the diffrax solve: a Python side effect runs only while tracing.
    import hambias.flow as flow_module

    traces = []
    segment = flow_module._segment

    def counting_segment(*args, **kwargs):
        traces.append(args[0])
        return segment(*args, **kwargs)

    monkeypatch.setattr(flow_module, "_segment", counting_segment)
    c = jnp.array([1.0, -2.0, 0.5])
    # a loss defined here is a new static function: its first solve must trace
    p = LossProblem(lambda x: 0.5 * jnp.sum((x - c) ** 2))

    def gd_closed_form(x_start, ts):  # α = 0 is GD: x_t = c + (x₀ − c) e^{−t}
        return np.asarray(c) + np.outer(np.exp(-np.asarray(ts)), x_start - np.asarray(c))

    a = np.array([0.3, 0.1, -0.4])
    r1 = solve_flow(HAMGeometry(0.0), p, a, t1=1.5, rtol=RTOL, atol=ATOL)
    assert len(traces) == 1  # the counter sees the first compile
    np.testing.assert_allclose(r1.xs, gd_closed_form(a, r1.ts), rtol=0, atol=AGREE_TOL)
    # new α, new x₀ and t1 = ∞ (steady state): the same compiled program
    b = np.array([-0.2, 0.4, 0.1])
    r2 = solve_flow(HAMGeometry(5.0), p, b, t1=np.inf, rtol=RTOL, atol=ATOL)
    assert r2.converged and "steady state" in r2.message
    # ‖∇f‖ = ‖x − c‖ ≤ steady_tol·‖b − c‖ at the stop
    np.testing.assert_allclose(r2.x, c, rtol=0, atol=1e-8)
    # new t1 and new save times of the default grid's length
    ts = np.sort(np.random.default_rng(0).uniform(0.0, 0.7, 200))
    r3 = solve_flow(HAMGeometry(0.0), p, b, t1=0.7, saveat=ts, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(r3.xs[:-1], gd_closed_form(b, ts), rtol=0, atol=AGREE_TOL)
    assert float(r3.t_final) == 0.7
    assert len(traces) == 1, f"recompiled: {traces}"


# -- stiffness: the automatic switch --------------------------------------------------------
@pytest.mark.slow
def test_auto_switches_to_implicit_on_a_stiff_horizon(problem):
    # α = 1e4 from 0: after convergence the explicit solver is pinned at its stability
    # limit, so reaching t1 = 50 needs far more than AUTO_EXPLICIT_STEPS steps (the
    # solve integrates all the way instead of holding the steady state).
    geometry = HAMGeometry(1e4)
    x0 = np.zeros(30)
    res = solve_flow(geometry, problem, x0, t1=50.0, rtol=RTOL, atol=ATOL,
                     stop_at_steady_state=False)
    assert res.converged, res.message
    assert bool(res.stats["switched"]) and int(res.stats["num_implicit_steps"]) > 0
    ref = solve_flow(geometry, problem, x0, t1=50.0, backend="scipy", method="LSODA",
                     rtol=RTOL, atol=ATOL, stop_at_steady_state=False)
    assert ref.converged
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=AGREE_TOL * np.max(np.abs(ref.x)))


@pytest.mark.slow
def test_divergent_flow_is_reported():
    # f(x) = −x⁴/4 is unbounded below; ẋ = x³ blows up at t = 1/(2x₀²) = 2.
    p = LossProblem(lambda x: -0.25 * jnp.sum(x**4))
    for backend in ("diffrax", "scipy"):
        res = solve_flow(Euclidean(), p, np.array([0.5]), t1=3.0, backend=backend,
                         max_steps=2000)
        assert not res.converged, backend
        assert float(res.t_final) == pytest.approx(2.0, rel=1e-2), backend
        assert "stopped at t" in res.message
        # both spend their steps as dt collapses; the message names the blow-up
        assert "blows up near that time" in res.message, res.message


# -- the failing inputs ("Right in every regime the field works in") ----------------
@pytest.mark.parametrize("coordinates", ["mirror", "primal"])
def test_small_gamma_half_way_with_default_tolerances(coordinates):
    # m⊙w, γ = 1e-12, f = (θ − 1)²/2 from 0: t1 is the half-way time log 2 + log(1/γ) + O(γ)
    # (quadrature of dt = dθ/(√(θ²+γ²)(1 − θ))).  The solve used to return 0.2334, ok.
    one = LinearRegression([[1.0]], [1.0])
    res = solve_flow(PointwiseProduct(1e-12), one, [0.0], t1=28.3241683, coordinates=coordinates)
    assert res.converged, res.message
    assert abs(float(res.x[0]) - 0.5) <= POINT_RTOL


@pytest.mark.slow
def test_saddle_to_saddle_jump_times_and_limit_at_small_gamma():
    # 20×40 regression from 0 at γ = 1e-12: coordinates escape one by one (|θ_i| = 0.1 at
    # t ≈ 35.5, 73.9, 139.7).  Reference: the mirror flow φ' = −Aᵀ(A γ sinh φ − y)/d with
    # scipy DOP853 at rtol = atol = 1e-12 and one event |φ_i| = asinh(c/γ) per coordinate.
    # The solve used to put the first jump 3.5 % late and the limit 3e-3 from predict_limit.
    problem, _ = sparse_regression(jax.random.key(1), 20, 40, 5)
    A, y = np.asarray(problem.A), np.asarray(problem.y)
    d, n = A.shape
    gamma, level, horizon = 1e-12, 0.1, 200.0

    def rhs(t, phi):
        return -A.T @ (A @ (gamma * np.sinh(phi)) - y) / d

    events = [lambda t, phi, i=i: abs(phi[i]) - np.arcsinh(level / gamma) for i in range(n)]
    ref = integrate.solve_ivp(rhs, (0.0, horizon), np.zeros(n), method="DOP853", rtol=1e-12,
                              atol=1e-12, events=events)
    ref_t = np.array([te[0] if len(te) else np.nan for te in ref.t_events])
    reached = np.isfinite(ref_t)
    assert np.sum(reached) >= 3  # the test sees several jumps

    geometry = PointwiseProduct(gamma)
    res = solve_flow(geometry, problem, np.zeros(n), t1=np.inf, levels=[level])
    assert res.converged, res.message
    times = np.asarray(res.level_times)[:, 0]
    np.testing.assert_allclose(times[reached], ref_t[reached], rtol=JUMP_RTOL)
    assert np.all(np.isnan(times[~reached]) | (times[~reached] > horizon))
    pred = np.asarray(predict_limit(geometry, problem, np.zeros(n)).x)
    assert np.linalg.norm(np.asarray(res.x) - pred) <= LIMIT_RTOL * np.linalg.norm(pred)


def test_jit_over_geometry_parameters_and_levels_equals_eager(problem, x0):
    # Validation inspects concrete values with numpy and attaches checks to traced ones:
    # jit over α (inside the trace even the closed-over x₀ is a tracer) must run and agree
    # with the eager solve.  (Explicit method: the compile of both stages is not the point.)
    def ham_x(alpha, x):
        return solve_flow(HAMGeometry(alpha), problem, x, t1=1.0, rtol=RTOL, atol=ATOL,
                          method="tsit5", max_steps=AUTO_EXPLICIT_STEPS).x

    eager = ham_x(3.0, x0)
    ham_x_jit = jax.jit(ham_x)
    np.testing.assert_allclose(ham_x_jit(3.0, x0), eager, rtol=0,
                               atol=AGREE_TOL * np.max(np.abs(eager)))
    # the same compiled solve with α = −2, whose box |x| < ½ excludes x₀: a run-time error
    with pytest.raises(Exception, match="outside the domain"):
        jax.block_until_ready(ham_x_jit(-2.0, x0))

    # traced γ, levels and loss levels
    one = LinearRegression([[1.0]], [1.0])

    def mw_passages(gamma, level, loss_level):
        r = solve_flow(PointwiseProduct(gamma), one, [0.0], t1=40.0, levels=level,
                       loss_levels=loss_level, method="tsit5", max_steps=AUTO_EXPLICIT_STEPS)
        return r.level_times, r.loss_level_times

    args = (1e-12, jnp.array([0.5]), jnp.array([0.125]))
    traced = jax.jit(mw_passages)(*args)
    for a, b in zip(traced, mw_passages(*args), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    # |θ| = ½ and f = ⅛ are the same point, reached at the half-way time
    np.testing.assert_allclose(traced[0][0, 0], 28.32416829648749, rtol=JUMP_RTOL)


@pytest.mark.slow
def test_box_without_interpolant_ends_fast_with_the_reason():
    # HAM α = −10 on the 20×100 regression: no interpolant in |x| < 0.1.  Used to run 36 s and
    # advise raising max_steps.
    problem = sparse_regression(jax.random.key(0), 20, 100, 5)[0]
    res = solve_flow(HAMGeometry(-10.0), problem, np.zeros(100), t1=np.inf)
    assert int(res.status) == STATUS_LEFT_DOMAIN
    assert "no interpolant lies inside the box" in res.message
    assert "max_steps" not in res.message
    assert int(res.stats["num_steps"]) < 1000


@pytest.mark.slow
def test_huge_alpha_reaches_its_steady_state():
    # HAM α = 1e12 on the 20×100 regression, t = ∞: used to run 120 s to status 1 (the
    # implicit stage rejected every step).  Now Tsit5 spends its budget and Kvaerno5 ends it.
    problem = sparse_regression(jax.random.key(0), 20, 100, 5)[0]
    geometry = HAMGeometry(1e12)
    res = solve_flow(geometry, problem, np.zeros(100), t1=np.inf)
    assert res.converged and "steady state" in res.message, res.message
    assert int(res.stats["num_steps"]) < AUTO_EXPLICIT_STEPS + 1000
    pred = np.asarray(predict_limit(geometry, problem, np.zeros(100)).x)
    assert np.linalg.norm(np.asarray(res.x) - pred) <= LIMIT_RTOL * np.linalg.norm(pred)


@pytest.mark.slow
def test_finite_horizon_past_the_steady_state_holds_it():
    # HAM α = 1e12 on the 5×10 regression to t1 = 1: the state is steady by t ≈ 5e-6; the
    # solve used to stop at t ≈ 5e-8 after 110k steps with status 1.
    problem = sparse_regression(jax.random.key(0), 5, 10, 2)[0]
    geometry = HAMGeometry(1e12)
    res = solve_flow(geometry, problem, np.zeros(10), t1=1.0)
    assert res.converged, res.message
    steady = float(res.stats["steady_time"])
    assert 0 < steady < 1.0 and float(res.t_final) == 1.0
    assert "held" in res.message and "steady-state criterion" in res.message
    assert int(res.stats["num_steps"]) < AUTO_EXPLICIT_STEPS + 1000
    # the rows after the steady time hold the state
    after = np.asarray(res.ts) > steady
    np.testing.assert_array_equal(np.asarray(res.xs)[after], np.broadcast_to(
        np.asarray(res.x), (int(np.sum(after)), 10)))
    # ... which is the t = ∞ limit to the steady tolerance
    pred = np.asarray(predict_limit(geometry, problem, np.zeros(10)).x)
    assert np.linalg.norm(np.asarray(res.x) - pred) <= LIMIT_RTOL * np.linalg.norm(pred)


# -- level crossings ------------------------------------------------------------------------
def test_level_passages_agree_between_backends(problem, x0):
    geometry = HAMGeometry(3.0)
    f0 = float(problem.loss(x0))
    kwargs = {"t1": 4.0, "levels": [0.05, 0.3], "loss_levels": [0.1 * f0, 1e-3 * f0, 2 * f0],
              "rtol": RTOL, "atol": ATOL}
    a = solve_flow(geometry, problem, x0, max_steps=4000, **kwargs)
    b = solve_flow(geometry, problem, x0, backend="scipy", method="DOP853",
                   coordinates="primal", **kwargs)  # shares no step with a
    la, lb = np.asarray(a.level_times), np.asarray(b.level_times)
    assert la.shape == lb.shape == (30, 2)
    np.testing.assert_array_equal(np.isnan(la), np.isnan(lb))
    assert np.sum(np.isfinite(la)) >= 5  # real passages, upward and downward
    np.testing.assert_allclose(la, lb, rtol=0, atol=CROSSING_TOL, equal_nan=True)
    fa, fb = np.asarray(a.loss_level_times), np.asarray(b.loss_level_times)
    assert fa.shape == (3,) and np.all(np.isfinite(fa[:2])) and fa[2] == 0.0  # f(x₀) ≤ 2f₀
    np.testing.assert_allclose(fa, fb, rtol=0, atol=CROSSING_TOL)
    # the passages are where the saved path crosses: |θ_i| − c changes sign between the
    # save times that bracket each passage
    ts, xs = np.asarray(a.ts[:-1]), np.asarray(a.xs[:-1])
    for i, l in zip(*np.nonzero(np.isfinite(la)), strict=True):
        c = [0.05, 0.3][l]
        k = np.searchsorted(ts, la[i, l])
        assert (abs(xs[k - 1, i]) - c) * (abs(xs[k, i]) - c) <= 0 or \
            abs(abs(xs[k - 1, i]) - c) < 1e-6


def test_per_coordinate_levels_and_first_passage_semantics():
    # GD on f = ½‖x − c‖²: x_i(t) = c_i + (x0_i − c_i)e^{−t}, so |x_i| = v at
    # t = log((x0_i − c_i)/(v·sign − c_i)) in closed form
    c = jnp.array([1.0, -2.0, 0.5])
    p = LossProblem(lambda x: 0.5 * jnp.sum((x - c) ** 2))
    x0 = np.array([0.0, 0.0, 2.0])
    levels = np.array([[0.5, 2.0], [1.0, 0.1], [1.0, 2.0]])  # per coordinate, (n, L)
    res = solve_flow(Euclidean(), p, x0, t1=10.0, levels=levels, rtol=RTOL, atol=ATOL)
    expected = np.array([
        [np.log(2.0), np.nan],  # 0 → 1: reaches 0.5, never 2
        [np.log(2.0), np.log(2.0 / 1.9)],  # 0 → −2: passes 0.1 first, then 1
        [np.log(1.5 / 0.5), 0.0],  # 2 → 0.5 (downward): 1 at log 3; starts at 2 → 0
    ])
    np.testing.assert_allclose(res.level_times, expected, rtol=1e-8, equal_nan=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"levels": [-1.0]}, "levels must be > 0"),
     ({"levels": np.ones((2, 2))}, r"levels must have shape \(L,\)"),
     ({"loss_levels": [[1.0]]}, "loss_levels must be a non-empty vector"),
     ({"loss_levels": [np.nan]}, "loss_levels must be finite"),
     ({"coordinates": "dual"}, "coordinates must be one of")])
def test_bad_level_options_raise(problem, x0, kwargs, match):
    with pytest.raises(ValueError, match=match):
        solve_flow(Euclidean(), problem, x0, t1=1.0, **kwargs)


def test_finite_t1_stops_at_the_steady_state_unless_told_not_to(problem, x0):
    p = LossProblem(lambda x: 0.5 * jnp.sum((x - 1.0) ** 2))
    held = solve_flow(HAMGeometry(0.0), p, np.zeros(3), t1=100.0, rtol=RTOL, atol=ATOL)
    assert held.converged and float(held.t_final) == 100.0
    steady = float(held.stats["steady_time"])
    # GD: ‖∇f‖ = ‖x − 1‖ = √3 e^{−t} meets 10·rtol·√3 at t = log(1/(10 rtol)) ≈ 20.7,
    # at the first step end after it
    assert np.log(0.1 / RTOL) <= steady < 40.0
    assert "held from there" in held.message
    full = solve_flow(HAMGeometry(0.0), p, np.zeros(3), t1=100.0, rtol=RTOL, atol=ATOL,
                      stop_at_steady_state=False)
    assert np.isnan(float(full.stats["steady_time"])) and "held" not in full.message
    # the held state is the flow's at the steady time, within the steady tolerance of x(t1)
    np.testing.assert_allclose(held.x, full.x, rtol=0, atol=10 * 10 * RTOL)


# -- β schedules (weight decay switched off at T) --------------------------------------
def test_schedule_with_equal_values_is_the_constant_beta_flow():
    # Two pieces with the same β are one flow restarted at T: the same states at the save
    # times, to the integration error of the two solves.
    p, _ = sparse_regression(jax.random.key(5), 4, 8, 2)
    grid = np.linspace(0.0, 3.0, 7)
    one = solve_flow(HAMGeometry(2.0), p, np.zeros(8), t1=3.0, beta=0.5, saveat=grid,
                     rtol=RTOL, atol=ATOL)
    two = solve_flow(HAMGeometry(2.0), p, np.zeros(8), t1=3.0,
                     beta=BetaSchedule((0.5, 0.5), (1.25,)), saveat=grid, rtol=RTOL, atol=ATOL)
    assert one.converged and two.converged
    np.testing.assert_allclose(np.asarray(two.ts), np.asarray(one.ts), rtol=0, atol=0)
    np.testing.assert_allclose(np.asarray(two.xs), np.asarray(one.xs), rtol=AGREE_TOL,
                               atol=AGREE_TOL)
    assert two.switch_states.shape == (1, 8)


@pytest.mark.parametrize("backend", ["diffrax", "scipy"])
def test_switched_off_decay_ends_at_the_projection_from_the_switch_state(backend):
    # After T the flow is the β = 0 mirror flow from x(T): its limit is argmin D_R(x, x(T))
    # (KKT of that problem), not the never-decayed prediction from x₀.
    p, _ = sparse_regression(jax.random.key(6), 5, 12, 2)
    g = HAMGeometry(3.0)
    res = solve_flow(g, p, np.zeros(12), t1=np.inf, beta=BetaSchedule((1.0, 0.0), (2.0,)),
                     backend=backend, rtol=RTOL, atol=ATOL)
    assert res.converged, res.message
    x_t = np.asarray(res.switch_states[0])
    # x(T) itself: the constant-β flow to T
    direct = solve_flow(g, p, np.zeros(12), t1=2.0, beta=1.0, backend=backend, rtol=RTOL,
                        atol=ATOL)
    np.testing.assert_allclose(x_t, np.asarray(direct.x), rtol=AGREE_TOL, atol=AGREE_TOL)
    pred = np.asarray(predict_limit(g, p, x0=x_t).x)
    assert np.linalg.norm(np.asarray(res.x) - pred) <= INTERP_TOL * np.linalg.norm(pred)
    never = np.asarray(predict_limit(g, p).x)
    assert np.linalg.norm(never - pred) > 100 * INTERP_TOL * np.linalg.norm(pred)
    assert float(res.ts[-1]) > 2.0 and float(res.stats["t_final"]) == float(res.ts[-1])


def test_schedule_rows_and_switches_after_t1():
    p, _ = sparse_regression(jax.random.key(5), 4, 8, 2)
    res = solve_flow(HAMGeometry(2.0), p, np.zeros(8), t1=1.0,
                     beta=BetaSchedule((0.5, 0.0, 0.2), (0.5, 4.0)), n_save=11)
    assert res.converged
    np.testing.assert_allclose(np.asarray(res.ts), np.r_[np.linspace(0, 1, 11)[:-1], 1.0],
                               rtol=1e-15, atol=1e-15)
    assert res.switch_states.shape == (1, 8)  # the switch at 4.0 lies after t1


@pytest.mark.parametrize("schedule, match", [
    (BetaSchedule((1.0,), (1.0,)), "one more value than switch times"),
    (BetaSchedule((1.0, -1.0), (1.0,)), "values must be finite and >= 0"),
    (BetaSchedule((1.0, 0.0, 0.0), (2.0, 1.0)), "times must be finite, > 0 and increasing"),
    (BetaSchedule((1.0, 0.0), (0.0,)), "times must be finite, > 0 and increasing"),
])
def test_bad_schedules_are_refused(schedule, match):
    p, _ = sparse_regression(jax.random.key(5), 4, 8, 2)
    with pytest.raises(ValueError, match=match):
        solve_flow(HAMGeometry(2.0), p, np.zeros(8), t1=1.0, beta=schedule)


def test_schedule_refuses_crossings_and_tracing():
    p, _ = sparse_regression(jax.random.key(5), 4, 8, 2)
    s = BetaSchedule((1.0, 0.0), (1.0,))
    with pytest.raises(ValueError, match="does not take zero_crossings"):
        solve_flow(HAMGeometry(2.0), p, np.zeros(8), t1=2.0, beta=s, zero_crossings=True)
    with pytest.raises(ValueError, match="runs eagerly"):
        jax.jit(lambda x: solve_flow(HAMGeometry(2.0), p, x, t1=2.0, beta=s).x)(np.zeros(8))
