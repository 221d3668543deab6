"""Continuous-time flows: the HAM flow, gradient flow and any mirror flow, to t1 or to t = ∞.

:func:`solve_flow` integrates, for any geometry and any differentiable loss,

    dθ_t = −g⁻¹(θ_t) ⊙ ∇f(θ_t) dt − β θ_t dt        (THEORY.md §1, §3, §11)

with an adaptive solver, either in JAX (diffrax: jit, vmap, GPU) or with scipy
(the independent cross-check).  For β = 0 this is the mirror flow
d∇R(θ_t) = −∇f(θ_t) dt of the geometry's potential R; for β > 0 it is the
Riemannian gradient flow of F = f + βH with ∇F(θ) = ∇f(θ) + β θ / g⁻¹(θ)
(THEORY.md §11), and ‖∇F‖ is the stationarity residual used for t = ∞.

The HAM flow is stiff where α|θ| is large: the Jacobian −g⁻¹∇²f has eigenvalues
up to (1 + α max|θ|)·L.  The transient to the interpolating set is not stiff;
only the approach to the limit is.  Hence the default ``method="auto"``: an
explicit Tsit5 with a steady-state event (which stops the solve before stiffness
costs anything) and, if the explicit solver spends its step budget, a switch to
the L-stable implicit Kvaerno5 from where it stopped (see :func:`solve_flow`).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._validate import check_finite
from ._validate import is_concrete as _is_concrete
from .geometry import AbstractGeometry
from .problems import AbstractProblem

__all__ = ["FlowResult", "solve_flow", "flow_vector_field", "stationarity_residual"]

# -- status codes ---------------------------------------------------------------
STATUS_SUCCESS = 0  # reached t1 (finite t1) or a steady state (t1 = inf)
STATUS_MAX_STEPS = 1  # step budget spent before t1 / before a steady state
STATUS_SOLVER_FAILURE = 2  # step size underflow, implicit-solve breakdown, ...
STATUS_NON_FINITE = 3  # the state became NaN or inf: the flow diverged
STATUS_LEFT_DOMAIN = 4  # a saved state left the geometry's domain (HAM with α < 0)

_STATUS_TEXT = {
    STATUS_SUCCESS: "success",
    STATUS_MAX_STEPS: "the maximum number of steps was reached before the end of the solve "
    "(raise max_steps, or loosen rtol/atol)",
    STATUS_SOLVER_FAILURE: "the ODE solver failed (step size underflow or implicit-solve "
    "breakdown)",
    STATUS_NON_FINITE: "the state became NaN or inf: the flow diverged",
    STATUS_LEFT_DOMAIN: "a state left the domain of the geometry (HAM with alpha < 0 must stay "
    "inside |x| < 1/|alpha|)",
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
# switch; at steady_tol = 10·rtol it stops in a few hundred steps.  MEASUREMENTS.md
# used rtol 1e-10 with a 1e-9 relative residual.
STEADY_TOL_PER_RTOL = 10.0

# float32 has eps ≈ 1.2e-7: requested relative tolerances below this cannot be met.
_FLOAT32_MIN_RTOL = 1e-5

# Save grid for t1 = ∞ (the horizon is unknown): t = 0, then log-spaced times in
# [_INF_GRID_FIRST, _INF_GRID_LAST]; times after the steady state repeat it.
_INF_GRID_FIRST = 1e-3
_INF_GRID_LAST = 1e6
# scipy needs a finite t_bound; with t1 = ∞ the solve ends at the steady-state event.
_SCIPY_T_INF = 1e15
# Bisection iterations of the zero-crossing root find on a step's Hermite cubic:
# 2⁻⁶⁰ of a step is below float64 resolution of any step length.
_CROSSING_BISECTIONS = 60

_DIFFRAX_METHODS = ("auto", "tsit5", "dopri5", "dopri8", "kvaerno3", "kvaerno5")
_SCIPY_METHODS = ("auto", "RK45", "RK23", "DOP853", "Radau", "BDF", "LSODA")
_SCIPY_IMPLICIT = ("Radau", "BDF", "LSODA")


# -- the vector field -------------------------------------------------------------
def flow_vector_field(
    geometry: AbstractGeometry, problem: AbstractProblem, x: ArrayLike, *, beta: ArrayLike = 0.0
) -> Array:
    """The flow's velocity −g⁻¹(x) ⊙ ∇f(x) − βx (THEORY.md §3, §11).

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
    x = jnp.asarray(x)
    return jnp.linalg.norm(problem.grad(x) + beta * x / geometry.inverse_metric(x))


