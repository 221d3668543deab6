"""The HAM step: GD + HYP*, its optax form and the wrapper-faithful variant.

Theory: docs/theory/ham-step.md#ham-step.

θ_{k+½} = OptimizerStep(θ_k, g_k, η);  θ_{k+1} = θ_{k+½} ⊙ exp(−η(α sign(θ_{k+½}) ⊙ g_k + β)),
with the raw gradient g_k in the hyperbolic step whatever the base optimizer.  The
official wrapper additionally clamps the exponent to [−5, 5], keeps exact zeros, skips
tensors with ndim < 2 and clips each tensor's norm to 1000.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from hambias import sparse_regression
from hambias.methods import gd_hyp_step

from ._core import claim_range, claim_true, group, make_check, needs

NAME = "ham_step"
TITLE = "The HAM step (Algorithm 1) and its optax forms"
PAPER = "Algorithm 1"
SEED = 2

# A written-out formula vs the kernel: the same operations, so ≤ a few ulps.
KERNEL_RTOL = 1e-15
# optax forms θ_{k+1} − θ_k and adds it back: one extra rounding per step, compounding
# over 200 steps of a contraction: ≤ 1e-13 relative.
OPTAX_RTOL = 1e-12


def _manual(theta, g, eta, alpha, beta, star):
    theta, g = np.asarray(theta), np.asarray(g)
    half = theta - eta * g
    s = np.sign(half if star else theta)
    return half * np.exp(-eta * (alpha * s * g + beta))


@group("§2", "gd_hyp_step is θ_½ ⊙ exp(−η(α sign(θ_½ or θ_k) ⊙ g + β)) with θ_½ = θ − ηg")
def _kernel(ctx):
    rng = np.random.default_rng(ctx.seed)
    theta, g = rng.normal(size=200), rng.normal(size=200)
    worst = 0.0
    for star in (True, False):
        got = np.asarray(gd_hyp_step(theta, g, 0.3, 2.0, 0.1, star=star))
        ref = _manual(theta, g, 0.3, 2.0, 0.1, star)
        worst = max(worst, float(np.max(np.abs(got - ref) / np.abs(ref))))
    return [claim_range("kernel_formula", "§2", "GD+HYP(*) kernel = §2 formula", worst,
                        hi=KERNEL_RTOL, why="identical operations in numpy and JAX")]


@group("§2", "optax ham(η, α, β) reproduces the GD+HYP* iterates")
def _optax(ctx):
    ham = needs("optimizers", "ham")
    run_iterates = needs("iterates", "run_iterates")
    GDHyp, OptaxMethod = needs("methods", "GDHyp", "OptaxMethod")
    prob, _ = sparse_regression(jax.random.key(ctx.seed), 10, 30, 3)
    x0 = jax.random.normal(jax.random.key(ctx.seed + 1), (30,))
    eta, alpha, beta = 0.01, 2.0, 0.05
    a = run_iterates(GDHyp(eta, alpha, beta), prob, x0, steps=200, record_every=200)
    b = run_iterates(OptaxMethod(ham(eta, alpha, beta)), prob, x0, steps=200, record_every=200)
    rel = float(jnp.max(jnp.abs(a.x - b.x)) / jnp.max(jnp.abs(a.x)))
    return [claim_range("optax_equals_kernel", "§2", "optax ham = GDHyp over 200 steps", rel,
                        hi=OPTAX_RTOL, why="one extra rounding per step")]


@group("§2", "with Adam as base the hyperbolic step still uses the raw gradient")
def _adam_base(ctx):
    import optax

    ham = needs("optimizers", "ham")
    rng = np.random.default_rng(ctx.seed)
    p, g = jnp.asarray(rng.normal(size=20)), jnp.asarray(rng.normal(size=20))
    eta, alpha, beta = 0.05, 3.0, 0.01
    base = optax.adam(1e-2)
    tx = ham(eta, alpha, beta, base=base)
    u, _ = tx.update(g, tx.init(p), p)
    bu, _ = base.update(g, base.init(p), p)
    half = np.asarray(p + bu)
    ref = half * np.exp(-eta * (alpha * np.sign(half) * np.asarray(g) + beta))
    got = np.asarray(optax.apply_updates(p, u))
    rel = float(np.max(np.abs(got - ref) / np.abs(ref)))
    return [claim_range("adam_raw_gradient", "§2", "ham(base=adam): θ_½ from Adam, exp(−η(α "
                        "sign(θ_½) g + β)) with the raw g", rel, hi=1e-13,
                        why="one update, a few roundings")]


@group("§2", "the wrapper-faithful variant clamps the exponent to ±5, keeps zeros, skips "
       "ndim < 2 tensors and clips norms to 1000")
def _wrapper(ctx):
    import optax

    hwf = needs("optimizers", "ham_wrapper_faithful")
    eta, alpha = 0.1, 200.0
    p = {"w": jnp.array([[0.0, 1.0, -2.0]]), "b": jnp.array([1.0, -1.0])}
    g = {"w": jnp.array([[1.0, -1.0, 0.01]]), "b": jnp.array([1.0, 1.0])}
    tx = hwf(eta, alpha, 0.0)
    new = optax.apply_updates(p, tx.update(g, tx.init(p), p)[0])
    w, b = np.asarray(new["w"])[0], np.asarray(new["b"])
    half = np.array([1.0 - eta * -1.0, -2.0 - eta * 0.01])
    e = np.clip(-eta * alpha * np.sign(half) * np.array([-1.0, 0.01]), -5, 5)
    ref_w = half * np.exp(e)
    ok = (w[0] == 0.0 and np.allclose(w[1:], ref_w, rtol=1e-14)
          and np.allclose(b, [1.0 - eta, -1.0 - eta], rtol=1e-14))
    big = {"w": jnp.full((10, 10), 200.0)}
    txn = hwf(1e-3, 0.0, 0.0)
    nb = optax.apply_updates(big, txn.update({"w": jnp.zeros((10, 10))}, txn.init(big), big)[0])
    norm = float(jnp.linalg.norm(nb["w"]))
    return [claim_true("wrapper_faithful", "§2", "clamp ±5 (here e = +5 not +20), zero kept, "
                       "bias gets the base step only", bool(ok), measured=w.tolist(),
                       expected=f"[0, {ref_w[0]:.6g}, {ref_w[1]:.6g}]",
                       tolerance="1e-14 relative", why="one update, a few roundings"),
            claim_range("wrapper_norm_clip", "§2", "per-tensor norm clipped to 1000", norm,
                        lo=1000 * (1 - 1e-12), hi=1000 * (1 + 1e-12),
                        why="scaling by 1000/‖θ‖ rounds once")]


GROUPS = (_kernel, _optax, _adam_base, _wrapper)


run, main = make_check(NAME, TITLE, PAPER, GROUPS, SEED, __doc__)

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
