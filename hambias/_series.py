"""The HAM closed forms as ratios that stay accurate at 0, for numpy and jax.numpy alike.

Each function takes the array namespace ``xp`` (``numpy`` or ``jax.numpy``) and
evaluates one ratio elementwise (docs/theory/potential.md#potential,
docs/theory/explicit-bias.md#explicit-bias):

    ratio_log1p(u)     = log1p(u)/u                       (1 at u = 0)
    ratio_expm1(v)     = expm1(v)/v                       (1 at v = 0)
    potential_ratio(u) = ((1 + u) log1p(u) − u)/u²        (½ at u = 0)
    conjugate_ratio(v) = (expm1(v) − v)/v²                (½ at v = 0)
    h_ratio(u)         = (u − log1p(u))/u²                (½ at u = 0)

so that, with u = α|x| and v = α|φ|, ∇R_α(x) = x·ratio_log1p(u),
(∇R_α)⁻¹(φ) = φ·ratio_expm1(v), R_α(x) = Σ x²·potential_ratio(u),
R_α*(φ) = Σ φ²·conjugate_ratio(v) and H_α(θ) = Σ θ²·h_ratio(u).

Below |u| = ``SERIES_CUTOFF`` the closed forms lose digits to cancellation (error
~ eps/|u|) and a Taylor polynomial is used instead (truncation error ≤ |u|⁸/8 <
2e-17 there).  The closed form is evaluated at a safe substitute (1) where the
series applies, so that under jax neither branch produces a NaN gradient (the
"double where" trick).  The numpy path is warning-free: overflow (ratio_expm1,
conjugate_ratio: +inf) and arguments outside the domain (u ≤ −1: NaN or ±inf)
are returned silently; callers check domains themselves.

>>> import numpy as np
>>> float(ratio_log1p(np.array(0.0), np))
1.0
>>> bool(np.isclose(potential_ratio(np.array(1.0), np), 2 * np.log(2) - 1))
True
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

__all__ = [
    "SERIES_CUTOFF",
    "ratio_log1p",
    "ratio_expm1",
    "potential_ratio",
    "conjugate_ratio",
    "h_ratio",
]

# Below this |u| the closed forms cancel (error ~ eps/|u| ≤ 2e-14) and the Taylor
# polynomials below (degree ≥ 7, truncation ≤ |u|⁸/8 ≤ 2e-17) are used.
SERIES_CUTOFF = 1e-2

# Taylor coefficients, lowest degree first.
_LOG1P = tuple((-1.0) ** k / (k + 1) for k in range(8))  # log1p(u)/u
_EXPM1 = tuple(1.0 / math.factorial(k + 1) for k in range(8))  # expm1(v)/v
_POTENTIAL = tuple((-1.0) ** k / ((k + 2) * (k + 1)) for k in range(10))
_CONJUGATE = tuple(1.0 / math.factorial(k + 2) for k in range(9))
_H = tuple((-1.0) ** k / (k + 2) for k in range(10))


def _horner(coeffs, u):
    acc = coeffs[-1] + 0.0 * u
    for c in coeffs[-2::-1]:
        acc = acc * u + c
    return acc


def _quiet(xp):
    """numpy: silence floating-point warnings (out-of-range values are returned as inf/NaN)."""
    return np.errstate(all="ignore") if xp is np else contextlib.nullcontext()


def _ratio(u, xp, coeffs, closed):
    u = xp.asarray(u)
    with _quiet(xp):
        small = xp.abs(u) < SERIES_CUTOFF
        safe = xp.where(small, 1.0, u)
        return xp.where(small, _horner(coeffs, u), closed(safe))


def ratio_log1p(u, xp):
    """log1p(u)/u, elementwise; 1 at u = 0.  ``xp``: numpy or jax.numpy."""
    return _ratio(u, xp, _LOG1P, lambda s: xp.log1p(s) / s)


def ratio_expm1(v, xp):
    """expm1(v)/v, elementwise; 1 at v = 0, +inf on overflow."""
    return _ratio(v, xp, _EXPM1, lambda s: xp.expm1(s) / s)


def potential_ratio(u, xp):
    """((1 + u) log1p(u) − u)/u² = Σ_{k≥2} (−u)^{k−2}/(k(k−1)); ½ at u = 0."""
    return _ratio(u, xp, _POTENTIAL, lambda s: ((1.0 + s) * xp.log1p(s) - s) / (s * s))


def conjugate_ratio(v, xp):
    """(expm1(v) − v)/v² = Σ_{j≥0} v^j/(j + 2)!; ½ at v = 0, +inf on overflow."""
    return _ratio(v, xp, _CONJUGATE, lambda s: (xp.expm1(s) - s) / (s * s))


def h_ratio(u, xp):
    """(u − log1p(u))/u² = Σ_{k≥2} (−u)^{k−2}/k; ½ at u = 0."""
    return _ratio(u, xp, _H, lambda s: (s - xp.log1p(s)) / (s * s))
