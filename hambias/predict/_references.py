"""The limits the implicit bias interpolates between: min-L1, ridge and lasso references.

Each returns a certified :class:`Prediction`; the certificate (not the solver's status)
decides, and it needs no guess of the support:

* ``min_l1_interpolant``: the relative duality gap of the LP min ‖x‖₁ s.t. Ax = y
  (dual max λᵀy s.t. ‖Aᵀλ‖∞ ≤ 1, with λ scaled into the feasible set) and the normwise
  backward error of Ax = y;
* ``lasso``: the relative duality gap with the scaled residual as dual point;
* ``ridge``: the relative stationarity residual of its closed form.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.linalg as sla

from ..geometry import Euclidean
from ._certificate import penalised_residual
from ._cvxpy import cvxpy_module, solver_options
from ..status import Status
from ._oracle import Oracle
from ._result import CVXPY_KKT_TOL, CVXPY_SOLVER_TOL, Prediction, PredictionError, frozen
from ._validate import problem_arrays

__all__ = ["min_l1_interpolant", "ridge", "lasso", "l1_gap", "lasso_gap"]


def l1_gap(A, y, x, lam) -> float:
    """Relative duality gap of x for min ‖x‖₁ s.t. Ax = y, with dual point λ.

    Dual: max λᵀy s.t. ‖Aᵀλ‖∞ ≤ 1.  λ is scaled into the feasible set, λ̃ = λ/max(1,
    ‖Aᵀλ‖∞); the gap (‖x‖₁ − λ̃ᵀy)/‖x‖₁ bounds the suboptimality of a feasible x and
    vanishes exactly at the solution.  (For an infeasible x the primal certificate, the
    backward error of Ax = y, fails instead.)
    """
    v = np.max(np.abs(A.T @ lam)) if lam.size else 0.0
    lt = lam / max(1.0, v)
    primal = float(np.sum(np.abs(x)))
    return float(abs(primal - lt @ y) / max(primal, np.finfo(float).tiny))


def lasso_gap(A, y, x, lam) -> float:
    """Relative duality gap of x for min ‖Ax − y‖²/(2d) + λ‖x‖₁.

    Dual: max_θ yᵀθ − d‖θ‖²/2 subject to ‖Aᵀθ‖_∞ ≤ λ; θ is the residual (y − Ax)/d scaled
    into the feasible set.  The gap P(x) − D(θ) ≥ P(x) − P* bounds the suboptimality of x
    and vanishes exactly at the solution (then θ = (y − Ax)/d and Aᵀθ = λ sign x on the
    support).  Unlike the subgradient residual it needs no guess of the support, which an
    interior-point point (all |x_i| > 0) does not give.
    """
    d = A.shape[0]
    r = y - A @ x
    primal = r @ r / (2 * d) + lam * np.sum(np.abs(x))
    theta = r / (d * max(1.0, np.max(np.abs(A.T @ r)) / (d * lam)))
    dual = y @ theta - d * (theta @ theta) / 2
    return float(max(primal - dual, 0.0) / max(primal, np.finfo(float).tiny))


def min_l1_interpolant(problem, *, solver: str = "auto", tol: float = CVXPY_SOLVER_TOL,
                       kkt_tol: float = CVXPY_KKT_TOL) -> Prediction:
    """argmin_{Ax = y} ‖x‖₁, as the LP  min 1ᵀ(p + q)  s.t.  A(p − q) = y,  p, q ≥ 0.

    The α → ∞ limit of the HAM implicit bias from x₀ = 0 and the γ → 0 limit of m⊙w
    (docs/theory/l2-l1.md#l2-l1).  Certificate (it decides, not the solver's status):
    ``primal_residual`` = ‖Ax − y‖/(‖A‖₂‖x‖ + ‖y‖) (backward error) with κ(A) times it,
    the first-order bound of the forward error, ≤ ``kkt_tol``, and ``dual_residual`` =
    the relative duality gap (see :func:`l1_gap`) ≤ ``kkt_tol``.  ``"auto"`` tries scipy's
    HiGHS (dual simplex: a vertex, re-solved on its own support, certificate ~1e-15
    measured on 20×100 … 250×10000 and κ(A) ≤ 1e8), then cvxpy's Clarabel on the same LP
    at ``tol``; the first certified point is returned.

    Args:
        problem: a LinearRegression (A of shape (d, n), y).
        solver: ``"auto"``, ``"highs"`` (scipy), or a cvxpy solver name (``"CLARABEL"`` …).
        tol: the cvxpy solver's tolerances (default 1e-10).
        kkt_tol: the certificate every returned point passes (default 1e-6).

    Returns:
        A certified :class:`Prediction` (``message`` lists any solver that was passed over).

    Raises:
        ValueError: A too ill-conditioned for float64 (κ > 1e10) or y inconsistent.
        PredictionError: no solver produced a point that passes the certificate.

    >>> import numpy as np
    >>> from hambias import LinearRegression
    >>> p = min_l1_interpolant(LinearRegression(np.array([[1.0, 2.0]]), np.array([2.0])))
    >>> np.round(p.x, 6).tolist()
    [0.0, 1.0]
    """
    A, y = problem_arrays(problem)
    d, n = A.shape
    rs = problem.row_space()  # raises for κ(A) > 1e10
    rs.target(y)  # raises for an inconsistent system
    ladder = ["highs", "CLARABEL"] if solver == "auto" else [solver]
    notes = ""
    for name in ladder:
        t0 = time.perf_counter()
        x, lam, status, iters = (_l1_highs if name == "highs" else _l1_cvxpy)(A, y, name, tol)
        seconds = time.perf_counter() - t0
        label = "scipy:highs" if name == "highs" else f"cvxpy:{name}"
        if x is None:
            notes += f"{label} returned status {status!r}; "
            continue
        p = rs.backward_error(x, y)
        q = l1_gap(A, y, x, lam)
        if max(rs.cond * p, q) <= kkt_tol:
            return Prediction(
                x=frozen(x), dual=frozen(lam), solver=label, status=Status.SUCCESS,
                message=f"{notes}min_l1 by {label} (status {status}); KKT residual "
                f"{max(p, q):.2e}", primal_residual=p, dual_residual=q, iterations=iters,
                beta=0.0, geometry=None, x0=frozen(np.zeros(n)), seconds=seconds,
            )
        notes += (f"{label} (status {status}) duality gap {q:.2e}, κ(A)·backward error "
                  f"{rs.cond * p:.2e}: above {kkt_tol:g}; ")
    raise PredictionError(f"min_l1: no certified solution: {notes}")


# HiGHS's tightest feasibility tolerances (its defaults, 1e-7, let an ill-conditioned A
# with κ = 1e8 end at a wrong vertex: duality gap 4e-3, measured); the vertex is then
# re-solved on its support (_polish_vertex).
_HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}


def _l1_highs(A, y, name, tol):
    """The L1 LP by scipy's HiGHS; returns (x, λ, status, iterations), x None on failure."""
    from scipy.optimize import linprog

    d, n = A.shape
    res = linprog(np.ones(2 * n), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None),
                  method="highs", options=_HIGHS_OPTIONS)
    if res.status != 0:
        return None, None, res.message, int(getattr(res, "nit", 0))
    x = res.x[:n] - res.x[n:]
    return _polish_vertex(A, y, x), np.asarray(res.eqlin.marginals), "optimal", int(res.nit)


