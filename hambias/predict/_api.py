"""``predict_limit``: where a flow ends on an underdetermined least-squares problem."""

from __future__ import annotations

import time

import numpy as np

from jaxtyping import ArrayLike, Float

from ..geometry import AbstractGeometry, Euclidean
from ..problems import LinearRegression
from ._certificate import (
    equality_residuals,
    penalised_residual,
    roundoff_floor,
)
from ._cvxpy import CvxpyPredictor, FormInaccurate
from ._newton import NEWTON_MAX_ITER, solve_dual, solve_penalised
from ._oracle import Oracle
from ._result import CVXPY_KKT_TOL, CVXPY_SOLVER_TOL, NEWTON_KKT_TOL, Prediction, finish, frozen
from ..status import Status
from ._validate import check_beta, problem_arrays

__all__ = ["predict_limit"]

# Condition number of A above which a prediction's message says how many digits float64
# leaves (the result is still certified; its forward accuracy is about κ·ε).
_KAPPA_NOTE = 1e6


def _x0_array(x0, n, oracle):
    if x0 is None:
        return np.zeros(n)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != (n,):
        raise ValueError(f"x0 must have shape ({n},) to match A, got {x0.shape}")
    if not oracle.in_domain(x0):
        raise ValueError(
            "x0 must be finite and inside the domain of the geometry "
            "(for HAMGeometry with alpha < 0: |x0| < 1/|alpha|)")
    return x0


def _check_interpolant_in_domain(geometry, problem):
    """Raise unless some x with Ax = y lies strictly inside a bounded domain (a box)."""
    width = geometry.domain_half_width()
    if width is None:
        return
    ratio = problem.box_ratio(width)
    if ratio >= 1.0 - 1e-12:
        raise ValueError(
            f"{type(geometry).__name__} has no interpolant inside its box |x_i| < w_i "
            f"(for alpha < 0, w = 1/|alpha|): every x with Ax = y has max_i |x_i|/w_i >= "
            f"{ratio:.6g} >= 1, so the flow has no limit")


