# %% [markdown]
# # 4. Sign flips
#
# Sparsity is about which coordinates end near zero, and a coordinate that starts with the
# wrong sign must **pass through zero** to get to the right answer. This is where the
# geometries differ most. $m\odot w$ almost freezes coordinates near zero; HAM does not; and
# the two variants HYP and HYP\* of the hyperbolic step treat the moment of a flip differently.
#
# **Where a flip happens** (THEORY.md §9). The GD half-step
# $\theta_{k+\frac12} = \theta_k - \eta g_k$ changes the sign of coordinate $i$ when
# $\lvert\theta_{k,i}\rvert < \eta\lvert g_{k,i}\rvert$ and $g_{k,i}$ has the sign of
# $\theta_{k,i}$. The hyperbolic step then multiplies by
# $$ \exp\bigl(-\eta\,\alpha\,\mathrm{sign}(s)\,g_k\bigr), \qquad
#    s = \theta_{k+\frac12}\ \text{(HYP*)}, \qquad s = \theta_k\ \text{(HYP)} . $$
# On a flipped coordinate the two signs disagree: HYP\* multiplies the fresh coordinate by
# $e^{+\eta\alpha\lvert g\rvert}$ (accelerates it away from $0$), HYP by
# $e^{-\eta\alpha\lvert g\rvert}$ (pushes it back towards $0$). The gap is exactly
# $$ \lvert\Phi_{\mathrm{HYP}} - \Phi_{\mathrm{HYP}^*}\rvert
#    = 2\,\lvert\theta_{k+\frac12}\rvert\, e^{-\eta\beta}\,\lvert\sinh(\eta\alpha g_k)\rvert
#    = O(\eta^2\alpha g^2), $$
# so both follow the same flow and reach the same limit; they differ on the way.

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
from hambias.iterates import run_iterates
from hambias.methods import GD, GDHyp, MWGradientDescent, exp_step, gd_hyp_step

QUICK = os.environ.get("HAMBIAS_QUICK", "0") == "1"  # smaller problem for the test suite
print(f"quick mode: {QUICK}")

# %% [markdown]
# ## The one-step picture
#
# Fix a gradient $g = 1$ and look at the map $\theta_k\mapsto\theta_{k+1}$ of each update
# for one coordinate, with a large step so the effect is visible ($\eta = 0.2$, $\alpha = 4$).
# The shaded band $0 < \theta_k < \eta g$ is where the GD half-step flips the sign.

# %%
eta_demo, alpha_demo, g_demo = 0.2, 4.0, 1.0
theta = jnp.linspace(-0.4, 0.6, 401)
g = jnp.full_like(theta, g_demo)
maps = {
    "GD": theta - eta_demo * g,
    "GD + HYP": gd_hyp_step(theta, g, eta_demo, alpha_demo, star=False),
    "GD + HYP*": gd_hyp_step(theta, g, eta_demo, alpha_demo, star=True),
    r"exp step ($m\odot w$)": exp_step(theta, g, eta_demo),
}
fig, ax = plt.subplots(figsize=(6.5, 4.5))
hp.plot_step_maps(ax, theta, maps, flip_region=(0.0, eta_demo * g_demo),
                  xlabel=r"$\theta_k$", ylabel=r"$\theta_{k+1}$")
plt.show()

# %% [markdown]
# Inside the band the GD line crosses zero. HYP\* bends it further down (the new negative
# coordinate grows), HYP bends it back up towards zero, and the exponential step of $m\odot w$
# never crosses zero at all: $\theta e^{-2\eta\,\mathrm{sign}(\theta)g}$ keeps the sign of
# $\theta$, and $0$ stays $0$. That is why HAM interleaves a GD step.
#
# ## The vanishing inverse metric of $m\odot w$
#
# In continuous time a coordinate of $m\odot w$ moves at speed $\sqrt{x^2+\gamma^2}\,\lvert f'\rvert$,
# which is only $\gamma\lvert f'\rvert$ at $x = 0$. Take $f(x) = \tfrac12(x - 1)^2$ and
# $x_0 = -1$; the time to reach zero is
# $$ t_{\mathrm{cross}} = \int_{-1}^{0}\frac{dx}{g^{-1}(x)\,(1 - x)}, $$
# which grows like $\log(1/\gamma)$ for $m\odot w$ and is at most GD's $\log 2$ for HAM
# (its metric is $\ge1$). Left: the metrics along the path; right: the measured crossing
# times (`solve_flow(..., zero_crossings=True)`).

# %%
target = hb.LinearRegression(np.array([[1.0]]), np.array([1.0]))
x_path = jnp.linspace(-1.2, 1.2, 241)
gammas = np.logspace(-6, 0, 4 if QUICK else 7)
ham_alphas = 1 / gammas