def _vf(t, x, args):
    geometry, problem, beta, _ = args
    return flow_vector_field(geometry, problem, x, beta=beta)


def _steady_cond(t, x, args, **kwargs):
    geometry, problem, beta, threshold = args
    return stationarity_residual(geometry, problem, x, beta=beta) <= threshold


# -- the result ------------------------------------------------------------------
class FlowResult(eqx.Module):
    """The outcome of :func:`solve_flow` (immutable; a pytree, so it can be vmapped).

    Attributes:
        ts: times, shape (S,): the save times, then the final time.
        xs: states at ``ts``, shape (S, n); the last row is the final state.  For
            t1 = ∞, save times after the steady state is reached are moved to the
            final time and repeat the final state; after a failure they hold NaN.
        status: integer code (0 success, 1 max steps, 2 solver failure,
            3 non-finite state, 4 left the domain); see ``message``.
        stats: solver statistics (arrays): ``num_steps``, ``num_accepted_steps``,
            ``num_rejected_steps`` (diffrax only), ``num_implicit_steps`` (steps of the implicit
            stage), ``switched`` (method="auto" changed to the implicit solver),
            ``t_final``; scipy adds ``nfev``, ``njev``, ``nlu``; with
            zero-crossings, ``crossings_dropped``.
        crossing_times: with ``zero_crossings=True``, shape (n, max_crossings):
            for each coordinate the times at which it changed sign, increasing,
            padded with NaN; otherwise ``None``.
        t1: the requested final time (an array, so that it can be traced: a new t1
            reuses the compiled solve; ``inf`` for a steady-state solve).
        backend, method: what was asked for.
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

    @property
    def x(self) -> Array:
        """The final state, ``xs[..., -1, :]``."""
        return self.xs[..., -1, :]

    @property
    def t_final(self) -> Array:
        """The final time: t1, the steady-state time, or where the solve stopped."""
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
            if code == STATUS_SUCCESS:
                t = float(np.asarray(self.t_final))
                text = (
                    f"reached a steady state at t = {t:.6g}"
                    if bool(np.isinf(np.asarray(self.t1)))
                    else f"reached t1 = {t:.6g}"
                )
            else:
                text = _STATUS_TEXT.get(code, f"unknown status {code}")
                text += f" (stopped at t = {float(np.asarray(self.t_final)):.6g})"
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
              steady_tol, max_steps, max_crossings):
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
    if _is_concrete(beta):
        b = np.asarray(beta, dtype=float)
        if b.ndim != 0 or not np.isfinite(b) or b < 0:
            raise ValueError(f"beta must be a finite scalar >= 0, got {beta!r}")
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
    geometry.check_domain(x0)

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


def _default_grid_traced(t1, n_save):
    """The default save grid of :func:`solve_flow` for a traced t1 (finite or inf)."""
    k = jnp.arange(n_save - 1, dtype=t1.dtype)
    finite_t1 = jnp.where(jnp.isinf(t1), 1.0, t1)
    linear = finite_t1 * k / (n_save - 1)
    expo = jnp.linspace(math.log10(_INF_GRID_FIRST), math.log10(_INF_GRID_LAST), n_save - 2,
                        dtype=t1.dtype)
    logs = jnp.concatenate([jnp.zeros((1,), t1.dtype), 10.0**expo])
    return jnp.where(jnp.isinf(t1), logs, linear)


# -- the public entry point ---------------------------------------------------
def solve_flow(
    geometry: AbstractGeometry,
    problem: AbstractProblem,
    x0: ArrayLike,
    *,
    t1: float,
    beta: ArrayLike = 0.0,
    saveat: ArrayLike | None = None,
    n_save: int = 201,
    backend: str = "diffrax",
    method: str = "auto",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    steady_tol: float | None = None,
    max_steps: int = 100_000,
    zero_crossings: bool = False,
    max_crossings: int = 8,
) -> FlowResult:
    """Integrate dθ = −g⁻¹(θ) ⊙ ∇f(θ) dt − βθ dt from x₀ to t1 (or to a steady state).

    For β = 0 this is the mirror flow d∇R(θ) = −∇f(θ) dt of ``geometry`` (GD for
    :class:`Euclidean`, the m⊙w flow for :class:`PointwiseProduct`, the HAM flow
    for :class:`HAMGeometry`; THEORY.md §1, §3, §5); for β > 0 the HAM flow of
    §11.  ``problem`` may be any differentiable loss.

    With ``t1=numpy.inf`` the solve stops at the first step end where the
    stationarity residual ‖∇f(θ) + βθ/g⁻¹(θ)‖₂ (:func:`stationarity_residual`)
    is at most ``steady_tol`` times its value at x₀; ``status``/``converged``
    say whether that happened within ``max_steps``.

    How ``method="auto"`` chooses (diffrax backend): the flow is only stiff near
    its limit when α|θ| is large, and a t = ∞ solve stops there, so it first runs
    the explicit Tsit5 (cheap steps, no Jacobian) with at most
    ``AUTO_EXPLICIT_STEPS`` steps.  If that budget is spent before t1 / the
    steady state (a stiff solve: the step size is pinned at the stability limit),
    it continues from the state reached with the L-stable implicit Kvaerno5 and
    up to ``max_steps`` further steps; ``stats["switched"]`` records it.  On the
    seeded 20×100 regression of benchmarks/bench_flow.py (t = ∞, rtol 1e-10) it
    took 0.1–1.3× the time of the best of scipy RK45/DOP853/Radau/LSODA for α
    from 0 to 1e4, without switching.  Under an outer jit/vmap both stages are
    compiled (a slower first call) and the switch is a ``lax.cond``.  The scipy backend's
    "auto" is LSODA (automatic stiff/non-stiff switching) with the analytic
    Jacobian from JAX.  Other methods: diffrax "tsit5", "dopri5", "dopri8",
    "kvaerno3", "kvaerno5"; scipy "RK45", "RK23", "DOP853", "Radau", "BDF",
    "LSODA" (avoid BDF on the HAM flow: MEASUREMENTS.md).

    Zero crossings (``zero_crossings=True``) are the times at which a coordinate
    changes sign strictly (a coordinate leaving an exact 0 of x₀ is not a
    crossing).  diffrax: every accepted step is recorded and a sign change
    between two step ends is located by bisection on the cubic Hermite
    interpolant built from the states and velocities at both ends (accurate to
    about the local error, ~rtol^(4/5) of the step; two crossings inside one step
    are missed).  scipy: per-coordinate events, root-found with brentq on the
    solver's dense output.  Memory for diffrax grows as max_steps × n.

    Compilation: the diffrax backend compiles one program per configuration
    (geometry and problem types, shapes, ``n_save``/number of save times,
    method, ``max_steps``, ``zero_crossings``, ``max_crossings``).  t1 (finite
    or ∞), the save times, x₀, β, the tolerances and the arrays inside the
    geometry and the problem are traced, so calls that differ only in them reuse
    the compiled solve.  It is jit- and vmap-compatible (vmap over t1, over an α
    inside the geometry, over β, or over stacked problems).  float32 data is
    refused unless rtol ≥ 1e-5.

    Args:
        geometry: the geometry (inverse metric g⁻¹).
        problem: the loss (``problem.grad``); if it has ``n``, x₀ must match.
        x0: initial state, shape (n,), finite, inside the geometry's domain.
        t1: final time > 0, or ``numpy.inf`` for the steady state (may be traced
            with the diffrax backend; a traced t1 ≤ 0 raises at run time).
        beta: decay rate β ≥ 0 (default 0).
        saveat: non-decreasing save times in [0, t1] (default: ``n_save − 1``
            equispaced times from 0 for finite t1; for t1 = ∞, 0 and log-spaced
            times from 1e-3 to 1e6).  The final time is always appended.
        n_save: number of rows of the default grid, final row included (201).
        backend: ``"diffrax"`` (default) or ``"scipy"``.
        method: see above (default ``"auto"``).
        rtol, atol: solver tolerances on θ (defaults 1e-8, 1e-10).
        steady_tol: relative stationarity tolerance for t1 = ∞ (default
            ``STEADY_TOL_PER_RTOL × rtol`` = 10·rtol: a residual far below what
            the integration error supports is not reachable by an explicit solver
            at large α, which then spends its budget and switches).
        max_steps: step budget (of the implicit stage for "auto"; default 100,000).
        zero_crossings: also compute ``crossing_times`` (default False).
        max_crossings: crossings kept per coordinate (default 8; the number
            dropped is in ``stats["crossings_dropped"]``).

    Returns:
        A :class:`FlowResult`.

    Raises:
        ValueError: wrong x₀ shape, non-finite x₀, x₀ outside the domain, t1 ≤ 0,
            β < 0, bad tolerances, unknown backend/method, float32 with a tight
            rtol, or the scipy backend under a JAX transformation.

    >>> import jax, numpy as np
    >>> from hambias import HAMGeometry, sparse_regression
    >>> p, _ = sparse_regression(jax.random.key(0), 5, 12, 2)
    >>> r = solve_flow(HAMGeometry(10.0), p, np.zeros(12), t1=np.inf, rtol=1e-5, atol=1e-7)
    >>> bool(r.converged), r.xs.shape
    (True, (201, 12))
    """
    steady_tol = STEADY_TOL_PER_RTOL * rtol if steady_tol is None else steady_tol
    x0, t1f, grid = _validate(geometry, problem, x0, t1, beta, saveat, n_save, backend, method,
                              rtol, atol, steady_tol, max_steps, max_crossings)
    beta = jnp.asarray(beta, dtype=x0.dtype)
    if backend == "scipy":
        if not _is_concrete(geometry, problem, x0, beta):
            raise ValueError("backend='scipy' cannot run under jit/vmap; use backend='diffrax'")
        return _solve_scipy(geometry, problem, x0, beta, grid, t1=t1f, method=method, rtol=rtol,
                            atol=atol, steady_tol=steady_tol, max_steps=max_steps,
                            zero_crossings=zero_crossings, max_crossings=max_crossings)
    t1a = jnp.asarray(t1f, dtype=x0.dtype)
    ts, xs, status, stats, crossings = _solve_diffrax(
        geometry, problem, x0, beta, grid, t1=t1a, method=method, rtol=rtol,
        atol=atol, steady_tol=steady_tol, max_steps=int(max_steps),
        zero_crossings=bool(zero_crossings), max_crossings=int(max_crossings))
    return FlowResult(ts=ts, xs=xs, status=status, stats=stats, crossing_times=crossings,
                      backend="diffrax", method=method, t1=t1a)


# -- diffrax backend -----------------------------------------------------------------
def _diffrax_solver(name):
    import diffrax

    return {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5, "dopri8": diffrax.Dopri8,
            "kvaerno3": diffrax.Kvaerno3, "kvaerno5": diffrax.Kvaerno5}[name]()


def _as_arrays(tree, dtype):
    """Python-number leaves -> arrays, so that new α or γ values do not recompile."""
    def conv(leaf):
        if isinstance(leaf, (int, float)) and not isinstance(leaf, bool):
            return jnp.asarray(leaf, dtype=dtype)
        return leaf

    return jax.tree_util.tree_map(conv, tree)


def _segment(solver_name, zero_crossings, nsteps, args, t_start, y_start, t1, ts, rtol, atol):
    """One diffrax solve from (t_start, y_start) to t1, saving at ``ts`` (all ≥ t_start).

    The steady-state event is always present; for finite t1 its threshold is −1,
    so it never fires and finite and infinite t1 share one compiled program.
    """
    import diffrax

    subs = [diffrax.SubSaveAt(ts=ts), diffrax.SubSaveAt(t1=True)]
    if zero_crossings:
        subs.append(diffrax.SubSaveAt(steps=True))
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(_vf), _diffrax_solver(solver_name), t_start, t1, None, y_start,
        args=args, saveat=diffrax.SaveAt(subs=subs),
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        event=diffrax.Event(_steady_cond), max_steps=nsteps, throw=False,
        adjoint=diffrax.ForwardMode())
    ok = (sol.result == diffrax.RESULTS.successful) | (sol.result == diffrax.RESULTS.event_occurred)
    code = jnp.where(ok, STATUS_SUCCESS,
                     jnp.where(sol.result == diffrax.RESULTS.max_steps_reached,
                               STATUS_MAX_STEPS, STATUS_SOLVER_FAILURE))
    seg = {
        "ys": sol.ys[0], "t_final": sol.ts[1][-1], "y_final": sol.ys[1][-1], "code": code,
        "num_steps": jnp.asarray(sol.stats["num_steps"]),
        "num_accepted_steps": jnp.asarray(sol.stats["num_accepted_steps"]),
        "num_rejected_steps": jnp.asarray(sol.stats["num_rejected_steps"]),
    }
    if zero_crossings:
        seg["step_ts"] = jnp.concatenate([jnp.asarray(t_start, sol.ts[2].dtype)[None], sol.ts[2]])
        seg["step_ys"] = jnp.concatenate([y_start[None], sol.ys[2]], axis=0)
    return seg


_STEP_KEYS = ("num_steps", "num_accepted_steps", "num_rejected_steps")


def _assemble(args, grid, first, second, use2, implicit_only, max_crossings):
    """Merge the explicit and (optional) implicit segments into FlowResult fields."""
    geometry = args[0]
    if second is None:
        ys, t_final, y_final, code = first["ys"], first["t_final"], first["y_final"], first["code"]
        stats = {k: first[k] for k in _STEP_KEYS}
        stats["num_implicit_steps"] = first["num_steps"] * implicit_only
        stats["switched"] = jnp.asarray(False)
        if "step_ts" in first:
            st, sy = first["step_ts"], first["step_ys"]
    else:
        ys = jnp.where((use2 & (grid > first["t_final"]))[:, None], second["ys"], first["ys"])
        t_final = jnp.where(use2, second["t_final"], first["t_final"])
        y_final = jnp.where(use2, second["y_final"], first["y_final"])
        code = jnp.where(use2, second["code"], first["code"])
        stats = {k: first[k] + jnp.where(use2, second[k], 0) for k in _STEP_KEYS}
        stats["num_implicit_steps"] = jnp.where(use2, second["num_steps"], 0)
        stats["switched"] = jnp.asarray(use2)
        if "step_ts" in first:
            st = jnp.concatenate([first["step_ts"], jnp.where(use2, second["step_ts"], jnp.inf)])
            sy = jnp.concatenate([first["step_ys"], second["step_ys"]], axis=0)
    # rows after the final time: the steady state after success, NaN after a failure
    after = grid > t_final
    ok = code == STATUS_SUCCESS
    ys = jnp.where(after[:, None], jnp.where(ok, y_final, jnp.nan), ys)
    ts = jnp.concatenate([jnp.where(after & ok, t_final, grid), t_final[None]])
    xs = jnp.concatenate([ys, y_final[None]], axis=0)
    finite = jnp.all(jnp.isfinite(y_final)) & jnp.all(jnp.isfinite(ys) | after[:, None])
    status = jnp.where(finite, code, STATUS_NON_FINITE)
    out = jnp.any(geometry.domain_violation(jnp.where(jnp.isfinite(xs), xs, 0.0)))
    status = jnp.where((status == STATUS_SUCCESS) & out, STATUS_LEFT_DOMAIN, status)
    stats["t_final"] = t_final
    crossings = None
    if "step_ts" in first:
        crossings, stats["crossings_dropped"] = _hermite_crossings(
            st, sy, args, y_final.shape[0], max_crossings)
    return ts, xs, status, stats, crossings


def _run_first(solver_name, zero_crossings, nsteps, implicit_only, max_crossings,
               geometry, problem, x0, beta, grid, t1, rtol, atol, steady_tol):
    """Threshold, one solve from x₀, and its assembled result (one compiled program).

    Everything numeric (t1, even t1 = ∞, the save times, x₀, the tolerances, the
    geometry's and problem's arrays) is traced; only the solver, the flags and the
    shapes select a compiled program.
    """
    residual0 = stationarity_residual(geometry, problem, x0, beta=beta)
    # t1 = ∞: stop at ‖∇F‖ ≤ steady_tol·‖∇F(x₀)‖; finite t1: never (a residual is ≥ 0 > −1)
    threshold = jnp.where(jnp.isinf(t1), steady_tol * residual0, -1.0)
    args = (geometry, problem, beta, threshold)
    t0 = jnp.zeros((), dtype=x0.dtype)
    first = _segment(solver_name, zero_crossings, nsteps, args, t0, x0, t1, grid, rtol, atol)
    return args, first, _assemble(args, grid, first, None, None, implicit_only, max_crossings)


def _run_implicit(zero_crossings, max_steps, args, grid, first, t1, rtol, atol):
    """Kvaerno5 from where the explicit stage stopped."""
    t_s = first["t_final"]
    return _segment("kvaerno5", zero_crossings, max_steps, args, t_s, first["y_final"], t1,
                    jnp.maximum(grid, t_s), rtol, atol)


_run_first_jit = eqx.filter_jit(_run_first)


@eqx.filter_jit
def _run_switched_jit(zero_crossings, max_steps, max_crossings, args, grid, first, t1, rtol,
                      atol):
    second = _run_implicit(zero_crossings, max_steps, args, grid, first, t1, rtol, atol)
    return _assemble(args, grid, first, second, jnp.asarray(True), 0, max_crossings)


def _solve_diffrax(geometry, problem, x0, beta, grid, *, t1, method, rtol, atol, steady_tol,
                   max_steps, zero_crossings, max_crossings):
    dtype = x0.dtype
    geometry, problem = _as_arrays(geometry, dtype), _as_arrays(problem, dtype)
    rtol, atol = jnp.asarray(rtol, dtype=dtype), jnp.asarray(atol, dtype=dtype)
    steady_tol = jnp.asarray(steady_tol, dtype=dtype)
    concrete = _is_concrete(geometry, problem, x0, beta, t1, grid)
    run_first = _run_first_jit if concrete else _run_first
    auto = method == "auto"
    args, first, assembled = run_first(
        "tsit5" if auto else method, zero_crossings,
        AUTO_EXPLICIT_STEPS if auto else max_steps, int(method.startswith("kvaerno")),
        max_crossings, geometry, problem, x0, beta, grid, t1, rtol, atol, steady_tol)
    if not auto:
        return assembled
    switch = first["code"] == STATUS_MAX_STEPS
    if concrete:
        # Eagerly the switch is a Python branch: Kvaerno5 is compiled only when needed.
        if not bool(switch):
            return assembled
        return _run_switched_jit(zero_crossings, max_steps, max_crossings, args, grid, first, t1,
                                 rtol, atol)

    def implicit(_):
        return _run_implicit(zero_crossings, max_steps, args, grid, first, t1, rtol, atol)

    def skip(_):
        shapes = jax.eval_shape(implicit, None)
        return {k: jnp.zeros(v.shape, v.dtype) if v.ndim == 0
                else jnp.full(v.shape, jnp.inf, v.dtype) for k, v in shapes.items()}

    second = jax.lax.cond(switch, implicit, skip, None)
    return _assemble(args, grid, first, second, switch, 0, max_crossings)


def _hermite_crossings(step_ts, step_ys, args, n, max_crossings):
    """Sign changes between consecutive step ends, located on the Hermite cubic."""
    valid_row = jnp.isfinite(step_ts) & jnp.all(jnp.isfinite(step_ys), axis=1)
    safe_ys = jnp.where(valid_row[:, None], step_ys, 0.0)
    ta, tb = step_ts[:-1], step_ts[1:]
    ya, yb = safe_ys[:-1], safe_ys[1:]
    interval_ok = valid_row[:-1] & valid_row[1:] & (tb > ta)
    cross = interval_ok[:, None] & (ya * yb < 0)
    total = n * max_crossings
    k_idx, i_idx = jnp.nonzero(cross, size=total, fill_value=0)
    found = jnp.arange(total) < jnp.sum(cross)
    fs = jax.vmap(lambda y: _vf(0.0, y, args))(safe_ys)
    h = tb[k_idx] - ta[k_idx]
    y_a, y_b = ya[k_idx, i_idx], yb[k_idx, i_idx]
    f_a, f_b = fs[k_idx, i_idx] * h, fs[k_idx + 1, i_idx] * h

    def cubic(s):
        s2, s3 = s * s, s * s * s
        return ((2 * s3 - 3 * s2 + 1) * y_a + (s3 - 2 * s2 + s) * f_a
                + (-2 * s3 + 3 * s2) * y_b + (s3 - s2) * f_b)

    def bisect(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        same = jnp.sign(cubic(mid)) == jnp.sign(y_a)
        return jnp.where(same, mid, lo), jnp.where(same, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _CROSSING_BISECTIONS, bisect,
                               (jnp.zeros_like(h), jnp.ones_like(h)))
    times = ta[k_idx] + 0.5 * (lo + hi) * h
    # rank of each crossing among the earlier ones of the same coordinate
    same_coord = (i_idx[:, None] == i_idx[None, :]) & found[None, :]
    rank = jnp.sum(same_coord & (jnp.arange(total)[None, :] < jnp.arange(total)[:, None]), axis=1)
    keep = found & (rank < max_crossings)
    out = jnp.full((n, max_crossings), jnp.nan, dtype=step_ts.dtype)
    out = out.at[jnp.where(keep, i_idx, n), jnp.where(keep, rank, 0)].set(times, mode="drop")
    dropped = jnp.sum(cross) - jnp.sum(keep)
    return out, dropped


# -- scipy backend ---------------------------------------------------------------------
# Module-level jitted callbacks for scipy: compiled once per geometry/problem structure.
_vf_jit = jax.jit(lambda args, x: _vf(0.0, x, args))
_residual_jit = jax.jit(
    lambda args, x: stationarity_residual(args[0], args[1], x, beta=args[2]))
_jac_jit = jax.jit(jax.jacfwd(lambda args, x: _vf(0.0, x, args), argnums=1))


def _solve_scipy(geometry, problem, x0, beta, grid, *, t1, method, rtol, atol, steady_tol,
                 max_steps, zero_crossings, max_crossings):
    from scipy import integrate, optimize

    method = "LSODA" if method == "auto" else method
    dtype = x0.dtype
    args = (_as_arrays(geometry, dtype), _as_arrays(problem, dtype), beta, None)
    nfev = [0]

    def fun(t, y):
        nfev[0] += 1
        return np.asarray(_vf_jit(args, y))

    def residual(y):
        return float(_residual_jit(args, y))

    kwargs = {"rtol": rtol, "atol": atol}
    if method in _SCIPY_IMPLICIT:
        kwargs["jac"] = lambda t, y: np.asarray(_jac_jit(args, y))
    steady = math.isinf(t1)
    t_bound = _SCIPY_T_INF if steady else t1
    y0 = np.asarray(x0, dtype=float)
    threshold = steady_tol * (residual(x0))
    n, g = y0.size, np.asarray(grid, dtype=float)
    saved = np.full((g.size, n), np.nan)
    saved[g == 0.0] = y0
    crossings = [[] for _ in range(n)]
    steps = 0
    code, detail = STATUS_SUCCESS, ""
    t_now, y_now = 0.0, y0
    done_steady = steady and (residual(x0)) <= threshold
    solver = None if done_steady else getattr(integrate, method)(fun, 0.0, y0, t_bound, **kwargs)
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
        if not np.all(np.isfinite(y_now)):
            code = STATUS_NON_FINITE
            break
        dense = solver.dense_output()
        sel = (g > t_old) & (g <= t_now)
        if np.any(sel):
            saved[sel] = dense(g[sel]).T
        if zero_crossings:
            for i in np.flatnonzero(y_old * y_now < 0):
                crossings[i].append(optimize.brentq(
                    lambda t, i=i: dense(t)[i], t_old, t_now, xtol=4 * np.finfo(float).eps))
        if steady and (residual(y_now)) <= threshold:
            break
        if solver.status == "finished":
            break
    if steady and solver is not None and code == STATUS_SUCCESS and solver.status == "finished":
        code = STATUS_MAX_STEPS  # ran to the finite stand-in for ∞ without a steady state
    # the same post-processing as _assemble, in numpy (no per-shape XLA compiles)
    after = g > t_now
    ok = code == STATUS_SUCCESS
    saved[after] = y_now if ok else np.nan
    ts = np.concatenate([np.where(after & ok, t_now, g), [t_now]])
    xs = np.concatenate([saved, y_now[None]], axis=0)
    if code == STATUS_SUCCESS and not np.all(np.isfinite(xs)):
        code = STATUS_NON_FINITE
    if code == STATUS_SUCCESS and geometry.has_bounded_domain():
        if bool(np.any(np.asarray(geometry.domain_violation(xs)))):
            code = STATUS_LEFT_DOMAIN
    stats = {"num_steps": steps, "num_accepted_steps": steps,
             "num_implicit_steps": steps if method in _SCIPY_IMPLICIT else 0,
             "switched": False, "t_final": t_now, "nfev": nfev[0],
             "njev": getattr(solver, "njev", 0) if solver is not None else 0,
             "nlu": getattr(solver, "nlu", 0) if solver is not None else 0}
    crossing_times = None
    if zero_crossings:
        arr = np.full((n, max_crossings), np.nan)
        dropped = 0
        for i, c in enumerate(crossings):
            arr[i, : min(len(c), max_crossings)] = c[:max_crossings]
            dropped += max(len(c) - max_crossings, 0)
        crossing_times = jnp.asarray(arr, dtype=dtype)
        stats["crossings_dropped"] = dropped
    stats = {k: np.asarray(v) for k, v in stats.items()}
    return FlowResult(ts=jnp.asarray(ts, dtype=dtype), xs=jnp.asarray(xs, dtype=dtype),
                      status=np.asarray(code), stats=stats, crossing_times=crossing_times,
                      backend="scipy", method=method, t1=np.asarray(t1), detail=detail)
