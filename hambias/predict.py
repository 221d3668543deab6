"""Where a flow ends: implicit-bias predictions for underdetermined least squares.

For β = 0 the mirror flow of a geometry R started at x₀ on f(x) = ‖Ax − y‖²/(2d)
ends at (THEORY.md §7)

    x_∞ = argmin_{Ax = y} D_R(x, x₀),   KKT: Ax = y,  ∇R(x) − ∇R(x₀) = Aᵀλ.

For HAM with β > 0 it ends at the unique minimiser of f + βH_α with
H_α(θ) = Σ[α|θ_i| − log(1 + α|θ_i|)]/α², independent of x₀ (THEORY.md §11).

Two solvers check each other:

* ``"newton"`` (the default): Newton on the smooth dual
  max_λ λᵀy − R*(∇R(x₀) + Aᵀλ) in d variables, Hessian A diag(∇²R*) Aᵀ
  (float64 numpy/scipy BLAS, Cholesky), Armijo backtracking that treats an
  overflowing conjugate as +∞.  For β > 0, Newton on the primal f + βH_α with
  the n×n system reduced to d×d by the Woodbury identity.
  At large α (α·max|x| > 10) the primal Newton is continued in α (×10 per stage)
  and finished by Newton steps with extended-precision gradients.
* ``"cvxpy"``: a DCP model built once with ``cp.Parameter`` s (:class:`CvxpyPredictor`),
  solved by a named solver (Clarabel) at explicit tolerances.

Every returned :class:`Prediction` carries an independent certificate computed
from its point alone: the relative primal residual ‖Ax − y‖/‖y‖ and the relative
distance of ∇R(x) − ∇R(x₀) from range(Aᵀ) (for β > 0: the relative stationarity
residual of f + βH_α, whose tolerance is raised to its float64 round-off floor where
that is larger; see predict_limit).  A certificate above tolerance, a solver status other
than optimal, an inconsistent system or d ≥ n never yields a silent point.

cvxpy is imported lazily here and nowhere else in hambias.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from typing import Any

import numpy as np
import scipy.linalg as sla

from . import _series
from .geometry import AbstractGeometry, Euclidean, HAMGeometry, PointwiseProduct

__all__ = [
    "Prediction",
    "PredictionError",
    "CvxpyPredictor",
    "predict_limit",
    "min_l1_interpolant",
    "ridge",
    "lasso",
    "NEWTON_KKT_TOL",
    "CVXPY_KKT_TOL",
]

# -- tolerances (one table) ------------------------------------------------------
# Newton stops once the relative primal residual is at round-off; the certificate
# it must pass (relative KKT residual).  Measured: 1e-15 … 1e-13 on 20×100 … 2000×10000.
NEWTON_KKT_TOL = 1e-10
# Newton's own stopping rule (relative residual), a few ulps above round-off.
_NEWTON_STOP = 1e-14
_NEWTON_MAX_ITER = 200
# CG iterations per Newton step before the Hessian is formed and factorised instead.
_PCG_MAXITER = 50
# Newton also stops once its predicted decrease (the squared Newton decrement) is at
# the round-off of the objective: no iteration can improve the point further.
_DEC_FLOOR = 16 * np.finfo(float).eps
# β > 0 at large α: Newton is continued in α from α·max|x_ridge| ≤ _CONTINUATION_START,
# multiplying α by _CONTINUATION_FACTOR per stage (see _primal_newton_continued).
_CONTINUATION_START = 10.0
_CONTINUATION_FACTOR = 10.0
# ... and finished by at most this many Newton steps with extended-precision gradients.
_REFINE_STEPS = 3
# Armijo sufficient-decrease constant and smallest step before the search gives up.
_ARMIJO_C = 1e-4
_MIN_STEP = 2.0**-60
# cvxpy/Clarabel: requested solver tolerance and the certificate its point must pass (the
# KKT residual; for ``lasso`` the relative duality gap).  With tolerances 1e-10 Clarabel's
# points satisfy the KKT residual to ~1e-8 and the lasso gap to ≤ 1e-9 (measured).
CVXPY_SOLVER_TOL = 1e-10
CVXPY_KKT_TOL = 1e-6
# Clarabel sometimes stalls just short of 1e-10 ("optimal_inaccurate" or a numerical
# error); the solve is then repeated at 10x and 100x the tolerance, and the message says so
# (the independent certificate still has to pass).
_CVXPY_RETRY_FACTOR = 10.0
_CVXPY_RETRIES = 2
# The cvxpy primal form of R_α is (u log u − u + 1)/α² with u = 1 + α|x|: the signal
# (α|x|)²/2 sits under O(α|x|) terms, so for small α·max|x| the interior-point solver's
# tolerance is amplified and Clarabel ends "optimal_inaccurate" (measured on 60×500:
# at α·max|x| = 0.007 and 0.015 at every tolerance 1e-10…1e-8).  Below this value
# the cvxpy form is refused and the dual Newton solver is used, with a message.
_CVXPY_MIN_ALPHA_SCALE = 5e-2
# Relative singular value of A below which it counts as rank deficient (SVD check).
_RANK_RTOL = 1e-10
# A Cholesky pivot² of AAᵀ below this fraction of the largest triggers that SVD check
# (a duplicated row leaves a pivot² ~ eps, not 0).
_GRAM_PIVOT_RTOL = 1e-12
# Relative least-squares residual above which Ax = y has no solution.
_CONSISTENCY_RTOL = 1e-10


class PredictionError(RuntimeError):
    """A prediction failed (solver status, certificate above tolerance).

    The failed :class:`Prediction` is attached as ``.prediction`` for inspection.
    """

    def __init__(self, message: str, prediction: Prediction | None = None):
        super().__init__(message)
        self.prediction = prediction


@dataclasses.dataclass(frozen=True)
class Prediction:
    """An implicit-bias prediction with its certificate (immutable).

    Attributes:
        x: the predicted limit, float64 array of shape (n,).
        dual: multipliers λ of shape (d,): ∇R(x) − ∇R(x₀) = Aᵀλ for β = 0; for β > 0
            λ = (Ax − y)/d, so that Aᵀλ + β∇H_α(x) = 0.
        solver: ``"newton"``, ``"closed_form"``, ``"cvxpy:CLARABEL"`` …
        status: ``"optimal"`` or a failure status (``"max_iter"``, ``"line_search"``,
            ``"certificate"``, a cvxpy status).
        message: human-readable account, including any fallback that was taken.
        primal_residual: ‖Ax − y‖/‖y‖ (β = 0); 0 for β > 0 (no constraint).
        dual_residual: dist(∇R(x) − ∇R(x₀), range Aᵀ)/max(‖∇R(x)‖, ‖∇R(x₀)‖) (β = 0);
            ‖∇f + β∇H_α‖/(‖∇f‖ + β‖∇H_α‖) (β > 0).  Both computed from x alone.
        iterations: solver iterations.
        beta: β.
        geometry, x0: what was predicted (x0 is the zero vector when not given).
        seconds: wall-clock time of the solve.
    """

    x: np.ndarray
    dual: np.ndarray
    solver: str
    status: str
    message: str
    primal_residual: float
    dual_residual: float
    iterations: int
    beta: float
    geometry: Any = dataclasses.field(repr=False)
    x0: np.ndarray = dataclasses.field(repr=False)
    seconds: float = 0.0

    @property
    def kkt_residual(self) -> float:
        """max(primal_residual, dual_residual)."""
        return max(self.primal_residual, self.dual_residual)

    @property
    def converged(self) -> bool:
        """Whether the status is ``"optimal"``."""
        return self.status == "optimal"


def _frozen(a) -> np.ndarray:
    a = np.array(a, dtype=np.float64, copy=True)
    a.flags.writeable = False
    return a


# =============================================================================
# float64 numpy kernels of the built-in geometries (and a generic adapter)
# =============================================================================
class _Kernel:
    """Elementwise float64 maps of a separable geometry, with its domain."""

    name = "generic"

    def coordinate_potential(self, x):  # r(x_i)
        raise NotImplementedError

    def bregman(self, x, z):
        """D_R(x, z) = Σ r(x) − r(z) − r'(z)(x − z)."""
        rx, rz = self.coordinate_potential(x), self.coordinate_potential(z)
        return float(np.sum(rx - rz - self.mirror(z) * (x - z)))

    def mirror(self, x):  # ∇R
        raise NotImplementedError

    def inverse(self, phi):  # (∇R)⁻¹ = ∇R*
        raise NotImplementedError

    def conj(self, phi):  # R*(φ), a scalar, +inf on overflow
        raise NotImplementedError

    def dual_hess(self, phi):  # ∇²R*(φ), diagonal
        raise NotImplementedError

    def in_domain(self, x) -> bool:
        return bool(np.all(np.isfinite(x)))


