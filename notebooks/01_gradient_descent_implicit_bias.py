# %% [markdown]
# # 1. The implicit bias of gradient descent
#
# An underdetermined regression has **many** exact solutions. Gradient descent finds one of
# them without being told which. This notebook shows *which* one, and *why*: the answer is a
# geometric fact about the directions gradient descent can move in. Everything later in this
# series (mirror flows, HAM, sparsity) generalises this one picture.
#
# **Set-up** (docs/theory/setting.md#least-squares). $A \in \mathbb{R}^{d\times n}$ with $d < n$
# samples, full row rank, and the loss
# $$ f(x) = \frac{1}{2d}\,\lVert Ax - y\rVert^2, \qquad \nabla f(x) = \frac{1}{d} A^\top (Ax - y). $$
# Every point of the affine subspace $\{x : Ax = y\}$ (dimension $n - d$) has zero loss.
# Gradient descent from $x_0$ with step $\eta$ iterates $x_{k+1} = x_k - \eta \nabla f(x_k)$.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import hambias as hb
from hambias.iterates import run_iterates
from hambias.methods import GD, OptaxMethod

QUICK = os.environ.get("HAMBIAS_QUICK", "0") == "1"  # small problems for the test suite
print(f"quick mode: {QUICK}")
key = jax.random.key(7)

# %% [markdown]
# ## A picture in two dimensions
#
# One equation, two unknowns: $x_1 + 2x_2 = 2$. The solutions form a line. We start gradient
# descent from a few points and watch where it goes.

# %%
line = hb.LinearRegression(np.array([[1.0, 2.0]]), np.array([2.0]))
eta_2d = 0.5 / float(line.lipschitz())
starts = np.array([[0.0, 0.0], [2.5, 2.0], [-1.5, 1.8], [1.0, -1.5]])
paths = [
    run_iterates(GD(eta_2d), line, x0, steps=60, record_every=1).xs for x0 in starts
]

fig, ax = plt.subplots(figsize=(5, 5))
s = np.linspace(-2.5, 3.5, 2)
ax.plot(s, (2 - s) / 2, "k-", lw=1, label="solutions $x_1 + 2x_2 = 2$")
for x0, xs in zip(starts, paths):
    xs = np.asarray(xs)
    ax.plot(xs[:, 0], xs[:, 1], ".-", ms=3, alpha=0.8)
    ax.plot(*x0, "o", color="grey")
