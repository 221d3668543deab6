"""Input checks shared by the prediction entry points."""

from __future__ import annotations

import numpy as np

__all__ = ["problem_arrays", "check_beta"]


def problem_arrays(problem) -> tuple[np.ndarray, np.ndarray]:
    """(A, y) of a least-squares problem as float64 arrays, checked."""
    if not (hasattr(problem, "A") and hasattr(problem, "y") and hasattr(problem, "row_space")):
        raise ValueError(
            "predictions need a least-squares problem with attributes A (d, n) and y (d,) "
            f"(hambias.LinearRegression), got {type(problem).__name__}")
    A = np.asarray(problem.A, dtype=np.float64)
    y = np.asarray(problem.y, dtype=np.float64)
    if A.ndim != 2 or y.shape != (A.shape[0],):
        raise ValueError(f"expected A of shape (d, n) and y of shape (d,), got {A.shape}, "
                         f"{y.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(y))):
        raise ValueError("A and y must be finite, got NaN or inf")
    return A, y


def check_beta(beta) -> float:
    """β as a float, finite and ≥ 0."""
    try:
        b = float(beta)
    except (TypeError, ValueError):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}") from None
    if not (np.isfinite(b) and b >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    return b
