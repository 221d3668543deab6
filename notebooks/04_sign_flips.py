# %% [markdown]
# # 4. Sign flips
#
# Sparsity is about which coordinates end near zero, and a coordinate that starts with the
# wrong sign must **pass through zero** to get to the right answer. This is where the
# geometries differ most. $m\odot w$ almost freezes coordinates near zero; HAM does not; and
# the two variants HYP and HYP\* of the hyperbolic step treat the moment of a flip differently.
#
# **Where a flip happens** (docs/theory/sign-choice.md#sign-choice). The GD half-step
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
# stable for HAM at α = 10: η(1 + α max|θ*|) L < 2 (docs/theory/stability.md#stability)
eta = 0.05 / L
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
# ## Two layers: which starts reach the teacher
#
# The same question for the smallest network with two layers: a student $a\,\sigma(w x)$
# learns the teacher $a^\star\sigma(w^\star x)$, $\sigma = \mathrm{ReLU}$, $x\sim N(0, 1)$,
# $a^\star = w^\star = 1$, from the population loss
# $f(a, w) = \tfrac12\mathbb E[(a\sigma(wx) - a^\star\sigma(w^\star x))^2]$
# (`hb.TeacherStudent`). For $w > 0$ it is $(aw - 1)^2/4$; for $w < 0$ it is
# $(a^2w^2 + 1)/4$: the neuron points the wrong way and can only shrink towards $w = 0$, so **$w$
# never changes sign**. A start with $a_0 < 0 < w_0$ succeeds only if $a$ crosses zero before
# $w$ does.
#
# Who wins that race is decided by a conserved quantity. The model is unchanged by
# $(a, w)\mapsto(ca, w/c)$, so $a\,\partial_a f = w\,\partial_w f$. Along any flow
# $\dot\theta = -h(\theta)\odot\nabla f$ with a per-coordinate inverse metric $h$ (GD: $1$;
# $m\odot w$: $\sqrt{\theta^2+\gamma^2}$; HAM: $1 + \alpha|\theta|$) put $F' = \theta/h$; then
# $\tfrac{d}{dt}F(a) = -a\,\partial_a f = -w\,\partial_w f = \tfrac{d}{dt}F(w)$, so
# $$ Q = F_a(a) - F_w(w) \quad\text{is conserved,} $$
# with $F$ the regulariser $H$ of the $\beta > 0$ theory (docs/theory/explicit-bias.md#h-alpha):
# $\theta^2/2$, $\sqrt{\theta^2+\gamma^2}-\gamma$, $H_\alpha$. If $a$ reaches $0$ first,
# $Q = -F_w(w) < 0$; if $w$ does, $Q = F_a(a) > 0$. Hence
# $$ \text{success} \iff w_0 > 0 \ \text{and}\
#    \bigl(a_0 \ge 0 \ \text{or}\ F_a(a_0) < F_w(w_0)\bigr). $$
# With **one** metric on both layers $F_a = F_w$ is increasing in $|\theta|$, so the set is
# $w_0 > \max(0, -a_0)$ for GD, $m\odot w$ and HAM alike: the metric changes the speed, not
# the outcome. A **different** metric per layer ($\alpha$ per layer, or the $m\odot w$
# balance $\gamma$ per layer that Sign-In resets) moves the boundary to $F_a(a_0) = F_w(w_0)$.
#
# First one run, with $Q(t) - Q(0)$ along it:

# %%
teacher = hb.TeacherStudent(1.0, 1.0)
ham3 = hb.HAMGeometry(3.0)
run = solve_flow(ham3, teacher, jnp.array([-0.7, 0.9]), t1=30.0, n_save=301, backend="scipy",
                 method="DOP853", rtol=1e-10, atol=1e-12)
q = hb.balance_invariant(ham3, run.xs)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
ax1.plot(run.ts, run.xs[:, 0], label="$a_t$")
ax1.plot(run.ts, run.xs[:, 1], label="$w_t$")
ax1.axhline(0, color="0.6", lw=0.8)
ax1.set(xlabel="$t$", title=r"HAM flow ($\alpha = 3$) from $(a_0, w_0) = (-0.7, 0.9)$")
ax1.legend()
ax2.plot(run.ts, q - q[0])
ax2.set(xlabel="$t$", ylabel="$Q(t) - Q(0)$", title="the balance invariant")
plt.tight_layout()
plt.show()

# %% [markdown]
# Now the success maps over a grid of starts, `hb.iterate_success_map` (one vmapped run of
# the method over the grid), each with the boundary the invariant predicts
# (`hb.success_boundary`). These are finite-$\eta$ iterates; the maps of the flows themselves
# (`hb.flow_success_map`, one vmapped `solve_flow` over the grid) are the figure of the check
# `single_neuron_sign_flips` (`figures/single_neuron_sign_flips.png`), and agree. The top row
# uses one metric on both layers, the bottom row a different one per layer (the value on $a$
# first).

# %%
from hambias.teacher_student import predicted_success_map

