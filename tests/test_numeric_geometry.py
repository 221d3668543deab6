"""geometry_from_inverse_metric: identities, closed forms, derivatives, tracing, plug-ins.

A geometry built from h alone (quadrature + Newton) must reproduce HAMGeometry for
h = 1 + α|θ| and PointwiseProduct for h = √(θ² + γ²), satisfy the mirror-map identities
for every h of the catalogue, be differentiable (R'' = 1/h, ((∇R)⁻¹)' = h, derivatives
in the parameters) and work under jit and vmap, in the flow, mirror descent and the
prediction (docs/theory/setting.md#setting, docs/theory/potential.md#potential,
docs/theory/mw-flow.md#mw-flow, docs/theory/implicit-bias.md#implicit-bias,
docs/theory/mirror-maps.md#mirror-maps).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

import hambias as hb
from hambias.numeric_geometry import NumericGeometry, geometry_from_inverse_metric

# -- tolerances (one table) -------------------------------------------------------------
# Against the closed forms of HAMGeometry / PointwiseProduct: the quadrature is good to
# ~2 ulp (module docstring); the closed forms themselves carry up to ~1e-14 (HAM's
# potential near the series cutoff), the inverse map ~log(1 + α|x|)·eps.  Measured ≤ 3e-14.
RTOL_CLOSED = 1e-12
# inverse∘map = id and the Fenchel identity (docs/theory/potential.md#potential-checks asks 1e-12).
RTOL_ROUNDTRIP = 1e-12
RTOL_FENCHEL = 1e-12
# R''·h = 1 and ((∇R)⁻¹)'/h = 1 through the custom derivatives: exact formulas, a few ulps.
TOL_DERIVATIVE = 1e-12
# Central finite differences at step 1e-5 relative: truncation ~1e-10, round-off ~1e-11.
RTOL_FD = 1e-6
# Against 40-digit mpmath closed forms of the catalogue's mirror maps.
RTOL_MPMATH = 1e-13
# Predictions of two geometries that are the same map: both certified at 1e-10 (KKT), so
# the points agree to ~κ·1e-10 at worst; measured ~1e-15.
RTOL_PREDICT = 1e-9
# Mirror descent with the numeric and the closed-form maps: per step the maps agree to
# ~1e-14, amplified by at most the step's Lipschitz constant over 50 steps.
RTOL_ITERATES = 1e-10
# Flow at rtol 1e-10 to the steady state vs the certified prediction.
RTOL_FLOW = 1e-6


def ham_h(t, alpha):
    return 1.0 + alpha * jnp.abs(t)


def mw_h(t, gamma):
    return jnp.sqrt(t * t + gamma * gamma)


def power_h(t, p):
    """(c + a|θ|^k)^q for p = (c, a, k, q); |θ|^k is 0 at 0 with derivative 0 there."""
    c, a, k, q = p
    s = jnp.abs(t)
    nz = s > 0
    sk = jnp.where(nz, jnp.exp(k * jnp.log(jnp.where(nz, s, 1.0))), 0.0)
    return (c + a * sk) ** q


def _params(*v):
    return tuple(jnp.asarray(x, dtype=jnp.float64) for x in v)


# the catalogue of hambias.paper_checks.mirror_maps at α = 10 (and two harder scales)
CATALOGUE = {
    "1+a|t|": _params(1.0, 10.0, 1.0, 1.0),
    "1+a t^2": _params(1.0, 10.0, 2.0, 1.0),
    "sqrt(1+a^2t^2)": _params(1.0, 100.0, 2.0, 0.5),
    "1+a|t|^0.5": _params(1.0, 10.0, 0.5, 1.0),
    "1+a|t|^0.5 a=1e3": _params(1.0, 1e3, 0.5, 1.0),
    "1+a t^2 a=1e-2": _params(1.0, 1e-2, 2.0, 1.0),
}

X = np.r_[-np.geomspace(1e-9, 1e3, 25), 0.0, np.geomspace(1e-9, 1e3, 25)]


def _rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


# -- agreement with the closed-form geometries --------------------------------------------
CLOSED = [
    ("ham_1e-3", geometry_from_inverse_metric(ham_h, 1e-3), hb.HAMGeometry(1e-3)),
    ("ham_1", geometry_from_inverse_metric(ham_h, 1.0), hb.HAMGeometry(1.0)),
    ("ham_1e3", geometry_from_inverse_metric(ham_h, 1e3), hb.HAMGeometry(1e3)),
    ("mw_1e-3", geometry_from_inverse_metric(mw_h, 1e-3), hb.PointwiseProduct(1e-3)),
    ("mw_0.3", geometry_from_inverse_metric(mw_h, 0.3), hb.PointwiseProduct(0.3)),
]


@pytest.mark.parametrize("name,num,ref", CLOSED, ids=[c[0] for c in CLOSED])
def test_agrees_with_closed_forms(name, num, ref):
    x = jnp.asarray(X)
    phi = ref.mirror_map(x)
    y = jnp.roll(x, 7)
    pairs = {
        "mirror_map": (num.mirror_map(x), phi),
        "inverse_mirror_map": (num.inverse_mirror_map(phi), x),
        "potential": (num.coordinate_potential(x), ref.coordinate_potential(x)),
        "conjugate": (num.coordinate_conjugate(phi), ref.coordinate_conjugate(phi)),
        "bregman": (num.coordinate_bregman(x, y), ref.coordinate_bregman(x, y)),
        "regulariser": (num.coordinate_regulariser(x), ref.coordinate_regulariser(x)),
        "dual_inverse_metric": (num.dual_inverse_metric(phi), ref.dual_inverse_metric(phi)),
    }
    errs = {k: _rel(a, b) for k, (a, b) in pairs.items()}
    # H'' = (h − θh')/h² cancels where h ∝ |θ| (m⊙w at |θ| ≫ γ): compare on the scale 1/h
    curv = np.asarray(num.regulariser_curvature(x)) - np.asarray(ref.regulariser_curvature(x))
    errs["regulariser_curvature"] = float(np.max(np.abs(curv) * np.asarray(
        ref.inverse_metric(x))))
    assert max(errs.values()) <= RTOL_CLOSED, errs


def test_length_scale_is_where_h_doubles():
    ham = np.asarray(geometry_from_inverse_metric(ham_h, jnp.array([1e-3, 1.0, 1e6]))
                     .length_scale())
    np.testing.assert_allclose(ham, [1e3, 1.0, 1e-6])  # 1/α lies on the grid
    mw = float(geometry_from_inverse_metric(mw_h, 1e-3).length_scale())
    assert np.sqrt(3) * 1e-3 <= mw <= np.sqrt(3) * 1e-3 * np.sqrt(10)
    assert float(geometry_from_inverse_metric(lambda t: 1.0 + 0.0 * t).length_scale()) == np.inf


def test_per_coordinate_parameters_broadcast():
    alphas = jnp.asarray(10.0 ** np.linspace(-3, 3, X.size))
    num = geometry_from_inverse_metric(ham_h, alphas)
    ref = hb.HAMGeometry(alphas)
    x = jnp.asarray(X)
    assert _rel(num.mirror_map(x), ref.mirror_map(x)) <= RTOL_CLOSED
    assert _rel(num.inverse_mirror_map(ref.mirror_map(x)), x) <= RTOL_CLOSED
    assert _rel(num.coordinate_potential(x), ref.coordinate_potential(x)) <= RTOL_CLOSED


# -- identities for the whole catalogue ------------------------------------------------------
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_identities(name):
    g = geometry_from_inverse_metric(power_h, CATALOGUE[name])
    x = jnp.asarray(X[np.abs(X) <= 1e2])
    phi = g.mirror_map(x)
    assert _rel(g.inverse_mirror_map(phi), x) <= RTOL_ROUNDTRIP
    # Fenchel: R*(∇R(x)) + R(x) = x·∇R(x), relative to |x·∇R(x)|
    lhs = g.coordinate_conjugate(phi) + g.coordinate_potential(x)
    assert _rel(lhs, x * phi) <= RTOL_FENCHEL
    # evenness and the origin
    assert np.array_equal(np.asarray(g.coordinate_potential(-x)), np.asarray(
        g.coordinate_potential(x)))
    assert np.array_equal(np.asarray(g.mirror_map(-x)), -np.asarray(phi))
    assert float(g.coordinate_potential(0.0)) == 0.0 and float(g.mirror_map(0.0)) == 0.0
    # Bregman: ≥ 0, zero on the diagonal, equal to the generic formula where that is accurate
    y = jnp.roll(x, 5)
    D = np.asarray(g.coordinate_bregman(x, y))
    generic = np.asarray(g.coordinate_potential(x) - g.coordinate_potential(y)
                         - g.mirror_map(y) * (x - y))
    scale = np.abs(np.asarray(g.coordinate_potential(x))) + np.abs(np.asarray(
        g.coordinate_potential(y))) + np.abs(np.asarray(g.mirror_map(y) * (x - y)))
    assert np.all(D >= 0) and np.all(np.asarray(g.coordinate_bregman(x, x)) == 0)
    assert np.all(np.abs(D - generic) <= 1e-13 * scale)


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_derivatives_are_exact(name):
    g = geometry_from_inverse_metric(power_h, CATALOGUE[name])
    x = jnp.asarray(X[np.abs(X) <= 1e2])
    h = np.asarray(g.inverse_metric(x))
    phi = g.mirror_map(x)
    d_pot = jax.vmap(jax.grad(g.coordinate_potential))(x)
    d_mir = jax.vmap(jax.grad(g.mirror_map))(x)
    d_inv = jax.vmap(jax.grad(g.inverse_mirror_map))(phi)
    d_con = jax.vmap(jax.grad(g.coordinate_conjugate))(phi)
    d2_pot = jax.vmap(jax.grad(jax.grad(g.coordinate_potential)))(x)
    assert _rel(d_pot, phi) <= TOL_DERIVATIVE
    assert float(np.max(np.abs(np.asarray(d_mir) * h - 1.0))) <= TOL_DERIVATIVE
    assert float(np.max(np.abs(np.asarray(d2_pot) * h - 1.0))) <= TOL_DERIVATIVE
    assert _rel(d_inv, h) <= TOL_DERIVATIVE
    assert _rel(d_con, x) <= TOL_DERIVATIVE


@pytest.mark.parametrize("name", ["1+a|t|", "1+a t^2", "1+a|t|^0.5"])
def test_derivatives_match_finite_differences(name):
    p = CATALOGUE[name]
    pts = np.array([-2.0, -0.3, 0.01, 0.7, 3.0])
    for method in ("coordinate_potential", "mirror_map", "inverse_mirror_map",
                   "coordinate_conjugate"):
        def f(t, method=method):
            return getattr(geometry_from_inverse_metric(power_h, p), method)(t)

        dual = method in ("inverse_mirror_map", "coordinate_conjugate")
        g = geometry_from_inverse_metric(power_h, p)
        for t in (np.asarray(g.mirror_map(jnp.asarray(pts))) if dual else pts):
            step = 1e-5 * abs(t)
            fd = (float(f(t + step)) - float(f(t - step))) / (2 * step)
            assert abs(float(jax.grad(f)(t)) - fd) <= RTOL_FD * abs(fd), (method, t)
        # in the parameter a (the tangent flows through the quadrature and the
        # implicit function theorem)
        t0 = 0.4

        def fa(a, method=method, t0=t0):
            q = (p[0], a, p[2], p[3])
            return getattr(geometry_from_inverse_metric(power_h, q, validate=False),
                           method)(t0)

        a0 = float(p[1])
        step = 1e-5 * a0
        fd = (float(fa(a0 + step)) - float(fa(a0 - step))) / (2 * step)
        assert abs(float(jax.grad(fa)(a0)) - fd) <= RTOL_FD * abs(fd), (method, "alpha")


def test_cusp_has_finite_derivatives_at_zero():
    g = geometry_from_inverse_metric(power_h, CATALOGUE["1+a|t|^0.5"])
    assert float(jax.grad(g.mirror_map)(0.0)) == 1.0  # 1/h(0)
    assert float(jax.grad(g.inverse_mirror_map)(0.0)) == 1.0  # h(0)
    assert float(g.regulariser_curvature(jnp.array(0.0))) == 1.0
    assert np.all(np.isfinite(np.asarray(g.regulariser_curvature(jnp.asarray(X)))))


def test_mirror_maps_against_mpmath():
    mpmath.mp.dps = 40
    a = mpmath.mpf(10)
    refs = {
        "1+a t^2": lambda x: mpmath.atan(mpmath.sqrt(a) * x) / mpmath.sqrt(a),
        "sqrt(1+a^2t^2)": lambda x: mpmath.asinh(a * x) / a,
        "1+a|t|^0.5": lambda x: 2 * (mpmath.sqrt(x) - mpmath.log1p(a * mpmath.sqrt(x)) / a) / a,
    }
    xs = np.geomspace(1e-10, 1e4, 30)
    for name, ref in refs.items():
        g = geometry_from_inverse_metric(power_h, CATALOGUE[name])
        want = np.array([float(ref(mpmath.mpf(float(x)))) for x in xs])
        assert _rel(g.mirror_map(jnp.asarray(xs)), want) <= RTOL_MPMATH, name


def test_bounded_range_when_h_grows_faster_than_linear():
    """1 + αθ²: φ(∞) = π/(2√α) < ∞, so (∇R)⁻¹ is ±inf beyond and R* is +inf there."""
    alpha = 10.0
    g = geometry_from_inverse_metric(power_h, _params(1.0, alpha, 2.0, 1.0))
    phi_inf = np.pi / (2 * np.sqrt(alpha))
    big = 1e6
    # φ(θ) = atan(√α θ)/√α = φ∞ − 1/(αθ) + O(θ⁻³)
    assert abs(float(g.mirror_map(big)) - (phi_inf - 1 / (alpha * big))) <= 1e-15
    beyond = jnp.array([1.01 * phi_inf, -2 * phi_inf, 10.0])
    assert np.all(np.isinf(np.asarray(g.inverse_mirror_map(beyond))))
    assert np.all(np.asarray(g.coordinate_conjugate(beyond)) == np.inf)
    inside = jnp.array([0.5, 0.99, 0.9999]) * phi_inf
    assert _rel(g.mirror_map(g.inverse_mirror_map(inside)), inside) <= RTOL_ROUNDTRIP


# -- jit and vmap ------------------------------------------------------------------------------
def test_jit_and_vmap():
    x = jnp.asarray(X)
    g = geometry_from_inverse_metric(ham_h, 3.0)
    eager = np.asarray(g.inverse_mirror_map(g.mirror_map(x)))
    jitted = np.asarray(jax.jit(lambda g, x: g.inverse_mirror_map(g.mirror_map(x)))(g, x))
    assert _rel(jitted, eager) <= 1e-14
    alphas = jnp.array([0.1, 1.0, 10.0, 100.0])
    batched = jax.vmap(lambda a: geometry_from_inverse_metric(ham_h, a).inverse_mirror_map(
        jnp.array([0.3, -2.0])))(alphas)
    looped = np.stack([np.asarray(hb.HAMGeometry(float(a)).inverse_mirror_map(
        jnp.array([0.3, -2.0]))) for a in alphas])
    assert _rel(batched, looped) <= RTOL_CLOSED
    # vmap over a batch of geometries (a pytree with a leading axis)
    geos = geometry_from_inverse_metric(ham_h, alphas, validate=False)
    pot = jax.vmap(lambda g: g.potential(jnp.array([0.5, -1.5])))(geos)
    want = [float(hb.HAMGeometry(float(a)).potential(jnp.array([0.5, -1.5]))) for a in alphas]
    assert _rel(pot, want) <= RTOL_CLOSED


# -- flows, iterates and predictions work unchanged ------------------------------------------------
@pytest.fixture(scope="module")
def small_problem():
    return hb.sparse_regression(jax.random.key(3), 8, 24, 3)[0]


def test_predict_limit_matches_closed_forms(small_problem):
    x0 = 0.1 * np.asarray(jax.random.normal(jax.random.key(4), (small_problem.n,)))
    for num, ref in [(geometry_from_inverse_metric(ham_h, 10.0), hb.HAMGeometry(10.0)),
                     (geometry_from_inverse_metric(mw_h, 0.05), hb.PointwiseProduct(0.05))]:
        for start in (None, x0):
            p = hb.predict_limit(num, small_problem, start)
            q = hb.predict_limit(ref, small_problem, start)
            assert p.converged and p.kkt_residual <= 1e-10, p.message
            assert _rel(p.x, q.x) <= RTOL_PREDICT


def test_predict_limit_with_weight_decay(small_problem):
    """β > 0: the primal Newton uses the regulariser H = ∫ s/h (quadrature) and H' = θ/h."""
    p = hb.predict_limit(geometry_from_inverse_metric(ham_h, 10.0), small_problem, beta=0.1)
    q = hb.predict_limit(hb.HAMGeometry(10.0), small_problem, beta=0.1)
    assert p.converged, p.message
    assert _rel(p.x, q.x) <= RTOL_PREDICT


