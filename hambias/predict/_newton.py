"""The Newton solvers of the prediction: dual Newton (β = 0) and primal Newton (β > 0).

Both take every elementwise map from the geometry class itself (:class:`Oracle`) and
do their linear algebra in float64 numpy/scipy.

**Dual Newton** (docs/theory/implicit-bias.md#dual-newton).  In the orthonormal basis Q of
range(Aᵀ) (Aᵀλ = Qμ, Ax = y ⇔ Qᵀx = ỹ; :class:`hambias.problems.RowSpace`) the dual of
argmin_{Ax=y} D_R(x, x₀) is

    min_μ  F(μ) = R*(φ₀ + Qμ) − μᵀỹ,   ∇F = Qᵀx − ỹ,   ∇²F = Qᵀ diag(∇²R*) Q,

with x = ∇R*(φ₀ + Qμ), φ₀ = ∇R(x₀).  Its Hessian carries no factor κ(A)²: the design's
conditioning stays out of the Newton system (it would enter twice through A diag(h) Aᵀ).
Steps solve the Newton system by conjugate gradients preconditioned with the last
factorised Hessian (at first the identity: QᵀQ = I) to a forcing tolerance
min(0.1, ‖∇F‖/‖ỹ‖) where the preconditioner's spectral bound predicts that CG is cheaper
than forming and factorising the Hessian (see _cg_pays), and by the factorisation
otherwise.

The line search is an Armijo backtracking that treats an overflowing conjugate as +∞.
Where the geometry's own scale is far below the solution's (γ = 1e-24, α = 1e24), the
first step from μ = 0 overshoots by a factor ~1/γ, far beyond any fixed number of
halvings: the search first finds the longest finite step by bisection on its exponent
(2⁻¹ … 2⁻¹¹⁰⁰), then backtracks from there.  Measured on 20×40 … 60×500 (three seeds,
x₀ = 0 and x₀ ≠ 0): γ = 1e-24 … 1e-300 and α = 1e24 … 1e300 all converge, in at most 50
iterations (13 at γ = 2e-6).  A continuation over easier geometries (the remedy one
would reach for first) needed 3× more iterations in total and was not kept.

**Primal Newton** (β > 0, docs/theory/explicit-bias.md#explicit-bias): Newton on f + βH (H
the geometry's regulariser), its n×n system reduced to d×d by the Woodbury identity,
continued over the geometry's stages at large α·|x| and finished by Newton steps whose
gradient is evaluated in extended precision.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .._rowspace import weighted_gram
from ..status import Status

__all__ = ["solve_dual", "solve_penalised"]

# Newton's own stopping rule (relative residual of the dual gradient), a few ulps above
# round-off.
NEWTON_STOP = 1e-14
NEWTON_MAX_ITER = 200
# CG iterations per Newton step before the Hessian is formed and factorised instead.
_PCG_MAXITER = 50
# Newton also stops once its predicted decrease (the squared Newton decrement) is at
# the round-off of the objective: no iteration can improve the point further.
_DEC_FLOOR = 16 * np.finfo(float).eps
# Armijo sufficient-decrease constant; smallest step exponent of the search (2⁻¹¹⁰⁰ spans
# the whole float64 range, so a finite point is found whenever one exists on the ray).
_ARMIJO_C = 1e-4
_MIN_STEP_EXPONENT = 1100
# β > 0 at large α: primal Newton is continued from α·max|x_ridge| ≤ PRIMAL_START,
# multiplying the hardness by PRIMAL_FACTOR per stage (measured: 20×100, α = 1.8e5,
# β = 0.05 stopped after 200 plain iterations 4e-2 away; with stages it converges).
PRIMAL_CONTINUATION_START = 10.0
PRIMAL_CONTINUATION_FACTOR = 10.0
# Newton steps with extended-precision gradients that finish a continued primal solve.
_REFINE_STEPS = 3


class _Result:
    """What a Newton run returns (internal)."""

    def __init__(self, mu, x, iterations, status, note=""):
        self.mu, self.x, self.iterations, self.status, self.note = mu, x, iterations, status, note


# =============================================================================
# dual Newton (β = 0)
# =============================================================================
def _pcg(rs, h, b, fac, rtol, maxiter):
    """Solve Qᵀ diag(h) Q s = b by CG preconditioned with ``fac`` (None: identity)."""
    solve = (lambda r: r) if fac is None else (lambda r: sla.cho_solve(fac, r,
                                                                          check_finite=False))
    s = np.zeros_like(b)
    r = b.copy()
    z = solve(r)
    p = z.copy()
    rz = r @ z
    target = rtol * np.linalg.norm(b)
    for _ in range(maxiter):
        if np.linalg.norm(r) <= target:
            return s, True
        Ap = rs.hessian_product(h, p)
        a = rz / (p @ Ap)
        s += a * p
        r -= a * Ap
        z = solve(r)
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    return s, bool(np.linalg.norm(r) <= target)


def _cg_pays(linear, r, ratio, rtol) -> bool:
    """Whether preconditioned CG should solve this Newton system instead of a factorisation.

    With preconditioner QᵀD_fQ and Hessian QᵀDQ, the generalised eigenvalues lie in
    [min(D/D_f), max(D/D_f)], so CG needs about ½√κ·ln(2/rtol) iterations, κ =
    max/min of that ratio.  Each costs two products with Q (≈ 4rn flops, memory-bound);
    forming the Hessian costs ≈ r²n.  CG is chosen when its predicted count is within
    _PCG_MAXITER and below r/4 (measured on 250×10000 at γ = 2e-24: a fixed 50-iteration CG
    budget tried first took 62 % of the solve while h changed by 1e50 between steps).
    """
    if linear == "direct":
        return False
    if linear == "pcg":
        return True
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        kappa = float(np.max(ratio) / np.min(ratio))
    if not np.isfinite(kappa):  # a ratio beyond float64: CG could not converge anyway
        return False
    predicted = 0.5 * np.sqrt(kappa) * np.log(2.0 / rtol)
    return predicted <= min(_PCG_MAXITER, r / 4)


def _factor(M):
    """Cholesky of a symmetric positive (semi)definite matrix, with a tiny shift if needed.

    At extreme scales (∇²R* spanning 1e-50 … 1) the Newton matrix can be positive
    definite but singular in float64; a shift of ε·max diag keeps the step a descent
    direction (it only damps the directions float64 cannot resolve).
    """
    try:
        return sla.cho_factor(M, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        shift = 1e2 * np.finfo(float).eps * float(np.max(np.diag(M)))
        return sla.cho_factor(M + shift * np.eye(M.shape[0]), lower=True, check_finite=False)


def _longest_finite(value, lo_exp=_MIN_STEP_EXPONENT):
    """The largest t = 2^-k (k ≤ lo_exp) with value(t) finite, or None; value(1) is not."""
    if not np.isfinite(value(2.0**-lo_exp)):
        return None
    lo, hi = -lo_exp, 0  # finite at 2^lo, infinite at 2^hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if np.isfinite(value(2.0**mid)):
            lo = mid
        else:
            hi = mid
    return 2.0**lo


def _dual_newton(oracle, rs, ytil, phi0, mu, *, max_iter, stop, linear):
    """Minimise F(μ) = R*(φ₀ + Qμ) − μᵀỹ from μ."""
    r = rs.rank
    fac, h_fac = None, np.ones(rs.shape[1])  # preconditioner QᵀD_fQ; at first D_f = I
    scale = max(np.linalg.norm(ytil), np.finfo(float).tiny)
    phi = phi0 + rs.basis(mu) if np.any(mu) else phi0.copy()
    conj, x, h = oracle.dual_point(phi)
    F = conj - mu @ ytil
    if not np.isfinite(F):
        return _Result(mu, x, 0, Status.OVERFLOW, "the conjugate overflows at the start. ")
    g = rs.coords(x) - ytil
    for it in range(1, max_iter + 1):
        gnorm = np.linalg.norm(g)
        # ‖Qᵀx‖ = ‖g + ỹ‖: no second pass over A for the scale of the stopping test
        if gnorm <= stop * (scale + np.linalg.norm(g + ytil)):
            return _Result(mu, x, it - 1, Status.SUCCESS)
        if not np.all(np.isfinite(h)):
            return _Result(mu, x, it - 1, Status.OVERFLOW, "∇²R* overflowed. ")
        step, solved = None, False
        rtol = max(min(0.1, gnorm / scale), 1e-3 * stop)
        if _cg_pays(linear, r, h / h_fac, rtol):
            step, solved = _pcg(rs, h, -g, fac, rtol, _PCG_MAXITER)
        if not solved:
            fac, h_fac = _factor(rs.hessian(h)), h
            step = -sla.cho_solve(fac, g, check_finite=False)
        dec = -(g @ step)  # Newton decrement², > 0
        dphi = rs.basis(step)
        ref = abs(F) + abs(mu @ ytil)
        if not dec > _DEC_FLOOR * ref:
            # F is flat to round-off: take full steps while the gradient shrinks.
            conj_t, x_t, h_t = oracle.dual_point(phi + dphi)
            g_t = rs.coords(x_t) - ytil
            if np.isfinite(conj_t) and np.linalg.norm(g_t) < gnorm:
                mu, phi, x, h, g = mu + step, phi + dphi, x_t, h_t, g_t
                F = conj_t - mu @ ytil
                continue
            return _Result(mu, x, it - 1, Status.SUCCESS)

        def value(t, step=step, dphi=dphi):
            return oracle.conjugate(phi + t * dphi) - (mu + t * step) @ ytil

        t = 1.0
        F_t = value(t)
        if not np.isfinite(F_t):
            t = _longest_finite(value)
            if t is None:
                return _Result(mu, x, it, Status.LINE_SEARCH,
                               "the line search found no finite point on the Newton ray. ")
            F_t = value(t)
        while True:
            accept = np.isfinite(F_t) and F_t <= F - _ARMIJO_C * t * dec
            if not accept and np.isfinite(F_t) and F_t - F <= 64 * np.finfo(float).eps * ref:
                # Near the optimum F is flat to round-off: accept if the gradient shrinks.
                _, x_t, _ = oracle.dual_point(phi + t * dphi)
                accept = np.linalg.norm(rs.coords(x_t) - ytil) < gnorm
            if accept:
                break
            t *= 0.5
            if t < 2.0**-_MIN_STEP_EXPONENT:
                return _Result(mu, x, it, Status.LINE_SEARCH, "the line search found no decrease. ")
            F_t = value(t)
        mu = mu + t * step
        phi = phi + t * dphi
        conj, x, h = oracle.dual_point(phi)
        F = conj - mu @ ytil
        g = rs.coords(x) - ytil
    if np.linalg.norm(g) <= stop * (scale + np.linalg.norm(g + ytil)):
        return _Result(mu, x, max_iter, Status.SUCCESS)
    return _Result(mu, x, max_iter, Status.MAX_ITER,
                   f"no convergence in {max_iter} Newton iterations. ")


def solve_dual(oracle, rs, y, x0, *, max_iter, linear):
    """argmin_{Ax=y} D_R(x, x₀) by dual Newton from μ = 0 (λ = 0, x = x₀).

    Returns a _Result whose ``mu`` are the coordinates of the dual in the row-space basis.
    """
    return _dual_newton(oracle, rs, rs.target(y), oracle.mirror(x0), np.zeros(rs.rank),
                        max_iter=max_iter, stop=NEWTON_STOP, linear=linear)


# =============================================================================
# primal Newton (β > 0)
# =============================================================================
def _woodbury_step(A, D, grad):
    """−(D + AᵀA/d)⁻¹ grad, as D⁻¹g − D⁻¹Aᵀ(dI + AD⁻¹Aᵀ)⁻¹AD⁻¹g (d × d system)."""
    d = A.shape[0]
    Dinv = 1.0 / D
    S = weighted_gram(A, Dinv)
    S[np.diag_indices(d)] += d
    fac = sla.cho_factor(S, lower=True, check_finite=False)
    u = Dinv * grad
    return -(u - Dinv * (A.T @ sla.cho_solve(fac, A @ u, check_finite=False)))


def _primal_newton(oracle, A, y, beta, x, *, max_iter, stop):
    """Minimise F(x) = ‖Ax − y‖²/(2d) + βH(x) by Newton from x (inside the domain)."""
    d, n = A.shape

    def F_of(z):
        r = A @ z - y
        return 0.5 * (r @ r) / d + beta * oracle.regulariser(z)

    def grad_of(z):
        gh, curv = oracle.regulariser_derivatives(z)
        gf = A.T @ (A @ z - y) / d
        return gf, beta * gh, beta * curv

    x = np.array(x, dtype=np.float64)
    for _ in range(200):
        if oracle.in_domain(x):
            break
        x *= 0.5
    else:
        x = np.zeros(n)
    F = F_of(x)
    for it in range(1, max_iter + 1):
        gf, gh, D = grad_of(x)
        grad = gf + gh
        scale = np.linalg.norm(gf) + np.linalg.norm(gh)
        if np.linalg.norm(grad) <= stop * max(scale, np.finfo(float).tiny):
            return _Result(None, x, it - 1, Status.SUCCESS)
        step = _woodbury_step(A, D, grad)
        dec = -(grad @ step)
        if not dec > _DEC_FLOOR * abs(F):
            # F is flat to round-off: take full steps while the gradient shrinks.
            x_t = x + step
            if oracle.in_domain(x_t) and np.linalg.norm(sum(grad_of(x_t)[:2])) < \
                    np.linalg.norm(grad):
                x, F = x_t, F_of(x_t)
                continue
            return _Result(None, x, it - 1, Status.SUCCESS)
        t = 1.0
        while True:
            x_t = x + t * step
            F_t = F_of(x_t)
            if np.isfinite(F_t) and (
                F_t <= F - _ARMIJO_C * t * dec
                or (F_t - F <= 64 * np.finfo(float).eps * abs(F)
                    and np.linalg.norm(sum(grad_of(x_t)[:2])) < np.linalg.norm(grad))
            ):
                break
            t *= 0.5
            if t < 2.0**-60:
                return _Result(None, x, it, Status.LINE_SEARCH, "the line search found no decrease. ")
        x, F = x_t, F_t
    return _Result(None, x, max_iter, Status.MAX_ITER,
                   f"no convergence in {max_iter} Newton iterations. ")


def _refine_extended(oracle, A, y, beta, x, steps=_REFINE_STEPS):
    """Newton steps on f + βH whose gradient of f is evaluated in np.longdouble.

    At large α the float64 gradient has a round-off floor (see penalised_roundoff), so
    float64 Newton stops where that floor hides the remaining gradient: measured 1e-8
    (relative) from the minimiser on 20×100, α = 1e6.  The same Newton steps with an
    extended-precision ∇f (the cancelling part, Ax − y ≈ 0) reach it to ~1e-15.  Steps
    are kept while the gradient shrinks.  A no-op (0 steps) where np.longdouble is
    float64 (e.g. macOS arm64).  Returns (x, steps taken).
    """
    L = np.longdouble
    if np.finfo(L).eps >= np.finfo(np.float64).eps:
        return x, 0
    d = A.shape[0]
    AL, yL = A.astype(L), y.astype(L)

    def grad(z):
        gh, curv = oracle.regulariser_derivatives(z)
        zl = z.astype(L)
        return AL.T @ (AL @ zl - yL) / d + beta * gh.astype(L), beta * curv

    g, D = grad(x)
    gnorm = float(np.linalg.norm(g))
    taken = 0
    for _ in range(steps):
        x_t = x + _woodbury_step(A, D, np.asarray(g, dtype=np.float64))
        if not oracle.in_domain(x_t):
            break
        g_t, D_t = grad(x_t)
        gnorm_t = float(np.linalg.norm(g_t))
        if not gnorm_t < gnorm:
            break
        x, g, D, gnorm, taken = x_t, g_t, D_t, gnorm_t, taken + 1
    return x, taken


def solve_penalised(geometry, oracle_of, A, y, beta, *, max_iter):
    """argmin ‖Ax − y‖²/(2d) + βH(x) by primal Newton, continued where the geometry asks."""
    d = A.shape[0]
    x = A.T @ np.linalg.solve(A @ A.T + d * beta * np.eye(d), y)  # ridge start
    x_scale = float(np.max(np.abs(x)))
    stages = geometry.continuation(x_scale, start=PRIMAL_CONTINUATION_START,
                                   factor=PRIMAL_CONTINUATION_FACTOR) if x_scale > 0 else ()
    total = 0
    for stage in stages:
        res = _primal_newton(oracle_of(stage), A, y, beta, x, max_iter=max_iter,
                             stop=NEWTON_STOP)
        x, total = res.x, total + res.iterations
    oracle = oracle_of(geometry)
    res = _primal_newton(oracle, A, y, beta, x, max_iter=max_iter, stop=NEWTON_STOP)
    res.iterations += total
    if stages:
        res.note = f"continuation over {len(stages)} easier geometries. " + res.note
        if res.status == Status.SUCCESS:
            res.x, refined = _refine_extended(oracle, A, y, beta, res.x)
            res.iterations += refined
            if refined:
                res.note += f"{refined} refinement step(s) with extended-precision gradients. "
    return res
