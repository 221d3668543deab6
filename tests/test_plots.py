"""plots: ax-in/ax-out functions draw what they are given; save_figure writes PNG + sidecar."""

import json

import numpy as np
import pytest

from hambias import plots
from hambias.cli import phase_main


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


def test_plot_success_map_colours_cells_and_draws_boundaries():
    a0, w0 = np.linspace(-1, 1, 4), np.array([-0.5, 0.5, 1.5])
    out = np.array([[0, 0, 0, 0], [0, -1, 1, 1], [1, 1, 1, 1]])
    fig, ax = plots.new_figure()
    ret = plots.plot_success_map(ax, a0, w0, out, boundary={"a₀ = −w₀": (-w0, w0)},
                                 teacher=(1.0, 1.0), title="t")
    assert ret is ax and ax.get_xlabel() == "a₀" and ax.get_ylabel() == "w₀"
    mesh = ax.collections[0]
    # colour slots: fails 0, undecided 1, succeeds 2 (row-major over the cells)
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(3, 4),
                                  [[0, 0, 0, 0], [0, 1, 2, 2], [2, 2, 2, 2]])
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"a₀ = −w₀", "teacher (a*, w*)", "reaches the teacher"} <= labels
    with pytest.raises(ValueError, match="shape"):
        plots.plot_success_map(ax, a0, w0, out.T)
    with pytest.raises(ValueError, match="codes"):
        plots.plot_success_map(ax, a0, w0, out + 1)
    plots.close_figure(fig)


def test_plots_is_the_only_matplotlib_importer():
    import pathlib

    import hambias

    root = pathlib.Path(hambias.__file__).parent
    others = [p.name for p in root.glob("*.py")
              if p.name != "plots.py" and "import matplotlib" in p.read_text()]
    assert others == []


# ----------------------------------------------------------------------------- phase diagrams

# Cell edges and boundary values are computed in float64 from the grid values: only
# rounding separates them from the closed forms (geometric/arithmetic midpoints).
EDGE_RTOL = 1e-12

# A 4-size, 2-α, 2-η, 2-scale grid: every standard diagram applies; 50 steps keep it ~seconds.
_FULL_SWEEP = {
    "name": "phase test",
    "steps": 50,
    "grid": {"alpha": [0.0, 1.0], "eta": [0.01, 0.1], "init_scale": [0.0, 0.1],
             "dnk": [[4, 8, 1], [4, 8, 2], [4, 10, 1], [4, 10, 2]], "seed": [0, 1],
             "method": ["hyp_star"]},
    "record": {"x": False},
}
# One value on every axis but seed and method: no diagram applies.
_FLAT_SWEEP = {"steps": 10, "grid": {"eta": [0.01], "dnk": [4, 8, 2], "seed": [0, 1],
                                     "method": ["hyp_star", "gd"]}, "record": {"x": False}}


def _table(x, y, values, *, x_name="alpha", y_name="eta", value="conv_step"):
    from hambias.sweep import PhaseTable

    values = np.asarray(values, dtype=float)
    return PhaseTable(x_name, y_name, value, np.asarray(x, float), np.asarray(y, float), values,
                      np.full(values.shape, 2), "median")


def _run(raw, path):
    from hambias.sweep import SweepConfig, run_sweep

    return run_sweep(SweepConfig.from_dict(raw), path, quiet=True)


@pytest.fixture(scope="module")
def full_sweep(tmp_path_factory):
    path = tmp_path_factory.mktemp("phase") / "full"
    _run(_FULL_SWEEP, path)
    return path


def test_plot_phase_centres_cells_on_grid_values_and_hatches_nan():
    t = _table([0.0, 1.0, 10.0], [1e-3, 1e-2, 1e-1],
               [[10.0, 20.0, np.nan], [30.0, 40.0, 5e3], [1e2, np.nan, 1e3]])
    fig, ax = plots.new_figure()
    assert plots.plot_phase(ax, t) is ax
    assert ax.get_xscale() == "symlog" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == "α" and ax.get_ylabel() == "step size η"
    (mesh,) = ax.collections
    np.testing.assert_array_equal(mesh.get_array().mask.reshape(3, 3), np.isnan(t.values))
    np.testing.assert_allclose(mesh.get_array().filled(np.nan).reshape(3, 3), t.values)
    # log axis: cell edges are geometric midpoints, so each value is the geometric mean of
    # its cell's edges; the grid's extent is the first and last edge
    ye = np.sqrt(t.y[1:] * t.y[:-1])
    lo, hi = ax.get_ylim()
    np.testing.assert_allclose([lo, hi], [t.y[0] ** 2 / ye[0], t.y[-1] ** 2 / ye[-1]],
                               rtol=EDGE_RTOL)
    assert mesh.norm.__class__.__name__ == "LogNorm"  # values span 500x
    cbar_label = mesh.colorbar.ax.get_ylabel()
    assert "steps to converge" in cbar_label and "median of 2 runs" in cbar_label
    assert [p.get_hatch() for p in ax.patches] == ["///"]
    assert ax.get_legend().get_texts()[0].get_text() == "no value (NaN)"
    assert [tk.get_text() for tk in ax.get_xticklabels()] == ["0", "1", "10"]
    plots.close_figure(fig)


