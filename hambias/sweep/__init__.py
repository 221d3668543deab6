"""Sweeps at scale: grids of runs of any registered method, batched and sharded, stored in
zarr, resumable.

A sweep is a TOML config (:mod:`hambias.sweep.config`) naming grid axes (α, η, initial
scale, β, (d, n, k) or a data file, seed, method), the number of steps and what to record.
:func:`run_sweep` enumerates the grid as a flat list of points, cuts it into chunks sized
to a memory budget, runs every chunk as batched ``lax.scan`` s of the methods' own
``update`` (:mod:`hambias.sweep.engine`), sharded over all visible devices, and writes
each chunk into a zarr store (:mod:`hambias.sweep.store`) followed by an atomic "done"
marker.  A killed sweep started again with the same command skips the done chunks and
ends with the same bits as an uninterrupted run; a different config on the same path is
refused.  :func:`open_sweep` reads the store back as an :class:`xarray.Dataset`,
:func:`phase_table` and :func:`stability_boundary` give the data of phase diagrams
(docs/theory/implicit-bias.md#implicit-bias, docs/theory/l2-l1.md#l2-l1,
docs/theory/stability.md#stability).

Conventions of a point (all seeded, no global state): the problem is
``sparse_regression(fold_in(key(seed), 0), d, n, k, design, noise)`` drawn in float64
(or the data file's); x₀ = init_scale·z with z ~ N(0, I/n) from ``fold_in(key(seed),
1)`` (``[init] kind = "random"``) or init_scale·1 / the method's own start
(``"constant"``); the method is ``hambias.make_method(name, eta=η, alpha=α, beta=β,
model=...)``; the prediction is ``predict_limit`` of the method's implicit bias.
"""

from .config import AXES, ConfigError, SweepConfig, load_config
from .phase import PhaseTable, phase_table, stability_boundary
from .run import SweepSummary, run_sweep
from .store import open_sweep

__all__ = [
    "AXES",
    "ConfigError",
    "PhaseTable",
    "SweepConfig",
    "SweepSummary",
    "load_config",
    "open_sweep",
    "phase_table",
    "run_sweep",
    "stability_boundary",
]