class _HAMKernel(_Kernel):
    def __init__(self, alpha, n):
        self.alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n,))
        self.name = "ham"

    def mirror(self, x):
        return x * _series.ratio_log1p(self.alpha * np.abs(x), np)

    def coordinate_potential(self, x):
        return x * x * _series.potential_ratio(self.alpha * np.abs(x), np)

    def inverse(self, phi):
        return phi * _series.ratio_expm1(self.alpha * np.abs(phi), np)

    def conj(self, phi):
        with np.errstate(over="ignore", invalid="ignore"):
            v = float(np.sum(phi * phi * _series.conjugate_ratio(self.alpha * np.abs(phi), np)))
        return v if np.isfinite(v) else np.inf

    def dual_hess(self, phi):
        with np.errstate(over="ignore"):
            return np.exp(self.alpha * np.abs(phi))

    def in_domain(self, x):
        return bool(np.all(np.isfinite(x)) and np.all(self.alpha * np.abs(x) > -1.0))

    # β > 0: H_α and its derivatives
    def h(self, x):
        return float(np.sum(x * x * _series.h_ratio(self.alpha * np.abs(x), np)))

    def h_grad(self, x):
        return x / (1.0 + self.alpha * np.abs(x))

    def h_hess(self, x):
        return 1.0 / (1.0 + self.alpha * np.abs(x)) ** 2


class _EuclideanKernel(_HAMKernel):
    def __init__(self, n):
        super().__init__(0.0, n)
        self.name = "euclidean"


class _PointwiseKernel(_Kernel):
    def __init__(self, gamma, n):
        self.gamma = np.broadcast_to(np.asarray(gamma, dtype=np.float64), (n,))
        self.name = "pointwise"

    def mirror(self, x):
        return np.arcsinh(x / self.gamma)

    def coordinate_potential(self, x):
        r = x / self.gamma
        return self.gamma * (r * np.arcsinh(r) - r * (r / (1.0 + np.hypot(1.0, r))))

    def inverse(self, phi):
        with np.errstate(over="ignore"):
            return self.gamma * np.sinh(phi)

    def conj(self, phi):
        with np.errstate(over="ignore", invalid="ignore"):
            s = np.sinh(0.5 * phi)
            v = float(np.sum(2.0 * self.gamma * s * s))
        return v if np.isfinite(v) else np.inf

    def dual_hess(self, phi):
        with np.errstate(over="ignore"):
            return self.gamma * np.cosh(phi)


class _GenericKernel(_Kernel):
    """Any AbstractGeometry, through its (JAX) methods; insists on float64 results."""

    def __init__(self, geometry):
        self.geometry = geometry

    def _eval(self, fn, *args):
        out = np.asarray(fn(*args))
        if out.dtype != np.float64:
            raise ValueError(
                f"{type(self.geometry).__name__} returned {out.dtype} values; the prediction "
                "needs float64: enable it at your entry point with "
                'jax.config.update("jax_enable_x64", True)'
            )
        return out

    def mirror(self, x):
        return self._eval(self.geometry.mirror_map, x)

    def bregman(self, x, z):
        return float(self._eval(self.geometry.bregman_divergence, x, z))

    def inverse(self, phi):
        return self._eval(self.geometry.inverse_mirror_map, phi)

    def conj(self, phi):
        with np.errstate(over="ignore", invalid="ignore"):
            v = float(self._eval(self.geometry.conjugate, phi))
        return v if np.isfinite(v) else np.inf

    def dual_hess(self, phi):
        return self._eval(self.geometry.dual_inverse_metric, phi)

    def in_domain(self, x):
        if not np.all(np.isfinite(x)):
            return False
        return not bool(np.any(np.asarray(self.geometry.domain_violation(x))))


def _kernel_for(geometry, n: int) -> _Kernel:
    if not isinstance(geometry, AbstractGeometry):
        raise ValueError(
            f"geometry must be a hambias AbstractGeometry (Euclidean, PointwiseProduct, "
            f"HAMGeometry or a subclass), got {type(geometry).__name__}"
        )
    if type(geometry) is Euclidean:
        return _EuclideanKernel(n)
    if type(geometry) is HAMGeometry:
        return _HAMKernel(_param(geometry.alpha, "alpha", n), n)
    if type(geometry) is PointwiseProduct:
        return _PointwiseKernel(_param(geometry.gamma, "gamma", n), n)
    return _GenericKernel(geometry)


def _param(value, name, n):
    a = np.asarray(value, dtype=np.float64)
    if a.ndim > 1 or (a.ndim == 1 and a.shape[0] != n):
        raise ValueError(f"geometry {name} must be a scalar or have shape ({n},), got {a.shape}")
    return a


# =============================================================================
# input checks and certificates
# =============================================================================
def _problem_arrays(problem):
    if not (hasattr(problem, "A") and hasattr(problem, "y")):
        raise ValueError(
            "predict_limit needs a least-squares problem with attributes A (d, n) and y (d,) "
            f"(hambias.LinearRegression), got {type(problem).__name__}"
        )
    A = np.asarray(problem.A, dtype=np.float64)
    y = np.asarray(problem.y, dtype=np.float64)
    if A.ndim != 2 or y.shape != (A.shape[0],):
        raise ValueError(
            f"expected A of shape (d, n) and y of shape (d,), got {A.shape}, {y.shape}"
        )
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(y))):
        raise ValueError("A and y must be finite, got NaN or inf")
    return A, y


