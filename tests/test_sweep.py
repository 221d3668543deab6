"""Tests of hambias.sweep: config validation, batched = per-point, predictions, resume, sharding."""

import ast
import json
import os
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jax
import numpy as np
import pytest

from hambias import Euclidean, HAMGeometry, LinearRegression, make_method
from hambias.cli import available_cores, sweep_main
from hambias.iterates import run_iterates
from hambias.methods import exp_step, gd_hyp_step
from hambias.predict import predict_limit
from hambias.status import Status
from hambias.sweep import (
    SweepConfig,
    load_config,
    open_sweep,
    phase_table,
    run_sweep,
    stability_boundary,
)
from hambias.sweep.data import draw

PRED_CONVERGED, PRED_NONE = Status.SUCCESS, Status.NOT_COMPUTED

ROOT = Path(__file__).resolve().parents[1]

# Batched matmuls (X Aᵀ over the batch) and per-point matvecs sum in different orders;
# over 300 contracting steps the round-off stays within a few thousand ulps of O(1) iterates.
BATCH_VS_LOOP_ATOL = 1e-12
# Newton predictions reach ‖Ax − y‖ ~ 1e-14; KKT checks of 20-dimensional systems hold to
# this with room for the conditioning of AAᵀ (~1e2 for these shapes).
KKT_ATOL = 1e-10
# The closed-form ridge / min-norm references are themselves exact to ~1e-14.
CLOSED_FORM_ATOL = 1e-10


def _cfg(**over):
    raw = {
        "steps": 300,
        "grid": {
            "alpha": [0.0, 2.0],
            "eta": [0.05],
            "init_scale": [0.0, 0.3],
            "dnk": [[5, 12, 2]],
            "seed": [0, 1],
            "method": ["hyp_star", "hyp", "gd", "exp"],
        },
        "record": {"loss_every": 100},
    }
    for k, v in over.items():
        if k in raw["grid"] or k in ("beta",):
            raw["grid"][k] = v
        else:
            raw[k] = v
    return SweepConfig.from_dict(raw)


def _problem(cfg, seed, dnk_index=0):
    """(A, y, x*, λ_max, z) of a point's problem, as the sweep draws it."""
    dr = draw(cfg, dnk_index, seed)
    return dr.A, dr.y, dr.x_star, dr.lam_max, dr.z


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


# ----------------------------------------------------------------------------- config errors


@pytest.mark.parametrize(
    "grid, steps, extra, match",
    [
        ({"eta": [0.1], "dnk": [4, 8, 2], "gamma": [1.0]}, 10, {},
         r"\[grid\] gamma: Extra inputs are not permitted"),
        ({"eta": [-0.1], "dnk": [4, 8, 2]}, 10, {}, r"\[grid\] eta: needs values > 0"),
        ({"eta": [0.0], "dnk": [4, 8, 2]}, 10, {}, r"\[grid\] eta: needs values > 0"),
        ({"eta": [], "dnk": [4, 8, 2]}, 10, {}, r"\[grid\] eta: is empty"),
        ({"eta": [0.1], "dnk": [4, 8, 2], "seed": []}, 10, {}, r"\[grid\] seed: is empty"),
        ({"eta": [0.1], "dnk": [9, 8, 2]}, 10, {}, "0 < d < n"),
        ({"eta": [0.1], "dnk": [4, 8, 2], "method": ["adam"]}, 10, {}, "unknown method 'adam'"),
        ({"eta": [0.1], "dnk": [4, 8, 2], "alpha": [1.0, 1.0]}, 10, {}, "repeated"),
        ({"eta": [0.1], "dnk": [4, 8, 2]}, 0, {}, "steps: Input should be greater than or equal"),
        ({"dnk": [4, 8, 2]}, 10, {}, r"\[grid\] eta: Field required"),
        ({"eta": [0.1], "dnk": [4, 8, 2]}, 10, {"record": {"loss_every": 3}}, "divisor"),
        ({"eta": [0.1], "dnk": [4, 8, 2]}, 10, {"colour": 1}, "colour: Extra inputs"),
        # 2 000 000 points of a 200 x 1000 problem with one chunk: far beyond 64 MiB.
        ({"eta": [0.1], "dnk": [200, 1000, 5], "seed": list(range(2000)),
          "alpha": [float(a) for a in range(1000)]}, 10,
         {"chunk_size": 2_000_000, "memory_mb": 64}, "device memory"),
    ],
)
def test_bad_configs_are_refused_before_any_work(tmp_path, grid, steps, extra, match):
    with pytest.raises(ValueError, match=match):
        SweepConfig.from_dict({"steps": steps, "grid": grid, **extra})


