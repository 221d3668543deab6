"""The KKT certificate of a predicted limit, computed from the point alone.

β = 0, x = argmin_{Ax=y} D_R(x, x₀) ⇔ Ax = y and ∇R(x) − ∇R(x₀) ∈ range(Aᵀ):

    primal = ‖Ax − y‖ / (‖A‖₂‖x‖ + ‖y‖)                       (normwise backward error)
    dual   = ‖(I − QQᵀ)(∇R(x) − ∇R(x₀))‖ / max(‖∇R(x)‖, ‖∇R(x₀)‖)

with Q an orthonormal basis of range(Aᵀ) (:class:`hambias.problems.RowSpace`), so that
neither depends on κ(A) beyond round-off.  β > 0, x = argmin f + βH:

    dual = ‖∇f(x) + β∇H(x)‖ / (‖∇f(x)‖ + β‖∇H(x)‖),   primal = 0.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float

from ._oracle import Oracle

__all__ = ["kkt_residuals", "penalised_roundoff"]


def _rel(num, den) -> float:
    return float(num / den) if den > 0 else float(num)


def equality_residuals(oracle: Oracle, rs, y, x, x0) -> tuple[float, float]:
    """(primal, dual) of argmin_{Ax=y} D_R(x, x₀) at x; (inf, inf) outside the domain."""
    if not oracle.in_domain(x):
        return np.inf, np.inf
    primal = rs.backward_error(x, y)
    gx, g0 = oracle.mirror(x), oracle.mirror(x0)
    r = rs.project_out(gx - g0)
    return primal, _rel(np.linalg.norm(r), max(np.linalg.norm(gx), np.linalg.norm(g0)))


def penalised_residual(oracle: Oracle, A, y, x, beta) -> float:
    """Relative stationarity residual of f + βH at x (inf outside the domain)."""
    if not oracle.in_domain(x):
        return np.inf
    d = A.shape[0]
    gf = A.T @ (A @ x - y) / d
    gh = beta * oracle.regulariser_derivatives(x)[0]
    return _rel(np.linalg.norm(gf + gh), np.linalg.norm(gf) + np.linalg.norm(gh))


def roundoff_floor(oracle: Oracle, A, y, x, beta) -> float:
    """Round-off floor of the relative stationarity residual of f + βH at x.

    floor = ε·(‖|A|ᵀ(|A||x| + |y|)‖/d + β‖∇H(x)‖) / (‖∇f(x)‖ + β‖∇H(x)‖):
    the first-order change of ∇f + β∇H when x is rounded to float64 (|δx| ≤ ε|x|)
    and Ax − y is evaluated in float64 (|δr| ≤ ε(|A||x| + |y|)), over the
    certificate's denominator.  At large α the minimiser interpolates almost exactly
    (‖Ax − y‖ ~ β/α) while |A||x| stays O(‖y‖), so the floor exceeds 1e-10: measured
    (key(5), β = 0.05) the correctly rounded exact minimiser has residual 1e-10 … 1.1e-9
    at α = 1.8e5 … 1e6 on 10×30 … 20×100, and this estimate is 7 … 20× above it.
    """
    d = A.shape[0]
    eps = np.finfo(float).eps
    absA = np.abs(A)
    gh = beta * oracle.regulariser_derivatives(x)[0]
    gf = A.T @ (A @ x - y) / d
    num = np.linalg.norm(absA.T @ (absA @ np.abs(x) + np.abs(y))) / d + np.linalg.norm(gh)
    return eps * _rel(num, np.linalg.norm(gf) + np.linalg.norm(gh))


def kkt_residuals(geometry, problem, x: Float[ArrayLike, " n"], *,
                  x0: Float[ArrayLike, " n"] | None = None,
                  beta: float = 0.0) -> tuple[float, float]:
    """The certificate of a candidate limit x: ``(primal, dual)`` relative KKT residuals.

    β = 0 (x = argmin_{Ax=y} D_R(x, x₀), docs/theory/implicit-bias.md#implicit-bias):
    primal = ‖Ax − y‖/(‖A‖₂‖x‖ + ‖y‖), dual = dist(∇R(x) − ∇R(x₀), range Aᵀ)/
    max(‖∇R(x)‖, ‖∇R(x₀)‖), the distance taken in an orthonormal basis of range(Aᵀ).
    β > 0 (x = argmin f + βH, docs/theory/explicit-bias.md#explicit-bias): primal = 0,
    dual = ‖∇f + β∇H‖/(‖∇f‖ + β‖∇H‖).
    A point outside the geometry's domain (or not finite) gives (inf, inf).

    Args:
        geometry: any :class:`~hambias.AbstractGeometry`.
        problem: a :class:`~hambias.LinearRegression`.
        x: the candidate, shape (n,).
        x0: the initial point (default 0; unused for β > 0).
        beta: β ≥ 0.

    Returns:
        ``(primal, dual)``, floats; both ≤ 1e-10 at a Newton prediction.

    Raises:
        ValueError: shapes that do not match, or A too ill-conditioned for float64.

    >>> import numpy as np
    >>> from hambias import Euclidean, LinearRegression
    >>> p = LinearRegression(np.array([[1.0, 1.0]]), np.array([2.0]))
    >>> [round(v, 12) for v in kkt_residuals(Euclidean(), p, np.array([1.0, 1.0]))]
    [0.0, 0.0]
    """
    A = np.asarray(problem.A, dtype=np.float64)
    y = np.asarray(problem.y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.shape != (A.shape[1],):
        raise ValueError(f"x must have shape ({A.shape[1]},) to match A, got {x.shape}")
    oracle = Oracle(geometry)
    if beta > 0:
        return 0.0, penalised_residual(oracle, A, y, x, float(beta))
    x0 = np.zeros_like(x) if x0 is None else np.asarray(x0, dtype=np.float64)
    return equality_residuals(oracle, problem.row_space(), y, x, x0)


def penalised_roundoff(geometry, problem, x, *, beta: float) -> float:
    """The float64 round-off floor of the β > 0 certificate at x (see :func:`kkt_residuals`).

    floor = ε·(‖|A|ᵀ(|A||x| + |y|)‖/d + β‖∇H(x)‖) / (‖∇f(x)‖ + β‖∇H(x)‖): the first-order
    change of ∇f + β∇H when x is rounded to float64 and Ax − y is evaluated in float64.
    :func:`predict_limit` raises its β > 0 tolerance to this floor where it exceeds 1e-10.
    """
    A = np.asarray(problem.A, dtype=np.float64)
    y = np.asarray(problem.y, dtype=np.float64)
    return roundoff_floor(Oracle(geometry), A, y, np.asarray(x, dtype=np.float64), float(beta))
