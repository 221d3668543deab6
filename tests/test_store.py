"""Sweeps lose nothing and read back nothing wrong: concurrency, integrity, validated configs.

Each failure a user's cluster produced is reproduced here: a second writer that created
the store over finished chunks, a deleted chunk read as fill values, a flipped byte or a
truncated chunk read as results, a grid too large for its store, coerced config values,
an unwritable check folder, a resumed summary that forgot its diverged points, a Ctrl-C
traceback.  Concurrency uses the store's documented test hook
(``HAMBIAS_SWEEP_TEST_STOP``), which stops a writer with SIGSTOP at a chosen point.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from hambias.cli import sweep_main
from hambias.sweep import SweepConfig, load_config, open_sweep, run_sweep
from hambias.sweep.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]

_CONFIG = """
steps = 200
chunk_size = 8
[grid]
alpha = [0.0, 1.0, 10.0]
eta = [0.05, 5.0]
init_scale = [0.0, 0.1]
dnk = [[4, 10, 2]]
seed = [0, 1]
method = ["hyp_star", "gd", "exp"]
[record]
loss_every = 50
"""


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _arrays(path):
    ds = open_sweep(path, gridded=False)
    return {k: ds[k].values for k in ds.data_vars}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def _cmd(cfg, out):
    return [sys.executable, "-m", "hambias.sweep", str(cfg), "--out", str(out), "--quiet",
            "--cpu-devices", "1"]


def _wait_stopped(proc, timeout=120):
    """Wait until a child has stopped itself (SIGSTOP); fail if it exits instead."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/stat") as f:
            state = f.read().split(")")[-1].split()[0]
        if state == "T":
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    raise AssertionError("the writer did not reach its stop point")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tiny sweep, run once without interference."""
    tmp = tmp_path_factory.mktemp("ref")
    cfg = _write(tmp, _CONFIG)
    jax.config.update("jax_enable_x64", True)
    run_sweep(load_config(cfg), tmp / "straight", quiet=True)
    return _arrays(tmp / "straight")


# -- two writers ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_second_writer_paused_at_creation_erases_nothing(tmp_path, reference):
    # Process B finds no store and builds one, then stops before moving it into place; A
    # creates its store and finishes; B continues: its rename fails, it uses A's store,
    # finds every chunk done and erases nothing (it used to re-create the store over A's
    # chunks: 72 points of NaN read back as complete).
    cfg, out = _write(tmp_path, _CONFIG), tmp_path / "s"
    env = {**os.environ, "XLA_FLAGS": ""}
    b = subprocess.Popen(_cmd(cfg, out), cwd=ROOT, env={**env, "HAMBIAS_SWEEP_TEST_STOP": "create"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_stopped(b)
    assert not out.exists()
    a = subprocess.run(_cmd(cfg, out), cwd=ROOT, env=env, capture_output=True, text=True)
    assert a.returncode == 0, a.stderr
    b.send_signal(signal.SIGCONT)
    _, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    _same(_arrays(out), reference)
    assert not list(tmp_path.glob(".s.building-*"))  # B removed what it had built


@pytest.mark.slow
def test_a_second_writer_on_a_running_store_is_refused(tmp_path, reference):
    cfg, out = _write(tmp_path, _CONFIG), tmp_path / "s"
    env = {**os.environ, "XLA_FLAGS": ""}
    a = subprocess.Popen(_cmd(cfg, out), cwd=ROOT, env={**env, "HAMBIAS_SWEEP_TEST_STOP": "chunk"},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_stopped(a)  # A holds the lock, one chunk written
    b = subprocess.run(_cmd(cfg, out), cwd=ROOT, env=env, capture_output=True, text=True)
    assert b.returncode == 2
    assert "another process is writing" in b.stderr and f"pid {a.pid}" in b.stderr
    a.send_signal(signal.SIGCONT)
    _, err = a.communicate(timeout=120)
    assert a.returncode == 0, err
    _same(_arrays(out), reference)


# -- damaged data is never read as results -----------------------------------------------------
def _damage_cases(out):
    """(description, function that damages chunk 3) for the three kinds of damage."""
    diverged = out / "data.zarr" / "diverged" / "c" / "3"
    x = out / "data.zarr" / "x" / "c" / "3" / "0"

    def flip():
        b = bytearray(x.read_bytes())
        b[len(b) // 2] ^= 0x01
        x.write_bytes(bytes(b))

    def truncate():
        x.write_bytes(x.read_bytes()[:-7])

    return [("missing", diverged.unlink, "'diverged', chunk 3: its file is missing"),
            ("flipped", flip, "'x', chunk 3: ValueError: Stored and computed checksum"),
            ("truncated", truncate, "'x', chunk 3")]


@pytest.mark.parametrize("case", [0, 1, 2], ids=["missing", "flipped", "truncated"])
def test_damaged_chunks_are_refused_then_recomputed(tmp_path, reference, case):
    cfg = load_config(_write(tmp_path, _CONFIG))
    out = tmp_path / "s"
    run_sweep(cfg, out, quiet=True)
    _, damage, message = _damage_cases(out)[case]
    damage()
    with pytest.raises(ValueError, match=rf"damaged: array {message}"):
        open_sweep(out)
    s = run_sweep(cfg, out, quiet=True)
    assert s.chunks_repaired == 1 and s.chunks_run == 1 and s.complete
    _same(_arrays(out), reference)  # bit for bit the uninterrupted run


# -- what a config may not be --------------------------------------------------------------------
@pytest.mark.parametrize("extra, where", [
    ('[record]\nx = "false"', r"\[record\] x: Input should be a valid boolean \(got 'false'\)"),
    ("[record]\nloss_every = true", r"\[record\] loss_every: Input should be a valid integer"),
    ("problem = 5", r"problem: Input should be a valid dictionary"),
    ('record = "yes"', r"record: Input should be a valid dictionary"),
    ("steps = 1000000000000", r"steps: Input should be less than or equal to 2147483647"),
])
def test_config_values_are_not_coerced(tmp_path, extra, where):
    text = 'steps = 10\n[grid]\neta = [0.1]\ndnk = [4, 8, 2]\n'
    if extra.startswith("steps"):
        text = text.replace("steps = 10\n", extra + "\n")
    elif extra.startswith("["):
        text += extra + "\n"
    else:
        text = extra + "\n" + text
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"{str(path)}: {where}"):
        load_config(path)


def test_a_grid_too_large_for_its_store_is_refused_before_anything_is_written(tmp_path):
    # 10⁹ points: the store would need ~150 GB; it used to be created and then die with a
    # MemoryError in the point table.
    cfg = SweepConfig.from_dict({"steps": 10, "record": {"x": False}, "grid": {
        "eta": [0.1], "dnk": [4, 8, 2], "seed": list(range(1000)),
        "alpha": [float(a) for a in range(1000)], "init_scale": [i / 1000 for i in range(1000)]}})
    assert cfg.n_points == 10**9
    with pytest.raises(ValueError, match=r"store would need about .* GiB \(1000000000 points\)"):
        run_sweep(cfg, tmp_path / "huge", quiet=True)
    assert not (tmp_path / "huge").exists() and not list(tmp_path.iterdir())


# -- the command lines ------------------------------------------------------------------------
def test_check_refuses_an_unwritable_folder_before_running(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the folder should be")
    t = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "hambias", "check", "--quick", "--out",
                          str(blocked / "report")], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2 and "cannot write to the output folder" in res.stderr
    assert "[1/" not in res.stdout  # no check was started
    assert time.monotonic() - t < 30


def test_resumed_summary_counts_the_stored_divergences(tmp_path, reference):
    cfg = load_config(_write(tmp_path, _CONFIG))
    first = run_sweep(cfg, tmp_path / "s", quiet=True)
    again = run_sweep(cfg, tmp_path / "s", quiet=True)
    assert first.n_diverged == again.n_diverged == int(reference["diverged"].sum()) > 0
    assert again.chunks_run == 0


def test_ctrl_c_prints_one_line(tmp_path):
    cfg = _write(tmp_path, _CONFIG.replace("steps = 200", "steps = 400000"))
    proc = subprocess.Popen(_cmd(cfg, tmp_path / "s")[:-3] + ["--cpu-devices", "1"], cwd=ROOT,
                            env={**os.environ, "XLA_FLAGS": ""}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "s" / "meta.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert "interrupted; the same command resumes" in err and "Traceback" not in err


def test_a_bad_config_changes_no_process_state(tmp_path, capsys):
    # sweep_main validates the config before it asks JAX for CPU devices
    bad = _write(tmp_path, "steps = 10\n[grid]\neta = [-1.0]\ndnk = [4, 8, 2]\n")
    before = jax.config.jax_num_cpu_devices
    assert sweep_main([str(bad), "--out", str(tmp_path / "o"), "--cpu-devices", "3"]) == 2
    assert jax.config.jax_num_cpu_devices == before
    assert "[grid] eta: needs values > 0" in capsys.readouterr().err


# -- reading at scale -------------------------------------------------------------------------
_LAZY_SCRIPT = """
import resource, sys
import numpy as np
from hambias.sweep import open_sweep, phase_table
path, budget = sys.argv[1], int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
open_sweep(path, gridded=False, lazy=True, verify=False)  # start zarr's I/O thread first
# the limit: what this process has mapped now, plus the budget
with open("/proc/self/statm") as f:
    mapped = int(f.read().split()[0]) * resource.getpagesize()
