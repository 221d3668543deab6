"""Symbolic derivations (sympy) that the numeric geometry code is tested against.

Everything here is derived, not typed in: a separable geometry is fixed by its
inverse metric g⁻¹ (docs/theory/setting.md#mirror-flow), and

    r'(x) = ∫₀ˣ dt / g⁻¹(t),   r(x) = ∫₀ˣ r'(t) dt          (r(0) = r'(0) = 0),
    (r')⁻¹(φ) solves r'(x) = φ,
    r*(φ) = sup_x φx − r(x) = φ·(r')⁻¹(φ) − r((r')⁻¹(φ))     (Legendre transform).

The integrals are taken on x > 0 and extended to ℝ evenly (r, r*, g⁻¹) or oddly
(r', (r')⁻¹), which is right for every geometry whose metric is even in x.  On
top of that this module derives the HAM-specific facts of docs/theory/ham-flow.md#ham-flow,
docs/theory/l2-l1.md#l2-l1 and docs/theory/explicit-bias.md#explicit-bias: the first-order
expansion of one GD + hyperbolic step, the α → 0 and α → ∞ limits of R_α, the
sign-anchored limit of the Bregman divergence, and the explicit regulariser H_α of the
β > 0 flow.

All functions are pure and cached (:func:`functools.lru_cache`); they return
sympy expressions in the real symbols exported below (``X``, ``X0``, ``PHI``,
``ALPHA``, ``BETA``, ``GAMMA``, ``ETA``, ``G``).  :func:`lambdify` turns an
expression into a numpy (or mpmath, for high-precision references) function.

This module is the only one that imports sympy; nothing at run time depends on it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import sympy as sp

__all__ = [
    "X",
    "X0",
    "PHI",
    "ALPHA",
    "BETA",
    "GAMMA",
    "ETA",
    "G",
    "SymbolicGeometry",
    "derive_geometry",
    "euclidean_geometry",
    "ham_geometry",
    "mw_geometry",
    "bregman",
    "ham_step_series",
    "ham_flow_vector_field",
    "ham_small_alpha_limit",
    "ham_small_alpha_expansion",
    "ham_large_alpha_limit",
    "ham_sign_anchored_limit",
    "ham_sign_anchored_closed_form",
    "ham_regulariser",
    "ham_regulariser_limits",
    "lambdify",
]

# Public symbols (real).  θ of docs/theory/setting.md#notation is written X here.
X = sp.Symbol("x", real=True)
X0 = sp.Symbol("x0", real=True)
PHI = sp.Symbol("phi", real=True)
ALPHA = sp.Symbol("alpha", real=True)
BETA = sp.Symbol("beta", real=True)
GAMMA = sp.Symbol("gamma", positive=True)
ETA = sp.Symbol("eta", real=True)
G = sp.Symbol("g", real=True)

# Private positive stand-ins used while integrating on the half-line.
_XP = sp.Symbol("x_p", positive=True)
_TP = sp.Symbol("t_p", positive=True)
_PHIP = sp.Symbol("phi_p", positive=True)
_X0P = sp.Symbol("x0_p", positive=True)
_AP = sp.Symbol("alpha_p", positive=True)
_SIGN = sp.Symbol("s", real=True)


@dataclasses.dataclass(frozen=True)
class SymbolicGeometry:
    """The five elementwise maps of a separable geometry, as sympy expressions.

    ``inverse_metric``, ``mirror_map`` and ``potential`` are expressions in
    :data:`X`; ``inverse_mirror_map`` and ``conjugate`` in :data:`PHI`;
    ``parameters`` lists the remaining free symbols (e.g. ``(ALPHA,)``).

    >>> geo = ham_geometry()
    >>> float(geo.numeric("mirror_map")(0.0, 2.0))
    0.0
    """

    inverse_metric: sp.Expr
    mirror_map: sp.Expr
    inverse_mirror_map: sp.Expr
    potential: sp.Expr
    conjugate: sp.Expr
    parameters: tuple[sp.Symbol, ...] = ()

    def numeric(self, name: str, *, modules: str = "numpy") -> Callable:
        """``f(z, *parameters)`` evaluating the field ``name`` (z = x or φ).

        Args:
            name: one of ``inverse_metric``, ``mirror_map``, ``inverse_mirror_map``,
                ``potential``, ``conjugate``.
            modules: ``"numpy"`` (vectorised) or ``"mpmath"`` (scalar, arbitrary precision).

        Raises:
            ValueError: unknown field name.
        """
        fields = ("inverse_metric", "mirror_map", "inverse_mirror_map", "potential", "conjugate")
        if name not in fields:
            raise ValueError(f"name must be one of {fields}, got {name!r}")
        var = PHI if name in ("inverse_mirror_map", "conjugate") else X
        return lambdify(getattr(self, name), (var, *self.parameters), modules=modules)


def _cancel_inverse_pairs(expr: sp.Expr) -> sp.Expr:
    """Rewrite f(f⁻¹(u)) → u for (asinh, sinh) and (log, exp), valid for real u."""
    pairs = ((sp.asinh, sp.sinh), (sp.log, sp.exp))
    for outer, inner in pairs:
        expr = expr.replace(
            lambda e, o=outer, i=inner: isinstance(e, o) and isinstance(e.args[0], i),
            lambda e: e.args[0].args[0],
        )
    return expr


def _even(expr_pos: sp.Expr, var: sp.Symbol, pos: sp.Symbol) -> sp.Expr:
    """Extend a function given on the positive half-line evenly: f(|var|)."""
    return expr_pos.subs(pos, sp.Abs(var))


def _odd(expr_pos: sp.Expr, var: sp.Symbol, pos: sp.Symbol) -> sp.Expr:
    """Extend a function given on the positive half-line oddly: sign(var) f(|var|)."""
    return sp.sign(var) * expr_pos.subs(pos, sp.Abs(var))


@functools.lru_cache(maxsize=None)
def _derive_half_line(inverse_metric_pos: sp.Expr, parameters: tuple) -> tuple:
    """(r', r, (r')⁻¹, r*) on x > 0, φ > 0 from g⁻¹ given in the symbol ``_XP``."""
    integrand = 1 / inverse_metric_pos.subs(_XP, _TP)
    rp = sp.simplify(sp.integrate(integrand, (_TP, 0, _XP)))
    r = sp.simplify(sp.integrate(rp.subs(_XP, _TP), (_TP, 0, _XP)))
    solutions = sp.solve(sp.Eq(rp.subs(_XP, _TP), _PHIP), _TP)
    if len(solutions) != 1:
        raise ValueError(
            f"cannot invert the mirror map {rp} uniquely on x > 0: sympy found {solutions}"
        )
    inv = sp.simplify(solutions[0])
    conj = _PHIP * inv - r.subs(_XP, inv)
    conj = sp.simplify(_cancel_inverse_pairs(sp.expand(conj)))
    return rp, r, inv, conj


def derive_geometry(
    inverse_metric: sp.Expr, parameters: tuple[sp.Symbol, ...] = ()
) -> SymbolicGeometry:
    """Derive potential, mirror map, inverse map and conjugate from an even inverse metric.

        r'(x) = ∫₀ˣ dt/g⁻¹(t),  r(x) = ∫₀ˣ r'(t) dt,  r*(φ) = φ·(r')⁻¹(φ) − r((r')⁻¹(φ))

    computed on x > 0 and extended evenly (r, r*) and oddly (r', (r')⁻¹)
    (docs/theory/setting.md#setting, docs/theory/potential.md#potential,
    docs/theory/mw-flow.md#mw-flow).

    Args:
        inverse_metric: g⁻¹ as an expression in :data:`X`, even in X and positive
            for X > 0 (positive parameters are assumed while integrating).
        parameters: the other free symbols, in the order :meth:`SymbolicGeometry.numeric`
            takes them.

    Returns:
        A :class:`SymbolicGeometry`.

    Raises:
        ValueError: sympy cannot invert the mirror map uniquely.

    >>> derive_geometry(sp.Integer(1)).potential
    x**2/2
    """
    # Integrate with positive stand-ins for x and for real parameters (α > 0 here;
    # the closed forms are analytic in α, which is how α < 0 is covered).
    pos = {p: sp.Symbol(f"{p.name}_p", positive=True) for p in parameters if not p.is_positive}
    back = {v: k for k, v in pos.items()}
    ginv_pos = inverse_metric.subs(X, _XP).subs(pos)
    rp, r, inv, conj = _derive_half_line(ginv_pos, tuple(pos.values()))
    return SymbolicGeometry(
        inverse_metric=inverse_metric,
        mirror_map=_odd(rp, X, _XP).subs(back),
        inverse_mirror_map=_odd(inv, PHI, _PHIP).subs(back),
        potential=_even(r, X, _XP).subs(back),
        conjugate=_even(conj, PHI, _PHIP).subs(back),
        parameters=tuple(parameters),
    )


@functools.lru_cache(maxsize=None)
def euclidean_geometry() -> SymbolicGeometry:
    """g⁻¹ = 1: r = x²/2, r' = x, r* = φ²/2.

    >>> euclidean_geometry().conjugate
    phi**2/2
    """
    return derive_geometry(sp.Integer(1))


@functools.lru_cache(maxsize=None)
def ham_geometry() -> SymbolicGeometry:
    """The HAM geometry derived from g⁻¹ = 1 + α|x| (docs/theory/potential.md#potential).

        R_α = [(1 + α|x|) log(1 + α|x|) − α|x|]/α²,  R_α' = sign(x) log(1 + α|x|)/α,
        (R_α')⁻¹(φ) = sign(φ)(e^{α|φ|} − 1)/α,        R_α*(φ) = (e^{α|φ|} − 1 − α|φ|)/α².

    Derived for α > 0; the expressions are analytic in α, so they also hold for
    α < 0 inside the box |x| < 1/|α| (docs/theory/negative-alpha.md#negative-alpha).  Not
    defined at α = 0 (see :func:`ham_small_alpha_limit`).

    >>> import numpy as np
    >>> f = ham_geometry().numeric("inverse_mirror_map")
    >>> bool(np.isclose(f(np.log(3.0) / 2.0, 2.0), 1.0))
    True
    """
    return derive_geometry(1 + ALPHA * sp.Abs(X), (ALPHA,))


@functools.lru_cache(maxsize=None)
def mw_geometry() -> SymbolicGeometry:
    """The m⊙w geometry (paper normalisation) from g⁻¹ = √(x² + γ²).

    See docs/theory/mw-flow.md#mw-potential.

        ψ_γ = x asinh(x/γ) − √(x² + γ²) + γ,  ψ_γ' = asinh(x/γ),
        (ψ_γ')⁻¹(φ) = γ sinh φ,                ψ_γ*(φ) = γ(cosh φ − 1).

    >>> mw_geometry().conjugate
    gamma*(cosh(Abs(phi)) - 1)
    """
    return derive_geometry(sp.sqrt(X**2 + GAMMA**2), (GAMMA,))


def bregman(potential: sp.Expr) -> sp.Expr:
    """D(x, x₀) = r(x) − r(x₀) − r'(x₀)(x − x₀) for an expression r in :data:`X`.

    Args:
        potential: r as an expression in :data:`X`.

    Returns:
        An expression in :data:`X` and :data:`X0`.

    >>> bregman(X**2 / 2).expand()
    x**2/2 - x*x0 + x0**2/2
    """
    rp = sp.diff(potential, X)
    return potential - potential.subs(X, X0) - rp.subs(X, X0) * (X - X0)


@functools.lru_cache(maxsize=None)
def ham_step_series(order: int = 1) -> sp.Expr:
    """Series in η of one GD + hyperbolic step, θ ↦ (θ − ηg)·exp(−η(α s g + β)).

    See docs/theory/ham-flow.md#flow-derivation.

    The sign s is sign(θ) (HYP) or sign(θ − ηg) (HYP*); for θ ≠ 0 both equal
    sign(θ) once η < |θ/g|, so the series is the same.  To first order

        θ − η[(1 + α|θ|) g + βθ] + O(η²).

    Args:
        order: keep the terms up to η**order (≥ 1).

    Returns:
        The truncated series in :data:`X` (θ), :data:`G`, :data:`ETA`, :data:`ALPHA`,
        :data:`BETA`, with s·θ written |θ| and the remaining s as sign(θ).

    Raises:
        ValueError: order < 1.

    >>> ham_step_series(1)
    eta*(-alpha*g*Abs(x) - beta*x - g) + x
    """
    if not (isinstance(order, int) and order >= 1):
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    step = (X - ETA * G) * sp.exp(-ETA * (ALPHA * _SIGN * G + BETA))
    series = sp.series(step, ETA, 0, order + 1).removeO()
    series = sp.expand(series).subs(_SIGN * X, sp.Abs(X)).subs(_SIGN, sp.sign(X))
    return sp.collect(sp.expand(series), ETA)


@functools.lru_cache(maxsize=None)
def ham_flow_vector_field() -> sp.Expr:
    """The HAM flow dθ/dt = −(1 + α|θ|) g − βθ, read off as the η-coefficient of the step.

    >>> ham_flow_vector_field()
    -alpha*g*Abs(x) - beta*x - g
    """
    return sp.expand(ham_step_series(1).coeff(ETA, 1))


@functools.lru_cache(maxsize=None)
def ham_small_alpha_limit() -> sp.Expr:
    """lim_{α→0} R_α(x) = x²/2 (docs/theory/l2-l1.md#l2-l1).

    >>> ham_small_alpha_limit()
    x**2/2
    """
    r = ham_geometry().potential.subs({X: _XP, ALPHA: _AP})
    return sp.simplify(_even(sp.limit(r, _AP, 0), X, _XP))


@functools.lru_cache(maxsize=None)
def ham_small_alpha_expansion(order: int = 2) -> sp.Expr:
    """Taylor expansion of R_α in α up to α**(order−1): x²/2 − α|x|³/6 + ….

    See docs/theory/l2-l1.md#small-alpha.

    >>> ham_small_alpha_expansion(2)
    -alpha*x**2*Abs(x)/6 + x**2/2
    """
    r = ham_geometry().potential.subs({X: _XP, ALPHA: _AP})
    ser = sp.series(r, _AP, 0, order).removeO()
    return sp.expand(_even(ser, X, _XP).subs(_AP, ALPHA))


@functools.lru_cache(maxsize=None)
def ham_large_alpha_limit() -> sp.Expr:
    """lim_{α→∞} (α/log α) R_α(x) = |x| (docs/theory/l2-l1.md#l2-l1).

    >>> ham_large_alpha_limit()
    Abs(x)
    """
    r = ham_geometry().potential.subs({X: _XP, ALPHA: _AP})
    return _even(sp.limit(_AP / sp.log(_AP) * r, _AP, sp.oo), X, _XP)


@functools.lru_cache(maxsize=None)
def ham_sign_anchored_limit() -> sp.Expr:
    """lim_{α→∞} (α/log α) D_{R_α}(x, x₀), computed case by case on the signs.

    See docs/theory/l2-l1.md#sign-anchoring.

    Returns a ``Piecewise`` in :data:`X` and :data:`X0`, one branch per sign of
    x₀ (x₀ > 0, x₀ < 0, x₀ = 0) and of x (≥ 0, < 0), each a sympy limit of the
    exact divergence.  It equals :func:`ham_sign_anchored_closed_form`,
    |x| − sign(x₀)·x.

    >>> ham_sign_anchored_limit().subs({X: -2, X0: 1})
    4
    """
    geo = ham_geometry()
    r = geo.potential.subs(ALPHA, _AP)
    scale = _AP / sp.log(_AP)
    branches = []
    for sx0, cond0 in ((1, X0 > 0), (-1, X0 < 0), (0, sp.Eq(X0, 0))):
        for sx, cond in ((1, X >= 0), (-1, X < 0)):
            div = bregman(r).subs({X: sx * _XP, X0: sx0 * _X0P})
            lim = sp.limit(sp.simplify(scale * div), _AP, sp.oo)
            branches.append((lim.subs({_XP: sp.Abs(X), _X0P: sp.Abs(X0)}), cond0 & cond))
    return sp.Piecewise(*branches)


def ham_sign_anchored_closed_form() -> sp.Expr:
    """|x| − sign(x₀)·x, the closed form of :func:`ham_sign_anchored_limit`.

    >>> ham_sign_anchored_closed_form()
    -x*sign(x0) + Abs(x)
    """
    return sp.Abs(X) - sp.sign(X0) * X


@functools.lru_cache(maxsize=None)
def ham_regulariser() -> sp.Expr:
    """H_α of the β > 0 flow, solving (1 + α|θ|) H_α'(θ) = θ with H_α(0) = 0.

    See docs/theory/explicit-bias.md#h-alpha.

        H_α(θ) = [α|θ| − log(1 + α|θ|)]/α²

    >>> ham_regulariser()
    (alpha*Abs(x) - log(alpha*Abs(x) + 1))/alpha**2
    """
    hp = _TP / (1 + _AP * _TP)
    h = sp.simplify(sp.integrate(hp, (_TP, 0, _XP)))
    return _even(h, X, _XP).subs(_AP, ALPHA)


@functools.lru_cache(maxsize=None)
def ham_regulariser_limits() -> tuple[sp.Expr, sp.Expr]:
    """(lim_{α→0} H_α, lim_{α→∞} α H_α) = (θ²/2, |θ|): ridge and LASSO.

    See docs/theory/explicit-bias.md#beta-limits.

    >>> ham_regulariser_limits()
    (x**2/2, Abs(x))
    """
    h = ham_regulariser().subs({X: _XP, ALPHA: _AP})
    small = sp.simplify(_even(sp.limit(h, _AP, 0), X, _XP))
    large = _even(sp.limit(_AP * h, _AP, sp.oo), X, _XP)
    return small, large


def lambdify(expr: sp.Expr, args, *, modules: str = "numpy") -> Callable:
    """Turn ``expr`` into a function of ``args`` (a symbol or a sequence of symbols).

    Args:
        expr: a sympy expression.
        args: the symbols, in call order.
        modules: ``"numpy"`` (vectorised, float64) or ``"mpmath"`` (scalar, use
            ``mpmath.mp.dps`` for the precision) .

    Returns:
        A plain Python callable.

    Raises:
        ValueError: ``modules`` is not ``"numpy"`` or ``"mpmath"``, or ``expr``
            has free symbols that are not in ``args``.

    >>> lambdify(X**2 / 2, X)(3.0)
    4.5
    """
    if modules not in ("numpy", "mpmath"):
        raise ValueError(f"modules must be 'numpy' or 'mpmath', got {modules!r}")
    args = (args,) if isinstance(args, sp.Symbol) else tuple(args)
    missing = expr.free_symbols - set(args)
    if missing:
        raise ValueError(
            f"expression has free symbols {sorted(map(str, missing))} not among the "
            f"arguments {[str(a) for a in args]}"
        )
    return sp.lambdify(args, expr, modules=modules)
