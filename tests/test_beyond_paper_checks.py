"""The helpers behind local_rate, anchored_limit and mirror_maps, against closed forms.

The checks themselves run in tests/test_paper_checks.py (quick mode, every registered
check); these tests pin their independent solvers and the new plot helper.
"""

import jax
import numpy as np
import sympy as sp

import hambias as hb
from hambias import plots
from hambias.paper_checks.anchored_limit import first_order_term, kl_projection, kl_projection_cvxpy
from hambias.paper_checks.local_rate import fitted_rate, predicted_rate, slowest_mode
from hambias.paper_checks.mirror_maps import min_lq_interpolant


def _problem():
    return hb.sparse_regression(jax.random.key(5), 6, 15, 2)[0]


def test_kl_expansion_of_the_ham_bregman_divergence():
    """Same signs: α·D_{R_α}(x, x₀) = KL + E/α + O(α⁻²) (sympy series, log α cancels)."""
    a, x, x0, eps = sp.symbols("alpha x x0 epsilon", positive=True)

    def r(z):
        return ((1 + a * z) * sp.log(1 + a * z) - a * z) / a**2

    D = r(x) - r(x0) - sp.log(1 + a * x0) / a * (x - x0)
    series = sp.series(sp.simplify(D.subs(a, 1 / eps)) / eps, eps, 0, 2).removeO()
    kl = x * sp.log(x / x0) - x + x0
    e = sp.log(x / x0) - x / x0 + 1
    assert sp.simplify(sp.expand_log(series - kl - eps * e, force=True)) == 0


def test_kl_projection_is_the_exponentiated_gradient_point():
    p = _problem()
    A, y = np.asarray(p.A), np.asarray(p.y)
    x0 = 0.3 * np.asarray(jax.random.normal(jax.random.key(6), (p.n,)))
    x, nu, _ = kl_projection(A, y, x0)
    assert np.linalg.norm(A @ x - y) <= 1e-13 * np.linalg.norm(y)
    np.testing.assert_allclose(x, x0 * np.exp(np.sign(x0) * (A.T @ nu)), rtol=1e-14)
    np.testing.assert_allclose(kl_projection_cvxpy(A, y, x0), x, rtol=1e-7, atol=1e-10)
    # the HAM limit approaches it like δ/α
    delta = first_order_term(A, x0, x)
    xa = np.asarray(hb.predict_limit(hb.HAMGeometry(1e7), p, x0).x)
    np.testing.assert_allclose(1e7 * (xa - x), delta, rtol=1e-3, atol=1e-3 * np.abs(delta).max())


def test_min_lq_interpolant_matches_its_optimality_condition():
    p = _problem()
    A, y = np.asarray(p.A), np.asarray(p.y)
    x = min_lq_interpolant(A, y, 1.5)
    assert np.linalg.norm(A @ x - y) <= 1e-12 * np.linalg.norm(y)
    # sign(x)|x|^½ ∈ range(Aᵀ)
    g = np.sign(x) * np.sqrt(np.abs(x))
    lam = np.linalg.lstsq(A.T, g, rcond=None)[0]
    assert np.linalg.norm(A.T @ lam - g) <= 1e-10 * np.linalg.norm(g)
    # q = 2 is the min-norm interpolant
    np.testing.assert_allclose(min_lq_interpolant(A, y, 2.0), p.min_norm_interpolant(),
                               rtol=1e-12, atol=1e-14)


def test_local_rate_of_gradient_descent_is_the_pl_constant():
    p = _problem()
    kappa, gap = predicted_rate(hb.Euclidean(), p, p.min_norm_interpolant())
    assert np.isclose(kappa, float(p.pl_constant()), rtol=1e-12) and gap >= 1.0
    v = slowest_mode(hb.Euclidean(), p, p.min_norm_interpolant())
    A = np.asarray(p.A)
    np.testing.assert_allclose(A @ A.T @ v / p.d, 0.5 * kappa * v, atol=1e-12)
    ts = np.linspace(0.0, 10.0, 201)
    assert np.isclose(fitted_rate(ts, np.exp(-3.0 * ts), (1e-4, 1e-12)), 3.0, rtol=1e-12)
    assert np.isnan(fitted_rate(ts, np.exp(-3.0 * ts), (1e-20, 1e-30)))


def test_plot_bars_returns_ax_with_bars_and_markers():
    fig, ax = plots.new_figure()
    out = plots.plot_bars(ax, ["a", "b"], {"s": [1.0, 2.0], "t": [0.5, np.nan]},
                          markers={"s": [1.0, 2.0]}, marker_label="quadrature", logy=True)
    assert out is ax and len(ax.patches) == 4 and ax.get_yscale() == "log"
    assert "s: quadrature" in [t.get_text() for t in ax.get_legend().get_texts()]
    plots.close_figure(fig)
