"""Sweeps at scale: grids of runs, batched and sharded, stored in zarr, resumable.

A sweep is a TOML config naming grid axes (α, η, initial scale, β, (d, n, k),
seed, method), the number of steps and what to record.  :func:`run_sweep`
enumerates the grid as a flat list of *points*, cuts it into chunks sized to a
memory budget, runs every chunk as one batched ``lax.scan`` whose batch is
sharded over all visible devices (on CPUs in blocks of rows that stay in
cache, the same blocks whatever the number of devices; a batch of at most one
block runs on one device), and writes the chunk into a zarr store (one
zarr chunk per sweep chunk) followed by an atomic "done" marker.  A killed
sweep started again with the same command skips the done chunks and ends with
the same bits as an uninterrupted run; a different config on the same path is
refused.  :func:`open_sweep` reads the store back as an :class:`xarray.Dataset`
(gridded or flat), :func:`phase_table` and :func:`stability_boundary` give the
data of phase diagrams (THEORY.md §7, §8, §11).

Conventions of a point (all seeded, no global state):

* problem: ``sparse_regression(fold_in(key(seed), 0), d, n, k, design, noise)``;
* x₀ = init_scale · z with z ~ N(0, I/n) drawn from ``fold_in(key(seed), 1)``;
* method ``"hyp_star"`` / ``"hyp"``: GD + HYP* / GD + HYP (``gd_hyp_step``);
  ``"gd"``: the same step with α = 0, i.e. θ ← (θ − ηg)·e^{−ηβ};
  ``"exp"``: Theorem 3.1's multiplicative step (``exp_step``, α unused);
* prediction: :func:`hambias.predict.predict_limit` (Newton, KKT-certified):
  argmin_{Ax=y} D_{R_α}(x, x₀) for β = 0 (THEORY.md §7), argmin f + β H_α for β > 0
  (§11, independent of x₀); α = 0 (``Euclidean()``) for ``"gd"``; none for ``"exp"``
  or α < 0.  It is solved once per unique (problem, α, x₀ or β).

The step of every point is the formula of the :mod:`hambias.iterates` kernels
(``gd_hyp_step``, ``exp_step``) applied to the (B, n) batch, with the two matrix
products written as matmuls over the batch (X Aᵀ and R A) when all points of a
batch share one problem, the per-point scalars (η/d, −ηα/d, −ηβ) multiplied once
per run and sign(s) ⊙ g formed by selects; it equals the kernels to round-off.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import tomllib
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .geometry import Euclidean, HAMGeometry
from .iterates import signed
from .predict import predict_limit
from .problems import LinearRegression, sparse_regression

__all__ = [
    "SweepConfig",
    "SweepSummary",
    "PhaseTable",
    "load_config",
    "run_sweep",
    "open_sweep",
    "phase_table",
    "stability_boundary",
    "sweep_main",
]

#: Grid axes in storage order (the last varies fastest along the flat point index).
AXES = ("dnk", "method", "seed", "alpha", "eta", "init_scale", "beta")
#: Methods a sweep can run.
METHODS = ("hyp_star", "hyp", "gd", "exp")
_AXIS_DEFAULTS = {
    "alpha": [1.0],
    "init_scale": [0.0],
    "beta": [0.0],
    "seed": [0],
    "method": ["hyp_star"],
}
_TOP_KEYS = {"name", "steps", "chunk_size", "memory_mb", "dtype", "prediction", "problem", "grid",
             "record"}
_PROBLEM_DEFAULTS = {"design": "gaussian", "noise": 0.0}
_RECORD_DEFAULTS = {"x": True, "loss_every": 0, "conv_tol": 1e-6}
_PREDICTION_KINDS = ("builtin", "predict_limit", "none")

#: A run counts as diverged once its loss is non-finite or exceeds this multiple of
#: its initial loss: a convergent method never raises f above f(x₀) by 12 decades.
DIVERGENCE_FACTOR = 1e12
#: Bytes of device memory a point may use, as a multiple of its (d + n) floats, beyond
#: the design matrix: state, gradient, residual, step temporaries, outputs (measured
#: allocation of the jitted step is below 12 arrays of size n).
_ARRAYS_PER_POINT = 16

#: Codes of the per-point ``prediction_status``.
PRED_CONVERGED, PRED_NOT_CONVERGED, PRED_NONE = 0, 1, 2


# ----------------------------------------------------------------------------- config


def _float_list(axis, values, *, lo=None, strict=False):
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"grid axis {axis!r} needs finite numbers, got {v!r}")
        if lo is not None and (v <= lo if strict else v < lo):
            rel = ">" if strict else ">="
            raise ValueError(f"grid axis {axis!r} needs values {rel} {lo}, got {v!r}")
        out.append(float(v))
    return out


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep configuration (see :func:`load_config` for the TOML form).

    Attributes:
        grid: axis name → tuple of values, for every axis in :data:`AXES`.
        steps: iterations per run.
        name: free text stored with the results.
        design, noise: options of :func:`hambias.problems.sparse_regression`.
        record_x: store the final iterate and the prediction (n floats each per point).
        loss_every: store the loss every this many steps (0: final loss only).
        conv_tol: convergence time = first step with f(x_k) ≤ conv_tol · f(x₀).
        chunk_size: points per chunk (0: as many as ``memory_mb`` allows).
        memory_mb: device memory budget of one chunk, in MiB.
        dtype: ``"float64"`` or ``"float32"``.
        prediction: ``"builtin"`` (default) or ``"predict_limit"``: both solve each
            unique prediction with :func:`hambias.predict.predict_limit` (Newton; the two
            names are kept so that older configs stay valid); ``"none"``: no predictions.
    """

    grid: dict
    steps: int
    name: str = ""
    design: str = "gaussian"
    noise: float = 0.0
    record_x: bool = True
    loss_every: int = 0
    conv_tol: float = 1e-6
    chunk_size: int = 0
    memory_mb: float = 512.0
    dtype: str = "float64"
    prediction: str = "builtin"

    # -- derived -------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape in :data:`AXES` order."""
        return tuple(len(self.grid[a]) for a in AXES)

    @property
    def n_points(self) -> int:
        """Number of grid points (runs)."""
        return int(np.prod(self.shape))

    @property
    def n_max(self) -> int:
        """Largest dimension n of the grid (stored iterates are padded to it)."""
        return max(t[1] for t in self.grid["dnk"])

    @property
    def itemsize(self) -> int:
        return 8 if self.dtype == "float64" else 4

    def point_bytes(self) -> int:
        """Device bytes one point of a chunk needs (worst case: its own design matrix)."""
        d, n = max(t[0] for t in self.grid["dnk"]), self.n_max
        per_point_a = d * n if len(self.grid["seed"]) > 1 or len(self.grid["dnk"]) > 1 else 0
        hist = self.steps // self.loss_every if self.loss_every else 0
        return self.itemsize * (_ARRAYS_PER_POINT * (d + n) + per_point_a + hist)

    def resolved_chunk_size(self) -> int:
        """Points per chunk: ``chunk_size`` or the most that fit in ``memory_mb``."""
        budget = int(self.memory_mb * 2**20)
        fit = budget // self.point_bytes()
        if self.chunk_size:
            return min(self.chunk_size, self.n_points)
        return max(1, min(fit, self.n_points))

    def canonical(self) -> dict:
        """The config as a plain dict with every default filled in (what is hashed)."""
        d = dataclasses.asdict(self)
        d["grid"] = {a: [list(v) if isinstance(v, tuple) else v for v in self.grid[a]]
                     for a in AXES}
        return d

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON form of the config."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict) -> SweepConfig:
        """Validate a parsed TOML dict; raise ``ValueError`` naming what is wrong."""
        if not isinstance(raw, dict):
            raise ValueError(f"a sweep config must be a table, got {type(raw).__name__}")
        unknown = set(raw) - _TOP_KEYS
        if unknown:
            raise ValueError(
                f"unknown config key(s) {sorted(unknown)}; expected {sorted(_TOP_KEYS)}")
        grid_raw = raw.get("grid")
        if not isinstance(grid_raw, dict):
            raise ValueError("the config needs a [grid] table with at least 'eta' and 'dnk'")
        bad = set(grid_raw) - set(AXES)
        if bad:
            raise ValueError(f"unknown grid axis {sorted(bad)}; expected a subset of {list(AXES)}")
        for req in ("eta", "dnk"):
            if req not in grid_raw:
                raise ValueError(f"grid axis {req!r} is required (no default)")
        grid = {}
        for axis in AXES:
            vals = grid_raw.get(axis, _AXIS_DEFAULTS.get(axis))
            if not isinstance(vals, list):
                vals = [vals]
            if axis == "dnk" and vals and not isinstance(vals[0], list):
                vals = [vals]
            if len(vals) == 0:
                raise ValueError(f"grid axis {axis!r} is empty: the grid would have no points")
            if axis == "alpha":
                vals = _float_list(axis, vals)
            elif axis == "eta":
                vals = _float_list(axis, vals, lo=0.0, strict=True)
            elif axis in ("init_scale", "beta"):
                vals = _float_list(axis, vals, lo=0.0)
            elif axis == "seed":
                if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in vals):
                    raise ValueError(f"grid axis 'seed' needs integers >= 0, got {vals!r}")
            elif axis == "method":
                for m in vals:
                    if m not in METHODS:
                        raise ValueError(f"unknown method {m!r}; expected one of {list(METHODS)}")
            elif axis == "dnk":
                out = []
                for t in vals:
                    ok = isinstance(t, list) and len(t) == 3 and all(
                        isinstance(v, int) and not isinstance(v, bool) for v in t)
                    if not ok or not (0 < t[0] < t[1] and 0 <= t[2] <= t[1]):
                        raise ValueError(
                            f"grid axis 'dnk' needs [d, n, k] integer triples with 0 < d < n and "
                            f"0 <= k <= n, got {t!r}")
                    out.append(tuple(t))
                vals = out
            if len(set(vals)) != len(vals):
                raise ValueError(f"grid axis {axis!r} has repeated values: {vals!r}")
            grid[axis] = tuple(vals)
        steps = raw.get("steps")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise ValueError(f"'steps' must be a positive integer, got {steps!r}")
        prob = {**_PROBLEM_DEFAULTS, **raw.get("problem", {})}
        if set(prob) - set(_PROBLEM_DEFAULTS):
            raise ValueError(f"unknown [problem] key(s) "
                             f"{sorted(set(prob) - set(_PROBLEM_DEFAULTS))}")
        if prob["design"] not in ("gaussian", "rademacher"):
            raise ValueError(f"[problem] design must be 'gaussian' or 'rademacher', got "
                             f"{prob['design']!r}")
        noise = _float_list("noise", [prob["noise"]], lo=0.0)[0]
        rec = {**_RECORD_DEFAULTS, **raw.get("record", {})}
        if set(rec) - set(_RECORD_DEFAULTS):
            raise ValueError(f"unknown [record] key(s) {sorted(set(rec) - set(_RECORD_DEFAULTS))}; "
                             f"expected {sorted(_RECORD_DEFAULTS)}")
        every = rec["loss_every"]
        if not isinstance(every, int) or every < 0 or (every and steps % every):
            raise ValueError(f"[record] loss_every must be 0 or a divisor of steps = {steps}, "
                             f"got {every!r}")
        conv_tol = rec["conv_tol"]
        if not isinstance(conv_tol, (int, float)) or not 0 < conv_tol < 1:
            raise ValueError(f"[record] conv_tol must lie in (0, 1), got {conv_tol!r}")
        chunk = raw.get("chunk_size", 0)
        if not isinstance(chunk, int) or chunk < 0:
            raise ValueError(f"'chunk_size' must be an integer >= 0 (0: auto), got {chunk!r}")
        mem = raw.get("memory_mb", 512.0)
        if not isinstance(mem, (int, float)) or not mem > 0:
            raise ValueError(f"'memory_mb' must be a positive number, got {mem!r}")
        dtype = raw.get("dtype", "float64")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"'dtype' must be 'float64' or 'float32', got {dtype!r}")
        pred = raw.get("prediction", "builtin")
        if pred not in _PREDICTION_KINDS:
            raise ValueError(f"'prediction' must be one of {_PREDICTION_KINDS}, got {pred!r}")
        cfg = cls(grid=grid, steps=steps, name=str(raw.get("name", "")), design=prob["design"],
                  noise=noise, record_x=bool(rec["x"]), loss_every=every, conv_tol=float(conv_tol),
                  chunk_size=chunk, memory_mb=float(mem), dtype=dtype, prediction=pred)
        need, budget = cfg.point_bytes() * cfg.resolved_chunk_size(), cfg.memory_mb * 2**20
        if need > budget:
            raise ValueError(
                f"chunk_size = {cfg.chunk_size} points need {need / 2**20:.1f} MiB of device "
                f"memory "
                f"but memory_mb = {cfg.memory_mb:g}; lower chunk_size (or set 0 for automatic "
                f"chunking: at most {int(budget // cfg.point_bytes())} points fit)")
        if cfg.point_bytes() > budget:
            raise ValueError(f"one point needs {cfg.point_bytes() / 2**20:.1f} MiB, more than "
                             f"memory_mb = {cfg.memory_mb:g}")
        return cfg


