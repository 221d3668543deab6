"""One status vocabulary: codes, messages, and throw= eagerly and under jit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hambias as hb
from hambias.status import Status, StatusError, raise_for_status


def test_codes_are_stable_and_every_member_explains_itself():
    # stored sweeps hold these integers: they must never change meaning
    assert {s.name: s.value for s in Status} == {
        "SUCCESS": 0, "MAX_STEPS": 1, "SOLVER_FAILURE": 2, "NON_FINITE": 3, "LEFT_DOMAIN": 4,
        "BLOWUP": 5, "LOSS_BLOWUP": 6, "NO_STEADY_STATE": 7, "MAX_ITER": 8, "LINE_SEARCH": 9,
        "OVERFLOW": 10, "CERTIFICATE": 11, "NOT_COMPUTED": 12, "OUT_OF_RANGE": 13}
    assert Status(0) is Status.SUCCESS and Status.SUCCESS.ok
    assert all(len(s.message) > 5 for s in Status)
    assert {s for s in Status if s.diverged} == {Status.NON_FINITE, Status.BLOWUP,
                                                 Status.LOSS_BLOWUP}


def test_results_of_every_kind_report_a_status():
    p = hb.LinearRegression(np.eye(1, 2), np.ones(1))
    flow = hb.solve_flow(hb.HAMGeometry(1.0), p, np.zeros(2), t1=np.inf)
    run = hb.run_iterates(hb.GD(0.5), p, np.zeros(2), steps=10)
    pred = hb.predict_limit(hb.HAMGeometry(1.0), p)
    comp = hb.compare(pred, flow, problem=p)
    for status in (flow.status, run.status, pred.status, comp.status):
        assert Status(int(status)) is Status.SUCCESS


def test_throw_raises_eagerly_and_under_jit():
    p = hb.LinearRegression(np.eye(1), np.array([2.5]))
    bad = hb.GDHyp(5.0, 1.0)  # far beyond the stability limit: diverges
    res = hb.run_iterates(bad, p, np.zeros(1), steps=50)
    assert Status(int(res.status)).diverged
    with pytest.raises(StatusError) as err:
        hb.run_iterates(bad, p, np.zeros(1), steps=50, throw=True)
    assert err.value.status.diverged
    with pytest.raises(Exception, match="run_iterates: .*diverged"):
        jax.jit(lambda e: hb.run_iterates(hb.GDHyp(e, 1.0), p, jnp.zeros(1), steps=50,
                                          throw=True).x)(5.0).block_until_ready()
    short = dict(t1=10.0, method="tsit5", max_steps=3, stop_at_steady_state=False)
    flow = hb.solve_flow(hb.HAMGeometry(1.0), p, np.zeros(1), **short)
    assert Status(int(flow.status)) is Status.MAX_STEPS
    with pytest.raises(StatusError, match="solve_flow: the step budget"):
        hb.solve_flow(hb.HAMGeometry(1.0), p, np.zeros(1), **short, throw=True)
    with pytest.raises(hb.PredictionError) as perr:
        hb.predict_limit(hb.HAMGeometry(30.0), hb.LinearRegression(np.eye(1, 3), np.ones(1)),
                         max_iter=1)
    assert isinstance(perr.value, StatusError) and perr.value.status is Status.MAX_ITER


def test_raise_for_status_on_arrays():
    assert raise_for_status(np.zeros(3, int), what="x") is not None
    with pytest.raises(StatusError, match=r"x: the conjugate or its Hessian overflowed \(1 of 3\)"):
        raise_for_status(np.array([0, 10, 0]), what="x")
