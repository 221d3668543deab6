"""Geometries: identities, sympy agreement, limits, stability, tracing, negative controls.

Theory: docs/theory/setting.md#setting, docs/theory/potential.md#potential,
docs/theory/mw-flow.md#mw-flow, docs/theory/l2-l1.md#l2-l1 and
docs/theory/negative-alpha.md#negative-alpha.  Every identity is a small ``*_error``
function returning a max error, so the same function can be shown to pass on the real
geometry and to fail on a deliberately wrong one (the negative controls).
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hambias import symbolic as sym
from hambias.geometry import (
    AbstractGeometry,
    Euclidean,
    HAMGeometry,
    PointwiseProduct,
    gamma_from_init,
    mw_flow_time,
)

EPS = float(np.finfo(np.float64).eps)

# -- tolerances (one table) -----------------------------------------------------
# inverse∘mirror = id: docs/theory/potential.md#potential-checks asks 1e-12; the worst
# condition number of the round trip here is log(1 + α|x|) ≈ 28 (α|x| = 1e12), i.e. ~1e-14.
RTOL_ROUNDTRIP = 1e-12
#: XLA on CPU flushes subnormal results to zero, so a mirror map whose value at x is below
#: the smallest normal float64 (2.2e-308) returns 0: m⊙w's ∇R(x) ≈ x/γ does so for
#: |x| ≲ γ·2.2e-308 (γ < 10 here), and the round trip then returns 0 for such an x (found
#: by the property test at x = 9e-308, γ = 9.0).  The round trip is relative above this
#: floor and absolute below it, where the flushed values (< 1e-306) are far below
#: ROUNDTRIP_FLOOR·RTOL_ROUNDTRIP = 1e-302.
ROUNDTRIP_FLOOR = 1e-290
# Fenchel identity R*(∇R(x)) + R(x) = x·∇R(x), relative to |x·∇R(x)|:
# docs/theory/potential.md#potential-checks.
RTOL_FENCHEL = 1e-12
# R''·g⁻¹ = 1 with R'' from autodiff: the closed forms just above the series cutoff
# (α|x| = 1e-2) differentiate a difference of O(α|x|) terms, ~100 eps in theory;
# measured ≤ 4e-14 (jax.hessian) over 40 random draws of every case.
TOL_METRIC = 1e-12
# Central finite differences at h = 1e-4|x|: truncation ≤ (h/x)²/3 ≈ 3e-9, round-off
# ≤ eps·|r|/(h·|r'|) ≈ 1e-12; docs/theory/potential.md#potential-checks asks 1e-6.
RTOL_FD = 1e-6
# Agreement with the sympy derivation evaluated in 40-digit mpmath: the float64
# code is accurate to a few hundred eps, worst near the box edge of α < 0 where
# 1 + α|x| = 1e-3 is formed with an absolute error of eps.
RTOL_SYMPY = 1e-12
# D ≥ 0 is exact for HAM (cancellation-free form); for the generic formula
# r(x) − r(y) − r'(y)(x − y) allow round-off relative to the size of the terms.
TOL_BREGMAN_ROUNDOFF = 64 * EPS
# Evenness r(−x) = r(x), r'(−x) = −r'(x): exact up to a few ulps of asinh.
RTOL_EVEN = 4 * EPS
# jit vs eager: XLA may contract a·b + c into one FMA under jit, which rounds
# differently by ≤ eps·|α x|/|1 + α x|, up to 1e3·eps at the box edge of α < 0.
RTOL_TRACE = 1e-12
# m⊙w identity (m² + w²) = 2√(x² + γ²), relative: pure round-off.
RTOL_MW_IDENTITY = 1e-13
# docs/theory/l2-l1.md#l2-l1 limit bounds.
SMALL_ALPHA_BOUND = 2.0  # sup_{|x|≤2} |R_α − x²/2| ≤ 2α for α ≤ 1e-2
LARGE_ALPHA_BOUND = 1.2  # sup_{|x|≤2} |αR_α/log(1+α) − |x|| · log α ≤ 1.2 for α ≥ 1e2

# Digits for the mpmath references: the sympy closed forms cancel ~30 digits at
# α|x| ~ 1e-12 (e.g. α = 1e-6, x ~ 1e-6) before the Bregman difference loses more.
MP_DPS = 80
N = 32  # coordinates per sample (fixed, so eager ops compile once per shape)


# -- cases ------------------------------------------------------------------------
def _sample_unbounded(rng: np.random.Generator) -> np.ndarray:
    """Signed magnitudes 10^U(−10, 3) plus exact zeros: |x| < 1e-8 to |x| ~ 1e3."""
    x = rng.choice([-1.0, 1.0], N) * 10.0 ** rng.uniform(-10, 3, N)
    x[:2] = 0.0
    return x


def _sample_box(half_width: float) -> Callable[[np.random.Generator], np.ndarray]:
    """Points of the open box |x| < half_width, up to 0.999 of it, and tiny ones."""

    def sample(rng):
        s = rng.choice([-1.0, 1.0], N)
        near_edge = half_width * (1.0 - 10.0 ** rng.uniform(-3, 0, N))
        tiny = half_width * 10.0 ** rng.uniform(-10, -1, N)
        x = s * np.where(rng.uniform(size=N) < 0.5, near_edge, tiny)
        x[0] = 0.0
        return x

    return sample


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    geometry: AbstractGeometry
    sample: Callable[[np.random.Generator], np.ndarray]
    symbolic: sym.SymbolicGeometry | None = None
    params: np.ndarray | None = None  # per-coordinate symbolic parameter values
    even: bool = True

    def __repr__(self) -> str:
        return self.name


_RNG_PARAMS = np.random.default_rng(7)
_GAMMAS = 10.0 ** _RNG_PARAMS.uniform(-3, 1, N)
_ALPHAS = 10.0 ** _RNG_PARAMS.uniform(-3, 3, N)

CASES = [
    Case("euclidean", Euclidean(), _sample_unbounded, sym.euclidean_geometry()),
    Case("mw_scalar", PointwiseProduct(0.3), _sample_unbounded, sym.mw_geometry(),
         np.full(N, 0.3)),
    Case("mw_vector", PointwiseProduct(jnp.asarray(_GAMMAS)), _sample_unbounded,
         sym.mw_geometry(), _GAMMAS),
    *[
        Case(f"ham_{a:g}", HAMGeometry(a), _sample_unbounded, sym.ham_geometry(), np.full(N, a))
        for a in (1e-6, 1.0, 1e6)
    ],
    Case("ham_vector", HAMGeometry(jnp.asarray(_ALPHAS)), _sample_unbounded, sym.ham_geometry(),
         _ALPHAS),
    *[
        Case(f"ham_{a:g}", HAMGeometry(a), _sample_box(1.0 / abs(a)), sym.ham_geometry(),
             np.full(N, a))
        for a in (-0.5, -1e3)
    ],
]


# -- the identity checks (each returns a max error) ----------------------------------
def roundtrip_error(g: AbstractGeometry, x) -> float:
    """max |(∇R)⁻¹(∇R(x)) − x| / max(|x|, ROUNDTRIP_FLOOR)."""
    x = jnp.asarray(x)
    back = g.inverse_mirror_map(g.mirror_map(x))
    return float(jnp.max(jnp.abs(back - x) / jnp.maximum(jnp.abs(x), ROUNDTRIP_FLOOR)))


@eqx.filter_jit
def _second_derivative(g: AbstractGeometry, x):
    """Elementwise R''(x) = d/dx ∇R(x) by forward-mode autodiff (one compile per geometry)."""
    return jax.jvp(g.mirror_map, (x,), (jnp.ones_like(x),))[1]


@eqx.filter_jit
def _hessian(g: AbstractGeometry, x):
    return jax.hessian(g.potential)(x)


def metric_error(g: AbstractGeometry, x) -> float:
    """max |R''(x)·g⁻¹(x) − 1| with R'' the autodiff derivative of the mirror map."""
    x = jnp.asarray(x)
    r2 = _second_derivative(g, x)
    return float(jnp.max(jnp.abs(r2 * g.inverse_metric(x) - 1.0)))


def hessian_error(g: AbstractGeometry, x) -> float:
    """max |diag(∇²R)·g⁻¹ − 1| and off-diagonal |∇²R| with ∇²R = jax.hessian(R)."""
    x = jnp.asarray(x)
    h = _hessian(g, x)
    diag = jnp.diagonal(h)
    off = h - jnp.diag(diag)
    return float(
        jnp.maximum(jnp.max(jnp.abs(diag * g.inverse_metric(x) - 1.0)), jnp.max(jnp.abs(off)))
    )


def fenchel_error(g: AbstractGeometry, x) -> float:
    """max |r*(r'(x)) + r(x) − x r'(x)| / |x r'(x)| (coordinatewise; 0 where x r'(x) = 0)."""
    x = jnp.asarray(x)
    phi = g.mirror_map(x)
    lhs = g.coordinate_conjugate(phi) + g.coordinate_potential(x)
    rhs = x * phi
    err = jnp.abs(lhs - rhs) / jnp.where(rhs == 0, 1.0, jnp.abs(rhs))
    return float(jnp.max(err))


def bregman_negativity(g: AbstractGeometry, x, y) -> float:
    """max of −D(x_i, y_i) / (|r(x)| + |r(y)| + |r'(y)(x − y)|) (≤ 0 when D ≥ 0)."""
    x, y = jnp.asarray(x), jnp.asarray(y)
    d = g.coordinate_bregman(x, y)
    scale = (
        jnp.abs(g.coordinate_potential(x))
        + jnp.abs(g.coordinate_potential(y))
        + jnp.abs(g.mirror_map(y) * (x - y))
    )
    return float(jnp.max(-d / jnp.where(scale == 0, 1.0, scale)))


def bregman_self_error(g: AbstractGeometry, x) -> float:
    """max |D(x, x)|."""
    return float(jnp.max(jnp.abs(g.coordinate_bregman(x, x))))


def evenness_error(g: AbstractGeometry, x) -> float:
    """max relative |r(−x) − r(x)| and |r'(−x) + r'(x)|."""
    x = jnp.asarray(x)
    r, rm = g.coordinate_potential(x), g.coordinate_potential(-x)
    p, pm = g.mirror_map(x), g.mirror_map(-x)
    e1 = jnp.abs(rm - r) / jnp.where(r == 0, 1.0, jnp.abs(r))
    e2 = jnp.abs(pm + p) / jnp.where(p == 0, 1.0, jnp.abs(p))
    return float(jnp.maximum(jnp.max(e1), jnp.max(e2)))


_SYM_NUMERIC: dict = {}


def _sym_fn(symbolic: sym.SymbolicGeometry, name: str):
    key = (id(symbolic), name)
    if key not in _SYM_NUMERIC:
        _SYM_NUMERIC[key] = symbolic.numeric(name, modules="mpmath")
    return _SYM_NUMERIC[key]


def sympy_error(g: AbstractGeometry, symbolic: sym.SymbolicGeometry, params, x) -> float:
    """max relative error of the five maps against the sympy derivation in 40-digit mpmath."""
    x = np.asarray(x, dtype=float)
    phi = np.asarray(g.mirror_map(x))
    numeric = {
        "inverse_metric": (np.asarray(g.inverse_metric(x)), x),
        "mirror_map": (phi, x),
        "potential": (np.asarray(g.coordinate_potential(x)), x),
        "inverse_mirror_map": (np.asarray(g.inverse_mirror_map(phi)), phi),
        "conjugate": (np.asarray(g.coordinate_conjugate(phi)), phi),
    }
    worst = 0.0
    with mpmath.workdps(MP_DPS):
        for name, (values, args) in numeric.items():
            f = _sym_fn(symbolic, name)
            for i, (v, z) in enumerate(zip(values, args)):
                extra = () if params is None else (mpmath.mpf(float(params[i])),)
                ref = f(mpmath.mpf(float(z)), *extra)
                err = abs(mpmath.mpf(float(v)) - ref) / max(abs(ref), mpmath.mpf(1e-300))
                worst = max(worst, float(err))
    return worst


def mw_identity_error(m, w, gamma) -> float:
    """max |(m² + w²) − 2√(x² + γ²)| / (m² + w²) for x = m·w (docs/theory/mw-flow.md#mw-gamma)."""
    m, w = np.asarray(m), np.asarray(w)
    lhs = m * m + w * w
    rhs = 2.0 * np.hypot(m * w, np.asarray(gamma))
    return float(np.max(np.abs(lhs - rhs) / lhs))


# -- identities on every geometry -----------------------------------------------------
@pytest.fixture(params=CASES, ids=lambda c: c.name)
def case(request):
    return request.param


@pytest.fixture
def points(case):
    return case.sample(np.random.default_rng(zlib.crc32(case.name.encode())))


def test_roundtrip(case, points):
    assert roundtrip_error(case.geometry, points) < RTOL_ROUNDTRIP


def test_metric_from_mirror_map(case, points):
    assert metric_error(case.geometry, points) < TOL_METRIC


@pytest.mark.parametrize("name", ["mw_vector", "ham_vector", "ham_-1000"])
def test_metric_from_hessian_of_potential(name):
    """The same identity with R'' = diag(jax.hessian(R)) (and zero off the diagonal)."""
    c = next(c for c in CASES if c.name == name)
    assert hessian_error(c.geometry, c.sample(np.random.default_rng(10))) < TOL_METRIC


def test_fenchel_identity(case, points):
    assert fenchel_error(case.geometry, points) < RTOL_FENCHEL


def test_bregman_nonnegative_and_zero_on_diagonal(case, points):
    g = case.geometry
    rng = np.random.default_rng(1)
    others = case.sample(rng)
    near = points * (1.0 + 1e-9 * rng.standard_normal(N))  # x ≈ y: worst cancellation
    tol = 0.0 if isinstance(g, HAMGeometry) else TOL_BREGMAN_ROUNDOFF
    assert bregman_negativity(g, points, others) <= tol
    assert bregman_negativity(g, points, -points) <= tol
    if not isinstance(g, HAMGeometry) or float(jnp.min(jnp.asarray(g.alpha))) > 0:
        assert bregman_negativity(g, near, points) <= tol
    assert bregman_self_error(g, points) == 0.0


def test_bregman_matches_definition(case, points):
    """coordinate_bregman equals r(x) − r(y) − r'(y)(x − y), evaluated exactly (sympy, mpmath).

    HAM's cancellation-free form is accurate relative to D itself; the generic
    formula only relative to the size of its terms.
    """
    g = case.geometry
    y = case.sample(np.random.default_rng(2))
    x = points.copy()
    x[-4:] = y[-4:] * (1.0 + 1e-6 * np.array([1.0, -1.0, 2.0, -3.0]))  # x ≈ y: cancellation
    d = np.asarray(g.coordinate_bregman(x, y))
    scale = (
        np.abs(np.asarray(g.coordinate_potential(x)))
        + np.abs(np.asarray(g.coordinate_potential(y)))
        + np.abs(np.asarray(g.mirror_map(y) * (x - y)))
    )
    f = sym.lambdify(
        sym.bregman(case.symbolic.potential), (sym.X, sym.X0, *case.symbolic.parameters),
        modules="mpmath",
    )
    with mpmath.workdps(MP_DPS):
        ref = np.array([
            float(f(mpmath.mpf(float(a)), mpmath.mpf(float(b)),
                    *(() if case.params is None else (mpmath.mpf(float(case.params[i])),))))
            for i, (a, b) in enumerate(zip(x, y))
        ])
    if isinstance(g, HAMGeometry):
        np.testing.assert_allclose(d, ref, rtol=RTOL_SYMPY, atol=1e-300)
    else:
        np.testing.assert_array_less(np.abs(d - ref), TOL_BREGMAN_ROUNDOFF * scale + 1e-300)
    assert float(g.bregman_divergence(x, y)) == pytest.approx(float(np.sum(d)), rel=1e-14)


def test_evenness(case, points):
    assert evenness_error(case.geometry, points) < RTOL_EVEN


def test_potential_and_mirror_vanish_at_zero(case):
    g = case.geometry
    zero = jnp.zeros(N)
    assert float(jnp.max(jnp.abs(g.coordinate_potential(zero)))) == 0.0
    assert float(jnp.max(jnp.abs(g.mirror_map(zero)))) == 0.0


def test_agrees_with_sympy_derivation(case, points):
    assert sympy_error(case.geometry, case.symbolic, case.params, points) < RTOL_SYMPY


def test_dual_inverse_metric_is_hessian_of_conjugate(case, points):
    g = case.geometry
    phi = g.mirror_map(jnp.asarray(points))
    d2 = jax.jvp(lambda p: jax.grad(g.conjugate)(p), (phi,), (jnp.ones_like(phi),))[1]
    np.testing.assert_allclose(d2, g.dual_inverse_metric(phi), rtol=TOL_METRIC)
    np.testing.assert_allclose(g.dual_inverse_metric(phi), g.inverse_metric(points), rtol=1e-12)


def test_series_cutoff_is_seamless():
    """Just below and above the switch from series to closed form the maps stay exact."""
    from hambias.geometry import _HAM_SERIES_CUTOFF

    rel = np.array([-1e-3, -1e-9, -1e-15, 0.0, 1e-15, 1e-9, 1e-3])
    u = _HAM_SERIES_CUTOFF * (1.0 + rel)
    for a in (1.0, -1.0, 1e3):
        x = np.concatenate([u, -u]) / abs(a)
        g = HAMGeometry(a)
        assert sympy_error(g, sym.ham_geometry(), np.full(x.size, a), x) < RTOL_SYMPY
        assert metric_error(g, x) < TOL_METRIC


# -- property-based version of the identities --------------------------------------------
def _element_strategy(case: Case):
    if isinstance(case.geometry, HAMGeometry) and np.min(case.params) < 0:
        b = 0.999 / abs(float(np.min(case.params)))
        return st.floats(-b, b, allow_nan=False)
    return st.builds(
        lambda m, e: m * 10.0**e, st.floats(-1.0, 1.0), st.integers(-12, 3)
    )


@st.composite
def _case_and_points(draw):
    c = draw(st.sampled_from(CASES))
    x = draw(arrays(np.float64, N, elements=_element_strategy(c)))
    y = draw(arrays(np.float64, N, elements=_element_strategy(c)))
    return c, x, y


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_case_and_points())
def test_identities_property(data):
    c, x, y = data
    g = c.geometry
    assert roundtrip_error(g, x) < RTOL_ROUNDTRIP
    assert metric_error(g, x) < TOL_METRIC
    assert fenchel_error(g, x) < RTOL_FENCHEL
    tol = 0.0 if isinstance(g, HAMGeometry) else TOL_BREGMAN_ROUNDOFF
    assert bregman_negativity(g, x, y) <= tol
    assert bregman_self_error(g, x) == 0.0


