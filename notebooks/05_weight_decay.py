# %% [markdown]
# # 5. Weight decay: explicit regularisation replaces the implicit bias
#
# So far the answer was decided by the **start** $x_0$ and the **geometry**: with $\beta = 0$
# the HAM flow ends at $\arg\min_{Ax=y}D_{R_\alpha}(x, x_0)$. HAM's hyperbolic step also has a
# decay term $\beta$,
# $$ \theta_{k+1} = \theta_{k+\frac12}\odot\exp\bigl(-\eta(\alpha\,\mathrm{sign}(\theta_{k+\frac12})\odot g_k + \beta)\bigr),
#    \qquad \dot\theta = -(1+\alpha\lvert\theta\rvert)\odot\nabla f(\theta) - \beta\theta . $$
# With $\beta > 0$ the story changes completely (our derivation,
# docs/theory/explicit-bias.md#explicit-bias):
# the flow is the Riemannian gradient flow, in the same metric $1 + \alpha\lvert\theta\rvert$, of
# $$ F(\theta) = f(\theta) + \beta H_\alpha(\theta), \qquad
#    H_\alpha(\theta) = \sum_i\frac{\alpha\lvert\theta_i\rvert - \log(1 + \alpha\lvert\theta_i\rvert)}{\alpha^2}, $$
# because $(1 + \alpha\lvert\theta\rvert)\,H_\alpha'(\theta) = \theta$. $H_\alpha$ is convex, so
# for least squares the limit is the unique minimiser of $F$: **it does not depend on $x_0$**,
# and it no longer interpolates. The regulariser interpolates between two classics:
# $$ H_\alpha(\theta)\xrightarrow{\alpha\to0}\tfrac12\lVert\theta\rVert_2^2\ \ \text{(ridge, weight }\beta),
#    \qquad \alpha H_\alpha(\theta)\xrightarrow{\alpha\to\infty}\lVert\theta\rVert_1\ \
#    \text{(LASSO, }\lambda = \beta/\alpha). $$

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import hambias as hb
from hambias import plots as hp
from hambias.iterates import run_iterates
from hambias.methods import GD, GDHyp
from hambias.predict import lasso, predict_limit, ridge

QUICK = os.environ.get("HAMBIAS_QUICK", "0") == "1"  # smaller problem and sweeps for tests
print(f"quick mode: {QUICK}")
d, n, k = (10, 30, 3) if QUICK else (20, 60, 4)
key = jax.random.key(5)
problem, x_star = hb.sparse_regression(key, d, n, k)
L = float(problem.lipschitz())


def rel(x, ref):
    """Relative ℓ2 distance ‖x − ref‖ / ‖ref‖."""
    return float(np.linalg.norm(np.asarray(x) - np.asarray(ref)) / np.linalg.norm(ref))


def H(theta, alpha):
    """The explicit regulariser H_α of one coordinate, for plotting.

    See docs/theory/explicit-bias.md#h-alpha.
    """
    u = alpha * np.abs(theta)
    return (u - np.log1p(u)) / alpha**2


# %% [markdown]
# ## The regulariser from ridge to LASSO
#
# Normalised as $H_\alpha(\theta)/H_\alpha(1)$, the shape moves from $\theta^2$ to $\lvert\theta\rvert$,
# just as $R_\alpha$ did (notebook 2). The difference is what the two do: $R_\alpha$ decides
# *which interpolant* the flow picks, $H_\alpha$ is added to the loss.

# %%
th = np.linspace(-2, 2, 401)
fig, ax = plt.subplots(figsize=(6, 4))
hp.plot_bregman_shapes(ax, th, {rf"$H_\alpha$, $\alpha = {a:g}$": H(th, a) / H(1.0, a)
                                for a in (1e-2, 1.0, 10.0, 1e3)})
ax.set(ylabel=r"$H_\alpha(\theta)/H_\alpha(1)$", xlabel=r"$\theta$",
       title="explicit regulariser of HAM with $\\beta > 0$", ylim=(0, 4))
plt.show()

# %% [markdown]
# ## The start no longer matters
#
# We run GD+HYP\* ($\alpha = 2$) from three starts, with $\beta = 0$ and with $\beta = 0.1$,
# and measure the distance of the iterates to the prediction for $x_0 = 0$
# (`predict_limit(..., beta=beta)`, a Newton solve of $\min F$ with a stationarity certificate).

# %%
alpha, beta = 2.0, 0.1
steps = 6_000 if QUICK else 15_000
starts = {"$x_0 = 0$": jnp.zeros(n)}
for j, s in enumerate((0.3, 1.0)):
    starts[f"$x_0 = {s}\\,z_{j + 1}$"] = s * jax.random.normal(jax.random.fold_in(key, j + 1), (n,))

fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
for ax, b in zip(axes, (0.0, beta)):
    target = predict_limit(hb.HAMGeometry(alpha), problem, beta=b).x
    eta = 0.5 / (L * (1 + alpha * 2 * np.max(np.abs(target))))
    curves, ends = {}, {}
    for name, x0 in starts.items():
        run = run_iterates(GDHyp(eta, alpha, b), problem, x0, steps=steps, record_every=50,
                           reference=target)
        curves[name], ends[name] = np.asarray(run.distance), run
    hp.plot_curves(ax, np.asarray(run.steps), curves, xlabel="iteration k",
                   ylabel=r"$\|\theta_k - x_{\mathrm{pred}}(x_0 = 0)\|$",
                   title=rf"$\alpha = {alpha:g}$, $\beta = {b:g}$")
    print(f"beta={b}: final distances " + ", ".join(f"{c[-1]:.1e}" for c in curves.values()))
