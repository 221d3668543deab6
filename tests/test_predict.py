"""Implicit-bias predictions (hambias.predict): certificates, two solvers, limits of §7, §8, §11.

Every prediction is checked against something independent of the code that made it:
the other solver, a KKT check written here with the JAX geometry and numpy lstsq,
the discrete iterates (GD + HYP*, GD on (m, w)) run in this file with O(η) halving,
closed forms (min-L2 interpolant, ridge) and the reference LPs.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import linprog

from hambias import Euclidean, HAMGeometry, LinearRegression, PointwiseProduct, sparse_regression
from hambias.status import Status
from hambias.geometry import AbstractGeometry
from hambias.methods import gd_hyp_step
from hambias.predict import (
    CvxpyPredictor,
    Prediction,
    PredictionError,
    kkt_residuals,
    lasso_gap,
    penalised_roundoff,
    lasso,
    min_l1_interpolant,
    predict_limit,
    ridge,
)

# -- tolerances (one table) -------------------------------------------------------
# Newton certificate demanded by the issue (it reaches ~1e-15).
NEWTON_KKT = 1e-10
# cvxpy (Clarabel at tolerance 1e-10) against Newton, relative in x (issue acceptance).
CVXPY_AGREE = 1e-6
# Discrete GD+HYP* at η₀/8 against the prediction, relative (issue acceptance; measured
# 2e-5 … 7e-4 on 20×100: docs/theory/implicit-bias.md#implicit-bias-measured).
ITER_AGREE = 2e-3
# Halving η must halve the O(η) error: the ratio err(η)/err(η/2) of a first-order method.
HALVING_RATIO = (1.6, 2.4)
# α → 0: ‖x_α − x_mn‖ ≤ 0.05 α ‖x_mn‖ (issue; docs/theory/l2-l1.md#small-alpha measured ≈ 0.014 α).
L2_SLOPE = 0.05
# Agreement of two exact solvers of one problem (Newton vs Newton, HiGHS vs Clarabel LP).
SAME_POINT = 1e-9
LP_AGREE = 1e-6  # two LP solvers at default-to-1e-10 tolerances on a unique vertex


def _problem(d, n, seed=0):
    p, _ = sparse_regression(jax.random.key(seed), d, n, 5)
    return p


@functools.lru_cache(maxsize=None)
def _cached(d, n):
    return _problem(d, n)


def _x0(kind, n):
    if kind == "zero":
        return None
    # the scale of docs/theory/regression-experiment.md#regression-experiment
    return np.random.default_rng(7).normal(size=n) / np.sqrt(n)


def _independent_kkt(geometry, p, x, x0):
    """(‖Ax − y‖/‖y‖, dist(∇R(x) − ∇R(x₀), range Aᵀ)/‖∇R(x)‖) with JAX maps and lstsq."""
    A, y = np.asarray(p.A), np.asarray(p.y)
    x0 = np.zeros_like(x) if x0 is None else x0
    v = np.asarray(geometry.mirror_map(jnp.asarray(x))) - np.asarray(geometry.mirror_map(x0))
    lam = np.linalg.lstsq(A.T, v, rcond=None)[0]
    gx = np.linalg.norm(np.asarray(geometry.mirror_map(jnp.asarray(x))))
    return (
        np.linalg.norm(A @ x - y) / np.linalg.norm(y),
        np.linalg.norm(v - A.T @ lam) / max(gx, 1e-300),
    )


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


# -- Newton certificate and cvxpy agreement (§7) ------------------------------------
@pytest.mark.parametrize("size", [(20, 100), (60, 500)])
@pytest.mark.parametrize("alpha", [0.05, 1.0, 30.0, -0.5])
@pytest.mark.parametrize("x0kind", ["zero", "random"])
def test_newton_certificate_and_cvxpy_agree(size, alpha, x0kind):
    p = _cached(*size)
    x0 = _x0(x0kind, p.n)
    g = HAMGeometry(alpha)
    pn = predict_limit(g, p, x0)
    assert pn.status == Status.SUCCESS and pn.solver == "newton"
    assert pn.kkt_residual <= NEWTON_KKT
    primal, dual = _independent_kkt(g, p, pn.x, x0)
    assert primal <= NEWTON_KKT and dual <= NEWTON_KKT
    # the returned duals certify the point: ∇R(x) − ∇R(x₀) = Aᵀλ
    base = np.zeros(p.n) if x0 is None else x0
    v = np.asarray(g.mirror_map(pn.x)) - np.asarray(g.mirror_map(base))
    assert np.linalg.norm(v - np.asarray(p.A).T @ pn.dual) <= NEWTON_KKT * np.linalg.norm(v)
    pc = predict_limit(g, p, x0, solver="cvxpy")
    if abs(alpha) * np.max(np.abs(pn.x)) < 5e-2:
        # the primal exp-cone form cancels here: the fallback is taken and announced
        assert pc.solver == "newton" and "cancels" in pc.message
    else:
        assert pc.solver == "cvxpy:CLARABEL" and pc.status == Status.SUCCESS
        assert _rel(pc.x, pn.x) <= CVXPY_AGREE
        assert _rel(pc.dual, pn.dual) <= 10 * CVXPY_AGREE  # duals are one order less accurate


def test_euclidean_is_min_norm_and_pointwise_cvxpy_agrees():
    p = _cached(20, 100)
    x0 = _x0("random", p.n)
    pe = predict_limit(Euclidean(), p, x0)
    assert pe.solver == "closed_form"
    np.testing.assert_allclose(pe.x, np.asarray(p.min_norm_interpolant(x0)), rtol=0, atol=1e-12)
    # HAMGeometry(0) is the Euclidean geometry through the dual-Newton route
    assert _rel(predict_limit(HAMGeometry(0.0), p, x0).x, pe.x) <= SAME_POINT
    for gamma in (1e-3, 0.1):
        g = PointwiseProduct(gamma)
        pn = predict_limit(g, p, x0)
        assert pn.kkt_residual <= NEWTON_KKT
        assert max(_independent_kkt(g, p, pn.x, x0)) <= NEWTON_KKT
        # the cosh exp-cone dual is accurate to ~1e-8 from x₀ = 0 only (3e-6 from a
        # random x₀: the certificate then flags it), so cross-check from x₀ = 0
        pc = predict_limit(g, p, solver="cvxpy")
        assert _rel(pc.x, predict_limit(g, p).x) <= CVXPY_AGREE


class _UserHAM(AbstractGeometry):
    """A user geometry: HAM written out again, unknown to predict's fast paths."""

    alpha: float

    def inverse_metric(self, x):
        return 1.0 + self.alpha * jnp.abs(x)

    def mirror_map(self, x):
        return jnp.sign(x) * jnp.log1p(self.alpha * jnp.abs(x)) / self.alpha

    def inverse_mirror_map(self, phi):
        return jnp.sign(phi) * jnp.expm1(self.alpha * jnp.abs(phi)) / self.alpha

    def coordinate_potential(self, x):
        u = self.alpha * jnp.abs(x)
        return ((1 + u) * jnp.log1p(u) - u) / self.alpha**2

    def coordinate_conjugate(self, phi):
        v = self.alpha * jnp.abs(phi)
        return (jnp.expm1(v) - v) / self.alpha**2