def crossing_time(geo):
    """First time the 1-D flow from −1 towards 1 crosses zero."""
    sol = solve_flow(geo, target, jnp.array([-1.0]), t1=40.0, zero_crossings=True,
                     backend="scipy")
    return float(sol.crossing_times[0, 0])


t_gd = crossing_time(hb.Euclidean())
t_mw = [crossing_time(hb.PointwiseProduct(gm)) for gm in gammas]
t_ham = [crossing_time(hb.HAMGeometry(a)) for a in ham_alphas]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
hp.plot_inverse_metrics(ax1, x_path, {
    "GD": hb.Euclidean().inverse_metric(x_path),
    r"$m\odot w$, $\gamma = 10^{-2}$": hb.PointwiseProduct(1e-2).inverse_metric(x_path),
    r"HAM, $\alpha = 10^{2}$": hb.HAMGeometry(1e2).inverse_metric(x_path),
}, theta0=-1.0, theta_star=1.0)
ax2.semilogx(1 / gammas, t_mw, "C0o-", label=r"$m\odot w$ (against $1/\gamma$)")
ax2.semilogx(ham_alphas, t_ham, "C3s-", label=r"HAM (against $\alpha$)")
ax2.axhline(t_gd, color="k", ls="--", label=f"GD: {t_gd:.3f} = log 2")
ax2.set(xlabel=r"$1/\gamma$ or $\alpha$", ylabel="time to cross zero",
        title=r"from $x_0 = -1$ to $x^\star = 1$")
ax2.legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ## Sign flips during training
#
# Now a sparse regression started from a random $x_0$ (scale $1/\sqrt n$ per coordinate), so
# many coordinates start with the wrong sign or must shrink through zero. `run_iterates`
# counts, at every step, the coordinates whose sign reversed (`flips_step`) and the
# coordinates whose sign differs from the initial one (`flips_init`). We compare GD,
# GD+HYP and GD+HYP\* at $\alpha = 10$, GD+HYP\* at $\alpha = 100$ (with a 10x smaller step, for
# stability), and GD on $(m, w)$ started balanced at the same $x_0$. The horizontal axis is
# the flow time $t = k\eta$, so that runs with different steps can be compared.

# %%
d, n, k = (10, 40, 3) if QUICK else (20, 100, 5)
steps = 1_500 if QUICK else 4_000
key = jax.random.key(11)
problem, x_star = hb.sparse_regression(key, d, n, k)
x0 = jax.random.normal(jax.random.fold_in(key, 1), (n,)) / np.sqrt(n)
L = float(problem.lipschitz())
eta = 0.05 / L  # stable for HAM at α = 10: η(1 + α max|θ*|) L < 2 (THEORY.md §11)
MW = r"$m\odot w$ (GD on $(m, w)$)"
# label: (method, step size, steps, record stride): the same flow time and records for all;
# flips_step sums the reversals of all steps between two records, so none is missed.
methods = {
    r"GD": (GD(eta), eta, steps, 1),
    r"GD + HYP, $\alpha = 10$": (GDHyp(eta, 10.0, star=False), eta, steps, 1),
    r"GD + HYP*, $\alpha = 10$": (GDHyp(eta, 10.0, star=True), eta, steps, 1),
    r"GD + HYP*, $\alpha = 100$": (GDHyp(eta / 10, 100.0), eta / 10, 10 * steps, 10),
    MW: (MWGradientDescent(eta), eta, steps, 1),
}
results = {name: run_iterates(m, problem, x0, steps=st, record_every=every)
           for name, (m, _, st, every) in methods.items()}
times = {name: np.asarray(results[name].steps) * h for name, (_, h, _, _) in methods.items()}

fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4))
hp.plot_sign_flips(ax1, times, {name: np.cumsum(np.asarray(r.flips_step))
                                for name, r in results.items()},
                   ylabel="cumulative sign reversals", title="reversals, summed over steps",
                   logx=True)
hp.plot_sign_flips(ax2, times, {name: np.asarray(r.flips_init) for name, r in results.items()},
                   ylabel=r"coordinates with sign $\neq$ sign($x_0$)",
                   title="signs changed against $x_0$", logx=True)
hp.plot_curves(ax3, times, {name: np.asarray(r.loss) for name, r in results.items()},
               xlabel="flow time $t = k\\eta$", ylabel=r"$f(\theta_k)$", logx=True, title="loss")
for ax in (ax1, ax2):
    ax.set_xlabel("flow time $t = k\\eta$")
plt.tight_layout()
plt.show()
for name, r in results.items():
    print(f"{name:28s} reversals {int(np.sum(r.flips_step)):4d}, "
          f"final flips vs x0 {int(r.flips_init[-1]):3d}, loss {float(r.loss[-1]):.1e}")