x_mn = np.asarray(line.min_norm_interpolant())
ax.plot(*x_mn, "r*", ms=14, label="min-norm interpolant")
ax.set(xlim=(-2.5, 3.5), ylim=(-2, 3), aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
ax.set_title("GD moves perpendicular to the solution line")
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# Every path is a straight segment **perpendicular** to the line of solutions; from the
# origin GD lands on the solution of smallest norm (the red star).
#
# ## Why: the iterates never leave $x_0 + \mathrm{range}(A^\top)$
#
# Each step adds $-\eta\nabla f(x_k) = -\tfrac{\eta}{d}A^\top(Ax_k - y)$, a vector in the row
# space $\mathrm{range}(A^\top)$. Hence $x_k - x_0 \in \mathrm{range}(A^\top)$ for all $k$. The
# limit (which exists for $\eta < 2/L$, $L = \lambda_{\max}(A^\top A/d)$) interpolates, so it is
# the unique point of
# $$ \bigl(x_0 + \mathrm{range}(A^\top)\bigr) \cap \{Ax = y\}
#    = \Bigl\{\, x_0 + A^\top (AA^\top)^{-1}(y - Ax_0) \,\Bigr\}. $$
# That point is the orthogonal projection of $x_0$ onto the solution set: it solves
# $$ x_\infty = \arg\min_{Ax = y} \tfrac12\lVert x - x_0\rVert_2^2 ,$$
# and for $x_0 = 0$ it is the **minimum-$\ell_2$-norm interpolant**. Nothing in the loss asked
# for a small norm: the bias comes from the algorithm (its geometry is Euclidean).
#
# ## A real underdetermined problem
#
# $d = 20$ samples, $n = 100$ unknowns, a 5-sparse ground truth $x^\star$
# (`hambias.sparse_regression`).

# %%
d, n, k = (10, 40, 3) if QUICK else (20, 100, 5)
steps = 200 if QUICK else 300  # GD converges linearly: a few hundred steps suffice here
long_steps = 2_000  # for the slower runs of the exercises
key, sub = jax.random.split(key)
problem, x_star = hb.sparse_regression(sub, d, n, k)
eta = 1.0 / float(problem.lipschitz())

gd0 = run_iterates(GD(eta), problem, jnp.zeros(n), steps=steps, record_every=2)
x_mn = problem.min_norm_interpolant()
dist = np.linalg.norm(np.asarray(gd0.xs) - np.asarray(x_mn), axis=1)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.semilogy(np.asarray(gd0.steps), dist)
ax1.set(xlabel="step $k$", ylabel=r"$\|x_k - x_{\min\ell_2}\|_2$", title="GD from $x_0 = 0$")
ax2.stem(np.asarray(x_star), linefmt="C1-", markerfmt="C1o", basefmt="k-", label="truth $x^\\star$")
ax2.plot(np.asarray(gd0.x), "C0.", label="GD limit")
ax2.set(xlabel="coordinate $i$", title="GD finds the min-norm solution, not the sparse one")
ax2.legend()
plt.tight_layout()
plt.show()
print(f"distance to the min-norm interpolant: {dist[-1]:.2e}")
print(f"relative distance to the sparse truth: "
      f"{float(jnp.linalg.norm(gd0.x - x_star) / jnp.linalg.norm(x_star)):.2f}")

# %% [markdown]
# The loss is zero at both $x^\star$ and the GD limit; GD spreads the weight over all
# coordinates because that is what the smallest $\ell_2$ norm does. Getting the sparse
# solution needs a different *geometry* (notebooks 2 and 3).
#
# ## Starting somewhere else
#
# From $x_0 \neq 0$ the limit is $x_0$ plus the correction $A^\top(AA^\top)^{-1}(y - Ax_0)$:
# whatever part of $x_0$ lies in the null space of $A$ is never touched. We check this by
# splitting $x_k - x_0$ into its row-space and null-space parts with an orthonormal basis
# $Q$ of $\mathrm{range}(A^\top)$.

# %%
key, sub = jax.random.split(key)
x0 = jax.random.normal(sub, (n,)) / np.sqrt(n)
gd1 = run_iterates(GD(eta), problem, x0, steps=steps, record_every=2)
Q, _ = np.linalg.qr(np.asarray(problem.A).T)  # columns: orthonormal basis of range(Aᵀ)
delta = np.asarray(gd1.xs) - np.asarray(x0)
null_part = np.linalg.norm(delta - (delta @ Q) @ Q.T, axis=1)
row_part = np.linalg.norm(delta @ Q, axis=1)
pred = problem.min_norm_interpolant(x0)

fig, ax = plt.subplots(figsize=(6, 3.8))
ax.semilogy(np.asarray(gd1.steps), row_part, label=r"row-space part of $x_k - x_0$")
ax.semilogy(np.asarray(gd1.steps), np.maximum(null_part, 1e-17), label="null-space part")
ax.semilogy(np.asarray(gd1.steps),
            np.linalg.norm(np.asarray(gd1.xs) - np.asarray(pred), axis=1),
            "--", label=r"$\|x_k - (x_0 + \mathrm{proj})\|$")
ax.set(xlabel="step $k$", title="GD from a random $x_0$")
ax.legend()
plt.show()
print(f"largest null-space drift: {null_part.max():.1e} (round-off)")
print(f"final distance to x0 + projection: {float(jnp.linalg.norm(gd1.x - pred)):.1e}")

# %% [markdown]
# The null-space part stays at round-off level for the whole run; the row-space part
# converges to the correction that makes $x$ interpolate. So the limit depends on
# where we start, and in the simplest possible way.
#
# **Take-away.** GD $\Leftrightarrow$ Euclidean geometry $\Leftrightarrow$ the bias
# $\arg\min_{Ax=y}\lVert x - x_0\rVert_2$. Notebook 2 changes the geometry.
#
# ## Exercises
#
# **Exercise 1.** Does the limit depend on the step size? Run GD from $x_0 = 0$ with
# $\eta = 0.2/L$ and $\eta = 1.8/L$ and compare both limits with the min-norm interpolant.
# What happens for $\eta = 2.1/L$?
#
# **Exercise 2.** Momentum (heavy ball) also moves only along gradients. Use
# `OptaxMethod(optax.sgd(eta, momentum=0.9))` and check that it reaches the same point.
# Then try `optax.adam(1e-3)`: is the limit still the min-norm interpolant? Why not?
#
# **Exercise 3.** Rescale the features: run GD on $A D$ with $D = \mathrm{diag}(D_{ii})$,
# $D_{ii} > 0$, and map the result back with $x = Dz$. Show that $x$ now minimises
# $\lVert D^{-1}x\rVert_2$ over the solutions: a reparametrisation is a change of geometry.
#
# ## Solutions
#
# The solution cells below are collapsed in Jupyter (click to expand); try first.

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 1: the limit does not depend on η as long as GD converges (η < 2/L).
L = float(problem.lipschitz())
for factor in (0.2, 1.8, 2.1):
    run = run_iterates(GD(factor / L), problem, jnp.zeros(n), steps=long_steps)
    if run.diverged:
        print(f"eta = {factor}/L: {run.message}")
    else:
        err = float(jnp.linalg.norm(run.x - x_mn))
        print(f"eta = {factor}/L: distance to min-norm {err:.1e}")
# η = 2.1/L: the component along the top singular vector is multiplied by |1 − ηL| > 1 per step.

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 2: momentum keeps x_k − x_0 in range(Aᵀ) (it sums past gradients), Adam does not
# (its per-coordinate scaling leaves range(Aᵀ)), so Adam lands on another interpolant.
import optax

for name, tx in [("heavy ball", optax.sgd(0.5 * eta, momentum=0.9)), ("adam", optax.adam(1e-3))]:
    run = run_iterates(OptaxMethod(tx), problem, jnp.zeros(n), steps=long_steps)
    print(f"{name:10s}: loss {float(problem.loss(run.x)):.1e}, "
          f"distance to min-norm {float(jnp.linalg.norm(run.x - x_mn)):.1e}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 3: GD on z for A D z = y ends at z = argmin ‖z‖ s.t. ADz = y, i.e. x = Dz minimises
# ‖D⁻¹x‖ over Ax = y.  The weighted min-norm solution is x = D² Aᵀ(A D² Aᵀ)⁻¹ y.
key, sub = jax.random.split(key)
scales = jnp.exp(jax.random.normal(sub, (n,)))
scaled = hb.LinearRegression(problem.A * scales, problem.y)
z = run_iterates(GD(1.0 / float(scaled.lipschitz())), scaled, jnp.zeros(n), steps=long_steps).x
x_scaled = scales * z
AD2 = problem.A * scales**2
x_weighted = AD2.T @ jnp.linalg.solve(AD2 @ problem.A.T, problem.y)
print(f"distance to the weighted min-norm solution: "
      f"{float(jnp.linalg.norm(x_scaled - x_weighted)):.1e}")
print(f"distance to the plain min-norm solution:    {float(jnp.linalg.norm(x_scaled - x_mn)):.2f}")
