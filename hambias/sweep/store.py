"""The zarr store of a sweep: its layout, creation, locking, integrity and reading back.

Layout of ``out/``: ``meta.json`` (the canonical config, its digest, the chunking),
``data.zarr`` (one zarr chunk per sweep chunk for every per-point array, each stored with
a CRC-32C checksum after its compression) and ``done/chunk_NNNNNNN`` (a marker written
atomically after the chunk's arrays).

What makes a store trustworthy:

* **Creation is atomic.**  A new store is built in a sibling temporary folder and moved
  into place with one ``rename``; a second process that finds the place taken uses the
  store that is there (if its config matches) and never re-creates it over written chunks.
* **One writer per process index.**  A writer holds an exclusive ``flock`` on
  ``out/.lock.<process index>`` for its whole run; a second writer on the same store is
  refused with a message naming the holder.  (Several hosts of one ``jax.distributed`` run
  have different process indices and share the store by design.)  The operating system
  releases the lock when a process dies, even by ``kill -9``.
* **Every chunk is verified.**  A done chunk counts as done only if each of its arrays'
  chunk files exists and decodes with a matching checksum: on resume a missing or damaged
  chunk is recomputed, and :func:`open_sweep` raises an error naming the array and chunk
  instead of returning fill values.

Test hook (for tests of concurrency, documented so that they need not patch the
package): with ``HAMBIAS_SWEEP_TEST_STOP=create`` a writer stops itself (SIGSTOP) right
before it moves a newly built store into place; with ``HAMBIAS_SWEEP_TEST_STOP=chunk``
right after it has written its first chunk.  A test resumes it with SIGCONT.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

import numpy as np

from ..status import Status
from .config import AXES, SweepConfig

__all__ = ["SCALARS", "COORDS", "open_sweep", "point_indices", "prepare_store", "marker",
           "atomic_write", "writer_lock", "chunk_damage", "stored_arrays", "test_stop"]

#: Environment variable of the test hook (see the module docstring).
TEST_STOP_ENV = "HAMBIAS_SWEEP_TEST_STOP"

SCALARS = {  # name → (dtype, fill, description)
    "loss0": ("float", np.nan, "f(x_0)"),
    "loss": ("float", np.nan, "f(x_T) at the last step (NaN if diverged)"),
    "recovery_error": ("float", np.nan, "‖x_T − x*‖/‖x*‖ (absolute when x* = 0)"),
    "prediction_error": ("float", np.nan, "‖x_T − x_pred‖/‖x_pred‖ (absolute when x_pred = 0)"),
    "conv_step": ("int32", -1, "first step k with f(x_k) ≤ conv_tol·f(x_0); -1: never"),
    "status": ("int8", int(Status.NOT_COMPUTED), "hambias.Status code of the run"),
    "diverged": ("bool", False, "the run diverged (its status is a divergence)"),
    "divergence_step": ("int32", -1, "the first rejected step; -1: none"),
    "lam_max": ("float", np.nan, "λ_max(AᵀA/d) of the point's problem"),
    "theta_max": ("float", np.nan, "max_i |x_pred,i| (for the stability boundary)"),
    "prediction_status": ("int8", int(Status.NOT_COMPUTED),
                          "hambias.Status code of the prediction (NOT_COMPUTED: none)"),
}
COORDS = ("alpha", "eta", "init_scale", "beta", "seed", "method", "d", "n", "k")


def point_indices(cfg: SweepConfig, lo: int, hi: int) -> dict:
    """Per-axis indices of the points lo … hi−1 (flat order :data:`AXES`, last fastest)."""
    idx = np.unravel_index(np.arange(lo, hi, dtype=np.int64), cfg.shape)
    return dict(zip(AXES, idx, strict=True))


def _np_dtype(kind, cfg):
    return np.dtype(cfg.dtype) if kind == "float" else np.dtype(kind)


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, fsync and rename."""
    tmp = path.with_name("." + path.name + ".tmp")  # never matches a marker name
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def marker(out: Path, c: int) -> Path:
    """The done marker of chunk ``c``."""
    return out / "done" / f"chunk_{c:07d}"


def _coords(cfg: SweepConfig, lo: int, hi: int) -> dict:
    tab = point_indices(cfg, lo, hi)
    g = cfg.grid
    out = {
        "alpha": np.asarray(g["alpha"])[tab["alpha"]],
        "eta": np.asarray(g["eta"])[tab["eta"]],
        "init_scale": np.asarray(g["init_scale"])[tab["init_scale"]],
        "beta": np.asarray(g["beta"])[tab["beta"]],
        "seed": np.asarray(g["seed"], dtype=np.int64)[tab["seed"]],
        "method": tab["method"].astype(np.int8),
    }
    for j, c in enumerate("dnk"):
        out[c] = np.asarray([t[j] for t in g["dnk"]], dtype=np.int64)[tab["dnk"]]
    return out


def test_stop(point: str) -> None:
    """The documented test hook: stop this process (SIGSTOP) at ``point`` if asked."""
    if os.environ.get(TEST_STOP_ENV) == point:
        os.kill(os.getpid(), signal.SIGSTOP)