# %% [markdown]
# What to read off:
#
# * GD changes the signs the target needs, and reverses some coordinates more than once (they
#   oscillate around zero). HAM at $\alpha = 10$ reverses each coordinate once, and its loss
#   falls faster (its metric is $\ge 1$).
# * HYP and HYP\* flip exactly the same coordinates at the same steps here (their curves
#   overlap): they differ in the *size* of a freshly flipped coordinate, by $O(\eta^2\alpha g^2)$,
#   not in whether it flips (Exercise 1).
# * At $\alpha = 100$ only a handful of coordinates change sign: the sign anchoring of
#   notebook 3, now visible during training. Large $\alpha$ keeps the signs of $x_0$.
# * GD on $(m, w)$ from a balanced start changes **no** signs: $m^2 - w^2 = 0$ is conserved,
#   so $x = m w$ would have to pass $m = w = 0$, which the flow never reaches. The coordinates
#   that start with the wrong sign get stuck near zero, and the loss falls slowly.
#
# ## Exercises
#
# **Exercise 1.** Check the identity
# $\lvert\Phi_{\mathrm{HYP}}-\Phi_{\mathrm{HYP}^*}\rvert = 2\lvert\theta_{k+\frac12}\rvert e^{-\eta\beta}\lvert\sinh(\eta\alpha g)\rvert$
# on random $(\theta, g)$ with `gd_hyp_step`, and that the two maps agree exactly where no
# flip occurs.
#
# **Exercise 2.** Compute the $m\odot w$ crossing time of the 1-D problem with
# `scipy.integrate.quad` from the integral above and compare with `solve_flow`. Compare also
# with $\log(1/\gamma)$.
#
# **Exercise 3.** Where do the $(m, w)$ iterates end, compared with the prediction
# `predict_limit(PointwiseProduct(gamma), problem, x0)` at $\gamma = 0$? (Hint: $\gamma = 0$ is
# not a valid geometry; what does the limit look like on coordinates that start with the wrong
# sign?)
#
# ## Solutions
#
# The solution cells below are collapsed in Jupyter (click to expand); try first.

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 1
k1, k2 = jax.random.split(jax.random.key(0))
th = 0.05 * jax.random.normal(k1, (10_000,))
gr = jax.random.normal(k2, (10_000,))
eta_t, alpha_t, beta_t = 0.05, 3.0, 0.1
hyp = gd_hyp_step(th, gr, eta_t, alpha_t, beta_t, star=False)
hyp_star = gd_hyp_step(th, gr, eta_t, alpha_t, beta_t, star=True)
half = th - eta_t * gr
flip = jnp.sign(half) != jnp.sign(th)
predicted = 2 * jnp.abs(half) * jnp.exp(-eta_t * beta_t) * jnp.abs(jnp.sinh(eta_t * alpha_t * gr))
rel = jnp.abs(jnp.abs(hyp - hyp_star) - predicted) / predicted
print(f"{int(flip.sum())} flips; max relative error of the identity on them: "
      f"{float(jnp.max(jnp.where(flip, rel, 0.0))):.1e}; "
      f"max |HYP - HYP*| elsewhere: "
      f"{float(jnp.max(jnp.where(flip, 0.0, jnp.abs(hyp - hyp_star)))):.1e}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 2: ∫_{-1}^{0} dx / (√(x² + γ²)(1 − x)) = log(1/γ) + O(γ) (split 1/(1 − x) = 1 + x/(1 − x)).
from scipy.integrate import quad

for gm, t_flow in zip(gammas, t_mw):
    t_quad = quad(lambda x, gm=gm: 1 / (np.hypot(x, gm) * (1 - x)), -1.0, 0.0, points=[0.0],
                  epsabs=1e-12, limit=200)[0]
    print(f"gamma={gm:7.0e}: quad {t_quad:.6f}, solve_flow {t_flow:.6f}, "
          f"log(1/gamma) {np.log(1 / gm):.3f}")

# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 3: the balanced start has γ = 0, the (m, w) iterates keep every sign of x₀, and the
# limit is the sign-constrained interpolant closest to x₀ in that geometry.  A tiny γ mimics it:
# compare the (m, w) end point with the γ = 1e-8 prediction started at x₀.
from hambias.predict import predict_limit

mw_end = np.asarray(results[MW].x)
pred_mw = predict_limit(hb.PointwiseProduct(1e-8), problem, x0, throw=False)
wrong_sign = np.sign(np.asarray(x0)) != np.sign(np.asarray(x_star))
print(f"prediction status {pred_mw.status.name}; distance (m, w) end vs prediction: "
      f"{np.linalg.norm(mw_end - pred_mw.x) / np.linalg.norm(pred_mw.x):.1e}")
print(f"coordinates with sign(x0) != sign(x*) and x* != 0: "
      f"{int(np.sum(wrong_sign & (np.asarray(x_star) != 0)))}; "
      f"sign changes of the (m, w) run: {int(results[MW].flips_init[-1])}")