# -- negative controls: the same checks must fail on wrong geometries ----------------------
class _DoubledMetricHAM(HAMGeometry):
    """Wrong: inverse metric 1 + 2α|x| with the potential of R_α."""

    def inverse_metric(self, x):
        return 1.0 + 2.0 * self.alpha * jnp.abs(jnp.asarray(x, dtype=float))


class _FlippedMirrorHAM(HAMGeometry):
    """Wrong: mirror map with the sign flipped."""

    def mirror_map(self, x):
        return -super().mirror_map(x)


def test_negative_control_wrong_metric_factor():
    x = _sample_unbounded(np.random.default_rng(3))
    good, bad = HAMGeometry(1.0), _DoubledMetricHAM(1.0)
    assert metric_error(good, x) < TOL_METRIC < metric_error(bad, x)
    assert hessian_error(good, x) < TOL_METRIC < hessian_error(bad, x)
    params = np.full(N, 1.0)
    assert sympy_error(bad, sym.ham_geometry(), params, x) > RTOL_SYMPY


def test_negative_control_flipped_mirror_sign():
    x = _sample_unbounded(np.random.default_rng(4))
    bad = _FlippedMirrorHAM(1.0)
    assert roundtrip_error(bad, x) > RTOL_ROUNDTRIP
    assert metric_error(bad, x) > TOL_METRIC
    assert fenchel_error(bad, x) > RTOL_FENCHEL
    # the definition r(x) − r(y) − r'(y)(x − y) with the wrong map goes negative
    assert float(jnp.min(AbstractGeometry.coordinate_bregman(bad, x, -x))) < 0.0


