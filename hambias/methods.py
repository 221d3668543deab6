"""Discrete methods, each written once: GD, GD + HYP / HYP*, the exponential step, (m, w) GD,
mirror descent, optax transformations, and any method a user registers.

A method is an immutable :class:`equinox.Module` with

* ``init(x0) -> state``             the state started at θ₀;
* ``update(state, grad) -> state``   one iteration, given g = ∇f(params(state));
* ``params(state) -> θ``            the point θ ∈ ℝⁿ the state stands for;
* ``implicit_bias(state0)``          the geometry (and decay β) whose flow the method
  follows to first order in η, for :func:`hambias.predict_limit` (None if unknown).

The formula lives in ``update`` and nowhere else: :func:`hambias.run_iterates`, the
sweep engine (which vmaps ``update`` over a batch of methods and supplies the
gradient from its own batched matrix products) and the paper checks all drive the
same classes.  Hyperparameters (η, α, β, …) are array leaves, so a batch of methods
is one method with batched leaves; structural choices (``star``, an optax
transformation, a geometry class) are static.

Methods that need more than the gradient at θ (sharpness-aware minimisation)
override ``step(state, problem)`` instead; they run in :func:`run_iterates` but not in
sweeps.

Theory: docs/theory/ham-step.md#ham-step (the HAM step), docs/theory/ham-flow.md#ham-flow (its
flow), docs/theory/mw-flow.md#mw-flow and docs/theory/exp-step.md#exp-step (m⊙w and the
exponential step).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from ._validate import check_bounds, check_vector, is_concrete
from .geometry import AbstractGeometry, Euclidean, HAMGeometry, PointwiseProduct

__all__ = [
    "signed",
    "hyperbolic_step",
    "gd_hyp_step",
    "exp_step",
    "AbstractMethod",
    "GD",
    "GDHyp",
    "ExpStep",
    "MWGradientDescent",
    "EffectiveBias",
    "mw_effective_bias",
    "MirrorDescent",
    "OptaxMethod",
    "Phased",
    "register_method",
    "make_method",
    "method_factory",
    "method_names",
]


# ---------------------------------------------------------------------------
# the step formulas (pure, elementwise; also used by the optax transformations)
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

    Pass ``sign_source=θ_k`` for HYP.  ``g`` is the raw gradient at θ_k.  Written as
    exp((−ηα)·sign(s)⊙g − ηβ): the per-point scalars are multiplied once, not per
    coordinate (a batch of methods in a sweep shares this code).
    """
    s = x_half if sign_source is None else sign_source
    return x_half * jnp.exp((-eta * alpha) * signed(s, g) - eta * beta)


def gd_hyp_step(x, g, eta, alpha, beta=0.0, star=True):
    """One GD + HYP* (``star=True``) or GD + HYP step from θ_k with gradient g_k = ∇f(θ_k)."""
    x_half = x - eta * g
    return hyperbolic_step(x_half, g, eta, alpha, beta, None if star else x)


def exp_step(x, g, eta, beta=0.0):
    """Theorem 3.1's multiplicative step θ ⊙ exp(−η(2 sign(θ) ⊙ g + 4β)).

    See docs/theory/exp-step.md#exp-step.
    """
    return x * jnp.exp((-2.0 * eta) * signed(x, g) - 4.0 * eta * beta)


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------
def _hyper(name: str, value, **bounds) -> Array:
    """A hyperparameter as a float array leaf, checked eagerly (and under jit) when bounded."""
    value = check_bounds(name, value, **bounds)
    return jnp.asarray(value, dtype=jnp.result_type(float))