def test_user_geometry_through_its_conjugate():
    p = _cached(20, 100)
    x0 = _x0("random", p.n)
    pu = predict_limit(_UserHAM(2.0), p, x0)
    assert pu.kkt_residual <= NEWTON_KKT
    assert _rel(pu.x, predict_limit(HAMGeometry(2.0), p, x0).x) <= SAME_POINT
    with pytest.raises(ValueError, match="no DCP form"):
        predict_limit(_UserHAM(2.0), p, x0, solver="cvxpy")
    # β > 0 for a user geometry: its regulariser by quadrature of θ/g⁻¹(θ)
    pb = predict_limit(_UserHAM(2.0), p, beta=0.05)
    assert _rel(pb.x, predict_limit(HAMGeometry(2.0), p, beta=0.05).x) <= SAME_POINT


def test_overflow_guard_large_alpha_random_init():
    # α = 1e8 with x₀ of scale 1: the first Newton steps overflow exp(α|φ|) (> 709)
    p = _cached(20, 100)
    x0 = np.random.default_rng(1).normal(size=p.n)
    pr = predict_limit(HAMGeometry(1e8), p, x0)
    assert pr.status == Status.SUCCESS and pr.kkt_residual <= NEWTON_KKT


# -- discrete iterates land on the prediction (§7, §3) --------------------------------
@functools.partial(jax.jit, static_argnames=("steps", "star"))
def _run_gd_hyp(A, y, x0, eta, alpha, beta, steps, star=True):
    d = A.shape[0]

    def body(_, x):
        g = A.T @ (A @ x - y) / d
        return gd_hyp_step(x, g, eta, alpha, beta, star)

    return jax.lax.fori_loop(0, steps, body, x0)


