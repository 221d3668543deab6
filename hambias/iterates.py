"""Discrete iterates: GD, GD + HYP / HYP*, the exponential step, (m, w) GD, mirror descent.

THEORY.md §2, §3, §6, §9.  The pure one-step maps below are the kernels shared by
:func:`run_iterates`, the optax transformations and the batched sweeps.

Every method is a small immutable :class:`equinox.Module` with the same interface

* ``init(x0) -> state``            the optimiser state started at x₀;
* ``step(state, problem) -> state`` one iteration (one gradient evaluation);
* ``params(state) -> x``           the point θ_k ∈ ℝⁿ the state represents.

Hyperparameters (η, α, β, λ, γ) are stored as JAX arrays, i.e. pytree leaves, so a
sweep can ``jax.vmap`` over them; only structural choices (``star``, an optax
transformation, a geometry class) are static.  :func:`run_iterates` runs any method
under ``lax.scan`` and records metrics every ``record_every`` steps.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from .geometry import AbstractGeometry, _is_concrete
from .problems import AbstractProblem

__all__ = [
    "hyperbolic_step",
    "gd_hyp_step",
    "exp_step",
    "AbstractMethod",
    "GD",
    "GDHyp",
    "ExpStep",
    "MWGradientDescent",
    "MirrorDescent",
    "OptaxMethod",
    "IterateResult",
    "run_iterates",
    "DEFAULT_BLOWUP",
]

# Default blow-up threshold on max_i |θ_i|: far above any scale a converging run on
# the problems of THEORY.md reaches (|θ*| ~ 1 … 1e3), far below float64 overflow, so a
# geometric divergence is caught tens of steps before inf/NaN appears.
DEFAULT_BLOWUP = 1e12

# Codes of the quantity that triggered divergence (IterateResult.divergence_code).
_OK, _X_NONFINITE, _X_BLOWUP, _LOSS_NONFINITE = 0, 1, 2, 3
_DIVERGENCE_QUANTITY = {
    _X_NONFINITE: "an iterate coordinate became NaN or inf",
    _X_BLOWUP: "max|x| exceeded the blow-up threshold",
    _LOSS_NONFINITE: "the loss became NaN or inf",
}


# ---------------------------------------------------------------------------
# step kernels (pure, elementwise; shared with the optax transformations and sweeps)
# ---------------------------------------------------------------------------
def signed(s, g):
    """sign(s) ⊙ g without forming sign(s): −g where s < 0, 0 where s = 0, g elsewhere.

    Equal to ``jnp.sign(s) * g`` for every non-NaN s, up to the sign of a zero (a NaN s
    gives g; the step's product with the NaN θ stays NaN).  Two selects cost about half
    of XLA's float64 ``sign`` on CPU, which matters in the batched sweeps.
    """
    return jnp.where(s < 0, -g, jnp.where(s == 0, jnp.zeros_like(g), g))


def hyperbolic_step(x_half, g, eta, alpha, beta=0.0, sign_source=None):
    """θ ← θ_{½} ⊙ exp(−η(α·sign(s) ⊙ g + β)), s = ``sign_source`` (default θ_{½}: HYP*).

    Pass ``sign_source=θ_k`` for HYP.  ``g`` is the raw gradient at θ_k.
    """
    s = x_half if sign_source is None else sign_source
    return x_half * jnp.exp(-eta * (alpha * signed(s, g) + beta))


def gd_hyp_step(x, g, eta, alpha, beta=0.0, star=True):
    """One GD + HYP* (``star=True``) or GD + HYP step from θ_k with gradient g_k = ∇f(θ_k)."""
    x_half = x - eta * g
    return hyperbolic_step(x_half, g, eta, alpha, beta, None if star else x)


def exp_step(x, g, eta, beta=0.0):
    """Theorem 3.1's multiplicative step θ ⊙ exp(−η(2 sign(θ) ⊙ g + 4β)) (THEORY.md §6)."""
    return x * jnp.exp(-eta * (2.0 * signed(x, g) + 4.0 * beta))


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------
def _hyper(name: str, value, *, minimum: float | None = None, strict: bool = False) -> Array:
    """Convert a hyperparameter to an array leaf, validating it eagerly when concrete."""
    if _is_concrete(value):
        arr = np.asarray(value, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {value!r}")
        if minimum is not None:
            ok = arr > minimum if strict else arr >= minimum
            if not np.all(ok):
                rel = ">" if strict else ">="
                raise ValueError(f"{name} must be {rel} {minimum:g}, got {value!r}")
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _as_vector(name: str, x) -> Array:
    x = jnp.asarray(x)
    if _is_concrete(x):
        if x.ndim != 1:
            raise ValueError(f"{name} must be a vector of shape (n,), got shape {x.shape}")
        if not np.all(np.isfinite(np.asarray(x))):
            raise ValueError(f"{name} must be finite, got NaN or inf")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


# ---------------------------------------------------------------------------
# methods
# ---------------------------------------------------------------------------
class AbstractMethod(eqx.Module):
    """A discrete optimiser: ``init(x0) -> state``, ``step(state, problem) -> state``.

    ``params(state)`` returns the point θ_k the state stands for (default: the state
    itself).  Subclasses keep their hyperparameters as array leaves so that batches
    of methods can be vmapped.
    """

    def init(self, x0: ArrayLike):
        """The state at θ₀ = ``x0``."""
        return _as_vector("x0", x0)

    @abc.abstractmethod
    def step(self, state, problem: AbstractProblem):
        """One iteration from ``state`` on ``problem``."""

    def params(self, state) -> Array:
        """The point θ ∈ ℝⁿ represented by ``state``."""
        return state


class GD(AbstractMethod):
    """Gradient descent with (coupled) weight decay: θ_{k+1} = θ_k − η(∇f(θ_k) + β θ_k).

    Its flow is ẋ = −∇f(x) − βx, the HAM flow at α = 0 (THEORY.md §3).

    Args:
        eta: step size η > 0.
        beta: weight decay β ≥ 0 (default 0).

    >>> import jax.numpy as jnp
    >>> from hambias import LinearRegression
    >>> p = LinearRegression(jnp.eye(2), jnp.array([1.0, 2.0]))
    >>> GD(0.5).step(jnp.zeros(2), p).tolist()
    [0.25, 0.5]
    """

    eta: Array
    beta: Array

    def __init__(self, eta, beta=0.0):
        self.eta = _hyper("GD: eta", eta, minimum=0.0, strict=True)
        self.beta = _hyper("GD: beta", beta)

    def step(self, state, problem):
        g = problem.grad(state)
        return state - self.eta * (g + self.beta * state)


class GDHyp(AbstractMethod):
    """GD + HYP* (``star=True``, the paper's Algorithm 1) or GD + HYP (THEORY.md §2, §9).

        θ_{k+½} = θ_k − η g_k,   θ_{k+1} = θ_{k+½} ⊙ exp(−η(α sign(s) ⊙ g_k + β)),

    s = θ_{k+½} (HYP*) or θ_k (HYP); both follow the HAM flow
    θ̇ = −(1 + α|θ|)∇f(θ) − βθ to first order in η.

    Args:
        eta: step size η > 0.
        alpha: hyperbolic strength α (any finite real; α < 0 is exploratory, §11).
        beta: the decay β (any finite real; β ≥ 0 in the paper).
        star: sign of θ_{k+½} (True, default) or of θ_k (False).

    >>> import jax.numpy as jnp
    >>> from hambias import LinearRegression
    >>> p = LinearRegression(jnp.eye(1), jnp.array([1.0]))
    >>> round(float(GDHyp(0.1, 1.0).step(jnp.array([1.0]), p)[0]), 6)
    1.0
    """

    eta: Array
    alpha: Array
    beta: Array
    star: bool = eqx.field(static=True)

    def __init__(self, eta, alpha, beta=0.0, star=True):
        self.eta = _hyper("GDHyp: eta", eta, minimum=0.0, strict=True)
        self.alpha = _hyper("GDHyp: alpha", alpha)
        self.beta = _hyper("GDHyp: beta", beta)
        self.star = bool(star)

    def step(self, state, problem):
        g = problem.grad(state)
        return gd_hyp_step(state, g, self.eta, self.alpha, self.beta, self.star)


class ExpStep(AbstractMethod):
    """The exponential step of Theorem 3.1: θ_{k+1} = θ_k ⊙ exp(−η(2 sign(θ_k) ⊙ ∇f(θ_k) + 4β)).

    First-order equivalent to one GD step on (m, w) for f(m⊙w) + β(‖m‖² + ‖w‖²) with the
    balanced start m₀ = sign(θ₀)√|θ₀|, w₀ = √|θ₀| (THEORY.md §6); it never changes a
    sign and keeps zero coordinates at zero.

    Args:
        eta: step size η > 0.
        beta: weight decay β (λ of the (m, w) problem).

    >>> import jax.numpy as jnp
    >>> from hambias import LinearRegression
    >>> p = LinearRegression(jnp.eye(2), jnp.array([1.0, 1.0]))
    >>> ExpStep(0.1).step(jnp.array([0.0, 1.0]), p).tolist()
    [0.0, 1.0]
    """

    eta: Array
    beta: Array

    def __init__(self, eta, beta=0.0):
        self.eta = _hyper("ExpStep: eta", eta, minimum=0.0, strict=True)
        self.beta = _hyper("ExpStep: beta", beta)

    def step(self, state, problem):
        return exp_step(state, problem.grad(state), self.eta, self.beta)


def _mw_init(x0: Array, gamma: Array) -> tuple[Array, Array]:
    """(m₀, w₀) with m₀ w₀ = x₀ and m₀² − w₀² = 2γ (so γ = |m₀² − w₀²|/2).

    m₀ = s√(r + γ), w₀ = |x₀|/√(r + γ), r = √(x₀² + γ²), s = −1 if x₀ < 0 else +1;
    at γ = 0 this is the balanced start m₀ = sign(x₀)√|x₀|, w₀ = √|x₀|.
    """
    r = jnp.hypot(x0, gamma)
    a = jnp.sqrt(r + gamma)
    safe_a = jnp.where(a > 0, a, 1.0)
    b = jnp.where(a > 0, jnp.abs(x0) / safe_a, 0.0)
    # γ = 0: write both factors as √|x₀| so that |m₀| = |w₀| holds bitwise
    root = jnp.sqrt(jnp.abs(x0))
    a, b = jnp.where(gamma == 0, root, a), jnp.where(gamma == 0, root, b)
    s = jnp.where(x0 < 0, -1.0, 1.0).astype(x0.dtype)
    return s * a, b


class MWGradientDescent(AbstractMethod):
    """GD on the pointwise product x = m ⊙ w with weight decay (THEORY.md §5, §6).

        F(m, w) = f(m⊙w) + λ(‖m‖² + ‖w‖²),
        m ← m − η(w ⊙ ∇f(x) + 2λm),   w ← w − η(m ⊙ ∇f(x) + 2λw).

    The state is the pair (m, w).  ``init(x0)`` chooses m₀ ⊙ w₀ = x₀ with the balance
    m₀² − w₀² = 2γ: γ = 0 (default) gives m₀ = sign(x₀)√|x₀|, w₀ = √|x₀|, and γ > 0
    gives m₀ = s√(r + γ), w₀ = |x₀|/√(r + γ), r = √(x₀² + γ²).  Then
    :func:`hambias.gamma_from_init` (m₀, w₀) = γ, and for λ = 0 the iterates follow the
    :class:`~hambias.PointwiseProduct` (γ) flow at the time map
    :func:`hambias.mw_flow_time`.  An explicit start is passed as a tuple, ``init((m0, w0))``
    (or as ``x0=(m0, w0)`` to :func:`run_iterates`); ``gamma`` is then ignored.

    Args:
        eta: step size η > 0.
        weight_decay: λ ≥ 0.
        gamma: balance γ ≥ 0 used by ``init`` from a single x₀ (scalar or per coordinate).

    >>> import jax.numpy as jnp
    >>> m, w = MWGradientDescent(0.1).init(jnp.array([-4.0, 9.0]))
    >>> m.tolist(), w.tolist()
    ([-2.0, 3.0], [2.0, 3.0])
    """

    eta: Array
    weight_decay: Array
    gamma: Array

    def __init__(self, eta, weight_decay=0.0, gamma=0.0):
        self.eta = _hyper("MWGradientDescent: eta", eta, minimum=0.0, strict=True)
        self.weight_decay = _hyper("MWGradientDescent: weight_decay", weight_decay, minimum=0.0)
        self.gamma = _hyper("MWGradientDescent: gamma", gamma, minimum=0.0)

    def init(self, x0):
        if isinstance(x0, tuple):
            if len(x0) != 2:
                raise ValueError(
                    f"MWGradientDescent.init takes x0 or a tuple pair (m0, w0), got {len(x0)} items"
                )
            m0, w0 = _as_vector("m0", x0[0]), _as_vector("w0", x0[1])
            if m0.shape != w0.shape:
                raise ValueError(f"m0 and w0 must have equal shapes, got {m0.shape} and {w0.shape}")
            return m0, w0
        x0 = _as_vector("x0", x0)
        return _mw_init(x0, self.gamma.astype(x0.dtype))

    def step(self, state, problem):
        m, w = state
        g = problem.grad(m * w)
        lam2 = 2.0 * self.weight_decay
        return m - self.eta * (w * g + lam2 * m), w - self.eta * (m * g + lam2 * w)

    def params(self, state):
        m, w = state
        return m * w


class MirrorDescent(AbstractMethod):
    """Mirror descent for any geometry: ∇R(x_{k+1}) = ∇R(x_k) − η ∇f(x_k) (THEORY.md §1).

    Uses the geometry's closed-form inverse mirror map, so no linear solve; it follows
    the mirror flow of R (for :class:`~hambias.HAMGeometry` the HAM flow at β = 0).

    Args:
        geometry: any :class:`~hambias.AbstractGeometry`.
        eta: step size η > 0.

    >>> import jax.numpy as jnp
    >>> from hambias import Euclidean, LinearRegression
    >>> p = LinearRegression(jnp.eye(2), jnp.array([1.0, 2.0]))
    >>> MirrorDescent(Euclidean(), 0.5).step(jnp.zeros(2), p).tolist()
    [0.25, 0.5]
    """

    geometry: AbstractGeometry
    eta: Array

    def __init__(self, geometry, eta):
        if not isinstance(geometry, AbstractGeometry):
            raise ValueError(
                f"MirrorDescent needs an AbstractGeometry, got {type(geometry).__name__}"
            )
        self.geometry = geometry
        self.eta = _hyper("MirrorDescent: eta", eta, minimum=0.0, strict=True)

    def init(self, x0):
        x0 = _as_vector("x0", x0)
        if _is_concrete(x0):
            self.geometry.check_domain(x0)
        return x0

    def step(self, state, problem):
        phi = self.geometry.mirror_map(state) - self.eta * problem.grad(state)
        return self.geometry.inverse_mirror_map(phi)


class OptaxMethod(AbstractMethod):
    """Any optax ``GradientTransformation`` as a method: state (θ, opt_state).

        u_k, s_{k+1} = tx.update(∇f(θ_k), s_k, θ_k),   θ_{k+1} = optax.apply_updates(θ_k, u_k).

    Use it for :func:`hambias.optimizers.ham` on top of Adam or momentum.  A
    ``GradientTransformationExtraArgs`` (such as :func:`hambias.optimizers.ham_sam`)
    also receives ``grad_fn=problem.grad``.  The transformation is static (its
    hyperparameters are not vmappable).

    Args:
        tx: an ``optax.GradientTransformation``.

    >>> import jax.numpy as jnp, optax
    >>> from hambias import LinearRegression
    >>> p = LinearRegression(jnp.eye(2), jnp.array([1.0, 2.0]))
    >>> m = OptaxMethod(optax.sgd(0.5))
    >>> m.params(m.step(m.init(jnp.zeros(2)), p)).tolist()
    [0.25, 0.5]
    """

    tx: object = eqx.field(static=True)

    def __init__(self, tx):
        if not (hasattr(tx, "init") and hasattr(tx, "update")):
            raise ValueError(
                f"OptaxMethod needs an optax GradientTransformation, got {type(tx).__name__}"
            )
        self.tx = tx

    def init(self, x0):
        x0 = _as_vector("x0", x0)
        return x0, self.tx.init(x0)

    def step(self, state, problem):
        import optax

        x, opt_state = state
        if isinstance(self.tx, optax.GradientTransformationExtraArgs):
            # e.g. hambias.optimizers.ham_sam, which needs a second gradient
            updates, opt_state = self.tx.update(
                problem.grad(x), opt_state, x, grad_fn=problem.grad
            )
        else:
            updates, opt_state = self.tx.update(problem.grad(x), opt_state, x)
        return optax.apply_updates(x, updates), opt_state

    def params(self, state):
        return state[0]


# ---------------------------------------------------------------------------
# running a method
# ---------------------------------------------------------------------------
class IterateResult(eqx.Module):
    """Strided history of a discrete run (from :func:`run_iterates`); a pytree.

    Records are taken at step 0, every ``record_every`` steps, and at the last step.
    After divergence the state is frozen at the last accepted iterate, and every later
    record holds NaN (``xs``, ``loss``, ``distance``) or −1 (flip counts), so no NaN
    appears without ``diverged`` set.

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
        diverged: whether divergence was detected.
        divergence_step: the first step whose iterate (or recorded loss) was rejected;
            −1 if none.
        divergence_code: 0 none, 1 non-finite x, 2 max|x| > ``blowup``, 3 non-finite loss.
        blowup: the threshold on max|x| that was used.
    """

    steps: Array
    xs: Array | None
    loss: Array
    distance: Array | None
    flips_step: Array
    flips_init: Array
    x: Array
    state: object
    diverged: Array
    divergence_step: Array
    divergence_code: Array
    blowup: float = eqx.field(static=True)

    @property
    def message(self) -> str:
        """Human-readable status: converged run, or which quantity diverged at which step."""
        div = np.asarray(self.diverged)
        if div.ndim > 0:
            n_bad = int(div.sum())
            if n_bad == 0:
                return f"all {div.size} runs finished without divergence"
            first = int(np.flatnonzero(div.reshape(-1))[0])
            sub = IterateResult._single_message(
                True,
                int(np.asarray(self.divergence_step).reshape(-1)[first]),
                int(np.asarray(self.divergence_code).reshape(-1)[first]),
                self.blowup,
            )
            return f"{n_bad} of {div.size} runs diverged; first (flat index {first}): {sub}"
        return IterateResult._single_message(
            bool(div), int(self.divergence_step), int(self.divergence_code), self.blowup
        )

    @staticmethod
    def _single_message(diverged: bool, step: int, code: int, blowup: float) -> str:
        if not diverged:
            return "finished without divergence"
        what = _DIVERGENCE_QUANTITY.get(code, "unknown")
        if code == _X_BLOWUP:
            what += f" ({blowup:g})"
        return (
            f"diverged at step {step}: {what}; the state was frozen at the last accepted "
            f"iterate and later records are NaN"
        )


def _tree_where(pred, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), a, b)


def _count_reversals(a, b):
    return jnp.sum(a * b < 0).astype(jnp.int32)


def _run_impl(method, problem, state0, reference, steps, record_every, blowup, record_x):
    x_init = method.params(state0)
    dtype = x_init.dtype
    nan = jnp.asarray(jnp.nan, dtype)

    def one_step(carry, _):
        state, k, diverged, div_step, div_code, flips = carry
        new_state = method.step(state, problem)
        x_old, x_new = method.params(state), method.params(new_state)
        # one reduction: max|x| is NaN if any coordinate is NaN, inf if any is inf
        size = jnp.max(jnp.abs(x_new))
        bad = ~(size <= blowup) & ~diverged
        div_step = jnp.where(bad, k + 1, div_step)
        code = jnp.where(jnp.isfinite(size), _X_BLOWUP, _X_NONFINITE)
        div_code = jnp.where(bad, code, div_code)
        diverged = diverged | bad
        flips = flips + jnp.where(diverged, 0, _count_reversals(x_new, x_old))
        state = _tree_where(diverged, state, new_state)
        return (state, k + 1, diverged, div_step, div_code, flips), None

    def record(state, k, diverged, div_step, div_code, flips):
        x = method.params(state)
        loss = problem.loss(x)
        bad = ~jnp.isfinite(loss) & ~diverged
        div_step = jnp.where(bad, k, div_step)
        div_code = jnp.where(bad, _LOSS_NONFINITE, div_code)
        diverged = diverged | bad
        rec = {
            "steps": k,
            "loss": jnp.where(diverged, nan, loss),
            "flips_step": jnp.where(diverged, -1, flips),
            "flips_init": jnp.where(diverged, -1, _count_reversals(x, x_init)),
        }
        if record_x:
            rec["xs"] = jnp.where(diverged, nan, x)
        if reference is not None:
            rec["distance"] = jnp.where(diverged, nan, jnp.linalg.norm(x - reference))
        return rec, (diverged, div_step, div_code)

    def window(carry, length):
        state, k, diverged, div_step, div_code = carry
        zero = jnp.zeros((), jnp.int32)
        (state, k, diverged, div_step, div_code, flips), _ = jax.lax.scan(
            one_step, (state, k, diverged, div_step, div_code, zero), None, length=length
        )
        rec, (diverged, div_step, div_code) = record(state, k, diverged, div_step, div_code, flips)
        return (state, k, diverged, div_step, div_code), rec

    k0 = jnp.zeros((), jnp.int32)
    carry = (state0, k0, jnp.asarray(False), jnp.asarray(-1, jnp.int32), k0)
    rec0, (diverged, div_step, div_code) = record(state0, k0, *carry[2:], k0)
    carry = (state0, k0, diverged, div_step, div_code)
    n_full, rest = divmod(steps, record_every)
    parts = [jax.tree_util.tree_map(lambda a: a[None], rec0)]
    if n_full > 0:
        carry, recs = jax.lax.scan(lambda c, _: window(c, record_every), carry, None, length=n_full)
        parts.append(recs)
    if rest > 0:
        carry, rec_last = window(carry, rest)
        parts.append(jax.tree_util.tree_map(lambda a: a[None], rec_last))
    recs = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *parts)
    state, _, diverged, div_step, div_code = carry
    return recs, state, diverged, div_step, div_code


