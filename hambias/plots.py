"""Figures of hambias: ax-in / ax-out plotting functions and one :func:`save_figure`.

This is the only module that imports matplotlib.  It builds figures with
:class:`matplotlib.figure.Figure` directly (no pyplot, no global state, no
backend switch), so it works headless and in tests.  Every ``plot_*`` function
takes an ``ax``, draws plain arrays on it (labelled axes with symbols, a
legend, sensible scales) and returns the ``ax``; :func:`save_figure` writes the
PNG and a JSON sidecar with the configuration and versions.

>>> import numpy as np
>>> fig, ax = new_figure()
>>> ax = plot_curves(ax, np.arange(1, 4), {"GD": np.array([1.0, 0.1, 0.01])},
...                  xlabel="t", ylabel="f(x_t) − f*")
>>> ax.get_yscale()
'log'
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, NullLocator

__all__ = [
    "close_figure",
    "new_figure",
    "plot_bars",
    "plot_bregman_shapes",
    "plot_convergence_order",
    "plot_curves",
    "plot_inverse_metrics",
    "plot_phase",
    "plot_sign_flips",
    "plot_stability_boundary",
    "plot_step_maps",
    "plot_success_map",
    "plot_trajectories",
    "save_figure",
    "sweep_phase_diagrams",
]

_LINESTYLES = ["-", "--", "-.", ":"]

# Default size of one panel, inches (readable at 150 dpi on a laptop screen).
_PANEL = (5.6, 4.0)


def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None):
    """A figure and its axes (an array when there is more than one panel), no pyplot.

    Args:
        nrows, ncols: panel grid (≥ 1).
        size: figure size in inches (default: ``_PANEL`` per panel).

    Returns:
        ``(fig, axes)``: one ``Axes`` for a single panel, else a flat array of them.

    Raises:
        ValueError: a non-positive grid.
    """
    if nrows < 1 or ncols < 1:
        raise ValueError(f"nrows and ncols must be >= 1, got {nrows} x {ncols}")
    if size is None:
        size = (_PANEL[0] * ncols, _PANEL[1] * nrows)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
    return fig, (axes[0] if axes.size == 1 else axes)


def close_figure(fig: Figure) -> None:
    """Release a figure's memory (figures from :func:`new_figure` are not in pyplot)."""
    fig.clear()


def _jsonable(obj):
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def save_figure(fig: Figure, path: str | Path, *, meta: Mapping | None = None,
                dpi: int = 150) -> Path:
    """Write ``fig`` as a PNG and a JSON sidecar ``<path>.json`` (config and versions).

    The sidecar holds ``{"figure", "hambias_version", "matplotlib_version", "meta"}``
    so that a figure can be traced to the configuration that produced it.

    Args:
        fig: the figure.
        path: target file; must end in ``.png``; parent folders are created.
        meta: JSON-serialisable configuration (arrays and odd types are converted).
        dpi: resolution.

    Returns:
        The PNG path.

    Raises:
        ValueError: a path that does not end in ``.png``.
    """
    path = Path(path)
    if path.suffix != ".png":
        raise ValueError(f"save_figure writes PNG files: path must end in .png, got {path}")
    from . import __version__

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    side = {
        "figure": path.name,
        "hambias_version": __version__,
        "matplotlib_version": matplotlib.__version__,
        "meta": _jsonable(dict(meta or {})),
    }
    path.with_suffix(".json").write_text(json.dumps(side, indent=2, sort_keys=True) + "\n")
    return path


def _mark_points(ax, theta0, theta_star, *, axis: str) -> None:
    line = ax.axvline if axis == "x" else ax.axhline
    if theta0 is not None:
        line(theta0, color="0.4", ls=":", lw=1.2, label=f"θ₀ = {theta0:g}")
    if theta_star is not None:
        line(theta_star, color="k", ls="--", lw=1.2, label=f"θ* = {theta_star:g}")