def _check_beta(beta) -> float:
    b = float(beta)
    if not (np.isfinite(b) and b >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    return b


def _x0_array(x0, n, kernel):
    if x0 is None:
        return np.zeros(n)
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != (n,):
        raise ValueError(f"x0 must have shape ({n},) to match A, got {x0.shape}")
    if not kernel.in_domain(x0):
        raise ValueError(
            "x0 must be finite and inside the domain of the geometry "
            "(for HAMGeometry with alpha < 0: |x0| < 1/|alpha|)"
        )
    return x0


class _Gram:
    """Cholesky factor of AAᵀ (rows reduced to a basis if A is rank deficient)."""

    def __init__(self, A, y):
        d, n = A.shape
        self.rows = slice(None)  # all rows (a basic slice: no copy of A)
        self.note = ""
        G = _weighted_gram(A, None)
        ok, c, low = False, None, True
        try:
            c, low = sla.cho_factor(G, lower=True, check_finite=False)
            piv = np.abs(np.diag(c)) ** 2  # Cholesky pivots² ≥ λ_min(AAᵀ)
            ok = bool(np.all(np.isfinite(piv)) and piv.min() > _GRAM_PIVOT_RTOL * piv.max())
        except np.linalg.LinAlgError:
            pass
        if not ok:
            U, s, _ = np.linalg.svd(A, full_matrices=False)
            r = int(np.sum(s > _RANK_RTOL * s[0])) if s.size and s[0] > 0 else 0
            resid = y - U[:, :r] @ (U[:, :r].T @ y)
            ynorm = max(np.linalg.norm(y), np.finfo(float).tiny)
            if np.linalg.norm(resid) > _CONSISTENCY_RTOL * ynorm:
                raise ValueError(
                    f"inconsistent system: no x satisfies Ax = y (A has rank {r} < d = {d} and "
                    f"the least-squares residual is {np.linalg.norm(resid) / ynorm:.3g}·‖y‖)"
                )
            if r == d:  # ill-conditioned but of full row rank: keep every row
                if c is None:
                    raise ValueError(
                        "A has full row rank but AAᵀ is not numerically positive definite "
                        f"(σ_min/σ_max = {s[-1] / s[0]:.2g}); rescale or drop rows"
                    )
                self.factor = (c, low)
                return
            _, _, perm = sla.qr(A.T, mode="economic", pivoting=True)
            self.rows = np.sort(perm[:r])
            self.note = f"A has rank {r} < d = {d}; dropped {d - r} redundant (consistent) rows. "
            G = A[self.rows] @ A[self.rows].T
            c, low = sla.cho_factor(G, lower=True, check_finite=False)
        self.factor = (c, low)

    def project_out(self, A, v):
        """v − Aᵀλ with λ = argmin ‖v − Aᵀλ‖ (A restricted to the basis rows)."""
        Ar = A[self.rows]
        lam = sla.cho_solve(self.factor, Ar @ v, check_finite=False)
        return v - Ar.T @ lam


def _rel(num, den):
    return float(num / den) if den > 0 else float(num)


def _certificate_equality(kernel, A, y, x, x0, gram):
    """(primal, dual) relative KKT residuals of argmin_{Ax=y} D_R(x, x0), from x alone."""
    if not kernel.in_domain(x):
        return np.inf, np.inf
    primal = _rel(np.linalg.norm(A @ x - y), np.linalg.norm(y))
    gx, g0 = kernel.mirror(x), kernel.mirror(x0)
    r = gram.project_out(A, gx - g0)
    dual = _rel(np.linalg.norm(r), max(np.linalg.norm(gx), np.linalg.norm(g0)))
    return primal, dual


def _penalised_roundoff(kernel, A, y, x, beta):
    """Round-off floor of the relative stationarity residual of f + βH_α at x.

    floor = eps·(‖|A|ᵀ(|A||x| + |y|)‖/d + β‖|∇H_α(x)|‖) / (‖∇f(x)‖ + β‖∇H_α(x)‖):
    the first-order change of ∇f + β∇H_α when x is rounded to float64 (|δx| ≤ eps|x|)
    and Ax − y is evaluated in float64 (|δr| ≤ eps(|A||x| + |y|)), over the
    certificate's denominator.  At large α the minimiser interpolates almost exactly
    (‖Ax − y‖ ~ β/α) while |A||x| stays O(‖y‖), so the floor exceeds 1e-10: measured
    (key(5), β = 0.05) the correctly rounded exact minimiser has residual 1e-10 … 1.1e-9
    at α = 1.8e5 … 1e6 on 10×30 … 20×100, and this estimate is 7 … 20× above it.
    """
    d = A.shape[0]
    eps = np.finfo(float).eps
    absA = np.abs(A)
    gh = beta * kernel.h_grad(x)
    gf = A.T @ (A @ x - y) / d
    num = np.linalg.norm(absA.T @ (absA @ np.abs(x) + np.abs(y))) / d + np.linalg.norm(gh)
    return eps * _rel(num, np.linalg.norm(gf) + np.linalg.norm(gh))


def _certificate_penalised(kernel, A, y, x, beta):
    """Relative stationarity residual of f + βH_α at x."""
    if not kernel.in_domain(x):
        return 0.0, np.inf
    d = A.shape[0]
    gf = A.T @ (A @ x - y) / d
    gh = beta * kernel.h_grad(x)
    return 0.0, _rel(np.linalg.norm(gf + gh), np.linalg.norm(gf) + np.linalg.norm(gh))


def _finish(pred_kwargs, on_failure):
    pred = Prediction(**pred_kwargs)
    if pred.status != "optimal" and on_failure == "raise":
        raise PredictionError(pred.message, pred)
    return pred


# =============================================================================
# dual Newton (β = 0) and primal Newton (β > 0)
# =============================================================================
def _weighted_gram(A, w):
    """A diag(w) Aᵀ via a symmetric rank-k update (half the flops of a GEMM)."""
    B = A if w is None else A * np.sqrt(w)
    # Bᵀ is Fortran-ordered: no copy; trans=1 gives (Bᵀ)ᵀBᵀ = B Bᵀ, lower triangle only.
    return sla.blas.dsyrk(1.0, B.T, trans=1, lower=1)


def _pcg(A, h, b, fac, rtol, maxiter):
    """Solve A diag(h) Aᵀ s = b by CG preconditioned with the Cholesky factor ``fac``.

    Returns (s, converged).  Each iteration costs two products with A (4dn flops),
    against d²n for forming A diag(h) Aᵀ.
    """
    s = np.zeros_like(b)
    r = b.copy()
    z = sla.cho_solve(fac, r, check_finite=False)
    p = z.copy()
    rz = r @ z
    target = rtol * np.linalg.norm(b)
    for _ in range(maxiter):
        if np.linalg.norm(r) <= target:
            return s, True
        Ap = A @ (h * (A.T @ p))
        a = rz / (p @ Ap)
        s += a * p
        r -= a * Ap
        z = sla.cho_solve(fac, r, check_finite=False)
        rz, rz_old = r @ z, rz
        p = z + (rz / rz_old) * p
    return s, bool(np.linalg.norm(r) <= target)


def _dual_newton(kernel, A, y, phi0, *, max_iter, stop, gram_factor=None, linear="auto"):
    """Minimise F(λ) = R*(φ₀ + Aᵀλ) − λᵀy.  Returns (λ, x, iterations, status, note).

    The Newton system A diag(∇²R*) Aᵀ s = −∇F is solved by CG preconditioned with
    the last factorised Hessian (at first the Gram matrix AAᵀ, already factorised for
    the certificate) to a forcing tolerance min(0.1, ‖∇F‖/‖y‖) (superlinear inexact
    Newton); where CG does not converge in _PCG_MAXITER iterations the Hessian is
    formed (symmetric rank-k update), factorised and becomes the new preconditioner.
    ``linear="direct"`` always forms it; ``"auto"`` uses CG when d > 4·_PCG_MAXITER
    (CG's budget is then below the cost of one formation).
    """
    d, n = A.shape
    use_pcg = linear == "pcg" or (linear == "auto" and d > 4 * _PCG_MAXITER)
    fac = gram_factor
    ynorm = max(np.linalg.norm(y), np.finfo(float).tiny)
    lam = np.zeros(d)
    phi = phi0.copy()
    F = kernel.conj(phi) - lam @ y
    if not np.isfinite(F):
        return lam, kernel.inverse(phi), 0, "overflow", "the conjugate overflows at x0. "
    x = kernel.inverse(phi)
    g = A @ x - y  # ∇F
    for it in range(1, max_iter + 1):
        if np.linalg.norm(g) <= stop * ynorm:
            return lam, x, it - 1, "optimal", ""
        h = kernel.dual_hess(phi)
        if not np.all(np.isfinite(h)):
            return lam, x, it - 1, "overflow", "∇²R* overflowed. "
        step, solved = None, False
        if use_pcg and fac is not None:
            rtol = max(min(0.1, np.linalg.norm(g) / ynorm), 1e-3 * stop)
            step, solved = _pcg(A, h, -g, fac, rtol, _PCG_MAXITER)
        if not solved:
            H = _weighted_gram(A, h)
            try:
                fac = sla.cho_factor(H, lower=True, check_finite=False)
                step = -sla.cho_solve(fac, g, check_finite=False)
            except np.linalg.LinAlgError:
                return lam, x, it - 1, "singular", "the dual Hessian A diag(∇²R*) Aᵀ is singular. "
        dec = -(g @ step)  # Newton decrement², > 0
        if dec <= _DEC_FLOOR * (abs(F) + abs(lam @ y)):
            # F is flat to round-off: take full steps while the residual shrinks.
            phi_t = phi + A.T @ step
            x_t = kernel.inverse(phi_t)
            g_t = A @ x_t - y
            if np.all(np.isfinite(x_t)) and np.linalg.norm(g_t) < np.linalg.norm(g):
                lam, phi, x, g = lam + step, phi_t, x_t, g_t
                F = kernel.conj(phi) - lam @ y
                continue
            return lam, x, it - 1, "optimal", ""
        dphi = A.T @ step
        t = 1.0
        while True:
            phi_t = phi + t * dphi
            lam_t = lam + t * step
            F_t = kernel.conj(phi_t) - lam_t @ y
            if np.isfinite(F_t):
                if F_t <= F - _ARMIJO_C * t * dec:
                    x_t = kernel.inverse(phi_t)
                    g_t = A @ x_t - y
                    break
                # Near the optimum F is flat to round-off: accept if the gradient shrinks.
                if F_t - F <= 64 * np.finfo(float).eps * (abs(F) + abs(lam @ y)):
                    x_t = kernel.inverse(phi_t)
                    g_t = A @ x_t - y
                    if np.linalg.norm(g_t) < np.linalg.norm(g):
                        break
            t *= 0.5
            if t < _MIN_STEP:
                return lam, x, it, "line_search", "the line search found no decrease. "
        lam, phi, F, x, g = lam_t, phi_t, F_t, x_t, g_t
    if np.linalg.norm(g) <= stop * ynorm:
        return lam, x, max_iter, "optimal", ""
    return lam, x, max_iter, "max_iter", f"no convergence in {max_iter} Newton iterations. "


def _primal_newton_continued(kernel, A, y, beta, *, max_iter, stop):
    """Newton on f + βH_α, continued in α from a well-conditioned start.

    For α·max|x| ≫ 1, H_α is |θ|/α smoothed at scale 1/α: from the ridge start,
    Newton's steps overshoot the kink at 0 by a factor ~ (α|θ|)² and the line search
    needs hundreds of iterations, or fails (measured: 20×100, α = 1.8e5, β = 0.05
    stopped after 200 iterations 4e-2 away).  So α > 0 is reached through
    α_k = α·ρ^{k−K}, k = 0…K, ρ = _CONTINUATION_FACTOR, with α_0·max|x_ridge| ≤
    _CONTINUATION_START, each stage warm-started at the previous minimiser (whose
    kinks sit within a factor ρ of the next one's).  Returns (x, iterations, status, note),
    iterations summed over the stages.
    """
    d, n = A.shape
    x = A.T @ np.linalg.solve(A @ A.T + d * beta * np.eye(d), y)
    alpha = kernel.alpha
    top = float(np.max(alpha)) * float(np.max(np.abs(x)))
    if kernel.name != "ham" or np.any(alpha < 0) or not top > _CONTINUATION_START:
        return _primal_newton(kernel, A, y, beta, max_iter=max_iter, stop=stop)
    stages = int(np.ceil(np.log(top / _CONTINUATION_START) / np.log(_CONTINUATION_FACTOR)))
    total = 0
    for k in range(stages, 0, -1):
        stage = _HAMKernel(alpha * _CONTINUATION_FACTOR**-k, n)
        x, it, _, _ = _primal_newton(stage, A, y, beta, max_iter=max_iter, stop=stop, x=x)
        total += it
    x, it, status, note = _primal_newton(kernel, A, y, beta, max_iter=max_iter, stop=stop, x=x)
    note = f"continuation in alpha over {stages} stages. " + note
    if status == "optimal":
        x, refined = _refine_extended(kernel, A, y, beta, x)
        note += f"{refined} refinement step(s) with extended-precision gradients. " * (refined > 0)
    return x, total + it + refined * (status == "optimal"), status, note


def _refine_extended(kernel, A, y, beta, x, steps=_REFINE_STEPS):
    """Newton steps on f + βH_α whose gradient is evaluated in np.longdouble.

    At large α the float64 gradient has a round-off floor (see _penalised_roundoff), so
    float64 Newton stops where that floor hides the remaining gradient: measured 1e-8
    (relative) from the minimiser on 20×100, α = 1e6.  The same Newton steps with an
    extended-precision gradient reach it to ~1e-15.  Steps are kept while the
    extended-precision gradient shrinks.  A no-op (0 steps) where np.longdouble is
    float64 (e.g. macOS arm64).  Returns (x, steps taken).
    """
    L = np.longdouble
    if np.finfo(L).eps >= np.finfo(np.float64).eps:
        return x, 0
    d = A.shape[0]
    AL, yL = A.astype(L), y.astype(L)

    def grad(z):
        zl = z.astype(L)
        return AL.T @ (AL @ zl - yL) / d + beta * zl / (1 + kernel.alpha.astype(L) * np.abs(zl))

    g = grad(x)
    gnorm = float(np.linalg.norm(g))
    taken = 0
    for _ in range(steps):
        Dinv = 1.0 / (beta * kernel.h_hess(x))
        S = _weighted_gram(A, Dinv)
        S[np.diag_indices(d)] += d
        fac = sla.cho_factor(S, lower=True, check_finite=False)
        u = Dinv * np.asarray(g, dtype=np.float64)
        x_t = x - (u - Dinv * (A.T @ sla.cho_solve(fac, A @ u, check_finite=False)))
        if not kernel.in_domain(x_t):
            break
        g_t = grad(x_t)
        gnorm_t = float(np.linalg.norm(g_t))
        if not gnorm_t < gnorm:
            break
        x, g, gnorm, taken = x_t, g_t, gnorm_t, taken + 1
    return x, taken


def _primal_newton(kernel, A, y, beta, *, max_iter, stop, x=None):
    """Minimise F(x) = ‖Ax − y‖²/(2d) + βH(x) by Newton, its n×n system reduced to d×d.

    Starts at ``x`` (default: ridge).  Returns (x, iterations, status, note).
    """
    d, n = A.shape
    # Start: ridge, x = Aᵀ(AAᵀ + dβ I)⁻¹ y (inside any box? shrink if not).
    if x is None:
        x = A.T @ np.linalg.solve(A @ A.T + d * beta * np.eye(d), y)
    x = np.array(x, dtype=np.float64)
    shrink = 0
    while not kernel.in_domain(x):
        x *= 0.5
        shrink += 1
        if shrink > 200:
            x = np.zeros(n)

    def F_of(z):
        if not kernel.in_domain(z):
            return np.inf
        r = A @ z - y
        return 0.5 * (r @ r) / d + beta * kernel.h(z)

    def grad_of(z):
        return A.T @ (A @ z - y) / d + beta * kernel.h_grad(z)

    F = F_of(x)
    for it in range(1, max_iter + 1):
        gf = A.T @ (A @ x - y) / d
        gh = beta * kernel.h_grad(x)
        grad = gf + gh
        scale = np.linalg.norm(gf) + np.linalg.norm(gh)
        if np.linalg.norm(grad) <= stop * max(scale, np.finfo(float).tiny):
            return x, it - 1, "optimal", ""
        D = beta * kernel.h_hess(x)  # > 0 inside the domain
        Dinv = 1.0 / D
        # (D + AᵀA/d)⁻¹ g = D⁻¹g − D⁻¹Aᵀ (dI + A D⁻¹ Aᵀ)⁻¹ A D⁻¹ g
        S = _weighted_gram(A, Dinv)
        S[np.diag_indices(d)] += d
        fac = sla.cho_factor(S, lower=True, check_finite=False)
        u = Dinv * grad
        step = -(u - Dinv * (A.T @ sla.cho_solve(fac, A @ u, check_finite=False)))
        dec = -(grad @ step)
        if dec <= _DEC_FLOOR * abs(F):
            # F is flat to round-off: take full steps while the gradient shrinks.
            x_t = x + step
            if kernel.in_domain(x_t) and np.linalg.norm(grad_of(x_t)) < np.linalg.norm(grad):
                x, F = x_t, F_of(x_t)
                continue
            return x, it - 1, "optimal", ""
        t = 1.0
        while True:
            x_t = x + t * step
            F_t = F_of(x_t)
            if np.isfinite(F_t) and (
                F_t <= F - _ARMIJO_C * t * dec
                or (
                    F_t - F <= 64 * np.finfo(float).eps * abs(F)
                    and np.linalg.norm(
                        A.T @ (A @ x_t - y) / d + beta * kernel.h_grad(x_t)
                    )
                    < np.linalg.norm(grad)
                )
            ):
                break
            t *= 0.5
            if t < _MIN_STEP:
                return x, it, "line_search", "the line search found no decrease. "
        x, F = x_t, F_t
    return x, max_iter, "max_iter", f"no convergence in {max_iter} Newton iterations. "


# =============================================================================
# cvxpy
# =============================================================================
def _cvxpy():
    try:
        import cvxpy as cp
    except ImportError as err:  # pragma: no cover - cvxpy is a dependency
        raise ImportError("the cvxpy solver needs the cvxpy package (pip install cvxpy)") from err
    return cp


def _solver_options(name: str, tol: float) -> dict:
    if name == "CLARABEL":
        return dict(tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol, tol_ktratio=tol, max_iter=500)
    if name == "SCS":
        return dict(eps_abs=tol, eps_rel=tol, max_iters=200_000)
    if name == "ECOS":
        return dict(abstol=tol, reltol=tol, feastol=tol, max_iters=500)
    raise ValueError(f"cvxpy_solver must be 'CLARABEL', 'SCS' or 'ECOS', got {name!r}")


class CvxpyPredictor:
    """The cvxpy model of a prediction, compiled once, solved for many (y, x₀, β).

    DCP forms (t is a lifting of |x|, valid because each potential increases in |x|):

    * HAMGeometry(α ≠ 0), β = 0:  min Σ(−entr(1 + αt) − αt)/α² − ∇R_α(x₀)·x
      s.t. Ax = y, t ≥ ±x (α < 0 included: entr keeps 1 + αt ≥ 0, the box).
    * HAMGeometry, β > 0:  min ‖Ax − y‖²/(2d) + β Σ(αt − log(1 + αt))/α²,  t ≥ ±x.
    * Euclidean: ½‖x‖² − x₀·x s.t. Ax = y;  ridge for β > 0.
    * PointwiseProduct(γ), β = 0: the dual  max λᵀy − Σγ(cosh z − 1), z = ∇ψ(x₀) + Aᵀλ,
      with cosh z = (eᶻ + e⁻ᶻ)/2, and x = γ sinh z.

    y, ∇R(x₀) and β are ``cp.Parameter`` s (DPP), so only the first solve compiles.
    The object holds the compiled problem; it is not a result and returns fresh
    immutable :class:`Prediction` s.

    Args:
        geometry: Euclidean, HAMGeometry or PointwiseProduct.
        A: design matrix (d, n), d < n for β = 0.
        penalised: build the β > 0 form (HAM/Euclidean only).
        solver: cvxpy solver name, ``"CLARABEL"`` (default), ``"SCS"`` or ``"ECOS"``.
        tol: the solver's gap and feasibility tolerances (default 1e-10).
        kkt_tol: the certificate a solution must pass (default 1e-6).

    Raises:
        ValueError: an unsupported geometry, or β > 0 with PointwiseProduct.

    >>> import numpy as np
    >>> from hambias import HAMGeometry
    >>> pr = CvxpyPredictor(HAMGeometry(1.0), np.array([[1.0, 2.0]]))
    >>> p = pr.solve(np.array([3.0]), on_failure="return")   # exact: x = (0.5, 1.25)
    >>> bool(np.allclose(p.x, [0.5, 1.25], atol=1e-5)), p.kkt_residual < 1e-5
    (True, True)
    """

    def __init__(
        self,
        geometry,
        A,
        *,
        penalised: bool = False,
        solver: str = "CLARABEL",
        tol: float = CVXPY_SOLVER_TOL,
        kkt_tol: float = CVXPY_KKT_TOL,
    ):
        cp = _cvxpy()
        A = np.asarray(A, dtype=np.float64)
        if A.ndim != 2:
            raise ValueError(f"A must have shape (d, n), got {A.shape}")
        d, n = A.shape
        self._tol = tol
        self._options = _solver_options(solver, tol)
        self._solver = solver
        self._kkt_tol = kkt_tol
        self._A = A
        self._geometry = geometry
        self._kernel = _kernel_for(geometry, n)
        self._penalised = penalised
        kind = self._kernel.name
        if kind not in ("ham", "euclidean", "pointwise"):
            raise ValueError(
                "the cvxpy solver supports Euclidean, HAMGeometry and PointwiseProduct, got "
                f"{type(geometry).__name__}; use solver='newton' (it needs only the conjugate)"
            )
        if penalised and kind == "pointwise":
            raise ValueError(
                "beta > 0 is defined for HAMGeometry and Euclidean, not PointwiseProduct"
            )
        self._y = cp.Parameter(d, name="y")
        self._c = cp.Parameter(n, name="grad_R_x0")
        self._beta = cp.Parameter(nonneg=True, name="beta")
        if kind == "pointwise":
            lam = cp.Variable(d)
            z = cp.Variable(n)
            g = self._kernel.gamma
            # Scaled by 1/max γ when γ < 1e-2 (same maximiser): measured 2e-8 agreement at
            # γ = 1e-3 (8e-6 unscaled); the exp-cone solve is only ~3e-5 accurate at γ = 1
            # and ~3e-4 at γ = 10 (the certificate then reports "certificate").
            s = 1.0 / float(np.max(g)) if np.max(g) < 1e-2 else 1.0
            obj = s * (lam @ self._y - cp.sum(cp.multiply(g / 2, cp.exp(z) + cp.exp(-z)) - g))
            cons = [z == self._c + A.T @ lam]
            self._vars = dict(lam=lam, z=z)
            self._problem = cp.Problem(cp.Maximize(obj), cons)
            self._scale = 1.0
            return
        x = cp.Variable(n)
        self._vars = dict(x=x)
        alpha = self._kernel.alpha
        scale = 1.0
        if kind == "euclidean" or np.all(alpha == 0):
            reg = 0.5 * cp.sum_squares(x)
            pen = 0.5 * cp.sum_squares(x)
            cons_t = []
        else:
            if np.any(alpha == 0):
                raise ValueError("the cvxpy form needs alpha != 0 in every coordinate")
            t = cp.Variable(n)
            cons_t = [t >= x, t >= -x]
            # Scaled by s = max|α| (the minimiser is unchanged): Clarabel then reaches its
            # tolerance where the unscaled 1/α² form stops at "optimal_inaccurate" (measured).
            scale = float(np.max(np.abs(alpha)))
            w = scale / alpha**2
            at = cp.multiply(alpha, t)
            reg = cp.sum(cp.multiply(w, -cp.entr(1 + at) - at))
            pen = cp.sum(cp.multiply(w, at - cp.log(1 + at)))
        self._scale = scale
        if penalised:
            obj = scale * cp.sum_squares(A @ x - self._y) / (2 * d) + self._beta * pen
            self._eq = None
            self._problem = cp.Problem(cp.Minimize(obj), cons_t)
        else:
            self._eq = A @ x == self._y
            objective = cp.Minimize(reg - scale * (self._c @ x))
            self._problem = cp.Problem(objective, [self._eq, *cons_t])

    def solve(self, y, x0=None, *, beta: float = 0.0, on_failure: str = "raise") -> Prediction:
        """Solve for targets y (and x₀ for β = 0, β for the penalised form); see predict_limit."""
        A = self._A
        d, n = A.shape
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (d,):
            raise ValueError(f"y must have shape ({d},), got {y.shape}")
        beta = _check_beta(beta)
        if self._penalised != (beta > 0):
            raise ValueError(
                f"this CvxpyPredictor was built with penalised={self._penalised}; got beta={beta}"
            )
        x0 = _x0_array(x0, n, self._kernel)
        self._y.value = y
        self._c.value = self._kernel.mirror(x0)
        self._beta.value = beta
        t0 = time.perf_counter()
        notes = ""
        name = f"cvxpy:{self._solver}"
        best = None
        # The certificate decides, not the solver's status: an "optimal_inaccurate" point
        # that passes it is accepted; one that fails it (or a solver error) is re-solved
        # at 10x, 100x the tolerance, and the most accurate point is kept.
        for tol in self._tol * _CVXPY_RETRY_FACTOR ** np.arange(_CVXPY_RETRIES + 1):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # status says it
                    self._problem.solve(solver=self._solver, **_solver_options(self._solver, tol))
                status = self._problem.status
            except Exception as err:  # cvxpy.SolverError and friends
                status = f"solver_error: {err}"
            stats = self._problem.solver_stats
            iters = int(stats.num_iters) if stats is not None and stats.num_iters is not None else 0
            if status not in ("optimal", "optimal_inaccurate"):
                notes += (
                    f"{name} returned status {status.split(':')[0]!r} (not optimal) "
                    f"at tolerance {tol:g}. "
                )
                if best is None:
                    best = dict(x=np.full(n, np.nan), lam=np.full(d, np.nan), p=np.inf,
                                q=np.inf, status=str(status), iters=iters)
                if not status.startswith("solver_error"):
                    break
                continue
            x, lam = self._point(A, y, d, beta)
            if beta > 0:
                p, q = _certificate_penalised(self._kernel, A, y, x, beta)
            else:
                p, q = _certificate_equality(self._kernel, A, y, x, x0, _Gram(A, y))
            ok = max(p, q) <= self._kkt_tol
            cand = dict(x=x, lam=lam, p=p, q=q, status="optimal" if ok else "certificate",
                        iters=iters)
            if best is None or not np.isfinite(best["p"]) or max(p, q) < max(best["p"], best["q"]):
                best = cand
            if ok:
                notes += f"status {status!r} at tolerance {tol:g}. "
                break
            notes += (f"status {status!r} at tolerance {tol:g}: KKT residual {max(p, q):.2e} "
                      f"above tolerance {self._kkt_tol:g}. ")
            if status == "optimal":  # a looser tolerance would only be less accurate
                break
        seconds = time.perf_counter() - t0
        kkt = max(best["p"], best["q"])
        msg = f"{notes}{name}: {best['status']}; KKT residual {kkt:.2e}"
        return _finish(
            dict(x=_frozen(best["x"]), dual=_frozen(best["lam"]), solver=name,
                 status=best["status"], message=msg, primal_residual=best["p"],
                 dual_residual=best["q"], iterations=best["iters"], beta=beta,
                 geometry=self._geometry, x0=_frozen(x0), seconds=seconds),
            on_failure,
        )

    def _point(self, A, y, d, beta):
        """(x, λ) from the solved cvxpy problem."""
        if self._kernel.name == "pointwise":
            lam = np.asarray(self._vars["lam"].value)
            return self._kernel.inverse(self._c.value + A.T @ lam), lam
        x = np.asarray(self._vars["x"].value)
        if beta > 0:
            return x, (A @ x - y) / d
        return x, -np.asarray(self._eq.dual_value) / self._scale


def _check_box_feasible(A, y, alpha):
    """Raise unless some x with Ax = y lies strictly inside the box |x_i| < 1/|α_i| (α_i < 0).

    LP (scipy HiGHS): minimise s subject to Ax = y, |x_i|·|α_i| ≤ s for α_i < 0.
    """
    from scipy.optimize import linprog

    d, n = A.shape
    neg = alpha < 0
    k = np.where(neg, -alpha, 0.0)
    # variables (x, s): rows  k_i x_i − s ≤ 0  and  −k_i x_i − s ≤ 0  for α_i < 0
    idx = np.flatnonzero(neg)
    rows = np.zeros((2 * idx.size, n + 1))
    rows[np.arange(idx.size), idx] = k[idx]
    rows[idx.size + np.arange(idx.size), idx] = -k[idx]
    rows[:, n] = -1.0
    res = linprog(
        np.r_[np.zeros(n), 1.0], A_ub=rows, b_ub=np.zeros(2 * idx.size),
        A_eq=np.c_[A, np.zeros(d)], b_eq=y, bounds=[(None, None)] * n + [(0, None)], method="highs",
    )
    if res.status != 0:
        raise ValueError(f"box feasibility LP failed: {res.message}")
    if res.x[n] >= 1.0 - 1e-12:
        raise ValueError(
            "HAMGeometry with alpha < 0 has no interpolant inside its box |x| < 1/|alpha|: "
            f"every x with Ax = y has max_i |alpha_i x_i| >= {res.x[n]:.6g} >= 1"
        )


# =============================================================================
# the public entry point
# =============================================================================
def predict_limit(
    geometry,
    problem,
    x0=None,
    *,
    beta: float = 0.0,
    solver: str = "auto",
    kkt_tol: float | None = None,
    max_iter: int = _NEWTON_MAX_ITER,
    cvxpy_solver: str = "CLARABEL",
    cvxpy_tol: float = CVXPY_SOLVER_TOL,
    on_failure: str = "raise",
    _linear: str = "auto",
) -> Prediction:
    """Where the flow of ``geometry`` from x₀ ends on an underdetermined least-squares problem.

    β = 0:  x = argmin_{Ax = y} D_R(x, x₀)        (THEORY.md §7; KKT ∇R(x) − ∇R(x₀) = Aᵀλ)
    β > 0:  x = argmin f(x) + β H_α(x),  H_α(θ) = Σ[α|θ| − log(1 + α|θ|)]/α²   (§11; x₀ unused)

    Args:
        geometry: Euclidean, HAMGeometry (α > 0, α < 0: box |x| < 1/|α|), PointwiseProduct,
            or any AbstractGeometry with conjugate / inverse_mirror_map / dual_inverse_metric
            (Newton only; float64 JAX needed for those).
        problem: a LinearRegression (anything with A of shape (d, n), d < n, and y).
        x0: initial point (default 0); ignored for β > 0.
        beta: weight decay β ≥ 0 (β > 0: HAMGeometry or Euclidean only).
        solver: ``"auto"`` (closed form for Euclidean, else Newton), ``"newton"``,
            ``"cvxpy"`` (falls back to Newton, and says so in ``message``, where the
            cvxpy form of R_α cancels: |α|·max(|x_mn|, |x₀|) < 5e-2).
        kkt_tol: certificate tolerance (default 1e-10 Newton, 1e-6 cvxpy).  For β > 0 with
            Newton it is raised, with a note in ``message``, to the round-off floor of the
            float64 stationarity residual, eps·(‖|A|ᵀ(|A||x| + |y|)‖/d + β‖∇H_α‖)/(‖∇f‖ +
            β‖∇H_α‖) (first-order effect of rounding x and evaluating Ax − y in float64),
            which exceeds 1e-10 at large α (measured 6e-9 at α = 1e6 on 20×100, where the
            correctly rounded exact minimiser itself has residual ~8e-10).
        max_iter: Newton iteration cap (default 200).
        cvxpy_solver, cvxpy_tol: cvxpy solver name and its tolerances (CLARABEL, 1e-10).
        on_failure: ``"raise"`` (default: :class:`PredictionError`) or ``"return"`` (a
            Prediction whose ``status`` and ``message`` say what failed).

    Returns:
        A :class:`Prediction` with the point, duals, solver, status and certificate.

    Raises:
        ValueError: d ≥ n (β = 0), an inconsistent system, a bad x₀ / β / geometry.
        PredictionError: a non-optimal status or a certificate above ``kkt_tol``.

    >>> import numpy as np
    >>> from hambias import HAMGeometry, LinearRegression
    >>> problem = LinearRegression(np.array([[1.0, 2.0]]), np.array([3.0]))
    >>> p = predict_limit(HAMGeometry(1.0), problem)
    >>> p.status, bool(p.kkt_residual < 1e-10)
    ('optimal', True)
    """
    A, y = _problem_arrays(problem)
    d, n = A.shape
    beta = _check_beta(beta)
    if solver not in ("auto", "newton", "cvxpy", "closed_form"):
        raise ValueError(
            f"solver must be 'auto', 'newton', 'cvxpy' or 'closed_form', got {solver!r}"
        )
    if on_failure not in ("raise", "return"):
        raise ValueError(f"on_failure must be 'raise' or 'return', got {on_failure!r}")
    if beta == 0 and d >= n:
        raise ValueError(
            f"the implicit-bias prediction needs an underdetermined problem, d < n "
            f"(fewer samples than dimensions), got A of shape (d, n) = ({d}, {n})"
        )
    kernel = _kernel_for(geometry, n)
    if beta > 0 and kernel.name not in ("ham", "euclidean"):
        raise ValueError(
            f"beta > 0 is defined for HAMGeometry and Euclidean (f + beta·H_alpha, THEORY §11), "
            f"got {type(geometry).__name__}"
        )
    if solver == "closed_form" and kernel.name != "euclidean":
        raise ValueError(
            f"solver='closed_form' exists for Euclidean only, got {type(geometry).__name__}"
        )
    x0 = _x0_array(x0, n, kernel)
    if beta == 0 and kernel.name == "ham" and np.any(kernel.alpha < 0):
        _check_box_feasible(A, y, kernel.alpha)
    note = ""
    if solver == "cvxpy":
        if kernel.name == "ham":
            xmn = A.T @ np.linalg.lstsq(A @ A.T, y, rcond=None)[0]
            scale = max(np.max(np.abs(xmn)), np.max(np.abs(x0)) if beta == 0 else 0.0)
            amin = float(np.min(np.abs(kernel.alpha)))
            if amin * scale < _CVXPY_MIN_ALPHA_SCALE:
                note = (
                    "cvxpy's primal form of R_alpha cancels for "
                    f"|alpha|·max|x| = {amin * scale:.2g} "
                    f"< {_CVXPY_MIN_ALPHA_SCALE:g}; solved by dual Newton instead. "
                )
                solver = "newton"
        if solver == "cvxpy":
            pr = CvxpyPredictor(
                geometry, A, penalised=beta > 0, solver=cvxpy_solver, tol=cvxpy_tol,
                kkt_tol=CVXPY_KKT_TOL if kkt_tol is None else kkt_tol,
            )
            return pr.solve(y, x0, beta=beta, on_failure=on_failure)
    tol = NEWTON_KKT_TOL if kkt_tol is None else kkt_tol
    t0 = time.perf_counter()
    if beta > 0:
        x, iters, status, msg = _primal_newton_continued(
            kernel, A, y, beta, max_iter=max_iter, stop=_NEWTON_STOP
        )
        lam = (A @ x - y) / d
        p, q = _certificate_penalised(kernel, A, y, x, beta)
        name = "newton"
        floor = _penalised_roundoff(kernel, A, y, x, beta) if np.isfinite(q) else 0.0
        if floor > tol:
            msg += f"tolerance raised to the round-off floor {floor:.2e} of the certificate. "
            tol = floor
    else:
        gram = _Gram(A, y)
        note = gram.note + note
        Ar, yr = A[gram.rows], y[gram.rows]
        if kernel.name == "euclidean":
            lam_r = sla.cho_solve(gram.factor, yr - Ar @ x0, check_finite=False)
            x = x0 + Ar.T @ lam_r
            iters, status, msg, name = 1, "optimal", "", "closed_form"
        else:
            phi0 = kernel.mirror(x0)
            lam_r, x, iters, status, msg = _dual_newton(
                kernel, Ar, yr, phi0, max_iter=max_iter, stop=_NEWTON_STOP,
                gram_factor=gram.factor, linear=_linear,
            )
            name = "newton"
        lam = np.zeros(d)
        lam[gram.rows] = lam_r
        p, q = _certificate_equality(kernel, A, y, x, x0, gram)
        if status == "line_search" and max(p, q) <= tol:
            status, msg = "optimal", "stopped at round-off (no further decrease). "
    seconds = time.perf_counter() - t0
    kkt = max(p, q)
    if status == "optimal" and not kkt <= tol:
        status = "certificate"
        msg += f"KKT residual {kkt:.2e} above tolerance {tol:g}. "
    message = f"{note}{msg}{name}: status {status}, KKT residual {kkt:.2e} in {iters} iterations"
    return _finish(
        dict(x=_frozen(x), dual=_frozen(lam), solver=name, status=status, message=message,
             primal_residual=p, dual_residual=q, iterations=iters, beta=beta, geometry=geometry,
             x0=_frozen(x0), seconds=seconds),
        on_failure,
    )


# =============================================================================
# references
# =============================================================================
def min_l1_interpolant(
    problem,
    *,
    solver: str = "auto",
    tol: float = CVXPY_SOLVER_TOL,
    kkt_tol: float = CVXPY_KKT_TOL,
) -> Prediction:
    """argmin_{Ax = y} ‖x‖₁, as the LP  min 1ᵀ(p + q)  s.t.  A(p − q) = y,  p, q ≥ 0.

    Certificate (it decides, not the solver's status): primal ‖Ax − y‖/‖y‖ and, with λ
    the equality dual, dual = max(max(‖Aᵀλ‖_∞ − 1, 0), max_{x_i ≠ 0} |(Aᵀλ)_i − sign x_i|),
    both ≤ ``kkt_tol``.  ``"auto"`` tries scipy's HiGHS (dual simplex: a vertex, certificate
    ~1e-15 measured on 20×100 … 60×500), then cvxpy's Clarabel on the same LP at
    ``tol``; the first certified point is returned.  (Clarabel on the norm1 form ended
    "optimal_inaccurate" on the seeded 40×100 problems, key(0) and key(3).)

    Args:
        problem: a LinearRegression (A of shape (d, n), y).
        solver: ``"auto"``, ``"highs"`` (scipy), or a cvxpy solver name (``"CLARABEL"`` …).
        tol: the cvxpy solver's tolerances (default 1e-10).
        kkt_tol: the certificate every returned point passes (default 1e-6).

    Returns:
        A certified :class:`Prediction` (``message`` lists any solver that was passed over).

    Raises:
        PredictionError: no solver produced a point that passes the certificate.

    >>> import numpy as np
    >>> from hambias import LinearRegression
    >>> p = min_l1_interpolant(LinearRegression(np.array([[1.0, 2.0]]), np.array([2.0])))
    >>> np.round(p.x, 6).tolist()
    [0.0, 1.0]
    """
    A, y = _problem_arrays(problem)
    d, n = A.shape
    ladder = ["highs", "CLARABEL"] if solver == "auto" else [solver]
    notes = ""
    for name in ladder:
        t0 = time.perf_counter()
        x, lam, status, iters = (_l1_highs if name == "highs" else _l1_cvxpy)(A, y, name, tol)
        seconds = time.perf_counter() - t0
        label = "scipy:highs" if name == "highs" else f"cvxpy:{name}"
        if x is None:
            notes += f"{label} returned status {status!r}; "
            continue
        p = _rel(np.linalg.norm(A @ x - y), np.linalg.norm(y))
        q = _l1_dual_residual(A, y, x, lam)
        if max(p, q) <= kkt_tol:
            return Prediction(
                x=_frozen(x), dual=_frozen(lam), solver=label, status="optimal",
                message=f"{notes}min_l1 by {label} (status {status}); KKT residual "
                f"{max(p, q):.2e}", primal_residual=p, dual_residual=q, iterations=iters,
                beta=0.0, geometry=None, x0=_frozen(np.zeros(n)), seconds=seconds,
            )
        notes += f"{label} (status {status}) KKT residual {max(p, q):.2e} > {kkt_tol:g}; "
    raise PredictionError(f"min_l1: no certified solution: {notes}")


def _l1_highs(A, y, name, tol):
    """The L1 LP by scipy's HiGHS; returns (x, λ, status, iterations), x None on failure."""
    from scipy.optimize import linprog

    d, n = A.shape
    res = linprog(np.ones(2 * n), A_eq=np.hstack([A, -A]), b_eq=y, bounds=(0, None),
                  method="highs")
    if res.status != 0:
        return None, None, res.message, int(getattr(res, "nit", 0))
    x = res.x[:n] - res.x[n:]
    return x, np.asarray(res.eqlin.marginals), "optimal", int(res.nit)


def _l1_cvxpy(A, y, name, tol):
    """The L1 LP by a cvxpy solver; returns (x, λ, status, iterations), x None on failure."""
    cp = _cvxpy()
    d, n = A.shape
    p, q = cp.Variable(n, nonneg=True), cp.Variable(n, nonneg=True)
    eq = A @ (p - q) == y
    prob = cp.Problem(cp.Minimize(cp.sum(p) + cp.sum(q)), [eq])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the certificate judges the point
            prob.solve(solver=name, **_solver_options(name, tol))
    except Exception as err:  # cvxpy.SolverError and friends
        return None, None, f"solver_error: {err}", 0
    if prob.status not in ("optimal", "optimal_inaccurate") or p.value is None:
        return None, None, prob.status, 0
    iters = int(prob.solver_stats.num_iters or 0)
    return p.value - q.value, -np.asarray(eq.dual_value), prob.status, iters


def _l1_dual_residual(A, y, x, lam):
    v = A.T @ lam
    sup = np.abs(x) > 1e-7 * max(np.max(np.abs(x)), 1e-300)
    off = max(np.max(np.abs(v)) - 1.0, 0.0)
    on = np.max(np.abs(v[sup] - np.sign(x[sup]))) if np.any(sup) else 0.0
    return float(max(off, on))


def _lasso_gap(A, y, x, lam):
    """Relative duality gap of x for min ‖Ax − y‖²/(2d) + λ‖x‖₁.

    Dual: max_θ yᵀθ − d‖θ‖²/2 subject to ‖Aᵀθ‖_∞ ≤ λ; θ is the residual (y − Ax)/d scaled
    into the feasible set.  The gap P(x) − D(θ) ≥ P(x) − P* bounds the suboptimality of x
    and vanishes exactly at the solution (then θ = (y − Ax)/d and Aᵀθ = λ sign x on the
    support).  Unlike the subgradient residual it needs no guess of the support, which an
    interior-point point (all |x_i| > 0) does not give.
    """
    d = A.shape[0]
    r = y - A @ x
    primal = r @ r / (2 * d) + lam * np.sum(np.abs(x))
    theta = r / (d * max(1.0, np.max(np.abs(A.T @ r)) / (d * lam)))
    dual = y @ theta - d * (theta @ theta) / 2
    return float(max(primal - dual, 0.0) / max(primal, np.finfo(float).tiny))


def ridge(problem, beta: float) -> Prediction:
    """argmin ‖Ax − y‖²/(2d) + β‖x‖²/2 = Aᵀ(AAᵀ + dβI)⁻¹y (closed form, β > 0).

    The α → 0 limit of the β > 0 HAM prediction (H_α → θ²/2, THEORY.md §11).

    >>> import numpy as np
    >>> from hambias import LinearRegression
    >>> round(float(ridge(LinearRegression(np.array([[1.0]]), np.array([2.0])), 1.0).x[0]), 12)
    1.0
    """
    A, y = _problem_arrays(problem)
    beta = _check_beta(beta)
    if beta == 0:
        raise ValueError("ridge needs beta > 0 (beta = 0 is the min-norm interpolant), got 0")
    d, n = A.shape
    t0 = time.perf_counter()
    x = A.T @ sla.solve(A @ A.T + d * beta * np.eye(d), y, assume_a="pos")
    lam = (A @ x - y) / d
    k = _EuclideanKernel(n)
    _, q = _certificate_penalised(k, A, y, x, beta)
    return Prediction(
        x=_frozen(x), dual=_frozen(lam), solver="closed_form", status="optimal",
        message=f"ridge closed form; stationarity residual {q:.2e}", primal_residual=0.0,
        dual_residual=q, iterations=1, beta=beta, geometry=Euclidean(), x0=_frozen(np.zeros(n)),
        seconds=time.perf_counter() - t0,
    )


def lasso(
    problem, lam: float, *, solver: str = "CLARABEL", tol: float = CVXPY_SOLVER_TOL
) -> Prediction:
    """argmin ‖Ax − y‖²/(2d) + λ‖x‖₁, by cvxpy (named solver, explicit tolerances).

    The α → ∞ limit of the β > 0 HAM prediction with λ = β/α (αH_α → |θ|, THEORY.md §11).
    Certificate: the relative duality gap (P(x) − D(θ))/P(x) of the solver's point, with
    θ the scaled residual (see ``_lasso_gap``); it must be ≤ ``CVXPY_KKT_TOL``.  It is
    reported as ``dual_residual``.

    Raises:
        ValueError: lam is not finite and > 0.
        PredictionError: the solver returned no point, or its point (whatever the
            solver's own status, "optimal" or "optimal_inaccurate") fails the certificate.

    >>> import numpy as np
    >>> from hambias import LinearRegression
    >>> float(lasso(LinearRegression(np.array([[1.0]]), np.array([2.0])), 0.5).x[0].round(6))
    1.5
    """
    cp = _cvxpy()
    A, y = _problem_arrays(problem)
    lam = float(lam)
    if not (np.isfinite(lam) and lam > 0):
        raise ValueError(f"lasso needs a finite lam > 0, got {lam!r}")
    d, n = A.shape
    x = cp.Variable(n)
    prob = cp.Problem(cp.Minimize(cp.sum_squares(A @ x - y) / (2 * d) + lam * cp.norm1(x)))
    options = _solver_options(solver, tol)  # ValueError for an unknown solver name
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the certificate judges the point
            prob.solve(solver=solver, **options)
    except Exception as err:  # cvxpy.SolverError and friends
        raise PredictionError(f"lasso: cvxpy:{solver} failed: {err}") from err
    seconds = time.perf_counter() - t0
    if prob.status not in ("optimal", "optimal_inaccurate") or x.value is None:
        raise PredictionError(f"lasso: cvxpy:{solver} returned status {prob.status!r} "
                              "(no solution)")
    xv = np.asarray(x.value)
    gap = _lasso_gap(A, y, xv, lam)
    if not gap <= CVXPY_KKT_TOL:
        raise PredictionError(f"lasso: the cvxpy:{solver} point (status {prob.status}) fails "
                              f"the certificate: relative duality gap {gap:.2e} > "
                              f"{CVXPY_KKT_TOL:g}")
    return Prediction(
        x=_frozen(xv), dual=_frozen((A @ xv - y) / d), solver=f"cvxpy:{solver}",
        status="optimal", message=f"lasso by cvxpy:{solver} (status {prob.status}); relative "
        f"duality gap {gap:.2e}",
        primal_residual=0.0, dual_residual=gap,
        iterations=int(prob.solver_stats.num_iters or 0), beta=lam, geometry=None,
        x0=_frozen(np.zeros(n)), seconds=seconds,
    )