def _codecs():
    """zstd, then a CRC-32C of the compressed bytes (verified by every read)."""
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [ZstdCodec(), Crc32cCodec()]


def stored_arrays(cfg: SweepConfig) -> list[str]:
    """The per-point arrays a sweep writes for each chunk."""
    return list(SCALARS) + (["x", "x_pred"] if cfg.record_x else []) + (
        ["loss_history"] if cfg.loss_every else [])


def _init_store(cfg: SweepConfig, out: Path, chunk: int) -> None:
    import zarr

    from .. import __version__

    out.mkdir(parents=True, exist_ok=True)
    (out / "done").mkdir(exist_ok=True)
    N, nmax = cfg.n_points, cfg.n_max
    g = zarr.open_group(str(out / "data.zarr"), mode="w")
    new = lambda name, **kw: g.create_array(name, compressors=_codecs(), **kw)
    for name, (kind, fill, desc) in SCALARS.items():
        a = new(name, shape=(N,), chunks=(chunk,), dtype=_np_dtype(kind, cfg), fill_value=fill,
                dimension_names=["point"])
        a.attrs["description"] = desc
    if cfg.record_x:
        for name in ("x", "x_pred"):
            new(name, shape=(N, nmax), chunks=(chunk, nmax), dtype=cfg.dtype, fill_value=np.nan,
                dimension_names=["point", "coord"])
    if cfg.loss_every:
        nrec = cfg.n_records
        new("loss_history", shape=(N, nrec), chunks=(chunk, nrec), dtype=cfg.dtype,
            fill_value=np.nan, dimension_names=["point", "record"])
        rec = new("record", shape=(nrec,), dtype="int64", dimension_names=["record"])
        rec[:] = np.arange(1, nrec + 1) * cfg.loss_every
    first = _coords(cfg, 0, min(N, chunk))
    arrays = {name: new(name, shape=(N,), chunks=(chunk,), dtype=v.dtype,
                        dimension_names=["point"]) for name, v in first.items()}
    for lo in range(0, N, chunk):  # chunk by chunk: never the whole point table in memory
        hi = min(N, lo + chunk)
        with zarr.config.set({"array.write_empty_chunks": True}):
            for name, v in (first if lo == 0 else _coords(cfg, lo, hi)).items():
                arrays[name][lo:hi] = v
    g["method"].attrs["labels"] = list(cfg.grid["method"])
    g["status"].attrs["labels"] = [s.name for s in Status]
    g["prediction_status"].attrs["labels"] = [s.name for s in Status]
    meta = {"config": cfg.canonical(), "digest": cfg.digest, "version": __version__,
            "chunk_size": chunk, "n_points": N, "n_chunks": -(-N // chunk)}
    g.attrs.update({"sweep_digest": cfg.digest, "hambias_version": __version__,
                    "config_json": json.dumps(cfg.canonical(), sort_keys=True)})
    atomic_write(out / "meta.json", json.dumps(meta, indent=1, sort_keys=True))


def _check_meta(cfg: SweepConfig, out: Path) -> dict:
    meta = json.loads((out / "meta.json").read_text())
    if meta["digest"] != cfg.digest:
        old = meta["config"]
        new = cfg.canonical()
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise ValueError(
            f"{out} holds a sweep with a different config (differs in {diff}; stored digest "
            f"{meta['digest'][:12]}, this config {cfg.digest[:12]}); refusing to mix results. "
            f"Use another --out path or delete {out}.")
    return meta


def prepare_store(cfg: SweepConfig, out: Path) -> dict:
    """Create the store atomically, or check that an existing one belongs to this config.

    A new store is built in a temporary sibling folder and renamed into place; if another
    process got there first, its store is used (after the config check) and nothing is
    re-created.

    Raises:
        ValueError: a different config at ``out``, or ``out`` holding something else.
    """
    if (out / "meta.json").exists():
        return _check_meta(cfg, out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not a hambias sweep (no meta.json); refusing to "
                         f"write into it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        _init_store(cfg, tmp, cfg.resolved_chunk_size())
        test_stop("create")
        try:
            os.rename(tmp, out)  # atomic; replaces only a missing or empty folder
        except OSError as err:
            if err.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not (out / "meta.json").exists():
        raise ValueError(f"{out} appeared while this store was built and is not a hambias "
                         f"sweep; refusing to write into it")
    return _check_meta(cfg, out)


class writer_lock:  # noqa: N801 - used as a context manager
    """Exclusive lock of one writer (per process index) on a store, held while running.

    Raises (on entering):
        ValueError: another process holds it; the message names its pid and host.
    """

    def __init__(self, out: Path, index: int = 0):
        self.path = out / f".lock.{index}"
        self.fd = None

    def __enter__(self):
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(self.fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(self.fd)
            self.fd = None
            raise ValueError(
                f"another process is writing to the sweep at {self.path.parent} ({holder}); "
                f"wait for it to finish (then the same command completes what is left) or use "
                f"another --out") from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
        return self

    def __exit__(self, *exc):
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None


def _chunk_file(root: Path, name: str, c: int, ndim: int) -> Path:
    """The file of chunk ``c`` of array ``name`` (zarr v3 default key encoding)."""
    return root / name / "c" / str(c) / Path(*["0"] * (ndim - 1)) if ndim > 1 else \
        root / name / "c" / str(c)


def chunk_damage(group, root: Path, names, c: int) -> str | None:
    """Why chunk ``c`` cannot be read back (missing file, failed checksum), or None.

    Every array's chunk file must exist (zarr reads a missing chunk as fill values) and
    decode, which verifies its CRC-32C.
    """
    for name in names:
        a = group[name]
        if not _chunk_file(root, name, c, a.ndim).exists():
            return f"array {name!r}, chunk {c}: its file is missing"
        lo = c * a.chunks[0]
        try:
            a[lo:min(a.shape[0], lo + a.chunks[0])]
        except Exception as err:  # noqa: BLE001 - zarr's checksum and codec errors
            return f"array {name!r}, chunk {c}: {type(err).__name__}: {err}"
    return None


def open_sweep(path: str | os.PathLike, *, gridded: bool = True, complete: bool = True,
               lazy: bool = False, verify: bool = True):
    """Open a stored sweep as an :class:`xarray.Dataset`.

    Every done chunk is verified first (its files exist and their checksums match),
    one chunk at a time, so a damaged store raises instead of being read as results.

    Args:
        path: the ``--out`` directory of a sweep.
        gridded: unstack the flat ``point`` dimension into the grid dimensions
            ``(method, size, seed, alpha, eta, init_scale, beta)`` (``size`` is "dxnxk",
            with coordinates d, n, k along it); ``False`` keeps ``point``.
        complete: raise if some chunks are not done; ``False`` returns only the points of
            done chunks (flat: those points; gridded: NaN, and floats for the integer
            variables, where a point was not computed).
        lazy: do not load the arrays: they are read when used, so a store larger than
            memory can be opened and reduced (:func:`hambias.sweep.phase_table` reads a
            lazy dataset chunk by chunk).  Needs ``gridded=False``.
        verify: check every done chunk's files and checksums (default True).

    Returns:
        The dataset, with the config (``config_json``), its digest and the hambias
        version in ``attrs``.  ``status`` and ``prediction_status`` hold
        :class:`~hambias.Status` codes.

    Raises:
        ValueError: ``path`` is not a sweep; it is incomplete and ``complete`` is set; a
            done chunk is missing or damaged (the message names the array and chunk).
    """
    import xarray as xr
    import zarr

    path = Path(path)
    if lazy and gridded:
        raise ValueError("open_sweep(lazy=True) returns the flat dataset: pass gridded=False")
    if not (path / "meta.json").exists():
        raise ValueError(f"{path} is not a hambias sweep (no meta.json)")
    meta = json.loads((path / "meta.json").read_text())
    chunk, n_chunks = meta["chunk_size"], meta["n_chunks"]
    done = [c for c in range(n_chunks) if marker(path, c).exists()]
    if complete and len(done) < n_chunks:
        raise ValueError(f"{path} is incomplete ({len(done)} of {n_chunks} chunks done); "
                         f"resume it with the same command or pass complete=False")
    root = path / "data.zarr"
    if verify:
        g = zarr.open_group(str(root), mode="r")
        names = [n for n in g.array_keys() if g[n].ndim and g[n].shape[0] == meta["n_points"]
                 and n not in COORDS]
        for c in done:
            why = chunk_damage(g, root, names, c)
            if why is not None:
                raise ValueError(f"{path}: the stored sweep is damaged: {why}; resume it with "
                                 f"the same command to recompute that chunk")
    ds = xr.open_zarr(root, chunks=None, consolidated=False)
    if len(done) < n_chunks:
        keep = np.concatenate([np.arange(c * chunk, min(meta["n_points"], (c + 1) * chunk))
                               for c in done]) if done else np.zeros(0, int)
        ds = ds.isel(point=keep)
    if not lazy:
        ds = ds.load()
    labels = np.asarray(ds["method"].attrs.get("labels"))
    ds = ds.assign(method=("point", labels[np.asarray(ds["method"].values)]))
    size = np.char.add(np.char.add(np.char.add(ds["d"].values.astype(str), "x"),
                                   np.char.add(ds["n"].values.astype(str), "x")),
                       ds["k"].values.astype(str))
    coords = {c: ds[c] for c in COORDS}
    ds = ds.drop_vars(list(COORDS)).assign_coords(coords).assign_coords(size=("point", size))
    if not gridded:
        return ds
    dims = ["method", "size", "seed", "alpha", "eta", "init_scale", "beta"]
    dnk = ds[["d", "n", "k"]].to_dataframe().groupby(ds["size"].values).first()
    order = {c: list(dict.fromkeys(ds[c].values.tolist())) for c in dims}
    ds = ds.drop_vars(["d", "n", "k"]).set_index(point=dims).unstack("point")
    ds = ds.reindex(order).transpose(*dims, ...)
    return ds.assign_coords({c: ("size", dnk.loc[ds["size"].values, c].to_numpy()) for c in "dnk"})
