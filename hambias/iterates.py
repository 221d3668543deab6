"""Running a discrete method: ``run_iterates`` under ``lax.scan``, with one divergence monitor.

The methods themselves (GD, GD + HYP / HYP*, the exponential step, (m, w) GD, mirror
descent, optax transformations, registered ones) live in :mod:`hambias.methods`; this
module drives them.  :func:`divergence_status` is the single definition of a diverged
iterate, shared with the sweep engine.  Theory: the methods of §2–§6 on the section map
(docs/theory/index.md#section-map) and their step-size limit
(docs/theory/stability.md#stability).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from ._validate import check_vector, is_concrete
from .methods import AbstractMethod
from .problems import AbstractProblem
from .status import Status, raise_for_status

__all__ = ["IterateResult", "run_iterates", "divergence_status", "DEFAULT_BLOWUP",
           "DIVERGENCE_FACTOR"]

# Default blow-up threshold on max_i |θ_i|: far above any scale a converging run on the
# problems of the theory pages (docs/theory/index.md#theory) reaches (|θ*| ~ 1 … 1e3), far
# below float64 overflow, so a geometric divergence is caught tens of steps before inf/NaN
# appears.
DEFAULT_BLOWUP = 1e12
#: A run counts as diverged once its loss exceeds f(θ₀) + DIVERGENCE_FACTOR·|f(θ₀)|: a
#: convergent method never raises f above f(θ₀) by 12 decades.
DIVERGENCE_FACTOR = 1e12


def divergence_status(x, loss, loss0, blowup):
    """The status of a new iterate: NON_FINITE, BLOWUP, LOSS_BLOWUP or SUCCESS (int codes).

    x has shape (..., n); loss and loss0 shape (...).  In this order: a NaN/inf
    coordinate (NON_FINITE), max|x| > ``blowup`` (BLOWUP), a non-finite loss or one above
    f(θ₀) + DIVERGENCE_FACTOR·|f(θ₀)| (LOSS_BLOWUP; no loss bound when f(θ₀) = 0).  This is
    the one definition used by :func:`run_iterates` and the sweeps.
    """
    ok = int(Status.SUCCESS)
    # |x_i| <= bound is false at NaN, at ±inf and beyond the bound; an all-reduction of
    # it costs much less than a NaN-propagating max (1.15x the whole step of a batched
    # 20x100 sweep on CPU), and the cause is told apart only when some row is outside.
    bound = jnp.minimum(blowup, jnp.finfo(x.dtype).max)
    inside = jnp.all(jnp.abs(x) <= bound, axis=-1)

    def cause():
        finite = jnp.all(jnp.isfinite(x), axis=-1)
        return jnp.where(inside, ok, jnp.where(finite, int(Status.BLOWUP),
                                               int(Status.NON_FINITE))).astype(jnp.int32)

    # (the all-inside branch is derived from ``inside`` so that both branches have its type,
    # also inside shard_map, where it varies over the devices)
    size_code = jax.lax.cond(jnp.all(inside), lambda: jnp.where(inside, ok, ok).astype(jnp.int32),
                             cause)
    limit = jnp.where(loss0 == 0, jnp.inf, loss0 + DIVERGENCE_FACTOR * jnp.abs(loss0))
    loss_bad = ~(jnp.isfinite(loss) & (loss <= limit))
    return jnp.where(size_code != ok, size_code,
                     jnp.where(loss_bad, int(Status.LOSS_BLOWUP), ok)).astype(jnp.int32)


class IterateResult(eqx.Module):
    """Strided history of a discrete run (from :func:`run_iterates`); a pytree.

    Records are taken at step 0, every ``record_every`` steps, and at the last step.
    After divergence the state is frozen at the last accepted iterate, and every later
    record holds NaN (``xs``, ``loss``, ``distance``) or −1 (flip counts), so no NaN
    appears without a diverged ``status``.

    Attributes:
        steps: (r,) step numbers of the records.
        xs: (r, n) recorded iterates, or None with ``record_x=False``.
        loss: (r,) f(θ_k).
        distance: (r,) ‖θ_k − reference‖₂, or None without a reference.
        flips_step: (r,) sign reversals (θ_{j+1,i} θ_{j,i} < 0) summed over the steps
            since the previous record (per step when ``record_every=1``; 0 at step 0).
        flips_init: (r,) coordinates with θ_{k,i} θ_{0,i} < 0 (reversals against θ₀;
            coordinates at 0 never count).
        x: (n,) the final iterate (the last accepted one if the run diverged).
        state: the method's final state (e.g. (m, w) for :class:`MWGradientDescent`).
        status: the :class:`~hambias.Status` code: SUCCESS, or what diverged (NON_FINITE,
            BLOWUP, LOSS_BLOWUP; see :func:`divergence_status`).
        divergence_step: the first step whose iterate was rejected; −1 if none.
        blowup: the threshold on max|x| that was used.
    """

    steps: Int[Array, " r"]
    xs: Float[Array, "r n"] | None
    loss: Float[Array, " r"]
    distance: Float[Array, " r"] | None
    flips_step: Int[Array, " r"]
    flips_init: Int[Array, " r"]
    x: Float[Array, " n"]
    state: object
    status: Int[Array, ""]
    divergence_step: Int[Array, ""]
    blowup: float = eqx.field(static=True)

    @property
    def diverged(self) -> Array:
        """Whether divergence was detected (status other than SUCCESS)."""
        return self.status != Status.SUCCESS

    @property
    def message(self) -> str:
        """Human-readable status: converged run, or which quantity diverged at which step."""
        status = np.asarray(self.status)
        if status.ndim > 0:
            n_bad = int(np.sum(status != Status.SUCCESS))
            if n_bad == 0:
                return f"all {status.size} runs finished without divergence"
            first = int(np.flatnonzero(status.reshape(-1) != Status.SUCCESS)[0])
            sub = IterateResult._single_message(
                int(status.reshape(-1)[first]),
                int(np.asarray(self.divergence_step).reshape(-1)[first]), self.blowup)
            return f"{n_bad} of {status.size} runs diverged; first (flat index {first}): {sub}"
        return IterateResult._single_message(int(status), int(self.divergence_step),
                                             self.blowup)

    @staticmethod
    def _single_message(code: int, step: int, blowup: float) -> str:
        status = Status(code)
        if status == Status.SUCCESS:
            return "finished without divergence"
        what = status.message + (f" ({blowup:g})" if status == Status.BLOWUP else "")
        return (f"diverged at step {step}: {what}; the state was frozen at the last accepted "
                f"iterate and later records are NaN")


def _tree_where(pred, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), a, b)


def _count_reversals(a, b):
    return jnp.sum(a * b < 0).astype(jnp.int32)


def _uses_problem(method) -> bool:
    """True for methods that override ``step`` (they need more than ∇f at θ, e.g. SAM)."""
    return type(method).step is not AbstractMethod.step


def _run_impl(method, problem, state0, reference, steps, record_every, blowup, record_x,
              key=None, batch_size=None):
    x_init = method.params(state0)
    dtype = x_init.dtype
    nan = jnp.asarray(jnp.nan, dtype)
    own_step = _uses_problem(method)
    ok = int(Status.SUCCESS)

    def evaluate(x, k):
        """(f(x), the gradient the step k uses): full, or the mini-batch drawn for step k."""
        if batch_size is None:
            return problem.loss_and_grad(x)
        return problem.loss_and_minibatch_grad(x, jax.random.fold_in(key, k), batch_size)

    f0, g0 = evaluate(x_init, jnp.zeros((), jnp.int32))

    def one_step(carry, _):
        state, f, g, k, status, div_step, flips = carry
        new_state = method.step(state, problem) if own_step else method.update(state, g)
        x_old, x_new = method.params(state), method.params(new_state)
        f_new, g_new = evaluate(x_new, k + 1)
        code = divergence_status(x_new, f_new, f0, blowup)
        bad = (code != ok) & (status == ok)
        div_step = jnp.where(bad, k + 1, div_step)
        status = jnp.where(bad, code, status)
        diverged = status != ok
        flips = flips + jnp.where(diverged, 0, _count_reversals(x_new, x_old))
        state = _tree_where(diverged, state, new_state)
        f, g = _tree_where(diverged, (f, g), (f_new, g_new))
        return (state, f, g, k + 1, status, div_step, flips), None

    def record(state, f, k, status, flips):
        x = method.params(state)
        diverged = status != ok
        rec = {
            "steps": k,
            "loss": jnp.where(diverged, nan, f),
            "flips_step": jnp.where(diverged, -1, flips),
            "flips_init": jnp.where(diverged, -1, _count_reversals(x, x_init)),
        }
        if record_x:
            rec["xs"] = jnp.where(diverged, nan, x)
        if reference is not None:
            rec["distance"] = jnp.where(diverged, nan, jnp.linalg.norm(x - reference))
        return rec

    def window(carry, length):
        state, f, g, k, status, div_step = carry
        zero = jnp.zeros((), jnp.int32)
        inner = (state, f, g, k, status, div_step, zero)
        if isinstance(length, int):
            inner, _ = jax.lax.scan(one_step, inner, None, length=length)
        else:  # a traced step count (one window to the end): a while loop, one compile
            inner = jax.lax.fori_loop(0, length, lambda _, c: one_step(c, None)[0], inner)
        state, f, g, k, status, div_step, flips = inner
        return (state, f, g, k, status, div_step), record(state, f, k, status, flips)

    k0 = jnp.zeros((), jnp.int32)
    # x₀ itself: a non-finite loss there is divergence at step 0
    status0 = divergence_status(x_init, f0, f0, blowup)
    carry = (state0, f0, g0, k0, status0, jnp.where(status0 != ok, 0, -1).astype(jnp.int32))
    rec0 = record(state0, f0, k0, status0, k0)
    parts = [jax.tree_util.tree_map(lambda a: a[None], rec0)]
    if record_every is None:  # records at 0 and at the end only; ``steps`` is traced
        carry, rec_last = window(carry, steps)
        parts.append(jax.tree_util.tree_map(lambda a: a[None], rec_last))
        recs = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
        state, _, _, _, status, div_step = carry
        return recs, state, status, div_step
    n_full, rest = divmod(steps, record_every)
    if n_full > 0:
        carry, recs = jax.lax.scan(lambda c, _: window(c, record_every), carry, None, length=n_full)
        parts.append(recs)
    if rest > 0:
        carry, rec_last = window(carry, rest)
        parts.append(jax.tree_util.tree_map(lambda a: a[None], rec_last))
    recs = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
    state, _, _, _, status, div_step = carry
    return recs, state, status, div_step


_run_jit = eqx.filter_jit(_run_impl)


def run_iterates(
    method: AbstractMethod,
    problem: AbstractProblem,
    x0: Float[ArrayLike, " n"] | tuple,
    *,
    steps: int,
    record_every: int = 1,
    reference: Float[ArrayLike, " n"] | None = None,
    blowup: float = DEFAULT_BLOWUP,
    record_x: bool = True,
    batch_size: int | None = None,
    key=None,
    throw: bool = False,
) -> IterateResult:
    """Run ``steps`` iterations of ``method`` on ``problem`` from ``x0`` under ``lax.scan``.

    θ_{k+1} = method.update(θ_k, ∇f(θ_k)) (one ``problem.loss_and_grad`` per step, whose
    loss also feeds the monitor); metrics are recorded at k = 0, record_every,
    2·record_every, … and at k = steps (the methods: §2–§6 on
    docs/theory/index.md#section-map).  Every new iterate is checked by
    :func:`divergence_status` (a NaN/inf coordinate, max|θ| > ``blowup``, or a loss that is
    not finite or above f(θ₀) + 1e12·|f(θ₀)|), the same test as in sweeps: a rejected
    iterate marks the run as diverged (``status``, ``divergence_step``, ``message``); the
    state is then frozen at the last accepted iterate and later records are NaN.  The whole
    run is one jit-compiled function (``record_every``, ``blowup`` and ``record_x`` are
    static, and so is ``steps`` unless ``record_every >= steps``, where only the start
    and the end are recorded and runs of any length share one program) and can be
    ``jax.vmap``-ed over the array hyperparameters of ``method`` or over ``x0``.

    Args:
        method: an :class:`AbstractMethod` (GD, GDHyp, ExpStep, MWGradientDescent,
            MirrorDescent, OptaxMethod, ...).
        problem: the loss (e.g. :class:`~hambias.LinearRegression`).
        x0: initial point, shape (n,); for :class:`MWGradientDescent` also a tuple (m0, w0).
        steps: number of iterations (int ≥ 0).
        record_every: record stride (int ≥ 1, default 1).
        reference: optional point for ``distance`` = ‖θ_k − reference‖₂.
        blowup: divergence threshold on max|θ| (default :data:`DEFAULT_BLOWUP` = 1e12).
        record_x: also store the recorded iterates ``xs`` (default True).
        batch_size: stochastic gradients: step k uses the gradient of b = ``batch_size``
            samples drawn without replacement with ``jax.random.fold_in(key, k)``
            (:meth:`~hambias.LinearRegression.loss_and_minibatch_grad`); None (default):
            the full gradient.  The monitor and the records use the full loss.
        key: the ``jax.random`` key of the mini-batches (required with ``batch_size``).
        throw: raise :class:`~hambias.StatusError` if the run diverged (default False:
            the result's ``status`` says so); under jit the error is raised at run time.

    Returns:
        :class:`IterateResult`.

    Raises:
        ValueError: non-integer or negative ``steps``, ``record_every`` < 1, a
            non-positive ``blowup``, ``x0`` / ``reference`` of the wrong shape or with NaN,
            or an ``x0`` beyond ``blowup``.

    >>> import jax.numpy as jnp
    >>> from hambias import GDHyp, LinearRegression
    >>> p = LinearRegression(jnp.eye(2), jnp.array([1.0, -2.0]))
    >>> r = run_iterates(GDHyp(0.1, 1.0), p, jnp.zeros(2), steps=200, record_every=50)
    >>> r.steps.tolist(), bool(r.diverged), round(float(r.loss[-1]), 8)
    ([0, 50, 100, 150, 200], False, 0.0)
    """
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if (
        not isinstance(record_every, (int, np.integer))
        or isinstance(record_every, bool)
        or record_every < 1
    ):
        raise ValueError(f"record_every must be an integer >= 1, got {record_every!r}")
    if not (np.isfinite(blowup) and blowup > 0):
        raise ValueError(f"blowup must be a finite threshold > 0, got {blowup!r}")
    if not isinstance(method, AbstractMethod):
        raise ValueError(f"method must be an AbstractMethod, got {type(method).__name__}")
    if batch_size is not None:
        d = getattr(problem, "d", None)
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
                batch_size < 1 or (isinstance(d, int) and batch_size > d):
            raise ValueError(f"batch_size must be an integer in [1, d = {d}], got {batch_size!r}")
        if key is None:
            raise ValueError("batch_size needs a key: pass key=jax.random.key(seed)")
        if _uses_problem(method):
            raise ValueError(f"{type(method).__name__} evaluates its own gradients (it "
                             f"overrides step); it cannot run on mini-batches")
        batch_size = int(batch_size)
    state0 = method.init(x0)
    x_init = method.params(state0)
    if reference is not None:
        reference = check_vector("reference", reference)
        if reference.shape != x_init.shape:
            raise ValueError(
                f"reference must have the shape of x0, {x_init.shape}, got {reference.shape}"
            )
    if is_concrete(x_init) and not np.all(np.abs(np.asarray(x_init)) <= blowup):
        raise ValueError(f"x0 exceeds the blow-up threshold: max|x0| = "
                         f"{float(np.max(np.abs(np.asarray(x_init)))):.3g} > blowup = "
                         f"{blowup:g}; pass a larger blowup= for starts of this size")
    if isinstance(problem, AbstractProblem) and hasattr(problem, "n") and is_concrete(x_init):
        if x_init.shape != (problem.n,):
            raise ValueError(
                f"x0 must have shape (n,) = ({problem.n},) for this problem, got {x_init.shape}"
            )
    if record_every >= steps > 0:
        # records at 0 and at the end only: the step count is traced, so runs that differ
        # only in it (an η-halving study) share one compiled program
        recs, state, status, div_step = _run_jit(
            method, problem, state0, reference, jnp.asarray(steps, jnp.int32), None,
            float(blowup), bool(record_x), key, batch_size)
    else:
        recs, state, status, div_step = _run_jit(
            method, problem, state0, reference, int(steps), int(record_every), float(blowup),
            bool(record_x), key, batch_size)
    if throw:
        status, (state, recs) = raise_for_status(
            status, what="run_iterates", attach=(state, recs),
            detail=f"(first rejected step {int(div_step)})"
            if is_concrete(div_step) and np.ndim(div_step) == 0 else "")
    return IterateResult(
        steps=recs["steps"],
        xs=recs.get("xs"),
        loss=recs["loss"],
        distance=recs.get("distance"),
        flips_step=recs["flips_step"],
        flips_init=recs["flips_init"],
        x=method.params(state),
        state=state,
        status=status,
        divergence_step=div_step,
        blowup=float(blowup),
    )