def test_predict_limit_bounded_range_geometry(small_problem):
    g = geometry_from_inverse_metric(power_h, CATALOGUE["1+a t^2"])
    p = hb.predict_limit(g, small_problem)
    assert p.converged and p.kkt_residual <= 1e-10, p.message
    assert np.all(np.abs(np.asarray(g.mirror_map(p.x))) < np.pi / (2 * np.sqrt(10.0)))


def test_flow_ends_at_prediction(small_problem):
    g = geometry_from_inverse_metric(power_h, CATALOGUE["1+a|t|^0.5"])
    want = np.asarray(hb.predict_limit(g, small_problem).x)
    r = hb.solve_flow(g, small_problem, np.zeros(small_problem.n), t1=np.inf, backend="scipy",
                      method="DOP853", rtol=1e-10, atol=1e-12)
    assert bool(r.converged), r.message
    assert np.linalg.norm(np.asarray(r.x) - want) <= RTOL_FLOW * np.linalg.norm(want)


def test_mirror_descent_matches_closed_form(small_problem):
    eta = 0.05
    num = hb.run_iterates(hb.MirrorDescent(geometry_from_inverse_metric(ham_h, 10.0), eta),
                          small_problem, jnp.zeros(small_problem.n), steps=50, record_every=50)
    ref = hb.run_iterates(hb.MirrorDescent(hb.HAMGeometry(10.0), eta), small_problem,
                          jnp.zeros(small_problem.n), steps=50, record_every=50)
    assert _rel(num.x, ref.x) <= RTOL_ITERATES


