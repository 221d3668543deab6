"""HAM as an optax ``GradientTransformation`` on top of any base optimiser.

See docs/theory/ham-step.md#ham-step.

One HAM iteration with raw gradient g_k = ∇f(θ_k) and step size η:

    θ_{k+½} = θ_k + base_update(g_k),
    θ_{k+1} = θ_{k+½} ⊙ exp(−η(α sign(s) ⊙ g_k + β)),   s = θ_{k+½} (HYP*) or θ_k (HYP).

The hyperbolic step always uses the raw gradient g_k, also when the base optimiser is
momentum or Adam (as in the paper).  The transformation returns the update
θ_{k+1} − θ_k, so ``optax.apply_updates`` produces θ_{k+1}; it therefore needs
``params`` in ``update``.  Three flavours:

* :func:`ham` — the algorithm as written in the paper;
* :func:`ham_wrapper_faithful` — the choices of the official PyTorch wrapper
  (exponent clamp, only ndim ≥ 2 tensors, exact zeros kept, norm clip, its defaults);
* :func:`ham_sam` — HAM on sharpness-aware minimisation (SAM).

>>> import jax.numpy as jnp, optax
>>> tx = ham(0.1, alpha=1.0)
>>> params = jnp.array([1.0, -2.0])
>>> state = tx.init(params)
>>> updates, state = tx.update(jnp.array([0.5, 0.5]), state, params)
>>> optax.apply_updates(params, updates).shape
(2,)
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._validate import is_concrete as _is_concrete
from .methods import hyperbolic_step

__all__ = ["HamState", "ham", "ham_wrapper_faithful", "ham_sam"]


class HamState(NamedTuple):
    """State of the HAM transformations: a step counter (for schedules) and the base state."""

    count: jax.Array
    base_state: Any


def _check_scalar(name: str, value, *, minimum: float | None = None) -> None:
    if callable(value) or not _is_concrete(value):
        return
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 0 or not np.isfinite(arr):
        raise ValueError(f"{name} must be a finite scalar, got {value!r}")
    if minimum is not None and not arr >= minimum:
        raise ValueError(f"{name} must be >= {minimum:g}, got {value!r}")


def _eta(learning_rate, count):
    return learning_rate(count) if callable(learning_rate) else learning_rate


def _require_params(params, name: str) -> None:
    if params is None:
        raise ValueError(
            f"{name}.update needs the current parameters: call tx.update(grads, state, params) "
            f"(the hyperbolic step multiplies θ_(k+1/2) = θ_k + base update), got params=None"
        )


def _validate(learning_rate, alpha, beta, base) -> optax.GradientTransformation:
    _check_scalar("learning_rate", learning_rate, minimum=0.0)
    _check_scalar("alpha", alpha)
    _check_scalar("beta", beta)
    if base is None:
        return optax.sgd(learning_rate)
    if not (hasattr(base, "init") and hasattr(base, "update")):
        raise ValueError(f"base must be an optax GradientTransformation, got {type(base).__name__}")
    return base


def _ham_update(leaf_fn, base, learning_rate, name, grads_for_base, raw_grads, state, params):
    """Shared body: base step with ``grads_for_base``, hyperbolic step leaf by leaf."""
    _require_params(params, name)
    base_updates, base_state = base.update(grads_for_base, state.base_state, params)
    eta = _eta(learning_rate, state.count)
    updates = jax.tree_util.tree_map(
        lambda p, u, g: leaf_fn(p, u, g, eta), params, base_updates, raw_grads
    )
    return updates, HamState(optax.safe_int32_increment(state.count), base_state)


def _init(base):
    def init_fn(params):
        return HamState(jnp.zeros([], jnp.int32), base.init(params))

    return init_fn


def ham(
    learning_rate: float | Callable,
    alpha: float,
    beta: float = 0.0,
    *,
    base: optax.GradientTransformation | None = None,
    star: bool = True,
) -> optax.GradientTransformation:
    """HAM (GD + HYP* by default) as an optax transformation (paper Algorithm 1).

    See docs/theory/ham-step.md#ham-step.

        θ_{k+½} = θ_k + base_update(g_k);  θ_{k+1} = θ_{k+½} ⊙ exp(−η(α sign(θ_{k+½}) ⊙ g_k + β))

    returned as the update θ_{k+1} − θ_k.  With ``base=None`` the base is
    ``optax.sgd(learning_rate)`` and the iterates are those of
    :class:`hambias.GDHyp` (up to one rounding per step from forming
    θ_{k+1} − θ_k).  The hyperbolic step uses the raw gradient g_k and step size η =
    ``learning_rate`` (at the current count if it is a schedule), whatever the base.

    Args:
        learning_rate: η > 0, a scalar or an optax schedule ``count -> η``.
        alpha: hyperbolic strength α.
        beta: decay β (the paper tunes 1e-3 … 16e-3).
        base: base optimiser (default ``optax.sgd(learning_rate)``); e.g. ``optax.adam(1e-3)``.
        star: sign of θ_{k+½} (HYP*, default) or of θ_k (HYP).

    Returns:
        An ``optax.GradientTransformation`` with state :class:`HamState`.

    Raises:
        ValueError: non-finite or negative hyperparameters, a base that is not a
            transformation, or (in ``update``) ``params=None``.

    >>> import jax.numpy as jnp, optax
    >>> tx = ham(0.1, 2.0, base=optax.adam(0.01))
    >>> p = {"w": jnp.ones((2, 2))}
    >>> u, s = tx.update({"w": jnp.ones((2, 2))}, tx.init(p), p)
    >>> bool((optax.apply_updates(p, u)["w"] < 1).all())
    True
    """
    base = _validate(learning_rate, alpha, beta, base)

    def leaf(p, u, g, eta):
        x_half = jnp.asarray(p + u).astype(jnp.asarray(p).dtype)
        x_new = hyperbolic_step(x_half, g, eta, alpha, beta, None if star else p)
        return (x_new - p).astype(jnp.asarray(p).dtype)

    def update_fn(updates, state, params=None):
        return _ham_update(leaf, base, learning_rate, "ham", updates, updates, state, params)

    return optax.GradientTransformation(_init(base), update_fn)


def ham_wrapper_faithful(
    learning_rate: float | Callable,
    alpha: float = 200.0,
    beta: float = 1e-3,
    *,
    base: optax.GradientTransformation | None = None,
    star: bool = True,
    clamp: float = 5.0,
    max_norm: float | None = 1000.0,
    min_ndim: int = 2,
) -> optax.GradientTransformation:
    """HAM with the choices of the official PyTorch wrapper, for reproduction.

    See docs/theory/ham-step.md#wrapper-faithful.

    For every parameter tensor with ``ndim >= min_ndim`` (weight matrices, conv kernels):

        e = clip(−η(α sign(θ_{k+½}) ⊙ g_k + β), −clamp, clamp),
        θ_{k+1} = θ_{k+½} ⊙ exp(e), except θ_{k+1,i} = 0 where θ_{k,i} = 0 exactly,
        θ_{k+1} ← θ_{k+1} · min(1, max_norm / ‖θ_{k+1}‖)   (per-tensor Frobenius norm);

    tensors with ``ndim < min_ndim`` (biases, norm scales) get the base step only.
    Zeros are kept for the whole update (base step included), so pruned weights stay
    pruned.  Defaults α = 200, β = 1e-3, clamp 5, norm 1000 are the wrapper's.  Where
    the wrapper applies the norm clip exactly (after the step, per tensor) is our
    reading of it **[uncertain]**; ``max_norm=None`` switches it off.

    Args:
        learning_rate: η > 0 (scalar or schedule).
        alpha, beta: as in :func:`ham` (defaults 200 and 1e-3).
        base: base optimiser (default ``optax.sgd(learning_rate)``).
        star: HYP* (default) or HYP.
        clamp: bound on |exponent| (default 5; ``inf`` disables it).
        max_norm: per-tensor norm bound (default 1000; ``None`` disables it).
        min_ndim: smallest ndim that gets the hyperbolic step (default 2).

    Returns:
        An ``optax.GradientTransformation`` with state :class:`HamState`.

    Raises:
        ValueError: as :func:`ham`, plus a non-positive ``clamp`` / ``max_norm``.

    >>> import jax.numpy as jnp
    >>> tx = ham_wrapper_faithful(0.1)
    >>> p = {"w": jnp.array([[0.0, 1.0]]), "b": jnp.array([1.0])}
    >>> u, _ = tx.update({"w": jnp.ones((1, 2)), "b": jnp.ones(1)}, tx.init(p), p)
    >>> float(u["w"][0, 0]), round(float(u["b"][0]), 6)
    (0.0, -0.1)
    """
    base = _validate(learning_rate, alpha, beta, base)
    if not clamp > 0:
        raise ValueError(f"clamp must be > 0, got {clamp!r}")
    if max_norm is not None and not (np.isfinite(max_norm) and max_norm > 0):
        raise ValueError(f"max_norm must be a finite number > 0 or None, got {max_norm!r}")
    if not isinstance(min_ndim, (int, np.integer)) or min_ndim < 0:
        raise ValueError(f"min_ndim must be an integer >= 0, got {min_ndim!r}")

    def leaf(p, u, g, eta):
        p = jnp.asarray(p)
        if p.ndim < min_ndim:  # static: biases and scales get the base step only
            return u
        x_half = jnp.asarray(p + u).astype(p.dtype)
        s = x_half if star else p
        expo = jnp.clip(-eta * (alpha * jnp.sign(s) * g + beta), -clamp, clamp)
        x_new = jnp.where(p == 0, jnp.zeros_like(x_half), x_half * jnp.exp(expo))
        if max_norm is not None:
            norm = jnp.linalg.norm(x_new.reshape(-1))
            x_new = x_new * jnp.minimum(1.0, max_norm / jnp.where(norm > 0, norm, 1.0))
        return (x_new - p).astype(p.dtype)

    def update_fn(updates, state, params=None):
        return _ham_update(
            leaf, base, learning_rate, "ham_wrapper_faithful", updates, updates, state, params
        )

    return optax.GradientTransformation(_init(base), update_fn)


def ham_sam(
    learning_rate: float | Callable,
    alpha: float,
    beta: float = 0.0,
    *,
    rho: float = 0.05,
    base: optax.GradientTransformation | None = None,
    star: bool = True,
    hyperbolic_gradient: str = "sam",
) -> optax.GradientTransformationExtraArgs:
    """HAM on sharpness-aware minimisation (SAM); the paper reports that they compose.

        ĝ_k = ∇f(θ_k + ρ g_k/‖g_k‖),   θ_{k+½} = θ_k + base_update(ĝ_k),
        θ_{k+1} = θ_{k+½} ⊙ exp(−η(α sign(θ_{k+½}) ⊙ h_k + β)),

    with ‖·‖ the global norm over all parameters.  Which gradient h_k the hyperbolic
    step uses: by default (``hyperbolic_gradient="sam"``) the SAM gradient ĝ_k, which
    is what a HAM wrapper placed around a SAM optimiser sees (after SAM's second
    backward pass the stored gradient is ĝ_k); ``"raw"`` uses g_k = ∇f(θ_k) instead.
    ρ = 0 reduces to :func:`ham` exactly.

    The second gradient needs the loss: pass ``grad_fn`` (θ ↦ ∇f(θ), same pytree
    structure) to ``update`` as a keyword, e.g.
    ``tx.update(grads, state, params, grad_fn=jax.grad(loss))``.
    :class:`hambias.iterates.OptaxMethod` passes ``problem.grad`` automatically.

    Args:
        learning_rate: η > 0 (scalar or schedule).
        alpha, beta: as in :func:`ham`.
        rho: SAM radius ρ ≥ 0 (default 0.05).
        base: base optimiser (default ``optax.sgd(learning_rate)``).
        star: HYP* (default) or HYP.
        hyperbolic_gradient: ``"sam"`` (default) or ``"raw"``.

    Returns:
        An ``optax.GradientTransformationExtraArgs`` with state :class:`HamState`.

    Raises:
        ValueError: as :func:`ham`, a negative ρ, an unknown ``hyperbolic_gradient``,
            or (in ``update``) a missing ``params`` or ``grad_fn``.

    >>> import jax, jax.numpy as jnp
    >>> loss = lambda p: jnp.sum((p - 1.0) ** 2)
    >>> tx = ham_sam(0.1, 1.0, rho=0.01)
    >>> p = jnp.zeros(2)
    >>> u, _ = tx.update(jax.grad(loss)(p), tx.init(p), p, grad_fn=jax.grad(loss))
    >>> bool(loss(p + u) < loss(p))
    True
    """
    base = _validate(learning_rate, alpha, beta, base)
    _check_scalar("rho", rho, minimum=0.0)
    if hyperbolic_gradient not in ("sam", "raw"):
        raise ValueError(f"hyperbolic_gradient must be 'sam' or 'raw', got {hyperbolic_gradient!r}")

    def leaf(p, u, g, eta):
        x_half = jnp.asarray(p + u).astype(jnp.asarray(p).dtype)
        x_new = hyperbolic_step(x_half, g, eta, alpha, beta, None if star else p)
        return (x_new - p).astype(jnp.asarray(p).dtype)

    def update_fn(updates, state, params=None, *, grad_fn=None, **extra_args):
        del extra_args
        _require_params(params, "ham_sam")
        if grad_fn is None:
            raise ValueError(
                "ham_sam.update needs grad_fn=θ ↦ ∇f(θ) (a keyword argument) to evaluate the "
                "gradient at the SAM-perturbed point θ + ρ g/‖g‖; got grad_fn=None"
            )
        norm = optax.tree.norm(updates)
        scale = jnp.where(norm > 0, rho / jnp.where(norm > 0, norm, 1.0), 0.0)
        perturbed = jax.tree_util.tree_map(lambda p, g: p + scale * g, params, updates)
        g_sam = grad_fn(perturbed)
        h = g_sam if hyperbolic_gradient == "sam" else updates
        return _ham_update(leaf, base, learning_rate, "ham_sam", g_sam, h, state, params)

    return optax.GradientTransformationExtraArgs(_init(base), update_fn)
