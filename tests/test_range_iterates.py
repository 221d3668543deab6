"""The range test of run_iterates: right against a 60-digit reference, or refused.

Over α ∈ [1e-300, 1e300], the m⊙w balance γ ∈ [1e-300, 1e2], step sizes up to the
stability limit and beyond, starts from 1e-300 to 1e150 and designs with κ(A) up to
1e12, every run either ends with status SUCCESS and agrees with the same recursion
evaluated in 60-digit mpmath arithmetic (an independent evaluation: no float64
rounding, no overflow) or ends with a divergence status whose reason the reference
confirms (its iterate leaves float64's range or exceeds the blow-up threshold).
"""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import hambias as hb

EPS = np.finfo(float).eps
DPS = 60
# A float64 recursion of k contracting steps accumulates about k·ε relative error per
# coordinate (each step rounds a few times); 50·k·ε leaves room for the few operations
# per step.  Never looser than 1e-12 at the step counts used here.
def step_tol(k):
    return 50 * k * EPS


def _sign(v):
    return 0 if v == 0 else (1 if v > 0 else -1)


def mp_gdhyp_1d(theta0, target, eta, alpha, steps, star=True):
    """θ ← (θ − ηg)·exp(−η α sign(s) g), g = θ − target, in 60-digit arithmetic."""
    with mp.workdps(DPS):
        th, t, e, a = (mp.mpf(v) for v in (theta0, target, eta, alpha))
        path = []
        for _ in range(steps):
            g = th - t
            half = th - e * g
            s = _sign(half if star else th)
            z = -e * a * s * g
            # beyond e^{±10⁴} the iterate has left float64's range for good: record ±inf or
            # 0 rather than let the exact numbers grow without bound
            th = half * (mp.inf if z > 1e4 else 0 if z < -1e4 else mp.exp(z))
            path.append(th)
        return path


def _ok_or_refused(result, ref_path, theta0=0.0, target=1.0, blowup=1e12):
    """Either SUCCESS and equal to the reference, or a divergence the reference confirms:
    at the rejected step the exact iterate is beyond ``blowup`` or has a loss
    (θ − target)²/2 above f₀ + 1e12·f₀ or beyond float64's range
    (hambias.iterates.divergence_status)."""
    status = hb.Status(int(result.status))
    if status == hb.Status.SUCCESS:
        ref = float(ref_path[-1])
        got = float(np.asarray(result.x)[0])
        assert abs(got - ref) <= step_tol(len(ref_path)) * max(abs(ref), 1e-300) + 1e-300, \
            (got, ref)
        return "right"
    assert status.diverged, status
    k = int(result.divergence_step)
    bad = ref_path[k - 1] if k >= 1 else None
    f0 = (mp.mpf(theta0) - target) ** 2 / 2
    fmax = np.finfo(float).max  # r² itself overflows float64: the loss is inf
    assert bad is not None and (abs(bad) > blowup or (bad - target) ** 2 / 2 > f0 * (1 + 1e12)
                                or (bad - target) ** 2 > fmax), (k, bad)
    return "refused"


@pytest.mark.parametrize("alpha", [1e-300, 1e-12, 1e-3, 1.0, 1e3, 1e12, 1e300])
@pytest.mark.parametrize("theta0", [0.0, 1e-300, 0.5, 1.5, -2.0])
def test_gd_hyp_star_1d_over_alpha(alpha, theta0):
    # f(θ) = (θ − 1)²/2; η = 0.1.  Small α: GD-like, right.  Huge α: the exponent
    # overflows or underflows; the run is either right (θ stays where the reference
    # puts it) or refused with a divergence status the reference confirms.
    problem = hb.LinearRegression(np.ones((1, 1)), np.ones(1))
    steps, eta = 60, 0.1
    res = hb.run_iterates(hb.GDHyp(eta, alpha), problem, np.array([theta0]), steps=steps,
                          record_every=steps)
    outcome = _ok_or_refused(res, mp_gdhyp_1d(theta0, 1.0, eta, alpha, steps), theta0)
    if alpha <= 1.0:  # stable: η(1 + α|θ*|) < 2 (docs: stability); larger α may diverge
        assert outcome == "right"