def test_negative_control_gamma_convention():
    """γ = |m₀² − w₀²|/2 satisfies (m² + w²) = 2√(x² + γ²); PILoT's γ = |c| does not."""
    rng = np.random.default_rng(5)
    m, w = rng.standard_normal(N), rng.standard_normal(N)
    good = np.asarray(gamma_from_init(m, w))
    bad = np.abs(m * m - w * w)
    assert mw_identity_error(m, w, good) < RTOL_MW_IDENTITY < mw_identity_error(m, w, bad)


def test_gamma_from_init_is_conserved_by_mw_gradient_flow():
    """Along GD on (m, w) with tiny steps m² − w² drifts by O(η²) per step, so γ is stable."""
    rng = np.random.default_rng(6)
    m, w = rng.standard_normal(8), rng.standard_normal(8)
    g0 = np.asarray(gamma_from_init(m, w))
    eta, grad = 1e-5, rng.standard_normal(8)
    for _ in range(100):
        m, w = m - eta * w * grad, w - eta * m * grad
    # exact update: c ← c(1 − η²g²) so drift ≤ 100·η²·|g|²·|c|
    np.testing.assert_allclose(np.asarray(gamma_from_init(m, w)), g0, rtol=100 * eta**2 * 10)


def test_mw_flow_time_has_factor_two():
    assert float(mw_flow_time(250, 4e-3)) == pytest.approx(2.0)
    np.testing.assert_allclose(mw_flow_time(jnp.arange(3), 0.5), [0.0, 1.0, 2.0])