def test_bad_config_through_the_command_line(tmp_path, capsys):
    cfg = _write(tmp_path, 'steps = 10\n[grid]\neta = [-1.0]\ndnk = [4, 8, 2]\n')
    assert sweep_main([str(cfg), "--out", str(tmp_path / "out")]) == 2
    assert "[grid] eta: needs values > 0" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing was started
    bad = _write(tmp_path, "steps = [", "bad.toml")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_config(bad)


_CLI_CONFIG = """
steps = 50
prediction = "none"
[grid]  # 512 points of one 20 x 100 problem: 4 cache blocks of 128 rows
alpha = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
eta = [0.01, 0.02, 0.03, 0.04]
init_scale = [0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.5, 2.0]
dnk = [20, 100, 5]
"""


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="CPU device counts")
def test_command_line_shards_over_one_cpu_device_per_core_or_as_asked(tmp_path):
    # Fresh processes: JAX takes the device count only before its first computation.  The
    # batch is 4 blocks: on 1 device, on one per core (default) and on 3 devices (2 blocks
    # on each of two, padded to 2 on the third) the bits are the same.
    cfg = _write(tmp_path, _CLI_CONFIG)
    env = {**os.environ, "XLA_FLAGS": ""}
    runs = {"default": ([], available_cores()), "one": (["--cpu-devices", "1"], 1),
            "three": (["--cpu-devices", "3"], 3)}
    for name, (extra, ndev) in runs.items():
        res = subprocess.run([sys.executable, "-m", "hambias.sweep", str(cfg), "--out",
                              str(tmp_path / name), *extra], cwd=ROOT, env=env,
                             capture_output=True, text=True)
        assert res.returncode == 0, res.stderr
        assert f"on {ndev} × cpu device(s)" in res.stderr, res.stderr
    a = _arrays(tmp_path / "one")
    assert np.isfinite(a["loss"]).sum() >= 256  # (large α·scale·η points diverge, recorded)
    for name in ("default", "three"):
        b = _arrays(tmp_path / name)
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"{name}: {k}")


def test_cpu_devices_request_after_jax_started_is_an_error(tmp_path, capsys):
    jax.devices()  # the backend is up in this process
    cfg = _write(tmp_path, _SHARD_CONFIG)
    assert sweep_main([str(cfg), "--out", str(tmp_path / "out"), "--cpu-devices", "3"]) == 2
    assert "JAX is already initialised" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "examples" / "sweeps").glob("*.toml")),
                         ids=lambda p: p.name)
def test_example_configs_are_valid(path):
    cfg = load_config(path)
    assert cfg.n_points >= 1 and cfg.resolved_chunk_size() >= 1


def test_automatic_chunking_fits_the_memory_budget():
    big = SweepConfig.from_dict({"steps": 10, "memory_mb": 1, "grid": {
        "eta": [0.1], "dnk": [20, 100, 5], "seed": list(range(100)), "alpha": [1.0, 2.0]}})
    c = big.resolved_chunk_size()
    assert 1 <= c < big.n_points
    assert c * big.point_bytes() <= 2**20 < (c + 1) * big.point_bytes()


# ----------------------------------------------------------------------------- engine


# partial: jax.jit as a keyword-only decorator factory needs a newer jax than the lower bound
@partial(jax.jit, static_argnames=("method", "steps"))
def _loop(A, y, x, alpha, eta, beta, *, method, steps):
    d = A.shape[0]

    def body(_, x):
        g = A.T @ (A @ x - y) / d  # one point, matvecs
        if method == "exp":
            return exp_step(x, g, eta, beta)
        if method == "gd":  # GD with coupled weight decay
            return x - eta * (g + beta * x)
        return gd_hyp_step(x, g, eta, alpha, beta, star=method != "hyp")

    return jax.lax.fori_loop(0, steps, body, x)


