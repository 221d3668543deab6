"""Prediction vs dynamics: how far a flow or an iterate run ended from the predicted limit.

:func:`compare` takes a :class:`~hambias.predict.Prediction` and anything with a final
state ``.x`` (a FlowResult, an IterateResult, an optax run, a plain array) and reports
the distance, the Bregman gap D_R(x_result, x_pred) in the prediction's geometry and the
result's own KKT residuals (docs/theory/implicit-bias.md#implicit-bias,
docs/theory/explicit-bias.md#explicit-bias).  :func:`convergence_order` fits the order p
of err ≈ C hᵖ from a step-size sweep (p = 1 for GD + HYP*: docs/theory/ham-flow.md#ham-flow).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .predict import Prediction, kkt_residuals
from .status import Status

__all__ = ["Comparison", "compare", "convergence_order"]


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The distance between a run's final state and a prediction (immutable).

    Attributes:
        relative_error: ‖x_r − x_p‖₂ / ‖x_p‖₂ (absolute when x_p = 0).
        absolute_error: ‖x_r − x_p‖₂.
        max_error: ‖x_r − x_p‖_∞.
        bregman_gap: D_R(x_r, x_p) in the prediction's geometry (None without one).
        result_primal_residual: ‖Ax_r − y‖/‖y‖ (β = 0; 0 for β > 0); None without a problem.
        result_dual_residual: the prediction's certificate evaluated at x_r: relative
            dist(∇R(x_r) − ∇R(x₀), range Aᵀ) (β = 0) or relative stationarity (β > 0);
            None without a problem.  It measures whether the run stayed on its
            mirror-flow manifold, independently of where it stopped.
        prediction_kkt: the prediction's own KKT residual.
        status: a :class:`~hambias.Status`: ``SUCCESS`` when both sides are sound; else
            the prediction's failure (the comparison is then against an uncertified
            point), ``NON_FINITE`` for a non-finite final state, or the result's own status
            (a diverged or unfinished flow or run).
        source: which side the status describes: ``"prediction"``, ``"result"`` or ``""``.
        message: what the status means for this pair.
    """

    relative_error: float
    absolute_error: float
    max_error: float
    bregman_gap: float | None
    result_primal_residual: float | None
    result_dual_residual: float | None
    prediction_kkt: float
    status: Status
    message: str
    source: str = ""


def _final_state(result) -> np.ndarray:
    x = result.x if hasattr(result, "x") else result
    return np.asarray(x, dtype=np.float64)