# ---------------------------------------------------------------------------
# the interface
# ---------------------------------------------------------------------------
class AbstractMethod(eqx.Module):
    """A discrete optimiser: ``init``, ``update`` (given the gradient), ``params``.

    Subclasses implement ``update``; ``init`` and ``params`` default to the identity
    (the state is θ itself).  Keep hyperparameters as array leaves so that batches of
    methods can be vmapped.  A method defined outside hambias runs everywhere a
    built-in one does; register it with :func:`register_method` to use it in sweeps.
    """

    def init(self, x0: Float[ArrayLike, " n"]):
        """The state at θ₀ = ``x0``."""
        return check_vector("x0", x0)

    @abc.abstractmethod
    def update(self, state, grad: Float[Array, " n"]):
        """One iteration from ``state``, given ``grad`` = ∇f(params(state))."""

    def params(self, state) -> Float[Array, " n"]:
        """The point θ ∈ ℝⁿ represented by ``state``."""
        return state

    def step(self, state, problem):
        """One iteration on ``problem``: ``update(state, problem.grad(params(state)))``."""
        return self.update(state, problem.grad(self.params(state)))

    def implicit_bias(self, state0) -> tuple[AbstractGeometry, Array] | None:
        """``(geometry, β)`` of the flow this method follows to first order in η from
        ``state0``, so that ``predict_limit(geometry, problem, params(state0), beta=β)``
        predicts where it ends; None when no such prediction is known."""
        return None

    def own_start(self, n: int) -> Array | None:
        """θ₀ of the method's own initialisation, if it has one (a network's start), else
        None (sweeps with ``[init] kind = "constant"`` then start at init_scale·1)."""
        return None


