"""The geometry, evaluated for the float64 solvers: one compiled call per quantity.

The Newton solvers run their linear algebra in numpy/scipy (float64 BLAS) and take
every elementwise map from the geometry class itself, through small jitted functions
of (geometry, vector).  A geometry is a pytree, so a new α or γ reuses the compiled
function; built-in and user-defined geometries take exactly the same path.  Float64
is required: a float32 result is refused with the instruction to enable x64.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..geometry import AbstractGeometry

__all__ = ["Oracle"]


def _as_array_leaves(tree):
    """Python-number leaves → float64 arrays, so that new α or γ values do not recompile."""
    def conv(leaf):
        if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
            return jnp.asarray(leaf, dtype=jnp.float64)
        return leaf

    return jax.tree_util.tree_map(conv, tree)


@eqx.filter_jit
def _dual_point(geometry, phi):
    return geometry.conjugate(phi), geometry.inverse_mirror_map(phi), \
        geometry.dual_inverse_metric(phi)


@eqx.filter_jit
def _conjugate(geometry, phi):
    return geometry.conjugate(phi)


@eqx.filter_jit
def _mirror(geometry, x):
    return geometry.mirror_map(x)


@eqx.filter_jit
def _bregman(geometry, x, z):
    return geometry.bregman_divergence(x, z)


@eqx.filter_jit
def _regulariser(geometry, x):
    bad = jnp.any(geometry.domain_violation(x) | ~jnp.isfinite(x))
    return jnp.where(bad, jnp.inf, geometry.regulariser(jnp.where(bad, 0.0, x)))


@eqx.filter_jit
def _regulariser_derivatives(geometry, x):
    return geometry.regulariser_grad(x), geometry.regulariser_curvature(x)


@eqx.filter_jit
def _outside(geometry, x):
    return jnp.any(geometry.domain_violation(x)) | ~jnp.all(jnp.isfinite(x))


class Oracle:
    """Float64 numpy views of one geometry's maps (R*, ∇R*, ∇²R*, ∇R, D_R, H, H', H'').

    Raises:
        ValueError: ``geometry`` is not an AbstractGeometry, or JAX is not in float64.
    """

    def __init__(self, geometry):
        if not isinstance(geometry, AbstractGeometry):
            raise ValueError(
                f"geometry must be a hambias AbstractGeometry (Euclidean, PointwiseProduct, "
                f"HAMGeometry or a subclass), got {type(geometry).__name__}")
        if not jax.config.jax_enable_x64:
            raise ValueError(
                "the predictions need float64: enable it at your entry point with "
                'jax.config.update("jax_enable_x64", True)')
        self.geometry = _as_array_leaves(geometry)

    @staticmethod
    def _np(v):
        return np.asarray(v, dtype=np.float64)

    def conjugate(self, phi) -> float:
        """R*(φ), +inf on overflow (never NaN)."""
        v = float(_conjugate(self.geometry, phi))
        return v if np.isfinite(v) else np.inf

    def dual_point(self, phi):
        """(R*(φ), x = ∇R*(φ), ∇²R*(φ)); R* = +inf on overflow."""
        c, x, h = _dual_point(self.geometry, phi)
        c = float(c)
        return (c if np.isfinite(c) else np.inf), self._np(x), self._np(h)

    def mirror(self, x) -> np.ndarray:
        """∇R(x)."""
        return self._np(_mirror(self.geometry, x))

    def bregman(self, x, z) -> float:
        """D_R(x, z)."""
        return float(_bregman(self.geometry, x, z))

    def in_domain(self, x) -> bool:
        """x is finite and inside the geometry's domain."""
        return not bool(_outside(self.geometry, x))

    def regulariser(self, x) -> float:
        """H(x), +inf outside the domain."""
        return float(_regulariser(self.geometry, x))

    def regulariser_derivatives(self, x):
        """(∇H(x), diag ∇²H(x))."""
        g, c = _regulariser_derivatives(self.geometry, x)
        return self._np(g), self._np(c)
