"""The zarr store of a sweep: its layout, creation, resume markers and reading back.

Layout of ``out/``: ``meta.json`` (the canonical config, its digest, the chunking),
``data.zarr`` (one zarr chunk per sweep chunk for every per-point array) and
``done/chunk_NNNNNNN`` (a marker written atomically after the chunk's arrays).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..status import Status
from .config import AXES, SweepConfig

__all__ = ["SCALARS", "COORDS", "open_sweep", "point_indices", "prepare_store", "marker",
           "atomic_write"]

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


def _init_store(cfg: SweepConfig, out: Path, chunk: int) -> None:
    import zarr

    from .. import __version__

    out.mkdir(parents=True, exist_ok=True)
    (out / "done").mkdir(exist_ok=True)
    N, nmax = cfg.n_points, cfg.n_max
    g = zarr.open_group(str(out / "data.zarr"), mode="w")
    for name, (kind, fill, desc) in SCALARS.items():
        a = g.create_array(name, shape=(N,), chunks=(chunk,), dtype=_np_dtype(kind, cfg),
                           fill_value=fill, dimension_names=["point"])
        a.attrs["description"] = desc
    if cfg.record_x:
        for name in ("x", "x_pred"):
            g.create_array(name, shape=(N, nmax), chunks=(chunk, nmax), dtype=cfg.dtype,
                           fill_value=np.nan, dimension_names=["point", "coord"])
    if cfg.loss_every:
        nrec = cfg.n_records
        g.create_array("loss_history", shape=(N, nrec), chunks=(chunk, nrec), dtype=cfg.dtype,
                       fill_value=np.nan, dimension_names=["point", "record"])
        rec = g.create_array("record", shape=(nrec,), dtype="int64", dimension_names=["record"])
        rec[:] = np.arange(1, nrec + 1) * cfg.loss_every
    first = _coords(cfg, 0, min(N, chunk))
    arrays = {name: g.create_array(name, shape=(N,), chunks=(chunk,), dtype=v.dtype,
                                   dimension_names=["point"]) for name, v in first.items()}
    for lo in range(0, N, chunk):  # chunk by chunk: never the whole point table in memory
        hi = min(N, lo + chunk)
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


def prepare_store(cfg: SweepConfig, out: Path) -> dict:
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
        version in ``attrs``.  ``status`` and ``prediction_status`` hold
        :class:`~hambias.Status` codes.

    Raises:
        ValueError: ``path`` is not a sweep, or it is incomplete and ``complete`` is set.
    """
    import xarray as xr

    path = Path(path)
    if not (path / "meta.json").exists():
        raise ValueError(f"{path} is not a hambias sweep (no meta.json)")
    meta = json.loads((path / "meta.json").read_text())
    n_done = sum(marker(path, c).exists() for c in range(meta["n_chunks"]))
    if complete and n_done < meta["n_chunks"]:
        raise ValueError(f"{path} is incomplete ({n_done} of {meta['n_chunks']} chunks done); "
                         f"resume it with the same command or pass complete=False")
    ds = xr.open_zarr(path / "data.zarr", chunks=None, consolidated=False).load()
    labels = np.asarray(ds["method"].attrs.get("labels"))
    ds = ds.assign(method=("point", labels[ds["method"].values]))
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