def _iterate_errors(p, x0, alpha, beta, x_pred, *, star=True):
    """Relative errors of GD+HYP* at η₀/8 and η₀/16, run to time T = 40/rate.

    rate = λ_PL for β = 0 (f − f* ≤ e^{−λt}(f₀ − f*), docs/theory/pl-rate.md#pl-rate); for β > 0 the
    null-space directions of A contract only at β H_α''·(1 + α|x|) ≥ β/(1 + α max|x|).
    e^{−20} puts the optimisation error far below the O(η) discretisation error.
    """
    L = float(p.lipschitz())
    scale = 1 + abs(alpha) * np.max(np.abs(x_pred))
    eta0 = 0.5 / (L * scale)
    rate = float(p.pl_constant()) if beta == 0 else min(float(p.pl_constant()), beta / scale)
    T = 40.0 / rate
    x0 = np.zeros(p.n) if x0 is None else x0
    errs = []
    for eta in (eta0 / 8, eta0 / 16):
        x = _run_gd_hyp(p.A, p.y, jnp.asarray(x0), eta, alpha, beta, int(np.ceil(T / eta)), star)
        assert np.all(np.isfinite(np.asarray(x)))
        errs.append(_rel(x, x_pred))
    return errs


@pytest.mark.parametrize("size", [(20, 100), pytest.param((60, 500), marks=pytest.mark.slow)])
@pytest.mark.parametrize("alpha", [0.05, 1.0, 30.0])
@pytest.mark.parametrize("x0kind", ["zero", "random"])
def test_gd_hyp_star_lands_on_prediction(size, alpha, x0kind):
    p = _cached(*size)
    x0 = _x0(x0kind, p.n)
    pr = predict_limit(HAMGeometry(alpha), p, x0)
    e8, e16 = _iterate_errors(p, x0, alpha, 0.0, pr.x)
    assert e8 <= ITER_AGREE
    assert HALVING_RATIO[0] <= e8 / e16 <= HALVING_RATIO[1]


# -- the α → 0 and α → ∞ limits (§8) ---------------------------------------------------
@pytest.mark.parametrize("x0kind", ["zero", "random"])
def test_small_alpha_is_min_l2(x0kind):
    p = _cached(20, 100)
    x0 = _x0(x0kind, p.n)
    x_mn = np.asarray(p.min_norm_interpolant(x0))
    for alpha in (1e-2, 1e-3, 1e-4):
        x = predict_limit(HAMGeometry(alpha), p, x0).x
        assert _rel(x, x_mn) <= L2_SLOPE * alpha


def test_large_alpha_approaches_min_l1_from_zero():
    p = _cached(20, 100)
    l1 = min_l1_interpolant(p)
    dist = [_rel(predict_limit(HAMGeometry(a), p).x, l1.x) for a in (1e2, 1e4, 1e6, 1e8)]
    assert all(b < a for a, b in zip(dist, dist[1:])), dist


def test_large_alpha_with_init_is_sign_anchored_not_l1():
    # (α/log α) D_{R_α}(x, x₀) → J(x) = Σ(|x_i| − sign(x₀_i) x_i)
    # (docs/theory/l2-l1.md#sign-anchoring).
    p = _cached(20, 100)
    x0 = np.random.default_rng(1).normal(size=p.n)
    l1 = min_l1_interpolant(p)

    def J(x):
        return float(np.sum(np.abs(x) - np.sign(x0) * x))

    js = [J(predict_limit(HAMGeometry(a), p, x0).x) for a in (1.0, 1e2, 1e4)]
    assert js[0] > js[1] >= js[2]
    # min J over {Ax = y}, an LP in x = u − v (u, v ≥ 0): J = Σ(1 − s)u + (1 + s)v (HiGHS)
    A, y, s = np.asarray(p.A), np.asarray(p.y), np.sign(x0)
    lp = linprog(np.r_[1 - s, 1 + s], A_eq=np.c_[A, -A], b_eq=y, bounds=(0, None), method="highs")
    assert lp.status == 0 and lp.fun <= 1e-9  # a sign-consistent interpolant exists
    assert js[2] <= lp.fun + 1e-6 * J(l1.x)  # the large-α prediction attains it
    # … and the large-α limit is far from the min-L1 interpolant, which J penalises
    assert J(l1.x) > 1.0
    assert _rel(predict_limit(HAMGeometry(1e4), p, x0).x, l1.x) > 1.0