def _finish(ax, xlabel: str, ylabel: str, title: str | None = None, *, ncol: int = 1,
            grid_which: str = "major"):
    """Axis labels, optional title, a small legend and a light grid; returns ``ax``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", ncol=ncol)
    ax.grid(True, which=grid_which, alpha=0.3)
    return ax


def plot_inverse_metrics(ax, theta, metrics: Mapping[str, np.ndarray], *, theta0=None,
                         theta_star=None, logy: bool = True):
    """Inverse metrics g⁻¹(θ) of several geometries against θ, with θ₀ and θ* marked.

    Args:
        ax: target axes.
        theta: 1-D grid of θ.
        metrics: label → g⁻¹ on the grid (e.g. ``{"GD": 1, "HAM α=1": 1+|θ|}``).
        theta0, theta_star: optional points to mark with vertical lines.
        logy: log scale for g⁻¹ (the m⊙w metric vanishes at 0 for small γ).

    Returns:
        ``ax``.
    """
    theta = np.asarray(theta)
    for label, g in metrics.items():
        ax.plot(theta, np.broadcast_to(np.asarray(g, dtype=float), theta.shape), label=label)
    _mark_points(ax, theta0, theta_star, axis="x")
    if logy:
        ax.set_yscale("log")
    return _finish(ax, "θ", "inverse metric g⁻¹(θ)", "inverse metrics: GD, m⊙w, HAM")


def plot_trajectories(ax, t, paths: Mapping[str, np.ndarray], *, theta0=None,
                      theta_star=None, crossings: Mapping[str, float] | None = None):
    """1-D trajectories θ_t of several flows, with θ₀, θ*, θ = 0 and zero-crossing times.

    Args:
        ax: target axes.
        t: times (shared by all paths), or a mapping label → times.
        paths: label → θ_t.
        theta0, theta_star: horizontal reference lines.
        crossings: label → first time θ_t = 0 (drawn as dots on the zero line).

    Returns:
        ``ax``.
    """
    for label, x in paths.items():
        tt = t[label] if isinstance(t, Mapping) else t
        (line,) = ax.plot(tt, x, label=label)
        if crossings and label in crossings and np.isfinite(crossings[label]):
            ax.plot([crossings[label]], [0.0], "o", color=line.get_color(), ms=5)
    ax.axhline(0.0, color="0.7", lw=0.8)
    _mark_points(ax, theta0, theta_star, axis="y")
    return _finish(ax, "time t", "θ_t", "1-D flows on f(θ) = (θ − θ*)²/2 (dots: zero crossing)")


def plot_bregman_shapes(ax, x, shapes: Mapping[str, np.ndarray], *, references: bool = True):
    """Normalised potential shapes R(x)/R(1) against the references x² and |x|.

    Args:
        ax: target axes.
        x: 1-D grid.
        shapes: label → normalised potential on the grid.
        references: also draw x² and |x| (dashed, black and grey).

    Returns:
        ``ax``.
    """
    x = np.asarray(x)
    for label, r in shapes.items():
        ax.plot(x, r, label=label)
    if references:
        ax.plot(x, x * x, "k--", lw=1.2, label="x² (L2)")
        ax.plot(x, np.abs(x), "--", color="0.5", lw=1.2, label="|x| (L1)")
    return _finish(ax, "x", "R_α(x) / R_α(1)", "normalised HAM potential: from x² to |x|",
                   ncol=2)


def plot_step_maps(ax, theta, maps: Mapping[str, np.ndarray], *, flip_region=None,
                   xlabel="θ_k", ylabel=r"$\theta_{k+1}$"):
    """One-step maps θ_k ↦ θ_{k+1} of several updates, with the sign-flip region shaded.

    Args:
        ax: target axes.
        theta: 1-D grid of θ_k.
        maps: label → θ_{k+1} on the grid.
        flip_region: ``(lo, hi)`` interval of θ_k where the optimizer step flips the sign.
        xlabel, ylabel: axis labels.

    Returns:
        ``ax``.
    """
    for (label, y), ls in zip(maps.items(), _LINESTYLES * len(maps)):
        ax.plot(theta, y, ls, label=label, lw=1.8)
    if flip_region is not None:
        ax.axvspan(*flip_region, color="tab:red", alpha=0.12, label="sign flips in GD step")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.axvline(0.0, color="0.7", lw=0.8)
    return _finish(ax, xlabel, ylabel, "HYP vs HYP*: the sign choice at a flip")


def plot_convergence_order(ax, h, errors: Mapping[str, np.ndarray], *,
                           slopes: Mapping[str, float] | None = None,
                           expected: float | None = None, xlabel="step size η",
                           ylabel="error"):
    """Log-log error against step size, with the fitted slope in the legend.

    Args:
        ax: target axes.
        h: step sizes, shared or a mapping label → step sizes.
        errors: label → errors (positive).
        slopes: label → fitted log-log slope (shown in the legend).
        expected: draw a reference line of this slope through the first series.
        xlabel, ylabel: axis labels.

    Returns:
        ``ax``.
    """
    first = None
    for label, e in errors.items():
        hh = np.asarray(h[label] if isinstance(h, Mapping) else h, dtype=float)
        e = np.asarray(e, dtype=float)
        s = None if slopes is None else slopes.get(label)
        lab = label if s is None else f"{label} (slope {s:.2f})"
        ax.loglog(hh, e, "o-", label=lab)
        if first is None:
            first = (hh, e)
    if expected is not None and first is not None:
        hh, e = first
        ref = e[-1] * (hh / hh[-1]) ** expected
        ax.loglog(hh, ref, "k:", lw=1.2, label=f"slope {expected:g} reference")
    ax.xaxis.set_minor_formatter(NullFormatter())
    return _finish(ax, xlabel, ylabel, grid_which="both")


def plot_curves(ax, t, curves: Mapping[str, object], *, xlabel="time t", ylabel="",
                logy: bool = True, logx: bool = False, hlines: Mapping[str, float] | None = None,
                title: str | None = None, styles: Mapping[str, str] | None = None):
    """Curves y(t) (loss, distance, error) with optional spread bands and reference levels.

    Args:
        ax: target axes.
        t: shared x values, or a mapping label → x values.
        curves: label → y, or label → ``(mean, lo, hi)`` for a mean with a shaded band.
        xlabel, ylabel, title: labels.
        logy, logx: log scales.
        hlines: label → constant reference level (dashed).
        styles: label → matplotlib format string.

    Returns:
        ``ax``.
    """
    for label, c in curves.items():
        tt = np.asarray(t[label] if isinstance(t, Mapping) else t, dtype=float)
        fmt = (styles or {}).get(label, "-")
        if isinstance(c, tuple):
            mean, lo, hi = (np.asarray(v, dtype=float) for v in c)
            (line,) = ax.plot(tt, mean, fmt, label=label)
            ax.fill_between(tt, lo, hi, color=line.get_color(), alpha=0.2, lw=0)
        else:
            ax.plot(tt, np.asarray(c, dtype=float), fmt, label=label)
    for label, v in (hlines or {}).items():
        ax.axhline(v, ls="--", color="k", lw=1.0, label=label)
    if logy:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    return _finish(ax, xlabel, ylabel, title, grid_which="both")


def plot_bars(ax, groups, series: Mapping[str, object], *, ylabel="", logy: bool = False,
              title: str | None = None, markers: Mapping[str, object] | None = None,
              marker_label: str = "reference"):
    """Grouped bars: one group per item of ``groups``, one bar per series in each group.

    Args:
        ax: target axes.
        groups: labels along the x axis (e.g. the geometries of a catalogue).
        series: label → one value per group (NaN leaves a gap).
        ylabel, title: labels.
        logy: log scale for the values.
        markers: label → one value per group, drawn as black markers on the bars of the
            series of the same label (e.g. a reference value each bar should reach),
            labelled "<series>: <marker_label>".

    Returns:
        ``ax``.
    """
    groups = list(groups)
    x = np.arange(len(groups), dtype=float)
    width = 0.8 / max(len(series), 1)
    for j, (label, vals) in enumerate(series.items()):
        offset = (j - (len(series) - 1) / 2) * width
        ax.bar(x + offset, np.asarray(vals, dtype=float), width, label=label)
        if markers and label in markers:
            ax.plot(x + offset, np.asarray(markers[label], dtype=float), "k_", ms=12, mew=2,
                    label=f"{label}: {marker_label}")
    ax.set_xticks(x, groups, rotation=20, ha="right")
    if logy:
        ax.set_yscale("log")
    return _finish(ax, "", ylabel, title)


def plot_sign_flips(ax, steps, flips: Mapping[str, np.ndarray], *, ylabel="sign flips",
                    title="sign flips over training", logx: bool = False):
    """Sign-flip counts over training (per record, or cumulative against initialisation).

    Args:
        ax: target axes.
        steps: iteration numbers, shared or a mapping label → steps.
        flips: label → counts.
        ylabel, title: labels.
        logx: log scale for the iteration axis.

    Returns:
        ``ax``.
    """
    for (label, f), ls in zip(flips.items(), _LINESTYLES * len(flips)):
        ss = np.asarray(steps[label] if isinstance(steps, Mapping) else steps)
        ax.step(ss, np.asarray(f), ls, where="post", label=label, lw=1.6)
    if logx:
        ax.set_xscale("log")
    return _finish(ax, "iteration k", ylabel, title)


#: Colours of the outcomes of :func:`plot_success_map` (failure, undecided, success).
_OUTCOME_COLOURS = ("#f4b6b0", "#d9d9d9", "#a9d8a6")
_OUTCOME_LABELS = ("fails (stalls at a·w = 0 or on the other branch)", "undecided at the horizon",
                   "reaches the teacher")


def plot_success_map(ax, a0, w0, outcome, *, boundary: Mapping[str, tuple] | None = None,
                     teacher=None, title: str | None = None, legend: bool = True,
                     legend_loc: str = "lower left"):
    """Which starts (a₀, w₀) of a two-layer model reach the teacher: a three-colour map.

    Cell (i, j) is centred on (a0[j], w0[i]) and coloured by ``outcome[i, j]``: 1 reaches
    the teacher, 0 fails, −1 undecided (as :func:`hambias.teacher_student.classify_outcome`
    codes them).  Predicted boundaries are drawn as lines on top.

    Args:
        ax: target axes.
        a0, w0: the grids (columns, rows).
        outcome: (len(w0), len(a0)) codes in {−1, 0, 1}.
        boundary: label → (a, w) arrays of a curve (e.g. the invariant's prediction).
        teacher: (a*, w*) to mark, or None.
        title: axes title.
        legend: draw the legend (outcome patches and boundary labels).
        legend_loc: its matplotlib location.

    Returns:
        ``ax``.

    Raises:
        ValueError: an outcome array of the wrong shape or with codes outside {−1, 0, 1}.

    >>> import numpy as np
    >>> fig, ax = new_figure()
    >>> a, w = np.linspace(-1, 1, 3), np.linspace(-1, 1, 2)
    >>> ax = plot_success_map(ax, a, w, np.array([[0, 0, 0], [0, 1, 1]]),
    ...                       boundary={"a₀ = −w₀": (-w, w)}, teacher=(1.0, 1.0))
    >>> ax.get_xlabel()
    'a₀'
    """
    from matplotlib import colors
    from matplotlib.patches import Patch

    a0, w0 = np.asarray(a0, dtype=float), np.asarray(w0, dtype=float)
    out = np.asarray(outcome)
    if out.shape != (w0.size, a0.size):
        raise ValueError(f"outcome must have shape (len(w0), len(a0)) = {(w0.size, a0.size)}, "
                         f"got {out.shape}")
    if not np.all(np.isin(out, (-1, 0, 1))):
        raise ValueError("outcome codes must be -1 (undecided), 0 (fails) or 1 (succeeds)")

    def edges(v):
        mid = 0.5 * (v[1:] + v[:-1])
        first = v[0] - (mid[0] - v[0]) if v.size > 1 else v[0] - 0.5
        last = v[-1] + (v[-1] - mid[-1]) if v.size > 1 else v[-1] + 0.5
        return np.concatenate([[first], mid, [last]])

    cmap = colors.ListedColormap(_OUTCOME_COLOURS)
    norm = colors.BoundaryNorm([-0.5, 0.5, 1.5, 2.5], cmap.N)
    # codes −1, 0, 1 -> colour slots 1 (undecided), 0 (fails), 2 (succeeds)
    slot = np.where(out == -1, 1, np.where(out == 0, 0, 2))
    xe, ye = edges(a0), edges(w0)
    ax.pcolormesh(xe, ye, slot, cmap=cmap, norm=norm, shading="flat", zorder=0)
    handles = [Patch(facecolor=c, label=lab) for c, lab, code in
               zip(_OUTCOME_COLOURS, _OUTCOME_LABELS, (0, -1, 1), strict=True)
               if np.any(out == code)]
    for (label, (a, w)), ls in zip((boundary or {}).items(), _LINESTYLES * 4):
        (line,) = ax.plot(np.asarray(a), np.asarray(w), color="k", ls=ls, lw=1.4, label=label)
        handles.append(line)
    if teacher is not None:
        (pt,) = ax.plot([teacher[0]], [teacher[1]], "k*", ms=10, label="teacher (a*, w*)")
        handles.append(pt)
    ax.axhline(0.0, color="0.5", lw=0.6)
    ax.axvline(0.0, color="0.5", lw=0.6)
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xlabel("a₀")
    ax.set_ylabel("w₀")
    if title:
        ax.set_title(title, fontsize="medium")
    if legend and handles:
        ax.legend(handles=handles, fontsize="x-small", loc=legend_loc)
    return ax


# ----------------------------------------------------------------------------- phase diagrams

#: Axis labels (with symbols) of sweep coordinates.
_COORD_LABELS = {
    "alpha": "α",
    "eta": "step size η",
    "init_scale": "initial scale s  (x₀ = s·z)",
    "beta": "β",
    "n": "dimension n",
    "k": "sparsity k",
    "d": "samples d",
    "seed": "seed",
}
#: Colorbar labels of sweep quantities.
_VALUE_LABELS = {
    "recovery_error": "recovery error ‖x_T − x*‖/‖x*‖",
    "prediction_error": "prediction error ‖x_T − x_pred‖/‖x_pred‖",
    "conv_step": "steps to converge",
    "diverged": "diverged",
    "loss": "final loss f(x_T)",
    "loss0": "initial loss f(x₀)",
    "divergence_step": "step of divergence",
    "lam_max": "λ_max(AᵀA/d)",
    "theta_max": "max|θ*|",
}
#: Label of the stability boundary line (docs/theory/stability.md#stability).
STABILITY_LABEL = "η(1+α|θ*|)λ_max = 2"
#: Legends of phase diagrams sit below the x label, outside the cells.
_LEGEND_BELOW = {"loc": "upper center", "bbox_to_anchor": (0.5, -0.13), "fontsize": "small",
                 "frameon": False}
#: Automatic log scale for an axis whose positive values span at least this ratio.
_LOG_RATIO = 8.0
#: Automatic log colour scale for values spanning at least this ratio.
_LOG_COLOR_RATIO = 30.0


def _axis_scale(values: np.ndarray, log) -> str:
    """'linear', 'log' or 'symlog' for grid values; ``log=None`` decides from the spread."""
    v = np.asarray(values, dtype=float)
    pos = v[v > 0]
    if log is None:
        if pos.size < 2 or np.any(v < 0) or pos.max() / pos.min() < _LOG_RATIO:
            return "linear"
        return "log" if pos.size == v.size else "symlog"
    if not log:
        return "linear"
    if np.any(v < 0) or pos.size == 0:
        raise ValueError(f"a log axis needs values >= 0 with one > 0, got {v.tolist()}")
    return "log" if pos.size == v.size else "symlog"


def _set_scale(ax, which: str, scale: str, values: np.ndarray) -> None:
    setter = ax.set_xscale if which == "x" else ax.set_yscale
    if scale == "symlog":  # 0 is on the grid: linear up to the smallest positive value
        setter("symlog", linthresh=float(np.min(values[values > 0])), linscale=1.0)
    else:
        setter(scale)


def _cell_edges(ax, which: str, values: np.ndarray) -> np.ndarray:
    """Edges of cells centred on ``values`` in the axis' own (scaled) coordinate."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    tr = axis.get_transform()
    t = tr.transform(np.asarray(values, dtype=float).reshape(-1, 1)).ravel()
    if t.size == 1:
        te = np.array([t[0] - 0.5, t[0] + 0.5])
    else:
        mid = (t[1:] + t[:-1]) / 2
        te = np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])
    return tr.inverted().transform(te.reshape(-1, 1)).ravel()


