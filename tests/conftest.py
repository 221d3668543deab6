"""Test configuration: float64 everywhere, Agg backend, explicit keys."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def key():
    """A fresh, explicit JAX key (never a global seed)."""
    return jax.random.key(20260126)
