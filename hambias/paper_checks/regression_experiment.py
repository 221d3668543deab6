"""The underdetermined regression experiment (paper Appendix D.1, set-up uncertain).

Theory: docs/theory/regression-experiment.md#regression-experiment.

d = 40 samples, n = 100 dimensions, A ~ N(0, 1), 5-sparse x*, x₀ = 0 or x₀ ~ N(0, 1/n),
several seeds: ‖x_t − x*‖ along the flows of GD, GD+HYP* (the HAM flow, its η → 0
limit, docs/theory/ham-flow.md#ham-flow) and m⊙w at several γ, against the min-L1
solution.  Expected: with x₀ = 0 large α recovers x* (error more than 10× below GD at
α = 1e4); with x₀ of scale 1/√n large α gets worse (sign anchoring,
docs/theory/l2-l1.md#sign-anchoring).
"""

from __future__ import annotations

import jax
import numpy as np

from hambias import Euclidean, HAMGeometry, PointwiseProduct, sparse_regression

from ._core import (
    claim_range,
    claim_true,
    group,
    make_check,
    min_l1_linprog,
    needs,
)

NAME = "regression_experiment"
TITLE = "Underdetermined regression experiment (App. D.1)"
PAPER = "Appendix D.1"
SEED = 100

D, N, K = 40, 100, 5
# The expected outcome (docs/theory/regression-experiment.md#regression-experiment): with
# x₀ = 0 the error at α = 1e4 falls by more than 10× against GD.
RECOVERY_FACTOR = 10.0
# Flow endpoints vs the dual-Newton predictions: rtol 1e-10 flows to a steady state
# at 1e-12 of the initial residual; the slow m⊙w directions leave ~1e-6.
ENDPOINT_RTOL = 1e-5
# Lower edge of the error axis in the figure (min-L1 recovers x* to round-off).
Y_FLOOR = 1e-3


def _methods(quick):
    m = {"GD": Euclidean(), "HAM flow α = 1e4": HAMGeometry(1e4),
         "m⊙w γ = 1e-4": PointwiseProduct(1e-4)}
    if not quick:
        m = {"GD": Euclidean(), "HAM flow α = 10": HAMGeometry(10.0), **{
            k: v for k, v in m.items() if k != "GD"}, "m⊙w γ = 1e-2": PointwiseProduct(1e-2)}
    return m


def _experiment(ctx):
    if "exp" in ctx.data:
        return ctx.data["exp"]
    solve_flow = needs("flow", "solve_flow")
    predict_limit = needs("predict", "predict_limit")
    seeds = range(ctx.seed, ctx.seed + (2 if ctx.quick else 5))
    saveat = np.concatenate([[0.0], np.logspace(-2, 4, 61)])
    methods = _methods(ctx.quick)
    errs = {}  # (init, method) -> (n_seeds, n_times)
    final, endpoint = {}, []
    l1_err = []
    for s in seeds:
        prob, x_star = sparse_regression(jax.random.key(s), D, N, K)
        x_star = np.asarray(x_star)
        scale = np.linalg.norm(x_star)
        l1_err.append(np.linalg.norm(min_l1_linprog(prob) - x_star) / scale)
        inits = {"x₀ = 0": np.zeros(N),
                 "x₀ ~ N(0, 1/n)": np.asarray(jax.random.normal(jax.random.key(s + 10_000),
                                                                (N,))) / np.sqrt(N)}
        for iname, x0 in inits.items():
            for mname, geo in methods.items():
                r = solve_flow(geo, prob, x0, t1=np.inf, saveat=saveat, backend=ctx.flow_backend,
                               rtol=1e-10, atol=1e-12, steady_tol=1e-12)
                xs = np.asarray(r.xs)
                e = np.linalg.norm(xs - x_star, axis=1) / scale
                errs.setdefault((iname, mname), []).append(e[: len(saveat)])
                final.setdefault((iname, mname), []).append(e[-1])
                pred = np.asarray(predict_limit(geo, prob, x0).x)
                endpoint.append(np.linalg.norm(xs[-1] - pred) / np.linalg.norm(pred)
                                if bool(r.converged) else np.inf)
    ctx.config.update(d=D, n=N, k=K, seeds=list(seeds), methods=list(methods))
    ctx.data["exp"] = (saveat, errs, final, endpoint, float(np.mean(l1_err)))
    return ctx.data["exp"]


@group("§11", "with x₀ = 0, the HAM flow (GD+HYP* as η → 0) at α = 1e4 recovers x* "
       "(error > 10× below GD)")
def _recovery(ctx):
    _, _, final, endpoint, l1 = _experiment(ctx)
    gd = float(np.mean(final[("x₀ = 0", "GD")]))
    ham = float(np.mean(final[("x₀ = 0", "HAM flow α = 1e4")]))
    return [
        claim_range("recovery_x0_zero", "§11", "mean ‖x_∞ − x*‖/‖x*‖: GD / HAM(α = 1e4) > 10",
                    gd / ham, lo=RECOVERY_FACTOR,
                    why="expected outcome of "
                        "docs/theory/regression-experiment.md#regression-experiment",
                    detail=f"GD {gd:.3g}, HAM α = 1e4 {ham:.3g}, min-L1 {l1:.3g}"),
        claim_range("endpoints_are_predictions", "§11",
                    "every flow ends at its predicted argmin D_R(x, x₀)", max(endpoint),
                    hi=ENDPOINT_RTOL, why="steady state at 1e-12; slow m⊙w directions"),
    ]


@group("§11", "with x₀ ~ N(0, 1/n), α = 1e4 ends farther from x* than from x₀ = 0 (sign anchoring)")
def _anchoring(ctx):
    _, _, final, _, _ = _experiment(ctx)
    a = float(np.mean(final[("x₀ ~ N(0, 1/n)", "HAM flow α = 1e4")]))
    b = float(np.mean(final[("x₀ = 0", "HAM flow α = 1e4")]))
    return [claim_true("worse_with_x0", "§11", "error(x₀ ~ 1/√n) > error(x₀ = 0) at α = 1e4",
                       a > b, measured=[round(a, 4), round(b, 4)], expected="first > second",
                       tolerance="strict",
                       why="α|x₀| ≫ 1 anchors signs (docs/theory/l2-l1.md#sign-anchoring)")]


def _figures(ctx):
    from hambias import plots

    saveat, errs, _, _, l1 = _experiment(ctx)
    t = saveat[1:]
    fig, axes = plots.new_figure(1, 2)
    for ax, iname in zip(axes, ("x₀ = 0", "x₀ ~ N(0, 1/n)"), strict=True):
        curves = {}
        for (i, m), e in errs.items():
            if i == iname:
                e = np.asarray(e)[:, 1:]
                curves[m] = (e.mean(axis=0), e.min(axis=0), e.max(axis=0))
        visible = l1 >= Y_FLOOR
        plots.plot_curves(ax, t, curves, xlabel="time t (flows; HAM flow = GD+HYP* as η → 0)",
                          ylabel="‖x_t − x*‖ / ‖x*‖ (band: seed range)", logx=True,
                          hlines={f"min-L1 ({l1:.1e})": l1} if visible else None,
                          title=f"{D}×{N}, {K}-sparse, {iname}" + (
                              "" if visible else f"; min-L1 error {l1:.0e}"))
        ax.set_ylim(Y_FLOOR, 3.0)
    ctx.save(fig, "regression_experiment", ctx.config)


GROUPS = (_recovery, _anchoring)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