_run_jit = eqx.filter_jit(_run_impl)


def run_iterates(
    method: AbstractMethod,
    problem: AbstractProblem,
    x0,
    *,
    steps: int,
    record_every: int = 1,
    reference: ArrayLike | None = None,
    blowup: float = DEFAULT_BLOWUP,
    record_x: bool = True,
) -> IterateResult:
    """Run ``steps`` iterations of ``method`` on ``problem`` from ``x0`` under ``lax.scan``.

    θ_{k+1} = method.step(θ_k); metrics are recorded at k = 0, record_every, 2·record_every,
    … and at k = steps (THEORY.md §2–§6).  A step whose iterate has a NaN/inf coordinate
    or max|θ| > ``blowup``, or a record whose loss is not finite, marks the run as
    diverged (``diverged``, ``divergence_step``, ``message``); the state is then frozen
    and later records are NaN.  The whole run is one jit-compiled function (``steps``,
    ``record_every``, ``blowup`` and ``record_x`` are static) and can be ``jax.vmap``-ed
    over the array hyperparameters of ``method`` or over ``x0``.

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

    Returns:
        :class:`IterateResult`.

    Raises:
        ValueError: non-integer or negative ``steps``, ``record_every`` < 1, a
            non-positive ``blowup``, or ``x0`` / ``reference`` of the wrong shape or with NaN.

    >>> import jax.numpy as jnp
    >>> from hambias import LinearRegression
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
    state0 = method.init(x0)
    x_init = method.params(state0)
    if reference is not None:
        reference = _as_vector("reference", reference)
        if reference.shape != x_init.shape:
            raise ValueError(
                f"reference must have the shape of x0, {x_init.shape}, got {reference.shape}"
            )
    if isinstance(problem, AbstractProblem) and hasattr(problem, "n") and _is_concrete(x_init):
        if x_init.shape != (problem.n,):
            raise ValueError(
                f"x0 must have shape (n,) = ({problem.n},) for this problem, got {x_init.shape}"
            )
    recs, state, diverged, div_step, div_code = _run_jit(
        method, problem, state0, reference, int(steps), int(record_every), float(blowup),
        bool(record_x),
    )
    return IterateResult(
        steps=recs["steps"],
        xs=recs.get("xs"),
        loss=recs["loss"],
        distance=recs.get("distance"),
        flips_step=recs["flips_step"],
        flips_init=recs["flips_init"],
        x=method.params(state),
        state=state,
        diverged=diverged,
        divergence_step=div_step,
        divergence_code=div_code,
        blowup=float(blowup),
    )
