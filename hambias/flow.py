"""Continuous-time flows: the HAM flow, gradient flow and any mirror flow, to t1 or to t = ∞.

:func:`solve_flow` integrates, for any geometry and any differentiable loss
(docs/theory/setting.md#setting, docs/theory/ham-flow.md#ham-flow,
docs/theory/explicit-bias.md#explicit-bias),

    dθ_t = −g⁻¹(θ_t) ⊙ ∇f(θ_t) dt − β θ_t dt

with an adaptive solver, either in JAX (diffrax: jit, vmap, GPU) or with scipy
(the independent cross-check).  For β = 0 this is the mirror flow
d∇R(θ_t) = −∇f(θ_t) dt of the geometry's potential R; for β > 0 it is the
Riemannian gradient flow of F = f + βH with ∇F(θ) = ∇f(θ) + β θ / g⁻¹(θ)
(docs/theory/explicit-bias.md#explicit-bias), and ‖∇F‖ is the stationarity residual used
for t = ∞.

The solver integrates the scaled mirror coordinate ψ = c ⊙ ∇R(θ), in which the
flow reads dψ/dt = −c ⊙ ∇F(θ(ψ)) with the closed-form inverse map θ = (∇R)⁻¹(ψ/c):
the escape of a small initialisation (|θ| ~ γ or 1/α, far below any absolute
tolerance) is linear there instead of exponential, and a box domain (HAM, α < 0)
cannot be left.  Its error control holds θ to rtol·|θ| + min(atol, rtol·s), s the
geometry's own length scale, in every regime (see :func:`solve_flow`).

The HAM flow is stiff where α|θ| is large: the Jacobian −g⁻¹∇²f has eigenvalues
up to (1 + α max|θ|)·L, in either coordinates.  The transient to the interpolating
set is not stiff; only the approach to the limit is.  Hence the default
``method="auto"``: an explicit Tsit5 with a steady-state event (which stops the solve
before stiffness costs anything) and, if the explicit solver spends its step budget,
a switch to the L-stable implicit Kvaerno5 from where it stopped.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike

from ._validate import check_bounds, check_finite
from ._validate import is_concrete as _is_concrete
from .geometry import AbstractGeometry
from .problems import AbstractProblem
from .status import Status, raise_for_status

__all__ = ["BetaSchedule", "FlowResult", "solve_flow", "flow_vector_field",
           "stationarity_residual"]

# -- status codes: the members of hambias.Status a flow can end with ---------------
STATUS_SUCCESS = Status.SUCCESS  # reached t1 (finite t1) or a steady state (t1 = inf)
STATUS_MAX_STEPS = Status.MAX_STEPS  # step budget spent before t1 / before a steady state
STATUS_SOLVER_FAILURE = Status.SOLVER_FAILURE  # step size underflow, implicit breakdown, ...
STATUS_NON_FINITE = Status.NON_FINITE  # the state became NaN or inf: the flow diverged
STATUS_LEFT_DOMAIN = Status.LEFT_DOMAIN  # the state reached the boundary of the domain
STATUS_OUT_OF_RANGE = Status.OUT_OF_RANGE  # θ reached the overflow of the inverse mirror map

_STATUS_TEXT = {
    STATUS_SUCCESS: "success",
    STATUS_MAX_STEPS: "the maximum number of steps was reached before the end of the solve "
    "(raise max_steps, or loosen rtol/atol)",
    STATUS_SOLVER_FAILURE: "the ODE solver failed (step size underflow or implicit-solve "
    "breakdown)",
    STATUS_NON_FINITE: "the state became NaN or inf: the flow diverged",
    STATUS_LEFT_DOMAIN: "the state reached the boundary of the geometry's domain to float64 "
    "precision (HAM with alpha < 0: the box |x| < 1/|alpha|)",
    STATUS_OUT_OF_RANGE: "x reached the float64 range of the geometry: x or its inverse "
    "metric overflows just beyond the state (|x| near 1.8e308; HAM: 1 + alpha·|x| near "
    "1.8e308), so the flow cannot be followed further in float64",
}

# A solve that spends its step budget with ‖x‖ above this factor times max(‖x₀‖, 1) is
# reported as a likely finite-time blow-up (x' = 4x³ from 1 stops at t = 0.125 with
# ‖x‖ ~ 1e7) rather than only as "raise max_steps"; the 1 keeps x₀ = 0 from counting
# any growth as a blow-up.  Scalar results only (a vmapped message summarises codes), and
# only when the first save time is t = 0.
_BLOWUP_GROWTH = 1e6

# Step budget of the explicit stage of method="auto".  Tsit5 with the steady-state
# event needs 190-2,800 steps to t = ∞ on a 20×100 regression for α from 0 to 1e4
# at rtol 1e-10 (benchmarks/bench_flow.py), so 10,000 leaves a 3.5× margin; when it
# is spent (a stiff finite-horizon solve) about 0.1 s has been used and Kvaerno5
# continues from the state reached, so nothing is integrated twice.
AUTO_EXPLICIT_STEPS = 10_000

# Default steady_tol = 10·rtol.  Measured (α = 1e4, 10×30 regression): with
# rtol = 1e-8, a stationarity tolerance of 1e-9 is below the residual noise of an
# explicit solver at its stability limit, Tsit5 spent 10,000 steps and auto had to
# switch; at steady_tol = 10·rtol it stops in a few hundred steps.  The baselines
# (docs/baselines.md#flows-to-infinity) used rtol 1e-10 with a 1e-9 relative residual.
STEADY_TOL_PER_RTOL = 10.0

_FLOAT64_MAX = float(np.finfo(np.float64).max)
# coordinates="primal" ties atol to rtol·s (s = the geometry's length scale).  Below this
# the step-size controller works with numbers near the subnormal range (normals end at
# 2.2e-308) and stalls at t = 0 (measured: γ = 1e-300 and α = 1e300 at rtol 1e-8, where
# γ = 1e-295 still works); such calls are refused (mirror coordinates handle them).
_PRIMAL_MIN_ATOL = 1e-300

# float32 has eps ≈ 1.2e-7: requested relative tolerances below this cannot be met.
_FLOAT32_MIN_RTOL = 1e-5

# Save grid for t1 = ∞ (the horizon is unknown): t = 0, then log-spaced times in
# [_INF_GRID_FIRST, _INF_GRID_LAST]; times after the steady state repeat it.
_INF_GRID_FIRST = 1e-3
_INF_GRID_LAST = 1e6
# scipy needs a finite t_bound; with t1 = ∞ the solve ends at the steady-state event.
_SCIPY_T_INF = 1e15
# Bisection iterations of the crossing and first-passage root finds on a step's interpolant:
# 2⁻⁶⁰ of a step is below float64 resolution of any step length.
_CROSSING_BISECTIONS = 60

# The stage equations of diffrax's ESDIRK solvers (Kvaerno) are solved for the stage
# *derivatives* f_i, and diffrax's default stops the chord iteration on the step
# controller's (rtol, atol), tolerances meant for y, applied to f_i.  On a stiff flow the
# roundoff of f (≈ eps·‖J‖·|y|, ‖J‖ up to (1 + α max|θ|)·L) is far above atol + rtol·|f|
# near a rest point, the iteration is declared divergent at every step, and the step is
# rejected until h is tiny: the implicit stage crawled at h ≈ 1e-14 at α = 1e12 (5×10
# regression, 61k rejections in 110k steps) and never reached a steady state.  An infinite
# atol makes every stage stop after its second chord iteration with the exact Jacobian of
# the step start (a NaN still counts as divergence); the embedded error estimate then
# decides the step.  Measured: that 5×10 solve now reaches t1 = 1 with 187 implicit steps;
# the 20×100 regression at α = 1e12 reaches its steady state with 134, 3.6e-7 from
# predict_limit (steady_tol 1e-7); at α = 1e4 the endpoint agrees with scipy LSODA to 1e-7
# (tests/test_flow.py::test_auto_switches_to_implicit_on_a_stiff_horizon).
_ROOT_FINDER_ATOL = math.inf

_DIFFRAX_METHODS = ("auto", "tsit5", "dopri5", "dopri8", "kvaerno3", "kvaerno5")
_SCIPY_METHODS = ("auto", "RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
_SCIPY_IMPLICIT = ("Radau", "BDF", "LSODA")


# -- the vector field -------------------------------------------------------------
def flow_vector_field(
    geometry: AbstractGeometry, problem: AbstractProblem, x: ArrayLike, *, beta: ArrayLike = 0.0
) -> Array:
    """The flow's velocity −g⁻¹(x) ⊙ ∇f(x) − βx.

    See docs/theory/ham-flow.md#ham-flow and, for β > 0, docs/theory/explicit-bias.md#explicit-bias.

    Args:
        geometry: supplies the inverse metric g⁻¹.
        problem: supplies ∇f.
        x: the state, shape (n,).
        beta: the decay rate β ≥ 0.

    Returns:
        ẋ, shape (n,).

    >>> import jax.numpy as jnp
    >>> from hambias import HAMGeometry, LossProblem
    >>> p = LossProblem(lambda x: 0.5 * jnp.sum(x**2))
    >>> flow_vector_field(HAMGeometry(1.0), p, jnp.array([2.0])).tolist()
    [-6.0]
    """
    x = jnp.asarray(x)
    return -geometry.inverse_metric(x) * problem.grad(x) - beta * x


def stationarity_residual(
    geometry: AbstractGeometry, problem: AbstractProblem, x: ArrayLike, *, beta: ArrayLike = 0.0
) -> Array:
    """‖∇F(x)‖₂, ∇F = ∇f(x) + β x / g⁻¹(x): the mirror-coordinate speed ‖d∇R(x)/dt‖.

    It vanishes exactly at the flow's rest points (g⁻¹ > 0); :func:`solve_flow`
    stops a t = ∞ solve when it falls below ``steady_tol`` times its value at x₀.

    >>> import jax.numpy as jnp
    >>> from hambias import Euclidean, LossProblem
    >>> p = LossProblem(lambda x: 0.5 * jnp.sum(x**2))
    >>> float(stationarity_residual(Euclidean(), p, jnp.array([3.0, 4.0])))
    5.0
    """
    return jnp.linalg.norm(_mirror_gradient(geometry, problem, jnp.asarray(x), beta))


def _mirror_gradient(geometry, problem, x, beta):
    """∇F(x) = ∇f(x) + β x / g⁻¹(x), the β-term written so that β = 0 adds exact zeros
    (x/g⁻¹ is 0/0 where g⁻¹ vanishes: HAM with α < 0 on the wall)."""
    decay = jnp.where(beta == 0, 0.0, beta * x / geometry.inverse_metric(x))
    return problem.grad(x) + decay


# -- coordinates ---------------------------------------------------------------------
# The solver's state y is either the scaled mirror coordinate ψ = c ⊙ ∇R(θ) ("mirror",
# the default) or θ itself ("primal").  In mirror coordinates the flow is
#     dψ/dt = −c ⊙ ∇F(θ),   θ = (∇R)⁻¹(ψ / c),
# which never leaves the domain of R, needs no inverse metric (β = 0), and grows linearly
# where θ grows exponentially (the escape of a small initialisation).  c = g⁻¹(0)/ℓ with
# ℓ = min(s, atol/rtol) (s = geometry.length_scale()) keeps ψ of order log(|θ|/ℓ) at any
# γ or α (HAM at α = 1e300 has ∇R ~ 7e-298, and c brings it to ~700).
#
# Error control (_ThetaTolerance) is the same in both: the local error of θ is held
# below rtol·|θ_i| + rtol·ℓ_i = rtol·|θ_i| + min(atol, rtol·s_i), transported to y by
# dy/dθ (c/g⁻¹(θ) in mirror coordinates).  So atol keeps its meaning wherever the
# geometry has no smaller scale of its own, and the early dynamics of an initialisation
# below atol (|θ| ~ γ ≪ atol) are resolved; in mirror coordinates a pure relative
# tolerance on θ is an absolute one on the logarithmic ψ.
COORDINATES = ("mirror", "primal")

# A mirror-coordinate state within this distance of ψ (scaled so that dψ/dθ = 1/ℓ at 0;
# a factor e in |θ| where the map is logarithmic) of the overflow of the inverse mirror map
# is at the end of float64: the solver would shrink its steps there forever (a stalled
# solve spent 110,000 steps at m⊙w γ = 1e-300 near |θ| = 1.8e8).  The approach to the
# overflow is geometric, so the margin only changes how many rejected steps lead there.
_RANGE_MARGIN = 1.0
# bisections of a scipy step that left the range: 60 halve the step to its float64 resolution
_RANGE_BISECTIONS = 60


@jax.custom_jvp
def _inverse_map(geometry, c, y):
    """θ = (∇R)⁻¹(y/c), with ∂θ/∂y = g⁻¹(θ)/c as its derivative.

    That is the identity ∇²R* = g⁻¹∘(∇R)⁻¹ (docs/theory/potential.md#conjugate), evaluated as
    the product of two O(1) numbers.  Autodiff through HAM's closed form instead multiplies
    factors of size α and e^{α|φ|} before dividing by c: at α = 1e300 reverse mode overflows
    (jax.jacrev of the field on a 10×30 regression: 898 of 900 entries non-finite with ψ up
    to 690), and Kvaerno5 rejected step after step (15,000 steps short of the steady state,
    where m⊙w at γ = 1e-300, the same flow in units of time α·t, needs 1,311; with this rule
    it needs 1,711).
    """
    return geometry.inverse_mirror_map(y / c)


@functools.partial(_inverse_map.defjvp, symbolic_zeros=True)
def _inverse_map_jvp(primals, tangents):
    geometry, c, y = primals
    d_geometry, d_c, d_y = tangents
    x = _inverse_map(geometry, c, y)
    out = jnp.zeros_like(x)
    if not isinstance(d_y, SymbolicZero):
        out = out + geometry.inverse_metric(x) / c * d_y
    zero = lambda t: isinstance(t, SymbolicZero)
    if not all(zero(t) for t in jax.tree_util.tree_leaves((d_geometry, d_c), is_leaf=zero)):
        # derivatives in the geometry's parameters or c (forward-mode sensitivities): the
        # closed form's own, with y held fixed
        d_geometry, d_c = jax.tree_util.tree_map(
            lambda t, p: jnp.zeros_like(p) if zero(t) else t, (d_geometry, d_c),
            (geometry, c), is_leaf=zero)
        out = out + jax.jvp(lambda g, k: g.inverse_mirror_map(y / k), (geometry, c),
                            (d_geometry, d_c))[1]
    return x, out


class _Chart(eqx.Module):
    """The state ↔ θ maps, the vector field and the error weights of one choice of
    coordinates (static).  ``args = (geometry, problem, beta, threshold, c, ell)``."""

    name: str = eqx.field(static=True)

    def to_x(self, y, args):
        geometry, c = args[0], args[4]
        return _inverse_map(geometry, c, y) if self.name == "mirror" else y

    def from_x(self, x, args):
        geometry, c = args[0], args[4]
        return c * geometry.mirror_map(x) if self.name == "mirror" else x

    def field(self, t, y, args):
        geometry, problem, beta, _, c, _ = args
        if self.name == "mirror":
            return -c * _mirror_gradient(geometry, problem, self.to_x(y, args), beta)
        return flow_vector_field(geometry, problem, y, beta=beta)

    def weight(self, y, args):
        """(ℓ + |θ|)·dy/dθ: the error the controller allows in y is rtol times this."""
        geometry, c, ell = args[0], args[4], args[5]
        x = self.to_x(y, args)
        if self.name == "mirror":
            # divided before scaling: c·(ℓ + |θ|) overflows first where c = g⁻¹(0)/ℓ is large
            return c * ((ell + jnp.abs(x)) / geometry.inverse_metric(x))
        return ell + jnp.abs(x)

    def stops(self, y, args):
        """Why a solve stops at state y: (steady, at the boundary, at the range limit).

        * steady: ‖∇F(θ)‖ ≤ threshold (−1 when it must never fire);
        * at the boundary: a finite θ on or beyond the boundary of the domain; in mirror
          coordinates θ has rounded onto the wall (the flow goes there and has no rest
          point inside), in primal coordinates a step crossed it;
        * at the range limit (mirror coordinates): the inverse map overflows within
          _RANGE_MARGIN of ψ, where trial steps are rejected and the step would collapse.
        """
        geometry, problem, beta, threshold = args[:4]
        x = self.to_x(y, args)
        steady = jnp.linalg.norm(_mirror_gradient(geometry, problem, x, beta)) <= threshold
        boundary = jnp.any(geometry.domain_violation(x) & jnp.isfinite(x))
        if self.name != "mirror":
            return steady, boundary, jnp.asarray(False)
        return steady, boundary, ~self.in_range(y, args)

    def representable(self, y, args):
        """Whether θ(y) and the inverse metric there are finite (always, in primal
        coordinates, where the state is θ)."""
        if self.name != "mirror":
            return jnp.asarray(True)
        x = self.to_x(y, args)
        return jnp.all(jnp.isfinite(x)) & jnp.all(jnp.isfinite(args[0].inverse_metric(x)))

    def in_range(self, y, args):
        """Whether θ(y) is inside float64's range with a margin (mirror coordinates).

        False where θ or the inverse metric overflows within _RANGE_MARGIN of y (there
        the controller rejects every trial step and the step would collapse), or where
        |θ| is within a factor e of float64's largest number (where the inverse map is
        evaluated without intermediate overflow, HAM and m⊙w, that comes first).
        """
        if self.name != "mirror":
            return jnp.asarray(True)
        x = self.to_x(y, args)
        huge = jnp.any(jnp.abs(x) > jnp.finfo(x.dtype).max / np.e)
        return self.representable(y + _RANGE_MARGIN * jnp.sign(y), args) & ~huge

    def stop(self, t, y, args, **kwargs):
        """The event of the diffrax solve: any reason in :meth:`stops` (one θ per step)."""
        steady, boundary, limit = self.stops(y, args)
        return steady | boundary | limit


_CHARTS = {name: _Chart(name) for name in COORDINATES}


def _chart_args(chart, geometry, problem, beta, threshold, x0, rtol, atol):
    """The solver's args: (geometry, problem, β, threshold, c, ℓ), c and ℓ per coordinate."""
    s = jnp.broadcast_to(jnp.asarray(geometry.length_scale(), x0.dtype), x0.shape)
    ell = jnp.minimum(s, atol / rtol)
    if chart == "mirror":
        c = geometry.inverse_metric(jnp.zeros_like(x0)) / ell
    else:
        c = jnp.ones_like(x0)
    return (geometry, problem, beta, threshold, c, ell)