# -- β > 0 (§11) ----------------------------------------------------------------------
@pytest.mark.parametrize("beta", [1e-3, 1e-1])
def test_beta_newton_certificate_and_cvxpy(beta):
    p = _cached(20, 100)
    for alpha in (0.05, 1.0, 30.0):
        pn = predict_limit(HAMGeometry(alpha), p, beta=beta)
        assert pn.kkt_residual <= NEWTON_KKT
        # stationarity checked here with the JAX geometry's H_α' = θ/(1 + α|θ|)
        A, y = np.asarray(p.A), np.asarray(p.y)
        grad = A.T @ (A @ pn.x - y) / p.d + beta * pn.x / (1 + alpha * np.abs(pn.x))
        assert np.linalg.norm(grad) <= NEWTON_KKT * np.linalg.norm(A.T @ (A @ pn.x - y) / p.d)
        # x₀ plays no role
        other = predict_limit(HAMGeometry(alpha), p, _x0("random", p.n), beta=beta)
        assert _rel(other.x, pn.x) == 0
    pc = predict_limit(HAMGeometry(1.0), p, beta=beta, solver="cvxpy")
    assert _rel(pc.x, predict_limit(HAMGeometry(1.0), p, beta=beta).x) <= CVXPY_AGREE


def test_beta_small_alpha_is_ridge():
    # H_α(θ) = θ²/2 − α|θ|³/3 + O(α²); the minimiser moves by δ with (AᵀA/d + β)δ ≈ αβ r|r|,
    # so ‖δ‖ ≤ α‖r∘|r|‖ (Hessian ≥ βI); factor 2 covers the O(α²) remainder.
    p = _cached(20, 100)
    beta = 1e-2
    r = ridge(p, beta).x
    for alpha in (1e-3, 1e-4):
        x = predict_limit(HAMGeometry(alpha), p, beta=beta).x
        assert np.linalg.norm(x - r) <= 2 * alpha * np.linalg.norm(r * np.abs(r))


def test_beta_large_alpha_is_lasso():
    # βH_α = λ(|θ| − log(1 + α|θ|)/α), λ = β/α: the perturbation of LASSO has gradient
    # λ/(1 + α|θ_i|) = O(1/α) on the support and a smoothed kink of width 1/α off it, so
    # the distance falls like 1/α (up to logs): log-log slope ≤ −0.8 over α ∈ {1e2 … 1e4}.
    p = _cached(20, 100)
    lam = 1e-2
    alphas = np.array([1e2, 1e3, 1e4])
    errs = []
    for a in alphas:
        ref = lasso(p, lam)
        assert ref.dual_residual <= CVXPY_AGREE
        errs.append(_rel(predict_limit(HAMGeometry(a), p, beta=lam * a).x, ref.x))
    slope = np.polyfit(np.log(alphas), np.log(errs), 1)[0]
    assert slope <= -0.8, (errs, slope)


@pytest.mark.parametrize("alpha", [0.05, 1.0])
def test_beta_iterates_converge_with_order_one(alpha):
    p = _cached(20, 100)
    beta = 0.1
    pr = predict_limit(HAMGeometry(alpha), p, beta=beta)
    for x0kind in ("zero", "random"):
        e8, e16 = _iterate_errors(p, _x0(x0kind, p.n), alpha, beta, pr.x)
        assert e8 <= ITER_AGREE
        assert HALVING_RATIO[0] <= e8 / e16 <= HALVING_RATIO[1]


# -- m⊙w: GD on (m, w) lands on PointwiseProduct(γ = |m₀² − w₀²|/2) (§5) ------------------
@functools.partial(jax.jit, static_argnames=("steps",))
def _run_mw(A, y, m, w, eta, steps):
    d = A.shape[0]

    def body(_, mw):
        m, w = mw
        g = A.T @ (A @ (m * w) - y) / d
        return m - eta * w * g, w - eta * m * g

    m, w = jax.lax.fori_loop(0, steps, body, (m, w))
    return m * w


