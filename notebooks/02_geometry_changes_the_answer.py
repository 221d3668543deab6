# %% [markdown]
# # 2. Geometry changes the answer
#
# Notebook 1 showed that gradient descent picks the interpolant closest to $x_0$ in the
# Euclidean norm. Change the geometry in which the optimizer moves and the chosen interpolant
# changes. This notebook introduces the three geometries of the HAM paper: plain GD, the
# pointwise product $x = m\odot w$, and HAM.
#
# **Mirror flows** (docs/theory/setting.md#mirror-flow). Pick a strictly convex, separable
# potential $R(x) = \sum_i r(x_i)$. The mirror flow moves the *mirrored* point $\nabla R(x)$
# along the negative gradient,
# $$ \frac{d}{dt}\nabla R(x_t) = -\nabla f(x_t)
#    \quad\Longleftrightarrow\quad
#    \dot x_t = -g^{-1}(x_t)\odot\nabla f(x_t), \qquad g^{-1}_i(x) = \frac{1}{r''(x_i)} . $$
# $g^{-1}$ is an *inverse metric*: how fast coordinate $i$ may move at position $x_i$.
#
# | method | inverse metric $g^{-1}(x)$ | potential $r(x)$ |
# |---|---|---|
# | GD | $1$ | $x^2/2$ |
# | $m\odot w$ | $\sqrt{x^2+\gamma^2}$ | $x\,\mathrm{arcsinh}(x/\gamma) - \sqrt{x^2+\gamma^2} + \gamma$ |
# | HAM | $1+\alpha\lvert x\rvert$ | $\bigl[(1+\alpha\lvert x\rvert)\log(1+\alpha\lvert x\rvert) - \alpha\lvert x\rvert\bigr]/\alpha^2$ |
#
# For underdetermined least squares the flow ends at the **Bregman projection** of $x_0$
# (docs/theory/implicit-bias.md#implicit-bias): $x_\infty = \arg\min_{Ax=y} D_R(x, x_0)$ with
# $D_R(x, x_0) = R(x) - R(x_0) - \langle\nabla R(x_0), x - x_0\rangle$.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import hambias as hb
from hambias import plots as hp
from hambias.flow import solve_flow
from hambias.predict import predict_limit

QUICK = os.environ.get("HAMBIAS_QUICK", "0") == "1"  # smaller grids for the test suite
print(f"quick mode: {QUICK}")
n_grid = 201 if QUICK else 801

# %% [markdown]
# ## Inverse metrics: who may move where
#
# The $m\odot w$ metric **vanishes** (down to $\gamma$) at zero: a coordinate near zero is
# almost frozen, which is how small initialisation produces sparsity, and also why a
# coordinate can hardly change sign. HAM's metric is GD's $1$ *plus* the $\gamma = 0$ product
# metric $\alpha\lvert x\rvert$: it never drops below $1$.

# %%
xs = jnp.linspace(-3.0, 3.0, n_grid)
geometries = {
    "GD": hb.Euclidean(),
    r"$m\odot w$, $\gamma=0.1$": hb.PointwiseProduct(0.1),
    r"$m\odot w$, $\gamma=1$": hb.PointwiseProduct(1.0),
    r"HAM, $\alpha=1$": hb.HAMGeometry(1.0),
    r"HAM, $\alpha=5$": hb.HAMGeometry(5.0),
}
styles = ["k-", "C0--", "C0-", "C3-", "C3--"]  # for the mirror maps

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
hp.plot_inverse_metrics(ax1, xs, {name: geo.inverse_metric(xs) for name, geo in geometries.items()})
ax1.axhline(1.0, color="grey", lw=0.5)
for (name, geo), st in zip(geometries.items(), styles):
    ax2.plot(xs, geo.mirror_map(xs), st, label=name)