def predict_limit(
    geometry: AbstractGeometry,
    problem: LinearRegression,
    x0: Float[ArrayLike, " n"] | None = None,
    *,
    beta: float = 0.0,
    solver: str = "auto",
    kkt_tol: float | None = None,
    max_iter: int = NEWTON_MAX_ITER,
    cvxpy_solver: str = "CLARABEL",
    cvxpy_tol: float = CVXPY_SOLVER_TOL,
    throw: bool = True,
    _linear: str = "auto",
) -> Prediction:
    """Where the flow of ``geometry`` from x₀ ends on an underdetermined least-squares problem.

    β = 0:  x = argmin_{Ax = y} D_R(x, x₀)   (KKT ∇R(x) − ∇R(x₀) = Aᵀλ;
            docs/theory/implicit-bias.md#implicit-bias)
    β > 0:  x = argmin f(x) + β H(x),  H the geometry's regulariser, g⁻¹H' = θ
            (for HAM H_α(θ) = Σ[α|θ| − log(1 + α|θ|)]/α²; x₀ unused;
            docs/theory/explicit-bias.md#explicit-bias)

    Solvers: ``"newton"`` (dual Newton in an orthonormal basis of range(Aᵀ), whose line
    search finds the longest finite step first, so that a geometry's scale far from the
    solution's (γ = 1e-300, α = 1e300) costs tens of iterations, not a failure; primal
    Newton for β > 0, continued over easier geometries at large α), ``"cvxpy"`` (the geometry's DCP form, Clarabel at explicit
    tolerances), ``"closed_form"`` (Euclidean only).  Every returned point carries a
    certificate computed from the point alone (:func:`kkt_residuals`); a failed certificate
    is never a silent answer.

    Supported range (tests/test_range_predict.py; Newton, float64): any AbstractGeometry
    whose maps are finite on the solution; for the built-ins γ ∈ [1e-300, 1e2] and
    |α| ∈ [0, 1e300] on designs with κ(A) ≤ 1e10 and sizes up to 250 × 10000.  Outside it
    a prediction is refused with the reason (a ValueError, or a PredictionError whose
    status says what failed).

    Args:
        geometry: any :class:`~hambias.AbstractGeometry` (Newton uses only its maps; cvxpy
            needs its DCP form).
        problem: a LinearRegression (A of shape (d, n), d < n, and y).
        x0: initial point (default 0); ignored for β > 0.
        beta: weight decay β ≥ 0.
        solver: ``"auto"`` (closed form for Euclidean, else Newton), ``"newton"``,
            ``"cvxpy"`` (falls back to Newton, and says so in ``message``, where the
            geometry's DCP form cancels: HAM with |α|·max(|x_mn|, |x₀|) < 5e-2), or
            ``"closed_form"``.
        kkt_tol: certificate tolerance (default 1e-10 Newton, 1e-6 cvxpy).  For β > 0 with
            Newton it is raised, with a note in ``message``, to the round-off floor of the
            float64 stationarity residual (see ``penalised_roundoff``), which exceeds 1e-10
            at large α (measured 6e-9 at α = 1e6 on 20×100, where the correctly rounded
            exact minimiser itself has residual ~8e-10).
        max_iter: Newton iteration cap (default 200; per continuation stage for β > 0).
        cvxpy_solver, cvxpy_tol: cvxpy solver name and its tolerances (CLARABEL, 1e-10).
        throw: raise :class:`PredictionError` when the status is not ``SUCCESS`` (default)
            or return the Prediction, whose ``status`` and ``message`` say what failed.

    Returns:
        A :class:`Prediction` with the point, duals, solver, status and certificate.

    Raises:
        ValueError: d ≥ n (β = 0), an inconsistent system, κ(A) > 1e10, no interpolant
            inside a bounded domain, a bad x₀ / β / geometry, float32 JAX.
        PredictionError: a non-optimal status or a certificate above ``kkt_tol``.

    >>> import numpy as np
    >>> from hambias import HAMGeometry, LinearRegression
    >>> problem = LinearRegression(np.array([[1.0, 2.0]]), np.array([3.0]))
    >>> p = predict_limit(HAMGeometry(1.0), problem)
    >>> p.status.name, bool(p.kkt_residual < 1e-10)
    ('SUCCESS', True)
    """
    A, y = problem_arrays(problem)
    d, n = A.shape
    beta = check_beta(beta)
    if solver not in ("auto", "newton", "cvxpy", "closed_form"):
        raise ValueError(
            f"solver must be 'auto', 'newton', 'cvxpy' or 'closed_form', got {solver!r}")
    if beta == 0 and d >= n:
        raise ValueError(
            f"the implicit-bias prediction needs an underdetermined problem, d < n "
            f"(fewer samples than dimensions), got A of shape (d, n) = ({d}, {n})")
    oracle = Oracle(geometry)
    euclidean = isinstance(geometry, Euclidean)
    if solver == "closed_form" and not euclidean:
        raise ValueError(
            f"solver='closed_form' exists for Euclidean only, got {type(geometry).__name__}")
    x0 = _x0_array(x0, n, oracle)
    if beta == 0:
        _check_interpolant_in_domain(geometry, problem)
    rs = problem.row_space() if beta == 0 else None  # raises for κ(A) > 1e10
    note = ""
    if rs is not None and rs.rank < d:
        note += f"A has rank {rs.rank} < d = {d}; dropped {d - rs.rank} redundant " \
                f"(consistent) rows. "
    if rs is not None and rs.cond > _KAPPA_NOTE:
        note += f"A is ill-conditioned (κ = {rs.cond:.2g}): the point is accurate to about " \
                f"κ·ε = {rs.cond * np.finfo(float).eps:.1g} relative. "
    if solver == "cvxpy":
        x_scale = max(float(np.max(np.abs(rs.min_norm(y, np.zeros(n))))) if rs else 0.0,
                      float(np.max(np.abs(x0))) if beta == 0 else 0.0)
        try:
            pr = CvxpyPredictor(geometry, A, penalised=beta > 0, solver=cvxpy_solver,
                                tol=cvxpy_tol, kkt_tol=CVXPY_KKT_TOL if kkt_tol is None
                                else kkt_tol, x_scale=x_scale)
        except FormInaccurate as err:
            note += f"{err}; solved by dual Newton instead. "
            solver = "newton"
        else:
            return pr.solve(y, x0, beta=beta, throw=throw)
    tol = NEWTON_KKT_TOL if kkt_tol is None else kkt_tol
    t0 = time.perf_counter()
    if beta > 0:
        res = solve_penalised(geometry, Oracle, A, y, beta, max_iter=max_iter)
        x, lam, name = res.x, (A @ res.x - y) / d, "newton"
        p, q = 0.0, penalised_residual(oracle, A, y, x, beta)
        floor = roundoff_floor(oracle, A, y, x, beta) if np.isfinite(q) else 0.0
        if floor > tol:
            res.note += f"tolerance raised to the round-off floor {floor:.2e} of the " \
                        f"certificate. "
            tol = floor
    else:
        if euclidean and solver in ("auto", "closed_form"):
            x = rs.min_norm(y, x0)
            lam = rs.multipliers(rs.coords(x - x0))
            name, status, iters, msg = "closed_form", Status.SUCCESS, 1, ""
            res = None
        else:
            res = solve_dual(oracle, rs, y, x0, max_iter=max_iter, linear=_linear)
            x, lam, name = res.x, rs.multipliers(res.mu), "newton"
        p, q = equality_residuals(oracle, rs, y, x, x0)
        if res is not None and res.status == Status.LINE_SEARCH and max(p, q) <= tol:
            res.status, res.note = Status.SUCCESS, res.note + "stopped at round-off (no further " \
                                                         "decrease). "
    if res is not None:
        status, iters, msg = res.status, res.iterations, res.note
    seconds = time.perf_counter() - t0
    kkt = max(p, q)
    if status == Status.SUCCESS and not kkt <= tol:
        status = Status.CERTIFICATE
        msg += f"KKT residual {kkt:.2e} above tolerance {tol:g}. "
    message = f"{note}{msg}{name}: status {status.name}, KKT residual {kkt:.2e} in {iters} iterations"
    return finish(
        dict(x=frozen(x), dual=frozen(lam), solver=name, status=status, message=message,
             primal_residual=p, dual_residual=q, iterations=iters, beta=beta, geometry=geometry,
             x0=frozen(x0), seconds=seconds),
        throw,
    )