# -- the result ------------------------------------------------------------------
class FlowResult(eqx.Module):
    """The outcome of :func:`solve_flow` (immutable; a pytree, so it can be vmapped).

    Attributes:
        ts: times, shape (S,): the save times, then the final time.
        xs: states θ at ``ts``, shape (S, n); the last row is the final state.  For
            t1 = ∞, save times after the steady state is reached are moved to the
            final time and repeat the final state; for a finite t1 whose solve met the
            steady-state criterion first (``stats["steady_time"]`` finite), the rows
            after that time keep their times and hold the steady state; after a
            failure they hold NaN.
        status: integer code (0 success, 1 max steps, 2 solver failure,
            3 non-finite state, 4 reached the boundary of the domain, 5 reached the
            float64 range of the geometry's maps); see ``message``.
        stats: solver statistics (arrays): ``num_steps``, ``num_accepted_steps``,
            ``num_rejected_steps`` (diffrax only), ``num_implicit_steps`` (steps of the implicit
            stage), ``switched`` (method="auto" changed to the implicit solver),
            ``t_final`` (where the integration stopped), ``steady_time`` (where the
            steady-state criterion first held, NaN if it did not); scipy adds ``nfev``,
            ``njev``, ``nlu``; with zero-crossings, ``crossings_dropped``.
        crossing_times: with ``zero_crossings=True``, shape (n, max_crossings):
            for each coordinate the times at which it changed sign, increasing,
            padded with NaN; otherwise ``None``.
        t1: the requested final time (an array, so that it can be traced: a new t1
            reuses the compiled solve; ``inf`` for a steady-state solve).
        backend, method, coordinates: what was asked for.
        level_times: with ``levels``, shape (n, L): ``level_times[i, l]`` is the first
            time t with |θ_i(t)| = c_il (the l-th level of coordinate i), NaN if it
            is not reached before the solve ends; otherwise ``None``.
        loss_level_times: with ``loss_levels``, shape (M,): the first time t with
            f(θ(t)) ≤ v_m, NaN if never; otherwise ``None``.
        switch_states: with a :class:`BetaSchedule`, the states at the switch times
            reached, shape (K', n) (K' ≤ K: switches after t1 or after a failure are
            missing); otherwise ``None``.
    """

    ts: Array
    xs: Array
    status: Array
    stats: dict
    crossing_times: Array | None
    t1: Array
    backend: str = eqx.field(static=True)
    method: str = eqx.field(static=True)
    detail: str = eqx.field(static=True, default="")
    level_times: Array | None = None
    loss_level_times: Array | None = None
    coordinates: str = eqx.field(static=True, default="mirror")
    switch_states: Array | None = None

    @property
    def x(self) -> Array:
        """The final state, ``xs[..., -1, :]``."""
        return self.xs[..., -1, :]

    @property
    def t_final(self) -> Array:
        """The final time: t1, the steady-state time (t1 = ∞), or where the solve stopped."""
        return self.ts[..., -1]

    @property
    def converged(self) -> Array:
        """True where the solve succeeded: reached t1, or (t1 = ∞) a steady state."""
        return self.status == STATUS_SUCCESS

    @property
    def message(self) -> str:
        """Human-readable status (a summary over the batch for vmapped results)."""
        status = np.asarray(self.status)
        if status.ndim == 0:
            code = int(status)
            infinite = bool(np.isinf(np.asarray(self.t1)))
            stopped = float(np.asarray(self.stats.get("t_final", self.t_final)))
            if code == STATUS_SUCCESS:
                t = float(np.asarray(self.t_final))
                steady = float(np.asarray(self.stats.get("steady_time", np.nan)))
                if infinite:
                    text = f"reached a steady state at t = {t:.6g}"
                elif np.isfinite(steady):
                    text = (f"reached t1 = {t:.6g}; the state met the steady-state criterion "
                            f"at t = {steady:.6g} and is held from there to t1")
                else:
                    text = f"reached t1 = {t:.6g}"
            elif code == STATUS_LEFT_DOMAIN:
                text = _STATUS_TEXT[code] + f" (stopped at t = {stopped:.6g})"
                if infinite:
                    text += ("; the flow has no steady state inside the domain (for least "
                             "squares with HAM alpha < 0: no interpolant lies inside the box)")
            else:
                text = _STATUS_TEXT.get(code, f"unknown status {code}")
                text += f" (stopped at t = {stopped:.6g})"
                if code == STATUS_MAX_STEPS and float(np.asarray(self.ts)[0]) == 0.0:
                    xs = np.asarray(self.xs)
                    n0, n1 = np.linalg.norm(xs[0]), np.linalg.norm(xs[-1])
                    if np.isfinite(n1) and n1 > _BLOWUP_GROWTH * max(n0, 1.0):
                        text += (f"; ‖x‖ grew from {n0:.3g} to {n1:.3g}: the flow probably "
                                 "blows up near that time")
        else:
            codes, counts = np.unique(status, return_counts=True)
            text = "; ".join(
                f"{c} of {status.size}: {_STATUS_TEXT.get(int(k), k)}"
                for k, c in zip(codes, counts, strict=True)
            )
        return f"{text}. {self.detail}".strip() if self.detail else text