ax2.set(xlabel="$x$", ylabel=r"$\nabla R(x)$", title="mirror maps")
ax2.legend(fontsize=8)
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Potentials: from $x^2$ to $\lvert x\rvert$
#
# For small $\alpha$, $R_\alpha(x) = x^2/2 - \alpha\lvert x\rvert^3/6 + O(\alpha^2)$: HAM is GD.
# For large $\alpha$, $\frac{\alpha}{\log\alpha}R_\alpha(x) \to \lvert x\rvert$: HAM's bias
# approaches $\ell_1$, the sparsity-promoting norm (docs/theory/l2-l1.md#large-alpha). The
# approach is slow, like $1/\log\alpha$. We plot the shape $R(x)/R(1)$, which goes from $x^2$
# to $\lvert x\rvert$.

# %%
alphas = [1e-3, 1.0, 10.0, 1e3, 1e6]
xs_pos = jnp.linspace(-2.0, 2.0, n_grid)
fig, ax = plt.subplots(figsize=(6, 4))
hp.plot_bregman_shapes(
    ax, xs_pos, {rf"HAM $\alpha = {a:g}$": hb.HAMGeometry(a).normalised_potential(xs_pos)
                 for a in alphas})
ax.set_ylim(0, 4)
plt.show()

# %% [markdown]
# ## Where the flows end: tangent level sets
#
# Take the one-equation problem $x_1 + 2x_2 = 2$ of notebook 1 and start at $x_0 = 0$. The
# limit minimises $R$ on the line, so it is the point where the line **touches** the smallest
# level set of $R$. Round level sets (GD) touch at the min-norm point; diamond-like level sets
# (large $\alpha$) touch near a vertex, a sparse point. `predict_limit` computes the point
# (a Newton solve of the dual problem, with a KKT certificate); `solve_flow` integrates the
# mirror flow to check it.

# %%
line = hb.LinearRegression(np.array([[1.0, 2.0]]), np.array([2.0]))
cases = [("GD", hb.Euclidean()), (r"HAM $\alpha=10$", hb.HAMGeometry(10.0)),
         (r"HAM $\alpha=10^4$", hb.HAMGeometry(1e4))]
n_contour = 121 if QUICK else 301
g1, g2 = np.meshgrid(np.linspace(-0.6, 2.2, n_contour), np.linspace(-0.6, 1.6, n_contour))
grid = jnp.stack([g1.ravel(), g2.ravel()], axis=1)

fig, axes = plt.subplots(1, 3, figsize=(13, 4.3))
for ax, (name, geo) in zip(axes, cases):
    pred = predict_limit(geo, line, jnp.zeros(2))
    # to the steady state; scipy's LSODA with the analytic Jacobian (no compile wait)
    flow = solve_flow(geo, line, jnp.zeros(2), t1=np.inf, backend="scipy")
    R = jax.vmap(geo.potential)(grid).reshape(g1.shape)
    r_star = float(geo.potential(pred.x))
    ax.contour(g1, g2, R / r_star, levels=[0.25, 0.5, 1.0, 1.5, 2.5], colors="grey",
               linewidths=0.8)
    ax.contour(g1, g2, R / r_star, levels=[1.0], colors="C3", linewidths=1.5)
    ax.plot([-0.6, 2.2], [1.3, -0.1], "k-", lw=1)
    path = np.asarray(flow.xs)
    ax.plot(path[:, 0], path[:, 1], "C0.-", ms=2, lw=1, label="mirror flow from 0")
    ax.plot(*np.asarray(pred.x), "r*", ms=12, label="predicted limit")
    ax.set(aspect="equal", xlim=(-0.6, 2.2), ylim=(-0.6, 1.6), title=name, xlabel="$x_1$")
    print(f"{name:20s} limit {np.round(np.asarray(pred.x), 4)}, flow end {np.round(path[-1], 4)}, "
          f"status {pred.status.name}")
axes[0].set_ylabel("$x_2$")
axes[0].legend(fontsize=8, loc="upper right")
plt.tight_layout()
plt.show()

# %% [markdown]
# The flow path bends (the geometry is not Euclidean) and ends exactly where the red level set
# touches the line. As $\alpha$ grows, the limit slides towards $(0, 1)$, the sparsest
# solution and the $\ell_1$ minimiser.
#
# ## Why HAM keeps the metric at least 1: crossing zero
#
# One coordinate, $f(x) = \tfrac12(x - 1)^2$, started at $x_0 = -1$: the coordinate must pass
# through $0$. Under $m\odot w$ with small $\gamma$ it crawls through zero (its speed there is
# $\gamma\lvert f'\rvert$); under HAM it is never slower than GD, and far from zero it is faster.

