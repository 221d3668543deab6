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
from matplotlib.ticker import NullFormatter

__all__ = [
    "new_figure",
    "close_figure",
    "save_figure",
    "plot_inverse_metrics",
    "plot_trajectories",
    "plot_bregman_shapes",
    "plot_step_maps",
    "plot_convergence_order",
    "plot_curves",
    "plot_sign_flips",
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
    ax.set_xlabel("θ")
    ax.set_ylabel("inverse metric g⁻¹(θ)")
    ax.set_title("inverse metrics: GD, m⊙w, HAM")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


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
    ax.set_xlabel("time t")
    ax.set_ylabel("θ_t")
    ax.set_title("1-D flows on f(θ) = (θ − θ*)²/2 (dots: zero crossing)")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


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
    ax.set_xlabel("x")
    ax.set_ylabel("R_α(x) / R_α(1)")
    ax.set_title("normalised HAM potential: from x² to |x|")
    ax.legend(fontsize="small", ncol=2)
    ax.grid(True, alpha=0.3)
    return ax


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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("HYP vs HYP*: the sign choice at a flip")
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax


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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return ax


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
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, which="both", alpha=0.3)
    return ax


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
    ax.set_xlabel("iteration k")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.3)
    return ax