def _loop_reference(cfg, method, seed, alpha, eta, scale, beta):
    """A plain per-point loop with the iterates kernels and matvecs."""
    A, y, _, _, z = _problem(cfg, seed)
    return np.asarray(_loop(A, y, scale * z, alpha, eta, beta, method=method, steps=cfg.steps))


@pytest.mark.parametrize("shared", [True, False])
def test_batched_runs_equal_per_point_loops(tmp_path, shared):
    methods = ["hyp_star", "hyp", "gd", "exp"] if shared else ["hyp_star", "exp"]
    cfg = _cfg(seed=[3] if shared else [0, 1], beta=[0.0, 0.1], method=methods, chunk_size=64)
    s = run_sweep(cfg, tmp_path / "s", quiet=True)
    assert s.complete and s.n_diverged == 0
    ds = open_sweep(tmp_path / "s", gridded=False)
    rng = np.random.default_rng(0)
    for p in rng.choice(cfg.n_points, size=6, replace=False):
        pt = ds.isel(point=p)
        ref = _loop_reference(cfg, str(pt.method.values), int(pt.seed), float(pt.alpha),
                              float(pt.eta), float(pt.init_scale), float(pt.beta))
        np.testing.assert_allclose(pt.x.values, ref, rtol=0, atol=BATCH_VS_LOOP_ATOL)
        d = cfg.grid["dnk"][0][0]
        A, y = _problem(cfg, int(pt.seed))[:2]
        loss = 0.5 * np.sum((A @ ref - y) ** 2) / d
        np.testing.assert_allclose(pt.loss.values, loss, rtol=1e-10)


# The sweep and run_iterates apply the same step kernels to the same float64 inputs, but in
# different XLA programs (a (B, n) batch with X Aᵀ matmuls vs. one point's matvecs inside
# run_iterates' scan), which fuse and sum in different orders: the results agree to
# round-off accumulated over 300 contracting steps, not bitwise.
DYNAMICS_API_RTOL = 1e-12


def test_batched_results_equal_the_dynamics_api(tmp_path):
    cfg = _cfg(seed=[3], beta=[0.0, 0.1], chunk_size=64)
    run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = open_sweep(tmp_path / "s", gridded=False)
    d, n, k = cfg.grid["dnk"][0]
    A, y, _, _, z = _problem(cfg, 3)
    problem = LinearRegression(A, y)
    for p in range(cfg.n_points):  # every method, α ∈ {0, 2}, x₀ ∈ {0, 0.3z}, β ∈ {0, 0.1}
        pt = ds.isel(point=p)
        method = make_method(str(pt.method.values), eta=float(pt.eta), alpha=float(pt.alpha),
                             beta=float(pt.beta))
        ref = run_iterates(method, problem, float(pt.init_scale) * z, steps=cfg.steps,
                           record_every=cfg.steps, record_x=False)
        assert not bool(ref.diverged) and not bool(pt.diverged)
        x_ref, loss_ref = np.asarray(ref.x), float(ref.loss[-1])
        err = np.linalg.norm(pt.x.values - x_ref)
        assert err <= DYNAMICS_API_RTOL * np.linalg.norm(x_ref), (p, err)
        # f is quadratic: |Δf| ≤ ‖∇f(x)‖‖Δx‖ + λ_max‖Δx‖²/2, the bound checked below.
        dloss = abs(float(pt.loss) - loss_ref)
        grad = np.linalg.norm(A.T @ (A @ x_ref - y)) / d
        assert dloss <= grad * err + float(pt.lam_max) * err**2 / 2 + (
            DYNAMICS_API_RTOL * loss_ref), (p, dloss)
        assert float(pt.loss0) == pytest.approx(float(ref.loss[0]), rel=DYNAMICS_API_RTOL)