# %%
target = hb.LinearRegression(np.array([[1.0]]), np.array([1.0]))  # f(x) = (x - 1)²/2
flows = {
    "GD": hb.Euclidean(),
    r"$m\odot w$, $\gamma = 10^{-2}$": hb.PointwiseProduct(1e-2),
    r"HAM, $\alpha = 5$": hb.HAMGeometry(5.0),
}
solutions = {name: solve_flow(geo, target, jnp.array([-1.0]), t1=12.0, n_save=300,
                             zero_crossings=True, backend="scipy")
             for name, geo in flows.items()}
fig, ax = plt.subplots(figsize=(6, 3.8))
hp.plot_trajectories(ax, {name: np.asarray(sol.ts) for name, sol in solutions.items()},
                     {name: np.asarray(sol.xs)[:, 0] for name, sol in solutions.items()},
                     theta0=-1.0, theta_star=1.0,
                     crossings={name: float(sol.crossing_times[0, 0])
                                for name, sol in solutions.items()})
plt.show()
for name, sol in solutions.items():
    print(f"{name:35s} crosses zero at t = {float(sol.crossing_times[0, 0]):.2f}")

# %% [markdown]
# ## Beyond the three: any inverse metric
#
# Nothing above used more of a geometry than its inverse metric: the potential, the mirror
# map and its inverse all follow from $h = g^{-1}$ by integration,
# $\nabla R(x) = \int_0^x ds/h(s)$, $R(x) = \int_0^x (x - s)/h(s)\,ds$.
# `hb.geometry_from_inverse_metric(h, params)` does exactly that (quadrature and a Newton
# solve, differentiable), and the flow, mirror descent and `predict_limit` take the result
# unchanged. Below, two metrics the paper does not treat, on the same line: $1 + \alpha x^2$
# grows faster than HAM's (its mirror map is bounded, $R$ grows only linearly: a Huber
# function, so the limit heads for the sparse vertex), and $1 + \alpha\sqrt{\lvert x\rvert}$
# grows slower ($\alpha R \to \tfrac43\lvert x\rvert^{3/2}$: an $\ell_{3/2}$ bias, never
# sparse). The check `hambias check --only mirror_maps` compares a whole catalogue (bias,
# speed, the 1-D race; figure `figures/mirror_maps.png`).

# %%
def power_metric(x, p):
    """h(x) = 1 + a|x|^k for p = (a, k); |x|^k is 0 at 0 with derivative 0 there."""
    a, k = p
    s = jnp.abs(x)
    nz = s > 0
    return 1.0 + a * jnp.where(nz, jnp.exp(k * jnp.log(jnp.where(nz, s, 1.0))), 0.0)


fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
for ax, (name, k) in zip(axes, [(r"$1 + \alpha x^2$", 2.0), (r"$1 + \alpha\sqrt{|x|}$", 0.5)]):
    for alpha, color in ((10.0, "C0"), (1e4, "C3")):
        geo = hb.geometry_from_inverse_metric(power_metric, (jnp.asarray(alpha), jnp.asarray(k)))
        pred = predict_limit(geo, line, jnp.zeros(2))
        R = jax.vmap(geo.potential)(grid).reshape(g1.shape)
        ax.contour(g1, g2, R / float(geo.potential(pred.x)), levels=[1.0], colors=color,
                   linewidths=1.5)
        ax.plot(*np.asarray(pred.x), "*", color=color, ms=12, label=rf"$\alpha = {alpha:g}$")
        print(f"{name:28s} alpha = {alpha:7g}: limit {np.round(np.asarray(pred.x), 4)}")
    ax.plot([-0.6, 2.2], [1.3, -0.1], "k-", lw=1)
    ax.set(aspect="equal", xlim=(-0.6, 2.2), ylim=(-0.6, 1.6), title=name, xlabel="$x_1$")
    ax.legend(fontsize=8, loc="upper right")
axes[0].set_ylabel("$x_2$")
plt.tight_layout()
plt.show()

