"""L2 ↔ L1 interpolation of R_α (paper Thm 4.6).

Theory: docs/theory/l2-l1.md#l2-l1.

R_α(x) = x²/2 − α|x|³/6 + O(α²) → ½x² as α → 0; (α/log(1+α)) R_α(x) → |x| as α → ∞
(slowly, ~1/log α).  With x₀ = 0 the implicit-bias point moves from the min-L2 to the
min-L1 interpolant.  With a fixed x₀ ≠ 0 the large-α limit is not min-L1: it is the KL
projection of x₀ in its sign orthant, checked by ``anchored_limit`` (which replaces the
weaker sign-anchoring claim this module made: that Σ(|x_i| − sign(x₀_i)x_i) → 0, true of
every interpolant in x₀'s orthant).  The figure still shows the x₀ ≠ 0 curve.
"""

from __future__ import annotations

import jax
import numpy as np

from hambias import HAMGeometry

from ._core import (
    claim_range,
    claim_true,
    group,
    make_check,
    min_l1_linprog,
    needs,
    regression_problem,
)
from ._core import (
    relative_distance as _rel,
)

NAME = "l2_l1_interpolation"
TITLE = "L2 ↔ L1 interpolation"
PAPER = "Thm 4.6"
SEED = 8

# docs/theory/l2-l1.md#l2-l1 bounds: sup_{|x|≤2}|R_α − x²/2| ≤ 2α for α ≤ 1e-2 (the cubic term gives
# 8α/6); sup_{|x|≤2}|αR_α/log(1+α) − |x||·log α ≤ 1.2 for α ≥ 1e2 (measured ~1.0).
SMALL_ALPHA_FACTOR = 2.0
LARGE_ALPHA_BOUND = 1.2
# Distance to min-L2 is linear in α as α → 0 (≈ 0.014α): log-log slope 1 ± 0.1 over
# α ∈ [1e-4, 1e-2], where the O(α²) term is ≤ 1 % of the O(α) one.
L2_SLOPE_LO, L2_SLOPE_HI = 0.9, 1.1
# cvxpy (Clarabel) min-L1 vs the HiGHS LP: both at 1e-10 tolerances; the minimiser is
# unique for Gaussian A, so the points agree to ~1e-7 relative.
L1_SOLVERS_RTOL = 1e-6
# The x₀ ≠ 0 curve of the figure (its limit is checked by anchored_limit).
ANCHOR_ALPHAS = (1.0, 1e2, 1e4)


def _setup(ctx):
    return regression_problem(ctx)[0]



@group("§8", "R_α → x²/2 as α → 0 (|R_α − x²/2| ≤ 2α on |x| ≤ 2) and (α/log(1+α))R_α → |x| "
       "as α → ∞ (error ≤ 1.2/log α)")
def _limits(ctx):
    x = np.linspace(-2.0, 2.0, 4001)
    small = max(float(np.max(np.abs(np.asarray(HAMGeometry(a).coordinate_potential(x))
                                    - 0.5 * x * x))) / a for a in (1e-4, 1e-3, 1e-2))
    large = max(float(np.max(np.abs(a * np.asarray(HAMGeometry(a).coordinate_potential(x))
                                    / np.log1p(a) - np.abs(x)))) * np.log(a)
                for a in (1e2, 1e4, 1e6))
    return [
        claim_range("small_alpha_l2", "§8", "sup_{|x|≤2}|R_α − x²/2| / α ≤ 2 for α ≤ 1e-2",
                    small, hi=SMALL_ALPHA_FACTOR, why="cubic term α|x|³/6 ≤ 8α/6 on |x| ≤ 2"),
        claim_range("large_alpha_l1", "§8",
                    "sup_{|x|≤2}|αR_α/log(1+α) − |x|| · log α ≤ 1.2 for α ≥ 1e2", large,
                    hi=LARGE_ALPHA_BOUND,
                    why="bound of docs/theory/l2-l1.md#large-alpha; the error decays as 1/log α"),
    ]


@group("§8", "with x₀ = 0 the limit tends to min-L2 linearly as α → 0 and approaches min-L1 "
       "monotonically as α → ∞")
