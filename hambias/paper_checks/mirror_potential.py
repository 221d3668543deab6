"""The Bregman potential R_α of HAM and its mirror map (paper Lemma 4.4).

Theory: docs/theory/potential.md#potential.

R_α(x) = Σ[(1 + α|x|) log(1 + α|x|) − α|x|]/α², ∇R_α = sign(x) log(1 + α|x|)/α,
(∇R_α)⁻¹(φ) = sign(φ)(e^{α|φ|} − 1)/α, R_α*(φ) = Σ(e^{α|φ|} − 1 − α|φ|)/α².

Claims: finite differences of R and R' give R' and R'' = 1/(1 + α|x|) for α ∈ [1e-3, 1e3]
at |x| from 1e-9 to 1e3; the inverse map inverts; the Fenchel identity; evenness,
convexity, R(0) = 0; the formulas derived by sympy from the metric agree; and the
HAM flow (β = 0) is the mirror flow of R_α: the flow's inverse metric is 1/R_α''.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hambias import HAMGeometry

from ._core import claim_range, claim_true, group, make_check, needs

NAME = "mirror_potential"
TITLE = "The Bregman potential R_α and its mirror map"
PAPER = "Lemma 4.4"
SEED = 4

ALPHAS = (1e-3, 1e-1, 1.0, 10.0, 1e3)
# Central differences with relative step h = 1e-4|x|: truncation ~h²R'''/R' ≈ 1e-8,
# roundoff ~eps/1e-4 ≈ 2e-12; docs/theory/potential.md#potential-checks asks for 1e-6.
FD_RTOL = 1e-6
FD_STEP = 1e-4
# Inverse map and Fenchel identity: a few roundings of exp/log
# (docs/theory/potential.md#potential-checks: 1e-12).
ROUND_TRIP_RTOL = 1e-12
# sympy's lambdified closed forms vs the series-guarded numerics: away from the series
# cut-off α|x| < 1e-2 both are accurate to ~1e-14; 1e-10 allows the cut-off region.
SYMPY_RTOL = 1e-10


def _points(seed):
    rng = np.random.default_rng(seed)
    mags = np.concatenate([10.0 ** rng.uniform(-9, 3, 60), [1e-9, 1e-3, 1.0, 1e3]])
    return mags * rng.choice([-1.0, 1.0], mags.size)


@group("§4", "R_α' and R_α'' = 1/(1 + α|x|) agree with finite differences of R_α and R_α'")
def _finite_differences(ctx):
    x = _points(ctx.seed)
    worst1 = worst2 = 0.0
    for a in ALPHAS:
        g = HAMGeometry(a)
        h = FD_STEP * np.abs(x)
        d1 = (np.asarray(g.coordinate_potential(x + h)) - np.asarray(g.coordinate_potential(x - h))
              ) / (2 * h)
        d2 = (np.asarray(g.mirror_map(x + h)) - np.asarray(g.mirror_map(x - h))) / (2 * h)
        m = np.asarray(g.mirror_map(x))
        worst1 = max(worst1, float(np.max(np.abs(d1 - m) / np.abs(m))))
        worst2 = max(worst2, float(np.max(np.abs(d2 * np.asarray(g.inverse_metric(x)) - 1.0))))
    return [
        claim_range("fd_mirror_map", "§4", "∇R_α = R_α' (finite differences)", worst1,
                    hi=FD_RTOL, why="central differences, relative step 1e-4"),
        claim_range("fd_inverse_metric", "§4",
                    "the inverse metric is 1/R_α'' (finite differences of ∇R_α)", worst2,
                    hi=FD_RTOL, why="central differences, relative step 1e-4"),
    ]


@group("§4", "the inverse mirror map inverts ∇R_α and R_α*(∇R_α(x)) + R_α(x) = x·∇R_α(x)")
def _round_trip(ctx):
    x = _points(ctx.seed)
    rt = fen = 0.0
    for a in ALPHAS:
        g = HAMGeometry(a)
        phi = g.mirror_map(x)
        rt = max(rt, float(np.max(np.abs(np.asarray(g.inverse_mirror_map(phi)) - x) / np.abs(x))))
        lhs = np.asarray(g.coordinate_conjugate(phi)) + np.asarray(g.coordinate_potential(x))
        rhs = x * np.asarray(phi)
        fen = max(fen, float(np.max(np.abs(lhs - rhs) / np.abs(rhs))))
    return [
        claim_range("inverse_round_trip", "§4", "(∇R_α)⁻¹(∇R_α(x)) = x", rt, hi=ROUND_TRIP_RTOL,
                    why="a few roundings of log1p/expm1"),
        claim_range("fenchel_identity", "§4", "R_α*(∇R_α(x)) + R_α(x) = x·∇R_α(x)", fen,
                    hi=ROUND_TRIP_RTOL, why="a few roundings; series below the cut-off"),
    ]


@group("§4", "R_α is even, strictly convex, R_α(0) = 0 and ∇R_α(0) = 0")
def _shape(ctx):
    x = _points(ctx.seed)
    ok = True
    worst_even = 0.0
    for a in ALPHAS:
        g = HAMGeometry(a)
        r, rm = np.asarray(g.coordinate_potential(x)), np.asarray(g.coordinate_potential(-x))
        worst_even = max(worst_even, float(np.max(np.abs(r - rm))))
        ok &= bool(np.all(np.asarray(g.inverse_metric(x)) > 0) and np.all(r > 0))
        ok &= float(g.coordinate_potential(0.0)) == 0.0 and float(g.mirror_map(0.0)) == 0.0
    return [claim_true("even_convex_zero", "§4",
                       "R_α(−x) = R_α(x) > 0 for x ≠ 0, R_α'' > 0, R_α(0) = ∇R_α(0) = 0",
                       ok and worst_even == 0.0, measured=worst_even,
                       expected="exact evenness, positive R and R''",
                       why="the formulas depend on |x| only")]


@group("§4", "sympy, deriving R_α from the metric 1 + α|x|, gives the same R_α, ∇R_α, inverse "
       "and conjugate")
def _sympy(ctx):
    ham_geometry = needs("symbolic", "ham_geometry")
    sym = ham_geometry()
    x = _points(ctx.seed)
    worst = 0.0
    for a in (1e-1, 1.0, 10.0):
        g = HAMGeometry(a)
        phi = np.asarray(g.mirror_map(x))
        pairs = (("potential", x, g.coordinate_potential), ("mirror_map", x, g.mirror_map),
                 ("inverse_mirror_map", phi, g.inverse_mirror_map),
                 ("conjugate", phi, g.coordinate_conjugate),
                 ("inverse_metric", x, g.inverse_metric))
        for name, z, fn in pairs:
            ref = np.asarray(sym.numeric(name)(z, a), dtype=float)
            big = np.abs(a * z) > 1e-2  # sympy's closed forms cancel below this
            got = np.asarray(fn(z))
            worst = max(worst, float(np.max(np.abs(got[big] - ref[big]) / np.abs(ref[big]))))
    return [claim_range("sympy_agrees", "§4", "numeric R_α maps = sympy derivation from g⁻¹",
                        worst, hi=SYMPY_RTOL, why="closed forms vs series-guarded numerics")]


@group("§4", "for β = 0 the HAM flow is the mirror flow of R_α: its vector field is −∇f/R_α''")
def _mirror_flow(ctx):
    flow_vector_field = needs("flow", "flow_vector_field")
    from hambias import sparse_regression

    prob, _ = sparse_regression(jax.random.key(ctx.seed), 5, 12, 2)
    x = jax.random.normal(jax.random.key(ctx.seed + 1), (12,))
    worst = 0.0
    for a in ALPHAS:
        g = HAMGeometry(a)
        r2 = jax.vmap(jax.grad(lambda t, g=g: g.mirror_map(t)))(x)  # R_α'' by autodiff
        ref = -prob.grad(x) / r2
        got = flow_vector_field(g, prob, x)
        worst = max(worst, float(jnp.max(jnp.abs(got - ref)) / jnp.max(jnp.abs(ref))))
    return [claim_range("mirror_flow_field", "§4", "HAM flow field = −∇f / R_α''", worst,
                        hi=1e-12, why="autodiff of ∇R_α vs the metric: a few roundings")]


GROUPS = (_finite_differences, _round_trip, _shape, _sympy, _mirror_flow)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
