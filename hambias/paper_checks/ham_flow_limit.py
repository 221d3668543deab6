"""The HAM flow is the η → 0 limit of GD+HYP and GD+HYP* (paper Thm 4.2 / B.6).

Theory: docs/theory/ham-flow.md#ham-flow.

dθ_t = −(1 + α|θ_t|) ⊙ ∇f(θ_t) dt − βθ_t dt.

Claims: the toolkit's flow vector field is this formula; one step differs from the
explicit-Euler step of this field by O(η²) (the natural-gradient reading of §10);
the local error of one step against the exact flow over time η has slope 2; the
global error at a fixed time under η-halving has slope 1 (HYP and HYP*, β = 0 and β > 0).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hambias import HAMGeometry, sparse_regression
from hambias.methods import gd_hyp_step

from ._core import (
    claim_range,
    group,
    ham_iterates,
    loglog_slope,
    make_check,
    needs,
)

NAME = "ham_flow_limit"
TITLE = "HAM flow as the limit of GD+HYP / GD+HYP*"
PAPER = "Thm 4.2 (= B.3, HYP), Thm B.6 (HYP*)"
SEED = 3

ALPHA, BETA = 2.0, 0.1
# The vector field is a closed formula evaluated two ways: a few roundings.
FIELD_RTOL = 1e-13
# Local error O(η²) and global error O(η), fitted over η-halvings with ηα|g| ≤ 0.1
# (docs/theory/ham-flow.md#flow-order measured 1.99 and 1.00–1.02): ±0.1 leaves room for the
# next order.
LOCAL_LO, LOCAL_HI = 1.9, 2.1
GLOBAL_LO, GLOBAL_HI = 0.9, 1.1
# Reference flows at rtol 1e-12: their error is far below the smallest measured difference.
FLOW_TOL = dict(rtol=1e-12, atol=1e-14)


def _setup(ctx):
    d, n = (5, 12) if ctx.quick else (10, 30)
    prob, _ = sparse_regression(jax.random.key(ctx.seed), d, n, 3)
    x = 0.5 * jax.random.normal(jax.random.key(ctx.seed + 1), (n,))
    return prob, x


def _theory_field(prob, x, alpha, beta):
    return -(1.0 + alpha * jnp.abs(x)) * prob.grad(x) - beta * x


@group("§3", "the toolkit's flow vector field is −(1 + α|θ|)∇f(θ) − βθ")
def _vector_field(ctx):
    flow_vector_field = needs("flow", "flow_vector_field")
    prob, x = _setup(ctx)
    got = flow_vector_field(HAMGeometry(ALPHA), prob, x, beta=BETA)
    ref = _theory_field(prob, x, ALPHA, BETA)
    rel = float(jnp.max(jnp.abs(got - ref)) / jnp.max(jnp.abs(ref)))
    return [claim_range("vector_field", "§3", "flow field = −(1 + α|θ|)∇f − βθ", rel,
                        hi=FIELD_RTOL, why="the same closed formula: a few roundings")]


@group("§3", "one GD+HYP(*) step is θ − η[(1 + α|θ|)∇f + βθ] + O(η²) (natural-gradient form)")
def _first_order(ctx):
    prob, x = _setup(ctx)
    g = prob.grad(x)
    etas = 1e-2 * 0.5 ** np.arange(6)
    out = []
    for star in (True, False):
        d = [float(jnp.max(jnp.abs(gd_hyp_step(x, g, e, ALPHA, BETA, star=star)
                                   - (x + e * _theory_field(prob, x, ALPHA, BETA)))))
             for e in etas]
        out.append(claim_range(f"first_order_{'star' if star else 'plain'}", "§3",
                               f"GD+HYP{'*' if star else ''} minus the Euler step of the HAM "
                               "field is O(η²)", loglog_slope(etas, d), lo=LOCAL_LO, hi=LOCAL_HI,
                               why="O(η³) terms over 6 halvings"))
    return out


@group("§3", "the local error of one step against the exact HAM flow over time η is O(η²), the "
       "global error at fixed T is O(η)")
def _orders(ctx):
    solve_flow = needs("flow", "solve_flow")
    prob, x = _setup(ctx)
    geom = HAMGeometry(ALPHA)
    g = prob.grad(x)
    gmax = float(jnp.max(jnp.abs(g)))
    eta_max = 0.1 / (ALPHA * gmax)  # ηα|g| ≤ 0.1
    etas = eta_max * 0.5 ** np.arange(5)
    out = []
    for beta in (0.0, BETA):
        ref = solve_flow(geom, prob, x, t1=float(etas[0]), beta=beta, saveat=np.sort(etas),
                         backend=ctx.flow_backend, **FLOW_TOL)
        ref_x = np.asarray(ref.xs)[: len(etas)][::-1]  # rows for etas in decreasing order
        for star in (True, False):
            loc = [float(np.max(np.abs(np.asarray(gd_hyp_step(x, g, e, ALPHA, beta, star=star))
                                       - ref_x[i]))) for i, e in enumerate(etas)]
            tag = f"{'star' if star else 'plain'}_beta{beta:g}"
            ctx.data.setdefault("local", {})[f"HYP{'*' if star else ''}, β = {beta:g}"] = (
                etas, np.array(loc))
            out.append(claim_range(f"local_order_{tag}", "§3",
                                   f"local error of GD+HYP{'*' if star else ''} (β = {beta:g}) "
                                   "is O(η²)", loglog_slope(etas, loc), lo=LOCAL_LO, hi=LOCAL_HI,
                                   why="O(η³) remainder over 5 halvings, ηα|g| ≤ 0.1",
                                   detail=f"flow: {ref.message}"))
        T = 1.0 if ctx.quick else 2.0
        fin = solve_flow(geom, prob, x, t1=T, beta=beta, saveat=[T],
                         backend=ctx.flow_backend, **FLOW_TOL)
        xT = np.asarray(fin.x)
        n0 = int(np.ceil(T / eta_max))  # ηα|g| ≤ 0.1 at the largest step, T/η integer
        geta = T / (n0 * 2 ** np.arange(4))
        for star in (True, False):
            err = [float(np.max(np.abs(ham_iterates(prob, x, eta=e, alpha=ALPHA, beta=beta,
                                                    steps=int(round(T / e)), star=star) - xT)))
                   for e in geta]
            ctx.data.setdefault("global", {})[f"HYP{'*' if star else ''}, β = {beta:g}"] = (
                geta, np.array(err))
            out.append(claim_range(f"global_order_{'star' if star else 'plain'}_beta{beta:g}",
                                   "§3", f"global error at T = {T:g} of GD+HYP"
                                   f"{'*' if star else ''} (β = {beta:g}) is O(η)",
                                   loglog_slope(geta, err), lo=GLOBAL_LO, hi=GLOBAL_HI,
                                   why="first order; O(η²) term at the largest step",
                                   detail=f"flow: {fin.message}"))
    return out


def _figures(ctx):
    from hambias import plots

    if "local" not in ctx.data:
        return
    fig, (a1, a2) = plots.new_figure(1, 2)
    for ax, key, p, lab in ((a1, "local", 2.0, "one-step error vs flow over time η"),
                            (a2, "global", 1.0, "error at fixed T vs flow")):
        data = ctx.data[key]
        plots.plot_convergence_order(ax, {k: v[0] for k, v in data.items()},
                                     {k: v[1] for k, v in data.items()},
                                     slopes={k: loglog_slope(*v) for k, v in data.items()},
                                     expected=p, ylabel="max |θ_η − θ(t)|")
        ax.set_title(f"GD+HYP(*) → HAM flow: {lab}")
    ctx.save(fig, "ham_flow_order", {"alpha": ALPHA, "beta": BETA})


GROUPS = (_vector_field, _first_order, _orders)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