# -- input checks ----------------------------------------------------------------
def _validate(geometry, problem, x0, t1, beta, saveat, n_save, backend, method, rtol, atol,
              steady_tol, max_steps, max_crossings, coordinates="mirror"):
    if coordinates not in COORDINATES:
        raise ValueError(f"coordinates must be one of {COORDINATES}, got {coordinates!r}")
    if not isinstance(geometry, AbstractGeometry):
        raise ValueError(f"geometry must be an AbstractGeometry, got {type(geometry).__name__}")
    if not isinstance(problem, AbstractProblem):
        raise ValueError(f"problem must be an AbstractProblem, got {type(problem).__name__}")
    if backend not in ("diffrax", "scipy"):
        raise ValueError(f"backend must be 'diffrax' or 'scipy', got {backend!r}")
    allowed = _DIFFRAX_METHODS if backend == "diffrax" else _SCIPY_METHODS
    if method not in allowed:
        raise ValueError(f"method for backend={backend!r} must be one of {allowed}, got {method!r}")
    t1_concrete = _is_concrete(t1)
    if t1_concrete:
        t1f = float(np.asarray(t1))
        if math.isnan(t1f) or t1f <= 0:
            raise ValueError(f"t1 must be > 0 (or numpy.inf for a steady state), got {t1!r}")
    elif backend == "scipy":
        raise ValueError("backend='scipy' cannot run under jit/vmap; use backend='diffrax'")
    elif jnp.ndim(t1) != 0:
        raise ValueError(f"t1 must be a scalar, got shape {jnp.shape(t1)}")
    if jnp.ndim(beta) != 0:
        raise ValueError(f"beta must be a finite scalar >= 0, got shape {jnp.shape(beta)}")
    for name, v in (("rtol", rtol), ("atol", atol), ("steady_tol", steady_tol)):
        if not (isinstance(v, (int, float)) and v > 0 and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite float > 0, got {v!r}")
    for name, v, lo in (("n_save", n_save, 2), ("max_steps", max_steps, 1),
                        ("max_crossings", max_crossings, 1)):
        if not (isinstance(v, (int, np.integer)) and v >= lo):
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")

    x0 = jnp.asarray(x0)
    if not jnp.issubdtype(x0.dtype, jnp.floating):
        x0 = x0.astype(jnp.result_type(float))
    if x0.ndim != 1:
        raise ValueError(f"x0 must be a vector of shape (n,), got shape {x0.shape}")
    n = getattr(problem, "n", None)
    if isinstance(n, int) and x0.shape[0] != n:
        raise ValueError(f"x0 must have shape ({n},) to match the problem, got shape {x0.shape}")
    if jnp.finfo(x0.dtype).bits < 64 and rtol < _FLOAT32_MIN_RTOL:
        raise ValueError(
            f"x0 has dtype {x0.dtype}, too coarse for rtol={rtol:g}: enable float64 with "
            f"jax.config.update('jax_enable_x64', True) and pass float64 data, or use "
            f"rtol >= {_FLOAT32_MIN_RTOL:g}"
        )
    x0 = check_finite("x0", x0)
    x0 = geometry.check_domain(x0)  # under tracing the check travels with x0

    if not t1_concrete:
        # traced t1 (under jit/vmap): checked inside the solve, grid built from it
        t1 = eqx.error_if(jnp.asarray(t1, dtype=x0.dtype), ~(t1 > 0),
                          "t1 must be > 0 (or inf for a steady state)")
        if saveat is None:
            return x0, t1, _default_grid_traced(t1, n_save)
        grid = jnp.asarray(saveat, dtype=x0.dtype)
        if grid.ndim != 1 or grid.size == 0:
            raise ValueError(
                f"saveat must be a non-empty 1-D array of times, got shape {grid.shape}")
        return x0, t1, grid
    if saveat is None:
        if math.isinf(t1f):
            logs = np.geomspace(_INF_GRID_FIRST, _INF_GRID_LAST, n_save - 2)
            grid = np.concatenate([[0.0], logs])
        else:
            grid = np.linspace(0.0, t1f, n_save)[:-1]
    elif not _is_concrete(saveat):
        grid = jnp.asarray(saveat)  # traced save times: only the shape can be checked here
        if grid.ndim != 1 or grid.size == 0:
            raise ValueError(
                f"saveat must be a non-empty 1-D array of times, got shape {grid.shape}")
    else:
        grid = np.asarray(saveat, dtype=float)
        if grid.ndim != 1 or grid.size == 0:
            raise ValueError(
                f"saveat must be a non-empty 1-D array of times, got shape {grid.shape}")
        ordered = np.all(np.diff(grid) >= 0)
        if not (np.all(np.isfinite(grid)) and ordered and grid[0] >= 0 and grid[-1] <= t1f):
            raise ValueError(
                f"saveat must be finite, non-decreasing and inside [0, t1] = [0, {t1f:g}], "
                f"got values from {grid.min():g} to {grid.max():g}"
            )
    return x0, t1f, jnp.asarray(grid, dtype=x0.dtype)


def _representable(chart, geometry, problem, x, beta, rtol, atol):
    """Per coordinate: g⁻¹(x), ∇R(x) and the solver's velocity at x are finite."""
    args = _chart_args(chart.name, geometry, problem, beta, -1.0, x, rtol, atol)
    speed = chart.field(0.0, chart.from_x(x, args), args)
    point = jnp.isfinite(geometry.inverse_metric(x)) & jnp.isfinite(geometry.mirror_map(x))
    return point, point & jnp.isfinite(speed)


_representable_jit = eqx.filter_jit(_representable)  # eagerly: one dispatch, not a dozen


def _check_representable(geometry, problem, x0, beta, coordinates, rtol, atol):
    """x₀ unchanged; raise if g⁻¹(x₀), ∇R(x₀) or the velocity at x₀ overflows float64.

    Such a point (HAM: |x| ≥ 1.8e308/|α|, or α|∇f(x₀)| beyond it in mirror
    coordinates) has no finite mirror coordinate or velocity: no solver can start there.
    """
    dtype = x0.dtype
    inputs = (_CHARTS[coordinates], _as_arrays(geometry, dtype), _as_arrays(problem, dtype), x0,
              beta, jnp.asarray(rtol, dtype), jnp.asarray(atol, dtype))
    concrete = _is_concrete(inputs)
    point, ok = (_representable_jit if concrete else _representable)(*inputs)
    name = type(geometry).__name__
    where = (f"x0 is beyond the float64 range of {name}: its inverse metric or mirror map "
             f"overflows (HAM: |x| must stay below {_FLOAT64_MAX:.3g}/|alpha|)")
    speed = (f"the velocity of the flow at x0 overflows float64 in {coordinates} coordinates "
             f"(HAM: |alpha|·|grad f(x0)| must stay below {_FLOAT64_MAX:.3g})")
    if concrete:
        for mask, what in ((point, where), (ok, speed)):
            bad = ~np.asarray(mask)
            if np.any(bad):
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{what}; first at index {i}, x0[{i}] = {float(x0[i])!r}")
        return x0
    return eqx.error_if(x0, ~jnp.all(ok), f"{where}, or {speed}")


def _check_primal_resolution(geometry, x0, rtol):
    """x₀ unchanged; raise if primal coordinates would need an absolute tolerance rtol·s
    below _PRIMAL_MIN_ATOL (γ or 1/|α| near 1e-300)."""
    s = jnp.min(jnp.broadcast_to(jnp.asarray(geometry.length_scale(), x0.dtype), x0.shape))
    what = (f"coordinates='primal' cannot resolve the scale of {type(geometry).__name__}: it "
            f"needs an absolute tolerance rtol·s below {_PRIMAL_MIN_ATOL:g}, where float64 "
            f"cannot control errors; use coordinates='mirror'")
    if _is_concrete(x0, geometry):
        if float(rtol * s) < _PRIMAL_MIN_ATOL:
            raise ValueError(f"{what} (s = {float(s):.3g})")
        return x0
    return eqx.error_if(x0, rtol * s < _PRIMAL_MIN_ATOL, what)


def _check_levels(name, levels, n, dtype, *, per_coordinate):
    """``levels`` as an array: (n, L) per coordinate (from (L,) or (n, L)), or (M,)."""
    if levels is None:
        return None
    arr = jnp.asarray(levels, dtype=dtype)
    if per_coordinate:
        if arr.ndim == 1:
            arr = jnp.broadcast_to(arr[None, :], (n, arr.shape[0]))
        if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] == 0:
            raise ValueError(f"{name} must have shape (L,) (the same levels for every "
                             f"coordinate) or (n, L) = ({n}, L) with L >= 1, got shape "
                             f"{np.shape(levels)}")
        return check_bounds(name, arr, gt=0.0)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty vector of shape (M,), got shape "
                         f"{np.shape(levels)}")
    return check_finite(name, arr)


def _default_grid_traced(t1, n_save):
    """The default save grid of :func:`solve_flow` for a traced t1 (finite or inf)."""
    k = jnp.arange(n_save - 1, dtype=t1.dtype)
    finite_t1 = jnp.where(jnp.isinf(t1), 1.0, t1)
    linear = finite_t1 * k / (n_save - 1)
    expo = jnp.linspace(math.log10(_INF_GRID_FIRST), math.log10(_INF_GRID_LAST), n_save - 2,
                        dtype=t1.dtype)
    logs = jnp.concatenate([jnp.zeros((1,), t1.dtype), 10.0**expo])
    return jnp.where(jnp.isinf(t1), logs, linear)