# -- a new geometry is one small class: exponentiated gradient / entropy on x > 0 --------------
class _Entropy(AbstractGeometry):
    """R(x) = Σ x log x − x on x > 0: inverse metric x, mirror log x, conjugate e^φ."""

    def inverse_metric(self, x):
        return jnp.asarray(x, dtype=float)

    def mirror_map(self, x):
        return jnp.log(self.check_domain(jnp.asarray(x, dtype=float)))

    def inverse_mirror_map(self, phi):
        return jnp.exp(jnp.asarray(phi, dtype=float))

    def coordinate_potential(self, x):
        x = self.check_domain(jnp.asarray(x, dtype=float))
        return jax.scipy.special.xlogy(x, x) - x

    def coordinate_conjugate(self, phi):
        return jnp.exp(jnp.asarray(phi, dtype=float))

    def domain_violation(self, x):
        x = jnp.asarray(x)
        return jnp.logical_or(x <= 0, jnp.isnan(x))

    def has_bounded_domain(self):
        return True


def test_new_geometry_is_one_small_class():
    g = _Entropy()
    rng = np.random.default_rng(8)
    x, y = 10.0 ** rng.uniform(-8, 3, N), 10.0 ** rng.uniform(-8, 3, N)
    assert roundtrip_error(g, x) < RTOL_ROUNDTRIP
    assert metric_error(g, x) < TOL_METRIC
    assert hessian_error(g, x) < TOL_METRIC
    # Fenchel: e^{log x} + x log x − x = x log x; relative to |x log x| (no zero at x = 1 here)
    x_off1 = x[np.abs(np.log(x)) > 1e-3]
    assert fenchel_error(g, x_off1) < RTOL_FENCHEL
    # Bregman is the generalised KL divergence Σ x log(x/y) − x + y
    kl = np.sum(x * np.log(x / y) - x + y)
    assert float(g.bregman_divergence(x, y)) == pytest.approx(kl, rel=1e-12)
    assert bregman_negativity(g, x, y) <= TOL_BREGMAN_ROUNDOFF
    # the derived quantities come for free, and agree with sympy's derivatives
    xs = sp.Symbol("x", positive=True)
    r = xs * sp.log(xs) - xs
    d1 = sym.lambdify(sp.diff(r, xs), xs)(x)
    d2 = sym.lambdify(sp.diff(r, xs, 2), xs)(x)
    np.testing.assert_allclose(g.mirror_map(x), d1, rtol=1e-14)
    np.testing.assert_allclose(1.0 / g.inverse_metric(x), d2, rtol=1e-14)
    with pytest.raises(ValueError, match="_Entropy: 1 coordinate"):
        g.mirror_map(jnp.array([1.0, -1.0]))


