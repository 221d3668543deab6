"""A sweep's configuration: a TOML file validated by pydantic (strict types, no extra keys).

Tables and keys (defaults in parentheses)::

    name = "..."                ("")
    steps = 20000               iterations per run (required; < 2³¹)
    chunk_size = 0              points per chunk (0: as many as memory_mb allows)
    memory_mb = 512             device memory of one chunk, MiB
    dtype = "float64"           or "float32" (the problem is drawn in float64 and cast)
    prediction = "auto"         "auto": every point whose method knows its implicit bias
                                gets predict_limit; "none": no predictions
    batch_size = 0              0: full gradients; b > 0: each step of each point uses b
                                rows drawn without replacement (key: fold_in(fold_in(
                                key(seed), 2), point index), fold_in step k)

    [grid]                      axes (a scalar is a one-value axis)
    eta = [...]                 step sizes > 0 (required)
    dnk = [[d, n, k], ...]      generated problem shapes (required without [problem] file)
    alpha = [1.0]               any finite α
    init_scale = [0.0]          ≥ 0
    beta = [0.0]                ≥ 0
    seed = [0]                  integers ≥ 0
    method = ["hyp_star"]       registered method names (hambias.method_names())

    [problem]                   design = "gaussian" | "rademacher", noise = 0.0, or
                                file = "data.npz" (arrays A (d, n), y (d,), optional
                                x_star (n,); a path relative to the config file)
    [init]                      kind = "random" (x₀ = init_scale·z, z ~ N(0, I/n)) or
                                "constant" (x₀ = init_scale·1; a network method starts
                                from its network's own start)
    [model]                     kind, scale, shape, loss of hambias.diagonal_network, for
                                the method "mw_gd" (GD on that network)
    [record]                    x = true, loss_every = 0 (0: final loss only; else a
                                divisor of steps), conv_tol = 1e-6 (convergence time =
                                first step with f ≤ conv_tol·f(x₀))

A wrong type, an unknown key, a value out of range or a grid whose store would not fit
is a :class:`ConfigError` naming the file, the table and the key, before anything is
written.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["SweepConfig", "ConfigError", "load_config", "AXES", "MAX_STEPS"]

#: Grid axes in storage order (the last varies fastest along the flat point index).
AXES = ("dnk", "method", "seed", "alpha", "eta", "init_scale", "beta")
#: The engine counts steps in int32.
MAX_STEPS = 2**31 - 1
#: Bytes of device memory a point may use, as a multiple of its (d + n) floats, beyond the
#: design matrix: state, gradient, residual, step temporaries, outputs (measured allocation
#: of the jitted step is below 12 arrays of size n).
_ARRAYS_PER_POINT = 16


class ConfigError(ValueError):
    """A sweep config that cannot run; the message names the file, table and key."""


class _Table(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _finite(values, name):
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"needs finite numbers, got {v!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"has repeated values: {values!r}")
    if not values:
        raise ValueError(f"is empty: the grid would have no points ({name})")
    return values


class GridTable(_Table):
    eta: list[float]
    dnk: list[list[int]] | None = None
    alpha: list[float] = [1.0]
    init_scale: list[float] = [0.0]
    beta: list[float] = [0.0]
    seed: list[int] = [0]
    method: list[str] = ["hyp_star"]

    @field_validator("eta", "alpha", "init_scale", "beta", "seed", "method", mode="before")
    @classmethod
    def _wrap(cls, v):
        return _as_list(v)

    @field_validator("dnk", mode="before")
    @classmethod
    def _wrap_dnk(cls, v):
        v = _as_list(v)
        return [v] if v and not isinstance(v[0], list) else v

    @field_validator("eta")
    @classmethod
    def _eta(cls, v):
        v = _finite(v, "eta")
        if any(x <= 0 for x in v):
            raise ValueError(f"needs values > 0, got {v!r}")
        return v

    @field_validator("alpha")
    @classmethod
    def _alpha(cls, v):
        return _finite(v, "alpha")

    @field_validator("init_scale", "beta")
    @classmethod
    def _nonneg(cls, v):
        v = _finite(v, "axis")
        if any(x < 0 for x in v):
            raise ValueError(f"needs values >= 0, got {v!r}")
        return v

    @field_validator("seed")
    @classmethod
    def _seed(cls, v):
        if not v:
            raise ValueError("is empty: the grid would have no points")
        if any(s < 0 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"needs distinct integers >= 0, got {v!r}")
        return v

    @field_validator("method")
    @classmethod
    def _method(cls, v):
        from ..methods import method_names

        if not v:
            raise ValueError("is empty: the grid would have no points")
        for m in v:
            if m not in method_names():
                raise ValueError(f"unknown method {m!r}; registered: {list(method_names())}")
        if len(set(v)) != len(v):
            raise ValueError(f"has repeated values: {v!r}")
        return v

    @field_validator("dnk")
    @classmethod
    def _dnk(cls, v):
        if v is None:
            return v
        if not v:
            raise ValueError("is empty: the grid would have no points")
        for t in v:
            if len(t) != 3 or not (0 < t[0] < t[1] and 0 <= t[2] <= t[1]):
                raise ValueError(f"needs [d, n, k] integer triples with 0 < d < n and "
                                 f"0 <= k <= n, got {t!r}")
        if len({tuple(t) for t in v}) != len(v):
            raise ValueError(f"has repeated values: {v!r}")
        return v


class ProblemTable(_Table):
    design: Literal["gaussian", "rademacher"] = "gaussian"
    noise: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    file: str | None = None


class InitTable(_Table):
    kind: Literal["random", "constant"] = "random"


class ModelTable(_Table):
    kind: Literal["u2-v2", "uv", "pm_uv", "mw"]
    scale: float = Field(gt=0.0, allow_inf_nan=False)
    shape: float = Field(0.0, allow_inf_nan=False)
    loss: Literal["half_mean", "mean"] = "half_mean"


class RecordTable(_Table):
    x: bool = True
    loss_every: int = Field(0, ge=0)
    conv_tol: float = Field(1e-6, gt=0.0, lt=1.0)


class _Raw(_Table):
    steps: int = Field(ge=1, le=MAX_STEPS)
    name: str = ""
    chunk_size: int = Field(0, ge=0)
    memory_mb: float = Field(512.0, gt=0.0, allow_inf_nan=False)
    dtype: Literal["float64", "float32"] = "float64"
    prediction: Literal["auto", "none", "builtin", "predict_limit"] = "auto"
    batch_size: int = Field(0, ge=0)
    grid: GridTable
    problem: ProblemTable = ProblemTable()
    init: InitTable = InitTable()
    model: ModelTable | None = None
    record: RecordTable = RecordTable()


def _format(err: ValidationError, source: str) -> str:
    """One line per problem: "<file>: [table] key: what is wrong (got …)"."""
    lines = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"] if not isinstance(p, int)]
        where = (f"[{loc[0]}] {'.'.join(loc[1:])}" if len(loc) > 1 and loc[0] in (
            "grid", "problem", "init", "model", "record") else ".".join(loc)) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        got = e.get("input")
        shown = "" if e["type"] in ("missing",) or isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{source}: {where}: {msg}{shown}")
    return "\n".join(lines)


class SweepConfig:
    """A validated, immutable sweep configuration (see the module docstring for the TOML).

    Attributes:
        grid: axis name → tuple of values, for every axis in :data:`AXES` (``dnk`` holds
            (d, n, k) triples; with a data file one triple (d, n, k) of the file, k the
            number of nonzeros of its x_star or -1).
        steps, name, chunk_size, memory_mb, dtype, prediction, batch_size: as in the TOML.
        design, noise: generator options; ``data_file`` the resolved path of a data file
            (or None) and ``data_sha256`` its digest.
        init_kind: ``"random"`` or ``"constant"``.
        model: ``dict(kind, scale, shape, loss)`` or None.
        record_x, loss_every, conv_tol: what to record.
    """

    def __init__(self, raw: _Raw, *, base: Path | None = None, source: str = "config"):
        self._raw = raw
        g = raw.grid
        self.steps, self.name = raw.steps, raw.name
        self.chunk_size, self.memory_mb = raw.chunk_size, float(raw.memory_mb)
        self.dtype = raw.dtype
        self.batch_size = raw.batch_size
        self.prediction = "none" if raw.prediction == "none" else "auto"
        self.design, self.noise = raw.problem.design, float(raw.problem.noise)
        self.init_kind = raw.init.kind
        self.model = None if raw.model is None else raw.model.model_dump()
        self.record_x, self.loss_every = raw.record.x, raw.record.loss_every
        self.conv_tol = float(raw.record.conv_tol)
        self.data_file, self.data_sha256 = None, None
        if raw.problem.file is not None:
            if g.dnk is not None:
                raise ConfigError(f"{source}: [grid] dnk: a [problem] file fixes the problem; "
                                  f"remove dnk")
            path = Path(raw.problem.file)
            if not path.is_absolute() and base is not None:
                path = base / path
            self.data_file = str(path.resolve())
            dnk = [_data_shape(path, source)]
            self.data_sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        elif g.dnk is None:
            raise ConfigError(f"{source}: [grid] dnk: required (or a [problem] file)")
        else:
            dnk = [tuple(t) for t in g.dnk]
        if "mw_gd" in g.method and self.model is None:
            raise ConfigError(f"{source}: [grid] method: 'mw_gd' needs a [model] table "
                              f"(kind, scale, shape, loss)")
        if self.model is not None:
            from ..networks import diagonal_network

            try:
                diagonal_network(**self.model)
            except ValueError as err:
                raise ConfigError(f"{source}: [model]: {err}") from None
        self.grid = {"dnk": tuple(dnk), "method": tuple(g.method), "seed": tuple(g.seed),
                     "alpha": tuple(g.alpha), "eta": tuple(g.eta),
                     "init_scale": tuple(g.init_scale), "beta": tuple(g.beta)}
        if self.batch_size > min(t[0] for t in dnk):
            raise ConfigError(f"{source}: batch_size: {self.batch_size} is more rows than the "
                              f"smallest problem has (d = {min(t[0] for t in dnk)})")
        every = self.loss_every
        if every and self.steps % every:
            raise ConfigError(f"{source}: [record] loss_every: must be 0 or a divisor of steps "
                              f"= {self.steps} (got {every})")
        need, budget = self.point_bytes() * self.resolved_chunk_size(), self.memory_mb * 2**20
        if self.point_bytes() > budget:
            raise ConfigError(f"{source}: memory_mb: one point needs "
                              f"{self.point_bytes() / 2**20:.1f} MiB, more than memory_mb = "
                              f"{self.memory_mb:g}")
        if need > budget:
            raise ConfigError(
                f"{source}: chunk_size: {self.chunk_size} points need {need / 2**20:.1f} MiB "
                f"of device memory but memory_mb = {self.memory_mb:g}; lower chunk_size (or "
                f"set 0 for automatic chunking: at most {int(budget // self.point_bytes())} "
                f"points fit)")

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_dict(cls, raw: dict, *, base: str | os.PathLike | None = None,
                  source: str = "config") -> SweepConfig:
        """Validate a parsed TOML table; raise :class:`ConfigError` naming what is wrong."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: a sweep config must be a table, got "
                              f"{type(raw).__name__}")
        try:
            parsed = _Raw(**raw)
        except ValidationError as err:
            raise ConfigError(_format(err, source)) from None
        return cls(parsed, base=None if base is None else Path(base), source=source)

    # -- derived ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """Grid shape in :data:`AXES` order."""
        return tuple(len(self.grid[a]) for a in AXES)

    @property
    def n_points(self) -> int:
        """Number of grid points (runs)."""
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def n_max(self) -> int:
        """Largest dimension n of the grid (stored iterates are padded to it)."""
        return max(t[1] for t in self.grid["dnk"])

    @property
    def itemsize(self) -> int:
        return 8 if self.dtype == "float64" else 4

    @property
    def n_records(self) -> int:
        """Loss-history records per point."""
        return self.steps // self.loss_every if self.loss_every else 0

    def point_bytes(self) -> int:
        """Device bytes one point of a chunk needs (worst case: its own design matrix)."""
        d, n = max(t[0] for t in self.grid["dnk"]), self.n_max
        per_point_a = d * n if len(self.grid["seed"]) > 1 or len(self.grid["dnk"]) > 1 else 0
        return self.itemsize * (_ARRAYS_PER_POINT * (d + n) + per_point_a + self.n_records)

    def store_bytes(self) -> int:
        """Bytes the stored results need (uncompressed upper bound): per point the scalars,
        the coordinates, the iterates and the loss history."""
        per = 80 + 9 * 8 + self.n_records * self.itemsize
        if self.record_x:
            per += 2 * self.n_max * self.itemsize
        return per * self.n_points

    def resolved_chunk_size(self) -> int:
        """Points per chunk: ``chunk_size`` or the most that fit in ``memory_mb``."""
        fit = int(self.memory_mb * 2**20) // self.point_bytes()
        if self.chunk_size:
            return min(self.chunk_size, self.n_points)
        return max(1, min(fit, self.n_points))

    def canonical(self) -> dict:
        """The config as a plain dict with every default filled in (what is hashed)."""
        d = self._raw.model_dump()
        d["grid"] = {a: [list(v) if isinstance(v, tuple) else v for v in self.grid[a]]
                     for a in AXES}
        d["prediction"] = self.prediction
        d["problem"]["file"] = self.data_file
        d["problem"]["sha256"] = self.data_sha256
        return d

    @property
    def digest(self) -> str:
        """SHA-256 of the canonical JSON form of the config."""
        text = json.dumps(self.canonical(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def __repr__(self) -> str:
        return f"SweepConfig(name={self.name!r}, shape={self.shape}, steps={self.steps})"


def _data_shape(path: Path, source: str) -> tuple[int, int, int]:
    """(d, n, k) of a data file, checked: arrays A (d, n) and y (d,), optional x_star (n,)."""
    try:
        with np.load(path) as f:
            names = set(f.files)
            if not {"A", "y"} <= names:
                raise ConfigError(f"{source}: [problem] file: {path} needs arrays 'A' and 'y', "
                                  f"has {sorted(names)}")
            A, y = f["A"], f["y"]
            xs = f["x_star"] if "x_star" in names else None
    except (OSError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{source}: [problem] file: cannot read {path}: {err}") from None
    if A.ndim != 2 or y.shape != (A.shape[0],) or (xs is not None and xs.shape != (A.shape[1],)):
        raise ConfigError(f"{source}: [problem] file: {path}: need A (d, n), y (d,), x_star (n,); "
                          f"got {A.shape}, {y.shape}, {None if xs is None else xs.shape}")
    if not (np.all(np.isfinite(A)) and np.all(np.isfinite(y))):
        raise ConfigError(f"{source}: [problem] file: {path}: A and y must be finite")
    d, n = A.shape
    if not 0 < d < n:
        raise ConfigError(f"{source}: [problem] file: {path}: need d < n, got A of shape {A.shape}")
    k = int(np.count_nonzero(xs)) if xs is not None else -1
    return (d, n, k)


def load_config(path: str | os.PathLike) -> SweepConfig:
    """Read and validate a sweep config from a TOML file (see the module docstring).

    Raises:
        ConfigError: (a ValueError) the file is not TOML, or a key is unknown, of the wrong
            type or out of range; the message names the file, the table and the key.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from e
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config ({e.strerror})") from None
    return SweepConfig.from_dict(raw, base=path.parent, source=str(path))