class BetaSchedule(NamedTuple):
    """A decay rate β that is constant between switch times: ``values[k]`` on
    [``times[k−1]``, ``times[k]``) (with times[−1] = 0 and times[K] = ∞).

    Weight decay switched off at time T, the schedule of "Mask in the Mirror"
    (arXiv 2408.09966) and "Mirror, Mirror of the Flow" (arXiv 2504.12883), is
    ``BetaSchedule((β, 0.0), (T,))``; any schedule is approximated by more pieces.
    :func:`solve_flow` integrates each piece from the state where the previous one
    ended (the vector field jumps at a switch; restarting there keeps the solver's
    order).  After the last switch the flow is the β = values[−1] flow from
    x(times[−1]): with values[−1] = 0 it ends at argmin_{Ax=y} D_R(x, x(T)), so
    ``predict_limit(geometry, problem, x0=result.switch_states[-1])`` is its prediction
    (docs/theory/flows.md, Mirror flows).  The matching iterates are
    :class:`~hambias.Phased`.

    Attributes:
        values: β ≥ 0 on each piece, K + 1 finite numbers.
        times: the K switch times, finite, > 0 and increasing.

    Raises:
        ValueError: lengths that do not match, β < 0 or not finite, switch times
            that are not finite, positive and increasing.

    >>> BetaSchedule((0.5, 0.0), (10.0,)).at(3.0), BetaSchedule((0.5, 0.0), (10.0,)).at(10.0)
    (0.5, 0.0)
    """

    values: tuple
    times: tuple

    def checked(self) -> "BetaSchedule":
        """The schedule with float entries, or a ValueError naming what is wrong."""
        values = tuple(float(v) for v in np.ravel(np.asarray(self.values, dtype=float)))
        times = tuple(float(t) for t in np.ravel(np.asarray(self.times, dtype=float)))
        if len(values) != len(times) + 1:
            raise ValueError(f"BetaSchedule needs one more value than switch times, got "
                             f"{len(values)} values and {len(times)} times")
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"BetaSchedule values must be finite and >= 0, got {values}")
        if not all(math.isfinite(t) for t in times) or not all(
                b > a for a, b in zip((0.0,) + times, times)):
            raise ValueError(f"BetaSchedule times must be finite, > 0 and increasing, got "
                             f"{times}")
        return BetaSchedule(values, times)

    def at(self, t: float) -> float:
        """β at time t (the value of the piece that contains t)."""
        return self.values[int(np.searchsorted(np.asarray(self.times), t, side="right"))]


def _solve_scheduled(geometry, problem, x0, schedule, *, t1, saveat, n_save, throw, **options):
    """solve_flow for a :class:`BetaSchedule`: one solve per piece, eagerly."""
    for key in ("zero_crossings", "levels", "loss_levels"):
        if options.get(key) not in (None, False):
            raise ValueError(f"solve_flow with a BetaSchedule does not take {key}= (solve "
                             "the pieces separately from the switch states)")
    if not _is_concrete(x0, t1, saveat, geometry, problem):
        raise ValueError("solve_flow with a BetaSchedule runs eagerly (one solve per piece), "
                         "not under jit/vmap")
    schedule = schedule.checked()
    x0 = jnp.asarray(x0, dtype=jnp.result_type(float))
    x0, t1f, grid = _validate(geometry, problem, x0, t1, 0.0, saveat, n_save,
                              options.get("backend", "diffrax"), options.get("method", "auto"),
                              options.get("rtol", 1e-8), options.get("atol", 1e-10), 1e-7,
                              options.get("max_steps", 100_000), 8,
                              options.get("coordinates", "mirror"))
    grid = np.asarray(grid, dtype=float)
    starts = (0.0,) + tuple(t for t in schedule.times if t < t1f)
    pieces, x, switch_states = [], x0, []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else t1f
        inside = grid[(grid >= start) & ((grid < end) if k + 1 < len(starts) else True)]
        res = solve_flow(geometry, problem, x, t1=end - start, beta=schedule.values[k],
                         saveat=inside - start if inside.size else None,
                         n_save=n_save if inside.size else 2, **options)
        pieces.append((start, inside.size, res))
        if int(res.status) != STATUS_SUCCESS:
            break
        x = res.x
        if k + 1 < len(starts):
            switch_states.append(x)
    # rows: each piece's save times, then the final row; NaN where a failed piece stopped
    ts, xs = [], []
    n = x0.shape[0]
    for start, count, res in pieces:
        ts.append(np.asarray(res.ts[:count]) + start)
        xs.append(np.asarray(res.xs[:count]))
    last_start, _, last = pieces[-1]
    done = sum(count for _, count, _ in pieces)
    ts.append(np.asarray(grid[done:]))
    xs.append(np.full((grid.size - done, n), np.nan))
    ts.append(np.asarray(last.ts[-1:]) + last_start)
    xs.append(np.asarray(last.xs[-1:]))
    stats = {key: np.asarray(sum(np.asarray(r.stats[key]) for _, _, r in pieces))
             for key in ("num_steps", "num_accepted_steps", "num_implicit_steps")}
    stats["t_final"] = np.asarray(float(last.stats["t_final"]) + last_start)
    stats["steady_time"] = np.asarray(float(last.stats["steady_time"]) + last_start)
    stats["switched"] = np.asarray(any(bool(r.stats["switched"]) for _, _, r in pieces))
    dtype = x0.dtype
    result = FlowResult(
        ts=jnp.asarray(np.concatenate(ts), dtype), xs=jnp.asarray(np.concatenate(xs), dtype),
        status=last.status, stats=stats, crossing_times=None, backend=last.backend,
        method=last.method, t1=jnp.asarray(t1f, dtype),
        detail=(f"in the piece from t = {last_start:g} (beta = "
                f"{schedule.values[len(pieces) - 1]:g}). {last.detail}".strip()
                if int(last.status) != STATUS_SUCCESS else last.detail),
        coordinates=last.coordinates,
        switch_states=jnp.stack(switch_states) if switch_states else jnp.zeros((0, n), dtype))
    if throw:
        raise_for_status(result.status, what="solve_flow", detail=result.message)
    return result


