"""One status vocabulary for every result: flows, iterates, predictions, comparisons, sweeps.

:class:`Status` is an ``IntEnum``: a result computed under ``jit``/``vmap`` stores the
integer code in an array (``FlowResult.status``, ``IterateResult.status``, a sweep's
``status`` variable), a host result stores the member (``Prediction.status``,
``Comparison.status``); both compare equal to the member, ``Status(code)`` turns a code
back into a member and ``.message`` says what it means.  The codes are stable: stored
sweeps keep their meaning across versions.

Entry points take ``throw=``: ``True`` raises :class:`StatusError` (or a subclass) on
a status other than ``SUCCESS``, eagerly or, under ``jit``, through
:func:`equinox.error_if`, in the manner of diffrax's ``diffeqsolve(throw=...)``;
``False`` returns the result with its status.

>>> Status.SUCCESS.message
'success'
>>> Status(5) is Status.BLOWUP
True
"""

from __future__ import annotations

import enum

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Status", "StatusError", "raise_for_status"]


class Status(enum.IntEnum):
    """What happened to a computation (a code; ``.message`` is the explanation)."""

    #: flows: reached t1 or a steady state; iterates: all steps without divergence;
    #: predictions: a point that passed its certificate; comparisons: both sides fine.
    SUCCESS = 0
    #: a flow spent its step budget before t1 or before a steady state.
    MAX_STEPS = 1
    #: a solver broke down (step size underflow, implicit-solve failure, a cvxpy solver
    #: error or an infeasible/unbounded status from it).
    SOLVER_FAILURE = 2
    #: the state became NaN or inf: the run diverged.
    NON_FINITE = 3
    #: a state left the geometry's domain (HAM with α < 0 must stay in |x| < 1/|α|).
    LEFT_DOMAIN = 4
    #: max|θ| exceeded the blow-up threshold: the run diverged.
    BLOWUP = 5
    #: the loss became NaN or inf, or grew above DIVERGENCE_FACTOR·f(θ₀): the run diverged.
    LOSS_BLOWUP = 6
    #: the flow has no steady state (e.g. no interpolant inside a bounded domain).
    NO_STEADY_STATE = 7
    #: a Newton solver reached its iteration cap.
    MAX_ITER = 8
    #: a line search found no decrease.
    LINE_SEARCH = 9
    #: the conjugate (or its Hessian) overflowed.
    OVERFLOW = 10
    #: the point failed its independent certificate (KKT residual above tolerance).
    CERTIFICATE = 11
    #: nothing was computed (a sweep point without a prediction).
    NOT_COMPUTED = 12
    #: a flow's state reached the float64 range of its geometry (the inverse mirror map
    #: overflows just beyond it).
    OUT_OF_RANGE = 13

    @property
    def message(self) -> str:
        """One sentence on what this status means."""
        return _MESSAGES[self]

    @property
    def ok(self) -> bool:
        """Whether this is ``SUCCESS``."""
        return self is Status.SUCCESS

    @property
    def diverged(self) -> bool:
        """Whether this status says that the run diverged."""
        return self in (Status.NON_FINITE, Status.BLOWUP, Status.LOSS_BLOWUP)


_MESSAGES = {
    Status.SUCCESS: "success",
    Status.MAX_STEPS: "the step budget was spent before the end of the solve (raise "
    "max_steps, or loosen rtol/atol)",
    Status.SOLVER_FAILURE: "the solver failed (step size underflow, implicit-solve breakdown, "
    "or a solver error)",
    Status.NON_FINITE: "the state became NaN or inf: the run diverged",
    Status.LEFT_DOMAIN: "the state reached the boundary of the geometry's domain (HAM with "
    "alpha < 0: the box |x| < 1/|alpha|)",
    Status.BLOWUP: "max|x| exceeded the blow-up threshold: the run diverged",
    Status.LOSS_BLOWUP: "the loss became NaN or inf or exceeded 1e12 times its initial value: "
    "the run diverged",
    Status.NO_STEADY_STATE: "the flow has no steady state",
    Status.MAX_ITER: "the iteration cap was reached before convergence",
    Status.LINE_SEARCH: "the line search found no decrease",
    Status.OVERFLOW: "the conjugate or its Hessian overflowed",
    Status.CERTIFICATE: "the point failed its certificate (KKT residual above tolerance)",
    Status.NOT_COMPUTED: "not computed",
    Status.OUT_OF_RANGE: "the state reached the float64 range of the geometry (its inverse "
    "mirror map overflows just beyond it)",
}


class StatusError(RuntimeError):
    """A computation ended with a status other than ``SUCCESS`` and ``throw=True``.

    Attributes:
        status: the :class:`Status`.
        result: the result that carries it (for inspection), when available.
    """

    def __init__(self, message: str, status: Status, result=None):
        super().__init__(message)
        self.status = status
        self.result = result


def raise_for_status(codes, *, what: str, detail: str = "", attach=None):
    """Eagerly: raise :class:`StatusError` if any code is not SUCCESS; traced: attach it.

    ``codes`` is an int array (or member).  Under tracing a run-time error with the
    member's message is attached (:func:`equinox.branched_error_if`) to ``codes`` and to
    every array leaf of ``attach``, so that it fires whichever of them the caller uses.
    Returns ``codes``, or ``(codes, attach)`` when ``attach`` is given.
    """
    from ._validate import is_concrete

    if is_concrete(codes):
        arr = np.asarray(codes)
        bad = arr[arr != Status.SUCCESS]
        if bad.size:
            first = Status(int(bad.reshape(-1)[0]))
            extra = f" ({bad.size} of {arr.size})" if arr.size > 1 else ""
            raise StatusError(f"{what}: {first.message}{extra}. {detail}".strip(), first)
        return codes if attach is None else (codes, attach)
    msgs = [f"{what}: {s.message}" for s in Status]
    arr = jnp.asarray(codes)
    pred, index = jnp.any(arr != Status.SUCCESS), jnp.max(arr)
    check = lambda v: eqx.branched_error_if(v, pred, index, msgs) if eqx.is_array(v) else v
    if attach is None:
        return check(arr)
    return check(arr), jax.tree_util.tree_map(check, attach)
