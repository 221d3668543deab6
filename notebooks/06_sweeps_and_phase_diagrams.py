# %% [markdown]
# # 6. Sweeps and phase diagrams
#
# The previous notebooks varied one knob at a time. Real questions have several: how do the
# recovery error and the training time depend on $(\alpha, \text{initial scale})$, or on
# $(\alpha, \eta)$, averaged over random problems? `hambias.sweep` answers them in batch:
#
# * a **config** names the grid axes ($\alpha$, $\eta$, initial scale, $\beta$, problem size
#   $(d, n, k)$, seed, method) and the number of steps;
# * every grid point is one run of GD+HYP\* (or HYP, GD, the exp step) on a seeded
#   `sparse_regression` from $x_0 = s\,z$, $z\sim\mathcal N(0, I/n)$;
# * the points are cut into chunks, each chunk runs as **one** batched `lax.scan`, sharded over
#   all devices (CPU cores or GPUs), and is written to a zarr store with a "done" marker, so a
#   killed sweep resumes where it stopped and ends with the same bits;
# * each point also gets its implicit-bias prediction (docs/theory/implicit-bias.md#implicit-bias,
#   docs/theory/explicit-bias.md#explicit-bias), so the store holds
#   `recovery_error` $=\lVert x_T - x^\star\rVert/\lVert x^\star\rVert$,
#   `prediction_error` $=\lVert x_T - x_{\mathrm{pred}}\rVert/\lVert x_{\mathrm{pred}}\rVert$,
#   the convergence step, divergence flags, and more.
#
# This notebook runs two small grids on the CPU; the last section shows how to run the large
# ones on a GPU.

# %%
import os
import tempfile
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import matplotlib.pyplot as plt
import numpy as np

from hambias.plots import plot_phase, plot_stability_boundary, sweep_phase_diagrams
from hambias.sweep import SweepConfig, open_sweep, phase_table, run_sweep, stability_boundary

QUICK = os.environ.get("HAMBIAS_QUICK", "0") == "1"  # a smaller grid for the test suite
print(f"quick mode: {QUICK}")
workdir = Path(tempfile.mkdtemp(prefix="hambias-sweeps-"))
print(f"stores go to {workdir}; devices: {jax.devices()}")


# %% [markdown]
# ## Phase diagram 1: recovery over $(\alpha, s)$
#
# Notebook 3 predicted *sign anchoring*: with $x_0 = s z$ the large-$\alpha$ limit is sparse only
# if $\alpha s\lesssim 1$. Here the iterates themselves are run over the grid. The step size must
# be stable for the largest $\alpha$: $\eta(1 + \alpha\max\lvert\theta^\star\rvert)\lambda_{\max} < 2$
# (docs/theory/stability.md#stability).

# %%
recovery_raw = {  # the same keys as a TOML file: see examples/sweeps/
    "name": "alpha x init_scale (notebook 6)",
    "steps": 16_000 if QUICK else 40_000,
    "grid": {
        "alpha": [0.1, 10.0, 100.0] if QUICK else [0.1, 1.0, 10.0, 100.0],
        "eta": [1e-3] if QUICK else [5e-4],
        "init_scale": [0.0, 0.1, 3.0] if QUICK else [0.0, 0.01, 0.1, 1.0, 3.0],
        "dnk": [[20, 50, 3]] if QUICK else [[40, 100, 5]],
        "seed": [0] if QUICK else [0, 1, 2],
        "method": ["hyp_star"],
    },
    "record": {"x": True, "conv_tol": 1e-8},
}
recovery = SweepConfig.from_dict(recovery_raw)  # validates every key and value
summary = run_sweep(recovery, workdir / "recovery", quiet=True)
print(f"{summary.n_points} runs in {summary.n_chunks} chunk(s), {summary.seconds:.1f} s, "
      f"{summary.n_diverged} diverged")
ds = open_sweep(workdir / "recovery")
print(list(ds.data_vars))

# %%
rec = phase_table(ds, x="alpha", y="init_scale", value="recovery_error")
pred = phase_table(ds, x="alpha", y="init_scale", value="prediction_error", reduce="max")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.4), layout="constrained")
plot_phase(ax1, rec, cmap="magma",
           title=r"$\|x_T - x^\star\| / \|x^\star\|$ (median over seeds)")
