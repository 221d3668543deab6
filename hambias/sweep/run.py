"""``run_sweep``: every chunk of points batched, sharded, stored, resumable.

The grid is a flat list of points cut into chunks sized to a memory budget.  Each chunk
is run as homogeneous batches (one method, one problem shape) by the engine
(:mod:`hambias.sweep.engine`), its predictions are solved once per unique (problem,
geometry, x₀, β) with :func:`hambias.predict_limit`, and its arrays are written to the
store followed by an atomic done marker (:mod:`hambias.sweep.store`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from ..methods import make_method, method_factory
from ..predict import predict_limit
from ..problems import LinearRegression
from ..status import Status
from .config import AXES, SweepConfig, load_config
from .data import ByteCache, draw
from .engine import batch_methods, batch_states, run_batch
from .store import (
    SCALARS,
    atomic_write,
    chunk_damage,
    marker,
    point_indices,
    prepare_store,
    stored_arrays,
    test_stop,
    writer_lock,
)

__all__ = ["SweepSummary", "run_sweep"]

#: Divergence threshold on max|θ| in sweeps (as in run_iterates).
SWEEP_BLOWUP = 1e12


@dataclasses.dataclass(frozen=True)
class SweepSummary:
    """What :func:`run_sweep` did.

    Attributes:
        path: the store.
        n_points, n_chunks: grid size and chunks in the store.
        chunks_run, chunks_skipped: chunks computed now / found done from an earlier run.
        n_diverged: diverged points in this process's chunks (done before or now).
        seconds: wall time of this call.
        complete: all chunks are done.
        devices: the devices this process could shard over, e.g. ``"2 × cpu"`` (on
            CPUs a batch of at most one cache block runs on one of them).
        chunks_repaired: done chunks found damaged or missing and recomputed now.
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
    chunks_repaired: int = 0


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


def _model(cfg):
    """The [model] table as a hashable tuple (for the engine's compile cache) and as a network."""
    if cfg.model is None:
        return None, None
    from ..networks import diagonal_network

    return tuple(sorted(cfg.model.items())), diagonal_network(**cfg.model)


def _problem_key(cfg, dnk_i, seed):
    """Points with equal keys share one problem (a data file: every seed)."""
    return (dnk_i, None) if cfg.data_file is not None else (dnk_i, seed)


def _start(cfg, method, scale, z):
    """x₀ of one point: init_scale·z, or (constant) the method's own start or init_scale·1."""
    if cfg.init_kind == "random":
        return scale * z
    own = method.own_start(z.shape[0])
    return np.asarray(own, dtype=z.dtype) if own is not None else np.full_like(z, scale)


@dataclasses.dataclass(frozen=True)
class _Pred:
    x: np.ndarray | None
    status: Status

    @property
    def nbytes(self) -> int:
        return 0 if self.x is None else self.x.nbytes


def _prediction_job(method, x0):
    """(key, geometry, β, x₀) of a point's prediction, or None (the method knows no bias)."""
    state0 = method.init(x0)
    bias = method.implicit_bias(state0)
    if bias is None:
        return None
    geometry, beta = bias
    beta = float(beta)
    x0p = np.asarray(method.params(state0), dtype=np.float64)
    leaves = tuple(np.asarray(v, dtype=np.float64).tobytes()
                   for v in jax.tree_util.tree_leaves(geometry))
    key = (type(geometry).__name__, leaves, beta, None if beta > 0 else x0p.tobytes())
    return key, geometry, beta, x0p


def _solve(geometry, beta, x0, problem64) -> _Pred:
    try:
        pred = predict_limit(geometry, problem64, x0, beta=beta, solver="newton", throw=False)
    except ValueError:  # e.g. no interpolant inside a negative α's box: the flow has no limit
        return _Pred(None, Status.NO_STEADY_STATE)
    return _Pred(np.asarray(pred.x), pred.status)


def minibatch_keys(seeds, points) -> np.ndarray:
    """Raw key data of each point's mini-batches: fold_in(fold_in(key(seed), 2), point),
    so ``run_iterates(..., batch_size=b, key=wrap_key_data(row))`` draws the same rows."""
    def one(seed, point):
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), 2), point)
        return jax.random.key_data(key)

    return np.asarray(jax.vmap(one)(jnp.asarray(seeds, jnp.uint32),
                                    jnp.asarray(points, jnp.uint32)))