# -- finite differences (docs/theory/potential.md#potential) ------------------------------------
_FD_X = np.array([1e-10, 3e-9, 7e-9, 1e-3, 0.5, 7.0, 1e3, 2.5e3])


def _fd_grid(alphas):
    a, x = np.meshgrid(alphas, np.concatenate([-_FD_X, _FD_X]), indexing="ij")
    return a.ravel(), x.ravel()


def _central(f, x, h):
    return (np.asarray(f(x + h)) - np.asarray(f(x - h))) / (2 * h)


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["alpha>0", "alpha<0"])
def test_finite_differences(sign):
    if sign > 0:
        a, x = _fd_grid(np.logspace(-3, 3, 7))
    else:  # inside the box |x| < 1/|α|, as a fraction of its half-width
        a = -np.repeat(np.logspace(-3, 3, 7), 6)
        frac = np.tile([1e-10, 3e-9, 1e-3, 0.3, 0.9, -0.6], 7)
        x = frac / np.abs(a)
    g = HAMGeometry(jnp.asarray(a))
    h = 1e-4 * np.abs(x)
    r1 = _central(g.coordinate_potential, x, h)
    r2 = _central(g.mirror_map, x, h)
    np.testing.assert_allclose(r1, g.mirror_map(x), rtol=RTOL_FD)
    np.testing.assert_allclose(r2, 1.0 / np.asarray(g.inverse_metric(x)), rtol=RTOL_FD)