def test_mirror_descent_vmaps_over_alpha(small_problem):
    alphas = jnp.array([1.0, 10.0])

    def final(a):
        m = hb.MirrorDescent(geometry_from_inverse_metric(ham_h, a, validate=False), 0.05)
        return hb.run_iterates(m, small_problem, jnp.zeros(small_problem.n), steps=20,
                               record_every=20, record_x=False).state

    batched = jax.vmap(final)(alphas)
    looped = np.stack([np.asarray(hb.run_iterates(
        hb.MirrorDescent(hb.HAMGeometry(float(a)), 0.05), small_problem,
        jnp.zeros(small_problem.n), steps=20, record_every=20, record_x=False).state)
        for a in alphas])
    assert _rel(batched, looped) <= RTOL_ITERATES


def test_mirror_descent_with_a_numeric_geometry_in_a_sweep(small_problem, tmp_path):
    """A sweep over η runs mirror descent with the numeric geometry like run_iterates does,
    and predicts its limit with the same geometry (hb.register_method, as for any method)."""
    geo = geometry_from_inverse_metric(power_h, CATALOGUE["1+a|t|^0.5"])
    hb.register_method("md_numeric_sqrt", lambda *, eta, **_: hb.MirrorDescent(geo, eta),
                       replace=True)
    np.savez(tmp_path / "data.npz", A=np.asarray(small_problem.A), y=np.asarray(small_problem.y))
    eta = 0.05 / float(small_problem.lipschitz())
    cfg = hb.SweepConfig.from_dict(
        {"steps": 100, "problem": {"file": "data.npz"}, "init": {"kind": "constant"},
         "grid": {"eta": [eta, eta / 2], "init_scale": [0.0], "seed": [0],
                  "method": ["md_numeric_sqrt"]}}, base=tmp_path)
    hb.run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = hb.open_sweep(tmp_path / "s", gridded=False)
    for p in range(ds.sizes["point"]):
        pt = ds.isel(point=p)
        ref = hb.run_iterates(hb.MirrorDescent(geo, float(pt.eta)), small_problem,
                              np.zeros(small_problem.n), steps=100, record_every=100)
        assert _rel(pt.x.values, ref.x) <= RTOL_ITERATES
        pred = hb.predict_limit(geo, small_problem)
        assert _rel(pt.x_pred.values, pred.x) <= RTOL_PREDICT
        assert int(pt.prediction_status) == hb.Status.SUCCESS


# -- bad input -------------------------------------------------------------------------------------
def test_rejects_bad_inverse_metrics():
    with pytest.raises(ValueError, match="even"):
        geometry_from_inverse_metric(lambda t: 1.0 + jnp.maximum(t, 0.0))
    with pytest.raises(ValueError, match="> 0"):
        geometry_from_inverse_metric(lambda t: jnp.abs(t))
    with pytest.raises(ValueError, match="> 0"):
        geometry_from_inverse_metric(ham_h, -1.0)
    with pytest.raises(ValueError, match="callable"):
        geometry_from_inverse_metric(1.0)
    with pytest.raises(ValueError, match="failed"):
        geometry_from_inverse_metric(lambda t, p: t @ p, 1.0)


def test_exported_and_is_a_geometry():
    g = hb.geometry_from_inverse_metric(lambda t: 1.0 + jnp.abs(t))
    assert isinstance(g, NumericGeometry) and isinstance(g, hb.AbstractGeometry)
    # the same h twice: equal static parts, so compiled programs are shared
    assert hash(g.h) == hash(hb.geometry_from_inverse_metric(g.h.fn).h)