def _compute_chunk(cfg: SweepConfig, lo: int, hi: int, mesh, caches: dict) -> dict:
    """All stored arrays of points lo..hi-1."""
    m, nmax = hi - lo, cfg.n_max
    dt = np.dtype(cfg.dtype)
    res = {name: np.full(m, fill, dtype=np.dtype(cfg.dtype) if kind == "float" else kind)
           for name, (kind, fill, _) in SCALARS.items()}
    res["x"] = np.full((m, nmax), np.nan, dt)
    res["x_pred"] = np.full((m, nmax), np.nan, dt)
    res["loss_history"] = np.full((m, cfg.n_records), np.nan, dt)
    g = cfg.grid
    tab = point_indices(cfg, lo, hi)
    val = {a: [g[a][i] for i in tab[a]] for a in AXES}
    model_key, network = _model(cfg)
    problems, preds = caches["problems"], caches["predictions"]
    get = lambda dnk_i, seed: problems.get((cfg.data_file, _problem_key(cfg, dnk_i, seed), seed),
                                           lambda: draw(cfg, dnk_i, seed))
    groups: dict = {}
    for j in range(m):
        groups.setdefault((tab["dnk"][j], val["method"][j]), []).append(j)
    for (dnk_i, name), js in groups.items():
        js = np.asarray(js)
        d, n, _ = g["dnk"][dnk_i]
        seeds = [val["seed"][j] for j in js]
        draws = {s: get(dnk_i, s) for s in dict.fromkeys(seeds)}
        X0 = np.empty((js.size, n), dt)
        xp = np.full((js.size, n), np.nan)
        pstat = np.full(js.size, int(Status.NOT_COMPUTED), np.int8)
        for i, j in enumerate(js):  # x₀ and the prediction of each point, on the host
            dr = draws[seeds[i]]
            method = make_method(name, eta=val["eta"][j], alpha=val["alpha"][j],
                                 beta=val["beta"][j], model=network)
            X0[i] = _start(cfg, method, val["init_scale"][j], dr.z)
            job = None if cfg.prediction == "none" else _prediction_job(
                method, X0[i].astype(np.float64))
            if job is None:
                continue
            key, geometry, beta, x0p = job
            problem64 = lambda dr=dr: LinearRegression(dr.A.astype(np.float64),
                                                       dr.y.astype(np.float64))
            pred = preds.get((_problem_key(cfg, dnk_i, seeds[i]),) + key,
                             lambda: _solve(geometry, beta, x0p, problem64()))
            pstat[i] = pred.status
            if pred.x is not None:
                xp[i] = pred.x
        keys = {_problem_key(cfg, dnk_i, s) for s in seeds}
        if len(keys) == 1:
            A, y = draws[seeds[0]].A, draws[seeds[0]].y
        else:
            A = np.stack([draws[s].A for s in seeds])
            y = np.stack([draws[s].y for s in seeds])
        arr = lambda axis: np.array([val[axis][j] for j in js], dt)
        methods = batch_methods(method_factory(name), model_key, arr("eta"), arr("alpha"),
                                arr("beta"))
        keys = minibatch_keys(seeds, lo + js) if cfg.batch_size else None
        X, loss0, loss, conv, status, div, hist = run_batch(
            methods, batch_states(methods, X0), A, y, keys=keys, batch_size=cfg.batch_size,
            steps=cfg.steps, loss_every=cfg.loss_every, conv_tol=cfg.conv_tol,
            blowup=SWEEP_BLOWUP, mesh=mesh)
        bad = status != Status.SUCCESS
        X = np.where(bad[:, None], np.nan, X)
        x_star = np.stack([draws[s].x_star for s in seeds])
        res["loss0"][js] = loss0
        res["loss"][js] = np.where(bad, np.nan, loss)
        res["recovery_error"][js] = _relative_distance(X, x_star)
        res["prediction_error"][js] = _relative_distance(X, xp)
        res["conv_step"][js] = conv
        res["status"][js] = status
        res["diverged"][js] = bad
        res["divergence_step"][js] = div
        res["lam_max"][js] = [draws[s].lam_max for s in seeds]
        res["theta_max"][js] = np.max(np.abs(xp), axis=1)
        res["prediction_status"][js] = pstat
        res["x"][js, :n] = X
        res["x_pred"][js, :n] = xp
        res["loss_history"][js] = hist
    return res