resource.setrlimit(resource.RLIMIT_AS, (mapped + budget, hard))
ds = open_sweep(path, gridded=False, lazy=True)
t = phase_table(ds, x="alpha", y="init_scale", value="recovery_error", reduce="mean")
print(repr(t.values.tolist()) + "|" + repr(t.counts.tolist()))
try:
    open_sweep(path, gridded=False)  # loading it all cannot fit
    print("LOADED")
except MemoryError:
    print("MEMORYERROR")
"""


@pytest.mark.slow
def test_a_store_four_times_larger_than_memory_opens_lazily(tmp_path):
    # 16384 points with two 1200-float iterates each: 300 MB of results.  A process limited
    # to 64 MiB beyond what it had mapped opens it lazily and reduces it to a phase table
    # chunk by chunk (and cannot load it whole: the negative control).
    from hambias.sweep import phase_table
    from hambias.sweep.store import atomic_write, marker, prepare_store

    cfg = SweepConfig.from_dict({"steps": 1, "chunk_size": 1024, "grid": {
        "eta": [0.1], "dnk": [10, 1200, 5], "alpha": [float(a) for a in range(16)],
        "init_scale": [i / 32 for i in range(32)], "seed": list(range(32))}})
    out = tmp_path / "big"
    meta = prepare_store(cfg, out)
    import zarr

    g = zarr.open_group(str(out / "data.zarr"), mode="r+")
    rng = np.random.default_rng(0)
    chunk = meta["chunk_size"]
    with zarr.config.set({"array.write_empty_chunks": True}):  # as run_sweep: every chunk
        for c in range(meta["n_chunks"]):
            lo, hi = c * chunk, min(cfg.n_points, (c + 1) * chunk)
            for name in ("x", "x_pred"):
                g[name][lo:hi] = rng.standard_normal((hi - lo, 1200))
            for name in ("recovery_error", "loss", "loss0", "prediction_error", "lam_max",
                         "theta_max"):
                g[name][lo:hi] = rng.random(hi - lo)
            for name, v in (("conv_step", 1), ("status", 0), ("diverged", False),
                            ("divergence_step", -1), ("prediction_status", 0)):
                g[name][lo:hi] = np.full(hi - lo, v, dtype=g[name].dtype)
            atomic_write(marker(out, c), "")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    budget = 64 * 2**20
    assert size >= 4 * budget
    res = subprocess.run([sys.executable, "-c", _LAZY_SCRIPT, str(out), str(budget)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    table, loaded = res.stdout.strip().splitlines()
    assert loaded == "MEMORYERROR"
    ref = phase_table(open_sweep(out, gridded=False, lazy=True, verify=False), x="alpha",
                      y="init_scale", value="recovery_error", reduce="mean")
    assert table == repr(ref.values.tolist()) + "|" + repr(ref.counts.tolist())