# -- the public entry point ---------------------------------------------------
def solve_flow(
    geometry: AbstractGeometry,
    problem: AbstractProblem,
    x0: ArrayLike,
    *,
    t1: float,
    beta: ArrayLike | BetaSchedule = 0.0,
    saveat: ArrayLike | None = None,
    n_save: int = 201,
    backend: str = "diffrax",
    method: str = "auto",
    coordinates: str = "mirror",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    steady_tol: float | None = None,
    stop_at_steady_state: bool = True,
    max_steps: int = 100_000,
    zero_crossings: bool = False,
    max_crossings: int = 8,
    levels: ArrayLike | None = None,
    loss_levels: ArrayLike | None = None,
    throw: bool = False,
) -> FlowResult:
    """Integrate dθ = −g⁻¹(θ) ⊙ ∇f(θ) dt − βθ dt from x₀ to t1 (or to a steady state).

    For β = 0 this is the mirror flow d∇R(θ) = −∇f(θ) dt of ``geometry`` (GD for
    :class:`Euclidean`, the m⊙w flow for :class:`PointwiseProduct`, the HAM flow
    for :class:`HAMGeometry`; docs/theory/setting.md#setting, docs/theory/ham-flow.md#ham-flow,
    docs/theory/mw-flow.md#mw-flow); for β > 0 the HAM flow of
    docs/theory/explicit-bias.md#explicit-bias.  ``problem`` may be any differentiable loss.

    **Coordinates and tolerances.**  By default (``coordinates="mirror"``) the solver
    integrates the scaled mirror coordinate ψ = c ⊙ ∇R(θ),

        dψ/dt = −c ⊙ ∇F(θ),   θ = (∇R)⁻¹(ψ/c),   ∇F = ∇f + βθ/g⁻¹(θ),

    with c = g⁻¹(0)/ℓ, ℓ = min(s, atol/rtol) and s = ``geometry.length_scale()``
    (γ for m⊙w, 1/|α| for HAM, ∞ for GD).  ψ grows linearly where θ grows
    exponentially (the escape of a small initialisation from 0), the inverse map is
    closed form, and the state can never leave the domain (HAM with α < 0: the
    box).  In both coordinate systems the step-size controller holds the local error
    of θ_i below rtol·|θ_i| + min(atol, rtol·s_i) (transported to ψ by dψ/dθ =
    c/g⁻¹(θ)): atol keeps its meaning unless the geometry has a smaller scale of its
    own, and the early dynamics of an initialisation far below atol (|θ| ~ γ = 1e-12),
    which decide the saddle-to-saddle jump times and the limit, are resolved.  The
    global error of θ is then of the order of rtol·|θ| over the whole supported
    range (measured ≤ 1e-9 relative at rtol = 1e-8 in 1-D for γ from 1e-300 to 1e2
    and α from 1e-300 to 1e300).  ``coordinates="primal"`` integrates θ itself, with
    the same error control, as an independent cross-check (it cannot resolve
    rtol·s < 1e-300 and refuses that).  The scipy backend integrates the same
    coordinates with scipy's error scale atol + rtol·|y|: in mirror coordinates with
    atol = rtol on ψ, which is looser by up to a factor 1 + |ψ| where ψ is
    logarithmic.

    With ``t1=numpy.inf`` the solve stops at the first step end where the
    stationarity residual ‖∇f(θ) + βθ/g⁻¹(θ)‖₂ (:func:`stationarity_residual`)
    is at most ``steady_tol`` times its value at x₀; ``status``/``converged``
    say whether that happened within ``max_steps``.  A finite-t1 solve stops on the
    same criterion and holds the state to t1 (``stop_at_steady_state=True``; the
    message and ``stats["steady_time"]`` say so): past it the flow moves by less
    than the criterion resolves, and a stiff solve would spend its whole budget there.
    If the state reaches the boundary of the domain to float64 precision (HAM with
    α < 0 on a problem without a rest point inside the box |x| < 1/|α|), the solve
    stops at once with status 4, which for t1 = ∞ means the flow has no steady state
    inside the domain.

    How ``method="auto"`` chooses (diffrax backend): the flow is only stiff near
    its limit when α|θ| is large (eigenvalues up to (1 + α max|θ|)·L, in either
    coordinates), and a t = ∞ solve stops there, so it first runs the explicit Tsit5
    (cheap steps, no Jacobian) with at most ``AUTO_EXPLICIT_STEPS`` steps.  If that
    budget is spent before t1 / the steady state (a stiff solve: the step size is
    pinned at the stability limit), it continues from the state reached with the
    L-stable implicit Kvaerno5 and up to ``max_steps`` further steps;
    ``stats["switched"]`` records it (its stage equations stop after two chord
    iterations: see ``_ROOT_FINDER_ATOL``).  Under an outer jit/vmap both stages are
    compiled (a slower first call) and the switch is a ``lax.cond``.  The scipy backend's
    "auto" is LSODA (automatic stiff/non-stiff switching) with the analytic
    Jacobian from JAX, in the same coordinates.  Other methods: diffrax "tsit5",
    "dopri5", "dopri8", "kvaerno3", "kvaerno5"; scipy "RK45", "RK23", "DOP853",
    "Radau", "BDF", "LSODA" (avoid BDF on the HAM flow: docs/baselines.md#flows-to-infinity).

    **Crossings and first passages.**  Zero crossings (``zero_crossings=True``) are
    the times at which a coordinate changes sign strictly (a coordinate leaving an
    exact 0 of x₀ is not a crossing).  ``levels`` asks for first passages of
    |θ_i| through levels c > 0: ``level_times[i, l]`` is the first t ≥ 0 with
    |θ_i(t)| = c_il (0 if |x₀_i| = c_il; the crossing may be upward or downward),
    e.g. the time at which coordinate i escapes a saddle (upward) or the time
    it dies out; ``loss_levels`` asks for the first t with f(θ(t)) ≤ v (0 if
    f(x₀) ≤ v).  NaN where a level is not reached before the solve ends (a held
    steady state ends it).  diffrax: every accepted step is recorded; the first step
    whose end lies on the other side of the level is refined by bisection (60
    halvings) on the quintic Hermite interpolant of the solver's state built from
    the state, velocity and acceleration (a jvp) at both step ends (θ is monotone in
    ψ, so |θ_i| = c is ψ_i ∈ {c_i∇R(±c)}; f is evaluated at θ(ψ) of the
    interpolant).  The interpolation error is O(h⁶), below the step's own local
    error, so a passage time is accurate to about the state's error divided by the
    speed at the crossing (measured 1.4e-8 for the m⊙w example below, where
    |dθ/dt| = 1/4).  Two passages inside one step are missed (the level touched
    and left again within a step).  scipy: the same brackets, root-found with
    brentq on the solver's dense output.  Memory for diffrax grows as max_steps × n.

    **Supported range** (float64; tests/test_range_flow.py): PointwiseProduct with
    γ ∈ [1e-300, 1e2] and HAM with α ∈ [1e-300, 1e300] or α < 0 give the flow to
    the requested tolerance, or a status or error naming why not.  A point whose g⁻¹
    or ∇R overflows float64 (HAM: |θ| ≥ 1.8e308/|α|, so 1.8e8 at α = 1e300), or where
    the velocity c·∇F does (HAM: |α|·|∇f| > 1.8e308), cannot be integrated: as x₀ it
    is a ``ValueError``; reached during the solve, the solve stops with status 5.
    Time scales with the geometry: HAM at α = 1e300 moves ψ at speed α|∇f|, so its
    dynamics happen by t ~ 1e-297.

    Compilation: the diffrax backend compiles one program per configuration
    (geometry and problem types, shapes, ``n_save``/number of save times,
    method, coordinates, ``max_steps``, whether crossings / levels / loss levels are
    requested, ``max_crossings``).  t1 (finite or ∞), the save times, x₀, β, the
    tolerances, the level values and the arrays inside the geometry and the problem
    are traced, so calls that differ only in them reuse the compiled solve.  It is
    jit- and vmap-compatible (vmap over t1, over an α inside the geometry, over β,
    or over stacked problems); input checks raise eagerly and become run-time
    errors under jit.  float32 data is refused unless rtol ≥ 1e-5.

    Args:
        geometry: the geometry (inverse metric g⁻¹, mirror map and its inverse).
        problem: the loss (``problem.grad``); if it has ``n``, x₀ must match.
        x0: initial state, shape (n,), finite, inside the geometry's domain.
        t1: final time > 0, or ``numpy.inf`` for the steady state (may be traced
            with the diffrax backend; a traced t1 ≤ 0 raises at run time).
        beta: decay rate β ≥ 0 (default 0), or a :class:`BetaSchedule` (β switched
            at given times; eagerly, without crossings or levels; the states at the
            switches are ``switch_states``).
        saveat: non-decreasing save times in [0, t1] (default: ``n_save − 1``
            equispaced times from 0 for finite t1; for t1 = ∞, 0 and log-spaced
            times from 1e-3 to 1e6).  The final time is always appended.
        n_save: number of rows of the default grid, final row included (201).
        backend: ``"diffrax"`` (default) or ``"scipy"``.
        method: see above (default ``"auto"``).
        coordinates: ``"mirror"`` (default) or ``"primal"``, see above.
        rtol, atol: tolerances on θ (defaults 1e-8, 1e-10), in the sense above.
        steady_tol: relative stationarity tolerance (default
            ``STEADY_TOL_PER_RTOL × rtol`` = 10·rtol: a residual far below what
            the integration error supports is not reachable by an explicit solver
            at large α, which then spends its budget and switches).
        stop_at_steady_state: for a finite t1, stop on the steady-state criterion
            and hold the state to t1 (default True); False integrates to t1.
        max_steps: step budget (of the implicit stage for "auto"; default 100,000).
        zero_crossings: also compute ``crossing_times`` (default False).
        max_crossings: crossings kept per coordinate (default 8; the number
            dropped is in ``stats["crossings_dropped"]``).
        levels: levels c > 0 of |θ_i|, shape (L,) (the same for every coordinate)
            or (n, L); inside the domain.  Gives ``level_times``, shape (n, L).
        loss_levels: loss values v, shape (M,).  Gives ``loss_level_times``, (M,).
        throw: raise :class:`~hambias.StatusError` when the status is not SUCCESS
            (default False: ``status`` and ``message`` say what happened); under jit the
            error is raised when the compiled solve runs.

    Returns:
        A :class:`FlowResult`; its ``status`` holds a :class:`~hambias.Status` code.

    Raises:
        ValueError: wrong x₀ shape, non-finite x₀, x₀ outside the domain or beyond
            its float64 range, t1 ≤ 0, β < 0, bad tolerances, unknown
            backend/method/coordinates, levels ≤ 0 or outside the domain, float32
            with a tight rtol, or the scipy backend under a JAX transformation.

    >>> import jax, numpy as np
    >>> from hambias import HAMGeometry, LinearRegression, PointwiseProduct, sparse_regression
    >>> p, _ = sparse_regression(jax.random.key(0), 5, 12, 2)
    >>> r = solve_flow(HAMGeometry(10.0), p, np.zeros(12), t1=np.inf, rtol=1e-5, atol=1e-7)
    >>> bool(r.converged), r.xs.shape
    (True, (201, 12))

    A tiny initialisation scale: m⊙w with γ = 1e-12 on f = (θ − 1)²/2 from 0 reaches
    θ = ½ at t = log 2 + log(1/γ) + O(γ) = 28.3241683 (a level of |θ|), and
    f = 1/8 there (a loss level); the default tolerances need float64:

    >>> jax.config.update("jax_enable_x64", True)
    >>> one = LinearRegression([[1.0]], [1.0])
    >>> r = solve_flow(PointwiseProduct(1e-12), one, [0.0], t1=40.0, saveat=[28.3241683],
    ...                levels=[0.5], loss_levels=[0.125])
    >>> round(float(r.xs[0, 0]), 6)
    0.5
    >>> round(float(r.level_times[0, 0]), 6), round(float(r.loss_level_times[0]), 6)
    (28.324168, 28.324168)
    """
    if isinstance(beta, BetaSchedule):
        return _solve_scheduled(
            geometry, problem, x0, beta, t1=t1, saveat=saveat, n_save=n_save, throw=throw,
            backend=backend, method=method, coordinates=coordinates, rtol=rtol, atol=atol,
            steady_tol=steady_tol, stop_at_steady_state=stop_at_steady_state,
            max_steps=max_steps, zero_crossings=zero_crossings, max_crossings=max_crossings,
            levels=levels, loss_levels=loss_levels)
    steady_tol = STEADY_TOL_PER_RTOL * rtol if steady_tol is None else steady_tol
    x0, t1f, grid = _validate(geometry, problem, x0, t1, beta, saveat, n_save, backend, method,
                              rtol, atol, steady_tol, max_steps, max_crossings, coordinates)
    beta = check_bounds("beta", jnp.asarray(beta, dtype=x0.dtype), ge=0.0)
    x0 = _check_representable(geometry, problem, x0, beta, coordinates, rtol, atol)
    n = x0.shape[0]
    levels = _check_levels("levels", levels, n, x0.dtype, per_coordinate=True)
    loss_levels = _check_levels("loss_levels", loss_levels, n, x0.dtype, per_coordinate=False)
    if levels is not None and _is_concrete(levels, geometry):
        bad = np.asarray(geometry.domain_violation(levels))
        if np.any(bad):
            raise ValueError(
                f"levels must lie inside the domain of {type(geometry).__name__} (a level at "
                f"or beyond its boundary is never reached), got "
                f"{float(np.asarray(levels)[bad][0])!r}")
    if coordinates == "primal":
        x0 = _check_primal_resolution(geometry, x0, rtol)
    hold = bool(stop_at_steady_state)
    if backend == "scipy":
        if not _is_concrete(geometry, problem, x0, beta, levels, loss_levels):
            raise ValueError("backend='scipy' cannot run under jit/vmap; use backend='diffrax'")
        res = _solve_scipy(geometry, problem, x0, beta, grid, t1=t1f, method=method, rtol=rtol,
                           atol=atol, steady_tol=steady_tol, max_steps=max_steps,
                           zero_crossings=zero_crossings, max_crossings=max_crossings,
                           coordinates=coordinates, hold=hold, levels=levels,
                           loss_levels=loss_levels)
        if throw:
            raise_for_status(res.status, what="solve_flow", detail=res.message)
        return res
    t1a = jnp.asarray(t1f, dtype=x0.dtype)
    cfg = _Config(chart=coordinates, solver=method, nsteps=int(max_steps),
                  max_steps=int(max_steps), crossings=bool(zero_crossings),
                  max_crossings=int(max_crossings), levels=levels is not None,
                  loss_levels=loss_levels is not None)
    ts, xs, status, stats, crossings, level_times, loss_times = _solve_diffrax(
        cfg, geometry, problem, x0, beta, grid, t1=t1a, rtol=rtol, atol=atol,
        steady_tol=steady_tol, hold=hold, levels=levels, loss_levels=loss_levels)
    if throw:  # eagerly a StatusError; under jit a run-time error with the status's message
        if _is_concrete(status):
            message = FlowResult(ts=ts, xs=xs, status=status, stats=stats,
                                 crossing_times=crossings, backend="diffrax", method=method,
                                 t1=t1a, level_times=level_times, loss_level_times=loss_times,
                                 coordinates=coordinates).message
        else:
            message = ""
        status, (ts, xs) = raise_for_status(status, what="solve_flow", detail=message,
                                            attach=(ts, xs))
    return FlowResult(ts=ts, xs=xs, status=status, stats=stats, crossing_times=crossings,
                      backend="diffrax", method=method, t1=t1a, level_times=level_times,
                      loss_level_times=loss_times, coordinates=coordinates)


