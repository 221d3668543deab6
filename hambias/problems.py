"""Problems a flow or an iterate runs on: losses with gradients.

:class:`LinearRegression` is the least-squares loss f(x) = ‖Ax − y‖²/(2d) of
docs/theory/setting.md#least-squares (d samples, n dimensions); :func:`sparse_regression`
draws seeded underdetermined instances.  Any other differentiable loss can be used through
:class:`LossProblem`, which takes its gradient with JAX.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from ._rowspace import KAPPA_MAX, RANK_RTOL, RowSpace
from ._validate import is_concrete as _is_concrete

__all__ = ["AbstractProblem", "LossProblem", "LinearRegression", "RowSpace", "minibatch_mask",
           "sparse_regression"]


class AbstractProblem(eqx.Module):
    """A differentiable loss on ℝⁿ.  Subclasses define ``loss``; ``grad`` and ``hvp`` follow."""

    def loss(self, x: Float[ArrayLike, " n"]) -> Float[Array, ""]:  # pragma: no cover
        raise NotImplementedError

    def grad(self, x: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
        """∇f(x)."""
        return jax.grad(self.loss)(jnp.asarray(x))

    def hvp(self, x: Float[ArrayLike, " n"], v: Float[ArrayLike, " n"]) -> Float[Array, " n"]:
        """Hessian-vector product ∇²f(x) v."""
        return jax.jvp(self.grad, (jnp.asarray(x),), (jnp.asarray(v),))[1]

    def loss_and_grad(self, x: Float[ArrayLike, " n"]) -> tuple[Float[Array, ""],
                                                                Float[Array, " n"]]:
        """(f(x), ∇f(x)); problems override it to share work between the two."""
        return self.loss(x), self.grad(x)

    def loss_and_minibatch_grad(self, x: Float[ArrayLike, " n"], key: Array,
                                batch_size: int) -> tuple[Float[Array, ""], Float[Array, " n"]]:
        """(f(x), a stochastic gradient from ``batch_size`` samples drawn with ``key``).

        Only problems that are sums over samples define it (:class:`LinearRegression`).
        """
        raise ValueError(f"{type(self).__name__} has no samples to draw mini-batches from; "
                         f"stochastic gradients need a sum-of-samples problem such as "
                         f"LinearRegression")


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
    """Least squares f(x) = ‖Ax − y‖² / (2d), A of shape (d, n).

    See docs/theory/setting.md#least-squares.

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
                s = np.linalg.svd(A_np.astype(np.float64), compute_uv=False)
                rank = int(np.sum(s > RANK_RTOL * (s[0] if s.size else 0.0)))
                if rank < d:
                    raise ValueError(
                        f"A must have full row rank d = {d}, but its numerical rank is {rank} "
                        f"(singular values at or below {RANK_RTOL:g}·σ_max count as zero)"
                    )
                if s[0] / s[-1] > KAPPA_MAX:
                    raise ValueError(
                        f"A has full row rank but is too ill-conditioned for float64: "
                        f"κ(A) = {s[0] / s[-1]:.3g} > {KAPPA_MAX:g}, so its interpolants are "
                        f"determined only to about κ·ε = {s[0] / s[-1] * 2.2e-16:.1g}"
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

    def residual(self, x: Float[ArrayLike, " n"]) -> Float[Array, " d"]:
        """Ax − y."""
        return self.A @ self._check_point(x) - self.y

    def loss(self, x):
        r = self.residual(x)
        return 0.5 * jnp.dot(r, r) / self.d

    def grad(self, x):
        return self.A.T @ self.residual(x) / self.d

    def loss_and_grad(self, x):
        r = self.residual(x)
        return 0.5 * jnp.dot(r, r) / self.d, self.A.T @ r / self.d

    def loss_and_minibatch_grad(self, x, key, batch_size):
        """(f(x), A_Bᵀ(A_B x − y_B)/b): the full loss and the gradient of the mean loss of
        b = ``batch_size`` rows B drawn uniformly without replacement with ``key``
        (an unbiased estimate of ∇f).  One product with A either way."""
        r = self.residual(x)
        mask = minibatch_mask(key, self.d, batch_size).astype(r.dtype)
        return 0.5 * jnp.dot(r, r) / self.d, self.A.T @ (r * mask) / batch_size

    def hvp(self, x, v):
        return self.A.T @ (self.A @ self._check_point(v, "v")) / self.d

    def lipschitz(self) -> Array:
        """L = λ_max(AᵀA/d), the largest curvature of f."""
        s = jnp.linalg.svd(self.A, compute_uv=False)
        return s[0] ** 2 / self.d

    def pl_constant(self) -> Array:
        """λ = 2 λ_min(AAᵀ/d), the PL constant ‖∇f‖² ≥ λ(f − f*) for d < n.

        See docs/theory/setting.md#pl-inequality.
        """
        s = jnp.linalg.svd(self.A, compute_uv=False)
        return 2.0 * s[-1] ** 2 / self.d

    def row_space(self) -> RowSpace:
        """The orthogonal factorisation of Aᵀ that every solve and certificate uses.

        One factorisation per call (float64, numpy): the Cholesky factor of AAᵀ when
        κ(A) ≤ 1e4, else the SVD (see :class:`~hambias.problems.RowSpace`).  Callers that
        need it several times keep the returned object.

        Raises:
            ValueError: κ(A) > 1e10 (float64 determines the solutions to fewer than six
                digits), or A is zero.
        """
        if not _is_concrete(self.A):
            raise ValueError("LinearRegression.row_space needs a concrete A (not under jit)")
        return RowSpace.of(np.asarray(self.A, dtype=np.float64))

    def min_norm_interpolant(self, x0: Float[ArrayLike, " n"] | None = None
                             ) -> Float[np.ndarray, " n"]:
        """x₀ + Aᵀ(AAᵀ)⁻¹(y − Ax₀): the interpolant closest to x₀ in ‖·‖₂.

        This is where gradient descent from x₀ ends (the Euclidean case of
        docs/theory/implicit-bias.md#implicit-bias).
        Computed in an orthonormal basis of range(Aᵀ) (:meth:`row_space`), never from a
        factorisation of AAᵀ alone: relative error below 10·κ(A)·ε for κ(A) ≤ 1e10
        (measured against 60-digit solutions).  Rows that are exactly dependent
        (σ ≤ 1e-13·σ_max) are dropped when y is consistent with them.  Returns a float64
        numpy array (this is a host computation; it does not run under jit).

        Raises:
            ValueError: ``x0`` of the wrong shape or not finite, an inconsistent system
                (rank-deficient A, y outside its range), or κ(A) > 1e10.

        >>> import numpy as np
        >>> p = LinearRegression(np.array([[1.0, 1.0]]), np.array([2.0]))
        >>> [round(v, 6) for v in p.min_norm_interpolant().tolist()]
        [1.0, 1.0]
        """
        y = np.asarray(self.y, dtype=np.float64)
        if x0 is None:
            x0 = np.zeros(self.n)
        else:
            x0 = np.asarray(self._check_point(x0, "x0"), dtype=np.float64)
            if not np.all(np.isfinite(x0)):
                raise ValueError("LinearRegression.min_norm_interpolant: x0 must be finite")
        return self.row_space().min_norm(y, x0)

    def box_ratio(self, half_width: Float[ArrayLike, "*n"]) -> float:
        """min over interpolants of max_i |x_i|/w_i, by an LP (scipy HiGHS).

        A value below 1 means some x with Ax = y lies strictly inside the box |x_i| < w_i
        (w_i = inf leaves coordinate i free).  Used for geometries with a bounded domain
        (HAM with α < 0, docs/theory/negative-alpha.md#negative-alpha), whose flows and
        predictions need such a point.

        Raises:
            ValueError: the LP failed (e.g. Ax = y has no solution at all).
        """
        from scipy.optimize import linprog

        A = np.asarray(self.A, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        d, n = A.shape
        w = np.broadcast_to(np.asarray(half_width, dtype=np.float64), (n,))
        idx = np.flatnonzero(np.isfinite(w))
        if idx.size == 0:
            return 0.0
        # variables (x, t): ±x_i·(c/w_i) − t ≤ 0 for the bounded coordinates, c = min w, so
        # that the coefficients lie in (0, 1] (1/w_i itself can be 1e-300); ratio = t/c.
        c = float(np.min(w[idx]))
        rows = np.zeros((2 * idx.size, n + 1))
        rows[np.arange(idx.size), idx] = c / w[idx]
        rows[idx.size + np.arange(idx.size), idx] = -c / w[idx]
        rows[:, n] = -1.0
        res = linprog(np.r_[np.zeros(n), 1.0], A_ub=rows, b_ub=np.zeros(2 * idx.size),
                      A_eq=np.c_[A, np.zeros(d)], b_eq=y,
                      bounds=[(None, None)] * n + [(0, None)], method="highs")
        if res.status != 0:
            raise ValueError(f"box feasibility LP failed: {res.message}")
        return float(res.x[n]) / c


def minibatch_mask(key: Array, d: int, batch_size: int) -> Bool[Array, " {d}"]:
    """A 0/1 vector of length d with exactly ``batch_size`` ones at uniformly random rows
    (the ``batch_size`` smallest of d uniform draws), drawn with ``key``."""
    u = jax.random.uniform(key, (d,))
    return jnp.argsort(jnp.argsort(u)) < batch_size


def sparse_regression(
    key: Array,
    d: int,
    n: int,
    k: int,
    *,
    design: str = "gaussian",
    noise: float = 0.0,
    dtype=None,
) -> tuple[LinearRegression, Float[Array, " n"]]:
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
