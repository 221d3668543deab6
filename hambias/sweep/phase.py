"""Phase tables of a stored sweep: a quantity reduced onto two coordinates, and the stability
boundary drawn on top of them (docs/theory/implicit-bias.md#implicit-bias,
docs/theory/l2-l1.md#l2-l1, docs/theory/stability.md#stability)."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["PhaseTable", "phase_table", "stability_boundary"]


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


#: Points read at a time when a table is reduced from a (possibly lazy) dataset.
PHASE_BLOCK = 65536

_REDUCERS = {"median": np.nanmedian, "mean": np.nanmean, "min": np.nanmin, "max": np.nanmax}


def phase_table(ds, *, x: str, y: str, value: str, where: dict | None = None,
                reduce: str = "median") -> PhaseTable:
    """Reduce a sweep quantity onto a 2-D grid of two coordinates (a phase diagram).

    values[i, j] = reduce{ value(p) : x(p) = x_j, y(p) = y_i, p matches ``where`` },
    the reduction running over every other axis (seeds, …).  ``reduce = "fraction"``
    gives the fraction of points where ``value`` is true (e.g. ``diverged``).

    Typical uses: ``recovery_error`` over (alpha, init_scale) (docs/theory/l2-l1.md#l2-l1),
    ``recovery_error`` over (n, k), ``conv_step`` over (alpha, eta) with
    :func:`stability_boundary` on top (docs/theory/stability.md#stability).

    Args:
        ds: a dataset from :func:`open_sweep` (gridded, flat, or flat and lazy: then only
            ``value`` and the coordinates are read, block by block).
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
    if ds[value].ndim != 1:
        raise ValueError(f"{value!r} is not a per-point scalar (dims {ds[value].dims})")
    # Block by block along the points: a lazily opened store larger than memory is read
    # only in the variables the table needs, PHASE_BLOCK points at a time.
    parts = []
    for lo in range(0, ds.sizes["point"], PHASE_BLOCK):
        blk = ds.isel(point=slice(lo, lo + PHASE_BLOCK))
        v = np.asarray(blk[value].values, dtype=float)
        keep = np.ones(v.shape, bool)
        for c, want in (where or {}).items():
            keep &= np.asarray(blk[c].values == want)
        parts.append((np.asarray(blk[x].values)[keep], np.asarray(blk[y].values)[keep],
                      v[keep]))
    xv, yv, v = (np.concatenate(p) for p in zip(*parts, strict=True)) if parts else \
        (np.zeros(0),) * 3
    if value == "conv_step":
        v = np.where(v < 0, np.nan, v)
    pts = np.ones(v.shape, bool)
    xs, ys = np.unique(xv), np.unique(yv)
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
    """The step size where GD + HYP loses stability: η(1 + α|θ*|)λ_max = 2.

    See docs/theory/stability.md#stability.

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


