"""Problems: least-squares loss, gradient, HVP, min-norm interpolant, generators, bad input.

Theory: docs/theory/setting.md#setting, docs/theory/implicit-bias.md#implicit-bias and
docs/theory/pl-rate.md#pl-rate.  References are numpy closed forms (pinv, eigvalsh) and
autodiff of an independently written loss.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hambias.problems import LinearRegression, LossProblem, sparse_regression

# float64 round-off on 20×50 products with O(1) entries: ~n·eps ≈ 1e-14; 1e-12 leaves 100×.
RTOL = 1e-12
# Central differences of a quadratic are exact up to round-off ~ eps·f/h (absolute).
FD_STEP = 1e-6
FD_ROUNDOFF_FACTOR = 20.0
# Interpolation residual ‖Ax − y‖ / ‖y‖ after one Cholesky solve with cond(AAᵀ) ≲ 1e2.
RTOL_INTERP = 1e-12
# Standard deviation of 2000 i.i.d. noise draws: sampling error ~ 1/√(2·2000) ≈ 1.6%; 8% is 5σ.
RTOL_NOISE_STD = 0.08

D, NDIM = 20, 50


@pytest.fixture
def problem(key):
    p, _ = sparse_regression(key, D, NDIM, 5)
    return p


def _np(p):
    return np.asarray(p.A), np.asarray(p.y)


# -- loss, gradient, Hessian ---------------------------------------------------------------
def test_loss_grad_hvp_closed_forms(problem):
    A, y = _np(problem)
    rng = np.random.default_rng(0)
    x, v = rng.standard_normal(NDIM), rng.standard_normal(NDIM)
    r = A @ x - y
    assert float(problem.loss(x)) == pytest.approx(r @ r / (2 * D), rel=RTOL)
    np.testing.assert_allclose(problem.grad(x), A.T @ r / D, rtol=RTOL)
    np.testing.assert_allclose(problem.hvp(x, v), A.T @ (A @ v) / D, rtol=RTOL)
    np.testing.assert_allclose(problem.residual(x), r, rtol=RTOL)
    assert (problem.d, problem.n) == (D, NDIM)


def test_grad_and_hvp_match_autodiff_and_finite_differences(problem):
    A, y = _np(problem)
    auto = LossProblem(lambda x: 0.5 * jnp.sum((jnp.asarray(A) @ x - y) ** 2) / D)
    rng = np.random.default_rng(1)
    x, v = rng.standard_normal(NDIM), rng.standard_normal(NDIM)
    np.testing.assert_allclose(problem.grad(x), auto.grad(x), rtol=RTOL)
    np.testing.assert_allclose(problem.hvp(x, v), auto.hvp(x, v), rtol=RTOL)
    h = FD_STEP
    fd = np.array(
        [(float(problem.loss(x + h * e)) - float(problem.loss(x - h * e))) / (2 * h)
         for e in np.eye(NDIM)[:5]]
    )
    atol = FD_ROUNDOFF_FACTOR * np.finfo(float).eps * float(problem.loss(x)) / h
    np.testing.assert_allclose(fd, np.asarray(problem.grad(x))[:5], rtol=0, atol=atol)


def test_loss_problem_wraps_any_function():
    p = LossProblem(lambda x: jnp.sum(jnp.cos(x)))
    x, v = jnp.array([0.3, -1.2, 2.0]), jnp.array([1.0, 2.0, -0.5])
    np.testing.assert_allclose(p.grad(x), -np.sin(x), rtol=RTOL)
    np.testing.assert_allclose(p.hvp(x, v), -np.cos(x) * v, rtol=RTOL)


def test_jit_and_vmap_match_eager(problem):
    rng = np.random.default_rng(2)
    xs = jnp.asarray(rng.standard_normal((4, NDIM)))
    np.testing.assert_allclose(
        jax.vmap(problem.loss)(xs), [float(problem.loss(x)) for x in xs], rtol=RTOL
    )
    np.testing.assert_allclose(jax.jit(lambda z: problem.grad(z))(xs[0]), problem.grad(xs[0]),
                               rtol=RTOL)
    # constructing inside jit (traced A, y) skips the eager checks and still works
    A, y = problem.A, problem.y
    traced = jax.jit(lambda A, y, x: LinearRegression(A, y).loss(x))(A, y, xs[0])
    assert float(traced) == pytest.approx(float(problem.loss(xs[0])), rel=RTOL)


# -- curvature constants (docs/theory/setting.md#pl-inequality) -----------------------------
def test_lipschitz_and_pl_constants(problem):
    A, y = _np(problem)
    eig_n = np.linalg.eigvalsh(A.T @ A / D)
    eig_d = np.linalg.eigvalsh(A @ A.T / D)
    assert float(problem.lipschitz()) == pytest.approx(eig_n[-1], rel=RTOL)
    lam = float(problem.pl_constant())
    assert lam == pytest.approx(2 * eig_d[0], rel=RTOL)
    # PL inequality ‖∇f‖² ≥ λ(f − f*) with f* = 0 at random points ...
    rng = np.random.default_rng(3)
    for x in rng.standard_normal((5, NDIM)):
        g = np.asarray(problem.grad(x))
        assert g @ g >= lam * float(problem.loss(x)) * (1 - RTOL)
    # ... and it is tight: equality where the residual is the bottom eigenvector of AAᵀ
    _, vecs = np.linalg.eigh(A @ A.T)
    x = np.asarray(problem.min_norm_interpolant()) + A.T @ np.linalg.solve(A @ A.T, vecs[:, 0])
    g = np.asarray(problem.grad(x))
    assert g @ g == pytest.approx(lam * float(problem.loss(x)), rel=1e-10)


# -- min-norm interpolant (docs/theory/implicit-bias.md#implicit-bias, Euclidean case) --------
def test_min_norm_interpolant(problem):
    A, y = _np(problem)
    rng = np.random.default_rng(4)
    x0 = rng.standard_normal(NDIM)
    for start in (None, x0):
        x = np.asarray(problem.min_norm_interpolant(start))
        base = np.zeros(NDIM) if start is None else start
        ref = base + np.linalg.pinv(A) @ (y - A @ base)
        np.testing.assert_allclose(x, ref, rtol=1e-10, atol=1e-12)
        assert np.linalg.norm(A @ x - y) <= RTOL_INTERP * np.linalg.norm(y)
        # x − x₀ ∈ range(Aᵀ): its null-space component vanishes
        proj = A.T @ np.linalg.solve(A @ A.T, A @ (x - base))
        np.testing.assert_allclose(x - base, proj, atol=1e-12)
        # and any other interpolant is farther from x₀
        null = rng.standard_normal(NDIM)
        null -= A.T @ np.linalg.solve(A @ A.T, A @ null)
        assert np.linalg.norm(x + 0.1 * null - base) > np.linalg.norm(x - base)


# -- generators ------------------------------------------------------------------------------
def test_sparse_regression_is_seeded_and_sparse(key):
    p1, x1 = sparse_regression(key, 10, 30, 4)
    p2, x2 = sparse_regression(key, 10, 30, 4)
    p3, _ = sparse_regression(jax.random.split(key)[0], 10, 30, 4)
    np.testing.assert_array_equal(p1.A, p2.A)
    np.testing.assert_array_equal(x1, x2)
    assert not np.array_equal(np.asarray(p1.A), np.asarray(p3.A))
    assert int(np.count_nonzero(np.asarray(x1))) == 4
    np.testing.assert_allclose(p1.residual(x1), 0.0, atol=1e-12)
    assert p1.A.dtype == jnp.float64


def test_rademacher_design_and_noise(key):
    p, xs = sparse_regression(key, 10, 30, 3, design="rademacher")
    assert set(np.unique(np.asarray(p.A))) == {-1.0, 1.0}
    draws = []
    for k in jax.random.split(key, 10):
        q, xq = sparse_regression(k, 200, 201, 3, noise=0.1)
        draws.append(np.asarray(q.y - q.A @ xq))
    noise = np.concatenate(draws)
    assert np.std(noise) == pytest.approx(0.1, rel=RTOL_NOISE_STD)
    assert abs(np.mean(noise)) < 5 * 0.1 / np.sqrt(noise.size)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((30, 30, 2), {}, r"needs d < n .* got d=30, n=30"),
        ((40, 30, 2), {}, r"needs d < n"),
        ((5, 30, 31), {}, r"sparsity k must satisfy 0 <= k <= n = 30, got k=31"),
        ((5, 30, -1), {}, r"sparsity k"),
        ((5, 30, 2), {"design": "uniform"},
         r"design must be 'gaussian' or 'rademacher', got 'uniform'"),
        ((5, 30, 2), {"noise": -0.1}, r"noise must be a finite standard deviation >= 0"),
        ((5, 30, 2), {"noise": np.nan}, r"noise must be a finite"),
        ((5.0, 30, 2), {}, r"d and n must be positive integers"),
        ((0, 30, 2), {}, r"d and n must be positive integers"),
        ((True, 30, 2), {}, r"d and n must be positive integers"),
        ((5, 30, 2.5), {}, r"sparsity k must be an integer, got k=2.5"),
    ],
)
def test_sparse_regression_bad_input(key, args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sparse_regression(key, *args, **kwargs)


# -- bad input for LinearRegression ------------------------------------------------------------
_A = np.arange(12.0).reshape(3, 4) ** 1.5


@pytest.mark.parametrize(
    "A, y, kwargs, match",
    [
        (_A, np.ones(4), {},
         r"y must have shape \(d,\) = \(3,\) to match A of shape \(3, 4\), got shape \(4,\)"),
        (_A, np.ones((3, 1)), {}, r"y must have shape \(d,\)"),
        (np.ones(4), np.ones(4), {}, r"A must be a matrix of shape \(d, n\), got shape \(4,\)"),
        (np.ones((0, 4)), np.ones(0), {}, r"A must have at least one row and one column"),
        (np.where(_A == _A[1, 2], np.nan, _A), np.ones(3), {},
         r"A contains NaN or inf \(first at index \(1, 2\)"),
        (_A, np.array([1.0, np.inf, 0.0]), {}, r"y contains NaN or inf \(first at index \(1,\)"),
        (_A.T, np.ones(4), {"underdetermined": True},
         r"underdetermined problem needs d < n .* \(d, n\) = \(4, 3\)"),
        (np.vstack([_A[:2], _A[0] * 2.0]), np.ones(3), {"full_row_rank": True},
         r"A must have full row rank d = 3, but its numerical rank is 2"),
        (_A.astype(complex), np.ones(3), {}, r"A must be real numbers, got dtype complex128"),
    ],
)
def test_linear_regression_bad_input(A, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LinearRegression(A, y, **kwargs)


def test_requirements_pass_when_met():
    p = LinearRegression(_A, np.ones(3), underdetermined=True, full_row_rank=True)
    assert (p.d, p.n) == (3, 4)
    # an integer design is promoted to float
    q = LinearRegression(np.eye(2, 3, dtype=int), np.array([1, 2]))
    assert q.A.dtype == jnp.float64 and q.y.dtype == jnp.float64
    np.testing.assert_allclose(q.grad(np.zeros(3)), [-0.5, -1.0, 0.0])


def test_point_of_wrong_shape_raises(problem):
    msg = r"x must have shape \(n,\) = \(50,\) .* got shape \(49,\)"
    with pytest.raises(ValueError, match=msg):
        problem.loss(np.zeros(NDIM - 1))
    with pytest.raises(ValueError, match=r"x0 must have shape \(n,\) = \(50,\)"):
        problem.min_norm_interpolant(np.zeros((NDIM, 1)))


def test_min_norm_interpolant_of_rank_deficient_problem():
    # A repeated row with a consistent target is redundant: the same interpolant as
    # without it.  An inconsistent target has no interpolant at all: ValueError (it once
    # returned a point with a 20 % residual).
    A2 = _A[:2]
    p = LinearRegression(np.vstack([A2, A2[0]]), np.ones(3))
    np.testing.assert_allclose(p.min_norm_interpolant(),
                               np.linalg.lstsq(A2, np.ones(2), rcond=None)[0], rtol=1e-13)
    rng = np.random.default_rng(4)
    A = rng.standard_normal((4, 10))
    A[3] = A[2]
    with pytest.raises(ValueError, match="inconsistent system.*rank 3 < d = 4"):
        LinearRegression(A, rng.standard_normal(4)).min_norm_interpolant()


def test_problems_are_immutable(problem):
    with pytest.raises(dataclasses.FrozenInstanceError):
        problem.A = problem.A