plot_phase(ax2, pred, cmap="cividis",
           title=r"$\|x_T - x_{\mathrm{pred}}\| / \|x_{\mathrm{pred}}\|$ (worst seed)")
plt.show()

# %% [markdown]
# Left: for small initial scales (bottom rows) the error falls with $\alpha$ (the $\ell_2\to\ell_1$
# slide of notebook 3). Moving up, every error grows and the gain from $\alpha$ shrinks until,
# for the largest $s$, it almost vanishes: that is the sign anchoring. Notebook 3's predictions show that the error
# actually *rises* again once $\alpha s$ is large, for $\alpha\gtrsim10^3$; with iterates that
# range needs a step $\eta\lesssim 10^{-4}$ and millions of steps: a job for the GPU (last
# section). Right: every run ends at its own prediction up to the $O(\eta)$ discretisation
# error, which is what makes the predictions a trustworthy shortcut for large grids.
#
# ## Phase diagram 2: stability over $(\alpha, \eta)$
#
# Near its limit, GD+HYP behaves like GD with the larger step $\eta(1 + \alpha\lvert\theta^\star\rvert)$,
# so its linearisation at the limit is stable only for $\eta < \eta_{\mathrm{crit}}(\alpha) = 2/\bigl(\lambda_{\max}(1 + \alpha\max_i\lvert\theta^\star_i\rvert)\bigr)$
# (`stability_boundary`). We sweep $\eta$ on a log grid, record the fraction of diverged runs
# and the convergence step, and draw $\eta_{\mathrm{crit}}$ on top.

# %%
stability = SweepConfig.from_dict({
    "name": "alpha x eta (notebook 6)",
    "steps": 1_500 if QUICK else 4_000,
    "grid": {
        "alpha": [0.0, 1.0, 5.0, 20.0] if QUICK else [0.0, 1.0, 2.0, 5.0, 10.0, 20.0],
        "eta": list(np.round(np.logspace(-2.5, -0.5, 5 if QUICK else 9), 5)),
        "dnk": [[10, 30, 3]] if QUICK else [[20, 60, 4]],
        "seed": [0] if QUICK else [0, 1],
        "method": ["hyp_star"],
    },
    "record": {"x": False, "conv_tol": 1e-8},
})
summary2 = run_sweep(stability, workdir / "stability", quiet=True)
ds2 = open_sweep(workdir / "stability")
print(f"{summary2.n_points} runs, {summary2.seconds:.1f} s, {summary2.n_diverged} diverged")

div = phase_table(ds2, x="alpha", y="eta", value="diverged", reduce="fraction")
conv = phase_table(ds2, x="alpha", y="eta", value="conv_step")
flat = open_sweep(workdir / "stability", gridded=False)
alphas = div.x
lam = np.array([np.nanmedian(flat["lam_max"].values[flat["alpha"].values == a]) for a in alphas])
th = np.array([np.nanmedian(flat["theta_max"].values[flat["alpha"].values == a]) for a in alphas])
eta_crit = stability_boundary(alphas, lam_max=lam, theta_max=th)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
plot_phase(ax1, div, cmap="Reds", norm="linear", vmin=0.0, vmax=1.0, title="fraction diverged")
plot_phase(ax2, conv, nan_label="no converged run", title="steps to converge")
for ax in (ax1, ax2):
    plot_stability_boundary(ax, alphas, eta_crit)
plt.show()

# %% [markdown]
# At $\alpha = 0$ the line is GD's classic $2/\lambda_{\max}$, and the runs just above it
# diverge. For $\alpha > 0$ every run below the line converges, but the line is
# **conservative**: it linearises at the limit with the largest $\lvert\theta^\star_i\rvert$, while
# the iterates spend most of the run at smaller weights, so steps a few times larger still work.
# Either way, a larger $\alpha$ forces a smaller step, because the effective step
# $\eta(1 + \alpha\lvert\theta\rvert)$ grows with the weights. (The line is clipped to the grid.)
#
# ## The standard diagrams in one call
#
# `sweep_phase_diagrams` draws whichever of the three standard diagrams a stored sweep allows
# (recovery over $(\alpha, s)$, recovery over $(n, k)$ from the size axis, steps to converge over
# $(\alpha, \eta)$ with the boundary), fixing every other axis (smallest $\eta$, $s$, $\beta$;
# largest $\alpha$; first size) and writing a PNG and a JSON sidecar with the sweep's config digest
# for each. The stability sweep has one size and one initial scale, so only the $(\alpha, \eta)$
# diagram applies. From a shell: `hambias phase PATH --out figures/sweeps`.