def test_mw_gradient_descent_lands_on_pointwise_prediction():
    p = _cached(20, 100)
    rng = np.random.default_rng(3)
    m0 = rng.uniform(0.5, 1.0, p.n)
    w0 = rng.uniform(-0.4, 0.4, p.n)
    gamma = 0.5 * np.abs(m0**2 - w0**2)
    x0 = m0 * w0
    pr = predict_limit(PointwiseProduct(gamma), p, x0)
    assert pr.kkt_residual <= NEWTON_KKT
    L = float(p.lipschitz())
    eta0 = 0.5 / (2 * L * np.max(np.hypot(pr.x, gamma)))
    T = 40.0 / (float(p.pl_constant()) * 2 * np.min(gamma))  # inverse metric ≥ 2γ
    errs = []
    for eta in (eta0 / 8, eta0 / 16):
        x = _run_mw(p.A, p.y, jnp.asarray(m0), jnp.asarray(w0), eta, int(np.ceil(T / eta)))
        errs.append(_rel(x, pr.x))
    assert errs[0] <= ITER_AGREE
    assert HALVING_RATIO[0] <= errs[0] / errs[1] <= HALVING_RATIO[1]
    # negative control: PILoT's constant γ = |m₀² − w₀²| misses by far more than O(η)
    wrong = predict_limit(PointwiseProduct(2 * gamma), p, x0)
    assert _rel(wrong.x, pr.x) > 10 * errs[0]


# -- references ----------------------------------------------------------------------
def test_references_against_second_solvers():
    p = _cached(20, 100)
    A, y = np.asarray(p.A), np.asarray(p.y)
    l1 = min_l1_interpolant(p)
    n = p.n
    # HiGHS LP: min 1ᵀ(u + v), A(u − v) = y, u, v ≥ 0
    res = linprog(np.ones(2 * n), A_eq=np.c_[A, -A], b_eq=y, bounds=(0, None), method="highs")
    assert res.status == 0
    assert _rel(l1.x, res.x[:n] - res.x[n:]) <= LP_AGREE
    assert l1.kkt_residual <= CVXPY_AGREE
    # the interior-point solver (Clarabel) on the same LP is the second solver
    l1c = min_l1_interpolant(p, solver="CLARABEL")
    assert l1c.solver == "cvxpy:CLARABEL" and _rel(l1c.x, l1.x) <= LP_AGREE
    r = ridge(p, 0.1)
    assert r.dual_residual <= NEWTON_KKT
    assert _rel(r.x, predict_limit(Euclidean(), p, beta=0.1).x) <= SAME_POINT
    lz = lasso(p, 0.05)
    assert lz.dual_residual <= CVXPY_AGREE  # relative duality gap, checked from x alone


def test_lasso_certificate_is_the_duality_gap_and_gates_the_solver():
    # 1-D: min (x − 2)²/2 + |x|/2 is soft thresholding, x* = 1.5.  At x = 1.6 the scaled
    # residual θ = 0.4 is dual feasible, D = 2θ − θ²/2 = 0.72, P = 0.88: gap 0.16/0.88.
    one, two = np.array([[1.0]]), np.array([2.0])
    assert lasso_gap(one, two, np.array([1.5]), 0.5) == 0.0
    assert lasso_gap(one, two, np.array([1.6]), 0.5) == pytest.approx(0.16 / 0.88, rel=1e-12)
    p = _cached(20, 100)
    A, y = np.asarray(p.A), np.asarray(p.y)
    lam_max = np.max(np.abs(A.T @ y)) / p.d
    for lam in (1e-3, 0.5 * lam_max, 1.5 * lam_max):  # the last has the solution x = 0
        res = lasso(p, lam)
        assert res.dual_residual <= CVXPY_AGREE, (lam, res.message)
        if lam > lam_max:
            assert np.max(np.abs(res.x)) <= CVXPY_AGREE
    # A point 1e-4 away (relative) is not certified: off the support the gap grows to
    # first order in the error, so it is ~1e-4 (7e-4 measured), a hundred times the
    # certificate's 1e-6.  Neither is a loosely solved problem.
    x = np.asarray(lasso(p, 0.05).x)
    off = x + 1e-4 * np.linalg.norm(x) * np.random.default_rng(0).standard_normal(p.n) / 10
    assert lasso_gap(A, y, off, 0.05) > 100 * CVXPY_AGREE
    with pytest.raises(PredictionError, match="relative duality gap"):
        lasso(p, 0.05, tol=1e-3)
    with pytest.raises(ValueError, match="cvxpy_solver must be"):
        lasso(p, 0.05, solver="NO_SUCH_SOLVER")