def test_plot_phase_linear_axes_without_nan_or_colorbar():
    t = _table([40, 80], [2, 5], [[0.1, 0.2], [0.3, 0.4]], x_name="n", y_name="k",
               value="recovery_error")
    fig, ax = plots.new_figure()
    plots.plot_phase(ax, t, logx=False, logy=False, colorbar=False)
    assert ax.get_xscale() == ax.get_yscale() == "linear"
    np.testing.assert_allclose(ax.get_xlim(), [20.0, 100.0], rtol=EDGE_RTOL)
    assert ax.get_xlabel() == "dimension n" and not ax.patches and ax.get_legend() is None
    assert ax.collections[0].norm.__class__.__name__ == "Normalize"  # spread 4x < 30x
    plots.close_figure(fig)


def test_plot_phase_rejects_bad_input():
    fig, ax = plots.new_figure()
    with pytest.raises(ValueError, match="shape"):
        plots.plot_phase(ax, _table([0.0, 1.0], [1.0, 2.0], [[1.0, 2.0]]))
    with pytest.raises(ValueError, match="norm must be"):
        plots.plot_phase(ax, _table([0.0, 1.0], [1.0], [[1.0, 2.0]]), norm="cubic")
    with pytest.raises(ValueError, match="log axis"):
        plots.plot_phase(ax, _table([-1.0, 1.0], [1.0], [[1.0, 2.0]]), logx=True)
    plots.close_figure(fig)


def test_plot_stability_boundary_keeps_the_diagram_limits():
    t = _table([0.0, 1.0, 10.0], [1e-3, 1e-2, 1e-1], np.ones((3, 3)))
    fig, ax = plots.new_figure()
    plots.plot_phase(ax, t)
    lims = ax.get_xlim(), ax.get_ylim()
    alpha, eta = np.array([10.0, 0.0, 1.0]), np.array([0.002, 0.5, 0.1])  # 0.5 leaves the grid
    assert plots.plot_stability_boundary(ax, alpha, eta) is ax
    (line,) = ax.lines
    np.testing.assert_array_equal(line.get_xdata(), [0.0, 1.0, 10.0])
    np.testing.assert_array_equal(line.get_ydata(), [0.5, 0.1, 0.002])
    assert (ax.get_xlim(), ax.get_ylim()) == lims
    assert [x.get_text() for x in ax.get_legend().get_texts()] == [plots.STABILITY_LABEL]
    with pytest.raises(ValueError, match="one shape"):
        plots.plot_stability_boundary(ax, [0.0, 1.0], [0.1])
    plots.close_figure(fig)


def test_sweep_phase_diagrams_writes_all_three_with_sidecars(full_sweep, tmp_path):
    from hambias.sweep import open_sweep, stability_boundary

    paths = plots.sweep_phase_diagrams(full_sweep, tmp_path / "figs")
    assert [p.name for p in paths] == ["full_recovery_alpha_scale.png", "full_recovery_n_k.png",
                                       "full_convergence_alpha_eta.png"]
    ds = open_sweep(full_sweep, gridded=False)
    sides = {}
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        sides[p.stem] = json.loads(p.with_suffix(".json").read_text())["meta"]
        assert sides[p.stem]["sweep_digest"] == ds.attrs["sweep_digest"]
        assert sides[p.stem]["methods"] == ["hyp_star"]
    nk = sides["full_recovery_n_k"]
    assert nk["fixed"] == {"eta": 0.01, "init_scale": 0.0, "beta": 0.0, "alpha": 1.0, "d": 4}
    assert nk["panels"]["hyp_star"]["x_values"] == [8, 10]
    # the (n, k) cell (10, 2) is the median over seeds of the matching points
    sel = ((ds["n"] == 10) & (ds["k"] == 2) & (ds["eta"] == 0.01) & (ds["alpha"] == 1.0)
           & (ds["init_scale"] == 0.0)).values
    cell = nk["panels"]["hyp_star"]["values"][1][1]
    np.testing.assert_allclose(cell, np.median(ds["recovery_error"].values[sel]), rtol=EDGE_RTOL)
    # the boundary: η_crit(α) from the medians of the stored λ_max and max|θ*| at the first size
    b = sides["full_convergence_alpha_eta"]["panels"]["hyp_star"]["stability_boundary"]
    first = (ds["size"] == "4x8x1").values & (ds["init_scale"] == 0.0).values
    want = [stability_boundary(a, lam_max=np.median(ds["lam_max"].values[first]),
                               theta_max=np.median(ds["theta_max"].values[
                                   first & (ds["alpha"] == a).values])) for a in (0.0, 1.0)]
    assert b["alpha"] == [0.0, 1.0]
    np.testing.assert_allclose(b["eta_crit"], want, rtol=EDGE_RTOL)
    # a dataset works as well as a path (default prefix "sweep")
    again = plots.sweep_phase_diagrams(ds, tmp_path / "ds")
    assert again[0].name == "sweep_recovery_alpha_scale.png"


def test_sweep_without_the_axes_yields_no_diagram(tmp_path, capsys):
    _run(_FLAT_SWEEP, tmp_path / "flat")
    assert plots.sweep_phase_diagrams(tmp_path / "flat", tmp_path / "figs") == []
    assert not (tmp_path / "figs").exists()
    assert phase_main([str(tmp_path / "flat"), "--out", str(tmp_path / "figs")]) == 1
    assert "no diagram applies" in capsys.readouterr().err
    assert phase_main([str(tmp_path / "missing")]) == 2


def test_phase_main_writes_into_out(full_sweep, tmp_path, capsys):
    assert phase_main([str(full_sweep), "--out", str(tmp_path), "--prefix", "p"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(printed) == sorted(str(p) for p in tmp_path.glob("p_*.png")) and len(printed) == 3