# -- diffrax backend -----------------------------------------------------------------
class _Config(NamedTuple):
    """The static choices of one compiled diffrax solve."""

    chart: str  # "mirror" or "primal"
    solver: str  # diffrax solver of the (first) stage
    nsteps: int  # its step budget
    max_steps: int  # the implicit stage's budget (method="auto")
    crossings: bool  # zero crossings requested
    max_crossings: int
    levels: bool  # per-coordinate levels requested
    loss_levels: bool  # loss levels requested

    @property
    def record(self) -> bool:
        """Every accepted step is kept (for crossings and level passages)."""
        return self.crossings or self.levels or self.loss_levels


def _diffrax_solver(name, rtol):
    import diffrax

    if name.startswith("kvaerno"):
        cls = diffrax.Kvaerno3 if name == "kvaerno3" else diffrax.Kvaerno5
        return cls(root_finder=diffrax.VeryChord(rtol=rtol, atol=_ROOT_FINDER_ATOL))
    return {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8}[name]()


def _as_arrays(tree, dtype):
    """Python-number leaves -> arrays, so that new α or γ values do not recompile."""
    def conv(leaf):
        if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
            return jnp.asarray(leaf, dtype=dtype)
        return leaf

    return jax.tree_util.tree_map(conv, tree)


def _theta_tolerance(chart, rtol):
    """The step-size controller of the diffrax backend (see _theta_tolerance_class)."""
    cls = _theta_tolerance_class()
    return cls(rtol=rtol, atol=jnp.zeros_like(rtol), norm=_error_norm, chart=chart)


@functools.cache
def _theta_tolerance_class():
    """One class, built on first use (diffrax is imported lazily; a class made per call
    would be a new static type and recompile every solve)."""
    import diffrax

    class _ThetaTolerance(diffrax.AbstractAdaptiveStepSizeController):
        """diffrax's PID controller with the error scale rtol·weight(y) of the chart.

        A PID controller scales the local error of y by atol + rtol·|y|; here the scale
        is rtol·(ℓ + |θ|)·dy/dθ (see COORDINATES), which depends on θ(y).  The PID logic
        is diffrax's own: ``adapt_step_size`` hands it the weights in place of y with
        atol = 0 (its only use of y is that scale), and ``init`` hands it atol = the
        weights at y₀ with rtol = 0 for its choice of the first step.
        """

        rtol: jax.Array
        atol: jax.Array
        norm: callable = eqx.field(static=True)
        chart: _Chart

        def wrap(self, direction):
            return self

        def init(self, terms, t0, t1, y0, dt0, args, func, error_order):
            w0 = self.chart.weight(y0, args)
            start = diffrax.PIDController(rtol=0.0, atol=self.rtol * w0, norm=self.norm)
            t_next, pid_state = start.init(terms, t0, t1, y0, dt0, args, func, error_order)
            return t_next, (pid_state, w0)

        def adapt_step_size(self, t0, t1, y0, y1_candidate, args, y_error, error_order,
                            controller_state):
            # the state carries the weights of y0 (those of the last accepted y1)
            pid_state, w0 = controller_state
            w1 = self.chart.weight(y1_candidate, args)
            # a trial whose θ overflows is rejected whatever its error estimate (a flow that is
            # linear in its mirror coordinates has none): the step shrinks until the state
            # stays representable, and the range event stops the solve there
            # (an infinite weight where g⁻¹ = 0 on the wall of a bounded domain is not an
            # overflow: that trial is judged by y_error and the boundary event stops there)
            y_error = jnp.where(self.chart.representable(y1_candidate, args), y_error, jnp.inf)
            w1 = jnp.where(jnp.isfinite(w1), w1, w0)
            pid = diffrax.PIDController(rtol=self.rtol, atol=0.0, norm=self.norm)
            keep, t_next0, t_next1, jump, pid_state, result = pid.adapt_step_size(
                t0, t1, w0, w1, args, y_error, error_order, pid_state)
            return keep, t_next0, t_next1, jump, (pid_state, jnp.where(keep, w1, w0)), result

    return _ThetaTolerance


def _error_norm(scaled_error):
    """RMS norm of the scaled local error, with NaN counted as +inf.

    A trial step long enough to overflow the inverse mirror map (ψ grows linearly
    while θ = (∇R)⁻¹(ψ/c) grows exponentially, and the controller lengthens steps
    tenfold on the linear part) yields NaN stages.  diffrax turns a NaN error into a
    NaN step size and never recovers (measured: m⊙w at γ = 1e-20 stalled after 4
    accepted steps); an infinite error makes it reject and shrink the step instead.
    """
    import optimistix as optx

    return optx.rms_norm(jax.tree_util.tree_map(
        lambda e: jnp.where(jnp.isnan(e), jnp.inf, e), scaled_error))


def _segment(cfg, solver_name, nsteps, args, t_start, y_start, t1, ts, rtol):
    """One diffrax solve from (t_start, y_start) to t1, saving at ``ts`` (all ≥ t_start).

    One event stops it, for any reason of :meth:`_Chart.stops`: the steady state (its
    threshold is −1 when it must never fire, so that all horizons share one compiled
    program), the boundary of the domain, the float64 range of the inverse map.
    """
    import diffrax

    chart = _CHARTS[cfg.chart]
    subs = [diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)]
    if cfg.record:
        subs.append(diffrax.SubSaveAt(steps=True))
    if cfg.loss_levels:
        subs.append(diffrax.SubSaveAt(
            steps=True, fn=lambda t, y, a: a[1].loss(chart.to_x(y, a))))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(chart.field), _diffrax_solver(solver_name, rtol), t_start, t1, None,
        y_start, args=args, saveat=diffrax.SaveAt(subs=subs),
        stepsize_controller=_theta_tolerance(chart, rtol),
        event=diffrax.Event(chart.stop), max_steps=nsteps,
        throw=False, adjoint=diffrax.ForwardMode())
    event = sol.result == diffrax.RESULTS.event_occurred
    # the event fired at the final state: which reason, evaluated there again
    steady, boundary, limit = (event & m for m in chart.stops(sol.ys[1][-1], args))
    code = jnp.select(
        [(sol.result == diffrax.RESULTS.successful) | steady, boundary, limit,
         sol.result == diffrax.RESULTS.max_steps_reached],
        [STATUS_SUCCESS, STATUS_LEFT_DOMAIN, STATUS_OUT_OF_RANGE, STATUS_MAX_STEPS],
        STATUS_SOLVER_FAILURE)
    seg = {
        "ys": sol.ys[0], "t_final": sol.ts[1][-1], "y_final": sol.ys[1][-1], "code": code,
        "steady": steady,
        "num_steps": jnp.asarray(sol.stats["num_steps"]),
        "num_accepted_steps": jnp.asarray(sol.stats["num_accepted_steps"]),
        "num_rejected_steps": jnp.asarray(sol.stats["num_rejected_steps"]),
    }
    if cfg.record:
        t_s = jnp.asarray(t_start, sol.ts[2].dtype)
        seg["step_ts"] = jnp.concatenate([t_s[None], sol.ts[2]])
        seg["step_ys"] = jnp.concatenate([y_start[None], sol.ys[2]], axis=0)
    if cfg.loss_levels:
        loss0 = args[1].loss(chart.to_x(y_start, args))
        seg["step_loss"] = jnp.concatenate([loss0[None], sol.ys[3]])
    return seg


_STEP_KEYS = ("num_steps", "num_accepted_steps", "num_rejected_steps")
_RECORD_KEYS = ("step_ts", "step_ys", "step_loss")


def _assemble(cfg, args, grid, t1, first, second, use2, implicit_only, levels, loss_levels):
    """Merge the explicit and (optional) implicit segments into FlowResult fields."""
    chart = _CHARTS[cfg.chart]
    if second is None:
        ys, t_final, y_final, code = first["ys"], first["t_final"], first["y_final"], first["code"]
        steady = first["steady"]
        stats = {k: first[k] for k in _STEP_KEYS}
        stats["num_implicit_steps"] = first["num_steps"] * implicit_only
        stats["switched"] = jnp.asarray(False)
        rec = {k: first[k] for k in _RECORD_KEYS if k in first}
    else:
        ys = jnp.where((use2 & (grid > first["t_final"]))[:, None], second["ys"], first["ys"])
        pick = functools.partial(jnp.where, use2)
        t_final, y_final = pick(second["t_final"], first["t_final"]), pick(
            second["y_final"], first["y_final"])
        code, steady = pick(second["code"], first["code"]), pick(second["steady"],
                                                                 first["steady"])
        stats = {k: first[k] + jnp.where(use2, second[k], 0) for k in _STEP_KEYS}
        stats["num_implicit_steps"] = jnp.where(use2, second["num_steps"], 0)
        stats["switched"] = jnp.asarray(use2)
        rec = {}
        if cfg.record:  # the implicit records start where the explicit ones end
            rec["step_ts"] = jnp.concatenate(
                [first["step_ts"], jnp.where(use2, second["step_ts"], jnp.inf)])
            rec["step_ys"] = jnp.concatenate([first["step_ys"], second["step_ys"]], axis=0)
        if cfg.loss_levels:
            rec["step_loss"] = jnp.concatenate([first["step_loss"], second["step_loss"]])
    # rows after the final time: the steady state after success, NaN after a failure;
    # t1 = ∞ moves their times to the steady time, a finite t1 keeps them (held state)
    after = grid > t_final
    ok = code == STATUS_SUCCESS
    ys = jnp.where(after[:, None], jnp.where(ok, y_final, jnp.nan), ys)
    infinite = jnp.isinf(t1)
    t_end = jnp.where(ok & steady & ~infinite, t1, t_final)
    ts = jnp.concatenate([jnp.where(after & ok & infinite, t_final, grid), t_end[None]])
    xs = chart.to_x(jnp.concatenate([ys, y_final[None]], axis=0), args)
    # rows at t = 0 are x₀ itself, not its round trip through the mirror map
    x0 = first["x0"]
    xs = jnp.where((ts == 0)[:, None], x0, xs)
    finite = jnp.all(jnp.isfinite(xs[-1])) & jnp.all(jnp.isfinite(xs[:-1]) | after[:, None])
    status = jnp.where(finite | (code == STATUS_LEFT_DOMAIN) | (code == STATUS_OUT_OF_RANGE),
                       code, STATUS_NON_FINITE)
    out = jnp.any(args[0].domain_violation(jnp.where(jnp.isfinite(xs), xs, 0.0)))
    status = jnp.where((status == STATUS_SUCCESS) & out, STATUS_LEFT_DOMAIN, status)
    stats["t_final"] = t_final
    stats["steady_time"] = jnp.where(steady, t_final, jnp.nan)
    crossings = level_times = loss_times = None
    if cfg.record:
        valid = jnp.isfinite(rec["step_ts"]) & jnp.all(jnp.isfinite(rec["step_ys"]), axis=1)
        ends = jnp.concatenate([jnp.zeros((1,), bool), valid[:-1] & valid[1:]
                                & (rec["step_ts"][1:] > rec["step_ts"][:-1])])
        steps = (rec["step_ts"], jnp.where(valid[:, None], rec["step_ys"], 0.0), ends)
        if cfg.crossings:
            crossings, stats["crossings_dropped"] = _hermite_crossings(
                chart, args, steps, cfg.max_crossings)
        if cfg.levels:
            level_times = _level_passages(chart, args, steps, levels)
        if cfg.loss_levels:
            loss_times = _loss_passages(chart, args, steps, rec["step_loss"], loss_levels)
    return ts, xs, status, stats, crossings, level_times, loss_times