def test_divergence_is_recorded_per_point_and_matches_the_stability_boundary(tmp_path):
    # Gradient descent (α = 0) on least squares diverges exactly when η λ_max > 2.
    lam = _problem(SweepConfig.from_dict({"steps": 1, "grid": {"eta": [1.0],
                                                                "dnk": [5, 12, 2]}}), 0)[3]
    etas = [f * 2 / lam for f in (0.5, 0.9, 1.1, 2.0)]
    cfg = SweepConfig.from_dict({"steps": 400, "grid": {
        "eta": etas, "alpha": [0.0], "dnk": [5, 12, 2], "method": ["gd"]}})
    s = run_sweep(cfg, tmp_path / "s", quiet=True)
    assert s.complete and s.n_diverged == 2
    ds = open_sweep(tmp_path / "s", gridded=False)
    div = ds.diverged.values
    crit = stability_boundary(0.0, lam_max=float(ds.lam_max.values[0]), theta_max=1.0)
    np.testing.assert_array_equal(div, ds.eta.values > crit)
    assert np.all(np.isnan(ds.x.values[div])) and np.all(np.isfinite(ds.x.values[~div]))
    assert np.all(ds.divergence_step.values[div] > 0)
    assert np.all(np.isfinite(ds.loss.values[~div]))


# ----------------------------------------------------------------------------- predictions

def test_predictions_satisfy_kkt_and_closed_forms(tmp_path):
    cfg = _cfg(method=["hyp_star", "gd", "exp"], alpha=[0.0, 3.0, -1.0], beta=[0.0, 0.2],
               seed=[0], init_scale=[0.0, 0.3], steps=10, **{"record": {"x": True}})
    run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = open_sweep(tmp_path / "s", gridded=False)
    d, n, k = cfg.grid["dnk"][0]
    A, y, _, _, z = _problem(cfg, 0)
    problem = LinearRegression(A, y)
    for p in range(cfg.n_points):
        pt = ds.isel(point=p)
        method, a, b, s = str(pt.method.values), float(pt.alpha), float(pt.beta), float(
            pt.init_scale)
        if method == "exp":  # the exponential step from x₀ has no Legendre limit (γ = 0)
            assert int(pt.prediction_status) == PRED_NONE
            continue
        if method != "gd" and a < 0 and b == 0:
            # α < 0: a limit exactly when an interpolant lies inside the box |x| < 1/|α|
            inside = problem.box_ratio(np.full(n, 1 / abs(a))) < 1 and np.all(np.abs(a * s * z)
                                                                              < 1)
            assert int(pt.prediction_status) == (PRED_CONVERGED if inside
                                                 else Status.NO_STEADY_STATE)
            if not inside:
                continue
        assert int(pt.prediction_status) == PRED_CONVERGED
        a = 0.0 if method == "gd" else a
        xp = pt.x_pred.values
        if b > 0:  # stationarity of f + β H_α, and the ridge closed form at α = 0
            grad = A.T @ (A @ xp - y) / d + b * xp / (1 + a * np.abs(xp))
            np.testing.assert_allclose(grad, 0.0, atol=KKT_ATOL)
            if a == 0:
                ridge = np.linalg.solve(A.T @ A / d + b * np.eye(n), A.T @ y / d)
                np.testing.assert_allclose(xp, ridge, atol=CLOSED_FORM_ATOL)
        else:  # Ax = y and ∇R(x) − ∇R(x₀) ∈ range(Aᵀ); min-norm closed form at α = 0
            geo = HAMGeometry(a)
            np.testing.assert_allclose(A @ xp, y, atol=KKT_ATOL)
            dphi = np.asarray(geo.mirror_map(xp) - geo.mirror_map(s * z))
            lam = np.linalg.lstsq(A.T, dphi, rcond=None)[0]
            np.testing.assert_allclose(A.T @ lam, dphi, atol=KKT_ATOL)
            if a == 0:
                x0 = s * z
                mn = x0 + A.T @ np.linalg.solve(A @ A.T, y - A @ x0)
                np.testing.assert_allclose(xp, mn, atol=CLOSED_FORM_ATOL)


