"""The prediction result, its error type and the certificate tolerances (one table)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from jaxtyping import Float

from ..status import Status, StatusError

__all__ = ["Prediction", "PredictionError", "NEWTON_KKT_TOL", "CVXPY_KKT_TOL",
           "CVXPY_SOLVER_TOL"]

# -- tolerances (one table) ------------------------------------------------------
#: The certificate a Newton point must pass (relative KKT residual).  Measured 1e-16 …
#: 1e-13 on 20×100 … 2000×10000 and over the range test of tests/test_range_predict.py.
NEWTON_KKT_TOL = 1e-10
#: The certificate a cvxpy point must pass.  With solver tolerances 1e-10, Clarabel's
#: points satisfy the KKT residual to ~1e-8 and the lasso gap to ≤ 1e-9 (measured).
CVXPY_KKT_TOL = 1e-6
#: The interior-point solver's own gap and feasibility tolerances.
CVXPY_SOLVER_TOL = 1e-10


class PredictionError(StatusError):
    """A prediction failed (solver status, certificate above tolerance).

    The failed :class:`Prediction` is attached as ``.prediction`` (and ``.result``) for
    inspection; ``.status`` is its :class:`~hambias.Status`.
    """

    def __init__(self, message: str, prediction: Prediction | None = None,
                 status: Status = Status.SOLVER_FAILURE):
        super().__init__(message, prediction.status if prediction is not None else status,
                         prediction)
        self.prediction = prediction


@dataclasses.dataclass(frozen=True)
class Prediction:
    """An implicit-bias prediction with its certificate (immutable).

    Attributes:
        x: the predicted limit, float64 array of shape (n,).
        dual: multipliers λ of shape (d,): ∇R(x) − ∇R(x₀) = Aᵀλ for β = 0; for β > 0
            λ = (Ax − y)/d, so that Aᵀλ + β∇H(x) = 0.
        solver: ``"newton"``, ``"closed_form"``, ``"cvxpy:CLARABEL"`` …
        status: a :class:`~hambias.Status`: ``SUCCESS``, or what failed (``MAX_ITER``,
            ``LINE_SEARCH``, ``OVERFLOW``, ``CERTIFICATE``, ``SOLVER_FAILURE`` for a cvxpy
            status other than optimal, named in ``message``).
        message: human-readable account, including any fallback that was taken.
        primal_residual: the normwise backward error ‖Ax − y‖/(‖A‖₂‖x‖ + ‖y‖) (β = 0);
            0 for β > 0 (no constraint).
        dual_residual: dist(∇R(x) − ∇R(x₀), range Aᵀ)/max(‖∇R(x)‖, ‖∇R(x₀)‖) (β = 0);
            ‖∇f + β∇H‖/(‖∇f‖ + β‖∇H‖) (β > 0).  Both computed from x alone, in an
            orthonormal basis of range(Aᵀ) (see :func:`kkt_residuals`).
        iterations: solver iterations (summed over continuation stages).
        beta: β.
        geometry, x0: what was predicted (x0 is the zero vector when not given).
        seconds: wall-clock time of the solve.
    """

    x: Float[np.ndarray, " n"]
    dual: Float[np.ndarray, " d"]
    solver: str
    status: Status
    message: str
    primal_residual: float
    dual_residual: float
    iterations: int
    beta: float
    geometry: Any = dataclasses.field(repr=False)
    x0: Float[np.ndarray, " n"] = dataclasses.field(repr=False)
    seconds: float = 0.0

    @property
    def kkt_residual(self) -> float:
        """max(primal_residual, dual_residual)."""
        return max(self.primal_residual, self.dual_residual)

    @property
    def converged(self) -> bool:
        """Whether the status is ``SUCCESS`` (the point passed its certificate)."""
        return self.status == Status.SUCCESS


def frozen(a) -> np.ndarray:
    """A read-only float64 copy of ``a``."""
    a = np.array(a, dtype=np.float64, copy=True)
    a.flags.writeable = False
    return a


def finish(pred_kwargs: dict, throw: bool) -> Prediction:
    """Build the Prediction; raise :class:`PredictionError` for a failure if asked."""
    pred = Prediction(**pred_kwargs)
    if pred.status != Status.SUCCESS and throw:
        raise PredictionError(f"{pred.status.message}: {pred.message}", pred)
    return pred