def _run_first(cfg, geometry, problem, x0, beta, grid, t1, rtol, atol, steady_tol, hold,
               levels, loss_levels):
    """Threshold, one solve from x₀, and its assembled result (one compiled program).

    Everything numeric (t1, even t1 = ∞, the save times, x₀, the tolerances, the
    levels, the geometry's and problem's arrays) is traced; only ``cfg`` and the
    shapes select a compiled program.
    """
    chart = _CHARTS[cfg.chart]
    residual0 = stationarity_residual(geometry, problem, x0, beta=beta)
    # stop at ‖∇F‖ ≤ steady_tol·‖∇F(x₀)‖ for t1 = ∞ (and for a finite t1 unless told not
    # to); otherwise never (a residual is ≥ 0 > −1)
    threshold = jnp.where(jnp.isinf(t1) | hold, steady_tol * residual0, -1.0)
    args = _chart_args(cfg.chart, geometry, problem, beta, threshold, x0, rtol, atol)
    y0 = chart.from_x(x0, args)
    t0 = jnp.zeros((), dtype=x0.dtype)
    first = _segment(cfg, cfg.solver, cfg.nsteps, args, t0, y0, t1, grid, rtol)
    first["x0"] = x0
    implicit_only = int(cfg.solver.startswith("kvaerno"))
    assembled = _assemble(cfg, args, grid, t1, first, None, None, implicit_only, levels,
                          loss_levels)
    return (args, rtol), first, assembled


def _run_implicit(cfg, args, grid, first, t1, rtol):
    """Kvaerno5 from where the explicit stage stopped."""
    t_s = first["t_final"]
    return _segment(cfg, "kvaerno5", cfg.max_steps, args, t_s, first["y_final"], t1,
                    jnp.maximum(grid, t_s), rtol)


_run_first_jit = eqx.filter_jit(_run_first)


@eqx.filter_jit
def _run_switched_jit(cfg, ctx, grid, first, t1, levels, loss_levels):
    args, rtol = ctx
    second = _run_implicit(cfg, args, grid, first, t1, rtol)
    return _assemble(cfg, args, grid, t1, first, second, jnp.asarray(True), 0, levels,
                     loss_levels)


def _solve_diffrax(cfg, geometry, problem, x0, beta, grid, *, t1, rtol, atol, steady_tol,
                   hold, levels, loss_levels):
    dtype = x0.dtype
    geometry, problem = _as_arrays(geometry, dtype), _as_arrays(problem, dtype)
    rtol, atol = jnp.asarray(rtol, dtype=dtype), jnp.asarray(atol, dtype=dtype)
    steady_tol, hold = jnp.asarray(steady_tol, dtype=dtype), jnp.asarray(hold)
    concrete = _is_concrete(geometry, problem, x0, beta, t1, grid, levels, loss_levels)
    run_first = _run_first_jit if concrete else _run_first
    auto = cfg.solver == "auto"
    first_cfg = cfg._replace(solver="tsit5", nsteps=AUTO_EXPLICIT_STEPS) if auto else cfg
    ctx, first, assembled = run_first(first_cfg, geometry, problem, x0, beta, grid, t1, rtol,
                                      atol, steady_tol, hold, levels, loss_levels)
    if not auto:
        return assembled
    switch = first["code"] == STATUS_MAX_STEPS
    if concrete:
        # Eagerly the switch is a Python branch: Kvaerno5 is compiled only when needed.
        if not bool(switch):
            return assembled
        return _run_switched_jit(first_cfg, ctx, grid, first, t1, levels, loss_levels)

    args, c_rtol = ctx

    def implicit(_):
        return _run_implicit(first_cfg, args, grid, first, t1, c_rtol)

    def skip(_):
        shapes = jax.eval_shape(implicit, None)
        return {k: jnp.zeros(v.shape, v.dtype) if v.ndim == 0
                else jnp.full(v.shape, jnp.inf, v.dtype) for k, v in shapes.items()}

    second = jax.lax.cond(switch, implicit, skip, None)
    return _assemble(first_cfg, args, grid, t1, first, second, switch, 0, levels, loss_levels)


# -- crossings and first passages on the accepted steps (diffrax) ----------------------------
class _Step(NamedTuple):
    """One accepted step [t_a, t_a + h] for interpolation: y, h·ẏ and h²·ÿ at both ends."""

    ya: Array
    yb: Array
    fa: Array
    fb: Array
    ga: Array
    gb: Array
    ta: Array
    h: Array

    def at(self, s):
        """The quintic Hermite interpolant at s ∈ [0, 1] (exact on quintics; error O(h⁶))."""
        s2 = s * s
        s3 = s2 * s
        s4, s5 = s3 * s, s3 * s2
        return ((1 - 10 * s3 + 15 * s4 - 6 * s5) * self.ya
                + (s - 6 * s3 + 8 * s4 - 3 * s5) * self.fa
                + 0.5 * (s2 - 3 * s3 + 3 * s4 - s5) * self.ga
                + 0.5 * (s3 - 2 * s4 + s5) * self.gb
                + (-4 * s3 + 7 * s4 - 3 * s5) * self.fb
                + (10 * s3 - 15 * s4 + 6 * s5) * self.yb)


def _bisect(fun, sign_a, like):
    """s ∈ [0, 1] where sign(fun(s)) first leaves sign_a (elementwise, by bisection)."""
    def body(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        same = jnp.sign(fun(mid)) == sign_a
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _CROSSING_BISECTIONS, body,
                               (jnp.zeros_like(like), jnp.ones_like(like)))
    return 0.5 * (lo + hi)


def _step_pieces(chart, args, steps, k, i=None):
    """The steps ending at rows k (≥ 1), as a :class:`_Step` of stacked rows.

    ÿ = J(y)·ẏ (the field is autonomous) comes from one jvp per end.  With coordinate
    indices i (same shape as k) each row is reduced to its coordinate i; without,
    whole rows (shape (len(k), n)) come back.
    """
    st, sy, _ = steps
    ta, h = st[k - 1], st[k] - st[k - 1]

    def derivatives(y, h):
        # in units of the step: h·ẏ and h²·ÿ = (h·J)(h·ẏ).  In units of time ÿ overflows
        # for HAM at α ≳ 1e155 (ẏ ~ α|∇f|, J ~ α·L), while h·ẏ is O(ψ).
        f = lambda u: h * chart.field(0.0, u, args)
        return jax.jvp(f, (y,), (f(y),))

    ya, yb = sy[k - 1], sy[k]
    fa, ga = jax.vmap(derivatives)(ya, h)
    fb, gb = jax.vmap(derivatives)(yb, h)
    if i is not None:
        rows = jnp.arange(k.shape[0])
        ya, yb, fa, fb, ga, gb = (m[rows, i] for m in (ya, yb, fa, fb, ga, gb))
    return _Step(ya, yb, fa, fb, ga, gb, ta, h)


def _hermite_crossings(chart, args, steps, max_crossings):
    """Sign changes of θ_i between consecutive step ends, located on the step's interpolant."""
    st, sy, ends = steps
    n = sy.shape[1]
    zero = chart.from_x(jnp.zeros((n,), sy.dtype), args)  # θ = 0 in the solver's state
    d = sy - zero
    cross = ends[1:, None] & (d[:-1] * d[1:] < 0)
    total = n * max_crossings
    k_idx, i_idx = jnp.nonzero(cross, size=total, fill_value=0)
    k_idx = k_idx + 1  # the row where the step ends
    found = jnp.arange(total) < jnp.sum(cross)
    step = _step_pieces(chart, args, steps, k_idx, i_idx)
    z = zero[i_idx]
    s = _bisect(lambda u: step.at(u) - z, jnp.sign(step.ya - z), step.h)
    times = step.ta + s * step.h
    # rank of each crossing among the earlier ones of the same coordinate
    same_coord = (i_idx[:, None] == i_idx[None, :]) & found[None, :]
    rank = jnp.sum(same_coord & (jnp.arange(total)[None, :] < jnp.arange(total)[:, None]), axis=1)
    keep = found & (rank < max_crossings)
    out = jnp.full((n, max_crossings), jnp.nan, dtype=st.dtype)
    out = out.at[jnp.where(keep, i_idx, n), jnp.where(keep, rank, 0)].set(times, mode="drop")
    dropped = jnp.sum(cross) - jnp.sum(keep)
    return out, dropped


def _first_change(values, ends, start):
    """Index of the first row k ≥ 1 ending a valid step where sign(values) ≠ sign(start).

    values: (K, ...); returns (index, found) with the trailing shape.
    """
    mask = ends.reshape((-1,) + (1,) * (values.ndim - 1)) & (
        jnp.sign(values) != jnp.sign(start))
    return jnp.argmax(mask, axis=0), jnp.any(mask, axis=0)


def _level_passages(chart, args, steps, levels):
    """First times with |θ_i| = c_il: (n, L), NaN where not reached.

    In the solver's state (monotone in θ) |θ_i| = c is y_i ∈ {lo, hi} with lo, hi the
    images of −c and +c; q = (y − lo)(hi − y) is > 0 inside and < 0 outside, so the
    first passage is the first sign change of q, located on the step's interpolant.
    """
    st, sy, ends = steps
    n = sy.shape[1]
    lo = chart.from_x(-levels.T, args)  # (L, n)
    hi = chart.from_x(levels.T, args)

    def one(bounds):
        lo_l, hi_l = bounds
        q = (sy - lo_l) * (hi_l - sy)  # (K, n)
        k, found = _first_change(q, ends, q[0])
        k = jnp.maximum(k, 1)
        step = _step_pieces(chart, args, steps, k, jnp.arange(n))
        s = _bisect(lambda u: (step.at(u) - lo_l) * (hi_l - step.at(u)), jnp.sign(q[0]),
                    step.h)
        t = jnp.where(found, step.ta + s * step.h, jnp.nan)
        return jnp.where(q[0] == 0, st[0], t)

    return jax.lax.map(one, (lo, hi)).T


def _loss_passages(chart, args, steps, step_loss, loss_levels):
    """First times with f(θ) ≤ v_m: (M,), NaN where not reached (bisection on f along
    the step's quintic Hermite interpolant of the whole state)."""
    st, _, ends = steps
    problem = args[1]

    def one(v):
        g = jnp.where(jnp.isfinite(step_loss), step_loss - v, 1.0)
        k, found = _first_change(jnp.where(g <= 0, -1.0, 1.0), ends, 1.0)
        k = jnp.maximum(k, 1)
        step = jax.tree_util.tree_map(lambda a: a[0], _step_pieces(chart, args, steps, k[None]))

        def excess(u):
            return problem.loss(chart.to_x(step.at(u), args)) - v

        s = _bisect(lambda u: jnp.where(excess(u) <= 0, -1.0, 1.0), 1.0, step.h)
        t = jnp.where(found, step.ta + s * step.h, jnp.nan)
        return jnp.where(g[0] <= 0, st[0], t)

    return jax.lax.map(one, loss_levels)


