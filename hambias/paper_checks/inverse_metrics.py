"""Inverse metrics of GD, m⊙w and HAM, and the 1-D race they imply.

Theory: docs/theory/setting.md#inverse-metrics, docs/theory/pl-rate.md#pl-rate.

The table of inverse metrics: g⁻¹ = 1 (GD), √(θ² + γ²) (m⊙w, paper normalisation),
1 + α|θ| (HAM), each equal to 1/R'' of its potential.  On f(θ) = (θ − 2.5)²/2 from
θ₀ = −2.5 the flow ẋ = −g⁻¹(θ)(θ − 2.5) crosses zero at
t₀ = ∫_{θ₀}^{0} dθ / (g⁻¹(θ)(2.5 − θ)): HAM first (its metric never drops below 1), then
GD (t₀ = ln 2), m⊙w with small γ last (its metric vanishes at 0: it is stuck near 0 for a
time ~ log(1/γ)/2.5).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.integrate import quad

from hambias import Euclidean, HAMGeometry, LossProblem, PointwiseProduct

from ._core import claim_range, claim_true, group, make_check, needs

NAME = "inverse_metrics"
TITLE = "Inverse metrics of GD, m⊙w, HAM and the 1-D race"
PAPER = "Sec. 3 (metric table), Thm 4.3 (never slower than GD)"
SEED = 1

THETA0, THETA_STAR = -2.5, 2.5
# A closed formula evaluated two ways: a few roundings.
TABLE_RTOL = 1e-13
# 1/r'' from JAX autodiff of the implemented potential: exact derivatives of the
# implementation, up to the series/closed-form switch (~1e-15) and cancellation in r''.
HESSIAN_RTOL = 1e-9
# Crossing times from a flow at rtol 1e-10 vs adaptive quadrature at 1e-12; the scipy
# event root-finding on the dense output is accurate to ~rtol of the step.
CROSSING_RTOL = 1e-6
GAMMAS = (1.0, 0.1, 1e-3)
ALPHAS = (1.0, 10.0)


def _geometries():
    out = {"GD": (Euclidean(), lambda t: 1.0)}
    for g in GAMMAS:
        out[f"m⊙w γ = {g:g}"] = (PointwiseProduct(g), lambda t, g=g: np.hypot(t, g))
    for a in ALPHAS:
        out[f"HAM α = {a:g}"] = (HAMGeometry(a), lambda t, a=a: 1.0 + a * abs(t))
    return out


@group("§1", "the inverse metrics are 1 (GD), √(θ² + γ²) (m⊙w), 1 + α|θ| (HAM), each 1/R''")
def _table(ctx):
    x = jnp.concatenate([jnp.linspace(-3.0, 3.0, 61), jnp.array([1e-9, -1e-7, 1e3])])
    out = []
    for label, (geo, formula) in _geometries().items():
        got = np.asarray(geo.inverse_metric(x))
        ref = np.array([formula(float(t)) for t in x])
        out.append(claim_range(f"table_{label}", "§1", f"g⁻¹ of {label} is the §1 formula",
                               float(np.max(np.abs(got - ref) / ref)), hi=TABLE_RTOL,
                               why="same closed formula, a few roundings"))
        # R'' as the derivative of the mirror map (jnp.hypot has a wrong second
        # derivative at |x| = |y| in JAX 0.10, so the potential is differentiated once).
        r1 = jax.vmap(jax.grad(lambda t, geo=geo: geo.coordinate_potential(t)))(x)
        r2 = jax.vmap(jax.grad(lambda t, geo=geo: geo.mirror_map(t)))(x)
        out.append(claim_range(f"hessian_{label}", "§1", f"g⁻¹ = 1/R'' and ∇R = R' for {label}",
                               max(float(np.max(np.abs(got * np.asarray(r2) - 1.0))),
                                   float(np.max(np.abs(np.asarray(r1) - np.asarray(
                                       geo.mirror_map(x))) / np.maximum(np.abs(np.asarray(r1)),
                                                                        1e-300)))),
                               hi=HESSIAN_RTOL, why="autodiff of the implemented potential"))
    return out


def _quad_crossing(formula):
    val, _ = quad(lambda t: 1.0 / (formula(t) * (THETA_STAR - t)), THETA0, 0.0,
                  epsabs=0.0, epsrel=1e-12, limit=400, points=[0.0])
    return val


def _race(ctx):
    if "race" in ctx.data:
        return ctx.data["race"]
    solve_flow = needs("flow", "solve_flow")
    prob = LossProblem(lambda x: 0.5 * jnp.sum((x - THETA_STAR) ** 2))
    T = 8.0
    res = {}
    for label, (geo, formula) in _geometries().items():
        r = solve_flow(geo, prob, np.array([THETA0]), t1=T, n_save=161, zero_crossings=True,
                       backend=ctx.flow_backend, rtol=1e-10, atol=1e-12)
        ct = np.asarray(r.crossing_times)[0]
        res[label] = dict(ts=np.asarray(r.ts), xs=np.asarray(r.xs)[:, 0],
                          crossing=float(ct[0]) if np.isfinite(ct[0]) else np.inf,
                          quad=_quad_crossing(formula), message=r.message)
    ctx.data["race"] = res
    return res


@group("§10", "on the 1-D race the flows cross zero at ∫ dθ/(g⁻¹(θ)(θ* − θ)); HAM crosses first, "
       "then GD (ln 2), m⊙w with small γ last")
def _race_claims(ctx):
    res = _race(ctx)
    out = []
    for label, r in res.items():
        out.append(claim_range(f"crossing_{label}", "§10",
                               f"zero-crossing time of the {label} flow matches the quadrature",
                               abs(r["crossing"] - r["quad"]) / r["quad"], hi=CROSSING_RTOL,
                               why="flow at rtol 1e-10 vs quadrature at 1e-12",
                               detail=f"flow {r['crossing']:.6g}, quadrature {r['quad']:.6g}"))
    t = {k: v["crossing"] for k, v in res.items()}
    order = [t[f"HAM α = {ALPHAS[-1]:g}"], t[f"HAM α = {ALPHAS[0]:g}"], t["GD"],
             t[f"m⊙w γ = {GAMMAS[1]:g}"], t[f"m⊙w γ = {GAMMAS[-1]:g}"]]
    out.append(claim_true("race_order", "§10",
                          "HAM (α = 10, 1) crosses before GD, GD before m⊙w (γ = 0.1, 1e-3)",
                          bool(np.all(np.diff(order) > 0)), measured=[round(v, 4) for v in order],
                          expected="strictly increasing", tolerance="strict order",
                          why="metrics ordered pointwise near θ = 0, where the time is spent"))
    out.append(claim_range("gd_crossing_ln2", "§10", "GD crosses zero at t = ln 2",
                           abs(t["GD"] - np.log(2.0)) / np.log(2.0), hi=CROSSING_RTOL,
                           why="closed form θ_t = 2.5 − 5e^{−t}"))
    return out


def _figures(ctx):
    from hambias import plots

    th = np.linspace(-3.5, 3.5, 701)
    fig, (a1, a2) = plots.new_figure(1, 2)
    metrics = {lab: np.asarray(geo.inverse_metric(jnp.asarray(th)))
               for lab, (geo, _) in _geometries().items()}
    plots.plot_inverse_metrics(a1, th, metrics, theta0=THETA0, theta_star=THETA_STAR)
    res = _race(ctx)
    plots.plot_trajectories(a2, {k: v["ts"] for k, v in res.items()},
                            {k: v["xs"] for k, v in res.items()}, theta0=THETA0,
                            theta_star=THETA_STAR,
                            crossings={k: v["crossing"] for k, v in res.items()})
    ctx.save(fig, "inverse_metrics_race", {"theta0": THETA0, "theta_star": THETA_STAR,
                                           "gammas": GAMMAS, "alphas": ALPHAS})


GROUPS = (_table, _race_claims)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
