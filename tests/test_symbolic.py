"""The sympy derivations: identities, closed forms of the theory pages, limits, the step series.

Theory: docs/theory/index.md#theory.

Symbolic identities are checked with ``sympy.simplify`` on each sign of x (through
positive stand-in symbols); where sympy cannot simplify, the same identity is
evaluated at random points in 50-digit mpmath (``_vanishes``).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from hambias import symbolic as sym
from hambias.geometry import HAMGeometry
from hambias.methods import gd_hyp_step

X, X0, PHI, A, B, GAM, ETA, G = (
    sym.X, sym.X0, sym.PHI, sym.ALPHA, sym.BETA, sym.GAMMA, sym.ETA, sym.G
)
P = sp.Symbol("p", positive=True)  # |x|
Q = sp.Symbol("q", positive=True)  # a positive parameter value

# 50 digits leave > 30 after the worst cancellation in these closed forms (α|x| ≥ 1e-6 here).
MP_DPS = 50
# Relative size of an identity's residual counted as zero at 50 digits.
MP_ZERO = mpmath.mpf(10) ** -30
# The one-step error slopes of docs/theory/ham-flow.md#flow-order: slope 2 (first-order
# series), 3 (second order).
SLOPE_TOL = 0.1
# Sign-anchored limit: (α/log α) D − (|x| − sign(x₀) x) = O(1/log α); C·log α bounded by this.
SIGN_ANCHOR_CONST = 10.0


def _on_both_signs(expr):
    """expr with x = +p and x = −p (p > 0), α replaced by a positive symbol."""
    return [expr.subs(A, Q).subs(X, s * P) for s in (1, -1)]


def _is_zero(expr) -> bool:
    """Identically zero on both signs of x: sympy.simplify, else 50-digit evaluation.

    The fallback evaluates at 20 random points (p, q, γ) = 10^U(−2, 2) each; a
    nonzero analytic expression vanishes there only by accident.
    """
    rng = np.random.default_rng(123)
    for e in _on_both_signs(expr):
        e = sp.simplify(e)
        if e == 0:
            continue
        free = sorted(e.free_symbols, key=str)
        if not free:
            return False
        pts = [tuple(10.0 ** rng.uniform(-2, 2, len(free))) for _ in range(20)]
        if not _vanishes(e, free, pts):
            return False
    return True


def _vanishes(expr, args, points) -> bool:
    """|expr| ≤ 1e-30 at all points (expressions here are O(1)), evaluated in mpmath."""
    f = sym.lambdify(expr, args, modules="mpmath")
    with mpmath.workdps(MP_DPS):
        return all(abs(f(*map(mpmath.mpf, pt))) <= MP_ZERO for pt in points)


def _random_points(n, *, rng, lo=-3, hi=2, positive_params=1, box=False):
    """Rows (x, α, ...) with |x| = 10^U(lo, hi), random sign, α = 10^U(−3, 3)."""
    x = rng.choice([-1, 1], n) * 10.0 ** rng.uniform(lo, hi, n)
    params = 10.0 ** rng.uniform(-3, 3, (n, positive_params))
    if box:  # α < 0, |x| < 1/|α|
        params = -params
        x = np.sign(x) * rng.uniform(0, 0.999, n) / np.abs(params[:, 0])
    return [tuple(float(v) for v in (xi, *p)) for xi, p in zip(x, params)]


# -- derivation identities -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "geo", [sym.euclidean_geometry(), sym.ham_geometry(), sym.mw_geometry()],
    ids=["euclidean", "ham", "mw"],
)
def test_derived_geometry_identities(geo):
    positive = {p: Q for p in geo.parameters if not p.is_positive}
    g = geo.inverse_metric.subs(positive)
    r = geo.potential.subs(positive)
    rp = geo.mirror_map.subs(positive)
    inv = geo.inverse_mirror_map.subs(positive)
    conj = geo.conjugate.subs(positive)
    assert _is_zero(sp.diff(r, X) - rp)  # r' is the mirror map
    assert _is_zero(sp.diff(rp, X) * g - 1)  # r''·g⁻¹ = 1
    assert _is_zero(inv.subs(PHI, rp) - X)  # inverse ∘ mirror = id
    assert _is_zero(conj.subs(PHI, rp) + r - X * rp)  # Fenchel equality
    assert _is_zero(r.subs(X, -X) - r)  # even
    assert r.subs(X, 0) == 0 and rp.subs(X, 0) == 0


def test_ham_closed_forms_match_theory():
    geo = sym.ham_geometry()
    u = A * sp.Abs(X)
    stated = {
        "potential": ((1 + u) * sp.log(1 + u) - u) / A**2,
        "mirror_map": sp.sign(X) * sp.log(1 + u) / A,
        "inverse_mirror_map": sp.sign(PHI) * (sp.exp(A * sp.Abs(PHI)) - 1) / A,
        "conjugate": (sp.exp(A * sp.Abs(PHI)) - 1 - A * sp.Abs(PHI)) / A**2,
    }
    rng = np.random.default_rng(0)
    for name, formula in stated.items():
        var = PHI if name in ("inverse_mirror_map", "conjugate") else X
        diff = getattr(geo, name) - formula
        pts = _random_points(20, rng=rng, lo=-2, hi=1)
        assert _vanishes(diff, (var, A), pts), name
        # the same closed forms hold for α < 0 inside the box |x| < 1/|α|
        # (docs/theory/negative-alpha.md#negative-alpha)
        if var is X:
            assert _vanishes(diff, (var, A), _random_points(20, rng=rng, box=True)), name
    # and the metric identity holds symbolically for α < 0 as well (x in the box)
    k = sp.Symbol("k", positive=True)
    r_neg = geo.potential.subs(A, -k).subs(X, P)
    assert sp.simplify(sp.diff(r_neg, P, 2) * (1 - k * P) - 1) == 0


def test_mw_closed_forms_match_theory():
    geo = sym.mw_geometry()
    stated = {
        "potential": X * sp.asinh(X / GAM) - sp.sqrt(X**2 + GAM**2) + GAM,
        "mirror_map": sp.asinh(X / GAM),
        "inverse_mirror_map": GAM * sp.sinh(PHI),
        "conjugate": GAM * (sp.cosh(PHI) - 1),
    }
    for name, formula in stated.items():
        var = PHI if name in ("inverse_mirror_map", "conjugate") else X
        expr = (getattr(geo, name) - formula).subs(var, X)
        assert _is_zero(expr), name


def test_derivation_detects_a_wrong_metric():
    """Negative control: the potential derived from 1 + 2α|x| is not R_α."""
    wrong = sym.derive_geometry(1 + 2 * A * sp.Abs(X), (A,))
    diff = wrong.potential - sym.ham_geometry().potential
    pts = _random_points(5, rng=np.random.default_rng(1))
    assert not _vanishes(diff, (X, A), pts)
    # and the zero test itself can say no (including through its numeric fallback)
    assert not _is_zero(wrong.potential - sym.ham_geometry().potential)
    assert not _is_zero(sp.asinh(sp.sinh(X)) - 1.0001 * X)


# -- the HAM step to first order in η (docs/theory/ham-flow.md#ham-flow) -------------------------
def test_step_series_is_the_ham_flow():
    s1 = sym.ham_step_series(1)
    stated = X - ETA * ((1 + A * sp.Abs(X)) * G + B * X)
    assert _is_zero(s1 - stated)
    assert _is_zero(sym.ham_flow_vector_field() - (-(1 + A * sp.Abs(X)) * G - B * X))


def _slope(etas, errs):
    return float(np.polyfit(np.log(etas), np.log(errs), 1)[0])


@pytest.mark.parametrize("star", [True, False], ids=["HYP*", "HYP"])
@pytest.mark.parametrize("x", [0.7, -1.3])
def test_step_series_matches_numeric_kernel(star, x):
    """gd_hyp_step − series of order m is O(η^{m+1}): slopes 2 and 3 (α = 2, β = 0.3)."""
    alpha, beta, g = 2.0, 0.3, 0.8
    etas = 1e-2 * 0.5 ** np.arange(6)
    args = (X, G, ETA, A, B)
    s1 = sym.lambdify(sym.ham_step_series(1), args)
    s2 = sym.lambdify(sym.ham_step_series(2), args)
    exact = np.array([float(gd_hyp_step(x, g, e, alpha, beta, star=star)) for e in etas])
    e1 = np.abs(exact - s1(x, g, etas, alpha, beta))
    e2 = np.abs(exact - s2(x, g, etas, alpha, beta))
    assert abs(_slope(etas, e1) - 2.0) < SLOPE_TOL
    assert abs(_slope(etas, e2) - 3.0) < SLOPE_TOL


def test_step_series_rejects_bad_order():
    with pytest.raises(ValueError, match="order must be an integer >= 1, got 0"):
        sym.ham_step_series(0)


# -- limits (docs/theory/l2-l1.md#l2-l1) ---------------------------------------------------------
def test_alpha_limits():
    assert sp.simplify(sym.ham_small_alpha_limit() - X**2 / 2) == 0
    assert _is_zero(sym.ham_small_alpha_expansion(2) - (X**2 / 2 - A * sp.Abs(X) ** 3 / 6))
    assert _is_zero(sym.ham_large_alpha_limit() - sp.Abs(X))


def test_sign_anchored_limit():
    lim = sym.ham_sign_anchored_limit()
    closed = sym.ham_sign_anchored_closed_form()
    for x in (-2.0, -0.5, 0.0, 0.5, 2.0):
        for x0 in (-1.5, -0.1, 0.0, 0.1, 1.5):
            sub = {X: sp.Rational(x), X0: sp.Rational(x0)}
            assert sp.simplify(lim.subs(sub) - closed.subs(sub)) == 0, (x, x0)
    # not L1 when x₀ ≠ 0: crossing sign costs 2|x|, keeping it costs 0
    assert closed.subs({X: -2, X0: 1}) == 4 and closed.subs({X: 2, X0: 1}) == 0


def test_sign_anchored_limit_against_numeric_bregman():
    """(α/log α) D_{R_α}(x, x₀) from HAMGeometry approaches |x| − sign(x₀)x like 1/log α."""
    rng = np.random.default_rng(2)
    x, x0 = rng.standard_normal(16), rng.standard_normal(16)
    target = np.abs(x) - np.sign(x0) * x
    gaps = []
    for alpha in (1e4, 1e8, 1e16):
        d = np.asarray(HAMGeometry(alpha).coordinate_bregman(x, x0))
        gap = np.max(np.abs(alpha / np.log(alpha) * d - target))
        assert gap * np.log(alpha) < SIGN_ANCHOR_CONST
        gaps.append(gap)
    assert gaps[0] > gaps[1] > gaps[2]


# -- β > 0: the explicit regulariser H_α (docs/theory/explicit-bias.md#explicit-bias) ------------
def test_regulariser():
    h = sym.ham_regulariser()
    hp = sp.diff(h, X)
    assert _is_zero((1 + A * sp.Abs(X)) * hp - X)
    assert _is_zero(sp.diff(h, X, 2) - 1 / (1 + A * sp.Abs(X)) ** 2)
    assert _is_zero(h - (A * sp.Abs(X) - sp.log(1 + A * sp.Abs(X))) / A**2)
    # H_α(x) = R_α*(∇R_α(x)): the dual potential seen from the primal side
    geo = sym.ham_geometry()
    assert _is_zero(geo.conjugate.subs(PHI, geo.mirror_map) - h)
    small, large = sym.ham_regulariser_limits()
    assert sp.simplify(small - X**2 / 2) == 0
    assert _is_zero(large - sp.Abs(X))


# -- helpers ---------------------------------------------------------------------------------------
def test_lambdify_and_numeric_helpers():
    f = sym.ham_geometry().numeric("potential")
    x = np.linspace(-2, 2, 5)
    np.testing.assert_allclose(f(x, 3.0), HAMGeometry(3.0).coordinate_potential(x), rtol=1e-13)
    assert sym.ham_geometry() is sym.ham_geometry()  # cached: derived once
    with pytest.raises(ValueError, match="modules must be 'numpy' or 'mpmath', got 'torch'"):
        sym.lambdify(X, X, modules="torch")
    with pytest.raises(ValueError, match=r"free symbols \['alpha'\] not among the arguments"):
        sym.lambdify(A * X, X)
    with pytest.raises(ValueError, match="name must be one of"):
        sym.ham_geometry().numeric("hessian")


def test_bregman_helper():
    d = sym.bregman(sym.ham_geometry().potential)
    assert d.subs({X: sp.Rational(3, 2), X0: sp.Rational(3, 2), A: 2}) == 0
    assert sp.expand(sym.bregman(X**2 / 2) - (X - X0) ** 2 / 2) == 0