def _polish_vertex(A, y, x):
    """Re-solve a simplex vertex on its own support: x_S = A_S⁺y.

    A simplex solution's nonbasic coordinates are exact zeros, so its support S needs no
    guess; HiGHS meets Ax = y only to its feasibility tolerance (1e-7), which an
    ill-conditioned A (κ = 1e8) turns into a 0.5 % error of x (measured).  The
    least-squares solve on the |S| ≤ d support columns is backward stable.  The polished
    point is kept only if S has full column rank and no sign changes.
    """
    supp = np.flatnonzero(x)
    if supp.size == 0 or supp.size > A.shape[0]:
        return x
    xs, _, rank, _ = np.linalg.lstsq(A[:, supp], y, rcond=None)
    if rank < supp.size or np.any(np.sign(xs) != np.sign(x[supp])):
        return x
    out = np.zeros_like(x)
    out[supp] = xs
    return out


def _l1_cvxpy(A, y, name, tol):
    """The L1 LP by a cvxpy solver; returns (x, λ, status, iterations), x None on failure."""
    cp = cvxpy_module()
    d, n = A.shape
    p, q = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True)
    eq = A @ (p - q) == y
    prob = cp.Problem(cp.Minimize(cp.sum(p) + cp.sum(q)), [eq])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the certificate judges the point
            prob.solve(solver=name, **solver_options(name, tol))
    except Exception as err:  # noqa: BLE001 - cvxpy.SolverError and friends
        return None, None, f"solver_error: {err}", 0
    if prob.status not in ("optimal", "optimal_inaccurate") or p.value is None:
        return None, None, prob.status, 0
    iters = int(prob.solver_stats.num_iters or 0)
    return p.value - q.value, -np.asarray(eq.dual_value), prob.status, iters


