"""Discrete iterates: GD, GD + HYP / HYP*, the exponential step, (m, w) GD, mirror descent.

THEORY.md §2, §3, §6, §9.  The pure one-step maps below are the kernels shared by
:func:`run_iterates`, the optax transformations and the batched sweeps.
"""

from __future__ import annotations

import jax.numpy as jnp

__all__ = ["hyperbolic_step", "gd_hyp_step", "exp_step"]


def hyperbolic_step(x_half, g, eta, alpha, beta=0.0, sign_source=None):
    """θ ← θ_{½} ⊙ exp(−η(α·sign(s) ⊙ g + β)), s = ``sign_source`` (default θ_{½}: HYP*).

    Pass ``sign_source=θ_k`` for HYP.  ``g`` is the raw gradient at θ_k.
    """
    s = x_half if sign_source is None else sign_source
    return x_half * jnp.exp(-eta * (alpha * jnp.sign(s) * g + beta))


def gd_hyp_step(x, g, eta, alpha, beta=0.0, star=True):
    """One GD + HYP* (``star=True``) or GD + HYP step from θ_k with gradient g_k = ∇f(θ_k)."""
    x_half = x - eta * g
    return hyperbolic_step(x_half, g, eta, alpha, beta, None if star else x)


def exp_step(x, g, eta, beta=0.0):
    """Theorem 3.1's multiplicative step θ ⊙ exp(−η(2 sign(θ) ⊙ g + 4β)) (THEORY.md §6)."""
    return x * jnp.exp(-eta * (2.0 * jnp.sign(x) * g + 4.0 * beta))