def _tick_labels(values: np.ndarray) -> list[str]:
    short = (f"{v:g}" for v in np.asarray(values).tolist())  # 1000, 0.0005, 1e-06
    return [t if len(t) <= 6 else f"{float(t):.3g}" for t in short]  # 0.31623 -> 0.316


def _make_norm(values: np.ndarray, norm, vmin, vmax):
    """The colour normalisation of :func:`plot_phase` for ``values`` (NaNs ignored)."""
    from matplotlib import colors

    if isinstance(norm, colors.Normalize):
        return norm
    if norm not in ("auto", "log", "linear"):
        raise ValueError(f"norm must be 'auto', 'log', 'linear' or a Normalize, got {norm!r}")
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    pos = finite[finite > 0]
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else None)
    use_log = norm == "log" or (norm == "auto" and pos.size == finite.size and pos.size > 0
                                and pos.max() / pos.min() >= _LOG_COLOR_RATIO)
    if use_log:
        lo = vmin if vmin is not None else (float(pos.min()) if pos.size else None)
        if lo is None or lo <= 0:
            raise ValueError(f"a log colour scale needs positive values, got vmin = {lo!r}")
        return colors.LogNorm(vmin=lo, vmax=hi)
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else None)
    return colors.Normalize(vmin=lo, vmax=hi)