def test_cvxpy_predictor_is_built_once_and_reused():
    p = _cached(20, 100)
    pr = CvxpyPredictor(HAMGeometry(1.0), p.A)
    assert pr._problem.is_dpp()
    rng = np.random.default_rng(5)
    for _ in range(2):
        y = np.asarray(p.A) @ rng.normal(size=p.n)
        x0 = rng.normal(size=p.n) / 10
        q = LinearRegression(p.A, y)
        assert _rel(pr.solve(y, x0).x, predict_limit(HAMGeometry(1.0), q, x0).x) <= CVXPY_AGREE


def test_prediction_is_immutable():
    pr = predict_limit(HAMGeometry(1.0), _cached(20, 100))
    assert isinstance(pr, Prediction)
    with pytest.raises(dataclasses.FrozenInstanceError):
        pr.status = "x"
    with pytest.raises(ValueError):
        pr.x[0] = 1.0


# -- every failure mode says so --------------------------------------------------------
def test_failure_modes_have_messages():
    p = _cached(20, 100)
    A, y = np.asarray(p.A), np.asarray(p.y)
    g = HAMGeometry(1.0)
    with pytest.raises(ValueError, match="underdetermined.*d < n"):
        predict_limit(g, LinearRegression(A[:, :20], y))
    A_dup = np.vstack([A, A[:1]])
    with pytest.raises(ValueError, match="inconsistent system"):
        predict_limit(g, LinearRegression(A_dup, np.r_[y, y[0] + 1.0]))
    ok = predict_limit(g, LinearRegression(A_dup, np.r_[y, y[0]]))  # consistent, rank d
    assert "redundant" in ok.message and _rel(ok.x, predict_limit(g, p).x) <= SAME_POINT
    with pytest.raises(ValueError, match="no interpolant inside its box"):
        predict_limit(HAMGeometry(-10.0), p)
    with pytest.raises(PredictionError, match="not optimal"):
        CvxpyPredictor(HAMGeometry(-10.0), A).solve(y)
    with pytest.raises(PredictionError, match="above tolerance"):
        predict_limit(g, p, solver="cvxpy", kkt_tol=1e-14)
    bad = predict_limit(g, p, solver="cvxpy", kkt_tol=1e-14, throw=False)
    assert bad.status == Status.CERTIFICATE and not bad.converged
    with pytest.raises(PredictionError, match="no convergence in 1 Newton"):
        predict_limit(HAMGeometry(30.0), p, max_iter=1)
    small = predict_limit(HAMGeometry(1e-4), p, solver="cvxpy")
    assert small.solver == "newton" and "solved by dual Newton instead" in small.message
    with pytest.raises(ValueError, match="x0 must have shape"):
        predict_limit(g, p, np.zeros(3))
    with pytest.raises(ValueError, match="inside the domain"):
        predict_limit(HAMGeometry(-0.5), p, np.full(p.n, 3.0))
    with pytest.raises(ValueError, match="beta must be"):
        predict_limit(g, p, beta=-1.0)
    with pytest.raises(ValueError, match="AbstractGeometry"):
        predict_limit("ham", p)
    with pytest.raises(ValueError, match="least-squares problem"):
        predict_limit(g, object())
    with pytest.raises(ValueError, match="solver must be"):
        predict_limit(g, p, solver="magic")
    with pytest.raises(ValueError, match="Euclidean only"):
        predict_limit(g, p, solver="closed_form")


# -- β > 0 in every geometry: H with g⁻¹H' = θ -------------------------------------------
def test_pointwise_product_with_weight_decay_against_a_second_solver():
    # The m⊙w flow with decay, dθ = −√(θ²+γ²)∇f dt − βθ dt, rests at argmin f + βH_γ with
    # H_γ(θ) = Σ(√(θ²+γ²) − γ) (a smoothed L1).  Reference: scipy's trust-region Newton on
    # that objective, written out here with its exact Hessian.
    from scipy.optimize import minimize

    p = _cached(20, 100)
    A, y = np.asarray(p.A), np.asarray(p.y)
    gamma, beta = 0.3, 0.05
    obj = lambda x: 0.5 * np.sum((A @ x - y) ** 2) / p.d + beta * np.sum(
        np.sqrt(x * x + gamma**2) - gamma)
    grad = lambda x: A.T @ (A @ x - y) / p.d + beta * x / np.sqrt(x * x + gamma**2)
    hess = lambda x: A.T @ A / p.d + np.diag(beta * gamma**2 / (x * x + gamma**2) ** 1.5)
    ref = minimize(obj, np.zeros(p.n), jac=grad, hess=hess, method="trust-exact",
                   options={"gtol": 1e-14}).x
    pn = predict_limit(PointwiseProduct(gamma), p, beta=beta)
    assert pn.kkt_residual <= NEWTON_KKT and _rel(pn.x, ref) <= SAME_POINT
    # The SOC form of cvxpy is flat here (curvature βγ²/|θ|³ on the support): Clarabel's
    # point is 3e-6 away (objective gap 1e-13), and its certificate says so.
    pc = predict_limit(PointwiseProduct(gamma), p, beta=beta, solver="cvxpy",
                       throw=False)
    assert pc.status == Status.CERTIFICATE and 1e-6 < pc.kkt_residual < 1e-4