def test_predictions_are_predict_limit_calls(tmp_path):
    # The sweep stores exactly what predict_limit returns for each point's (geometry, x0, beta):
    # the method's implicit bias (Euclidean for "gd", HAMGeometry(alpha) for "hyp_star"), x0
    # ignored for beta > 0.  Same code on the same float64 inputs, so the match is bitwise; the
    # independent checks of the points (KKT, closed forms) are in
    # test_predictions_satisfy_kkt_and_closed_forms.
    kw = dict(method=["hyp_star", "gd"], alpha=[0.0, 3.0, 300.0], beta=[0.0, 0.2], seed=[0],
              init_scale=[0.0, 0.3], steps=10, record={"x": True})
    run_sweep(_cfg(**kw), tmp_path / "a", quiet=True)
    run_sweep(_cfg(prediction="predict_limit", **kw), tmp_path / "b", quiet=True)
    a, b = open_sweep(tmp_path / "a", gridded=False), open_sweep(tmp_path / "b", gridded=False)
    np.testing.assert_array_equal(a.x_pred.values, b.x_pred.values)  # the two names: one solver
    assert np.all(a.prediction_status.values == PRED_CONVERGED)
    A, y, _, _, z = _problem(_cfg(), 0)
    problem = LinearRegression(A, y)
    for p in range(a.sizes["point"]):
        pt = a.isel(point=p)
        geo = Euclidean() if str(pt.method.values) == "gd" else HAMGeometry(float(pt.alpha))
        ref = predict_limit(geo, problem, float(pt.init_scale) * z, beta=float(pt.beta),
                            solver="newton")
        np.testing.assert_array_equal(pt.x_pred.values, ref.x)
    none = open_sweep(run_sweep(_cfg(prediction="none", **kw), tmp_path / "c", quiet=True).path,
                      gridded=False)
    assert np.all(none.prediction_status.values == PRED_NONE)
    assert np.all(np.isnan(none.x_pred.values)) and np.all(np.isnan(none.prediction_error.values))


def test_long_runs_reach_the_prediction(tmp_path):
    # GD + HYP* converges to the Bregman prediction up to O(η)
    # (docs/theory/implicit-bias.md#implicit-bias).
    cfg = _cfg(method=["hyp_star"], alpha=[1.0], eta=[0.02, 0.04], seed=[0], init_scale=[0.0],
               steps=20000, record={"x": False})
    run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = open_sweep(tmp_path / "s")
    err = ds.prediction_error.values.ravel()
    assert err[0] < 2e-2 and 1.6 < err[1] / err[0] < 2.4  # first order in η


# ----------------------------------------------------------------------------- storage


def test_phase_table_over_alpha_and_scale(tmp_path):
    cfg = _cfg(method=["hyp_star"], steps=50, record={"loss_every": 25})
    run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = open_sweep(tmp_path / "s")
    assert json.loads(ds.attrs["config_json"])["steps"] == 50
    t = phase_table(ds, x="alpha", y="init_scale", value="recovery_error", reduce="mean")
    assert t.values.shape == (2, 2) and np.all(t.counts == 2)
    ref = ds.recovery_error.sel(alpha=2.0, init_scale=0.3).mean().item()
    assert t.values[1, 1] == pytest.approx(ref, rel=1e-15)
    flat = phase_table(open_sweep(tmp_path / "s", gridded=False), x="alpha", y="init_scale",
                       value="recovery_error", reduce="mean")
    np.testing.assert_array_equal(flat.values, t.values)
    with pytest.raises(ValueError, match="unknown coordinate"):
        phase_table(ds, x="gamma", y="alpha", value="loss")