# ---------------------------------------------------------------------------
# the built-in methods
# ---------------------------------------------------------------------------
class GD(AbstractMethod):
    """Gradient descent with (coupled) weight decay: θ_{k+1} = θ_k − η(∇f(θ_k) + β θ_k).

    Its flow is ẋ = −∇f(x) − βx, the HAM flow at α = 0 (docs/theory/ham-flow.md#ham-flow).

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
        self.eta = _hyper("GD: eta", eta, gt=0.0)
        self.beta = _hyper("GD: beta", beta)

    def update(self, state, grad):
        return state - self.eta * grad - (self.eta * self.beta) * state

    def implicit_bias(self, state0):
        return Euclidean(), self.beta


class GDHyp(AbstractMethod):
    """GD + HYP* (``star=True``, the paper's Algorithm 1) or GD + HYP.

    See docs/theory/ham-step.md#ham-step and docs/theory/sign-choice.md#sign-choice.

        θ_{k+½} = θ_k − η g_k,   θ_{k+1} = θ_{k+½} ⊙ exp(−η(α sign(s) ⊙ g_k + β)),

    s = θ_{k+½} (HYP*) or θ_k (HYP); both follow the HAM flow
    θ̇ = −(1 + α|θ|)∇f(θ) − βθ to first order in η.

    Args:
        eta: step size η > 0.
        alpha: hyperbolic strength α (any finite real; α < 0 is exploratory, docs/theory/negative-alpha.md#negative-alpha).
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
        self.eta = _hyper("GDHyp: eta", eta, gt=0.0)
        self.alpha = _hyper("GDHyp: alpha", alpha)
        self.beta = _hyper("GDHyp: beta", beta)
        self.star = bool(star)

    def update(self, state, grad):
        return gd_hyp_step(state, grad, self.eta, self.alpha, self.beta, self.star)

    def implicit_bias(self, state0):
        return HAMGeometry(self.alpha), self.beta


class ExpStep(AbstractMethod):
    """The exponential step of Theorem 3.1: θ_{k+1} = θ_k ⊙ exp(−η(2 sign(θ_k) ⊙ ∇f(θ_k) + 4β)).

    First-order equivalent to one GD step on (m, w) for f(m⊙w) + β(‖m‖² + ‖w‖²) with the
    balanced start m₀ = sign(θ₀)√|θ₀|, w₀ = √|θ₀| (docs/theory/exp-step.md#exp-step); it
    never changes a sign and keeps zero coordinates at zero.  It is also the
    exponentiated-gradient (EG) step with EG-compatible weight decay (Cornford et al.,
    bioRxiv 2024.10.25.620272): EG(lr, wd), θ ← θ ⊙ exp(−lr(sign(θ) ⊙ ∇f + wd)), is
    ``ExpStep(lr/2, wd/2)`` on the same loss f (with torch's mean-squared loss 2f in place
    of hambias's ‖Ax − y‖²/(2d), ``ExpStep(lr, wd/4)``).

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
        self.eta = _hyper("ExpStep: eta", eta, gt=0.0)
        self.beta = _hyper("ExpStep: beta", beta)

    def update(self, state, grad):
        return exp_step(state, grad, self.eta, self.beta)


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


class EffectiveBias(eqx.Module):
    """Where a finished (m, w) gradient-descent run ended, as an implicit-bias problem.

    Attributes:
        geometry: ``PointwiseProduct(γ∞)`` with the run's final γ∞ = |m∞² − w∞²|/2.
        x0: the effective start x̃₀ = γ∞ sinh(φ₀ + (I − P)(φ∞ − φ₀)), P the orthogonal
            projection onto range(Aᵀ) and φ = arcsinh(x/γ) at the start and the end.
        gain: log(γ₀/γ∞) per coordinate, ≥ 0: how much the finite steps shrank γ.
    """

    geometry: PointwiseProduct
    x0: Array
    gain: Array


def mw_effective_bias(start, end, problem) -> EffectiveBias:
    """The exact discrete limit of GD on x = m ⊙ w (no weight decay) as a prediction.

    One GD step with step size η maps m ± w to (m ± w)(1 ∓ ηg), so with p = m + w,
    q = m − w the iterate is x = γ_k sinh φ_k with γ_k = |p_k q_k|/2 = γ₀ Π(1 − η²g_j²)
    and φ_k = log|p_k/q_k| = φ₀ − 2 Σ atanh(ηg_j) (Even et al. 2302.08982 study this
    time-varying potential and its "gain").  The increments 2 atanh(ηg_j) are not exactly
    in range(Aᵀ), so the limit is the γ∞ prediction from a start shifted by their
    off-range part:

        x∞ = predict_limit(PointwiseProduct(γ∞), problem, x̃₀),
        x̃₀ = γ∞ sinh(φ₀ + (I − P)(φ∞ − φ₀)).

    Measured on 10×30 at ηL = 0.3 … 0.6: this reproduces x∞ to 2e-15, γ∞ with the
    unshifted start to 2e-4 … 7e-4, and γ₀ (the flow's prediction) to 5e-3 … 9e-3.

    Args:
        start, end: the (m, w) pairs at the start and at the end of a converged run.
        problem: the :class:`~hambias.LinearRegression` it ran on.

    Returns:
        An :class:`EffectiveBias`.

    Raises:
        ValueError: a coordinate with m = ±w (γ = 0: no m⊙w potential).
    """
    (m0, w0), (m, w) = (tuple(np.asarray(v, dtype=np.float64) for v in pair)
                        for pair in (start, end))
    g0, g1 = 0.5 * np.abs(m0 * m0 - w0 * w0), 0.5 * np.abs(m * m - w * w)
    if np.any(g0 <= 0) or np.any(g1 <= 0):
        raise ValueError("the effective bias needs m² ≠ w² in every coordinate (γ > 0)")
    phi0, phi1 = np.arcsinh(m0 * w0 / g0), np.arcsinh(m * w / g1)
    shifted = phi0 + problem.row_space().project_out(phi1 - phi0)
    return EffectiveBias(PointwiseProduct(g1), g1 * np.sinh(shifted), np.log(g0 / g1))


class MWGradientDescent(AbstractMethod):
    """GD on the pointwise product x = m ⊙ w with weight decay.

    See docs/theory/mw-flow.md#mw-flow and docs/theory/exp-step.md#exp-step.

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
        self.eta = _hyper("MWGradientDescent: eta", eta, gt=0.0)
        self.weight_decay = _hyper("MWGradientDescent: weight_decay", weight_decay, ge=0.0)
        self.gamma = _hyper("MWGradientDescent: gamma", gamma, ge=0.0)

    def init(self, x0):
        if isinstance(x0, tuple):
            if len(x0) != 2:
                raise ValueError(
                    f"MWGradientDescent.init takes x0 or a tuple pair (m0, w0), got {len(x0)} items"
                )
            m0, w0 = check_vector("m0", x0[0]), check_vector("w0", x0[1])
            if m0.shape != w0.shape:
                raise ValueError(f"m0 and w0 must have equal shapes, got {m0.shape} and {w0.shape}")
            return m0, w0
        x0 = check_vector("x0", x0)
        return _mw_init(x0, self.gamma.astype(x0.dtype))

    def update(self, state, grad):
        m, w = state
        lam2 = 2.0 * self.eta * self.weight_decay
        return m - self.eta * (w * grad) - lam2 * m, w - self.eta * (m * grad) - lam2 * w

    def params(self, state):
        m, w = state
        return m * w

    def implicit_bias(self, state0):
        m0, w0 = state0
        gamma = 0.5 * jnp.abs(m0 * m0 - w0 * w0)
        if is_concrete(gamma, self.weight_decay) and (
                np.any(np.asarray(gamma) <= 0) or np.any(np.asarray(self.weight_decay) != 0)):
            return None  # γ = 0 (balanced) has no Legendre potential; decay makes γ_t shrink
        return PointwiseProduct(gamma), jnp.zeros((), gamma.dtype)

    def effective_bias(self, state0, state, problem) -> EffectiveBias:
        """The exact discrete limit of this run (λ = 0): see :func:`mw_effective_bias`."""
        if np.any(np.asarray(self.weight_decay) != 0):
            raise ValueError("the effective bias is derived for weight_decay = 0")
        return mw_effective_bias(state0, state, problem)


class MirrorDescent(AbstractMethod):
    """Mirror descent for any geometry: ∇R(x_{k+1}) = ∇R(x_k) − η ∇f(x_k).

    See docs/theory/setting.md#mirror-flow.

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
        self.eta = _hyper("MirrorDescent: eta", eta, gt=0.0)

    def init(self, x0):
        x0 = check_vector("x0", x0)
        if is_concrete(x0):
            self.geometry.check_domain(x0)
        return x0

    def update(self, state, grad):
        phi = self.geometry.mirror_map(state) - self.eta * grad
        return self.geometry.inverse_mirror_map(phi)

    def implicit_bias(self, state0):
        return self.geometry, jnp.zeros(())


class OptaxMethod(AbstractMethod):
    """Any optax ``GradientTransformation`` as a method: state (θ, opt_state).

        u_k, s_{k+1} = tx.update(∇f(θ_k), s_k, θ_k),   θ_{k+1} = optax.apply_updates(θ_k, u_k).

    Use it for :func:`hambias.optimizers.ham` on top of Adam or momentum.  A
    ``GradientTransformationExtraArgs`` (such as :func:`hambias.optimizers.ham_sam`)
    also receives ``grad_fn=problem.grad`` (it needs the problem, not only a gradient,
    so it runs in :func:`~hambias.run_iterates` but not in sweeps).  The transformation
    is static (its hyperparameters are not vmappable).

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
        x0 = check_vector("x0", x0)
        return x0, self.tx.init(x0)

    def _needs_problem(self) -> bool:
        import optax

        return isinstance(self.tx, optax.GradientTransformationExtraArgs)

    def update(self, state, grad):
        import optax

        if self._needs_problem():
            raise ValueError("this optax transformation needs the problem (grad_fn), not only "
                             "a gradient: use run_iterates, which calls step(state, problem)")
        x, opt_state = state
        updates, opt_state = self.tx.update(grad, opt_state, x)
        return optax.apply_updates(x, updates), opt_state

    def step(self, state, problem):
        import optax

        if not self._needs_problem():
            return self.update(state, problem.grad(state[0]))
        x, opt_state = state
        # e.g. hambias.optimizers.ham_sam, which needs a second gradient
        updates, opt_state = self.tx.update(problem.grad(x), opt_state, x, grad_fn=problem.grad)
        return optax.apply_updates(x, updates), opt_state

    def params(self, state):
        return state[0]


class Phased(AbstractMethod):
    """Methods one after the other: ``phases[i]`` runs for ``steps[i]`` steps, the last
    one for ever.  A schedule of hyperparameters, e.g. weight decay switched off after K
    steps: ``Phased((GDHyp(η, α, β), GDHyp(η, α, 0.0)), (K,))`` ("Mask in the Mirror"
    2408.09966, "Mirror, Mirror of the Flow" 2504.12883).

    The phases must share their state's structure (the same class, say); the state is
    (k, inner state).  Where the last phase's method ends from the state reached at the
    switch is its prediction: :meth:`implicit_bias_after` gives the geometry and β.

    Args:
        phases: the methods, in order (at least 2).
        steps: the step counts of all but the last phase (positive integers).

    Raises:
        ValueError: mismatched lengths or step counts that are not positive integers.

    >>> import jax.numpy as jnp
    >>> from hambias import LinearRegression
    >>> m = Phased((GD(0.5, beta=1.0), GD(0.5)), (1,))
    >>> p = LinearRegression(jnp.eye(1), jnp.array([1.0]))
    >>> s = m.step(m.step(m.init(jnp.array([2.0])), p), p)  # 2 → 2 − ½(1 + 2) → + ¼
    >>> float(m.params(s)[0])
    0.75
    """

    phases: tuple
    steps: tuple = eqx.field(static=True)

    def __init__(self, phases, steps):
        phases, steps = tuple(phases), tuple(steps)
        if len(phases) < 2 or len(steps) != len(phases) - 1:
            raise ValueError(f"Phased needs k >= 2 methods and k - 1 step counts, got "
                             f"{len(phases)} methods and {len(steps)} counts")
        for m in phases:
            if not isinstance(m, AbstractMethod):
                raise ValueError(f"Phased phases must be AbstractMethods, got {type(m).__name__}")
        for k in steps:
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
                raise ValueError(f"Phased step counts must be positive integers, got {k!r}")
        self.phases, self.steps = phases, tuple(int(k) for k in steps)

    def init(self, x0):
        return jnp.zeros((), jnp.int32), self.phases[0].init(x0)

    def params(self, state):
        return self.phases[0].params(state[1])

    def update(self, state, grad):
        k, inner = state
        ends = np.cumsum(self.steps)
        index = jnp.sum(k >= jnp.asarray(ends))  # the phase step k belongs to
        branches = [lambda s, g, m=m: m.update(s, g) for m in self.phases]
        return k + 1, jax.lax.switch(index, branches, inner, grad)

    def implicit_bias_after(self, state_at_switch):
        """(geometry, β) of the last phase from the state at its start: its prediction is
        ``predict_limit(geometry, problem, params(state_at_switch), beta=β)``."""
        return self.phases[-1].implicit_bias(state_at_switch)


# ---------------------------------------------------------------------------
# the registry (what a sweep's ``method`` axis can name)
# ---------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., AbstractMethod]] = {}


def register_method(name: str, factory: Callable[..., AbstractMethod], *,
                    replace: bool = False) -> None:
    """Make ``factory`` available under ``name`` (sweep configs, :func:`make_method`).

    ``factory`` is called with keyword arguments ``eta``, ``alpha``, ``beta`` (arrays:
    under a sweep it is vmapped over a batch of them) and ``model`` (the sweep's
    :func:`hambias.diagonal_network` or None), and returns an :class:`AbstractMethod`
    whose ``update`` needs only the gradient.  Accept ``**_`` for what you do not use.

    Raises:
        ValueError: an empty or non-string name, a factory that is not callable, or a
            name already registered (unless ``replace=True``).

    >>> register_method("my_gd", lambda *, eta, **_: GD(eta), replace=True)
    >>> type(make_method("my_gd", eta=0.1)).__name__
    'GD'
    """
    if not (isinstance(name, str) and name):
        raise ValueError(f"a method name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise ValueError(f"factory for {name!r} must be callable, got {type(factory).__name__}")
    if name in _REGISTRY and not replace:
        raise ValueError(f"method {name!r} is already registered; pass replace=True")
    _REGISTRY[name] = factory


def method_names() -> tuple[str, ...]:
    """The registered method names (built-in first)."""
    return tuple(_REGISTRY)


def method_factory(name: str) -> Callable[..., AbstractMethod]:
    """The factory registered as ``name``.

    Raises:
        ValueError: an unknown name (the message lists the registered ones).
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; registered: {list(_REGISTRY)} (add one "
                         f"with hambias.register_method)")
    return _REGISTRY[name]


def make_method(name: str, *, eta, alpha=0.0, beta=0.0, model=None) -> AbstractMethod:
    """The method registered as ``name`` with these hyperparameters.

    Raises:
        ValueError: an unknown name (the message lists the registered ones), or a factory
            that does not return an AbstractMethod.
    """
    method = method_factory(name)(eta=eta, alpha=alpha, beta=beta, model=model)
    if not isinstance(method, AbstractMethod):
        raise ValueError(f"the factory of {name!r} returned {type(method).__name__}, not an "
                         f"AbstractMethod")
    return method


def _mw_gd(*, eta, model, **_):
    if model is None:
        raise ValueError("method 'mw_gd' runs GD on a diagonal network: the sweep config "
                         "needs a [model] table (kind, scale, shape, loss)")
    return model.gd(eta)


register_method("hyp_star", lambda *, eta, alpha, beta, **_: GDHyp(eta, alpha, beta, True))
register_method("hyp", lambda *, eta, alpha, beta, **_: GDHyp(eta, alpha, beta, False))
register_method("gd", lambda *, eta, beta, **_: GD(eta, beta))
register_method("exp", lambda *, eta, beta, **_: ExpStep(eta, beta))
register_method("md_ham", lambda *, eta, alpha, **_: MirrorDescent(HAMGeometry(alpha), eta))
register_method("mw_gd", _mw_gd)
