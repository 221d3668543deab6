"""The m⊙w flow, its potential and the γ convention (PILoT, paper Sec. 3).

Theory: docs/theory/mw-flow.md#mw-flow.

GD on F(m, w) = f(m⊙w) + λ(‖m‖² + ‖w‖²) gives ẋ = −2√(x² + γ_t²)∇f − 4λx with
γ_t = |m₀² − w₀²| e^{−4λt}/2.  For λ = 0 the limit is argmin_{Ax=y} D_{ψ_γ}(x, x₀) with
γ = |m₀² − w₀²|/2 (not PILoT's |m₀² − w₀²|: a negative control).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hambias import PointwiseProduct, gamma_from_init

from ._core import (
    claim_range,
    group,
    loglog_slope,
    make_check,
    needs,
    regression_problem,
)
from ._core import (
    relative_distance as _rel,
)

NAME = "mw_flow"
TITLE = "m⊙w flow and the γ = |m₀² − w₀²|/2 convention"
PAPER = "PILoT Thm (m⊙w mirror flow); HAM Sec. 3"
SEED = 5

GAMMA = 0.05
# GD on (m, w) reaches the γ = |c|/2 prediction to O(η): 7e-5 relative at η = 1e-3 on
# 20×100 (docs/theory/mw-flow.md#pilot-constant); 2e-3 bounds it at the step used here with
# margin for the seed.
LIMIT_RTOL = 2e-3
# The γ = |c| prediction is missed by 0.12 (docs/theory/mw-flow.md#pilot-constant): require
# > 10× LIMIT_RTOL.
CONTROL_MIN = 2e-2
# Weight decay: c_K/c₀ = Π((1 − 2ηλ)² − η²g²) = e^{−4λt}(1 + O(η t)); at η = 1e-3,
# t = 2 the relative error is ~1e-2 at most; e^{−λt} (arXiv v1 reading) is off by e^{−3λt}.
DECAY_RTOL = 2e-2


def _setup(ctx):
    return regression_problem(ctx)[0]



@group("§5", "GD on (m, w) from m₀² − w₀² = 2γ ends at argmin D_{ψ_γ}(x, x₀) with γ = "
       "|m₀² − w₀²|/2, not at the γ = |m₀² − w₀²| prediction")
def _limit(ctx):
    run_iterates = needs("iterates", "run_iterates")
    MW = needs("methods", "MWGradientDescent")
    predict_limit = needs("predict", "predict_limit")
    prob = _setup(ctx)
    x0 = 0.1 * jax.random.normal(jax.random.key(ctx.seed + 1), (prob.n,))
    m0w0 = MW(1e-3, 0.0, GAMMA).init(x0)
    g_half = float(jnp.max(gamma_from_init(*m0w0)))
    ref = np.asarray(predict_limit(PointwiseProduct(g_half), prob, x0).x)
    ctrl = np.asarray(predict_limit(PointwiseProduct(2 * g_half), prob, x0).x)
    lam = float(prob.pl_constant())
    etas = (4e-3, 2e-3, 1e-3) if not ctx.quick else (4e-3, 2e-3)
    errs = []
    for eta in etas:
        # the m⊙w flow's rate is λ·min√(x² + γ²) ≥ λγ: run long enough for the slow directions
        steps = int(min(np.ceil(30.0 / (2 * eta * lam * GAMMA)), 300_000))
        res = run_iterates(MW(eta, 0.0, GAMMA), prob, x0, steps=steps, record_every=steps,
                           record_x=False)
        errs.append(_rel(res.x, ref))
    ctx.data["mw_order"] = (np.array(etas), np.array(errs))
    out = [
        claim_range("gamma_half_limit", "§5", "(m, w)-GD ends at the γ = |m₀² − w₀²|/2 prediction",
                    errs[-1], hi=LIMIT_RTOL,
                    why="O(η) discretisation (docs/theory/mw-flow.md#pilot-constant: 7e-5)",
                    detail=f"γ = {g_half:g}, η = {etas[-1]:g}"),
        claim_range("gamma_full_control", "§5",
                    "negative control: it misses the γ = |m₀² − w₀²| (PILoT constant) prediction",
                    _rel(res.x, ctrl), lo=CONTROL_MIN,
                    why="missed by 0.12 (docs/theory/mw-flow.md#pilot-constant)"),
    ]
    if len(etas) >= 3:
        out.append(claim_range("mw_order", "§5", "the (m, w)-GD error to the prediction is O(η)",
                               loglog_slope(etas, errs), lo=0.8, hi=1.2,
                               why="first-order method over 2 halvings"))
    return out


@group("§5", "with weight decay λ, c = m² − w² decays as c₀e^{−4λt} (the ICLR reading, not −λt)")
def _weight_decay(ctx):
    run_iterates = needs("iterates", "run_iterates")
    MW = needs("methods", "MWGradientDescent")
    prob = _setup(ctx)
    x0 = 0.1 * jax.random.normal(jax.random.key(ctx.seed + 1), (prob.n,))
    eta, lam_wd, T = 1e-3, 0.5, 2.0
    steps = int(round(T / eta))
    res = run_iterates(MW(eta, lam_wd, GAMMA), prob, x0, steps=steps, record_every=steps,
                       record_x=False)
    m0, w0 = MW(eta, lam_wd, GAMMA).init(x0)
    m, w = res.state
    ratio = np.asarray((m * m - w * w) / (m0 * m0 - w0 * w0))
    err = float(np.max(np.abs(ratio / np.exp(-4 * lam_wd * T) - 1.0)))
    return [claim_range("weight_decay_rate", "§5", "c_t/c₀ = e^{−4λt} for (m, w)-GD", err,
                        hi=DECAY_RTOL, why="O(ηt) discretisation; −λt would be off by e^{3λt}",
                        detail=f"measured c_T/c₀ ∈ [{ratio.min():.4g}, {ratio.max():.4g}], "
                               f"e^{{−4λT}} = {np.exp(-4 * lam_wd * T):.4g}")]


def _figures(ctx):
    from hambias import plots

    if "mw_order" not in ctx.data:
        return
    etas, errs = ctx.data["mw_order"]
    fig, ax = plots.new_figure()
    lab = "(m, w)-GD vs γ = |c|/2 prediction"
    plots.plot_convergence_order(ax, etas, {lab: errs}, slopes={lab: loglog_slope(etas, errs)},
                                 expected=1.0, ylabel="‖x_K − x̂_γ‖ / ‖x̂_γ‖")
    ax.set_title("m⊙w: GD on (m, w) → argmin D_ψγ, γ = |m₀² − w₀²|/2")
    ctx.save(fig, "mw_gamma_convention", {"gamma": GAMMA})


GROUPS = (_limit, _weight_decay)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