def plot_phase(ax, table, *, logx: bool | None = None, logy: bool | None = None,
               cmap: str = "viridis", norm="auto", vmin: float | None = None,
               vmax: float | None = None, colorbar: bool = True, label: str | None = None,
               nan_label: str = "no value (NaN)", title: str | None = None):
    """A phase diagram: a :class:`hambias.sweep.PhaseTable` as a colour mesh.

    Cell (i, j) is centred on (x_j, y_i) in the axis' own scale and coloured by
    ``table.values[i, j]``; NaN cells are left blank over a grey hatching.  Ticks sit
    on the grid values.  A grid containing 0 on a log axis uses a symmetric-log scale
    that is linear up to its smallest positive value.

    Args:
        ax: target axes.
        table: a ``PhaseTable`` (from :func:`hambias.sweep.phase_table`).
        logx, logy: log scale for the coordinate (``None``: when the positive values
            span a factor ≥ 8).
        cmap: colour map name.
        norm: ``"auto"`` (log when the finite positive values span a factor ≥ 30),
            ``"log"``, ``"linear"`` or a ``matplotlib.colors.Normalize``.
        vmin, vmax: colour limits (default: the finite values' range).
        colorbar: add a colorbar labelled with the quantity and the reduction.
        label: colorbar label (default: the quantity's name and the reduction).
        nan_label: legend label of the hatching (shown only when a cell is NaN).
        title: axes title.

    Returns:
        ``ax``.

    Raises:
        ValueError: a table whose values do not have shape (len(y), len(x)), or a log
            axis/colour scale with no positive value.

    >>> import numpy as np
    >>> from hambias.sweep import PhaseTable
    >>> t = PhaseTable("alpha", "init_scale", "recovery_error", np.array([0.0, 1.0, 10.0]),
    ...                np.array([0.01, 0.1]), np.array([[0.5, 0.1, np.nan], [0.6, 0.3, 0.2]]),
    ...                np.full((2, 3), 2), "median")
    >>> fig, ax = new_figure()
    >>> ax = plot_phase(ax, t)
    >>> ax.get_xscale(), ax.get_xlabel()
    ('symlog', 'α')
    """
    from matplotlib.patches import Patch, Rectangle

    x, y = np.asarray(table.x, dtype=float), np.asarray(table.y, dtype=float)
    vals = np.asarray(table.values, dtype=float)
    if vals.shape != (y.size, x.size):
        raise ValueError(f"table.values must have shape (len(y), len(x)) = {(y.size, x.size)}, "
                         f"got {vals.shape}")
    _set_scale(ax, "x", _axis_scale(x, logx), x)
    _set_scale(ax, "y", _axis_scale(y, logy), y)
    xe, ye = _cell_edges(ax, "x", x), _cell_edges(ax, "y", y)
    nrm = _make_norm(vals, norm, vmin, vmax)
    mesh = ax.pcolormesh(xe, ye, np.ma.masked_invalid(vals), cmap=cmap, norm=nrm,
                         shading="flat", zorder=1)
    handles = []
    if not np.all(np.isfinite(vals)):
        ax.add_patch(Rectangle((xe[0], ye[0]), xe[-1] - xe[0], ye[-1] - ye[0], fill=False,
                               hatch="///", edgecolor="0.6", lw=0, zorder=0.5))
        handles.append(Patch(facecolor="white", edgecolor="0.6", hatch="///", label=nan_label))
    ax.set_xlim(xe[0], xe[-1])
    ax.set_ylim(ye[0], ye[-1])
    ax.set_xticks(x, _tick_labels(table.x))
    ax.set_yticks(y, _tick_labels(table.y))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(_COORD_LABELS.get(table.x_name, table.x_name))
    ax.set_ylabel(_COORD_LABELS.get(table.y_name, table.y_name))
    if title:
        ax.set_title(title)
    if colorbar:
        if label is None:
            counts = np.asarray(table.counts)
            c = counts[counts > 0]
            runs = "" if c.size == 0 else (f" of {'' if c.min() == c.max() else '≤ '}{c.max()} "
                                           f"run{'s' if c.max() > 1 else ''}")
            name = _VALUE_LABELS.get(table.value_name, table.value_name)
            label = (f"fraction {name}" if table.reduce == "fraction"
                     else f"{name}\n({table.reduce}{runs} per cell)")
        ax.figure.colorbar(mesh, ax=ax, label=label)
    if handles:
        ax.legend(handles=handles, **_LEGEND_BELOW)  # more entries join via _legend_below
    return ax