# -- limits of docs/theory/l2-l1.md#l2-l1 --------------------------------------------------------
_X_LIMIT = np.linspace(-2.0, 2.0, 4001)


@pytest.mark.parametrize("alpha", [1e-8, 1e-6, 1e-4, 1e-2])
def test_small_alpha_limit_bound(alpha):
    r = np.asarray(HAMGeometry(alpha).coordinate_potential(_X_LIMIT))
    gap = np.max(np.abs(r - _X_LIMIT**2 / 2))
    assert gap <= SMALL_ALPHA_BOUND * alpha
    # and the leading term is the sympy expansion −α|x|³/6 (so the bound is not vacuous)
    lead = sym.lambdify(sym.ham_small_alpha_expansion(2), (sym.X, sym.ALPHA))(_X_LIMIT, alpha)
    np.testing.assert_allclose(gap, np.max(np.abs(lead - _X_LIMIT**2 / 2)), rtol=5 * alpha + 1e-6)


@pytest.mark.parametrize("alpha", [1e2, 1e4, 1e6, 1e8])
def test_large_alpha_limit_bound(alpha):
    r = np.asarray(HAMGeometry(alpha).coordinate_potential(_X_LIMIT))
    gap = np.max(np.abs(alpha * r / np.log1p(alpha) - np.abs(_X_LIMIT)))
    assert gap * np.log(alpha) <= LARGE_ALPHA_BOUND
    assert gap * np.log(alpha) > 0.5  # the approach really is ~1/log α, not faster


def test_large_alpha_limit_fails_for_euclidean_shape():
    """Negative control for the L1 bound: x²/2 is not within 1.2/log α of |x|."""
    gap = np.max(np.abs(_X_LIMIT**2 / 2 - np.abs(_X_LIMIT)))
    assert gap * np.log(1e2) > LARGE_ALPHA_BOUND


