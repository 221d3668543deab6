"""Discrete stability of GD+HYP: η(1 + α|θ*|)λ_max(∇²f) < 2.

Theory: docs/theory/stability.md#stability.

Near a minimiser GD+HYP behaves like GD with step η(1 + α|θ*_i|).  On the 1-D target
f(θ) = (θ − 2.5)²/2 (λ_max = 1) with α = 200 the threshold is η_c = 2/(1 + 500): η = 1e-3
converges and η = 5e-3 does not, with or without the official wrapper's ±5 clamp.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from hambias import LossProblem

from ._core import claim_true, group, make_check, needs

NAME = "stability_threshold"
TITLE = "Discrete stability threshold η(1 + α|θ*|)λ_max < 2"
PAPER = "Sec. 4 / App. (step-size discussion); our derivation"
SEED = 11

ALPHA, THETA0, THETA_STAR = 200.0, -2.5, 2.5
ETA_C = 2.0 / (1.0 + ALPHA * THETA_STAR)
STEPS = 4000
# "Converged": |θ_K − θ*| ≤ 1e-8 after 4000 steps (contraction ≤ 0.8 per step near θ*
# for η ≤ 0.9η_c, so round-off level long before); "not converged": ≥ 1e-3 away
# (an unstable fixed point is left at geometric speed, or a period-2 orbit remains).
CONVERGED_TOL, UNSTABLE_MIN = 1e-8, 1e-3


def _problem():
    return LossProblem(lambda x: 0.5 * jnp.sum((x - THETA_STAR) ** 2))


def _final_distance(method, ctx):
    run_iterates = needs("iterates", "run_iterates")
    res = run_iterates(method, _problem(), jnp.array([THETA0]), steps=STEPS,
                       record_every=STEPS // 100 if ctx.quick else 1,
                       reference=jnp.array([THETA_STAR]))
    dist = np.asarray(res.distance)
    final = np.inf if bool(res.diverged) else float(dist[-1])
    return final, np.asarray(res.steps), dist, res.message


def _verdicts(ctx, label, make):
    out = []
    cases = ((1e-3, True), (5e-3, False), (0.9 * ETA_C, True), (1.1 * ETA_C, False))
    for eta, stable in cases:
        final, steps, dist, msg = _final_distance(make(eta), ctx)
        ctx.data.setdefault("curves", {})[f"{label}, η = {eta:.3g}"] = (steps, dist)
        ok = final <= CONVERGED_TOL if stable else final >= UNSTABLE_MIN
        out.append(claim_true(
            f"{label}_eta{eta:.3g}", "§11",
            f"{label} with η = {eta:.3g} ({eta / ETA_C:.2f} η_c) "
            f"{'converges' if stable else 'does not converge'}", ok, measured=final,
            expected=f"|θ_K − θ*| {f'≤ {CONVERGED_TOL:g}' if stable else f'≥ {UNSTABLE_MIN:g}'}",
            tolerance=f"{STEPS} steps",
            why="linear rate |1 − η(1 + α|θ*|)| per step near θ*", detail=msg))
    return out


@group("§11", "GD+HYP* converges iff η(1 + α|θ*|)λ_max < 2 (1-D, α = 200, θ* = 2.5)")
def _plain(ctx):
    GDHyp = needs("methods", "GDHyp")
    return _verdicts(ctx, "GD+HYP*", lambda eta: GDHyp(eta, ALPHA))


@group("§11", "the same threshold holds with the official wrapper's ±5 exponent clamp")
def _clamped(ctx):
    OptaxMethod = needs("methods", "OptaxMethod")
    ham_wrapper_faithful = needs("optimizers", "ham_wrapper_faithful")
    return _verdicts(ctx, "wrapper (clamp ±5)", lambda eta: OptaxMethod(ham_wrapper_faithful(
        eta, ALPHA, 0.0, clamp=5.0, max_norm=None, min_ndim=0)))


def _figures(ctx):
    from hambias import plots

    if "curves" not in ctx.data:
        return
    fig, ax = plots.new_figure()
    data = {k: v for k, v in ctx.data["curves"].items() if k.startswith("GD+HYP*")}
    plots.plot_curves(ax, {k: v[0] for k, v in data.items()},
                      {k: np.where(v[1] > 0, v[1], np.nan) for k, v in data.items()},
                      xlabel="iteration k", ylabel="|θ_k − θ*|",
                      title=f"GD+HYP*, α = {ALPHA:g}, θ* = {THETA_STAR}: η_c = {ETA_C:.3g}")
    ctx.save(fig, "stability_threshold", {"alpha": ALPHA, "eta_c": ETA_C})


GROUPS = (_plain, _clamped)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
