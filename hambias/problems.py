"""Problems a flow or an iterate runs on: losses with gradients.

:class:`LinearRegression` is the least-squares loss f(x) = ‖Ax − y‖²/(2d) of
THEORY.md §1 (d samples, n dimensions); :func:`sparse_regression` draws seeded
underdetermined instances.  Any other differentiable loss can be used through
:class:`LossProblem`, which takes its gradient with JAX.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .geometry import _is_concrete

__all__ = ["AbstractProblem", "LossProblem", "LinearRegression", "sparse_regression"]

# Relative singular-value threshold under which A counts as rank deficient:
# well above float64 round-off of an SVD (~n·eps·σ_max) and far below the
# conditioning of any problem we would integrate to 1e-10.
RANK_RTOL = 1e-10


class AbstractProblem(eqx.Module):
    """A differentiable loss on ℝⁿ.  Subclasses define ``loss``; ``grad`` and ``hvp`` follow."""

    def loss(self, x: ArrayLike) -> Array:  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x: ArrayLike) -> Array:
        """∇f(x)."""
        return jax.grad(self.loss)(jnp.asarray(x))

    def hvp(self, x: ArrayLike, v: ArrayLike) -> Array:
        """Hessian-vector product ∇²f(x) v."""
        return jax.jvp(self.grad, (jnp.asarray(x),), (jnp.asarray(v),))[1]


class LossProblem(AbstractProblem):
    """Wrap any scalar JAX function ``fn(x)`` as a problem (gradients by autodiff).

    >>> import jax.numpy as jnp
    >>> p = LossProblem(lambda x: jnp.sum(jnp.cos(x)))
    >>> float(p.grad(jnp.array([0.0]))[0])
    -0.0
    """

    fn: callable = eqx.field(static=True)

    def loss(self, x):
        return self.fn(jnp.asarray(x))


def _finite_or_raise(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at index {tuple(int(i) for i in bad)}, "
            f"value {a[tuple(bad)]!r})"
        )


class LinearRegression(AbstractProblem):
    """Least squares f(x) = ‖Ax − y‖² / (2d), A of shape (d, n) (THEORY.md §1).

    The factor 1/d only rescales time; it is kept so that step sizes do not
    depend on the number of samples.

    Args:
        A: design matrix, shape (d, n), finite.
        y: targets, shape (d,), finite.
        underdetermined: require d < n (raise ``ValueError`` otherwise).
        full_row_rank: require rank(A) = d (raise ``ValueError`` otherwise).

    Raises:
        ValueError: shapes that do not match, NaN/inf, or a violated requirement.

    >>> import numpy as np
    >>> p = LinearRegression(np.eye(2, 3), np.array([1.0, 2.0]))
    >>> float(p.loss(np.zeros(3)))
    1.25
    """

    A: Float[Array, "d n"]
    y: Float[Array, " d"]

    def __init__(self, A, y, *, underdetermined: bool = False, full_row_rank: bool = False):
        if _is_concrete(A, y):
            A_np, y_np = np.asarray(A), np.asarray(y)
            if A_np.ndim != 2:
                raise ValueError(f"A must be a matrix of shape (d, n), got shape {A_np.shape}")
            if y_np.ndim != 1 or y_np.shape[0] != A_np.shape[0]:
                raise ValueError(
                    f"y must have shape (d,) = ({A_np.shape[0]},) to match A of shape "
                    f"{A_np.shape}, got shape {y_np.shape}"
                )
            if A_np.size == 0:
                raise ValueError(
                    f"A must have at least one row and one column, got shape {A_np.shape}"
                )
            for name, arr in (("A", A_np), ("y", y_np)):
                if not (np.issubdtype(arr.dtype, np.number) and not np.iscomplexobj(arr)):
                    raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
            _finite_or_raise("A", A_np)
            _finite_or_raise("y", y_np)
            d, n = A_np.shape
            if underdetermined and d >= n:
                raise ValueError(
                    f"an underdetermined problem needs d < n (fewer samples than dimensions), "
                    f"got A of shape (d, n) = ({d}, {n})"
                )
            if full_row_rank:
                s = np.linalg.svd(A_np, compute_uv=False)
                rank = int(np.sum(s > RANK_RTOL * (s[0] if s.size else 0.0)))
                if rank < d:
                    raise ValueError(
                        f"A must have full row rank d = {d}, but its numerical rank is {rank} "
                        f"(singular values below {RANK_RTOL:g}·σ_max)"
                    )
        dtype = jnp.result_type(jnp.asarray(A).dtype, jnp.asarray(y).dtype, float)
        self.A = jnp.asarray(A, dtype=dtype)
        self.y = jnp.asarray(y, dtype=dtype)

    def _check_point(self, x: ArrayLike, name: str = "x") -> Array:
        """``x`` as an array; eagerly, raise unless its shape is (n,)."""
        x = jnp.asarray(x)
        if _is_concrete(x) and x.shape != (self.n,):
            raise ValueError(
                f"LinearRegression: {name} must have shape (n,) = ({self.n},) for A of shape "
                f"{self.A.shape}, got shape {x.shape}"
            )
        return x

    @property
    def d(self) -> int:
        """Number of samples (rows of A)."""
        return self.A.shape[0]

    @property
    def n(self) -> int:
        """Number of dimensions (columns of A)."""
        return self.A.shape[1]

    def residual(self, x: ArrayLike) -> Array:
        """Ax − y."""
        return self.A @ self._check_point(x) - self.y

    def loss(self, x):
        r = self.residual(x)
        return 0.5 * jnp.dot(r, r) / self.d

    def grad(self, x):
        return self.A.T @ self.residual(x) / self.d

    def hvp(self, x, v):
        return self.A.T @ (self.A @ self._check_point(v, "v")) / self.d

    def lipschitz(self) -> Array:
        """L = λ_max(AᵀA/d), the largest curvature of f."""
        s = jnp.linalg.svd(self.A, compute_uv=False)
        return s[0] ** 2 / self.d

    def pl_constant(self) -> Array:
        """λ = 2 λ_min(AAᵀ/d), the PL constant ‖∇f‖² ≥ λ(f − f*) for d < n (THEORY.md §10)."""
        s = jnp.linalg.svd(self.A, compute_uv=False)
        return 2.0 * s[-1] ** 2 / self.d

    def min_norm_interpolant(self, x0: ArrayLike | None = None) -> Array:
        """x₀ + Aᵀ(AAᵀ)⁻¹(y − Ax₀): the interpolant closest to x₀ in ‖·‖₂.

        This is where gradient descent from x₀ ends (THEORY.md §7, Euclidean case).
        Solved with a Cholesky factorisation of AAᵀ (full row rank required).

        Raises:
            ValueError: (eagerly) ``x0`` of the wrong shape, or AAᵀ not positive
                definite (A without full row rank), instead of returning NaN.

        >>> import numpy as np
        >>> p = LinearRegression(np.array([[1.0, 1.0]]), np.array([2.0]))
        >>> [round(v, 6) for v in p.min_norm_interpolant().tolist()]
        [1.0, 1.0]
        """
        x0 = jnp.zeros(self.n, dtype=self.A.dtype) if x0 is None else self._check_point(x0, "x0")
        gram = self.A @ self.A.T
        c = jax.scipy.linalg.cho_factor(gram)
        x = x0 + self.A.T @ jax.scipy.linalg.cho_solve(c, self.y - self.A @ x0)
        if _is_concrete(x) and not bool(jnp.all(jnp.isfinite(x))):
            raise ValueError(
                f"LinearRegression.min_norm_interpolant: AAᵀ is not positive definite "
                f"(A of shape {self.A.shape} does not have full row rank); no unique "
                f"min-norm solution of this form"
            )
        return x


def sparse_regression(
    key: Array,
    d: int,
    n: int,
    k: int,
    *,
    design: str = "gaussian",
    noise: float = 0.0,
    dtype=None,
) -> tuple[LinearRegression, Array]:
    """Draw an underdetermined sparse regression problem y = A x* (+ noise).

    A has i.i.d. N(0, 1) (``design="gaussian"``) or ±1 (``"rademacher"``) entries;
    x* has ``k`` nonzero coordinates at random positions with N(0, 1) values.

    Args:
        key: a ``jax.random`` key (the only source of randomness).
        d, n, k: samples, dimensions (d < n), sparsity (0 ≤ k ≤ n).
        design: ``"gaussian"`` or ``"rademacher"``.
        noise: standard deviation of additive Gaussian noise on y (≥ 0).
        dtype: floating dtype (default: JAX's default float).

    Returns:
        ``(problem, x_star)``.

    Raises:
        ValueError: d ≥ n, k out of range, unknown design, negative noise, or a
            drawn A without full row rank.

    >>> import jax
    >>> p, xs = sparse_regression(jax.random.key(0), 4, 10, 2)
    >>> p.A.shape, int((xs != 0).sum())
    ((4, 10), 2)
    """
    def _is_count(v) -> bool:  # an integer, not a bool (True would silently mean 1)
        return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))

    if not (_is_count(d) and _is_count(n) and d > 0):
        raise ValueError(f"d and n must be positive integers, got d={d!r}, n={n!r}")
    if not _is_count(k):
        raise ValueError(f"sparsity k must be an integer, got k={k!r}")
    if d >= n:
        raise ValueError(
            f"an underdetermined problem needs d < n (fewer samples than dimensions), "
            f"got d={d}, n={n}"
        )
    if not 0 <= k <= n:
        raise ValueError(f"sparsity k must satisfy 0 <= k <= n = {n}, got k={k}")
    if design not in ("gaussian", "rademacher"):
        raise ValueError(f"design must be 'gaussian' or 'rademacher', got {design!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite standard deviation >= 0, got {noise!r}")
    dtype = jnp.result_type(float) if dtype is None else dtype
    k_a, k_support, k_vals, k_noise = jax.random.split(key, 4)
    if design == "gaussian":
        A = jax.random.normal(k_a, (d, n), dtype=dtype)
    else:
        A = jax.random.rademacher(k_a, (d, n), dtype=dtype)
    support = jax.random.permutation(k_support, n)[:k]
    x_star = jnp.zeros(n, dtype=dtype).at[support].set(jax.random.normal(k_vals, (k,), dtype=dtype))
    y = A @ x_star
    if noise > 0:
        y = y + noise * jax.random.normal(k_noise, (d,), dtype=dtype)
    return LinearRegression(A, y, underdetermined=True, full_row_rank=True), x_star
