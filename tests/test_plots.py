"""plots: ax-in/ax-out functions draw what they are given; save_figure writes PNG + sidecar."""

import json

import numpy as np
import pytest

from hambias import plots


def test_save_figure_writes_png_and_sidecar(tmp_path):
    fig, ax = plots.new_figure()
    plots.plot_curves(ax, np.arange(1, 5), {"a": np.array([1.0, 0.1, 0.01, 1e-3])},
                      ylabel="y")
    path = plots.save_figure(fig, tmp_path / "sub" / "f.png", meta={"x": np.arange(3),
                                                                     "inf": float("inf")})
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["meta"] == {"x": [0, 1, 2], "inf": "inf"} and side["hambias_version"]


def test_save_figure_rejects_other_suffix(tmp_path):
    fig, _ = plots.new_figure()
    with pytest.raises(ValueError, match="must end in .png"):
        plots.save_figure(fig, tmp_path / "f.pdf")


def test_new_figure_rejects_bad_grid():
    with pytest.raises(ValueError, match="nrows and ncols"):
        plots.new_figure(0, 1)


def test_plot_functions_return_ax_with_labels_and_data():
    th = np.linspace(-3, 3, 11)
    fig, axes = plots.new_figure(2, 4)
    ax = plots.plot_inverse_metrics(axes[0], th, {"GD": 1.0, "HAM": 1 + np.abs(th)},
                                    theta0=-2.5, theta_star=2.5)
    assert ax is axes[0] and ax.get_yscale() == "log" and ax.get_xlabel() == "θ"
    np.testing.assert_allclose(ax.lines[1].get_ydata(), 1 + np.abs(th))
    ax = plots.plot_trajectories(axes[1], th, {"GD": th}, crossings={"GD": 0.5})
    assert ax.get_ylabel() == "θ_t"
    ax = plots.plot_bregman_shapes(axes[2], th, {"α = 1": th**2})
    assert {t.get_text() for t in ax.get_legend().get_texts()} >= {"x² (L2)", "|x| (L1)"}
    ax = plots.plot_step_maps(axes[3], th, {"GD": th - 0.1}, flip_region=(0, 0.1))
    assert ax.get_xlabel() == "θ_k"
    h = np.array([0.1, 0.05, 0.025])
    ax = plots.plot_convergence_order(axes[4], h, {"e": h**2}, slopes={"e": 2.0}, expected=2.0)
    assert ax.get_xscale() == "log" and "slope 2.00" in ax.get_legend().get_texts()[0].get_text()
    ax = plots.plot_curves(axes[5], th, {"m": (th**2 + 1, th**2, th**2 + 2)}, logy=False,
                           hlines={"ref": 1.0})
    assert len(ax.collections) == 1  # the spread band
    ax = plots.plot_sign_flips(axes[6], np.arange(5), {"GD": np.arange(5)})
    assert ax.get_xlabel() == "iteration k"
    plots.close_figure(fig)


def test_plots_is_the_only_matplotlib_importer():
    import pathlib

    import hambias

    root = pathlib.Path(hambias.__file__).parent
    others = [p.name for p in root.glob("*.py")
              if p.name != "plots.py" and "import matplotlib" in p.read_text()]
    assert others == []