def test_a_different_config_on_the_same_path_is_refused(tmp_path):
    cfg = _cfg(method=["gd"], steps=20, record={})
    run_sweep(cfg, tmp_path / "s", quiet=True)
    again = run_sweep(cfg, tmp_path / "s", quiet=True)
    assert again.chunks_run == 0 and again.chunks_skipped == again.n_chunks and again.complete
    with pytest.raises(ValueError, match=r"different config \(differs in \['steps'\]"):
        run_sweep(_cfg(method=["gd"], steps=21, record={}), tmp_path / "s", quiet=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a hambias sweep"):
        run_sweep(cfg, tmp_path / "other", quiet=True)


_KILL_CONFIG = """
steps = 20000
chunk_size = 2
[grid]
alpha = [0.5, 1.0, 2.0, 4.0]
eta = [0.01, 0.02, 0.03, 0.04]
init_scale = [0.1]
dnk = [4, 10, 2]
seed = [7]
method = ["hyp_star"]
[record]
loss_every = 5000
"""


def _arrays(path):
    ds = open_sweep(path, gridded=False)
    return {k: ds[k].values for k in ds.data_vars}


def test_killed_sweep_resumes_to_identical_results(tmp_path):
    cfg_path = _write(tmp_path, _KILL_CONFIG)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hambias.sweep", str(cfg_path), "--out", str(out), "--quiet"]
    env = {**os.environ, "XLA_FLAGS": ""}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "done").exists() and len(list((out / "done").glob("chunk_*"))) >= 2:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_chunks = json.loads((out / "meta.json").read_text())["n_chunks"]
    done = {p: p.stat().st_mtime_ns for p in (out / "done").glob("chunk_*")}
    assert 2 <= len(done) < n_chunks, "the kill did not land part-way; slow the sweep down"
    with pytest.raises(ValueError, match="incomplete"):
        open_sweep(out)
    res = subprocess.run(cmd[:-1], cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert f"resuming {out}: {len(done)} of {n_chunks} chunks already done" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in done} == done  # done chunks were not recomputed
    jax.config.update("jax_enable_x64", True)
    run_sweep(load_config(cfg_path), tmp_path / "straight", quiet=True)
    a, b = _arrays(out), _arrays(tmp_path / "straight")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


_SHARD_SCRIPT = """
import sys, jax
jax.config.update("jax_enable_x64", True)
import hambias.sweep as sweep
assert len(jax.devices()) == 2, jax.devices()
import hambias.sweep.engine as engine
cfg, layout, used = sweep.load_config(sys.argv[1]), engine.layout, set()
engine.layout = lambda *a: used.add(layout(*a)) or layout(*a)
for block, one, two in zip(("cache", 4, 1, None), sys.argv[2::2], sys.argv[3::2]):
    if block != "cache":  # blocks of 4 or 1 rows, or none (the accelerator layout)
        engine.block_rows = lambda *a: block
    sweep.run_sweep(cfg, one, devices=jax.devices()[:1], quiet=True)
    sweep.run_sweep(cfg, two, quiet=True)
print(sorted(used))
"""

_SHARD_CONFIG = """
steps = 200
chunk_size = 12  # chunk 0 mixes two problems (independent A), chunk 1 has one (shared A)
[grid]
alpha = [0.5, 4.0]
eta = [0.02, 0.05]
init_scale = [0.0, 0.2]
dnk = [6, 9, 3]
seed = [0, 1]
method = ["hyp_star"]
[record]
loss_every = 50
"""


def test_sharded_over_two_cpu_devices_equals_one_device(tmp_path):
    # With the default (cache-sized) blocks these small batches run on one device; blocks
    # of 4 and of 1 rows spread them over both (8 rows = 2 or 8 blocks per device), and a
    # point's bits must not depend on it.  Without blocks (the layout used on accelerators)
    # the batch is split over both devices, as it would be over GPUs.
    cfg_path = _write(tmp_path, _SHARD_CONFIG)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    blocks = ("default", "4", "1", "none")
    runs = [f"{b}_{dev}" for b in blocks for dev in ("one", "two")]
    res = subprocess.run([sys.executable, "-c", _SHARD_SCRIPT, str(cfg_path),
                          *(str(tmp_path / r) for r in runs)],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    layouts = set(ast.literal_eval(res.stdout))  # (devices used, rows/device, rows/block)
    assert {(1, 16, 16), (2, 8, 4), (2, 8, 1), (2, 2, 1), (2, 8, 8), (2, 2, 2)} <= layouts
    for block in blocks:
        a, b = _arrays(tmp_path / f"{block}_one"), _arrays(tmp_path / f"{block}_two")
        assert np.isfinite(a["loss"]).all()
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=f"blocks {block}: {k}")


_MULTIHOST_WORKER = """
import sys, jax
pid, port, cfg, out = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
jax.config.update("jax_enable_x64", True)
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid)
from hambias.sweep import run_sweep
s = run_sweep(cfg, out, quiet=True)
print("process", jax.process_index(), "of", jax.process_count(), "ran", s.chunks_run,
      "complete", s.complete)
"""


