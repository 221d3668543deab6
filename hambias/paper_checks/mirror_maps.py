"""Other mirror maps: a catalogue of inverse metrics h, side by side (the paper's open question).

:func:`hambias.geometry_from_inverse_metric` turns any positive, even inverse metric h into
a geometry (potential, mirror map, inverse map and conjugate by quadrature and a
safeguarded Newton iteration), so the flow, mirror descent and the prediction run for it
unchanged.  This check first pins the numeric geometry to the closed forms (h = 1 + α|θ|
is HAMGeometry, h = √(θ² + γ²) is PointwiseProduct, to 1e-9), then compares, at α = 10,

    1 + α|θ|  (HAM, p = 1),  1 + αθ²  (p = 2),  1 + α|θ|^½  (p = ½),  √(1 + α²θ²),

with GD (h = 1) and m⊙w (√(θ² + γ²), γ = 1/α) as references: the bias shape (distances
of the limit from x₀ = 0 to the min-L1 and min-L2 interpolants), the time the flow takes
to a relative loss 1e-6, its local rate (``local_rate``), and the sign-crossing time in
the 1-D race of ``inverse_metrics``.  (1 + α|θ|^p for p = 1 and 2 are the first two
entries.)  All use one h, (c + a|θ|^k)^q, with the parameters as a traced pytree.

What the catalogue shows (derived, then measured):

* p < 1: α·R_α(θ) → |θ|^{2−p}/((1 − p)(2 − p)), so 1 + α|θ|^½ tends to the min-ℓ_{3/2}
  interpolant as α → ∞ (at distance O(log α/α)), never to min-L1.
* p > 1: φ(θ) = ∫₀^θ ds/h is bounded: the mirror map has the range (−φ∞, φ∞),
  φ∞ = π/(2√α) for 1 + αθ², so R grows only linearly (R/φ∞ → |θ| − O(log(α θ²)/√α), a
  Huber function with threshold 1/√α) and R* is +∞ outside the range.  Its limit tends
  to min-L1 with an algebraic error in α, faster than HAM's 1/log α.
* p = 1 and √(1 + α²θ²) (both ~α|θ| at large |θ|): R ~ |θ| log(α|θ|)/α, the slow
  logarithmic approach to L1 of HAM.  √(1 + α²θ²) = α·√(θ² + γ²) at γ = 1/α: this smooth
  HAM is m⊙w at γ = 1/α run α times faster (same limit, every time divided by α; checked).
* Speed: the time to a relative loss 1e-6 and the race's crossing time follow the size
  of h where the flow spends its time (near x∞ for the first: the local rate
  2λ_min(A diag(h(x∞)) Aᵀ)/d; near θ = 0 for the second), not its large-|θ| growth.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hambias import HAMGeometry, LossProblem, PointwiseProduct

from ._core import (
    claim_range,
    claim_true,
    group,
    loglog_slope,
    make_check,
    min_l1_linprog,
    needs,
    regression_problem,
    time_to_level,
)
from ._core import relative_distance as _rel
from .inverse_metrics import CROSSING_RTOL, THETA0, THETA_STAR, _quad_crossing
from .local_rate import MODE_RTOL, fitted_rate, predicted_rate, slowest_mode

NAME = "mirror_maps"
TITLE = "Other mirror maps: a catalogue of inverse metrics h(θ), side by side"
PAPER = "open question (beyond the paper)"
SEED = 23

ALPHA = 10.0
GAMMA = 1.0 / ALPHA


def family(theta, params):
    """h(θ) = (c + a|θ|^k)^q for params = (c, a, k, q), k ∈ {½, 1, 2}, q ∈ {½, 1}.

    The exponents are selected (traced), not raised to (exp and log at every quadrature
    node cost 8× the quadrature itself); |θ|^½ is written so that its derivative at 0 is 0
    (the symmetric choice), not NaN.
    """
    c, a, k, q = params
    s = jnp.abs(theta)
    nz = s > 0
    root = jnp.where(nz, jnp.sqrt(jnp.where(nz, s, 1.0)), 0.0)
    sk = jnp.where(k == 1.0, s, jnp.where(k == 2.0, s * s, root))
    base = c + a * sk
    return jnp.where(q == 1.0, base, jnp.sqrt(base))


def _p(*v):
    return tuple(jnp.asarray(x, dtype=jnp.float64) for x in v)


def catalogue(alpha: float = ALPHA) -> dict:
    """label → (c, a, k, q) of the catalogue at α (the four h under study)."""
    return {"1 + α|θ|": _p(1.0, alpha, 1.0, 1.0), "1 + αθ²": _p(1.0, alpha, 2.0, 1.0),
            "1 + α|θ|^½": _p(1.0, alpha, 0.5, 1.0), "√(1 + α²θ²)": _p(1.0, alpha**2, 2.0, 0.5)}


def references() -> dict:
    return {"GD (h = 1)": _p(1.0, 0.0, 1.0, 1.0),
            f"m⊙w √(θ² + γ²), γ = {GAMMA:g}": _p(GAMMA**2, 1.0, 2.0, 0.5)}


# -- tolerances ------------------------------------------------------------------------
# The agreement the issue asks for; measured ~3e-14 (maps) and ~1e-15 (predictions).
AGREE_RTOL = 1e-9
# The identities of docs/theory/potential.md#potential-checks on the numeric maps (quadrature
# ~2 ulp, Newton to round-off).
IDENTITY_RTOL = 1e-12
# R'' = 1/h by central differences of the quadrature mirror map at step 1e-4|θ|:
# truncation (h'/h·1e-4|θ|)²/6 ≲ 1e-8·(θh'/h)², round-off 1e-12; measured ≤ 3e-9.
FD_RTOL = 1e-7
# The flows integrate θ itself: in mirror coordinates (solve_flow's default) every stage
# needs (∇R)⁻¹, a Newton solve over the quadrature for these geometries, which made each
# flow 20-40× slower (measured 13-22 s against 0.5 s on 10×40) for the same error control;
# tests/test_numeric_geometry.py runs the mirror-coordinate flow.
FLOW_COORDINATES = "primal"
# Flow (rtol 1e-11) at t = 40/κ against the certified prediction (§7).
FLOW_RTOL, FLOW_ATOL = 1e-11, 1e-13
FLOW_LIMIT_RTOL = 1e-7
HORIZON = 20.0
N_SAVE = 1601
LOSS_LEVEL = 1e-6  # "time to converge": first time f/f₀ ≤ 1e-6
WINDOW = (1e-8, 1e-12)
MD_STEPS = 200  # mirror descent steps of the agreement claim
# Large-α bias (the α grids per mode; quick runs the smaller ones).
LQ_ALPHAS_FULL, LQ_ALPHAS_QUICK = (1e2, 1e4, 1e6), (1e3, 1e5)
# 1 + α|θ|^½ → min-ℓ_{3/2}: distance O(log α/α), so the log-log slope between the last two
# α is −1 + log(log α₂/log α₁)/log(α₂/α₁) (−0.91 for 1e4 → 1e6); ± 0.1 for the constants
# of the next order (measured −0.89 on 20×100).
LQ_SLOPE_TOL = 0.1
NOT_L1_MIN = 0.5  # relative distance of the ℓ_{3/2} limit from min-L1 (measured 0.87)
L1_ALPHAS_FULL, L1_ALPHAS_QUICK = (1e2, 1e3, 1e4), (1e2, 1e3)
SWEEP_ALPHAS_FULL, SWEEP_ALPHAS_QUICK = (1e2, 1e4), ()


def _geometry(params, validate=True):
    from hambias import geometry_from_inverse_metric

    return geometry_from_inverse_metric(family, params, validate=validate)


# =========================================================================================
# 1. agreement with the closed forms
# =========================================================================================
def _map_pairs(num, ref, x):
    """(numeric, closed form) for φ, (∇R)⁻¹, R, R*, D on x (one compiled program per pair
    of geometry types, instead of one per operation)."""
    phi = ref.mirror_map(x)
    y = jnp.roll(x, 5)
    return [(num.mirror_map(x), phi), (num.inverse_mirror_map(phi), x),
            (num.coordinate_potential(x), ref.coordinate_potential(x)),
            (num.coordinate_conjugate(phi), ref.coordinate_conjugate(phi)),
            (num.coordinate_bregman(x, y), ref.coordinate_bregman(x, y))]


def _map_errors(num, ref):
    import equinox as eqx

    x = jnp.asarray(np.r_[-np.geomspace(1e-8, 1e2, 21), 0.0, np.geomspace(1e-8, 1e2, 21)])
    pairs = eqx.filter_jit(_map_pairs)(num, ref, x)
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))
                            / np.maximum(np.abs(np.asarray(b)), 1e-300))) for a, b in pairs)


@group("§4", "h = 1 + α|θ| reproduces HAMGeometry and h = √(θ² + γ²) PointwiseProduct: maps, "
       "predictions and mirror descent agree to 1e-9")
def _agreement(ctx):
    predict_limit = needs("predict", "predict_limit")
    run_iterates = needs("iterates", "run_iterates")
    MirrorDescent = needs("methods", "MirrorDescent")
    prob, _ = regression_problem(ctx)
    x0 = 0.1 * np.asarray(jax.random.normal(jax.random.key(ctx.seed + 1), (prob.n,)))
    cases = [(f"HAM α = {a:g}", _p(1.0, a, 1.0, 1.0), HAMGeometry(a))
             for a in ((ALPHA,) if ctx.quick else (0.1, ALPHA, 1e3))]
    cases += [(f"m⊙w γ = {g:g}", _p(g * g, 1.0, 2.0, 0.5), PointwiseProduct(g))
              for g in ((GAMMA,) if ctx.quick else (0.01, GAMMA, 1.0))]
    out = []
    for label, params, ref in cases:
        num = _geometry(params)
        maps = _map_errors(num, ref)
        starts = (None, x0) if label in (f"HAM α = {ALPHA:g}", f"m⊙w γ = {GAMMA:g}") else (x0,)
        pred = max(_rel(predict_limit(num, prob, start).x, predict_limit(ref, prob, start).x)
                   for start in starts)
        out.append(claim_range(
            f"agree_{label}", "§4", f"the numeric geometry of h equals {type(ref).__name__} "
            f"({label}): maps (φ, (∇R)⁻¹, R, R*, D) and predictions from x₀ = 0 and x₀ ≠ 0",
            max(maps, pred), hi=AGREE_RTOL, why="quadrature ~2 ulp, Newton to round-off",
            detail=f"maps {maps:.2g}, predictions {pred:.2g}"))
    if ctx.quick:  # mirror descent is compared in tests/test_numeric_geometry.py too
        return out
    num, ref = _geometry(_p(1.0, ALPHA, 1.0, 1.0)), HAMGeometry(ALPHA)
    L = float(prob.lipschitz())
    eta = 0.25 / (L * (1.0 + ALPHA * 2.0))
    a = run_iterates(MirrorDescent(num, eta), prob, jnp.asarray(x0), steps=MD_STEPS,
                     record_every=MD_STEPS, record_x=False)
    b = run_iterates(MirrorDescent(ref, eta), prob, jnp.asarray(x0), steps=MD_STEPS,
                     record_every=MD_STEPS, record_x=False)
    out.append(claim_range(
        "agree_mirror_descent", "§4",
        f"mirror descent with the numeric and the closed-form HAM α = {ALPHA:g} maps agree "
        f"after {MD_STEPS} steps", _rel(np.asarray(a.state), np.asarray(b.state)),
        hi=AGREE_RTOL, why="per-step agreement ~1e-14, contracting iteration"))
    return out


# =========================================================================================
# 2. identities for every h of the catalogue
# =========================================================================================
def _identity_maps(params, x, step):
    g = _geometry(params, validate=False)
    phi = g.mirror_map(x)
    return (phi, g.inverse_mirror_map(phi), g.coordinate_conjugate(phi),
            g.coordinate_potential(x), g.mirror_map(x + step), g.mirror_map(x - step),
            g.inverse_metric(x))


@group("§4", "for every h of the catalogue: (∇R)⁻¹∘∇R = id, R*(∇R(x)) + R(x) = x∇R(x), and "
       "R'' = 1/h (finite differences of the quadrature)")
def _identities(ctx):
    x = np.r_[-np.geomspace(1e-6, 1e2, 17), np.geomspace(1e-6, 1e2, 17)]
    out = []
    step = 1e-4 * np.abs(x)
    maps = jax.jit(_identity_maps)
    for label, params in catalogue().items():
        phi, back, conj, pot, up, down, h = (np.asarray(v) for v in maps(
            params, jnp.asarray(x), jnp.asarray(step)))
        rt = float(np.max(np.abs(back - x) / np.abs(x)))
        fench = float(np.max(np.abs(conj + pot - x * phi) / np.abs(x * phi)))
        fd = (up - down) / (2 * step)
        curv = float(np.max(np.abs(fd * h - 1.0)))
        out.append(claim_range(
            f"identities_{label}", "§4",
            f"h = {label}: inverse∘map = id and the Fenchel identity (relative)",
            max(rt, fench), hi=IDENTITY_RTOL,
            why="the tolerance of docs/theory/potential.md#potential-checks",
            detail=f"round trip {rt:.2g}, Fenchel {fench:.2g}"))
        out.append(claim_range(
            f"curvature_{label}", "§4", f"h = {label}: R'' = 1/h by differences of the mirror map",
            curv, hi=FD_RTOL, why="central differences at 1e-4|θ|: truncation ≲ 1e-8"))
    return out


# =========================================================================================
# 3. the catalogue at α = 10: bias, convergence, race
# =========================================================================================
def _runs(ctx):
    if "runs" in ctx.data:
        return ctx.data["runs"]
    predict_limit = needs("predict", "predict_limit")
    solve_flow = needs("flow", "solve_flow")
    prob, _ = regression_problem(ctx)
    A, y = np.asarray(prob.A), np.asarray(prob.y)
    x0 = np.zeros(prob.n)
    l1, l2 = min_l1_linprog(prob), np.asarray(prob.min_norm_interpolant())
    race_prob = LossProblem(lambda z: 0.5 * jnp.sum((z - THETA_STAR) ** 2))
    out = {}
    for label, params in {**catalogue(), **references()}.items():
        g = _geometry(params)
        pred = predict_limit(g, prob, x0)
        x_inf = np.asarray(pred.x)
        kappa, _ = predicted_rate(g, prob, x_inf)
        T = 2.0 * HORIZON / kappa
        ts = np.linspace(0.0, T, N_SAVE)
        r = solve_flow(g, prob, x0, t1=T, saveat=ts, backend=ctx.flow_backend, rtol=FLOW_RTOL,
                       atol=FLOW_ATOL, coordinates=FLOW_COORDINATES)
        xs = np.asarray(r.xs)[: len(ts)]
        res = xs @ A.T - y
        rel = np.sum(res * res, axis=1) / np.sum(res[0] * res[0])
        mode = np.abs(res @ slowest_mode(g, prob, x_inf))
        sel = (rel <= WINDOW[0]) & (rel >= WINDOW[1])
        mode_fit = (-float(np.polyfit(ts[sel], np.log(mode[sel]), 1)[0]) if sel.sum() >= 20
                    else float("nan"))
        race = solve_flow(g, race_prob, np.array([THETA0]), t1=8.0, n_save=161,
                          zero_crossings=True, backend=ctx.flow_backend, rtol=1e-10, atol=1e-12,
                          coordinates=FLOW_COORDINATES)
        ct = float(np.asarray(race.crossing_times)[0, 0])
        h1 = (lambda t, params=params: float(family(jnp.asarray(t), params)))
        out[label] = {
            "geometry": g, "x_inf": x_inf, "kkt": float(pred.kkt_residual), "pred_ok": pred.converged,
            "to_l1": _rel(x_inf, l1), "to_l2": _rel(x_inf, l2), "kappa": kappa,
            "fit": fitted_rate(ts, rel, WINDOW), "mode_fit": mode_fit,
            "t_conv": time_to_level(ts, rel, LOSS_LEVEL),
            "flow_err": _rel(xs[-1], x_inf), "flow_ok": bool(r.converged), "flow_msg": r.message,
            "crossing": ct if np.isfinite(ct) else np.inf, "crossing_quad": _quad_crossing(h1),
            "race_ts": np.asarray(race.ts), "race_xs": np.asarray(race.xs)[:, 0]}
    ctx.data["runs"] = (prob, out)
    return ctx.data["runs"]


@group("§7", "for every h the flow from x₀ = 0 ends at the certified prediction argmin_{Ax=y} R(x) "
       "(the implicit bias holds for any mirror map), with the local rate of local_rate")
def _catalogue_flows(ctx):
    _, runs = _runs(ctx)
    out = []
    for label, r in runs.items():
        ok = r["flow_ok"] and r["pred_ok"] and r["kkt"] <= 1e-10
        out.append(claim_range(
            f"flow_limit_{label}", "§7",
            f"h = {label}: the flow ends at the prediction (certified, KKT ≤ 1e-10)",
            r["flow_err"] if ok else float("nan"), hi=FLOW_LIMIT_RTOL,
            why="flow at rtol 1e-11 to f/f₀ ~ e⁻⁴⁰",
            detail=f"time to f/f₀ = 1e-6: {r['t_conv']:.4g}; distance to min-L1 "
                   f"{r['to_l1']:.3g}, to min-L2 {r['to_l2']:.3g}; {r['flow_msg']}"))
        out.append(claim_range(
            f"local_rate_{label}", "§10",
            f"h = {label}: near x∞ the residual's slowest mode decays at "
            "λ_min(A diag(h(x∞)) Aᵀ)/d (local_rate)",
            abs(r["mode_fit"] / (0.5 * r["kappa"]) - 1.0), hi=MODE_RTOL,
            why="local_rate's tolerance: linearisation error ~√(f/f₀) in the window",
            detail=f"slow mode {r['mode_fit']:.8g} vs {0.5 * r['kappa']:.8g}; loss exponent "
                   f"{r['fit']:.6g} vs κ = {r['kappa']:.6g}"))
    hyp, mw = runs["√(1 + α²θ²)"], runs[f"m⊙w √(θ² + γ²), γ = {GAMMA:g}"]
    same = _rel(hyp["x_inf"], mw["x_inf"])
    ratios = [mw["t_conv"] / hyp["t_conv"], mw["crossing"] / hyp["crossing"]]
    out.append(claim_true(
        "smooth_ham_is_mw", "§5",
        f"√(1 + α²θ²) = α·√(θ² + γ²) at γ = 1/α: the same limit as m⊙w γ = {GAMMA:g}, reached "
        "α times sooner (regression and race)",
        same <= 1e-10 and all(abs(q / ALPHA - 1.0) <= 1e-4 for q in ratios),
        measured=f"limits {same:.1g} apart; time ratios {ratios[0]:.6g}, {ratios[1]:.6g}",
        expected=f"same limit; ratios {ALPHA:g}", tolerance="1e-10; 1e-4 (save-grid "
        "interpolation of the 1e-6 time)",
        why="a constant factor in h rescales time and leaves the mirror map's level sets"))
    return out


@group("§10", "for every h the 1-D race crosses zero at ∫_{θ₀}^0 dθ/(h(θ)(θ* − θ))")
def _race_claims(ctx):
    _, runs = _runs(ctx)
    return [claim_range(f"crossing_{label}", "§10",
                        f"h = {label}: the flow's zero-crossing time matches the quadrature",
                        abs(r["crossing"] - r["crossing_quad"]) / r["crossing_quad"],
                        hi=CROSSING_RTOL, why="flow at rtol 1e-10 vs quadrature at 1e-12",
                        detail=f"flow {r['crossing']:.6g}, quadrature {r['crossing_quad']:.6g}")
            for label, r in runs.items()]


# =========================================================================================
# 4. the bias at large α: what the growth of h selects
# =========================================================================================
def min_lq_interpolant(A, y, q: float, *, max_iter: int = 100):
    """argmin Σ|x_i|^q s.t. Ax = y (1 < q ≤ 2) by Newton on the dual (numpy).

    Stationarity: sign(x)|x|^{q−1} = Aᵀλ, i.e. x = sign(z)|z|^{1/(q−1)}, z = Aᵀλ; the dual
    maximises λᵀy − Σ|z|^{q*}/q*, q* = q/(q − 1).  Returns x (raises if Newton stalls).
    """
    A, y = np.asarray(A, dtype=np.float64), np.asarray(y, dtype=np.float64)
    e = 1.0 / (q - 1.0)
    qs = q / (q - 1.0)

    def neg(lam):
        return float(np.sum(np.abs(A.T @ lam) ** qs) / qs - lam @ y)

    def grad(lam):
        z = A.T @ lam
        x = np.sign(z) * np.abs(z) ** e
        return x, A @ x - y, z

    lam = np.linalg.solve(A @ A.T, y)
    for _ in range(max_iter):
        x, g, z = grad(lam)
        if np.linalg.norm(g) <= 1e-13 * np.linalg.norm(y):
            return x
        H = (A * (e * np.abs(z) ** (e - 1.0))) @ A.T
        step = -np.linalg.solve(H, g)
        F0 = neg(lam)
        if abs(g @ step) <= 64 * np.finfo(float).eps * abs(F0):
            # the dual is flat to round-off: take the full step while the gradient shrinks
            if np.linalg.norm(grad(lam + step)[1]) < np.linalg.norm(g):
                lam = lam + step
                continue
            break
        t = 1.0
        while not neg(lam + t * step) <= F0 + 1e-4 * t * (g @ step) and t > 1e-12:
            t *= 0.5
        lam = lam + t * step
    x, g, _ = grad(lam)
    if np.linalg.norm(g) <= 1e-11 * np.linalg.norm(y):
        return x
    raise ValueError(f"min_lq_interpolant: no convergence in {max_iter} iterations "
                     f"(residual {np.linalg.norm(g) / np.linalg.norm(y):.2g})")


def _sweep(ctx):
    if "sweep" in ctx.data:
        return ctx.data["sweep"]
    predict_limit = needs("predict", "predict_limit")
    prob, _ = regression_problem(ctx)
    l1 = min_l1_linprog(prob)
    alphas = SWEEP_ALPHAS_QUICK if ctx.quick else SWEEP_ALPHAS_FULL
    lq_alphas = LQ_ALPHAS_QUICK if ctx.quick else LQ_ALPHAS_FULL
    l1_alphas = L1_ALPHAS_QUICK if ctx.quick else L1_ALPHAS_FULL
    grid = sorted(set(alphas) | set(l1_alphas) | set(lq_alphas))
    _, runs = _runs(ctx)
    pts = {(label, ALPHA): runs[label]["x_inf"] for label in catalogue()}
    for a in grid:
        for label, params in catalogue(a).items():
            need = (a in alphas or (a in l1_alphas and label in ("1 + αθ²", "1 + α|θ|"))
                    or (a in lq_alphas and label == "1 + α|θ|^½"))
            if need and (label, a) not in pts:
                pts[(label, a)] = np.asarray(predict_limit(_geometry(params), prob).x)
    lq = min_lq_interpolant(prob.A, prob.y, 1.5)
    ctx.data["sweep"] = (prob, l1, lq, pts, lq_alphas, l1_alphas)
    return ctx.data["sweep"]


@group("§8", "the growth of h sets the large-α bias: 1 + α|θ|^½ → min-ℓ_{3/2} (not ℓ1); "
       "1 + αθ² → min-L1 faster than HAM; for 1 + αθ² the mirror map's range is bounded")
def _large_alpha(ctx):
    _, l1, lq, pts, lq_alphas, l1_alphas = _sweep(ctx)
    p5 = "1 + α|θ|^½"
    d_lq = np.array([_rel(pts[(p5, a)], lq) for a in lq_alphas])
    a1, a2 = lq_alphas[-2:]
    slope = -1.0 + np.log(np.log(a2) / np.log(a1)) / np.log(a2 / a1)
    out = [
        claim_true("sqrt_to_l32_decreasing", "§8",
                   "1 + α|θ|^½: the limit approaches min-ℓ_{3/2} as α grows",
                   bool(np.all(np.diff(d_lq) < 0)),
                   measured=", ".join(f"{v:.3g}" for v in d_lq),
                   expected=f"strictly decreasing over α = {lq_alphas}",
                   tolerance="strict order",
                   why="α·R_α(θ) → (4/3)|θ|^{3/2}: the potential becomes an ℓ_{3/2} norm"),
        claim_range("sqrt_to_l32_rate", "§8",
                    "1 + α|θ|^½: ‖x_α − x_{ℓ3/2}‖ = O(log α/α): log-log slope "
                    "−1 + log(log α₂/log α₁)/log(α₂/α₁)",
                    loglog_slope(np.array(lq_alphas[-2:]), d_lq[-2:]), lo=slope - LQ_SLOPE_TOL,
                    hi=slope + LQ_SLOPE_TOL, why="next term of α·R_α: −2|θ| log(α√|θ|)/α",
                    detail=f"α = {lq_alphas[-2:]}"),
        claim_range("sqrt_not_l1", "§8", "1 + α|θ|^½ at the largest α is far from min-L1",
                    _rel(pts[(p5, lq_alphas[-1])], l1), lo=NOT_L1_MIN,
                    why="an ℓ_{3/2} minimiser is dense"),
    ]
    quad = [_rel(pts[("1 + αθ²", a)], l1) for a in l1_alphas]
    ham = [_rel(pts[("1 + α|θ|", a)], l1) for a in l1_alphas]
    out.append(claim_true(
        "quadratic_to_l1_faster", "§8",
        "1 + αθ²: the distance to min-L1 decreases in α and falls below HAM's (1 + α|θ|) at "
        f"α = {l1_alphas[-1]:g}",
        bool(np.all(np.diff(quad) < 0) and quad[-1] < ham[-1]),
        measured=f"1 + αθ²: {', '.join(f'{v:.3g}' for v in quad)}; HAM: "
                 f"{', '.join(f'{v:.3g}' for v in ham)}",
        expected="decreasing, and below HAM at the largest α", tolerance="strict order",
        why="R/φ∞ = |θ| − O(log(αθ²)/√α) (algebraic) vs HAM's O(1/log α)"))
    g = _geometry(_p(1.0, ALPHA, 2.0, 1.0))
    phi_inf = np.pi / (2.0 * np.sqrt(ALPHA))
    big = 1e6
    err = abs(float(g.mirror_map(big)) - (phi_inf - 1.0 / (ALPHA * big)))
    beyond = np.asarray(g.inverse_mirror_map(jnp.array([1.001 * phi_inf, -2.0 * phi_inf])))
    conj = np.asarray(g.coordinate_conjugate(jnp.array([1.001 * phi_inf])))
    out.append(claim_true(
        "quadratic_bounded_range", "§4",
        "1 + αθ²: φ(θ) → φ∞ = π/(2√α) (φ(1e6) = φ∞ − 1/(α·1e6) to 1e-15), (∇R)⁻¹ = ±∞ and "
        "R* = +∞ beyond",
        err <= 1e-15 and bool(np.all(np.isinf(beyond))) and bool(np.all(conj == np.inf)),
        measured=f"|φ(1e6) − (φ∞ − 1e-7)| = {err:.1g}; (∇R)⁻¹ beyond = {beyond.tolist()}",
        expected="≤ 1e-15; ±inf; +inf", tolerance="1e-15 (a few ulps of φ∞)",
        why="∫₀^∞ ds/(1 + αs²) = π/(2√α); O(θ⁻³) rest is 1e-19"))
    return out


# =========================================================================================
# figure
# =========================================================================================
def _figures(ctx):
    from hambias import plots

    _, runs = _runs(ctx)
    _, l1, lq, pts, _, _ = _sweep(ctx)
    labels = list(runs)
    fig, axes = plots.new_figure(2, 2, size=(13.0, 9.5))
    th = np.linspace(-3.0, 3.0, 601)
    plots.plot_inverse_metrics(
        axes[0], th, {k: np.asarray(v["geometry"].inverse_metric(jnp.asarray(th)))
                         for k, v in runs.items()}, theta0=THETA0, theta_star=None)
    axes[0].set_title(f"the catalogue at α = {ALPHA:g} (and GD, m⊙w)")
    plots.plot_bars(axes[1], labels,
                    {"to min-L1": [runs[k]["to_l1"] for k in labels],
                     "to min-L2": [runs[k]["to_l2"] for k in labels]},
                    ylabel="relative distance of the limit (x₀ = 0)",
                    title="bias shape at α = 10")
    plots.plot_bars(axes[2], labels,
                    {"time to f/f₀ = 1e-6 (regression)": [runs[k]["t_conv"] for k in labels],
                     "zero-crossing time (1-D race)": [runs[k]["crossing"] for k in labels]},
                    ylabel="time", logy=True,
                    markers={"zero-crossing time (1-D race)":
                             [runs[k]["crossing_quad"] for k in labels]},
                    marker_label="quadrature", title="speed: convergence and sign crossing")
    alphas = sorted({a for (_, a) in pts})
    curves, ts = {}, {}
    for label in catalogue():
        aa = [a for a in alphas if (label, a) in pts]
        ts[f"{label}: to min-L1"] = np.array(aa)
        curves[f"{label}: to min-L1"] = np.array([_rel(pts[(label, a)], l1) for a in aa])
    p5 = "1 + α|θ|^½"
    aa = [a for a in alphas if (p5, a) in pts]
    ts[f"{p5}: to min-ℓ3/2"] = np.array(aa)
    curves[f"{p5}: to min-ℓ3/2"] = np.array([_rel(pts[(p5, a)], lq) for a in aa])
    plots.plot_curves(axes[3], ts, curves, xlabel="α", ylabel="relative distance",
                      logx=True, styles={k: ("o--" if "ℓ3/2" in k else "o-") for k in curves},
                      title="large α: what the growth of h selects")
    ctx.save(fig, "mirror_maps", {"alpha": ALPHA, "gamma": GAMMA,
                                  "catalogue": {k: [float(v) for v in p]
                                                for k, p in catalogue().items()}})


GROUPS = (_agreement, _identities, _catalogue_flows, _race_claims, _large_alpha)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__, figures=_figures)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