@pytest.mark.parametrize("eta", [1e-12, 1e-3, 0.5, 1.9, 2.1])
@pytest.mark.parametrize("theta0", [1e-300, 1.0, 1e150])
def test_gd_1d_closed_form(eta, theta0):
    # GD on (θ − 1)²/2: θ_k = 1 + (1 − η)^k (θ₀ − 1), exactly; η > 2 diverges.
    problem = hb.LinearRegression(np.ones((1, 1)), np.ones(1))
    steps = 200
    if theta0 > hb.iterates.DEFAULT_BLOWUP:  # a start beyond the blow-up threshold: refused
        with pytest.raises(ValueError, match="blow-up threshold"):
            hb.run_iterates(hb.GD(eta), problem, np.array([theta0]), steps=steps)
    res = hb.run_iterates(hb.GD(eta), problem, np.array([theta0]), steps=steps,
                          record_every=steps, blowup=1e300)
    with mp.workdps(DPS):
        path = [1 + (1 - mp.mpf(eta)) ** k * (mp.mpf(theta0) - 1) for k in range(1, steps + 1)]
    outcome = _ok_or_refused(res, path, theta0, blowup=1e300)
    # η > 2 diverges, except from the minimiser itself (θ₀ = 1: g = 0 at every step)
    assert outcome == ("refused" if eta > 2 and theta0 != 1.0 else "right")


@pytest.mark.parametrize("gamma", [1e-300, 1e-24, 1e-6, 1.0, 1e2])
def test_mw_gradient_descent_1d_over_gamma(gamma):
    # (m, w) GD on f(mw) = (mw − 1)²/2 from the start with m₀w₀ = 0 and balance γ, against
    # the same recursion in 60 digits; the first steps at γ = 1e-300 are subnormal-scale.
    problem = hb.LinearRegression(np.ones((1, 1)), np.ones(1))
    # stable step: η(m² + w²) < 2 along the way, with m² + w² = √(4(mw)² + 4γ²) ≤ 2(1 + γ)
    eta, steps = 0.1 / (1 + gamma), 3000
    method = hb.MWGradientDescent(eta, gamma=gamma)
    res = hb.run_iterates(method, problem, np.zeros(1), steps=steps, record_every=steps)
    m0, w0 = (float(v[0]) for v in method.init(np.zeros(1)))
    with mp.workdps(DPS):
        m, w, e = mp.mpf(m0), mp.mpf(w0), mp.mpf(eta)
        path = []
        for _ in range(steps):
            g = m * w - 1
            m, w = m - e * w * g, w - e * m * g
            path.append(m * w)
    # γ ≤ 1e-24 from x₀ = 0: m₀w₀ = 0 with w₀ = 0, so the flow is stuck at the saddle
    # (both the float and the exact recursion stay at 0); otherwise it reaches 1.
    assert _ok_or_refused(res, path) == "right"


@pytest.mark.parametrize("kappa", [1.0, 1e4, 1e8, 1e12])
def test_gd_on_ill_conditioned_designs(kappa):
    # GD on ‖Ax − y‖²/(2d) with κ(A) up to 1e12: a contraction whatever κ (η < 2/L), so the
    # float iterates track the 60-digit recursion to about k·ε of their size.
    rng = np.random.default_rng(0)
    U, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    V, _ = np.linalg.qr(rng.standard_normal((9, 4)))
    A = (U * np.logspace(0, -np.log10(kappa), 4)) @ V.T
    y = rng.standard_normal(4)
    problem = hb.LinearRegression(A, y)
    eta, steps = 1.0 / float(problem.lipschitz()), 300
    res = hb.run_iterates(hb.GD(eta), problem, np.zeros(9), steps=steps, record_every=steps)
    assert int(res.status) == hb.Status.SUCCESS
    with mp.workdps(DPS):
        Am, ym, e = mp.matrix(A.tolist()), mp.matrix(y.tolist()), mp.mpf(eta)
        x = mp.matrix(9, 1)
        for _ in range(steps):
            x = x - e * (Am.T * (Am * x - ym)) / 4
        ref = np.array([float(v) for v in x])
    assert np.linalg.norm(np.asarray(res.x) - ref) <= step_tol(steps) * np.linalg.norm(ref)


def test_validation_works_under_jit_and_vmap():
    # Bad hyperparameters raise eagerly and at run time under jit; vmap over a batch of α
    # equals the loop.
    problem = hb.LinearRegression(np.ones((1, 2)), np.ones(1))
    with pytest.raises(ValueError, match="eta must be > 0"):
        hb.GDHyp(-1.0, 1.0)
    with pytest.raises(Exception, match="eta must be finite and > 0"):
        jax.jit(lambda e: hb.run_iterates(hb.GDHyp(e, 1.0), problem, jnp.zeros(2),
                                          steps=3).x)(-1.0).block_until_ready()
    run = lambda a: hb.run_iterates(hb.GDHyp(0.1, a), problem, jnp.zeros(2), steps=20,
                                    record_every=20).x
    alphas = jnp.array([0.0, 1e-300, 1.0, 1e3])
    np.testing.assert_array_equal(jax.vmap(run)(alphas), np.stack([run(a) for a in alphas]))