def test_preconditioned_cg_route_matches_direct():
    p = _cached(60, 500)
    x0 = _x0("random", p.n)
    for alpha in (1.0, 30.0):
        a = predict_limit(HAMGeometry(alpha), p, x0, _linear="pcg")
        b = predict_limit(HAMGeometry(alpha), p, x0, _linear="direct")
        assert a.kkt_residual <= NEWTON_KKT and _rel(a.x, b.x) <= SAME_POINT


# -- regressions: robust predictions (user reports) ------------------------------------
# Certified answers: the L1 certificate's tolerance is predict's CVXPY_KKT_TOL.
L1_KKT = 1e-6
# 5-sparse truth, d = 40 … 70 Gaussian rows of n = 100: min-L1 recovers it exactly (compressed
# sensing); HiGHS's vertex reaches it to round-off (measured 3e-14).
L1_RECOVERY = 1e-9
# β > 0 at α up to 1e6: the prediction against the minimiser refined in extended precision
# (measured 1e-16 … 2e-15 relative; a failed solve was 4e-2 away).
REFINED_AGREE = 1e-12
# The round-off floor of the β > 0 certificate (measured ≤ 1.3e-8 on these problems); a
# tolerance raised beyond this would be a loosening, not a floor.
FLOOR_MAX = 1e-7


@pytest.mark.parametrize("seed, d", [(3, 40), (0, 40), (0, 70), (3, 70)])
def test_min_l1_defaults_certified(seed, d):
    # Clarabel on the norm1 form ended "optimal_inaccurate" here (default tol 1e-10; tol 1e-8
    # at d = 70), and min_l1_interpolant raised.
    p, x_star = sparse_regression(jax.random.key(seed), d, 100, 5)
    A, y = np.asarray(p.A), np.asarray(p.y)
    l1 = min_l1_interpolant(p)
    assert l1.status == Status.SUCCESS and l1.kkt_residual <= L1_KKT
    assert _rel(l1.x, x_star) <= L1_RECOVERY
    # the certificate, recomputed here: Ax = y, ‖Aᵀλ‖∞ ≤ 1, Aᵀλ = sign x on the support
    v = A.T @ l1.dual
    assert np.linalg.norm(A @ l1.x - y) <= L1_KKT * np.linalg.norm(y)
    assert np.max(np.abs(v)) <= 1 + L1_KKT
    supp = np.abs(np.asarray(x_star)) > 0
    np.testing.assert_allclose(v[supp], np.sign(np.asarray(x_star))[supp], atol=L1_KKT)
    # forced onto the interior-point solver it is still certified (the certificate decides)
    l1c = min_l1_interpolant(p, solver="CLARABEL", tol=1e-10 if d == 40 else 1e-8)
    assert l1c.kkt_residual <= L1_KKT and _rel(l1c.x, x_star) <= LP_AGREE


def test_cvxpy_certificate_decides_over_status():
    # 10×30, key(1), α = 0.5: Clarabel ends "optimal_inaccurate" at 1e-10 with a point of KKT
    # residual 1.9e-7; re-solving at 1e-9 gave 1.04e-6 and the prediction raised.
    p = _problem(10, 30, seed=1)
    pc = CvxpyPredictor(HAMGeometry(0.5), p.A).solve(p.y)
    assert pc.status == Status.SUCCESS and pc.kkt_residual <= 1e-6
    assert _rel(pc.x, predict_limit(HAMGeometry(0.5), p).x) <= CVXPY_AGREE
    # the reported 20×100 key(7) α = 0.1 call returns a certified point that agrees with Newton
    p7 = _problem(20, 100, seed=7)
    pc7 = predict_limit(HAMGeometry(0.1), p7, solver="cvxpy")
    assert pc7.converged and _rel(pc7.x, predict_limit(HAMGeometry(0.1), p7).x) <= CVXPY_AGREE