def _interpolants(ctx):
    predict_limit = needs("predict", "predict_limit")
    prob = _setup(ctx)
    mn = np.asarray(prob.min_norm_interpolant())
    l1 = min_l1_linprog(prob)
    small = (1e-4, 1e-3, 1e-2)
    d2 = [_rel(predict_limit(HAMGeometry(a), prob).x, mn) for a in small]
    large = (1e2, 1e4, 1e6, 1e8)
    d1 = [_rel(predict_limit(HAMGeometry(a), prob).x, l1) for a in large]
    ctx.data["interp"] = (small, d2, large, d1)
    slope = float(np.polyfit(np.log(small), np.log(d2), 1)[0])
    return [
        claim_range("l2_limit_linear", "§8", "‖x_α − x_L2‖ ∝ α as α → 0", slope, lo=L2_SLOPE_LO,
                    hi=L2_SLOPE_HI, why="first-order term of R_α in α",
                    detail=f"relative distances {np.round(d2, 8).tolist()}"),
        claim_true("l1_limit_monotone", "§8",
                   "‖x_α − x_L1‖ decreases over α ∈ {1e2, 1e4, 1e6, 1e8}",
                   bool(np.all(np.diff(d1) < 0)), measured=d1, expected="strictly decreasing",
                   tolerance="strict order",
                   why="(α/log α)R_α → ‖·‖₁, slowly (docs/theory/l2-l1.md#large-alpha)"),
    ]


@group("§8", "the toolkit's min-L1 interpolant (cvxpy) agrees with an independent LP (HiGHS)")
def _l1_solvers(ctx):
    min_l1_interpolant = needs("predict", "min_l1_interpolant")
    prob = _setup(ctx)
    ref = min_l1_linprog(prob)
    got = min_l1_interpolant(prob)
    return [claim_range("min_l1_two_solvers", "§8", "min-L1: cvxpy = HiGHS LP", _rel(got.x, ref),
                        hi=L1_SOLVERS_RTOL, why="both solvers at 1e-10, unique minimiser",
                        detail=f"{got.solver}: {got.status.name}")]


def _anchor_curve(ctx):
    """Distance to min-L1 of the x₀ ≠ 0 limit (x₀ of scale 0.1), for the figure only."""
    predict_limit = needs("predict", "predict_limit")
    prob = _setup(ctx)
    x0 = 0.1 * np.asarray(jax.random.normal(jax.random.key(ctx.seed + 1), (prob.n,)))
    l1 = min_l1_linprog(prob)
    return ANCHOR_ALPHAS, [_rel(predict_limit(HAMGeometry(a), prob, x0).x, l1)
                           for a in ANCHOR_ALPHAS]


def _figures(ctx):
    from hambias import plots

    x = np.linspace(-2.0, 2.0, 801)
    alphas = (1e-3, 1e-1, 1.0, 10.0, 1e2, 1e4)
    fig, axes = plots.new_figure(1, 2 if "interp" in ctx.data else 1)
    ax0 = axes[0] if "interp" in ctx.data else axes
    plots.plot_bregman_shapes(
        ax0, x, {f"α = {a:g}": np.asarray(HAMGeometry(a).normalised_potential(x))
                 for a in alphas})
    if "interp" in ctx.data:
        small, d2, large, d1 = ctx.data["interp"]
        curves = {"‖x_α − x_L2‖/‖x_L2‖ (α → 0)": np.asarray(d2),
                  "‖x_α − x_L1‖/‖x_L1‖ (α → ∞)": np.asarray(d1)}
        ts = {"‖x_α − x_L2‖/‖x_L2‖ (α → 0)": small, "‖x_α − x_L1‖/‖x_L1‖ (α → ∞)": large}
        a, dist = _anchor_curve(ctx)
        curves["‖x_α − x_L1‖/‖x_L1‖, x₀ ≠ 0 (anchored)"] = np.asarray(dist)
        ts["‖x_α − x_L1‖/‖x_L1‖, x₀ ≠ 0 (anchored)"] = a
        plots.plot_curves(axes[1], ts, curves, xlabel="α", ylabel="relative distance",
                          logx=True, styles={k: "o-" for k in curves},
                          title="limit of the HAM flow: L2 (α → 0) to L1 (α → ∞)")
    ctx.save(fig, "bregman_shapes", {"alphas": alphas})


GROUPS = (_limits, _interpolants, _l1_solvers)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