def test_two_jax_distributed_processes_equal_one_process(tmp_path):
    # The README's multi-host recipe on one machine: two processes (one CPU device each)
    # joined by jax.distributed share one store and take every other chunk.
    import socket

    cfg_path = _write(tmp_path, _SHARD_CONFIG.replace("chunk_size = 12", "chunk_size = 4"))
    with socket.socket() as sock:
        sock.bind(("localhost", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "XLA_FLAGS": ""}
    procs = [subprocess.Popen([sys.executable, "-c", _MULTIHOST_WORKER, str(pid), str(port),
                               str(cfg_path), str(tmp_path / "two")], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for pid in (0, 1)]
    try:
        outs = [p.communicate(timeout=120) for p in procs]
    finally:  # never leave a process waiting for its peer
        for p in procs:
            p.kill()
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    last = sorted(o.strip().splitlines()[-1] for o, _ in outs)  # gloo also prints to stdout
    assert last == [f"process {i} of 2 ran 2 complete True" for i in (0, 1)], outs
    run_sweep(load_config(cfg_path), tmp_path / "one", quiet=True)
    a, b = _arrays(tmp_path / "one"), _arrays(tmp_path / "two")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("shared", [True, False])
def test_cache_blocked_runs_equal_whole_batch_runs(tmp_path, monkeypatch, shared):
    # The CPU engine runs a batch in blocks of rows that fit in cache.  A block is only a
    # layout: blocks of 8 and 16 rows must give the whole-batch run up to the order in
    # which differently sized matmuls sum (BATCH_VS_LOOP_ATOL), and the same integers.  One
    # chunk of 64 points: one problem and two methods (two shared-A batches of 32 rows) or
    # two problems (one per-point-A batch of 64 rows).
    from hambias.sweep import engine

    cfg = _cfg(seed=[3] if shared else [0, 1], alpha=[0.0, 0.5, 2.0, 8.0], eta=[0.02, 0.05],
               init_scale=[0.0, 0.3], beta=[0.0, 0.1],
               method=["hyp_star", "hyp"] if shared else ["hyp_star"], chunk_size=64)
    whole = 32 if shared else 64
    layout, used = engine.layout, []
    monkeypatch.setattr(engine, "layout", lambda *a: used.append(layout(*a)) or used[-1])
    out = {}
    for rows in (None, 8, 16):
        monkeypatch.setattr(engine, "block_rows", lambda *a, rows=rows: rows or 2**20)
        used.clear()
        run_sweep(cfg, tmp_path / str(rows), quiet=True, devices=jax.local_devices()[:1])
        assert set(used) == {(1, whole, rows or whole)}, used
        out[rows] = _arrays(tmp_path / str(rows))
    for rows in (8, 16):
        for k, ref in out[None].items():
            if ref.dtype.kind == "f":
                np.testing.assert_allclose(out[rows][k], ref, rtol=0, atol=BATCH_VS_LOOP_ATOL,
                                           err_msg=f"{rows}: {k}")
            else:
                np.testing.assert_array_equal(out[rows][k], ref, err_msg=f"{rows}: {k}")


# ----------------------------------------------------------------------------- any method, data


def test_network_gd_and_hyp_star_from_a_data_file_equal_run_iterates(tmp_path):
    # method = ["hyp_star", "mw_gd"], [init] kind = "constant", a data file: every point
    # equals run_iterates of the same method from the same start (hyp_star from
    # init_scale·1, mw_gd from its network's own start), integers exactly.
    p, x_star = hb_sparse(11)
    np.savez(tmp_path / "data.npz", A=np.asarray(p.A), y=np.asarray(p.y), x_star=x_star)
    cfg_path = _write(tmp_path, """
steps = 300
[problem]
file = "data.npz"
[init]
kind = "constant"
[model]
kind = "u2-v2"
scale = 0.1
[grid]
eta = [0.02, 0.05]
alpha = [0.0, 2.0]
init_scale = [0.0, 0.05]
seed = [0, 1]
method = ["hyp_star", "mw_gd"]
[record]
loss_every = 100
""")
    cfg = load_config(cfg_path)
    assert cfg.grid["dnk"] == ((8, 20, 3),)
    run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = open_sweep(tmp_path / "s", gridded=False)
    from hambias import diagonal_network

    net = diagonal_network("u2-v2", 0.1)
    for i in range(ds.sizes["point"]):
        pt = ds.isel(point=i)
        name = str(pt.method.values)
        method = make_method(name, eta=float(pt.eta), alpha=float(pt.alpha), model=net)
        x0 = net.x0(20) if name == "mw_gd" else np.full(20, float(pt.init_scale))
        ref = run_iterates(method, p, x0, steps=300, record_every=100)
        np.testing.assert_allclose(pt.x.values, ref.x, rtol=0, atol=BATCH_VS_LOOP_ATOL)
        # f is quadratic: |Δf| ≤ ‖∇f‖‖Δx‖ + L‖Δx‖²/2 with ‖∇f‖ ≤ √(2Lf) and ‖Δx‖ ≤ √n·atol
        lam, dx = float(pt.lam_max), np.sqrt(20) * BATCH_VS_LOOP_ATOL
        bound = np.sqrt(2 * lam * np.asarray(ref.loss[1:])) * dx + lam * dx**2 / 2
        assert np.all(np.abs(pt.loss_history.values - ref.loss[1:]) <= bound)
        assert int(pt.status) == int(ref.status) == Status.SUCCESS
        rec = np.linalg.norm(ref.x - x_star) / np.linalg.norm(x_star)
        assert float(pt.recovery_error) == pytest.approx(rec, rel=1e-9)
        if name == "mw_gd":  # its prediction: the network's PointwiseProduct(2·scale²)
            np.testing.assert_allclose(pt.x_pred.values,
                                       predict_limit(net.geometry, p).x, rtol=1e-12)


def hb_sparse(seed):
    from hambias import sparse_regression

    p, x_star = sparse_regression(jax.random.key(seed), 8, 20, 3)
    return p, np.asarray(x_star)


def test_float32_and_float64_sweeps_run_the_same_problem(tmp_path):
    # The problem is drawn in float64 and cast: the float32 sweep's A is the float64 A,
    # rounded (it was a different draw, max |A32 − A64| = 5.4).
    kw = {"steps": 50, "grid": {"eta": [0.02], "dnk": [6, 15, 2], "seed": [3]}}
    a64 = draw(SweepConfig.from_dict(kw), 0, 3)
    a32 = draw(SweepConfig.from_dict({**kw, "dtype": "float32"}), 0, 3)
    assert a32.A.dtype == np.float32
    np.testing.assert_array_equal(a32.A, a64.A.astype(np.float32))
    np.testing.assert_array_equal(a32.z, a64.z.astype(np.float32))


def test_minibatch_sweep_points_equal_run_iterates_with_the_same_keys(tmp_path):
    # batch_size = 3 of d = 6 rows: each point's mini-batches are drawn with
    # fold_in(fold_in(key(seed), 2), point), which run_iterates reproduces step for step.
    from hambias.sweep.run import minibatch_keys

    raw = {"steps": 200, "grid": {"eta": [0.02], "alpha": [0.0, 2.0], "init_scale": [0.1],
                                  "dnk": [6, 15, 2], "seed": [0, 1], "method": ["hyp_star", "gd"]}}
    cfg = SweepConfig.from_dict({**raw, "batch_size": 3})
    run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = open_sweep(tmp_path / "s", gridded=False)
    for p in range(ds.sizes["point"]):
        pt = ds.isel(point=p)
        A, y, _, _, z = _problem(cfg, int(pt.seed))
        key = jax.random.wrap_key_data(minibatch_keys([int(pt.seed)], [p])[0])
        method = make_method(str(pt.method.values), eta=0.02, alpha=float(pt.alpha))
        ref = run_iterates(method, LinearRegression(A, y), 0.1 * z, steps=200, record_every=200,
                           batch_size=3, key=key)
        np.testing.assert_allclose(pt.x.values, ref.x, rtol=0, atol=BATCH_VS_LOOP_ATOL)
    assert run_sweep(SweepConfig.from_dict(raw), tmp_path / "f", quiet=True).complete
    assert not np.allclose(open_sweep(tmp_path / "f", gridded=False).x.values, ds.x.values)