def test_normalised_potential_shapes():
    x = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(Euclidean().normalised_potential(x), x**2, rtol=1e-15)
    np.testing.assert_allclose(HAMGeometry(1e-9).normalised_potential(x), x**2, rtol=1e-8)
    big = np.asarray(HAMGeometry(1e12).normalised_potential(x))
    # R_α(x)/R_α(1) − |x| ≈ |x| log|x| / log α (docs/theory/l2-l1.md#bregman-shape):
    # 2 log 2/log 1e12 = 0.05 on |x| ≤ 2
    assert np.max(np.abs(big - np.abs(x))) < 0.1


# -- stability: no overflow or NaN for |x| ≤ 1e6, α ≤ 1e6 ------------------------------------------
_X_EXTREME = np.resize([-1e6, -1e3, -1.0, -1e-300, 0.0, 1e-300, 1e-8, 1.0, 1e6], N)


@pytest.mark.parametrize(
    "g",
    [HAMGeometry(a) for a in (0.0, 1e-6, 1e-3, 1.0, 1e3, 1e6)]
    + [PointwiseProduct(c) for c in (1e-6, 1.0, 1e6)]
    + [Euclidean()],
    ids=lambda g: repr(g).replace("\n", ""),
)
def test_no_overflow_or_nan(g):
    x = jnp.asarray(_X_EXTREME)
    phi = g.mirror_map(x)
    outputs = {
        "inverse_metric": g.inverse_metric(x),
        "mirror_map": phi,
        "potential": g.coordinate_potential(x),
        "inverse_mirror_map": g.inverse_mirror_map(phi),
        "conjugate": g.coordinate_conjugate(phi),
        "dual_inverse_metric": g.dual_inverse_metric(phi),
        "bregman": g.coordinate_bregman(x, -x),
        "bregman_near": g.coordinate_bregman(x, 1.001 * x),
        "grad": jax.grad(g.potential)(x),
        "second": jax.jvp(g.mirror_map, (x,), (jnp.ones_like(x),))[1],
    }
    for name, v in outputs.items():
        assert np.all(np.isfinite(np.asarray(v))), name
    np.testing.assert_allclose(outputs["inverse_mirror_map"], x, rtol=RTOL_ROUNDTRIP)
    np.testing.assert_allclose(outputs["grad"], phi, rtol=1e-14)
    assert np.all(np.asarray(outputs["bregman"]) >= 0)


# -- tracing: jit, vmap and grad give the eager values --------------------------------------------
_METHODS = ("inverse_metric", "mirror_map", "coordinate_potential", "inverse_mirror_map",
            "coordinate_conjugate", "dual_inverse_metric")


@eqx.filter_jit
def _all_methods(g: AbstractGeometry, x):
    return [getattr(g, name)(x) for name in _METHODS]


@eqx.filter_jit
def _all_methods_vmapped(g: AbstractGeometry, batch):
    return jax.vmap(lambda z: [getattr(g, name)(z) for name in _METHODS])(batch)


@pytest.mark.parametrize("name", ["euclidean", "mw_vector", "ham_1", "ham_vector", "ham_-1000"])
def test_jit_vmap_grad_match_eager(name):
    case = next(c for c in CASES if c.name == name)
    points = case.sample(np.random.default_rng(11))
    g = case.geometry
    x = jnp.asarray(points)
    batch = jnp.stack([x, 0.5 * x, -x])
    for name, jitted, vm in zip(_METHODS, _all_methods(g, x), _all_methods_vmapped(g, batch)):
        np.testing.assert_allclose(jitted, getattr(g, name)(x), rtol=RTOL_TRACE, err_msg=name)
        np.testing.assert_allclose(vm, getattr(g, name)(batch), rtol=RTOL_TRACE, err_msg=name)
    grad_eager = jax.grad(g.potential)(x)
    grad_jit = jax.jit(jax.grad(lambda z: g.potential(z)))(x)
    np.testing.assert_allclose(grad_jit, grad_eager, rtol=RTOL_TRACE)
    np.testing.assert_allclose(grad_eager, g.mirror_map(x), rtol=1e-13, atol=1e-300)
    y = jnp.asarray(case.sample(np.random.default_rng(9)))
    np.testing.assert_allclose(
        jax.jit(lambda a, b: g.bregman_divergence(a, b))(x, y), g.bregman_divergence(x, y),
        rtol=RTOL_TRACE,
    )