# -- scipy backend ---------------------------------------------------------------------
# Module-level jitted callbacks for scipy: compiled once per geometry/problem structure.
def _scipy_callbacks(chart):
    field = jax.jit(lambda args, y: chart.field(0.0, y, args))
    jac = jax.jit(jax.jacfwd(lambda args, y: chart.field(0.0, y, args), argnums=1))
    to_x = jax.jit(lambda args, y: chart.to_x(y, args))
    return field, jac, to_x


_SCIPY_CALLBACKS = {name: _scipy_callbacks(_CHARTS[name]) for name in COORDINATES}
_residual_jit = jax.jit(
    lambda args, x: stationarity_residual(args[0], args[1], x, beta=args[2]))
_loss_jit = jax.jit(lambda args, x: args[1].loss(x))
_chart_args_jit = eqx.filter_jit(_chart_args)
_from_x_jit = {name: jax.jit(lambda args, x, c=_CHARTS[name]: c.from_x(x, args))
               for name in COORDINATES}
_in_range_jit = {name: jax.jit(lambda args, y, c=_CHARTS[name]: c.in_range(y, args))
                 for name in COORDINATES}


def _solve_scipy(geometry, problem, x0, beta, grid, *, t1, method, rtol, atol, steady_tol,
                 max_steps, zero_crossings, max_crossings, coordinates, hold, levels,
                 loss_levels):
    from scipy import integrate, optimize

    method = "LSODA" if method == "auto" else method
    dtype = x0.dtype
    geometry, problem = _as_arrays(geometry, dtype), _as_arrays(problem, dtype)
    args = _chart_args_jit(coordinates, geometry, problem, beta, None, x0,
                           jnp.asarray(rtol, dtype), jnp.asarray(atol, dtype))
    field_jit, jac_jit, to_x_jit = _SCIPY_CALLBACKS[coordinates]
    from_x = _from_x_jit[coordinates]
    # scipy's solvers scale errors by atol + rtol·|y| with constant atol: in primal
    # coordinates that is the diffrax scale (atol_i = rtol·ℓ_i); in mirror coordinates
    # it is rtol·(1 + |ψ|), the diffrax scale near θ = 0 and looser by up to 1 + |ψ|
    # where ψ is logarithmic
    ctl_rtol = rtol
    ctl_atol = rtol * np.asarray(args[5]) if coordinates == "primal" else rtol
    nfev = [0]
    # scipy works in τ = t/u with u = 1/max(1, max c): dψ/dτ = u·dψ/dt is O(|∇F|) even
    # where c is huge (HAM at α = 1e300: speeds 1e300, times 1e-298), so that scipy's
    # norms, which square scaled speeds and errors, do not overflow
    u = 1.0 / max(1.0, float(np.max(np.asarray(args[4]))))

    def fun(t, y):
        nfev[0] += 1
        return u * np.asarray(field_jit(args, y))

    def to_x(y):
        return np.asarray(to_x_jit(args, y))

    def residual(y):
        return float(_residual_jit(args, to_x(y)))

    in_range = _in_range_jit[coordinates]

    kwargs = {"rtol": ctl_rtol, "atol": ctl_atol}
    if method in _SCIPY_IMPLICIT:
        kwargs["jac"] = lambda t, y: u * np.asarray(jac_jit(args, y))
    steady_stop = math.isinf(t1) or hold
    t_bound = _SCIPY_T_INF if math.isinf(t1) else t1 / u
    x0n = np.asarray(x0, dtype=float)
    y0 = np.asarray(from_x(args, x0), dtype=float)
    # scipy's first-step heuristic takes h = 1e-6 whatever the speed when y₀ = 0 (and
    # squares |f|/scale): choose the step that moves y by 1 % of its error scale (of |y₀|
    # where that is larger) instead.
    speed0 = np.max(np.abs(fun(0.0, y0)) / (ctl_atol + ctl_rtol * np.abs(y0)))
    if np.isfinite(speed0) and speed0 > 0:
        size0 = max(float(np.max(np.abs(y0) / (ctl_atol + ctl_rtol * np.abs(y0)))), 1.0)
        kwargs["first_step"] = min(0.01 * size0 / speed0, t_bound)
    threshold = steady_tol * float(_residual_jit(args, x0))
    n, g = y0.size, np.asarray(grid, dtype=float)
    g_tau = g / u
    saved = np.full((g.size, n), np.nan)
    saved[g == 0.0] = y0
    crossings = [[] for _ in range(n)]
    zero = np.asarray(from_x(args, jnp.zeros_like(x0)), dtype=float)
    if levels is not None:
        lv = np.asarray(levels, dtype=float)  # (n, L)
        lo = np.asarray(from_x(args, jnp.asarray(-lv.T, dtype))).T  # (n, L) in y coordinates
        hi = np.asarray(from_x(args, jnp.asarray(lv.T, dtype))).T
        q = (y0[:, None] - lo) * (hi - y0[:, None])
        level_times = np.where(q == 0, 0.0, np.nan)
        q_start = np.sign(q)
    if loss_levels is not None:
        lv_loss = np.asarray(loss_levels, dtype=float)
        f0 = float(_loss_jit(args, x0))
        loss_times = np.where(f0 <= lv_loss, 0.0, np.nan)
    steps = 0
    code, detail, steady = STATUS_SUCCESS, "", False
    t_now, y_now = 0.0, y0
    if steady_stop and residual(y0) <= threshold:
        steady, solver = True, None
    else:
        solver = getattr(integrate, method)(fun, 0.0, y0, t_bound, **kwargs)
    while solver is not None:
        if steps >= max_steps:
            code = STATUS_MAX_STEPS
            break
        t_old, y_old = solver.t, solver.y.copy()
        msg = solver.step()
        if solver.status == "failed":
            code, detail = STATUS_SOLVER_FAILURE, f"scipy {method}: {msg}"
            break
        steps += 1
        t_now, y_now = solver.t, solver.y
        x_now = to_x(y_now)
        if not np.all(np.isfinite(y_now)):
            code = STATUS_NON_FINITE
            break
        dense = solver.dense_output()
        # brentq's xtol is absolute: resolve the root to float64 precision of t, which is
        # ~1e-298 for HAM at α = 1e300
        xtol = 4 * np.finfo(float).eps * abs(t_now)
        sel = (g_tau > t_old) & (g_tau <= t_now)
        if np.any(sel):
            saved[sel] = dense(g_tau[sel]).T
        if zero_crossings:
            for i in np.flatnonzero((y_old - zero) * (y_now - zero) < 0):
                crossings[i].append(optimize.brentq(
                    lambda t, i=i: dense(t)[i] - zero[i], t_old, t_now, xtol=xtol))
        if levels is not None:
            q_now = (y_now[:, None] - lo) * (hi - y_now[:, None])
            for i, l in zip(*np.nonzero(np.isnan(level_times) & (np.sign(q_now) != q_start)),
                            strict=True):
                level_times[i, l] = optimize.brentq(
                    lambda t, i=i, l=l: (dense(t)[i] - lo[i, l]) * (hi[i, l] - dense(t)[i]),
                    t_old, t_now, xtol=xtol)
        if loss_levels is not None:
            f_now = float(_loss_jit(args, x_now))
            for m in np.flatnonzero(np.isnan(loss_times) & (f_now <= lv_loss)):
                loss_times[m] = optimize.brentq(
                    lambda t, m=m: float(_loss_jit(args, to_x(dense(t)))) - lv_loss[m],
                    t_old, t_now, xtol=xtol)
        if np.any(np.asarray(geometry.domain_violation(x_now)) & np.isfinite(x_now)):
            code = STATUS_LEFT_DOMAIN
            break
        if not bool(in_range(args, y_now)):
            # scipy's step is not limited by θ's range: stop at the last time of the step
            # that is in range (bisection on the dense output; y_old is in range)
            lo_t, hi_t = t_old, t_now
            for _ in range(_RANGE_BISECTIONS):
                mid = 0.5 * (lo_t + hi_t)
                if bool(in_range(args, dense(mid))):
                    lo_t = mid
                else:
                    hi_t = mid
            t_now, y_now = lo_t, dense(lo_t) if lo_t > t_old else y_old
            code = STATUS_OUT_OF_RANGE
            break
        if steady_stop and residual(y_now) <= threshold:
            steady = True
            break
        if solver.status == "finished":
            break
    if math.isinf(t1) and solver is not None and code == STATUS_SUCCESS and not steady:
        code = STATUS_MAX_STEPS  # ran to the finite stand-in for ∞ without a steady state
    # the same post-processing as _assemble, in numpy (no per-shape XLA compiles)
    after = g_tau > t_now
    finished = (solver is not None and solver.status == "finished" and not steady
                and code == STATUS_SUCCESS)
    t_now = t1 if finished and math.isfinite(t1) else t_now * u  # back to units of t
    ok = code == STATUS_SUCCESS
    saved[after] = y_now if ok else np.nan
    ts = np.concatenate([np.where(after & ok & math.isinf(t1), t_now, g),
                         [t1 if ok and steady and not math.isinf(t1) else t_now]])
    xs = np.array(to_x_jit(args, jnp.asarray(np.concatenate([saved, y_now[None]], axis=0))))
    xs[ts == 0] = x0n  # rows at t = 0 are x₀ itself, not its round trip
    if code == STATUS_SUCCESS and not np.all(np.isfinite(xs)):
        code = STATUS_NON_FINITE
    if code == STATUS_SUCCESS and geometry.has_bounded_domain():
        if bool(np.any(np.asarray(geometry.domain_violation(xs)))):
            code = STATUS_LEFT_DOMAIN
    stats = {"num_steps": steps, "num_accepted_steps": steps,
             "num_implicit_steps": steps if method in _SCIPY_IMPLICIT else 0,
             "switched": False, "t_final": t_now,
             "steady_time": t_now if steady else np.nan, "nfev": nfev[0],
             "njev": getattr(solver, "njev", 0) if solver is not None else 0,
             "nlu": getattr(solver, "nlu", 0) if solver is not None else 0}
    crossing_times = None
    if zero_crossings:
        arr = np.full((n, max_crossings), np.nan)
        dropped = 0
        for i, cr in enumerate(crossings):
            arr[i, : min(len(cr), max_crossings)] = np.asarray(cr[:max_crossings]) * u
            dropped += max(len(cr) - max_crossings, 0)
        crossing_times = jnp.asarray(arr, dtype=dtype)
        stats["crossings_dropped"] = dropped
    stats = {k: np.asarray(v) for k, v in stats.items()}
    return FlowResult(ts=jnp.asarray(ts, dtype=dtype), xs=jnp.asarray(xs, dtype=dtype),
                      status=np.asarray(code), stats=stats, crossing_times=crossing_times,
                      backend="scipy", method=method, t1=np.asarray(t1), detail=detail,
                      level_times=None if levels is None else jnp.asarray(level_times * u, dtype),
                      loss_level_times=None if loss_levels is None
                      else jnp.asarray(loss_times * u, dtype), coordinates=coordinates)
