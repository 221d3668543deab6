"""Negative α: a Legendre barrier on the box |θ| < 1/|α| (exploratory).

Theory: docs/theory/negative-alpha.md#negative-alpha.

For α = −k < 0 the inverse metric 1 − k|θ| vanishes at |θ| = 1/k; inside the box the
flow is the mirror flow of R_{−k}(x) = Σ[(1 − k|x|) log(1 − k|x|) + k|x|]/k², whose
mirror map −sign(x) log(1 − k|x|)/k blows up at the boundary, so the flow cannot
leave the box and its limit is box-constrained (L∞-like, anti-sparse).
"""

from __future__ import annotations

import jax
import numpy as np

from hambias import HAMGeometry, sparse_regression

from ._core import claim_range, claim_true, group, make_check, needs

NAME = "negative_alpha_box"
TITLE = "Negative α: the box barrier"
PAPER = "open question of the paper (Sec. 6); our derivation"
SEED = 13

# Closed formula two ways: a few roundings (log1p near the boundary loses ~1/(1 − k|x|)
# relative digits only in the argument, which is exact here).
FORMULA_RTOL = 1e-12
# Flow endpoint vs Newton prediction (both at ~1e-10 accuracy).
FLOW_RTOL = 1e-6


@group("§11", "for α = −k the mirror map is −sign(x)log(1 − k|x|)/k, unbounded at the box edge, "
       "and points outside the box are rejected")
def _barrier(ctx):
    k = 2.0
    g = HAMGeometry(-k)
    x = np.array([-0.4999999, -0.3, -1e-6, 0.2, 0.49, 0.4999999999])
    ref = -np.sign(x) * np.log1p(-k * np.abs(x)) / k
    got = np.asarray(g.mirror_map(x))
    rel = float(np.max(np.abs(got - ref) / np.abs(ref)))
    edge = float(np.asarray(g.mirror_map(0.5 * (1 - 1e-15))))
    try:
        g.mirror_map(np.array([0.0, 0.6]))
        rejected = False
    except ValueError:
        rejected = True
    return [
        claim_range("box_mirror_map", "§11", "mirror map of R_{−k} = −sign(x)log(1 − k|x|)/k",
                    rel, hi=FORMULA_RTOL, why="same closed formula, a few roundings"),
        claim_true("barrier_and_domain", "§11",
                   "∇R_{−k} → ∞ at |x| → 1/k and x outside the box raises ValueError",
                   edge > 15.0 and rejected, measured=edge, expected="> 15 at 1 − 1e-15 of the "
                   "edge; ValueError outside", why="−log(1e-15)/2 ≈ 17.3"),
    ]


@group("§11", "the flow with α < 0 stays in the box and ends at the box-constrained "
       "argmin_{Ax=y} D_{R_{−k}}(x, 0), with a smaller ‖x‖_∞ than min-L2")
def _flow(ctx):
    solve_flow = needs("flow", "solve_flow")
    predict_limit = needs("predict", "predict_limit")
    prob, _ = sparse_regression(jax.random.key(ctx.seed), 10, 40, 5)
    mn = np.asarray(prob.min_norm_interpolant())
    k = 0.9 / float(np.max(np.abs(mn)))  # min-L2 lies inside the box: interpolants exist
    geo = HAMGeometry(-k)
    pred = np.asarray(predict_limit(geo, prob).x)
    res = solve_flow(geo, prob, np.zeros(prob.n), t1=np.inf, backend=ctx.flow_backend,
                     rtol=1e-10, atol=1e-12, steady_tol=1e-12)
    xs = np.asarray(res.xs)
    inside = bool(np.all(np.abs(xs[np.isfinite(xs).all(axis=1)]) < 1.0 / k))
    rel = float(np.linalg.norm(np.asarray(res.x) - pred) / np.linalg.norm(pred))
    return [
        claim_true("flow_stays_in_box", "§11", "every saved flow state satisfies |θ| < 1/k",
                   inside and bool(res.converged), measured=float(np.max(np.abs(xs)) * k),
                   expected="k·max|θ_t| < 1, converged", why="Legendre barrier",
                   detail=res.message),
        claim_range("flow_endpoint_box", "§11", "flow endpoint = argmin D_{R_{−k}} (Newton)", rel,
                    hi=FLOW_RTOL, why="flow at 1e-10 vs a 1e-15 KKT point"),
        claim_true("anti_sparse", "§11", "the α < 0 limit has a smaller max-norm than min-L2",
                   float(np.max(np.abs(pred))) < float(np.max(np.abs(mn))),
                   measured=[float(np.max(np.abs(pred))), float(np.max(np.abs(mn)))],
                   expected="first < second", tolerance="strict",
                   why="the barrier penalises large |x_i| (L∞-like bias)"),
    ]


GROUPS = (_barrier, _flow)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
