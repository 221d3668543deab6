"""Where a flow ends: implicit-bias predictions for underdetermined least squares.

For β = 0 the mirror flow of a geometry R started at x₀ on f(x) = ‖Ax − y‖²/(2d)
ends at (docs/theory/implicit-bias.md#implicit-bias)

    x_∞ = argmin_{Ax = y} D_R(x, x₀),   KKT: Ax = y,  ∇R(x) − ∇R(x₀) = Aᵀλ;

with weight decay β > 0 it ends at the unique minimiser of f + βH, H the geometry's
regulariser (g⁻¹H' = θ; for HAM H_α(θ) = Σ[α|θ_i| − log(1 + α|θ_i|)]/α²,
docs/theory/explicit-bias.md#explicit-bias), independent of x₀.

Two solvers check each other: dual Newton (:func:`predict_limit`'s default; it uses
only the geometry's own maps, so any geometry works) and cvxpy with the geometry's DCP
form (:class:`CvxpyPredictor`).  Every :class:`Prediction` carries an independent
certificate computed from its point alone (:func:`kkt_residuals`).  References:
:func:`min_l1_interpolant`, :func:`ridge`, :func:`lasso`.

cvxpy is imported lazily, here and nowhere else in hambias.
"""

from ._api import predict_limit
from ._certificate import kkt_residuals, penalised_roundoff
from ._cvxpy import CvxpyPredictor
from ._references import l1_gap, lasso, lasso_gap, min_l1_interpolant, ridge
from ._result import (
    CVXPY_KKT_TOL,
    CVXPY_SOLVER_TOL,
    NEWTON_KKT_TOL,
    Prediction,
    PredictionError,
)

__all__ = [
    "CVXPY_KKT_TOL",
    "CVXPY_SOLVER_TOL",
    "CvxpyPredictor",
    "NEWTON_KKT_TOL",
    "Prediction",
    "PredictionError",
    "kkt_residuals",
    "l1_gap",
    "lasso",
    "lasso_gap",
    "min_l1_interpolant",
    "penalised_roundoff",
    "predict_limit",
    "ridge",
]
