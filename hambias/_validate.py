"""Input checks that work the same eagerly, under ``jit`` and under ``vmap``.

Every public entry point validates its inputs with these helpers.  A concrete value
(a Python number, a numpy array, or a JAX array that is not being traced, even one
closed over inside a ``jit``) is checked with numpy and a bad one raises
``ValueError`` at once, naming the argument, what was expected and what came.  A
traced value cannot be inspected while tracing, so the same condition is attached
to it with :func:`equinox.error_if`: the compiled program raises at run time with
the same message (without the offending value, which is unknown when the message is
written).  Never call ``bool()`` on a JAX expression here: inside a trace even a
computation on a constant is a tracer.

>>> import numpy as np
>>> check_finite("x0", np.array([0.0, 1.0])).tolist()
[0.0, 1.0]
>>> check_finite("x0", np.array([0.0, np.nan]))
Traceback (most recent call last):
...
ValueError: x0 must be finite, got NaN or inf (first at index 1)
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["is_concrete", "check_finite", "check_bounds", "check_vector", "check_count"]


def is_concrete(*xs) -> bool:
    """True when no leaf of ``xs`` is a JAX tracer (so numpy may inspect it and we may raise)."""
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree_util.tree_leaves(xs))


def _first_bad(mask: np.ndarray) -> str:
    if mask.ndim == 0:
        return ""
    idx = np.argwhere(mask)[0]
    return f" (first at index {int(idx[0]) if idx.size == 1 else tuple(int(i) for i in idx)})"


def check_finite(name: str, x):
    """``x`` unchanged; raise (or attach a run-time error) if any element is NaN or inf.

    Eagerly returns ``x`` as it came (no conversion); under tracing, the traced
    value with the check attached.
    """
    if is_concrete(x):
        arr = np.asarray(x)
        if not np.issubdtype(arr.dtype, np.number) and arr.dtype != bool:
            raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
        if np.iscomplexobj(arr):
            raise ValueError(f"{name} must be real numbers, got dtype {arr.dtype}")
        bad = ~np.isfinite(arr)
        if np.any(bad):
            raise ValueError(f"{name} must be finite, got NaN or inf{_first_bad(bad)}")
        return x
    return eqx.error_if(x, ~jnp.all(jnp.isfinite(x)), f"{name} must be finite, got NaN or inf")


def check_bounds(name: str, x, *, gt=None, ge=None, lt=None, le=None, finite: bool = True):
    """``x`` unchanged; every element must satisfy the given bounds (and be finite).

    ``gt``/``ge``/``lt``/``le`` are strict or inclusive lower/upper bounds (numbers).
    NaN always fails.  Eagerly a ``ValueError`` names the bound and the first bad value.
    """
    conds = [(gt, lambda a, b: a > b, ">"), (ge, lambda a, b: a >= b, ">="),
             (lt, lambda a, b: a < b, "<"), (le, lambda a, b: a <= b, "<=")]
    conds = [(b, op, sym) for b, op, sym in conds if b is not None]
    want = " and ".join(f"{sym} {b:g}" for b, _, sym in conds)
    if is_concrete(x):
        if finite:
            check_finite(name, x)
        arr = np.asarray(x, dtype=float)
        ok = np.ones(arr.shape, bool) if finite else ~np.isnan(arr)
        for b, op, _ in conds:
            ok &= op(arr, b)
        if not np.all(ok):
            bad = ~ok
            val = arr[tuple(np.argwhere(bad)[0])] if arr.ndim else arr
            raise ValueError(f"{name} must be {want}, got {float(val)!r}{_first_bad(bad)}")
        return x
    ok = jnp.isfinite(x) if finite else ~jnp.isnan(x)
    for b, op, _ in conds:
        ok = ok & op(x, b)
    what = f"finite and {want}" if finite and want else ("finite" if finite else want)
    return eqx.error_if(x, ~jnp.all(ok), f"{name} must be {what}")


def check_vector(name: str, x, *, n: int | None = None, finite: bool = True):
    """``x`` as a floating JAX array of shape (n,) (shape checked statically, values as above)."""
    x = jnp.asarray(x) if not is_concrete(x) or not isinstance(x, jax.Array) else x
    arr_shape = jnp.shape(x)
    if len(arr_shape) != 1:
        raise ValueError(f"{name} must be a vector of shape (n,), got shape {arr_shape}")
    if n is not None and arr_shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got shape {arr_shape}")
    if finite:
        x = check_finite(name, x)
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.result_type(float))
    return x


def check_count(name: str, v, *, minimum: int = 0) -> int:
    """``v`` as a Python int ≥ ``minimum``; a bool or non-integer is a ``ValueError``."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return int(v)