def plot_stability_boundary(ax, alpha, eta_crit, **kw):
    """The stability boundary η_crit(α) = 2/(λ_max(1 + α max|θ*|)) drawn on a phase diagram.

    GD + HYP is linearly stable at its limit for η below the line
    (docs/theory/stability.md#stability); the axes' limits are kept, so the line is clipped
    to the diagram.

    Args:
        ax: target axes (typically from :func:`plot_phase` over (α, η)).
        alpha: α values.
        eta_crit: η_crit at those α (e.g. :func:`hambias.sweep.stability_boundary`).
        **kw: passed to ``ax.plot`` (default: a white-edged black line with markers,
            labelled ``"η(1+α|θ*|)λ_max = 2"``).

    Returns:
        ``ax``, with the line added to its legend.

    Raises:
        ValueError: ``alpha`` and ``eta_crit`` of different shapes.

    >>> fig, ax = new_figure()
    >>> ax = plot_stability_boundary(ax, [0.0, 1.0], [0.4, 0.2])
    >>> ax.get_legend().get_texts()[0].get_text()
    'η(1+α|θ*|)λ_max = 2'
    """
    import matplotlib.patheffects as pe

    a, e = np.asarray(alpha, dtype=float), np.asarray(eta_crit, dtype=float)
    if a.shape != e.shape or a.ndim != 1:
        raise ValueError(f"alpha and eta_crit must be 1-D of one shape, got {a.shape} and "
                         f"{e.shape}")
    order = np.argsort(a)
    style = {"color": "k", "lw": 2.0, "marker": "o", "ms": 4, "label": STABILITY_LABEL,
             "zorder": 3, "path_effects": [pe.withStroke(linewidth=4, foreground="w")]}
    style.update(kw)
    lims = (ax.get_xlim(), ax.get_ylim()) if ax.collections or ax.patches else None
    ax.plot(a[order], e[order], **style)
    if lims is not None:
        ax.set_xlim(*lims[0])
        ax.set_ylim(*lims[1])
    _legend_below(ax)
    return ax