def _refined_penalised(A, y, x, alpha, beta, steps=4):
    """Newton on f + βH_α from x with residuals in extended precision (np.longdouble)."""
    L = np.longdouble
    d, n = A.shape
    AL, yL, xL = A.astype(L), y.astype(L), x.astype(L)
    for _ in range(steps):
        g = AL.T @ (AL @ xL - yL) / d + beta * xL / (1 + alpha * np.abs(xL))
        H = A.T @ A / d + np.diag(beta / (1 + alpha * np.abs(np.asarray(xL, float))) ** 2)
        xL = xL - np.linalg.solve(H, np.asarray(g, float)).astype(L)
    return xL


@pytest.mark.parametrize(
    "d, n, alpha, beta",
    [(10, 30, 1e6, 0.05), (20, 60, 1.8e5, 0.05), (20, 100, 1.8e5, 0.05), (20, 100, 1e6, 0.1)],
)
def test_beta_large_alpha_certified(d, n, alpha, beta):
    # Reported: certificate 1e-10 … 9e-10 > 1e-10 (round-off: the correctly rounded exact
    # minimiser has the same residual), and at 20×100, α = 1.8e5 Newton stopped after 200
    # iterations 4e-2 away.  Now: continuation in α, and the tolerance is the round-off floor.
    p = _problem(d, n, seed=5)
    A, y = np.asarray(p.A), np.asarray(p.y)
    pn = predict_limit(HAMGeometry(alpha), p, beta=beta)
    assert pn.status == Status.SUCCESS and pn.iterations < 100
    exact = _refined_penalised(A, y, pn.x, alpha, beta)  # dense n×n solves, not Woodbury
    if np.finfo(np.longdouble).eps < np.finfo(float).eps:  # extended precision available
        assert float(np.linalg.norm(pn.x - exact) / np.linalg.norm(exact)) <= REFINED_AGREE
    g = HAMGeometry(alpha)
    floor = penalised_roundoff(g, p, pn.x, beta=beta)
    assert pn.dual_residual <= max(NEWTON_KKT, floor) and floor <= FLOOR_MAX
    # the rounded exact minimiser sits below the floor; a point 1e-7 off does not
    x_exact = np.asarray(exact, dtype=float)
    assert kkt_residuals(g, p, x_exact, beta=beta)[1] <= floor
    bad = x_exact * (1 + 1e-7 * np.random.default_rng(0).standard_normal(n))
    assert kkt_residuals(g, p, bad, beta=beta)[1] > penalised_roundoff(g, p, bad, beta=beta)


# -- the shared series (hambias._series) ------------------------------------------------
# Against 50-digit mpmath: just above the cutoff the closed forms lose ~eps/|u|² · |u| ≈ 4e-14.
SERIES_RTOL = 1e-13


def test_series_numpy_and_jax_agree_with_mpmath_and_stay_finite():
    import warnings

    import mpmath

    from hambias import _series

    mpmath.mp.dps = 50
    exact = {
        "ratio_log1p": lambda u: mpmath.log1p(u) / u,
        "ratio_expm1": lambda u: mpmath.expm1(u) / u,
        "potential_ratio": lambda u: ((1 + u) * mpmath.log1p(u) - u) / u**2,
        "conjugate_ratio": lambda u: (mpmath.expm1(u) - u) / u**2,
        "h_ratio": lambda u: (u - mpmath.log1p(u)) / u**2,
    }
    c = _series.SERIES_CUTOFF
    u = np.array([-0.5, -c * 1.001, -c * 0.999, -1e-9, 1e-12, c * 0.999, c * 1.001, 0.3, 7.0])
    for name, ref in exact.items():
        fn = getattr(_series, name)
        want = np.array([float(ref(mpmath.mpf(float(v)))) for v in u])
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the numpy path is warning-free
            got_np = fn(u, np)
            fn(np.array([-1.0, -2.0, 0.0, 1e300]), np)  # out of domain / overflow: silent
        np.testing.assert_allclose(got_np, want, rtol=SERIES_RTOL)
        np.testing.assert_allclose(np.asarray(fn(jnp.asarray(u), jnp)), want, rtol=SERIES_RTOL)
        # gradients under jax: finite at 0 and on both sides of the cutoff (where-trick)
        grad = jax.vmap(jax.grad(lambda v, fn=fn: fn(v, jnp)))(jnp.array([0.0, c, -c, 0.5]))
        assert np.all(np.isfinite(np.asarray(grad)))
    assert float(_series.ratio_log1p(np.array(0.0), np)) == 1.0