def load_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a sweep config from a TOML file.

    The file has top-level ``steps`` (required), ``name``, ``chunk_size`` (0: auto),
    ``memory_mb`` (512), ``dtype`` ("float64"), ``prediction`` ("builtin" |
    "predict_limit" | "none"),
    and tables ``[grid]`` (axes of :data:`AXES`; ``eta`` and ``dnk`` required),
    ``[problem]`` (``design``, ``noise``) and ``[record]`` (``x``, ``loss_every``,
    ``conv_tol``).  See ``examples/sweeps/``.

    Raises:
        ValueError: unknown keys or axes, empty axes, out-of-range values, a chunk
            that does not fit in ``memory_mb``, or a file that is not TOML.
    """
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML ({e})") from e
    return SweepConfig.from_dict(raw)


# ----------------------------------------------------------------------------- grid


def _point_table(cfg: SweepConfig) -> dict:
    """Per-point axis indices (flat order: :data:`AXES`, last fastest)."""
    idx = np.unravel_index(np.arange(cfg.n_points), cfg.shape)
    return dict(zip(AXES, idx))


@lru_cache(maxsize=16)
def _drawer(d: int, n: int, k: int, design: str, noise: float, dtype: str):
    """A jitted draw key → (A, y, x*, z): one compilation instead of many eager ops."""

    def draw(key):
        prob, x_star = sparse_regression(jax.random.fold_in(key, 0), d, n, k, design=design,
                                         noise=noise, dtype=dtype)
        z = jax.random.normal(jax.random.fold_in(key, 1), (n,), dtype=dtype) / np.sqrt(n)
        return prob.A, prob.y, x_star, z

    return jax.jit(draw)


@lru_cache(maxsize=256)
def _problem(seed: int, d: int, n: int, k: int, design: str, noise: float, dtype: str):
    """(A, y, x*, λ_max, z) of a seeded problem; z ~ N(0, I/n) is the unit initialisation.

    The problem is ``sparse_regression(fold_in(key(seed), 0), ...)``; it is validated
    (full row rank) outside the jitted draw.
    """
    A, y, x_star, z = (np.asarray(v) for v in _drawer(d, n, k, design, noise, dtype)(
        jax.random.key(seed)))
    LinearRegression(A, y, underdetermined=True, full_row_rank=True)  # raises if rank deficient
    lam_max = float(np.linalg.svd(A.astype(np.float64), compute_uv=False)[0] ** 2 / d)
    return A, y, x_star, lam_max, z


# ----------------------------------------------------------------------------- engine


def _step_coefficients(method, eta, alpha, beta, d):
    """Per-point (B, 1) scalars (c_g, c_s, c_0) of the step written for S = R A = d·∇f.

    GD + HYP(*) / GD: θ½ = θ − c_g S, θ ← θ½ ⊙ exp(c_s sign(·) ⊙ S + c_0) with c_g = η/d,
    c_s = −ηα/d (0 for GD), c_0 = −ηβ; exp step: θ ← θ ⊙ exp(c_s sign(θ) ⊙ S + c_0) with
    c_s = −2η/d, c_0 = −4ηβ.  The same formulas as ``gd_hyp_step`` / ``exp_step``
    (THEORY.md §2, §6), with the products of per-point scalars taken once per run.
    """
    col = lambda v: v[:, None]
    if method == "exp":
        return None, col(-2.0 * eta / d), col(-4.0 * eta * beta)
    a = jnp.zeros_like(alpha) if method == "gd" else alpha
    return col(eta / d), col(-eta * a / d), col(-eta * beta)


def _apply_step(method, X, S, cg, cs, c0):
    """One step of ``method`` on the (B, n) batch X, with S = R A = d·∇f (unscaled)."""
    if method == "exp":
        return X * jnp.exp(cs * signed(X, S) + c0)
    Xh = X - cg * S
    if method == "gd":
        return Xh * jnp.exp(c0)
    return Xh * jnp.exp(cs * signed(Xh if method == "hyp_star" else X, S) + c0)


#: Bytes of a block's working set (per row: X, S = R A and the next X, 3n floats; R and
#: the loss terms, 2d; for per-point problems the row's A, d·n) that the CPU engine aims to
#: keep in a core's private L2 cache (256 KiB - 2 MiB on current x86 and Arm cores).  On the
#: 2-core benchmark box (1 MiB of L2 per core), 20×100 float64 blocks of 128 rows (shared
#: A) and 16 rows (per-point A) ran 1.2× and 1.7× faster than one 512-row batch per device,
#: which spills to L3.
CPU_BLOCK_BYTES = 384 * 2**10
#: Fewest rows of a block with a shared A.  Every block reads all of A at every step, and
#: a narrow block turns the batch's matmul into matrix-vector products: 4-row blocks of a
#: shared 200×2000 (1000×5000) float64 A ran 2.9× (5.3×) slower than 128-row blocks, which
#: are as fast as the whole batch.
SHARED_MIN_BLOCK_ROWS = 128


def _block_rows(shared: bool, d: int, n: int, itemsize: int, platform: str) -> int | None:
    """Rows of a CPU block: the largest power of two whose working set fits
    :data:`CPU_BLOCK_BYTES` (at least 1, and at least :data:`SHARED_MIN_BLOCK_ROWS` with a
    shared A).  It depends on the problem's shape and dtype only, never on the batch or the
    devices.  None (no blocks) on accelerators, which want one wide kernel per step."""
    if platform != "cpu":
        return None
    row = (3 * n + 2 * d + (0 if shared else d * n)) * itemsize
    rows = 1 << max(0, (CPU_BLOCK_BYTES // row).bit_length() - 1)
    return max(rows, SHARED_MIN_BLOCK_ROWS) if shared else rows


@lru_cache(maxsize=32)
def _runner(method: str, steps: int, loss_every: int, conv_tol: float, shared: bool,
            mesh: Mesh, block: int):
    """A jitted batched run: (A, y, X0, alpha, eta, beta) → outputs (see :func:`_run_batch`).

    Each device runs its rows ``block`` at a time (a ``lax.map`` over blocks inside
    ``shard_map``): every block does the whole time loop while its working set stays in
    cache.
    """

    def residual_grad(X, A, y):
        """(R, f, S): residual, loss and the unscaled gradient S = R A = d·∇f (per point)."""
        d = A.shape[-2]
        if shared:  # one problem: the two products are matmuls over the batch
            R = X @ A.T - y
            S = R @ A
        else:
            R = jnp.einsum("bdn,bn->bd", A, X) - y
            S = jnp.einsum("bd,bdn->bn", R, A)
        return R, jnp.sum(R * R, axis=1) / (2 * d), S

    def run(A, y, X0, alpha, eta, beta):
        coef = _step_coefficients(method, eta, alpha, beta, A.shape[-2])
        _, loss0, _ = residual_grad(X0, A, y)
        thr_conv = conv_tol * loss0
        thr_div = DIVERGENCE_FACTOR * loss0 + jnp.finfo(X0.dtype).tiny
        minus1 = jnp.full_like(loss0, -1, dtype=jnp.int32)

        def monitor(k, loss, conv, div):
            bad = ~(jnp.isfinite(loss) & (loss <= thr_div))
            div = jnp.where((div < 0) & bad, k, div)
            conv = jnp.where((conv < 0) & (div < 0) & (loss <= thr_conv), k, conv)
            return conv, div

        def body(carry, _):
            X, k, conv, div = carry
            _, loss, S = residual_grad(X, A, y)
            conv, div = monitor(k, loss, conv, div)
            Xn = _apply_step(method, X, S, *coef)
            X = jnp.where((div < 0)[:, None], Xn, X)
            return (X, k + 1, conv, div), None

        carry = (X0, jnp.int32(0), minus1, minus1)
        if loss_every:
            def outer(carry, _):
                carry, _ = lax.scan(body, carry, None, length=loss_every)
                _, loss, _ = residual_grad(carry[0], A, y)
                return carry, loss

            carry, hist = lax.scan(outer, carry, None, length=steps // loss_every)
            hist = hist.T
        else:
            carry, _ = lax.scan(body, carry, None, length=steps)
            hist = jnp.zeros((X0.shape[0], 0), X0.dtype)
        X, k, conv, div = carry
        _, loss, _ = residual_grad(X, A, y)
        conv, div = monitor(k, loss, conv, div)
        return X, loss0, loss, conv, div, hist

    def local(A, y, X0, alpha, eta, beta):
        """The rows of one device, ``block`` rows at a time."""
        m = X0.shape[0]
        if block >= m:
            return run(A, y, X0, alpha, eta, beta)
        split = lambda v: v.reshape((m // block, block) + v.shape[1:])
        per_row = (X0, alpha, eta, beta) if shared else (A, y, X0, alpha, eta, beta)
        blocks = lax.map(lambda b: run(A, y, *b) if shared else run(*b), tuple(map(split, per_row)))
        return tuple(o.reshape((m,) + o.shape[2:]) for o in blocks)

    rows, whole = P("batch"), P()
    specs = ((whole, whole) if shared else (rows, rows)) + (rows,) * 4
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=rows))


def _layout(m: int, ndev: int, block: int | None) -> tuple[int, int, int]:
    """(devices used, rows per device, rows per block) for a batch of m points.

    Without blocks (accelerators) the next power of two ≥ m rows (few distinct shapes,
    few compilations) are split over all ``ndev`` devices.  With CPU blocks of ``block``
    rows, a batch of at most one block runs whole (padded to a power of two) on one
    device, and a larger one in whole blocks on as many devices as it has blocks (each
    device's block count padded to a power of two).  Every point is then computed by the
    same program (a block of ``block`` rows, or the whole small batch) whatever the number
    of devices, so its bits do not depend on it.  (XLA picks its matmul kernel by size:
    the same rows in a 128- and a 256-row batch can differ in the last bit.)
    """
    b = 1 << max(0, (m - 1).bit_length())
    if block is None:
        per_device = -(-max(b, ndev) // ndev)
        return ndev, per_device, per_device
    if b <= block:
        return 1, b, b
    blocks = -(-m // block)
    used = min(ndev, blocks)
    per = -(-blocks // used)
    return used, (1 << (per - 1).bit_length()) * block, block


def _run_batch(method, A, y, X0, alpha, eta, beta, *, steps, loss_every, conv_tol, mesh):
    """Run one homogeneous batch (one method and shape) sharded over ``mesh``.

    ``A`` is (d, n) for a shared problem or (m, d, n) per point.  Returns numpy arrays
    (X, loss0, loss, conv_step, div_step, history) for the m points.
    """
    m = X0.shape[0]
    shared = A.ndim == 2
    block = _block_rows(shared, *A.shape[-2:], np.dtype(X0.dtype).itemsize,
                        mesh.devices.flat[0].platform)
    ndev, per_device, block = _layout(m, mesh.devices.size, block)
    if ndev < mesh.devices.size:
        mesh = Mesh(mesh.devices.flat[:ndev], ("batch",))
    size = ndev * per_device
    pad = lambda v: np.concatenate([v, np.repeat(v[:1], size - m, axis=0)]) if size > m else v
    batch = NamedSharding(mesh, P("batch"))
    repl = NamedSharding(mesh, P())
    args = [(A, repl if shared else batch), (y, repl if shared else batch), (X0, batch),
            (alpha, batch), (eta, batch), (beta, batch)]
    put = [jax.device_put(v if (k < 2 and shared) else pad(v), s) for k, (v, s) in enumerate(args)]
    out = _runner(method, steps, loss_every, conv_tol, shared, mesh, block)(*put)
    return [np.asarray(o)[:m] for o in out]


# ----------------------------------------------------------------------------- predictions


def _solve_predictions(cfg: SweepConfig, keys: list[tuple]) -> dict:
    """Predicted limits for unique keys (dnk_i, seed, kind, α, init_scale, β) → (x, status).

    One :func:`hambias.predict.predict_limit` call per key, with ``solver="newton"``
    and ``throw=False``: argmin_{Ax=y} D_{R_α}(x, x₀) (dual Newton, THEORY.md §7)
    for β = 0, argmin f + β H_α (primal Newton, §11) for β > 0.  The geometry is
    ``Euclidean()`` for α = 0 (the min-norm / ridge closed forms) and ``HAMGeometry(α)``
    otherwise.  ``kind = "none"`` or ``prediction = "none"`` gives ``(None, PRED_NONE)``;
    a prediction whose status is not ``"optimal"`` keeps its last point with
    ``PRED_NOT_CONVERGED``.  ``"builtin"`` and ``"predict_limit"`` are the same solver
    (both names are accepted so that existing configs and their digests stay valid).
    """
    out, problems = {}, {}
    for key in keys:
        dnk_i, seed, kind, a, s, b = key
        if kind == "none" or cfg.prediction == "none":
            out[key] = (None, PRED_NONE)
            continue
        if (dnk_i, seed) not in problems:
            d, n, k = cfg.grid["dnk"][dnk_i]
            A, y, _, _, z = (np.asarray(v, dtype=np.float64) for v in _problem(
                seed, d, n, k, cfg.design, cfg.noise, cfg.dtype))
            problems[dnk_i, seed] = (LinearRegression(A, y), z)
        problem, z = problems[dnk_i, seed]
        geometry = Euclidean() if a == 0 else HAMGeometry(a)
        pred = predict_limit(geometry, problem, s * z, beta=b, solver="newton",
                             throw=False)
        out[key] = (np.asarray(pred.x), PRED_CONVERGED if pred.converged else PRED_NOT_CONVERGED)
    return out


def _prediction_key(cfg, dnk_i, seed, method, alpha, scale, beta):
    if method == "exp" or alpha < 0:
        return (dnk_i, seed, "none", 0.0, 0.0, 0.0)
    a = 0.0 if method == "gd" else alpha
    return (dnk_i, seed, "bregman", a, 0.0 if beta > 0 else scale, beta)


# ----------------------------------------------------------------------------- storage

_SCALARS = {  # name → (dtype, fill, description)
    "loss0": ("float", np.nan, "f(x_0)"),
    "loss": ("float", np.nan, "f(x_T) at the last step (NaN if diverged)"),
    "recovery_error": ("float", np.nan, "‖x_T − x*‖/‖x*‖ (absolute when x* = 0)"),
    "prediction_error": ("float", np.nan, "‖x_T − x_pred‖/‖x_pred‖ (absolute when x_pred = 0)"),
    "conv_step": ("int32", -1, "first step k with f(x_k) ≤ conv_tol·f(x_0); -1: never"),
    "diverged": ("bool", False, "the run diverged (loss non-finite or > 1e12·f(x_0))"),
    "divergence_step": ("int32", -1, "step at which divergence was detected; -1: none"),
    "lam_max": ("float", np.nan, "λ_max(AᵀA/d) of the point's problem"),
    "theta_max": ("float", np.nan, "max_i |x_pred,i| (for the stability boundary)"),
    "prediction_status": ("int8", PRED_NONE, "0 converged, 1 not converged, 2 no prediction"),
}
_COORDS = ("alpha", "eta", "init_scale", "beta", "seed", "method", "d", "n", "k")


def _np_dtype(kind, cfg):
    return np.dtype(cfg.dtype) if kind == "float" else np.dtype(kind)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name("." + path.name + ".tmp")  # never matches a marker name
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _init_store(cfg: SweepConfig, out: Path, chunk: int) -> None:
    import zarr

    from . import __version__

    out.mkdir(parents=True, exist_ok=True)
    (out / "done").mkdir(exist_ok=True)
    N, nmax = cfg.n_points, cfg.n_max
    g = zarr.open_group(str(out / "data.zarr"), mode="w")
    for name, (kind, fill, desc) in _SCALARS.items():
        a = g.create_array(name, shape=(N,), chunks=(chunk,), dtype=_np_dtype(kind, cfg),
                           fill_value=fill, dimension_names=["point"])
        a.attrs["description"] = desc
    if cfg.record_x:
        for name in ("x", "x_pred"):
            g.create_array(name, shape=(N, nmax), chunks=(chunk, nmax), dtype=cfg.dtype,
                           fill_value=np.nan, dimension_names=["point", "coord"])
    if cfg.loss_every:
        nrec = cfg.steps // cfg.loss_every
        g.create_array("loss_history", shape=(N, nrec), chunks=(chunk, nrec), dtype=cfg.dtype,
                       fill_value=np.nan, dimension_names=["point", "record"])
        rec = g.create_array("record", shape=(nrec,), dtype="int64", dimension_names=["record"])
        rec[:] = np.arange(1, nrec + 1) * cfg.loss_every
    tab = _point_table(cfg)
    coords = {
        "alpha": np.asarray(cfg.grid["alpha"])[tab["alpha"]],
        "eta": np.asarray(cfg.grid["eta"])[tab["eta"]],
        "init_scale": np.asarray(cfg.grid["init_scale"])[tab["init_scale"]],
        "beta": np.asarray(cfg.grid["beta"])[tab["beta"]],
        "seed": np.asarray(cfg.grid["seed"], dtype=np.int64)[tab["seed"]],
        "method": tab["method"].astype(np.int8),
    }
    for j, c in enumerate("dnk"):
        coords[c] = np.asarray([t[j] for t in cfg.grid["dnk"]], dtype=np.int64)[tab["dnk"]]
    for name, v in coords.items():
        a = g.create_array(name, shape=(N,), chunks=(N,), dtype=v.dtype, dimension_names=["point"])
        a[:] = v
    g["method"].attrs["labels"] = list(cfg.grid["method"])
    meta = {"config": cfg.canonical(), "digest": cfg.digest, "version": __version__,
            "chunk_size": chunk, "n_points": N, "n_chunks": -(-N // chunk)}
    g.attrs.update({"sweep_digest": cfg.digest, "hambias_version": __version__,
                    "config_json": json.dumps(cfg.canonical(), sort_keys=True)})
    _atomic_write(out / "meta.json", json.dumps(meta, indent=1, sort_keys=True))


def _prepare_store(cfg: SweepConfig, out: Path) -> dict:
    """Create the store, or check that an existing one belongs to this config."""
    meta_path = out / "meta.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta["digest"] != cfg.digest:
            old = meta["config"]
            new = cfg.canonical()
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            raise ValueError(
                f"{out} holds a sweep with a different config (differs in {diff}; stored digest "
                f"{meta['digest'][:12]}, this config {cfg.digest[:12]}); refusing to mix results. "
                f"Use another --out path or delete {out}.")
        return meta
    if out.exists() and any(p.name not in ("data.zarr", "done", ".meta.json.tmp")
                            for p in out.iterdir()):
        raise ValueError(f"{out} exists and is not a hambias sweep (no meta.json); refusing to "
                         f"write into it")
    _init_store(cfg, out, cfg.resolved_chunk_size())  # (re)initialise a store killed in init
    return json.loads(meta_path.read_text())


def _marker(out: Path, c: int) -> Path:
    return out / "done" / f"chunk_{c:07d}"


# ----------------------------------------------------------------------------- running


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes:
        path: the store.
        n_points, n_chunks: grid size and chunks in the store.
        chunks_run, chunks_skipped: chunks computed now / found done from an earlier run.
        n_diverged: diverged points among those computed now.
        seconds: wall time of this call.
        complete: all chunks are done.
        devices: the devices this process could shard over, e.g. ``"2 × cpu"`` (on
            CPUs a batch of at most one cache block runs on one of them).
    """

    path: str
    n_points: int
    n_chunks: int
    chunks_run: int
    chunks_skipped: int
    n_diverged: int
    seconds: float
    complete: bool
    devices: str = ""


class _Progress:
    def __init__(self, total, enabled):
        self.total, self.enabled, self.t0, self.done0 = total, enabled, time.monotonic(), None

    def update(self, done):
        if not self.enabled:
            return
        if self.done0 is None:
            self.done0, self.t0 = done, time.monotonic()
            return
        dt = time.monotonic() - self.t0
        rate = (done - self.done0) / dt if dt > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        sys.stderr.write(f"\r[sweep] {done}/{self.total} points ({100 * done / self.total:.1f}%), "
                         f"{rate:.3g} points/s, ETA {eta:.1f} s   ")
        sys.stderr.flush()
        if done >= self.total:
            sys.stderr.write("\n")


def _relative_distance(x, ref):
    nref = np.linalg.norm(ref, axis=-1)
    dist = np.linalg.norm(x - ref, axis=-1)
    return np.where(nref > 0, dist / np.where(nref > 0, nref, 1.0), dist)


def _compute_chunk(cfg: SweepConfig, tab: dict, lo: int, hi: int, mesh, pred_cache: dict) -> dict:
    """All stored arrays of points lo..hi-1."""
    m, nmax = hi - lo, cfg.n_max
    dt = np.dtype(cfg.dtype)
    res = {name: np.full(m, fill, dtype=_np_dtype(kind, cfg))
           for name, (kind, fill, _) in _SCALARS.items()}
    res["x"] = np.full((m, nmax), np.nan, dt)
    res["x_pred"] = np.full((m, nmax), np.nan, dt)
    nrec = cfg.steps // cfg.loss_every if cfg.loss_every else 0
    res["loss_history"] = np.full((m, nrec), np.nan, dt)
    g = cfg.grid
    pts = np.arange(lo, hi)
    val = {a: [g[a][i] for i in tab[a][lo:hi]] for a in AXES}
    # predictions (deduplicated over the chunk and cached over chunks of this process)
    pkeys = [_prediction_key(cfg, tab["dnk"][p], val["seed"][j], val["method"][j], val["alpha"][j],
                             val["init_scale"][j], val["beta"][j]) for j, p in enumerate(pts)]
    todo = sorted({k for k in pkeys if k not in pred_cache}, key=repr)
    pred_cache.update(_solve_predictions(cfg, todo))
    # runs, one homogeneous batch per (dnk, method)
    groups: dict = {}
    for j, p in enumerate(pts):
        groups.setdefault((tab["dnk"][p], val["method"][j]), []).append(j)
    for (dnk_i, method), js in groups.items():
        js = np.asarray(js)
        d, n, k = g["dnk"][dnk_i]
        seeds = [val["seed"][j] for j in js]
        probs = {s: _problem(s, d, n, k, cfg.design, cfg.noise, cfg.dtype) for s in set(seeds)}
        if len(probs) == 1:
            A, y = probs[seeds[0]][:2]
        else:
            A = np.stack([probs[s][0] for s in seeds])
            y = np.stack([probs[s][1] for s in seeds])
        scale = np.array([val["init_scale"][j] for j in js], dt)
        X0 = scale[:, None] * np.stack([probs[s][4] for s in seeds])
        arr = lambda name: np.array([val[name][j] for j in js], dt)
        X, loss0, loss, conv, div, hist = _run_batch(
            method, A, y, X0, arr("alpha"), arr("eta"), arr("beta"), steps=cfg.steps,
            loss_every=cfg.loss_every, conv_tol=cfg.conv_tol, mesh=mesh)
        bad = div >= 0
        X = np.where(bad[:, None], np.nan, X)
        x_star = np.stack([probs[s][2] for s in seeds])
        preds = [pred_cache[pkeys[j]] for j in js]
        xp = np.stack([p[0] if p[0] is not None else np.full(n, np.nan) for p in preds])
        res["loss0"][js] = loss0
        res["loss"][js] = np.where(bad, np.nan, loss)
        res["recovery_error"][js] = _relative_distance(X, x_star)
        res["prediction_error"][js] = _relative_distance(X, xp)
        res["conv_step"][js] = conv
        res["diverged"][js] = bad
        res["divergence_step"][js] = div
        res["lam_max"][js] = [probs[s][3] for s in seeds]
        res["theta_max"][js] = np.max(np.abs(xp), axis=1)
        res["prediction_status"][js] = [p[1] for p in preds]
        res["x"][js, :n] = X
        res["x_pred"][js, :n] = xp
        res["loss_history"][js] = np.where(bad[:, None], np.nan, hist) if nrec else hist
    return res


def run_sweep(config: SweepConfig | str | os.PathLike, out: str | os.PathLike, *,
              quiet: bool = False, devices=None) -> SweepSummary:
    """Run (or resume) a sweep and store it at ``out``.

    Every chunk of points is run as one batched scan sharded over ``devices``,
    written to ``out/data.zarr`` and then marked done by an atomic marker file in
    ``out/done``; a second call with the same config skips the done chunks (so a
    killed sweep resumes and ends with the bits of an uninterrupted run).  Points
    whose run diverged are recorded (``diverged``, ``divergence_step``, NaN
    iterate) and do not stop the sweep.

    Args:
        config: a :class:`SweepConfig` or the path of a TOML file.
        out: directory of the store (created).
        quiet: no progress line (it is shown only when stderr is a terminal anyway).
        devices: devices to shard the batch over (default: ``jax.local_devices()``).

    Returns:
        A :class:`SweepSummary`.

    Raises:
        ValueError: an invalid config, a float64 config without ``jax_enable_x64``,
            or ``out`` holding a sweep with a different config.

    >>> import jax, tempfile
    >>> jax.config.update("jax_enable_x64", True)
    >>> cfg = SweepConfig.from_dict({"steps": 10, "grid": {"eta": [0.01], "dnk": [4, 8, 2]}})
    >>> run_sweep(cfg, tempfile.mkdtemp() + "/s", quiet=True).complete
    True
    """
    t_start = time.monotonic()
    cfg = config if isinstance(config, SweepConfig) else load_config(config)
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("the sweep asks for dtype = 'float64' but jax_enable_x64 is off; call "
                         "jax.config.update('jax_enable_x64', True) first or use dtype = 'float32'")
    out = Path(out)
    multi = jax.process_count() > 1
    if multi:
        from jax.experimental import multihost_utils

        if jax.process_index() == 0:
            meta = _prepare_store(cfg, out)
        multihost_utils.sync_global_devices("hambias-sweep-init")
    meta = _prepare_store(cfg, out)
    chunk, n_chunks = meta["chunk_size"], meta["n_chunks"]
    devices = list(jax.local_devices() if devices is None else devices)
    mesh = Mesh(np.asarray(devices), ("batch",))
    mine = [c for c in range(n_chunks) if c % jax.process_count() == jax.process_index()]
    done = [c for c in mine if _marker(out, c).exists()]
    todo = [c for c in mine if c not in set(done)]
    import zarr

    g = zarr.open_group(str(out / "data.zarr"), mode="r+")
    names = list(_SCALARS) + (["x", "x_pred"] if cfg.record_x else []) + (
        ["loss_history"] if cfg.loss_every else [])
    tab = _point_table(cfg)
    pts_of = lambda c: min(cfg.n_points, (c + 1) * chunk) - c * chunk
    progress = _Progress(sum(pts_of(c) for c in mine),
                         enabled=not quiet and sys.stderr.isatty())
    if done and not quiet:
        print(f"[sweep] resuming {out}: {len(done)} of {len(mine)} chunks already done",
              file=sys.stderr)
    npts = sum(pts_of(c) for c in done)
    progress.update(npts)
    n_div, cache = 0, {}
    for c in todo:
        lo, hi = c * chunk, min(cfg.n_points, (c + 1) * chunk)
        res = _compute_chunk(cfg, tab, lo, hi, mesh, cache)
        for name in names:
            g[name][lo:hi] = res[name]
        _atomic_write(_marker(out, c), "")
        n_div += int(res["diverged"].sum())
        npts += hi - lo
        progress.update(npts)
    if multi:
        multihost_utils.sync_global_devices("hambias-sweep-done")
    complete = all(_marker(out, c).exists() for c in range(n_chunks))
    return SweepSummary(str(out), cfg.n_points, n_chunks, len(todo), len(done), n_div,
                        time.monotonic() - t_start, complete,
                        f"{len(devices)} × {devices[0].platform}")


# ----------------------------------------------------------------------------- reading


def open_sweep(path: str | os.PathLike, *, gridded: bool = True, complete: bool = True):
    """Open a stored sweep as an :class:`xarray.Dataset`.

    Args:
        path: the ``--out`` directory of a sweep.
        gridded: unstack the flat ``point`` dimension into the grid dimensions
            ``(method, size, seed, alpha, eta, init_scale, beta)`` (``size`` is "dxnxk",
            with coordinates d, n, k along it); ``False`` keeps ``point``.
        complete: raise if some chunks are not done (``False``: their points are NaN).

    Returns:
        The dataset, with the config (``config_json``), its digest and the hambias
        version in ``attrs``.

    Raises:
        ValueError: ``path`` is not a sweep, or it is incomplete and ``complete`` is set.
    """
    import xarray as xr

    path = Path(path)
    if not (path / "meta.json").exists():
        raise ValueError(f"{path} is not a hambias sweep (no meta.json)")
    meta = json.loads((path / "meta.json").read_text())
    n_done = sum(_marker(path, c).exists() for c in range(meta["n_chunks"]))
    if complete and n_done < meta["n_chunks"]:
        raise ValueError(f"{path} is incomplete ({n_done} of {meta['n_chunks']} chunks done); "
                         f"resume it with the same command or pass complete=False")
    ds = xr.open_zarr(path / "data.zarr", chunks=None, consolidated=False).load()
    labels = np.asarray(ds["method"].attrs.get("labels", list(METHODS)))
    ds = ds.assign(method=("point", labels[ds["method"].values]))
    size = np.char.add(np.char.add(np.char.add(ds["d"].values.astype(str), "x"),
                                   np.char.add(ds["n"].values.astype(str), "x")),
                       ds["k"].values.astype(str))
    coords = {c: ds[c] for c in _COORDS}
    ds = ds.drop_vars(list(_COORDS)).assign_coords(coords).assign_coords(size=("point", size))
    if not gridded:
        return ds
    dims = ["method", "size", "seed", "alpha", "eta", "init_scale", "beta"]
    dnk = ds[["d", "n", "k"]].to_dataframe().groupby(ds["size"].values).first()
    order = {c: list(dict.fromkeys(ds[c].values.tolist())) for c in dims}
    ds = ds.drop_vars(["d", "n", "k"]).set_index(point=dims).unstack("point")
    ds = ds.reindex(order).transpose(*dims, ...)
    return ds.assign_coords({c: ("size", dnk.loc[ds["size"].values, c].to_numpy()) for c in "dnk"})


@dataclasses.dataclass(frozen=True)
class PhaseTable:
    """A 2-D table of a sweep quantity: ``values[i, j]`` at (y[i], x[j]).

    Attributes:
        x_name, y_name, value_name: the coordinates and the quantity.
        x, y: sorted unique coordinate values.
        values: reduced values, shape (len(y), len(x)); NaN where no point falls.
        counts: points reduced into each cell.
        reduce: the reduction used.
    """

    x_name: str
    y_name: str
    value_name: str
    x: np.ndarray
    y: np.ndarray
    values: np.ndarray
    counts: np.ndarray
    reduce: str


_REDUCERS = {"median": np.nanmedian, "mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}


def phase_table(ds, *, x: str, y: str, value: str, where: dict | None = None,
                reduce: str = "median") -> PhaseTable:
    """Reduce a sweep quantity onto a 2-D grid of two coordinates (a phase diagram).

    values[i, j] = reduce{ value(p) : x(p) = x_j, y(p) = y_i, p matches ``where`` },
    the reduction running over every other axis (seeds, …).  ``reduce = "fraction"``
    gives the fraction of points where ``value`` is true (e.g. ``diverged``).

    Typical uses: ``recovery_error`` over (alpha, init_scale) (THEORY.md §8),
    ``recovery_error`` over (n, k), ``conv_step`` over (alpha, eta) with
    :func:`stability_boundary` on top (§11).

    Args:
        ds: a dataset from :func:`open_sweep` (gridded or flat).
        x, y: per-point coordinates (alpha, eta, init_scale, beta, seed, method, d, n, k).
        value: a data variable (``conv_step`` < 0 counts as NaN: never converged).
        where: coordinate → value filter, e.g. ``{"method": "hyp_star"}``.
        reduce: ``"median"``, ``"mean"``, ``"min"``, ``"max"`` or ``"fraction"``.

    Raises:
        ValueError: unknown coordinate, variable or reduction.

    >>> import numpy as np, xarray as xr
    >>> ds = xr.Dataset({"v": ("point", [1.0, 2.0, 3.0])},
    ...                 coords={"a": ("point", [0, 0, 1]), "b": ("point", [5, 5, 5])})
    >>> phase_table(ds, x="a", y="b", value="v").values.tolist()
    [[1.5, 3.0]]
    """
    if reduce not in (*_REDUCERS, "fraction"):
        raise ValueError(f"reduce must be one of {[*_REDUCERS, 'fraction']}, got {reduce!r}")
    if "point" not in ds.dims:
        ds = ds.stack(point=[d for d in ds[value].dims if d not in ("coord", "record")])
    for name in (x, y, *(where or {})):
        if name not in ds.coords:
            raise ValueError(f"unknown coordinate {name!r}; the sweep has {sorted(ds.coords)}")
    if value not in ds.data_vars:
        raise ValueError(f"unknown variable {value!r}; the sweep has {sorted(ds.data_vars)}")
    v = np.asarray(ds[value].values, dtype=float)
    if value == "conv_step":
        v = np.where(v < 0, np.nan, v)
    pts = np.ones(v.shape, bool)
    for c, want in (where or {}).items():
        pts &= np.asarray(np.broadcast_to(ds[c].values, v.shape) == want)
    xv, yv = np.broadcast_to(ds[x].values, v.shape), np.broadcast_to(ds[y].values, v.shape)
    xs, ys = np.unique(xv[pts]), np.unique(yv[pts])
    vals = np.full((ys.size, xs.size), np.nan)
    counts = np.zeros((ys.size, xs.size), int)
    for i, yy in enumerate(ys):
        for j, xx in enumerate(xs):
            sel = pts & (xv == xx) & (yv == yy)
            counts[i, j] = int(sel.sum())
            if counts[i, j] == 0:
                continue
            if reduce == "fraction":
                vals[i, j] = float(np.mean(v[sel] != 0))
            elif np.any(np.isfinite(v[sel])):
                vals[i, j] = float(_REDUCERS[reduce](v[sel]))
    return PhaseTable(x, y, value, xs, ys, vals, counts, reduce)


def stability_boundary(alpha, *, lam_max, theta_max):
    """The step size where GD + HYP loses stability: η(1 + α|θ*|)λ_max = 2 (THEORY.md §11).

    η_crit(α) = 2 / (λ_max (1 + α max|θ*|)); below it the linearisation at θ* is stable.

    Args:
        alpha: α values (array-like, α ≥ 0 for the formula to be a bound).
        lam_max: λ_max(∇²f) = λ_max(AᵀA/d) (stored per point as ``lam_max``).
        theta_max: max_i |θ*_i| of the limit (stored per point as ``theta_max``).

    Returns:
        η_crit with the broadcast shape of the inputs.

    >>> float(stability_boundary(1.0, lam_max=2.0, theta_max=1.0))
    0.5
    """
    alpha, lam, th = (np.asarray(v, dtype=float) for v in (alpha, lam_max, theta_max))
    if np.any(lam <= 0) or np.any(th < 0):
        raise ValueError(f"need lam_max > 0 and theta_max >= 0, got {lam_max!r}, {theta_max!r}")
    return 2.0 / (lam * (1.0 + alpha * th))


# ----------------------------------------------------------------------------- command line


def _available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _request_cpu_devices(n: int, explicit: bool) -> None:
    """Ask JAX for ``n`` CPU devices (``jax_num_cpu_devices``) to shard a sweep over.

    One device per core uses the cores better than one device with more threads (on the
    2-core development box: 2.4-2.6× against 1.4× for a second thread).  A number already
    chosen (``jax_num_cpu_devices`` or ``--xla_force_host_platform_device_count`` in
    XLA_FLAGS) is kept unless ``explicit``.  JAX
    takes the option only before its first computation; after that a default request is
    dropped and an explicit one is an error.
    """
    chosen = (jax.config.jax_num_cpu_devices != -1
              or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""))
    if chosen and not explicit:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as e:  # the backends are up: their devices stay
        if explicit:
            raise ValueError(f"--cpu-devices {n}: JAX is already initialised in this "
                             f"process ({e})") from None


def sweep_main(argv: list[str] | None = None, *, default_cpu_devices: bool = False) -> int:
    """``hambias sweep CONFIG --out PATH [--quiet] [--cpu-devices N]``: run or resume a sweep.

    This is an entry point: it enables float64 when the config asks for it, and asks JAX
    for N CPU devices (``--cpu-devices``) or, with ``default_cpu_devices`` (the
    ``hambias`` and ``python -m hambias.sweep`` commands), one per available core; JAX
    takes that only if it has not computed anything yet in this process.  Returns 0 when
    the sweep is complete; a bad config, a config mismatch or a late ``--cpu-devices``
    prints the message and returns 2.
    """
    parser = argparse.ArgumentParser(prog="hambias sweep",
                                     description="Run or resume a batched, sharded sweep.")
    parser.add_argument("config", help="TOML sweep config")
    parser.add_argument("--out", required=True, help="store directory (resumed if it exists)")
    parser.add_argument("--quiet", action="store_true", help="no progress or summary output")
    parser.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                        help="XLA CPU devices to shard over when no accelerator is used "
                        "(default: one per available core, unless XLA_FLAGS sets "
                        "--xla_force_host_platform_device_count)")
    args = parser.parse_args(argv)
    if args.cpu_devices is not None and args.cpu_devices < 1:
        parser.error(f"--cpu-devices must be a positive integer, got {args.cpu_devices}")
    try:
        if args.cpu_devices is not None or default_cpu_devices:
            _request_cpu_devices(args.cpu_devices or _available_cores(),
                                 explicit=args.cpu_devices is not None)
        cfg = load_config(args.config)
        if cfg.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        s = run_sweep(cfg, args.out, quiet=args.quiet)
    except (ValueError, OSError) as e:
        print(f"hambias sweep: error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(f"[sweep] {s.path}: {s.n_points} points in {s.n_chunks} chunks; ran {s.chunks_run}, "
              f"skipped {s.chunks_skipped} done; {s.n_diverged} diverged; {s.seconds:.1f} s on "
              f"{s.devices} device(s)",
              file=sys.stderr)
    return 0 if s.complete else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(sweep_main(default_cpu_devices=True))
