"""The row space of a design matrix in a stable basis: one factorisation per problem.

Everything hambias computes about Ax = y (the min-norm interpolant, the dual Newton
of the implicit-bias prediction, the KKT certificate of a point) works in an
orthonormal basis Q (n × r) of range(Aᵀ) with coordinates μ: Aᵀλ = Qμ, and Ax = y
⇔ Qᵀx = ỹ.  Forming AAᵀ squares the condition number κ(A): the normal equations lose
κ²·ε where an orthogonal factorisation loses κ·ε (Golub & Van Loan, §5.3), so:

* **"cholesky"**: when the Cholesky factor L of AAᵀ shows κ(A) ≤ ``KAPPA_CHOLESKY``,
  Q = AᵀL⁻ᵀ is used implicitly (one product with A and a triangular solve).  This is
  the fast path of every well-conditioned design (a Gaussian 2000 × 10000 design has
  κ ≈ 2.6).  Solves are refined once (corrected semi-normal equations) and
  projections are applied twice ("twice is enough"), which removes the κ² loss up to
  this κ.
* **"svd"**: otherwise the economic SVD A = U S Vᵀ gives Q = V_r explicitly; it also
  reveals the rank.  Singular values at or below ``RANK_RTOL``·σ_max count as exact
  zeros (a repeated row gives ~1e-16): such rows are redundant and dropped if y is
  consistent with them, and the system is refused as inconsistent otherwise.  Between
  that and ``1/KAPPA_MAX`` the matrix has full rank but its solutions carry fewer
  than six correct digits in float64, and it is refused.

Supported range, measured against 60-digit mpmath solutions (tests/test_range_predict.py):
κ(A) ≤ 1e10 with a relative error of the min-norm interpolant below 10·κ(A)·ε.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg as sla

__all__ = ["RowSpace", "RANK_RTOL", "KAPPA_MAX", "KAPPA_CHOLESKY"]

#: Relative singular value at or below which a direction of A counts as an exact zero.
#: Repeated or linearly dependent rows in float64 leave σ ≈ 1e-16·σ_max; a genuinely
#: small singular value 1e-12·σ_max is still resolved (to ~1e-4) and must not be dropped
#: (dropping it changes the min-norm solution by O(1)).  Between the two, ``KAPPA_MAX``
#: refuses.
RANK_RTOL = 1e-13
#: Largest κ(A) = σ_max/σ_min accepted.  Beyond it an interpolant is determined by the
#: float64 data only to about κ·ε > 2e-6; hambias refuses rather than return fewer than
#: six correct digits.
KAPPA_MAX = 1e10
#: Largest κ(A) for the Cholesky route.  Its basis AᵀL⁻ᵀ is orthonormal only to about
#: κ²·ε = 2e-8 here, which one refinement step (solves) or a second projection pass
#: (certificates) reduces to round-off.
KAPPA_CHOLESKY = 1e4
#: Relative least-squares residual above which a rank-deficient Ax = y is inconsistent.
CONSISTENCY_RTOL = 1e-10


def _gram(A: np.ndarray) -> np.ndarray:
    """AAᵀ (lower triangle) by a symmetric rank-k update: half the flops of a GEMM."""
    return sla.blas.dsyrk(1.0, A.T, trans=1, lower=1)


def _sym_one_norm(G: np.ndarray) -> float:
    """‖G‖₁ (the largest column sum of |G|) of the symmetric matrix whose lower triangle G
    holds, from the column and row sums of |lower| without a symmetrised copy."""
    L = np.tril(G)
    np.abs(L, out=L)
    return float(np.max(L.sum(axis=0) + L.sum(axis=1) - np.diag(L)))


def weighted_gram(A: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """A diag(w) Aᵀ (lower triangle), w ≥ 0."""
    return _gram(A if w is None else A * np.sqrt(w))


@dataclasses.dataclass(frozen=True, eq=False)
class RowSpace:
    """An orthonormal basis of range(Aᵀ) for a fixed A (d × n), in float64.

    Build it with :meth:`of`; it is immutable and holds only the factorisation.

    Attributes:
        kind: ``"cholesky"`` (implicit Q = AᵀL⁻ᵀ) or ``"svd"`` (explicit Q = V_r).
        shape: (d, n).
        rank: r, the number of independent rows kept.
        rows: indices of the rows of A that span the kept space (all rows unless some
            were redundant); ``target``, ``multipliers`` refer to them.
        cond: κ(A) of the kept rows (an estimate on the Cholesky route).
        norm: ‖A‖₂ (an estimate on the Cholesky route, within 1 %).
    """

    kind: str
    shape: tuple
    rank: int
    cond: float
    norm: float
    _A: np.ndarray = dataclasses.field(repr=False)
    _L: np.ndarray | None = dataclasses.field(repr=False, default=None)
    _U: np.ndarray | None = dataclasses.field(repr=False, default=None)
    _s: np.ndarray | None = dataclasses.field(repr=False, default=None)
    _V: np.ndarray | None = dataclasses.field(repr=False, default=None)

    @classmethod
    def of(cls, A) -> RowSpace:
        """Factorise A (d × n, finite).

        Raises:
            ValueError: A is zero, or κ(A) > ``KAPPA_MAX`` on its nonzero singular
                values (the message gives κ and the digits that float64 keeps).
        """
        A = np.ascontiguousarray(np.asarray(A, dtype=np.float64))
        d, n = A.shape
        if d <= n:
            try:
                G = _gram(A)
                L = sla.cholesky(G, lower=True, check_finite=False)
                if np.all(np.isfinite(L)) and np.all(np.diag(L) > 0):
                    anorm = _sym_one_norm(G)
                    rcond, info = sla.lapack.dpocon(L, anorm, uplo="L")
                    kappa = float(np.sqrt(1.0 / rcond)) if info == 0 and rcond > 0 else np.inf
                    if kappa <= KAPPA_CHOLESKY:
                        return cls("cholesky", (d, n), d, kappa, _power_norm(L), A, _L=L)
            except np.linalg.LinAlgError:
                pass
        U, s, Vt = np.linalg.svd(A, full_matrices=False)
        if s.size == 0 or not s[0] > 0:
            raise ValueError(f"A (shape {A.shape}) is zero: it constrains nothing")
        r = int(np.sum(s > RANK_RTOL * s[0]))
        kappa = float(s[0] / s[r - 1])
        if kappa > KAPPA_MAX:
            raise ValueError(
                f"A is too ill-conditioned for float64: κ(A) = σ_max/σ_min = {kappa:.3g} > "
                f"{KAPPA_MAX:g}, so its solutions are determined only to about κ·ε = "
                f"{kappa * np.finfo(float).eps:.1g} (relative); rescale or regularise the "
                f"problem, or drop the nearly dependent rows")
        return cls("svd", (d, n), r, kappa, float(s[0]), A, _U=U[:, :r], _s=s[:r],
                   _V=Vt[:r].T.copy())

    # -- maps between x-space and the coordinates μ ----------------------------------
    def basis(self, mu: np.ndarray) -> np.ndarray:
        """Qμ ∈ range(Aᵀ), shape (n,)."""
        if self.kind == "svd":
            return self._V @ mu
        return self._A.T @ sla.solve_triangular(self._L, mu, lower=True, trans="T",
                                                check_finite=False)

    def coords(self, x: np.ndarray) -> np.ndarray:
        """Qᵀx, shape (r,)."""
        if self.kind == "svd":
            return self._V.T @ x
        return sla.solve_triangular(self._L, self._A @ x, lower=True, check_finite=False)

    def target(self, y: np.ndarray) -> np.ndarray:
        """ỹ with Ax = y ⇔ Qᵀx = ỹ, shape (r,).

        Raises:
            ValueError: rank-deficient A and y not in its range (inconsistent system).
        """
        if self.kind == "cholesky":
            return sla.solve_triangular(self._L, y, lower=True, check_finite=False)
        c = self._U.T @ y
        if self.rank < self.shape[0]:
            resid = np.linalg.norm(y - self._U @ c)
            ynorm = np.linalg.norm(y)
            if resid > CONSISTENCY_RTOL * max(ynorm, np.finfo(float).tiny):
                raise ValueError(
                    f"inconsistent system: no x satisfies Ax = y (A has rank {self.rank} < "
                    f"d = {self.shape[0]} and the least-squares residual is "
                    f"{resid / max(ynorm, np.finfo(float).tiny):.3g}·‖y‖)")
        return c / self._s

    def multipliers(self, mu: np.ndarray) -> np.ndarray:
        """λ (d,) with Aᵀλ = Qμ (the min-norm one when rows are redundant)."""
        if self.kind == "svd":
            return self._U @ (mu / self._s)
        return sla.solve_triangular(self._L, mu, lower=True, trans="T", check_finite=False)

    def hessian(self, h: np.ndarray) -> np.ndarray:
        """Qᵀ diag(h) Q (r × r, symmetric, full), h ≥ 0."""
        if self.kind == "svd":
            B = self._V * np.sqrt(h)[:, None]
            M = B.T @ B
        else:
            G = weighted_gram(self._A, h)
            G = np.tril(G) + np.tril(G, -1).T
            M = sla.solve_triangular(self._L, G, lower=True, check_finite=False)
            M = sla.solve_triangular(self._L, M.T, lower=True, check_finite=False)
        return 0.5 * (M + M.T)

    def hessian_product(self, h: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Qᵀ diag(h) Q v without forming the matrix (two products with Q)."""
        return self.coords(h * self.basis(v))

    # -- derived operations ----------------------------------------------------------
    def project_out(self, v: np.ndarray) -> np.ndarray:
        """(I − QQᵀ)v: the part of v orthogonal to range(Aᵀ), to round-off."""
        r = v - self.basis(self.coords(v))
        if self.kind == "cholesky":  # Q is orthonormal only to κ²ε: a second pass
            r = r - self.basis(self.coords(r))
        return r

    def min_norm(self, y: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """argmin ‖x − x₀‖₂ subject to Ax = y (the interpolant gradient descent reaches)."""
        x = x0 + self.basis(self.target(y) - self.coords(x0))
        if self.kind == "cholesky":  # one step of refinement (corrected semi-normal eqs)
            x = x + self.basis(self.target(y - self._A @ x))
        return x

    def backward_error(self, x: np.ndarray, y: np.ndarray) -> float:
        """‖Ax − y‖ / (‖A‖₂‖x‖ + ‖y‖): the normwise backward error of x for Ax = y.

        It is O(ε) for a backward-stable solution whatever κ(A) (Rigal & Gaches, 1967),
        where ‖Ax − y‖/‖y‖ of the same point grows like κ(A)·ε.
        """
        den = self.norm * np.linalg.norm(x) + np.linalg.norm(y)
        num = np.linalg.norm(self._A @ x - y)
        return float(num / den) if den > 0 else float(num)


def _power_norm(L: np.ndarray, iters: int = 30) -> float:
    """‖A‖₂ = ‖L‖₂ (LLᵀ = AAᵀ) by power iteration on LLᵀ; a lower bound within ~1 %.

    The products are triangular (BLAS trmv: half of L is read, 2.9× faster than dense
    products at d = 2000)."""
    v = np.ones(L.shape[0]) / np.sqrt(L.shape[0])
    lam = 0.0
    trmv = sla.blas.get_blas_funcs("trmv", (L,))
    for _ in range(iters):
        w = trmv(L, trmv(L, v, lower=1, trans=1), lower=1)
        lam = float(np.linalg.norm(w))
        if lam == 0:
            return 0.0
        v = w / lam
    return float(np.sqrt(lam))