def _legend_below(ax) -> None:
    """(Re)build the legend below a phase diagram: its old entries plus new labelled artists."""
    old = ax.get_legend()
    handles = [] if old is None else list(old.legend_handles)
    labels = {h.get_label() for h in handles}
    handles += [h for h in ax.get_legend_handles_labels()[0] if h.get_label() not in labels]
    ax.legend(handles=handles, **{**_LEGEND_BELOW, "ncol": min(len(handles), 2)})


_METHOD_LABELS = {"hyp_star": "GD+HYP*", "hyp": "GD+HYP", "gd": "GD", "exp": "exp step"}
#: Methods whose runs depend on α (the α diagrams are drawn for these only).
_ALPHA_METHODS = ("hyp_star", "hyp")
#: The three standard diagrams: (file stem, x, y, value, methods or None for all).
_DIAGRAMS = (
    ("recovery_alpha_scale", "alpha", "init_scale", "recovery_error", _ALPHA_METHODS),
    ("recovery_n_k", "n", "k", "recovery_error", None),
    ("convergence_alpha_eta", "alpha", "eta", "conv_step", _ALPHA_METHODS),
)
#: Value taken by a grid axis that is on neither axis of a diagram (seeds are reduced
#: over with the median instead): the smallest η (the most stable: errors are read at
#: limits, not after a divergence or an edge-of-stability detour), the smallest initial
#: scale and β, the largest α (the sparse regime); the size is the grid's first.
_FIXED_PICK = {"eta": min, "init_scale": min, "beta": min, "alpha": max}