def ridge(problem, beta: float) -> Prediction:
    """argmin ‖Ax − y‖²/(2d) + β‖x‖²/2 = Aᵀ(AAᵀ + dβI)⁻¹y (closed form, β > 0).

    The α → 0 limit of the β > 0 HAM prediction (H_α → θ²/2,
    docs/theory/explicit-bias.md#beta-limits).

    >>> import numpy as np
    >>> from hambias import LinearRegression
    >>> round(float(ridge(LinearRegression(np.array([[1.0]]), np.array([2.0])), 1.0).x[0]), 12)
    1.0
    """
    A, y = problem_arrays(problem)
    beta = float(beta)
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"ridge needs a finite beta > 0 (beta = 0 is the min-norm "
                         f"interpolant), got {beta!r}")
    d, n = A.shape
    t0 = time.perf_counter()
    x = A.T @ sla.solve(A @ A.T + d * beta * np.eye(d), y, assume_a="pos")
    q = penalised_residual(Oracle(Euclidean()), A, y, x, beta)
    return Prediction(
        x=frozen(x), dual=frozen((A @ x - y) / d), solver="closed_form", status=Status.SUCCESS,
        message=f"ridge closed form; stationarity residual {q:.2e}", primal_residual=0.0,
        dual_residual=q, iterations=1, beta=beta, geometry=Euclidean(), x0=frozen(np.zeros(n)),
        seconds=time.perf_counter() - t0,
    )


def lasso(problem, lam: float, *, solver: str = "CLARABEL",
          tol: float = CVXPY_SOLVER_TOL) -> Prediction:
    """argmin ‖Ax − y‖²/(2d) + λ‖x‖₁, by cvxpy (named solver, explicit tolerances).

    The α → ∞ limit of the β > 0 HAM prediction with λ = β/α (αH_α → |θ|,
    docs/theory/explicit-bias.md#beta-limits).
    Certificate: the relative duality gap (P(x) − D(θ))/P(x) of the solver's point, with
    θ the scaled residual (see :func:`lasso_gap`); it must be ≤ ``CVXPY_KKT_TOL``.  It is
    reported as ``dual_residual``.

    Raises:
        ValueError: lam is not finite and > 0, or an unknown solver name.
        PredictionError: the solver returned no point, or its point (whatever the
            solver's own status, "optimal" or "optimal_inaccurate") fails the certificate.

    >>> import numpy as np
    >>> from hambias import LinearRegression
    >>> float(lasso(LinearRegression(np.array([[1.0]]), np.array([2.0])), 0.5).x[0].round(6))
    1.5
    """
    cp = cvxpy_module()
    A, y = problem_arrays(problem)
    lam = float(lam)
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lasso needs a finite lam > 0, got {lam!r}")
    d, n = A.shape
    x = cp.Variable(n)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(A @ x - y) / (2 * d) + lam * cp.norm1(x)))
    options = solver_options(solver, tol)  # ValueError for an unknown solver name
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the certificate judges the point
            prob.solve(solver=solver, **options)
    except Exception as err:  # noqa: BLE001 - cvxpy.SolverError and friends
        raise PredictionError(f"lasso: cvxpy:{solver} failed: {err}") from err
    seconds = time.perf_counter() - t0
    if prob.status not in ("optimal", "optimal_inaccurate") or x.value is None:
        raise PredictionError(f"lasso: cvxpy:{solver} returned status {prob.status!r} "
                              "(no solution)")
    xv = np.asarray(x.value)
    gap = lasso_gap(A, y, xv, lam)
    if not gap <= CVXPY_KKT_TOL:
        raise PredictionError(f"lasso: the cvxpy:{solver} point (status {prob.status}) fails "
                              f"the certificate: relative duality gap {gap:.2e} > "
                              f"{CVXPY_KKT_TOL:g}")
    return Prediction(
        x=frozen(xv), dual=frozen((A @ xv - y) / d), solver=f"cvxpy:{solver}",
        status=Status.SUCCESS, message=f"lasso by cvxpy:{solver} (status {prob.status}); relative "
        f"duality gap {gap:.2e}", primal_residual=0.0, dual_residual=gap,
        iterations=int(prob.solver_stats.num_iters or 0), beta=lam, geometry=None,
        x0=frozen(np.zeros(n)), seconds=seconds,
    )