# %% [markdown]
# With $1 + \alpha x^2$ the limit reaches the vertex $(0, 1)$ faster in $\alpha$ than HAM does;
# with $1 + \alpha\sqrt{|x|}$ it settles at the $\ell_{3/2}$ point, whatever $\alpha$.
#
# ## Exercises
#
# **Exercise 1.** Check the table numerically: with `jax.grad` applied twice to
# `HAMGeometry(alpha).coordinate_potential`, verify $1/r''(x) = 1 + \alpha\lvert x\rvert$ at a
# few points and for a few $\alpha$. Do the same for the mirror map.
#
# **Exercise 2.** The limit without a black box. The KKT conditions of
# $\min_{Ax=y} R(x)$ say $\nabla R(x) = A^\top\lambda$. For one equation $\lambda$ is a
# scalar: $x(\lambda) = (\nabla R)^{-1}(A^\top\lambda)$ and $A\,x(\lambda) = y$. Solve this
# scalar equation with `scipy.optimize.brentq` for HAM with $\alpha = 10$ and compare with
# `predict_limit`.
#
# **Exercise 3.** Negative $\alpha$ (the paper's open question,
# docs/theory/negative-alpha.md#negative-alpha):
# `HAMGeometry(-2.0)` has inverse metric $1 - 2\lvert x\rvert$, which vanishes at
# $\lvert x\rvert = 1/2$. Plot its inverse metric and potential on $(-\tfrac12, \tfrac12)$.
# What does the potential do at the edge, and what does that mean for a mirror flow?
#
# ## Solutions
#
# The solution cells below are collapsed in Jupyter (click to expand); try first.

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 1: differentiate the potential r(x) with JAX; a geometry is a pytree, so one jitted
# function serves every α.
x_test = jnp.array([-2.0, -0.3, 0.1, 1.7])


@jax.jit
def derivatives(geo, x):
    r1 = jax.vmap(jax.grad(geo.coordinate_potential))(x)
    r2 = jax.vmap(jax.grad(jax.grad(geo.coordinate_potential)))(x)
    return r1, r2


for a in (0.1, 3.0, 100.0):
    geo = hb.HAMGeometry(a)
    r1, r2 = derivatives(geo, x_test)
    print(f"alpha={a:6g}: max |1/r'' - g^-1| = "
          f"{float(jnp.max(jnp.abs(1 / r2 - geo.inverse_metric(x_test)))):.1e}, "
          f"max |r' - mirror map| = {float(jnp.max(jnp.abs(r1 - geo.mirror_map(x_test)))):.1e}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 2
from scipy.optimize import brentq

geo = hb.HAMGeometry(10.0)
a_row = np.asarray(line.A)[0]


def constraint_gap(lam):
    x = geo.inverse_mirror_map(a_row * lam)
    return float(a_row @ np.asarray(x) - line.y[0])


lam = brentq(constraint_gap, 0.0, 5.0, xtol=1e-14)
x_kkt = np.asarray(geo.inverse_mirror_map(a_row * lam))
x_pred = np.asarray(predict_limit(geo, line, jnp.zeros(2)).x)
print(f"lambda = {lam:.6f}, x = {x_kkt}, predict_limit: {x_pred}, "
      f"difference {np.max(np.abs(x_kkt - x_pred)):.1e}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 3: the potential stays finite at the edge but its slope ∇R = −log(1 − 2|x|)/2·sign(x)
# blows up, so the mirror image of the edge is at infinity: a mirror flow can never leave the
# box |x| < 1/2 (a barrier).  The bias inside favours spread-out, L∞-like solutions.
box = hb.HAMGeometry(-2.0)
xb = jnp.linspace(-0.4999, 0.4999, n_grid)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
axes[0].plot(xb, box.inverse_metric(xb))
axes[0].set(title="inverse metric $1 - 2|x|$", xlabel="$x$")
axes[1].plot(xb, box.coordinate_potential(xb))
axes[1].set(title="potential $r(x)$", xlabel="$x$")
axes[2].plot(xb, box.mirror_map(xb))
axes[2].set(title=r"mirror map $\nabla R(x)$", xlabel="$x$")
plt.tight_layout()
plt.show()