a_grid = np.linspace(-2.0, 2.0, 21 if QUICK else 49)
w_grid = np.linspace(-0.54, 2.06, 16 if QUICK else 40)
eta_ts = 0.04 if QUICK else 0.02
# flow time 100; (m, w) runs at twice the speed (docs/theory/mw-flow.md#mw-gamma)
steps_ts = int(100 / eta_ts)
alpha_layers = jnp.array([3.0, 0.0])  # α on a, α on w
gamma_layers = jnp.array([1.0, 0.05])  # a Sign-In-like balance: large on a, small on w
# GD is GD+HYP* at α = 0 (the hyperbolic factor is e⁰ = 1), and Sign-In with one γ on both
# layers is GD on (m, w) with resets: two compiled programs serve all six maps.
maps = {
    r"GD ($=$ GD+HYP* at $\alpha = 0$)": (GDHyp(eta_ts, jnp.zeros(2)), hb.Euclidean()),
    r"Sign-In (GD on $(m, w)$), $\gamma = 0.25$": (
        hb.SignIn(eta_ts, jnp.array([0.25, 0.25]), period=10), hb.PointwiseProduct(0.25)),
    r"GD+HYP* (HAM), $\alpha = 3$": (GDHyp(eta_ts, jnp.array([3.0, 3.0])), hb.HAMGeometry(3.0)),
    r"GD+HYP*, $(\alpha_a, \alpha_w) = (3, 0)$": (GDHyp(eta_ts, alpha_layers),
                                                   hb.HAMGeometry(alpha_layers)),
    r"GD+HYP*, $(\alpha_a, \alpha_w) = (0, 3)$": (GDHyp(eta_ts, alpha_layers[::-1]),
                                                   hb.HAMGeometry(alpha_layers[::-1])),
    r"Sign-In, $(\gamma_a, \gamma_w) = (1, 0.05)$": (hb.SignIn(eta_ts, gamma_layers, period=10),
                                                      hb.PointwiseProduct(gamma_layers)),
}
for name, (method, geo) in maps.items():
    steps = steps_ts // 2 if isinstance(method, hb.SignIn) else steps_ts
    maps[name] = (hb.iterate_success_map(method, teacher, a_grid, w_grid, steps=steps), geo)
w_line = np.linspace(1e-6, w_grid[-1], 200)
fig, axes = plt.subplots(2, 3, figsize=(16, 9))
for k, (ax, (name, (m, geo))) in enumerate(zip(axes.flat, maps.items())):
    lines = {"$a_0 = -w_0$ (one metric)": (-w_line, w_line)}
    if k >= 3:  # the invariant's boundary for a metric per layer
        lines = {"$F_a(a_0) = F_w(w_0)$": (hb.success_boundary(teacher, geo, w_line), w_line),
                 **lines}
    hp.plot_success_map(ax, a_grid, w_grid, m.outcome, boundary=lines, teacher=(1.0, 1.0),
                        title=name, legend=k in (0, 3), legend_loc="upper right")
plt.tight_layout()
plt.show()
for name, (m, geo) in maps.items():
    predicted = predicted_success_map(teacher, geo, a_grid, w_grid)
    print(f"{name:58s} successes {int(m.success.sum()):4d}, differ from the prediction at "
          f"{int((m.success != predicted).sum())} starts, sign flips of a: "
          f"{int(m.flips[..., 0].sum())}")

# %% [markdown]
# What to read off:
#
# * Top row: GD, GD on $(m, w)$ and HAM reach the teacher from the same starts, the
#   region above $a_0 = -w_0$ (and $w_0 > 0$). The rule "$w_0 > |a_0|$" is only its left half:
#   with $a_0 > 0$ no sign has to change, and every $w_0 > 0$ succeeds. Even the finite-$\eta$
#   iterates keep the boundary exactly: with the same update on both layers they commute with
#   $(a, w)\mapsto(-w, -a)$, which fixes the line $a_0 = -w_0$.
# * Bottom row: $\alpha$ on $a$ only makes $F_a$ flatter ($H_\alpha(a)\approx|a|/\alpha$), so
#   $a$ wins the race from much farther out; $\alpha$ on $w$ only does the opposite. The
#   boundary follows $F_a(a_0) = F_w(w_0)$; at finite $\eta$ it moves by $O(\eta)$ (the check
#   measures the slope), and HYP gives the same map as HYP\*: the two differ only after the
#   first sign change, and on this model the first sign change decides the outcome.
# * Sign-In with a large $\gamma$ on $a$ does the same through the $m\odot w$ metric: its
#   $F_a = \sqrt{a^2+\gamma_a^2}-\gamma_a \approx a^2/(2\gamma_a)$ is small, so $a$ flips.
# * The grey cells below $w_0 = 0$ are failures that have not settled at the horizon (they
#   creep towards $a w = 0$), not successes.
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
# **Exercise 4.** For $m\odot w$ with a balance per layer, $F(\theta) = \sqrt{\theta^2+\gamma^2}-\gamma$
# is invertible in closed form. Write the boundary $a_0(w_0)$ of the Sign-In map above for
# $(\gamma_a, \gamma_w) = (1, 0.05)$ and compare it with `hb.success_boundary`. Which
# $\gamma_a$ lets $a_0 = -2$ flip when $w_0 = 0.5$?
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


# %% tags=["solution", "hide-input"] jupyter={"source_hidden": true}
# Solution 4: F_a(a₀) = F_w(w₀) with F = √(θ² + γ²) − γ gives |a₀| = √((F_w + γ_a)² − γ_a²).
ga, gw = 1.0, 0.05
w_test = np.array([0.2, 0.5, 1.0, 1.5])
F_w = np.sqrt(w_test**2 + gw**2) - gw
closed = -np.sqrt((F_w + ga) ** 2 - ga**2)
numeric = np.asarray(hb.success_boundary(teacher, hb.PointwiseProduct(jnp.array([ga, gw])),
                                         w_test))
print("closed form:", np.round(closed, 6), " success_boundary:", np.round(numeric, 6))
# a₀ = −2 flips at w₀ = 0.5 when √(4 + γ_a²) − γ_a < F_w(0.5), i.e. γ_a > (4 − F²)/(2F)
F_half = np.sqrt(0.25 + gw**2) - gw
print(f"needs gamma_a > {(4 - F_half**2) / (2 * F_half):.3f}")