def test_vmap_over_a_batch_of_geometries():
    alphas = jnp.array([1e-3, 1.0, 1e3])
    x = jnp.linspace(-3.0, 3.0, N)
    batched = jax.jit(jax.vmap(lambda a: HAMGeometry(a).potential(x)))(alphas)
    loop = jnp.stack([HAMGeometry(float(a)).potential(x) for a in alphas])
    np.testing.assert_allclose(batched, loop, rtol=RTOL_TRACE)
    # d R_α/dα is finite and matches a central difference in α
    grads = jax.jit(jax.vmap(jax.grad(lambda a: HAMGeometry(a).potential(x))))(alphas)
    h = 1e-6 * alphas
    fd = (
        jax.vmap(lambda a: HAMGeometry(a).potential(x))(alphas + h)
        - jax.vmap(lambda a: HAMGeometry(a).potential(x))(alphas - h)
    ) / (2 * h)
    np.testing.assert_allclose(grads, fd, rtol=RTOL_FD)


def test_geometries_are_immutable():
    g = HAMGeometry(2.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        g.alpha = 3.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        PointwiseProduct(1.0).gamma = 2.0


# -- bad input ------------------------------------------------------------------------------------
@pytest.mark.parametrize("alpha", [np.nan, np.inf, -np.inf, [1.0, np.nan]])
def test_ham_rejects_non_finite_alpha(alpha):
    with pytest.raises(ValueError, match="HAMGeometry: alpha must be finite"):
        HAMGeometry(alpha)


@pytest.mark.parametrize("gamma", [0.0, -1.0, [1.0, 0.0]])
def test_pointwise_product_rejects_non_positive_gamma(gamma):
    with pytest.raises(ValueError, match="PointwiseProduct: gamma must be > 0"):
        PointwiseProduct(gamma)


@pytest.mark.parametrize("gamma", [np.nan, np.inf])
def test_pointwise_product_rejects_non_finite_gamma(gamma):
    with pytest.raises(ValueError, match="PointwiseProduct: gamma must be finite"):
        PointwiseProduct(gamma)


@pytest.mark.parametrize("method", ["mirror_map", "coordinate_potential", "potential"])
@pytest.mark.parametrize("x", [2.5, 2.0, -3.0, np.nan])
def test_negative_alpha_outside_box_raises(method, x):
    g = HAMGeometry(-0.5)  # box |x| < 2
    with pytest.raises(ValueError, match=r"only inside the box \|x\| < 1/\|alpha\| = 2"):
        getattr(g, method)(jnp.array([0.1, x]))


def test_negative_alpha_outside_box_raises_in_bregman_and_under_jit():
    g = HAMGeometry(-1.0)
    with pytest.raises(ValueError, match="only inside the box"):
        g.bregman_divergence(jnp.array([0.5]), jnp.array([1.5]))
    with pytest.raises(Exception, match="outside the domain of HAMGeometry"):
        jax.block_until_ready(jax.jit(g.mirror_map)(jnp.array([0.5, 1.5])))
    np.testing.assert_allclose(g.check_domain(jnp.array([0.99])), [0.99])


def test_positive_alpha_has_no_domain_restriction():
    g = HAMGeometry(3.0)
    assert not g.has_bounded_domain()
    assert np.isfinite(float(g.potential(jnp.full(N, -1e6))))


def test_mw_hessian_at_x_equal_gamma():
    """R'' by autodiff at |x| = γ, where jnp.hypot's second derivative is wrong (it gives 0)."""
    g = PointwiseProduct(1.0)
    x = jnp.array([1.0, -1.0, 0.5])
    assert hessian_error(g, x) < TOL_METRIC


@pytest.mark.parametrize("alpha", [1.0, 1e10, 1e300])
def test_ham_maps_beyond_the_float64_range_of_alpha_x(alpha):
    """φ = log1p(α|x|)/α and its inverse where α|x| or e^{α|φ|} overflow but the result
    is representable (α = 1e300, x = 1e10), against 80-digit mpmath."""
    g = HAMGeometry(alpha)
    xs = np.array([1e-3, 1.0, 1e10, 1e200, 1e307])
    phi = np.asarray(g.mirror_map(xs))
    back = np.asarray(g.inverse_mirror_map(phi))
    with mpmath.workdps(MP_DPS):
        a = mpmath.mpf(alpha)
        for x, p, b in zip(xs, phi, back, strict=True):
            ref = mpmath.log1p(a * mpmath.mpf(float(x))) / a
            assert abs(mpmath.mpf(float(p)) - ref) <= RTOL_ROUNDTRIP * abs(ref)
            ref_back = mpmath.expm1(a * mpmath.mpf(float(p))) / a
            assert abs(mpmath.mpf(float(b)) - ref_back) <= RTOL_ROUNDTRIP * abs(ref_back)
            assert b == pytest.approx(x, rel=RTOL_ROUNDTRIP * max(1.0, alpha * float(p)))