# %%
for path in sweep_phase_diagrams(workdir / "stability", workdir / "figures"):
    print(path.name, "+", path.with_suffix(".json").name)

# %% [markdown]
# ## The large sweeps, on a GPU
#
# The grids above are tiny. The same code runs the paper-sized ones: write the config as TOML
# (see `examples/sweeps/`, e.g. `alpha_scale.toml`) and start it from the command line on the
# machine with the accelerator:
#
# ```bash
# pip install -e '.[gpu]'                       # jax with CUDA
# hambias sweep examples/sweeps/alpha_scale.toml --out sweeps/alpha_scale
# ```
#
# (`python -m hambias.sweep CONFIG --out PATH` is the same command without the entry point.)
#
# The batch of every chunk is sharded over all visible devices (use `memory_mb` in the config to
# size chunks to the GPU's memory; float32 is available via `dtype = "float32"`). If the job is
# killed, the same command resumes it; a different config on the same `--out` path is refused.
# Copy the store back and open it here with `open_sweep("sweeps/alpha_scale")`. On a CPU-only
# machine the command exposes every core as a JAX device (`--cpu-devices N` to choose): 2.4–2.6x
# faster on two cores than one device with two threads (measured on a 2-core machine), and the
# same bits. In this notebook JAX is already running, so `run_sweep` uses the devices it has.
#
# ## Exercises
#
# **Exercise 1.** Call `run_sweep` again on `workdir / "recovery"` with the same config. What
# does the summary say, and are the stored results bit-identical? Then try a config that differs
# in one value on the same path.
#
# **Exercise 2.** For each $\alpha$ of the stability sweep, find the largest $\eta$ at which no
# run diverged and compare it with $\eta_{\mathrm{crit}}(\alpha)$. Is the linearised criterion
# conservative or optimistic?
#
# **Exercise 3.** Add the method `"hyp"` to the recovery grid (a new store path) and compare the
# HYP and HYP\* phase diagrams.
#
# ## Solutions
#
# The solution cells below are collapsed in Jupyter (click to expand); try first.

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 1: every chunk is found done and skipped; the data is untouched.
again = run_sweep(recovery, workdir / "recovery", quiet=True)
print(f"chunks run {again.chunks_run}, skipped {again.chunks_skipped}")
same = open_sweep(workdir / "recovery")
print("identical:", bool(np.array_equal(same["recovery_error"].values,
                                          ds["recovery_error"].values, equal_nan=True)))
changed = SweepConfig.from_dict({**recovery_raw, "steps": recovery.steps + 1})
try:
    run_sweep(changed, workdir / "recovery", quiet=True)
except ValueError as err:
    print("refused:", str(err)[:120], "...")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 2: the boundary is a linearisation at the limit; far from it the weights are smaller
# and the effective step too, so runs just above the line may still converge (and rarely, large
# transients can make runs just below it fail).
for j, a in enumerate(alphas):
    ok = div.y[div.values[:, j] == 0]
    largest = ok.max() if ok.size else float("nan")
    print(f"alpha={a:5g}: largest stable eta on the grid {largest:.4g}, eta_crit {eta_crit[j]:.4g}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 3: the same flow and the same limits (docs/theory/sign-choice.md#sign-choice): the
# two diagrams agree up to O(η).
both = SweepConfig.from_dict({**recovery_raw,
                              "grid": {**recovery_raw["grid"], "method": ["hyp_star", "hyp"]}})
run_sweep(both, workdir / "recovery_both", quiet=True)
ds_both = open_sweep(workdir / "recovery_both")
t_star = phase_table(ds_both, x="alpha", y="init_scale", value="recovery_error",
                     where={"method": "hyp_star"})
t_hyp = phase_table(ds_both, x="alpha", y="init_scale", value="recovery_error",
                    where={"method": "hyp"})
print(f"largest difference between the HYP and HYP* diagrams: "
      f"{np.nanmax(np.abs(t_star.values - t_hyp.values)):.1e}")

# %% [markdown]
# ## Clean up
#
# The stores of this notebook were written to a temporary folder; remove it (skip this cell to
# keep exploring them with `open_sweep`).

# %%
import shutil

shutil.rmtree(workdir, ignore_errors=True)