def compare(prediction: Prediction, result, *, problem=None) -> Comparison:
    """Compare a run's final state with a prediction.

        rel = ‖x_r − x_p‖/‖x_p‖,   gap = D_R(x_r, x_p) = R(x_r) − R(x_p) − ⟨∇R(x_p), x_r − x_p⟩

    Args:
        prediction: a :class:`~hambias.predict.Prediction`.
        result: anything with a final state ``.x`` of shape (n,) (duck-typed), or an array.
        problem: the LinearRegression both refer to; enables the result's residuals.

    Returns:
        A :class:`Comparison`.  A non-finite final state gives status
        ``NON_FINITE`` (source ``"result"``) and infinite errors (never NaN).

    Raises:
        ValueError: a prediction that is not a Prediction, or shapes that differ.

    See docs/theory/implicit-bias.md#implicit-bias (β = 0) and
    docs/theory/explicit-bias.md#explicit-bias (β > 0).

    >>> import numpy as np
    >>> from hambias import HAMGeometry, LinearRegression
    >>> from hambias.predict import predict_limit
    >>> p = LinearRegression(np.array([[1.0, 2.0]]), np.array([3.0]))
    >>> pred = predict_limit(HAMGeometry(1.0), p)
    >>> c = compare(pred, pred.x + 1e-9, problem=p)
    >>> c.status.name, bool(c.relative_error < 1e-8)
    ('SUCCESS', True)
    """
    if not isinstance(prediction, Prediction):
        raise ValueError(
            f"prediction must be a hambias Prediction, got {type(prediction).__name__}"
        )
    xp = np.asarray(prediction.x)
    xr = _final_state(result)
    if xr.shape != xp.shape:
        raise ValueError(f"result.x must have shape {xp.shape} like the prediction, got {xr.shape}")
    kkt = prediction.kkt_residual
    if not np.all(np.isfinite(xr)):
        return Comparison(
            relative_error=np.inf, absolute_error=np.inf, max_error=np.inf, bregman_gap=None,
            result_primal_residual=None, result_dual_residual=None, prediction_kkt=kkt,
            status=Status.NON_FINITE, source="result",
            message="the result's final state contains NaN or inf (a diverged run?)",
        )
    diff = xr - xp
    absolute = float(np.linalg.norm(diff))
    norm_p = float(np.linalg.norm(xp))
    relative = absolute / norm_p if norm_p > 0 else absolute
    gap = None
    geometry = prediction.geometry
    if geometry is not None:
        gap = float(geometry.bregman_divergence(xr, xp))
    primal = dual = None
    if problem is not None:
        A = np.asarray(problem.A, dtype=np.float64)
        y = np.asarray(problem.y, dtype=np.float64)
        if A.shape[1] != xp.shape[0]:
            raise ValueError(
                f"problem has n = {A.shape[1]} dimensions, the prediction {xp.shape[0]}"
            )
        if geometry is not None:
            primal, dual = kkt_residuals(geometry, problem, xr, x0=prediction.x0,
                                         beta=prediction.beta)
        else:
            primal = problem.row_space().backward_error(xr, y)
    status, source = Status.SUCCESS, ""
    message = f"relative error {relative:.3e} against a prediction with KKT {kkt:.1e}"
    own = _result_status(result)
    if not prediction.converged:
        status, source = prediction.status, "prediction"
        message = f"the prediction did not pass its certificate ({status.name}); " + message
    elif own != Status.SUCCESS:
        status, source = own, "result"
        message = f"the result ended with {own.name} ({own.message}); " + message
    return Comparison(
        relative_error=float(relative),
        absolute_error=absolute,
        max_error=float(np.max(np.abs(diff))),
        bregman_gap=gap, result_primal_residual=primal, result_dual_residual=dual,
        prediction_kkt=kkt, status=status, message=message, source=source,
    )


def _result_status(result) -> Status:
    """The result's own status: its ``status`` code if it has one (flows, iterates); for
    other objects their ``diverged`` (→ NON_FINITE) and ``converged`` (False → MAX_STEPS)
    flags; SUCCESS for a plain array."""
    code = getattr(result, "status", None)
    if code is None:
        if bool(getattr(result, "diverged", False)):
            return Status.NON_FINITE
        if getattr(result, "converged", True) is False:
            return Status.MAX_STEPS
        return Status.SUCCESS
    arr = np.asarray(code)
    if arr.ndim:
        raise ValueError(f"compare takes one result, got a batch of {arr.size} statuses")
    return Status(int(arr))


def convergence_order(step_sizes, errors) -> float:
    """Least-squares slope p of log(err) against log(h): err ≈ C hᵖ.

    Args:
        step_sizes: at least two positive, distinct step sizes h.
        errors: the matching positive, finite errors.

    Returns:
        The fitted order p (1 for a first-order method such as GD + HYP*,
        docs/theory/ham-flow.md#ham-flow).

    Raises:
        ValueError: fewer than two points, mismatched lengths, or a non-positive value.

    >>> round(convergence_order([0.1, 0.05, 0.025], [2e-3, 1e-3, 5e-4]), 6)
    1.0
    """
    h = np.asarray(step_sizes, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if h.ndim != 1 or h.shape != e.shape or h.size < 2:
        raise ValueError(
            "need two equally long 1-D sequences of at least 2 values, "
            f"got shapes {h.shape}, {e.shape}"
        )
    if not (np.all(np.isfinite(h)) and np.all(np.isfinite(e)) and np.all(h > 0) and np.all(e > 0)):
        raise ValueError("step sizes and errors must be positive and finite")
    if np.unique(h).size < 2:
        raise ValueError("need at least two distinct step sizes")
    return float(np.polyfit(np.log(h), np.log(e), 1)[0])