def _unique(ds, name) -> list:
    return list(dict.fromkeys(np.asarray(ds[name].values).ravel().tolist()))


def _fixed_values(ds, x: str, y: str) -> dict:
    """``where`` filter fixing every grid axis off the diagram (not seed, not method)."""
    where = {axis: pick(_unique(ds, axis)) for axis, pick in _FIXED_PICK.items()
             if axis not in (x, y)}
    sizes = _unique(ds, "size")
    if "n" in (x, y) or "k" in (x, y):
        where["d"] = int(sizes[0].split("x")[0])  # sizes are "dxnxk"
    else:
        where["size"] = sizes[0]
    return where


def _fmt_where(where: dict) -> str:
    names = {"alpha": "α", "eta": "η", "init_scale": "s", "beta": "β", "d": "d",
             "size": "d×n×k"}
    parts = []
    for k, v in where.items():
        if k == "beta" and v == 0:
            continue
        text = v.replace("x", "×") if k == "size" else f"{v:g}"
        parts.append(f"{names.get(k, k)} = {text}")
    return ", ".join(parts)


def _boundary(ds, table, where: dict):
    """(α, η_crit) from the stored λ_max and max|θ*| (medians over the cell's runs)."""
    from .sweep import stability_boundary

    flat = ds if "point" in ds.dims else ds.stack(point=list(ds["lam_max"].dims))
    sel = np.ones(flat.sizes["point"], bool)
    for c, v in where.items():
        sel &= np.asarray(flat[c].values) == v
    a_pts = np.asarray(flat["alpha"].values)
    lam_all, th_all = np.asarray(flat["lam_max"].values), np.asarray(flat["theta_max"].values)
    alphas, crit = [], []
    for a in table.x:
        m = sel & (a_pts == a)
        lam, th = lam_all[m], th_all[m]
        if a < 0 or not (np.any(np.isfinite(lam)) and np.any(np.isfinite(th))):
            continue
        alphas.append(float(a))
        crit.append(float(stability_boundary(a, lam_max=np.nanmedian(lam),
                                             theta_max=np.nanmedian(th))))
    return np.asarray(alphas), np.asarray(crit)


