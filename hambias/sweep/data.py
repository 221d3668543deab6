"""The problems and initial points of a sweep's points: seeded draws or a data file.

A point's problem is ``sparse_regression(fold_in(key(seed), 0), d, n, k, design, noise)``
drawn in float64 (whatever the sweep's dtype, so that a float32 sweep runs the same
problem as its float64 twin, cast) and its unit start z ~ N(0, I/n) is drawn from
``fold_in(key(seed), 1)``; with ``[problem] file`` the problem is the file's for every
seed and only z depends on the seed.  Draws are cached per run in a cache bounded by
bytes (:class:`ByteCache`), never by count: a 1000 × 5000 design is 40 MB.
"""

from __future__ import annotations

import collections
import dataclasses
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..problems import LinearRegression, sparse_regression

__all__ = ["Draw", "ByteCache", "draw"]

#: Default byte budget of a run's problem cache.
CACHE_BYTES = 256 * 2**20


@dataclasses.dataclass(frozen=True)
class Draw:
    """One point's problem and unit start, in the sweep's dtype (float64 ``lam_max``)."""

    A: np.ndarray
    y: np.ndarray
    x_star: np.ndarray
    lam_max: float
    z: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.A.nbytes + self.y.nbytes + self.x_star.nbytes + self.z.nbytes


class ByteCache:
    """A least-recently-used mapping whose values' ``nbytes`` total at most ``max_bytes``
    (the most recent entry is always kept)."""

    def __init__(self, max_bytes: int = CACHE_BYTES):
        self.max_bytes, self.bytes = int(max_bytes), 0
        self._items: collections.OrderedDict = collections.OrderedDict()

    def get(self, key, make):
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = make()
        self._items[key] = value
        self.bytes += value.nbytes
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, old = self._items.popitem(last=False)
            self.bytes -= old.nbytes
        return value


@lru_cache(maxsize=16)
def _drawer(d: int, n: int, k: int, design: str, noise: float):
    """A jitted float64 draw key → (A, y, x*, z): one compilation per shape."""

    def draw_one(key):
        prob, x_star = sparse_regression(jax.random.fold_in(key, 0), d, n, k, design=design,
                                         noise=noise, dtype=jnp.float64)
        z = jax.random.normal(jax.random.fold_in(key, 1), (n,), dtype=jnp.float64) / np.sqrt(n)
        return prob.A, prob.y, x_star, z

    return jax.jit(draw_one)


def _unit_start(seed: int, n: int) -> np.ndarray:
    with jax.enable_x64(True):
        z = jax.random.normal(jax.random.fold_in(jax.random.key(seed), 1), (n,),
                              dtype=jnp.float64)
        return np.asarray(z) / np.sqrt(n)


def draw(cfg, dnk_index: int, seed: int) -> Draw:
    """The (A, y, x*, λ_max, z) of a point, in ``cfg.dtype``.

    Raises:
        ValueError: a drawn A without full row rank (never for the Gaussian designs of
            realistic shapes; then change the seed).
    """
    d, n, k = cfg.grid["dnk"][dnk_index]
    dt = np.dtype(cfg.dtype)
    if cfg.data_file is not None:
        with np.load(cfg.data_file) as f:
            A, y = np.asarray(f["A"], np.float64), np.asarray(f["y"], np.float64)
            xs = np.asarray(f["x_star"], np.float64) if "x_star" in f.files else \
                np.full(n, np.nan)
        z = _unit_start(seed, n)
    else:
        with jax.enable_x64(True):
            A, y, xs, z = (np.asarray(v) for v in _drawer(d, n, k, cfg.design, cfg.noise)(
                jax.random.key(seed)))
    LinearRegression(A, y, underdetermined=True, full_row_rank=True)  # raises if degenerate
    lam_max = float(np.linalg.svd(A, compute_uv=False)[0] ** 2 / d)
    return Draw(A.astype(dt), y.astype(dt), xs.astype(dt), lam_max, z.astype(dt))
