"""HAM optax transformations against the plain step kernels.

Theory: docs/theory/ham-step.md#ham-step, docs/theory/sign-choice.md#sign-choice.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hambias import LinearRegression
from hambias.iterates import run_iterates
from hambias.methods import GDHyp, OptaxMethod, gd_hyp_step, hyperbolic_step
from hambias.optimizers import ham, ham_sam, ham_wrapper_faithful

# optax returns the update u = θ_{k+1} − θ_k and apply_updates forms θ_k + u: two
# roundings that can cost at most 1 ulp of max(|θ_k|, |θ_{k+1}|) per step (exact when
# θ_{k+1}/θ_k ∈ [½, 2], Sterbenz).  No update-based interface can do better for a
# coordinate that lands much closer to 0 than it started.
ULPS_PER_STEP = 1.0
# Along a contracting 300-step run these per-step ulps stay at round-off of the scale.
TRAJECTORY_RTOL = 1e-14
# Norm clip: the clipped norm is max_norm up to the rounding of the norm and the scaling.
NORM_RTOL = 1e-13
ETA, ALPHA, BETA = 0.05, 2.0, 0.01


def _problem(seed=0, d=10, n=30):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, n))
    return LinearRegression(A, rng.standard_normal(d)), rng


def _assert_within_ulps(got, expected, start):
    """|got − expected| ≤ ULPS_PER_STEP ulp of max(|θ_k|, |θ_{k+1}|), elementwise."""
    got, expected, start = (np.asarray(a) for a in (got, expected, start))
    ulp = np.spacing(np.maximum(np.abs(start), np.abs(expected)))
    err_ulps = np.abs(got - expected) / ulp
    assert np.all(err_ulps <= ULPS_PER_STEP), err_ulps.max()


def _optax_step(tx, params, grads, **extra):
    updates, _ = tx.update(grads, tx.init(params), params, **extra)
    return optax.apply_updates(params, updates)


@pytest.mark.parametrize("star", [True, False])
def test_ham_sgd_reproduces_gd_hyp_step(star):
    rng = np.random.default_rng(1)
    n = 4000
    g = jnp.asarray(rng.standard_normal(n))
    x = rng.standard_normal(n)
    near = np.arange(n) < n // 2  # half the coordinates land near 0 or flip
    x[near] = ETA * np.asarray(g)[near] * rng.uniform(0.0, 2.0, near.sum())
    x = jnp.asarray(x)
    plain = np.asarray(gd_hyp_step(x, g, ETA, ALPHA, BETA, star))
    via_optax = np.asarray(_optax_step(ham(ETA, ALPHA, BETA, star=star), x, g))
    xn = np.asarray(x)
    ulp = np.spacing(np.maximum(np.abs(xn), np.abs(plain)))
    assert np.all(np.abs(via_optax - plain) <= ULPS_PER_STEP * ulp)
    sterbenz = (plain / np.where(xn == 0, 1, xn) >= 0.5) & (plain / np.where(xn == 0, 1, xn) <= 2)
    assert sterbenz.sum() > n // 3
    assert np.array_equal(via_optax[sterbenz], plain[sterbenz])  # bitwise where exact


def test_ham_trajectory_matches_gd_hyp(star=True):
    problem, rng = _problem(2)
    x0 = 0.1 * rng.standard_normal(30)  # small start: coordinates flip sign
    a = run_iterates(GDHyp(ETA, ALPHA, BETA, star), problem, x0, steps=300)
    b = run_iterates(OptaxMethod(ham(ETA, ALPHA, BETA, star=star)), problem, x0, steps=300)
    assert int(np.sum(a.flips_step)) > 0
    scale = float(jnp.max(jnp.abs(a.xs)))
    np.testing.assert_allclose(b.xs, a.xs, rtol=0, atol=TRAJECTORY_RTOL * scale)


@pytest.mark.parametrize(
    "base", [optax.adam(0.02), optax.sgd(0.02, momentum=0.9)], ids=["adam", "momentum"]
)
def test_ham_on_adam_and_momentum(base):
    problem, rng = _problem(3)
    x = jnp.asarray(rng.standard_normal(30))
    g = problem.grad(x)
    # one step by hand: base direction, then the hyperbolic step with the RAW gradient
    u_base, _ = base.update(g, base.init(x), x)
    x_half = x + u_base
    expected = x_half * jnp.exp(-ETA * (ALPHA * jnp.sign(x_half) * g + BETA))
    got = _optax_step(ham(ETA, ALPHA, BETA, base=base), x, g)
    _assert_within_ulps(got, expected, x)
    # and it trains
    r = run_iterates(OptaxMethod(ham(ETA, ALPHA, BETA, base=base)), problem, x, steps=400,
                     record_every=400)
    assert not bool(r.diverged)
    assert float(r.loss[-1]) < 1e-2 * float(r.loss[0])


def test_ham_pytree_jit_and_schedule():
    # a float64 schedule (optax's built-in ones evaluate in float32 on the int32 count,
    # and XLA may round that float32 value differently under jit than eagerly)
    sched = lambda count: jnp.where(count < 2, 0.1, 0.05)  # noqa: E731
    tx = ham(sched, ALPHA, BETA)
    params = {"w": jnp.ones((2, 3)), "b": jnp.array([0.5, -0.5])}
    loss = lambda p: jnp.sum((p["w"] - 0.3) ** 2) + jnp.sum((p["b"] + 1.0) ** 2)  # noqa: E731
    state = tx.init(params)
    update = jax.jit(tx.update)
    p_ref = params
    for k in range(4):
        g = jax.grad(loss)(params)
        updates, state = update(g, state, params)
        params = optax.apply_updates(params, updates)
        g_ref = jax.grad(loss)(p_ref)
        p_ref = jax.tree_util.tree_map(
            lambda p, gg: gd_hyp_step(p, gg, sched(k), ALPHA, BETA), p_ref, g_ref
        )
        for key in params:
            scale = float(jnp.max(jnp.abs(p_ref[key])))
            np.testing.assert_allclose(params[key], p_ref[key], rtol=0, atol=1e-15 * scale)
    assert int(state.count) == 4


@pytest.mark.parametrize(
    "make", [lambda: ham(0.1, 1.0), lambda: ham_wrapper_faithful(0.1), lambda: ham_sam(0.1, 1.0)]
)
def test_update_without_params_raises(make):
    tx = make()
    p = jnp.ones((2, 2))
    with pytest.raises(ValueError, match="params"):
        tx.update(jnp.ones((2, 2)), tx.init(p), None)


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="learning_rate"):
        ham(-0.1, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        ham(0.1, float("nan"))
    with pytest.raises(ValueError, match="base"):
        ham(0.1, 1.0, base="sgd")
    with pytest.raises(ValueError, match="rho"):
        ham_sam(0.1, 1.0, rho=-1.0)
    with pytest.raises(ValueError, match="hyperbolic_gradient"):
        ham_sam(0.1, 1.0, hyperbolic_gradient="adam")
    with pytest.raises(ValueError, match="clamp"):
        ham_wrapper_faithful(0.1, clamp=0.0)


# --------------------------------------------------------------------------- wrapper-faithful
def test_wrapper_faithful_clamps_the_exponent():
    eta, alpha = 0.1, 200.0
    w = jnp.array([[1.0, -2.0, 0.5], [3.0, -0.5, 1.5]])
    g = jnp.array([[1.0, -1.0, -2.0], [0.5, 2.0, 0.001]])  # |ηα g| up to 40 ≫ 5
    tx = ham_wrapper_faithful(eta, alpha, 0.0, max_norm=None)
    got = np.asarray(_optax_step(tx, {"w": w}, {"w": g})["w"])
    x_half = w - eta * g
    expo = -eta * alpha * jnp.sign(x_half) * g
    assert float(jnp.max(jnp.abs(expo))) > 5 and float(jnp.min(jnp.abs(expo))) < 5
    expected = np.asarray(x_half * jnp.exp(jnp.clip(expo, -5.0, 5.0)))
    _assert_within_ulps(got, expected, w)
    unclamped = np.asarray(_optax_step(ham(eta, alpha), w, g))
    assert not np.allclose(got, unclamped)


def test_wrapper_faithful_skips_low_ndim_and_keeps_zeros():
    eta = 0.1
    params = {
        "w": jnp.array([[0.0, 1.0], [-1.0, 0.0]]),
        "b": jnp.array([0.0, 1.0]),
        "s": jnp.array(2.0),
    }
    grads = {"w": jnp.full((2, 2), 0.5), "b": jnp.array([0.5, 0.5]), "s": jnp.array(0.5)}
    tx = ham_wrapper_faithful(eta)
    new = _optax_step(tx, params, grads)
    # ndim < 2: plain SGD, zeros included
    assert np.array_equal(np.asarray(new["b"]), np.asarray(params["b"] - eta * grads["b"]))
    assert float(new["s"]) == float(params["s"] - eta * grads["s"])
    # ndim >= 2: exact zeros stay zero, the rest gets the hyperbolic step
    wn = np.asarray(new["w"])
    assert wn[0, 0] == 0.0 and wn[1, 1] == 0.0
    x_half = params["w"] - eta * grads["w"]
    expo = jnp.clip(-eta * (200.0 * jnp.sign(x_half) * grads["w"] + 1e-3), -5.0, 5.0)
    expected = np.asarray(x_half * jnp.exp(expo))
    idx = ([0, 1], [1, 0])
    _assert_within_ulps(wn[idx], expected[idx], np.asarray(params["w"])[idx])


def test_wrapper_faithful_clips_the_norm():
    w = jnp.full((3, 4), 400.0)  # Frobenius norm ≈ 1386 > 1000
    g = jnp.zeros((3, 4))
    new = _optax_step(ham_wrapper_faithful(0.01, 200.0, 0.0), {"w": w}, {"w": g})["w"]
    np.testing.assert_allclose(float(jnp.linalg.norm(new)), 1000.0, rtol=NORM_RTOL)
    small = _optax_step(ham_wrapper_faithful(0.01, 200.0, 0.0), {"w": w / 10}, {"w": g})["w"]
    assert np.array_equal(np.asarray(small), np.asarray(w / 10))  # below the bound: untouched


def test_wrapper_faithful_without_its_choices_is_ham():
    rng = np.random.default_rng(4)
    w = jnp.asarray(rng.standard_normal((5, 6)))
    g = jnp.asarray(rng.standard_normal((5, 6)))
    tx = ham_wrapper_faithful(ETA, ALPHA, BETA, clamp=jnp.inf, max_norm=None, min_ndim=0)
    a = np.asarray(_optax_step(tx, w, g))
    b = np.asarray(_optax_step(ham(ETA, ALPHA, BETA), w, g))
    assert np.array_equal(a, b)


# --------------------------------------------------------------------------- SAM
def test_ham_sam():
    problem, rng = _problem(5)
    x = jnp.asarray(rng.standard_normal(30))
    g = problem.grad(x)
    # ρ = 0 is HAM
    a = np.asarray(_optax_step(ham_sam(ETA, ALPHA, BETA, rho=0.0), x, g, grad_fn=problem.grad))
    b = np.asarray(_optax_step(ham(ETA, ALPHA, BETA), x, g))
    assert np.array_equal(a, b)
    # ρ > 0: gradient at the ascent point; the hyperbolic step uses that gradient by default
    rho = 0.1
    g_sam = problem.grad(x + rho * g / jnp.linalg.norm(g))
    for which, h in (("sam", g_sam), ("raw", g)):
        x_half = x - ETA * g_sam
        expected = np.asarray(hyperbolic_step(x_half, h, ETA, ALPHA, BETA))
        got = np.asarray(
            _optax_step(
                ham_sam(ETA, ALPHA, BETA, rho=rho, hyperbolic_gradient=which),
                x, g, grad_fn=problem.grad,
            )
        )
        _assert_within_ulps(got, expected, x)
    tx = ham_sam(ETA, ALPHA, BETA, rho=rho)
    with pytest.raises(ValueError, match="grad_fn"):
        tx.update(g, tx.init(x), x)
    r = run_iterates(OptaxMethod(tx), problem, x, steps=400, record_every=400)
    assert not bool(r.diverged) and float(r.loss[-1]) < 1e-2 * float(r.loss[0])
