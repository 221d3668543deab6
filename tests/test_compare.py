"""hambias.compare: errors, Bregman gaps, residuals and convergence orders."""

import dataclasses
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hambias import HAMGeometry, sparse_regression
from hambias.compare import Comparison, compare, convergence_order
from hambias.methods import gd_hyp_step
from hambias.predict import predict_limit
from hambias.status import Status

# The Bregman gap of a small perturbation δ matches its quadratic model ½Σδ²/(1 + α|x|)
# up to the cubic term, relative size ~α|δ|: 1e-2 covers |δ| ~ 1e-4, α = 1.
TAYLOR_RTOL = 1e-2
# Exact arithmetic identities evaluated in float64.
EXACT = 1e-12
# Fitted order of a first-order method from halvings η₀/4 … η₀/16 (measured 0.99–1.07:
# docs/theory/implicit-bias.md#implicit-bias-measured).
ORDER_ONE = (0.9, 1.1)
# GD + HYP* at η₀/16 against the prediction: the acceptance bound is 2e-3 at η₀/8
# (docs/theory/implicit-bias.md#implicit-bias-measured: up to 7e-4 there for α ≤ 10) and the
# error is O(η), so 1e-3 at η₀/16 (measured here: 7.4e-4, 3.6e-4, 1.8e-4 at η₀/4, /8, /16).
ITERATE_RTOL = 1e-3


@pytest.fixture(scope="module")
def setup():
    p, _ = sparse_regression(jax.random.key(1), 20, 100, 5)
    x0 = np.random.default_rng(2).normal(size=p.n) / 10
    return p, x0, predict_limit(HAMGeometry(1.0), p, x0)


def test_self_comparison_is_zero(setup):
    p, x0, pred = setup
    c = compare(pred, pred, problem=p)
    assert isinstance(c, Comparison) and c.status == Status.SUCCESS and c.source == ""
    assert c.relative_error == 0 and c.absolute_error == 0 and c.max_error == 0
    assert c.bregman_gap == 0
    assert c.result_primal_residual <= 1e-10 and c.result_dual_residual <= 1e-10
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.status = Status.MAX_STEPS


def test_errors_and_bregman_gap_of_a_perturbation(setup):
    p, x0, pred = setup
    delta = 1e-4 * np.random.default_rng(3).normal(size=p.n)
    c = compare(pred, pred.x + delta)  # a plain array is accepted
    assert abs(c.absolute_error - np.linalg.norm(delta)) <= EXACT
    assert abs(c.relative_error - np.linalg.norm(delta) / np.linalg.norm(pred.x)) <= EXACT
    assert abs(c.max_error - np.max(np.abs(delta))) <= EXACT
    quad = 0.5 * np.sum(delta**2 / (1 + np.abs(pred.x)))
    assert abs(c.bregman_gap - quad) <= TAYLOR_RTOL * quad
    assert c.result_primal_residual is None  # no problem given


def _gd_hyp(p, x0, eta, steps):
    def body(_, x):
        return gd_hyp_step(x, p.A.T @ (p.A @ x - p.y) / p.d, eta, 1.0)

    return jax.jit(lambda x: jax.lax.fori_loop(0, steps, body, x))(jnp.asarray(x0))


def test_iterates_against_prediction_and_convergence_order(setup):
    p, x0, pred = setup
    eta0 = 0.5 / (float(p.lipschitz()) * (1 + np.max(np.abs(pred.x))))
    T = 40.0 / float(p.pl_constant())
    etas = [eta0 / 4, eta0 / 8, eta0 / 16]
    comps = []
    for eta in etas:
        run = types.SimpleNamespace(x=_gd_hyp(p, x0, eta, int(np.ceil(T / eta))), converged=True)
        comps.append(compare(pred, run, problem=p))
    assert all(c.status == Status.SUCCESS for c in comps)
    assert comps[-1].relative_error <= ITERATE_RTOL
    assert comps[-1].result_primal_residual <= 1e-8  # converged: on {Ax = y}
    order = convergence_order(etas, [c.relative_error for c in comps])
    assert ORDER_ONE[0] <= order <= ORDER_ONE[1]


def test_unconverged_prediction_is_flagged(setup):
    p, x0, _ = setup
    bad = predict_limit(HAMGeometry(1.0), p, x0, max_iter=1, throw=False)
    assert not bad.converged
    c = compare(bad, types.SimpleNamespace(x=np.asarray(bad.x), converged=True), problem=p)
    assert c.source == "prediction" and c.status == Status.MAX_ITER
    assert "certificate" in c.message


def test_result_flags_and_non_finite(setup):
    p, x0, pred = setup
    bad = compare(pred, types.SimpleNamespace(x=np.full(p.n, np.nan)))
    assert bad.status == Status.NON_FINITE and bad.relative_error == np.inf
    assert bad.source == "result" and "NaN" in bad.message
    div = compare(pred, types.SimpleNamespace(x=pred.x, diverged=True))
    assert div.status.diverged and "diverged" in div.message
    nc = compare(pred, types.SimpleNamespace(x=pred.x, converged=False))
    assert nc.status == Status.MAX_STEPS and nc.source == "result"


def test_beta_comparison_uses_stationarity(setup):
    p, _, _ = setup
    pred = predict_limit(HAMGeometry(1.0), p, beta=0.1)
    c = compare(pred, pred.x, problem=p)
    assert c.result_primal_residual == 0.0 and c.result_dual_residual <= 1e-10
    shifted = compare(pred, pred.x + 1e-3, problem=p)
    assert shifted.result_dual_residual > 1e-6  # away from the minimiser: not stationary


def test_bad_input():
    p, _ = sparse_regression(jax.random.key(1), 4, 10, 2)
    pred = predict_limit(HAMGeometry(1.0), p)
    with pytest.raises(ValueError, match="shape"):
        compare(pred, np.zeros(3))
    with pytest.raises(ValueError, match="Prediction"):
        compare(pred.x, pred)
    assert convergence_order([1.0, 0.5, 0.25], [1.0, 0.25, 0.0625]) == pytest.approx(2.0, abs=EXACT)
    with pytest.raises(ValueError, match="at least 2"):
        convergence_order([1.0], [1.0])
    with pytest.raises(ValueError, match="positive"):
        convergence_order([1.0, 0.5], [0.0, 1.0])
    with pytest.raises(ValueError, match="distinct"):
        convergence_order([1.0, 1.0], [1.0, 2.0])