def run_sweep(config: SweepConfig | str | os.PathLike, out: str | os.PathLike, *,
              quiet: bool = False, devices=None) -> SweepSummary:
    """Run (or resume) a sweep and store it at ``out``.

    Every chunk of points is run as batched scans sharded over ``devices``, written to
    ``out/data.zarr`` and then marked done by an atomic marker file in ``out/done``; a
    second call with the same config skips the done chunks (so a killed sweep resumes and
    ends with the bits of an uninterrupted run).  Points whose run diverged are recorded
    (``status``, ``diverged``, ``divergence_step``, NaN iterate) and do not stop the sweep.
    Every method of :func:`hambias.method_names` can be swept; each point's prediction is
    :func:`hambias.predict_limit` of its method's ``implicit_bias`` (for GD + HYP(*)
    HAMGeometry(α) with β, for GD Euclidean, for mirror descent its geometry, for a
    network's GD its PointwiseProduct; none for the exponential step).

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
    _check_disk(cfg, out)
    multi = jax.process_count() > 1
    if multi:
        from jax.experimental import multihost_utils

        if jax.process_index() == 0:
            prepare_store(cfg, out)
        multihost_utils.sync_global_devices("hambias-sweep-init")
    meta = prepare_store(cfg, out)
    chunk, n_chunks = meta["chunk_size"], meta["n_chunks"]
    devices = list(jax.local_devices() if devices is None else devices)
    mesh = Mesh(np.asarray(devices), ("batch",))
    mine = [c for c in range(n_chunks) if c % jax.process_count() == jax.process_index()]
    import zarr

    names = stored_arrays(cfg)
    pts_of = lambda c: min(cfg.n_points, (c + 1) * chunk) - c * chunk
    with writer_lock(out, jax.process_index()):
        g = zarr.open_group(str(out / "data.zarr"), mode="r+")
        done, damaged = [], []
        for c in mine:  # a done chunk counts only if every array of it reads back intact
            if marker(out, c).exists():
                why = chunk_damage(g, out / "data.zarr", names, c)
                if why is None:
                    done.append(c)
                else:
                    damaged.append(why)
                    marker(out, c).unlink()
        todo = [c for c in mine if c not in set(done)]
        if damaged and not quiet:
            print(f"[sweep] {out}: {len(damaged)} damaged chunk(s) will be recomputed: "
                  + "; ".join(damaged[:3]) + (" …" if len(damaged) > 3 else ""),
                  file=sys.stderr)
        progress = _Progress(sum(pts_of(c) for c in mine),
                             enabled=not quiet and sys.stderr.isatty())
        if done and not quiet:
            print(f"[sweep] resuming {out}: {len(done)} of {len(mine)} chunks already done",
                  file=sys.stderr)
        npts = sum(pts_of(c) for c in done)
        progress.update(npts)
        caches = {"problems": ByteCache(), "predictions": ByteCache()}
        for i, c in enumerate(todo):
            lo, hi = c * chunk, min(cfg.n_points, (c + 1) * chunk)
            res = _compute_chunk(cfg, lo, hi, mesh, caches)
            # every chunk gets its file, also one equal to the fill value (zarr skips those
            # by default, and a missing file is how a lost chunk is recognised)
            with zarr.config.set({"array.write_empty_chunks": True}):
                for name in names:
                    g[name][lo:hi] = res[name]
            atomic_write(marker(out, c), "")
            if i == 0:
                test_stop("chunk")
            npts += hi - lo
            progress.update(npts)
        n_div = sum(int(np.sum(g["diverged"][c * chunk:(c + 1) * chunk])) for c in mine)
    if multi:
        multihost_utils.sync_global_devices("hambias-sweep-done")
    complete = all(marker(out, c).exists() for c in range(n_chunks))
    return SweepSummary(str(out), cfg.n_points, n_chunks, len(todo), len(done), n_div,
                        time.monotonic() - t_start, complete,
                        f"{len(devices)} × {devices[0].platform}", len(damaged))


def _check_disk(cfg: SweepConfig, out: Path) -> None:
    """Refuse a grid whose store cannot fit on the disk, before anything is written."""
    import shutil

    probe = out
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    need = cfg.store_bytes()
    if not (out / "meta.json").exists() and need > free:
        raise ValueError(
            f"the sweep's store would need about {need / 2**30:.3g} GiB ({cfg.n_points} "
            f"points) but {probe} has {free / 2**30:.3g} GiB free; shrink the grid or "
            f"record less (record.x = false)")