def sweep_phase_diagrams(path_or_dataset, out_dir, *, prefix: str | None = None) -> list[Path]:
    """Draw the standard phase diagrams a stored sweep allows and save them (PNG + JSON).

    The diagrams (docs/theory/implicit-bias.md#implicit-bias, docs/theory/l2-l1.md#l2-l1,
    docs/theory/stability.md#stability), each drawn when the sweep has ≥ 2 values on both of
    its axes, one panel per method:

    * ``recovery_alpha_scale``: median recovery error ‖x_T − x*‖/‖x*‖ over
      (α, initial scale), methods GD+HYP* / GD+HYP;
    * ``recovery_n_k``: median recovery error over (n, k) from the ``dnk`` axis (at the
      first size's d), every method;
    * ``convergence_alpha_eta``: median steps to reach f ≤ conv_tol·f(x₀) over (α, η),
      with cells where every run diverged marked × and the stability boundary
      η(1 + α max|θ*|)λ_max = 2 on top (λ_max, max|θ*|: medians of the stored values).

    Seeds are reduced over (median); any other grid axis off the diagram is fixed at
    the smallest η, initial scale and β, the largest α and the first (d, n, k), as
    stated in the panel titles and the sidecar.

    Args:
        path_or_dataset: a sweep directory or a dataset from
            :func:`hambias.sweep.open_sweep` (gridded or flat).
        out_dir: output folder (created).
        prefix: file-name prefix (default: the sweep directory's name, or ``"sweep"``).

    Returns:
        The PNG paths written, in the order above (empty when no diagram applies).

    Raises:
        ValueError: ``path_or_dataset`` is not a (complete) sweep.

    >>> import jax, tempfile
    >>> jax.config.update("jax_enable_x64", True)
    >>> from hambias.sweep import SweepConfig, run_sweep
    >>> cfg = SweepConfig.from_dict({"steps": 20, "grid": {"eta": [0.01, 0.1],
    ...     "alpha": [0.0, 1.0], "dnk": [4, 8, 2]}, "record": {"x": False}})
    >>> tmp = tempfile.mkdtemp()
    >>> _ = run_sweep(cfg, tmp + "/s", quiet=True)
    >>> [p.name for p in sweep_phase_diagrams(tmp + "/s", tmp + "/figs")]
    ['s_convergence_alpha_eta.png']
    """
    from .sweep import open_sweep, phase_table

    if isinstance(path_or_dataset, (str, Path)):
        src = Path(path_or_dataset)
        ds = open_sweep(src)
        prefix = prefix or src.resolve().name
    else:
        ds, src = path_or_dataset, None
        prefix = prefix or "sweep"
    out_dir = Path(out_dir)
    config = json.loads(ds.attrs.get("config_json", "{}"))
    methods = _unique(ds, "method")
    paths = []
    for stem, x, y, value, allowed in _DIAGRAMS:
        use = [m for m in methods if allowed is None or m in allowed]
        if not use:
            continue
        where = _fixed_values(ds, x, y)
        tables = [phase_table(ds, x=x, y=y, value=value, where={**where, "method": m})
                  for m in use]
        if any(t.x.size < 2 or t.y.size < 2 for t in tables):
            continue
        fig, axes = new_figure(1, len(use), size=(_PANEL[0] * len(use), _PANEL[1] + 0.3))
        axes = np.atleast_1d(axes)
        nrm = _make_norm(np.concatenate([t.values.ravel() for t in tables]), "auto", None, None)
        meta = {"sweep_name": config.get("name", ""), "sweep_digest": ds.attrs.get("sweep_digest"),
                "sweep_name_on_disk": None if src is None else Path(src).name,
                "diagram": stem, "x": x, "y": y, "value": value,
                "reduce": "median over seeds", "fixed": where, "methods": use,
                "config": config, "panels": {}}
        for ax, m, t in zip(axes, use, tables):
            title = f"{_METHOD_LABELS.get(m, m)}   ({_fmt_where(where)})"
            nan_label = "no converged run" if value == "conv_step" else "no finite value"
            plot_phase(ax, t, norm=nrm, nan_label=nan_label, title=title,
                       cmap="viridis" if value == "conv_step" else "magma")
            panel = {"values": t.values, "x_values": t.x, "y_values": t.y, "counts": t.counts}
            div = phase_table(ds, x=x, y=y, value="diverged", reduce="fraction",
                              where={**where, "method": m})
            jj, ii = np.meshgrid(np.arange(div.x.size), np.arange(div.y.size))
            all_div = div.values == 1.0
            if np.any(all_div):
                ax.plot(div.x[jj[all_div]], div.y[ii[all_div]], "x", color="tab:red", ms=8,
                        mew=2, ls="none", label="all runs diverged", zorder=2)
                _legend_below(ax)
            panel["fraction_diverged"] = div.values
            if value == "conv_step":
                a, e = _boundary(ds, t, {**where, "method": m})
                if a.size >= 2:
                    plot_stability_boundary(ax, a, e)
                    panel["stability_boundary"] = {"alpha": a, "eta_crit": e}
            meta["panels"][m] = panel
        if config.get("name"):
            fig.suptitle(f"{config['name']}  ({config.get('steps', '?')} steps)",
                         fontsize="medium")
        paths.append(save_figure(fig, out_dir / f"{prefix}_{stem}.png", meta=meta))
        close_figure(fig)
    return paths
