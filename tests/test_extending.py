"""A method and a geometry defined here, outside the package, run everywhere a built-in does.

The geometry has inverse metric 1 + x² (mirror map arctan, inverse map tan, conjugate
−log cos φ, finite only for |φ| < π/2); the method is heavy-ball momentum.  Both run,
unchanged, through run_iterates, a sweep, predict_limit and compare, and each result is
checked against something independent of hambias's solvers.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import hambias as hb

# Mirror descent's increments −η∇f lie in range(Aᵀ), so its limit is the prediction itself,
# at any step size (measured 6e-15 relative).
ITERATE_TOL = 1e-12
# The flow to t = ∞ at default tolerances (rtol 1e-8) against the prediction (measured 4e-7).
FLOW_TOL = 1e-6
# The sweep and run_iterates run the same update in differently fused XLA programs.
BATCH_VS_LOOP = 1e-12
KKT = 1e-10
# One certified solver run twice on equal inputs: round-off of a differently ordered sum.
SAME_SOLVER = 1e-13


class ArctanGeometry(hb.AbstractGeometry):
    """R(x) = Σ x arctan x − ½ log(1 + x²): inverse metric 1 + x²."""

    def inverse_metric(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        return 1.0 + x * x

    def mirror_map(self, x):
        return jnp.arctan(jnp.asarray(x, dtype=jnp.result_type(float)))

    def inverse_mirror_map(self, phi):
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        return jnp.where(jnp.abs(phi) < jnp.pi / 2, jnp.tan(phi), jnp.sign(phi) * jnp.inf)

    def coordinate_potential(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        return x * jnp.arctan(x) - 0.5 * jnp.log1p(x * x)

    def coordinate_conjugate(self, phi):
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        inside = jnp.abs(phi) < jnp.pi / 2
        return jnp.where(inside, -jnp.log(jnp.cos(jnp.where(inside, phi, 0.0))), jnp.inf)


class HeavyBall(hb.AbstractMethod):
    """x ← x + v, v ← μv − η∇f (momentum μ): state (x, v), v₀ = 0."""

    eta: jax.Array
    momentum: float = eqx.field(static=True, default=0.5)

    def init(self, x0):
        x0 = jnp.asarray(x0, dtype=jnp.result_type(float))
        return x0, jnp.zeros_like(x0)

    def update(self, state, grad):
        x, v = state
        v = self.momentum * v - self.eta * grad
        return x + v, v

    def params(self, state):
        return state[0]

    def implicit_bias(self, state0):
        # every increment lies in range(Aᵀ): the limit is the min-norm interpolant from x₀
        return hb.Euclidean(), jnp.zeros(())


@pytest.fixture(scope="module", autouse=True)
def registered():
    hb.register_method("heavy_ball", lambda *, eta, **_: HeavyBall(eta), replace=True)
    hb.register_method("md_arctan", lambda *, eta, **_: hb.MirrorDescent(ArctanGeometry(), eta),
                       replace=True)


@pytest.fixture(scope="module")
def problem():
    p, _ = hb.sparse_regression(jax.random.key(9), 6, 14, 2)
    return p


def _independent_kkt(p, x, mirror):
    """(‖Ax − y‖/‖y‖, dist(mirror(x), range Aᵀ)/‖mirror(x)‖) by numpy least squares."""
    A, y = np.asarray(p.A), np.asarray(p.y)
    v = mirror(x)
    lam = np.linalg.lstsq(A.T, v, rcond=None)[0]
    return (np.linalg.norm(A @ x - y) / np.linalg.norm(y),
            np.linalg.norm(v - A.T @ lam) / np.linalg.norm(v))


def test_user_geometry_predicts_flows_and_iterates(problem):
    g = ArctanGeometry()
    pred = hb.predict_limit(g, problem)
    assert pred.converged and max(_independent_kkt(problem, pred.x, np.arctan)) <= KKT
    flow = hb.solve_flow(g, problem, np.zeros(problem.n), t1=np.inf)
    assert flow.converged
    assert hb.compare(pred, flow, problem=problem).relative_error <= FLOW_TOL
    eta = 0.5 / float(problem.lipschitz())
    run = hb.run_iterates(hb.MirrorDescent(g, eta), problem, np.zeros(problem.n), steps=20_000,
                          record_every=20_000)
    c = hb.compare(pred, run, problem=problem)
    assert c.status == hb.Status.SUCCESS and c.relative_error <= ITERATE_TOL
    # β > 0: its regulariser H' = x/(1 + x²) by quadrature, against scipy's minimiser
    from scipy.optimize import minimize

    A, y, beta = np.asarray(problem.A), np.asarray(problem.y), 0.1
    obj = lambda x: 0.5 * np.sum((A @ x - y) ** 2) / problem.d + beta * np.sum(
        0.5 * np.log1p(x * x))
    ref = minimize(obj, np.zeros(problem.n), method="BFGS", options={"gtol": 1e-12}).x
    pb = hb.predict_limit(g, problem, beta=beta)
    assert np.linalg.norm(pb.x - ref) <= 1e-6 * np.linalg.norm(ref)


def test_user_method_runs_and_predicts(problem):
    method = HeavyBall(0.3 / float(problem.lipschitz()))
    run = hb.run_iterates(method, problem, np.zeros(problem.n), steps=4000, record_every=4000)
    mn = problem.min_norm_interpolant()  # independent: heavy ball stays in x₀ + range(Aᵀ)
    assert np.linalg.norm(run.x - mn) <= 1e-10 * np.linalg.norm(mn)
    geometry, _ = method.implicit_bias(method.init(np.zeros(problem.n)))
    pred = hb.predict_limit(geometry, problem)
    assert hb.compare(pred, run, problem=problem).status == hb.Status.SUCCESS


def test_user_method_and_geometry_in_a_sweep(problem, tmp_path):
    A, y = np.asarray(problem.A), np.asarray(problem.y)
    np.savez(tmp_path / "data.npz", A=A, y=y)
    eta = 0.3 / float(problem.lipschitz())
    cfg = hb.SweepConfig.from_dict(
        {"steps": 500, "problem": {"file": "data.npz"}, "init": {"kind": "constant"},
         "grid": {"eta": [eta, eta / 2], "init_scale": [0.0, 0.05], "seed": [0],
                  "method": ["heavy_ball", "md_arctan"]}}, base=tmp_path)
    hb.run_sweep(cfg, tmp_path / "s", quiet=True)
    ds = hb.open_sweep(tmp_path / "s", gridded=False)
    for p in range(ds.sizes["point"]):
        pt = ds.isel(point=p)
        method = hb.make_method(str(pt.method.values), eta=float(pt.eta))
        x0 = np.full(problem.n, float(pt.init_scale))
        ref = hb.run_iterates(method, problem, x0, steps=500, record_every=500)
        np.testing.assert_allclose(pt.x.values, ref.x, rtol=0, atol=BATCH_VS_LOOP)
        geometry, beta = method.implicit_bias(method.init(x0))
        pred = hb.predict_limit(geometry, problem, x0)
        # the same solver on the same float64 values; BLAS may sum in another order for
        # arrays at other addresses (the sweep reads A from the data file)
        np.testing.assert_allclose(pt.x_pred.values, pred.x, rtol=SAME_SOLVER, atol=0)
        assert int(pt.prediction_status) == hb.Status.SUCCESS