plt.tight_layout()
plt.show()

# %% [markdown]
# With $\beta = 0$ every start has its own limit (the Bregman projection of *its* $x_0$); with
# $\beta > 0$ all runs meet at the same point, up to the $O(\eta)$ discretisation error. The
# price: the loss no longer goes to zero.
#
# ## From ridge to LASSO
#
# Left: fixed $\beta$; as $\alpha\to0$ the limit approaches the ridge solution with weight
# $\beta$ (closed form `ridge`). Right: fixed $\lambda = \beta/\alpha$; as $\alpha\to\infty$ it
# approaches the LASSO solution with weight $\lambda$ (`lasso`, a cvxpy reference).

# %%
alphas_small = np.logspace(-4, 2, 5 if QUICK else 13)  # towards ridge
alphas = np.logspace(-2, 6, 5 if QUICK else 17)  # towards LASSO
beta_fixed, lam_fixed = 0.1, 0.02
x_ridge = ridge(problem, beta_fixed).x
x_lasso = lasso(problem, lam_fixed).x
d_ridge = [rel(predict_limit(hb.HAMGeometry(a), problem, beta=beta_fixed).x, x_ridge)
           for a in alphas_small]
d_lasso = [rel(predict_limit(hb.HAMGeometry(a), problem, beta=lam_fixed * a).x, x_lasso)
           for a in alphas]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
hp.plot_curves(ax1, alphas_small, {rf"$\beta = {beta_fixed:g}$": d_ridge}, logx=True,
               xlabel=r"$\alpha$", ylabel="relative distance to ridge",
               title=r"$\alpha\to0$: ridge")
hp.plot_curves(ax2, alphas, {rf"$\beta/\alpha = {lam_fixed:g}$": d_lasso}, logx=True,
               xlabel=r"$\alpha$", ylabel="relative distance to LASSO",
               title=r"$\alpha\to\infty$: LASSO")
plt.tight_layout()
plt.show()

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.2), sharey=True)
for ax, a in zip(axes, (1e-2, 10.0, 1e4)):
    x_ab = predict_limit(hb.HAMGeometry(a), problem, beta=lam_fixed * a).x
    ax.stem(np.asarray(x_star), linefmt="C1-", markerfmt="C1o", basefmt="k-")
    ax.plot(x_ab, "C3.", label=rf"$\alpha = {a:g}$, $\beta = {lam_fixed * a:g}$")
    ax.set(xlabel="coordinate", title=rf"$\beta/\alpha = {lam_fixed:g}$, $\alpha = {a:g}$")
    ax.legend(loc="lower right", fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# Along $\beta = \lambda\alpha$ the solution goes from a dense vector close to the min-$\ell_2$
# interpolant (a ridge with the tiny weight $\beta = \lambda\alpha$) to the sparse LASSO estimate,
# close to the truth (orange).
#
# ## Exercises
#
# **Exercise 1.** At the $\beta > 0$ limit $x$ the flow stops:
# $(1 + \alpha\lvert x\rvert)\odot\nabla f(x) + \beta x = 0$. Check this residual with
# `problem.grad` at the prediction, and compute the loss $f(x)$ there. Does HAM still interpolate?
#
# **Exercise 2.** Plain GD with (coupled) weight decay, `GD(eta, beta)`, is the $\alpha = 0$
# case. Run it from two different starts and compare with `ridge(problem, beta)`.
#
# **Exercise 3.** $H_\alpha$ is smooth at zero, so $\min F$ has no exact zeros. Along
# $\beta = \lambda\alpha$, plot the largest $\lvert x_i\rvert$ over the coordinates where the
# LASSO solution is zero, against $\alpha$. How fast does it go to zero for large $\alpha$?
#
# ## Solutions
#
# The solution cells below are collapsed in Jupyter (click to expand); try first.

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 1
x_ab = predict_limit(hb.HAMGeometry(alpha), problem, beta=beta).x
velocity = (1 + alpha * np.abs(x_ab)) * np.asarray(problem.grad(x_ab)) + beta * x_ab
print(f"|velocity| at the limit: {np.linalg.norm(velocity):.1e}; loss there: "
      f"{float(problem.loss(x_ab)):.3e} (> 0: no interpolation)")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 2: the flow ẋ = −∇f − βx is the gradient flow of f + β‖x‖²/2 (strongly convex).
eta_gd = 0.5 / L
for name, x0 in list(starts.items())[:2]:
    run = run_iterates(GD(eta_gd, beta), problem, x0, steps=steps)
    print(f"{name}: distance to ridge {rel(run.x, x_ridge):.1e}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 3: off the LASSO support the coordinates shrink, for large α like 1/α.
off = np.abs(np.asarray(x_lasso)) < 1e-6 * np.max(np.abs(np.asarray(x_lasso)))
big = alphas[alphas >= 1]
leak = [np.max(np.abs(predict_limit(hb.HAMGeometry(a), problem, beta=lam_fixed * a).x[off]))
        for a in big]
fig, ax = plt.subplots(figsize=(5.5, 3.6))
ax.loglog(big, leak, "C3o-", label=r"max off-support $|x_i|$")
ax.loglog(big, leak[-1] * big[-1] / big, "k:", label=r"$\propto 1/\alpha$")
ax.set(xlabel=r"$\alpha$", ylabel="size")
ax.legend()
plt.show()
