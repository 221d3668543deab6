"""Sign flips in a single-neuron teacher–student model: the problem, its invariant, success maps.

The student a·σ(w·x) learns the teacher a*·σ(w*·x) (σ = ReLU or the identity,
w ∈ ℝᵏ, x ~ N(0, I_k)) from the population loss

    f(a, w) = E[(a σ(w·x) − a* σ(w*·x))²] / 2,

in closed form (:class:`TeacherStudent`; θ = (a, w) is one vector of length 1 + k).
For ReLU, with r = |w|, s = |w*| and φ the angle between w and w*,

    f = a² r²/4 − a a* K + a*² s²/4,   K = r s (sin φ + (π − φ) cos φ) / (2π)

(the arc-cosine kernel E[σ(w·x)σ(w*·x)]); for the identity f = |a w − a* w*|²/2.

**The balance invariant.**  The model is unchanged by (a, w) → (c a, w / c), c > 0, so
a ∂_a f = w·∇_w f.  Along any flow ẋ = −h(x) ⊙ ∇f(x) with a separable inverse metric h
(per coordinate; GD h = 1, m⊙w h = √(θ² + γ²), HAM h = 1 + α|θ|), F_i' = θ/h_i(θ) gives
d/dt F_a(a) = −a ∂_a f and d/dt Σ_i F_{w_i}(w_i) = −w·∇_w f, so

    Q(a, w) = F_a(a) − Σ_i F_{w_i}(w_i)

is conserved (:func:`balance_invariant`).  F is the regulariser H of the geometry's β > 0
theory (docs/theory/explicit-bias.md#h-alpha): θ²/2 for GD, √(θ² + γ²) − γ for m⊙w, H_α for
HAM.  Each F is even, zero at 0 and increasing in |θ|.

**Which starts reach the teacher** (scalar w, a*, w* ≠ 0; :func:`predict_success`).
ReLU: w can never change sign (on the wrong side the neuron only shrinks towards w = 0,
and a neuron reaching w = 0 from the right side while a has the wrong sign stays there),
so w₀ must have the sign of w*.  Then if a₀ has the sign of a* (or is 0) the flow stays in
that quadrant (p = a w obeys ṗ = −(h_a w² + h_w a²)(p − a* w*)/2 for the scalar ReLU with
w w* > 0, so p moves monotonically to a* w* and neither factor reaches 0).  If a₀ has the
wrong sign, a and w both move towards 0 until one of them gets there (the only rest point
of that closed quadrant is 0 itself); on the level set {Q = Q₀} a gets there first, with
w ≠ 0, iff Q₀ = −F_w(w) < 0, and w first iff Q₀ = F_a(a) > 0.  Hence

    success  ⇔  w₀ w* > 0  and  (a₀ a* ≥ 0  or  F_a(a₀) < F_w(w₀)).

With one metric for both layers, F_a = F_w is increasing in |θ|, so the condition is
|a₀| < |w₀| for every h: **GD, m⊙w and HAM flows share the success set**
{w₀ w* > 0, a₀ a*/|a*| > −|w₀|} (the "w₀ > |a₀|" measured for a ReLU teacher is its part
where a₀ has the wrong sign; with the right sign every w₀ w* > 0 succeeds).  A different
h per layer moves the boundary to F_a(a₀) = F_w(w₀) (:func:`success_boundary`).
Identity σ: either layer may flip; the one with the larger F keeps its sign, so the flow
ends on the teacher's branch (a a* > 0, w w* > 0) iff both signs are right, or exactly one
is wrong and its F is the smaller.  The end point itself is where the level set meets the
set of minimisers (or, for a failure, the axis a w = 0): :func:`predicted_limit`.

Discrete methods follow these flows to first order in η; :func:`iterate_success_map`
and :func:`flow_success_map` measure the success maps over a grid of (a₀, w₀) with
``jax.vmap``.  :class:`SignIn` is GD on (m, w) whose balance γ is reset every p steps (the
Sign-In mechanism, Gadhikar, Jacobs, Zhou, Burkholz, arXiv 2504.12801).

Theory: docs/theory/two-layer.md#two-layer (this model), docs/theory/setting.md#inverse-metrics
(inverse metrics), docs/theory/ham-flow.md#ham-flow (HAM flow), docs/theory/mw-flow.md#mw-flow
(m⊙w), docs/theory/sign-choice.md#sign-choice (HYP vs HYP*) and
docs/theory/explicit-bias.md#h-alpha (H_α).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from ._validate import check_bounds, check_count, check_vector, is_concrete
from .flow import solve_flow
from .geometry import AbstractGeometry
from .iterates import run_iterates
from .methods import AbstractMethod, _hyper, _mw_init
from .problems import AbstractProblem

__all__ = [
    "TeacherStudent",
    "SignIn",
    "SuccessMap",
    "balance_invariant",
    "predict_success",
    "success_boundary",
    "predicted_limit",
    "classify_outcome",
    "flow_success_map",
    "iterate_success_map",
    "iterate_boundary",
    "predicted_success_map",
    "ACTIVATIONS",
    "SUCCESS",
    "FAILURE",
    "UNDECIDED",
]

#: Activations of :class:`TeacherStudent`.
ACTIVATIONS = ("relu", "linear")
#: Outcome codes of a run (:func:`classify_outcome`).
SUCCESS, FAILURE, UNDECIDED = 1, 0, -1

# A run has reached the teacher when its loss is below this fraction of f(0), the loss
# of the zero network (where every failure of the ReLU model stalls: a·σ(w·x) ≡ 0).
# A converging flow drives f − 0 to zero exponentially, so 1e-6 is a margin of ~14
# e-foldings over the float64 floor while far below any stalled run (f = f(0)).
SUCCESS_LOSS_FRACTION = 1e-6
# A run has failed when its loss is at least this fraction of f(0) and it sits on the
# axis a·w ≈ 0 (|a w| ≤ FAIL_PRODUCT · |a* w*|), or (identity σ) it reached zero loss on
# the other branch.  Between the two thresholds a run is undecided (not yet converged).
FAIL_LOSS_FRACTION = 0.5
FAIL_PRODUCT = 1e-3
# Bisection steps of the monotone inversions below: the bracket [0, 2^j] shrinks to
# 2^(j−80), below float64 resolution of any bracket up to 2^26.
_BISECTIONS = 80
_MAX_DOUBLINGS = 60


# ---------------------------------------------------------------------------
# the problem
# ---------------------------------------------------------------------------
def _relu_parts(w, v):
    """r = |w|, s = |v|, ŵ, q = P v̂ (P = I − ŵŵᵀ), sin φ = |q|, φ, for w, v ∈ ℝᵏ.

    At w = 0 (no direction) ŵ = 0, so φ = π/2 (the midpoint of the subgradient of the
    kink of σ(w·x) at w = 0).
    """
    r = jnp.linalg.norm(w)
    s = jnp.linalg.norm(v)
    safe_r = jnp.where(r > 0, r, 1.0)
    w_hat = jnp.where(r > 0, w / safe_r, 0.0)
    v_hat = v / s
    cos = jnp.clip(jnp.dot(w_hat, v_hat), -1.0, 1.0)
    q = v_hat - cos * w_hat
    sin = jnp.linalg.norm(q)
    phi = jnp.arctan2(sin, cos)
    return r, s, safe_r, w_hat, q, sin, cos, phi


def _relu_value(theta, a_star, w_star):
    a, w = theta[0], theta[1:]
    r, s, _, _, _, sin, cos, phi = _relu_parts(w, w_star)
    kernel = r * s * (sin + (jnp.pi - phi) * cos) / (2.0 * jnp.pi)
    return 0.25 * a * a * r * r - a * a_star * kernel + 0.25 * a_star * a_star * s * s


def _relu_gradient(theta, a_star, w_star):
    """∇f: ∂_a f = a r²/2 − a* K, ∇_w f = a² w/2 − a a* G, G = ((π − φ) w* + s sin φ ŵ)/(2π)."""
    a, w = theta[0], theta[1:]
    r, s, _, w_hat, _, sin, cos, phi = _relu_parts(w, w_star)
    kernel = r * s * (sin + (jnp.pi - phi) * cos) / (2.0 * jnp.pi)
    g_kernel = ((jnp.pi - phi) * w_star + s * sin * w_hat) / (2.0 * jnp.pi)
    da = 0.5 * a * r * r - a_star * kernel
    dw = 0.5 * a * a * w - a * a_star * g_kernel
    return jnp.concatenate([da[None], dw])


def _relu_hessian_vp(theta, t, a_star, w_star):
    """∇²f t with ∇²_w K = s (q qᵀ/sin φ + sin φ P)/(2π r) (0 at w = 0 and where w ∥ w*)."""
    a, w = theta[0], theta[1:]
    ta, tw = t[0], t[1:]
    r, s, safe_r, w_hat, q, sin, _, phi = _relu_parts(w, w_star)
    g_kernel = ((jnp.pi - phi) * w_star + s * sin * w_hat) / (2.0 * jnp.pi)
    safe_sin = jnp.where(sin > 0, sin, 1.0)
    p_tw = tw - w_hat * jnp.dot(w_hat, tw)
    h_tw = jnp.where(r > 0, s * (q * (jnp.dot(q, tw) / safe_sin) + sin * p_tw)
                     / (2.0 * jnp.pi * safe_r), 0.0)
    cross = a * w - a_star * g_kernel  # ∂_a ∇_w f
    ha = 0.5 * r * r * ta + jnp.dot(cross, tw)
    hw = cross * ta + 0.5 * a * a * tw - a * a_star * h_tw
    return jnp.concatenate([ha[None], hw])


@jax.custom_jvp
def _relu_grad(theta, a_star, w_star):
    return _relu_gradient(theta, a_star, w_star)


@_relu_grad.defjvp
def _relu_grad_jvp(primals, tangents):
    theta, a_star, w_star = primals
    return (_relu_gradient(theta, a_star, w_star),
            _relu_hessian_vp(theta, tangents[0], a_star, w_star))


@jax.custom_jvp
def _relu_loss(theta, a_star, w_star):
    return _relu_value(theta, a_star, w_star)


@_relu_loss.defjvp
def _relu_loss_jvp(primals, tangents):
    theta, a_star, w_star = primals
    return (_relu_value(theta, a_star, w_star),
            jnp.dot(_relu_grad(theta, a_star, w_star), tangents[0]))


class TeacherStudent(AbstractProblem):
    """One neuron a·σ(w·x) fitting the teacher a*·σ(w*·x), x ~ N(0, I_k): population loss.

        f(θ) = E[(a σ(w·x) − a* σ(w*·x))²]/2,   θ = (a, w) ∈ ℝ^{1+k}.

    ReLU: f = a²|w|²/4 − a a* K(w, w*) + a*²|w*|²/4 with the arc-cosine kernel
    K = |w||w*|(sin φ + (π − φ) cos φ)/(2π); the gradient and the Hessian-vector product
    are the closed forms (module docstring), so implicit solvers and ``hvp`` are finite
    also where w ∥ w* (always, for k = 1).  At w = 0, where σ(w·x) has a kink, the
    gradient takes the midpoint of the one-sided ones.  Identity: f = |a w − a* w*|²/2.
    The teacher is a constant of the problem (derivatives with respect to it are zero).

    Args:
        a_star: the teacher's output weight a* ≠ 0.
        w_star: the teacher's input weight(s) w* ≠ 0: a scalar (k = 1) or a vector.
        activation: ``"relu"`` (default) or ``"linear"``.

    Raises:
        ValueError: a* = 0, w* = 0, a non-finite teacher, or an unknown activation.

    >>> import jax.numpy as jnp
    >>> p = TeacherStudent(1.0, 1.0)
    >>> float(p.loss(jnp.array([2.0, 0.5])))   # (a w − a* w*)²/4 for w > 0
    0.0
    >>> float(p.loss(jnp.array([1.0, -1.0])))  # w < 0: (a² w² + a*² w*²)/4
    0.5
    """

    a_star: Array
    w_star: Array
    activation: str = eqx.field(static=True)

    def __init__(self, a_star, w_star, *, activation: str = "relu"):
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        a_star = jnp.asarray(a_star, dtype=jnp.result_type(float))
        w_star = jnp.atleast_1d(jnp.asarray(w_star, dtype=jnp.result_type(float)))
        if a_star.ndim != 0 or w_star.ndim != 1:
            raise ValueError(f"a_star must be a scalar and w_star a scalar or vector, got "
                             f"shapes {a_star.shape} and {w_star.shape}")
        if is_concrete(a_star, w_star):
            check_bounds("TeacherStudent: a_star", a_star)
            check_vector("TeacherStudent: w_star", w_star)
            if float(a_star) == 0.0 or not np.any(np.asarray(w_star) != 0):
                raise ValueError("the teacher needs a_star != 0 and w_star != 0 (a zero "
                                 "teacher has no sign to learn)")
        self.a_star = a_star
        self.w_star = w_star
        self.activation = activation

    @property
    def k(self) -> int:
        """Input dimension k (the length of w)."""
        return self.w_star.shape[0]

    @property
    def n(self) -> int:
        """Number of parameters 1 + k."""
        return 1 + self.k

    @property
    def theta_star(self) -> Array:
        """The teacher's own parameters (a*, w*) (one of its minimisers)."""
        return jnp.concatenate([self.a_star[None], self.w_star])

    def _point(self, x) -> Array:
        x = jnp.asarray(x)
        if is_concrete(x) and x.shape != (self.n,):
            raise ValueError(f"TeacherStudent: θ = (a, w) must have shape ({self.n},), got "
                             f"shape {x.shape}")
        return x

    def _teacher(self):
        return jax.lax.stop_gradient(self.a_star), jax.lax.stop_gradient(self.w_star)

    def loss(self, x):
        x = self._point(x)
        a_star, w_star = self._teacher()
        if self.activation == "relu":
            return _relu_loss(x, a_star, w_star)
        d = x[0] * x[1:] - a_star * w_star
        return 0.5 * jnp.dot(d, d)

    def null_loss(self) -> Array:
        """f at the zero network (a σ(w·x) ≡ 0): a*²|w*|²/4 (ReLU), a*²|w*|²/2 (identity)."""
        c = 0.25 if self.activation == "relu" else 0.5
        return c * self.a_star**2 * jnp.dot(self.w_star, self.w_star)


# ---------------------------------------------------------------------------
# the invariant and what it predicts
# ---------------------------------------------------------------------------
def _coordinate_F(geometry: AbstractGeometry, n: int, i: int, value):
    """F_i(value) = H(value) of coordinate i of ``geometry`` (value of any shape)."""
    value = jnp.asarray(value, dtype=jnp.result_type(float))
    x = jnp.zeros(value.shape + (n,), value.dtype).at[..., i].set(value)
    return geometry.coordinate_regulariser(x)[..., i]


def balance_invariant(geometry: AbstractGeometry, theta: ArrayLike) -> Array:
    """Q(θ) = F_a(a) − Σ_i F_{w_i}(w_i), conserved by the flow of ``geometry`` on f(a, w).

    F_i(θ_i) = ∫₀^{θ_i} s/h_i(s) ds is the geometry's ``coordinate_regulariser`` (H of
    docs/theory/explicit-bias.md#h-alpha: θ²/2, √(θ² + γ²) − γ, H_α), per coordinate, so
    per-coordinate α or γ give one F per layer.  Conserved because a ∂_a f = w·∇_w f for
    a·σ(w·x) with σ positively homogeneous (module docstring).

    Args:
        geometry: the flow's geometry (per-coordinate parameters allowed).
        theta: (..., 1 + k): a first, then w.

    Returns:
        Q, shape (...).

    >>> import jax.numpy as jnp
    >>> from hambias import Euclidean
    >>> float(balance_invariant(Euclidean(), jnp.array([3.0, 1.0, 1.0])))  # (9 − 1 − 1)/2
    3.5
    """
    theta = jnp.asarray(theta, dtype=jnp.result_type(float))
    F = geometry.coordinate_regulariser(theta)
    return F[..., 0] - jnp.sum(F[..., 1:], axis=-1)


def _invert_monotone(fn, target):
    """The u ≥ 0 with fn(u) = target ≥ 0, fn increasing from fn(0) = 0 (bisection; vmappable)."""
    target = jnp.asarray(target, dtype=jnp.result_type(float))

    def grow(hi_k):
        hi, k = hi_k
        return 2.0 * hi, k + 1

    hi, _ = jax.lax.while_loop(lambda hk: (fn(hk[0]) < target) & (hk[1] < _MAX_DOUBLINGS),
                               grow, (jnp.ones_like(target), 0))

    def bisect(_, lohi):
        lo, hi = lohi
        mid = 0.5 * (lo + hi)
        below = fn(mid) < target
        return jnp.where(below, mid, lo), jnp.where(below, hi, mid)

    lo, hi = jax.lax.fori_loop(0, _BISECTIONS, bisect, (jnp.zeros_like(target), hi))
    return 0.5 * (lo + hi)


def _require_scalar_w(problem, what: str) -> None:
    if not isinstance(problem, TeacherStudent):
        raise ValueError(f"{what} needs a TeacherStudent problem, got {type(problem).__name__}")
    if problem.k != 1:
        raise ValueError(f"{what} is derived for a scalar w (k = 1), got k = {problem.k}")


def predict_success(problem: TeacherStudent, geometry: AbstractGeometry,
                    theta0: ArrayLike) -> Array:
    """Whether the flow of ``geometry`` from θ₀ = (a₀, w₀) ends on the teacher (scalar w).

    ReLU: w₀w* > 0 and (a₀a* ≥ 0 or F_a(a₀) < F_w(w₀)).  Identity: both signs right, or
    exactly one wrong and its F the smaller (module docstring).  Starts on the boundary
    itself (F_a = F_w with a wrong sign: the flow ends at the saddle 0) count as failures.

    Args:
        problem: a :class:`TeacherStudent` with k = 1.
        geometry: the flow's geometry (per-coordinate α or γ allowed).
        theta0: (..., 2) starts.

    Returns:
        A boolean array of shape (...).

    >>> import jax.numpy as jnp
    >>> from hambias import HAMGeometry
    >>> p = TeacherStudent(1.0, 1.0)
    >>> predict_success(p, HAMGeometry(10.0), jnp.array([[-0.5, 1.0], [-1.0, 0.5]])).tolist()
    [True, False]
    """
    _require_scalar_w(problem, "predict_success")
    theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
    a0, w0 = theta0[..., 0], theta0[..., 1]
    F = geometry.coordinate_regulariser(theta0)
    fa, fw = F[..., 0], F[..., 1]
    right_a = a0 * problem.a_star >= 0
    right_w = w0 * problem.w_star[0] >= 0
    if problem.activation == "relu":
        return (w0 * problem.w_star[0] > 0) & (right_a | (fa < fw))
    nonzero = (a0 != 0) | (w0 != 0)
    return ((right_a & right_w & nonzero) | (right_a & ~right_w & (fw < fa))
            | (~right_a & right_w & (fa < fw)))


def success_boundary(problem: TeacherStudent, geometry: AbstractGeometry,
                     w0: ArrayLike) -> Array:
    """The a₀ where success turns into failure at a given w₀: F_a(a₀) = F_w(w₀), a₀a* < 0.

    For w₀w* > 0 the starts with a₀·sign(a*) > −F_a⁻¹(F_w(w₀)) succeed (both activations);
    the returned value is a_b = −sign(a*) F_a⁻¹(F_w(w₀)).  With one metric for both
    layers a_b = −sign(a*)|w₀|.

    >>> import jax.numpy as jnp
    >>> from hambias import Euclidean
    >>> success_boundary(TeacherStudent(1.0, 1.0), Euclidean(), jnp.array([0.5, 2.0])).tolist()
    [-0.5, -2.0]
    """
    _require_scalar_w(problem, "success_boundary")
    w0 = jnp.asarray(w0, dtype=jnp.result_type(float))
    return _boundary_jit(_array_leaves(geometry, w0.dtype), problem.a_star, w0)


def _array_leaves(tree, dtype):
    """Python-number leaves as arrays, so that new α or γ values reuse a compiled program."""
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), tree)


@eqx.filter_jit
def _boundary_jit(geometry, a_star, w0):
    fw = _coordinate_F(geometry, 2, 1, w0).reshape(-1)
    inv = jax.vmap(lambda t: _invert_monotone(lambda u: _coordinate_F(geometry, 2, 0, u), t))
    return (-jnp.sign(a_star) * inv(fw)).reshape(w0.shape)


def predicted_limit(problem: TeacherStudent, geometry: AbstractGeometry,
                    theta0: ArrayLike) -> Array:
    """Where the flow from θ₀ ends: the level set {Q = Q₀} meets the minimisers or a w = 0.

    Success: the point of {a w = a* w*} on the teacher's branch with Q = Q₀ (unique: Q
    falls monotonically along the branch as |w| grows).  Identity, other branch: the same
    on {a w = a* w*, a a* < 0}.  ReLU failure: the run stalls on a w = 0; with Q₀ > 0 at
    (a∞, 0), F_a(a∞) = Q₀, a keeping its sign, and with Q₀ ≤ 0 at (0, w∞),
    F_w(w∞) = −Q₀, w keeping its sign.

    Args:
        problem: :class:`TeacherStudent` with k = 1.
        geometry: the flow's geometry.
        theta0: (..., 2) starts.

    Returns:
        (..., 2) end points.

    >>> import jax.numpy as jnp
    >>> from hambias import Euclidean
    >>> p = TeacherStudent(1.0, 1.0)
    >>> [round(v, 6) for v in predicted_limit(p, Euclidean(), jnp.array([0.0, 1.0])).tolist()]
    [0.786151, 1.27202]
    """
    _require_scalar_w(problem, "predicted_limit")
    theta0 = jnp.asarray(theta0, dtype=jnp.result_type(float))
    return _limit_jit(problem, _array_leaves(geometry, theta0.dtype), theta0)


@eqx.filter_jit
def _limit_jit(problem, geometry, theta0):
    ok = predict_success(problem, geometry, theta0)
    q0 = balance_invariant(geometry, theta0)
    a_s, w_s = problem.a_star, problem.w_star[0]
    product = a_s * w_s
    Fa = lambda u: _coordinate_F(geometry, 2, 0, u)
    Fw = lambda u: _coordinate_F(geometry, 2, 1, u)

    def on_branch(q):
        # |w| with F_a(|a* w*|/|w|) − F_w(|w|) = q: the left side falls from +∞ to −∞, so
        # bisect on u = log|w| over the bracket ±60 (|w| from 1e-26 to 1e26)
        def g(u):
            w = jnp.exp(u)
            return Fa(jnp.abs(product) / w) - Fw(w) - q

        lo, hi = jnp.asarray(-60.0), jnp.asarray(60.0)

        def bisect(_, lohi):
            lo, hi = lohi
            mid = 0.5 * (lo + hi)
            pos = g(mid) > 0
            return jnp.where(pos, mid, lo), jnp.where(pos, hi, mid)

        lo, hi = jax.lax.fori_loop(0, 2 * _BISECTIONS, bisect, (lo, hi))
        w = jnp.exp(0.5 * (lo + hi))
        return jnp.abs(product) / w, w

    def one(theta, success, q):
        a0, w0 = theta[0], theta[1]
        am, wm = on_branch(q)
        teacher = jnp.stack([jnp.sign(a_s) * am, jnp.sign(w_s) * wm])
        if problem.activation == "linear":
            return jnp.where(success, teacher, -teacher)
        a_inf = jnp.sign(a0) * _invert_monotone(Fa, jnp.maximum(q, 0.0))
        w_inf = jnp.sign(w0) * _invert_monotone(Fw, jnp.maximum(-q, 0.0))
        stalled = jnp.where(q > 0, jnp.stack([a_inf, 0.0]), jnp.stack([0.0, w_inf]))
        return jnp.where(success, teacher, stalled)

    flat = theta0.reshape(-1, 2)
    out = jax.vmap(one)(flat, ok.reshape(-1), q0.reshape(-1))
    return out.reshape(theta0.shape)


def classify_outcome(problem: TeacherStudent, theta: ArrayLike) -> Array:
    """SUCCESS (1), FAILURE (0) or UNDECIDED (−1) for end points θ (..., 1 + k).

    Success: f(θ) ≤ SUCCESS_LOSS_FRACTION·f(0) with a a* > 0 and w·w* > 0 (the
    teacher's branch).  Failure: stalled on a w ≈ 0 with f ≥ FAIL_LOSS_FRACTION·f(0), or
    converged (f small) on the other branch (identity σ).  Anything else: undecided.
    """
    theta = jnp.asarray(theta, dtype=jnp.result_type(float))
    loss = jnp.vectorize(problem.loss, signature="(n)->()")(theta)
    null = problem.null_loss()
    a, w = theta[..., 0], theta[..., 1:]
    branch = (a * problem.a_star > 0) & (jnp.sum(w * problem.w_star, axis=-1) > 0)
    small = loss <= SUCCESS_LOSS_FRACTION * null
    product = jnp.linalg.norm(a[..., None] * w, axis=-1)
    stalled = (loss >= FAIL_LOSS_FRACTION * null) & (
        product <= FAIL_PRODUCT * jnp.abs(problem.a_star) * jnp.linalg.norm(problem.w_star))
    return jnp.where(small & branch, SUCCESS,
                     jnp.where(stalled | (small & ~branch), FAILURE, UNDECIDED))


# ---------------------------------------------------------------------------
# Sign-In: GD on (m, w) with the balance reset every p steps
# ---------------------------------------------------------------------------
class SignIn(AbstractMethod):
    """GD on θ = m ⊙ w whose balance γ is reset every ``period`` steps (Sign-In).

        m ← m − η w ⊙ ∇f(θ),  w ← w − η m ⊙ ∇f(θ);  after every p-th step
        (m, w) ← the factorisation of θ = m ⊙ w with m² − w² = 2γ (θ unchanged).

    GD on (m, w) shrinks γ_k = γ₀ Π(1 − η²g_j²) (:func:`hambias.methods.mw_effective_bias`),
    and a balanced start (γ = 0) cannot change a sign at all
    (docs/theory/exp-step.md#exp-step-consequences); the reset restores the inverse metric
    √(θ² + γ²) ≥ γ at θ = 0 that a sign flip must cross.  This is the rescaling mechanism of
    Sign-In (Gadhikar, Jacobs, Zhou, Burkholz, arXiv 2504.12801) written as a balance reset;
    the paper's own schedule and scales may differ.  Between resets it is
    :class:`~hambias.MWGradientDescent`; its flow (and its first-order limit) is the
    :class:`~hambias.PointwiseProduct` (γ) flow at twice the speed, whose γ the flow
    conserves anyway: the reset corrects the discrete drift.

    The state is (m, w, k), k the step count.

    Args:
        eta: step size η > 0.
        gamma: balance γ ≥ 0 restored at each reset (a scalar or one per coordinate, e.g.
            a different γ on each layer).
        period: reset every p ≥ 1 steps.
        gamma0: balance of the start (default ``gamma``).

    >>> import jax.numpy as jnp
    >>> m = SignIn(0.1, gamma=1.5, period=10)
    >>> mm, ww, k = m.init(jnp.array([2.0]))
    >>> round(float(mm[0] ** 2 - ww[0] ** 2), 12), float(mm[0] * ww[0])
    (3.0, 2.0)
    """

    eta: Array
    gamma: Array
    gamma0: Array
    period: int = eqx.field(static=True)

    def __init__(self, eta, gamma, period, *, gamma0=None):
        self.eta = _hyper("SignIn: eta", eta, gt=0.0)
        self.gamma = _hyper("SignIn: gamma", gamma, ge=0.0)
        self.gamma0 = self.gamma if gamma0 is None else _hyper("SignIn: gamma0", gamma0, ge=0.0)
        self.period = check_count("SignIn: period", period, minimum=1)

    def init(self, x0):
        x0 = check_vector("x0", x0)
        m0, w0 = _mw_init(x0, jnp.broadcast_to(self.gamma0, x0.shape).astype(x0.dtype))
        return m0, w0, jnp.zeros((), jnp.int32)

    def update(self, state, grad):
        m, w, k = state
        m, w = m - self.eta * (w * grad), w - self.eta * (m * grad)
        k = k + 1
        reset = (k % self.period) == 0
        mr, wr = _mw_init(m * w, jnp.broadcast_to(self.gamma, m.shape).astype(m.dtype))
        return jnp.where(reset, mr, m), jnp.where(reset, wr, w), k

    def params(self, state):
        m, w, _ = state
        return m * w


# ---------------------------------------------------------------------------
# success maps
# ---------------------------------------------------------------------------
class SuccessMap(eqx.Module):
    """Outcomes of runs from a grid of starts (a₀, w₀) (scalar w); rows w₀, columns a₀.

    Attributes:
        a0: (na,) the a₀ grid; w0: (nw,) the w₀ grid.
        outcome: (nw, na) SUCCESS / FAILURE / UNDECIDED (:func:`classify_outcome`).
        x: (nw, na, 2) end points.
        loss: (nw, na) final losses.
        flips: (nw, na, 2) sign reversals of a and of w: for iterates every step with
            θ_{k+1,i} θ_{k,i} < 0; for flows the sign changes between start and end (a flow
            of this model reverses each coordinate at most once).
        status: (nw, na) status codes: :class:`~hambias.Status` for iterates (0 unless the
            run diverged), :class:`~hambias.FlowResult` codes for flows (0 success, 1 step
            budget spent, ...).
    """

    a0: Array
    w0: Array
    outcome: Array
    x: Array
    loss: Array
    flips: Array
    status: Array

    @property
    def success(self) -> Array:
        """(nw, na) booleans: outcome == SUCCESS."""
        return self.outcome == SUCCESS


def _grid(a0, w0):
    a0 = jnp.asarray(a0, dtype=jnp.result_type(float))
    w0 = jnp.asarray(w0, dtype=jnp.result_type(float))
    if a0.ndim != 1 or w0.ndim != 1 or a0.size == 0 or w0.size == 0:
        raise ValueError(f"a0 and w0 must be non-empty 1-D grids, got shapes {a0.shape} and "
                         f"{w0.shape}")
    A, W = jnp.meshgrid(a0, w0)
    return a0, w0, jnp.stack([A, W], axis=-1)


def _assemble(problem, a0, w0, x, flips, status) -> SuccessMap:
    shape = (w0.size, a0.size)
    x = jnp.asarray(x).reshape(shape + (2,))
    outcome, loss = _outcome_and_loss(problem, x)
    return SuccessMap(a0, w0, outcome, x, loss, jnp.asarray(flips).reshape(shape + (2,)),
                      jnp.asarray(status).reshape(shape))


@eqx.filter_jit
def _outcome_and_loss(problem, x):
    """One compiled program per grid shape instead of dozens of eager dispatches."""
    loss = jax.vmap(problem.loss)(x.reshape(-1, x.shape[-1])).reshape(x.shape[:-1])
    return classify_outcome(problem, x), loss


def predicted_success_map(problem: TeacherStudent, geometry: AbstractGeometry, a0, w0) -> Array:
    """(nw, na) booleans: :func:`predict_success` on the grid a0 × w0 (rows w0)."""
    _, _, starts = _grid(a0, w0)
    return _predict_jit(problem, _array_leaves(geometry, starts.dtype), starts)


_predict_jit = eqx.filter_jit(lambda problem, geometry, starts: predict_success(
    problem, geometry, starts))


def _flow_map_impl(geometry, problem, starts, t1, rtol, atol, max_steps):
    def one(x0):
        sol = solve_flow(geometry, problem, x0, t1=t1, n_save=2, method="tsit5", rtol=rtol,
                         atol=atol, max_steps=max_steps)
        return sol.x, sol.status

    return jax.vmap(one)(starts)


# one compiled program per geometry type, grid size and max_steps (t1, α, γ, x₀ traced)
_flow_map_jit = eqx.filter_jit(_flow_map_impl)


def flow_success_map(geometry: AbstractGeometry, problem: TeacherStudent, a0, w0, *,
                     t1: float, backend: str = "diffrax", rtol: float = 1e-8,
                     atol: float = 1e-10, max_steps: int = 20_000) -> SuccessMap:
    """The flow of ``geometry`` from every (a₀, w₀) of the grid, classified at time ``t1``.

    ``backend="diffrax"``: one vmapped Tsit5 solve over the whole grid (a vmapped "auto"
    would run its implicit stage for every start); compiled once per geometry type and
    grid size.  ``backend="scipy"``: DOP853 start by start (no compilation of the solve,
    about 20–70 ms per start: for small grids).  Each flow is solved to the finite t1 with
    two saved states (start and end).  A failing ReLU run that reaches the kink
    w = 0 from above crosses it once and then decays on the other side; the explicit
    solver shortens its steps there but stays within ``max_steps`` (≈1,000 steps to
    t1 = 100 on the check's grids).

    Args:
        geometry: the flow's geometry (per-coordinate α or γ allowed).
        problem: :class:`TeacherStudent` with k = 1.
        a0, w0: 1-D grids; the map has rows w0 and columns a0.
        t1: the horizon.  A start whose flow passes the saddle 0 at distance d needs
            time ~ log(1/d)/(h(0)|a* w*|/2) to leave it, and one that stalls near 0 on the
            wrong side converges only algebraically; both are classified UNDECIDED when
            t1 is too short for them (they lie near the boundary Q = 0).
        backend: ``"diffrax"`` (default) or ``"scipy"``.
        rtol, atol, max_steps: passed to :func:`hambias.solve_flow`.

    Returns:
        :class:`SuccessMap`.

    Raises:
        ValueError: a problem that is not a scalar-w :class:`TeacherStudent`, bad grids,
            or an unknown backend.
    """
    _require_scalar_w(problem, "flow_success_map")
    if backend not in ("diffrax", "scipy"):
        raise ValueError(f"backend must be 'diffrax' or 'scipy', got {backend!r}")
    a0, w0, starts = _grid(a0, w0)
    flat = starts.reshape(-1, 2)
    if backend == "scipy":
        rows = []
        for x0 in np.asarray(flat):
            sol = solve_flow(geometry, problem, x0, t1=float(t1), n_save=2, backend="scipy",
                             method="DOP853", rtol=rtol, atol=atol, max_steps=max_steps)
            rows.append((np.asarray(sol.x), int(sol.status)))
        x, status = (np.stack(v) for v in zip(*rows, strict=True))
    else:
        geometry = jax.tree_util.tree_map(lambda v: jnp.asarray(v, flat.dtype), geometry)
        x, status = _flow_map_jit(geometry, problem, flat, jnp.asarray(t1, flat.dtype),
                                  float(rtol), float(atol), int(max_steps))
    # a flow of this model reverses each coordinate at most once (module docstring), so
    # the reversals are the sign changes against the start
    flips = (jnp.asarray(x) * flat < 0).astype(jnp.int32)
    return _assemble(problem, a0, w0, x, flips, status)


class _CountFlips(AbstractMethod):
    """``method`` with per-coordinate counters of sign reversals carried in its state."""

    method: AbstractMethod

    def init(self, x0):
        state = self.method.init(x0)
        return state, jnp.zeros(self.method.params(state).shape, jnp.int32)

    def update(self, state, grad):
        inner, flips = state
        new = self.method.update(inner, grad)
        old_x, new_x = self.method.params(inner), self.method.params(new)
        return new, flips + (old_x * new_x < 0).astype(jnp.int32)

    def params(self, state):
        return self.method.params(state[0])


def _iterate_map_impl(method, problem, starts, steps):
    def one(x0):
        res = run_iterates(_CountFlips(method), problem, x0, steps=steps, record_every=steps,
                           record_x=False)
        return res.x, res.status, res.state[1]

    return jax.vmap(one)(starts)


def iterate_success_map(method: AbstractMethod, problem: TeacherStudent, a0, w0, *,
                        steps: int) -> SuccessMap:
    """``steps`` iterations of ``method`` from every (a₀, w₀) of the grid (vmapped).

    Args:
        method: any :class:`AbstractMethod` whose ``update`` needs only the gradient
            (GD, GDHyp, MWGradientDescent, SignIn, ...).
        problem: :class:`TeacherStudent` with k = 1.
        a0, w0: 1-D grids; the map has rows w0 and columns a0.
        steps: iterations per run (≥ 1).

    Returns:
        :class:`SuccessMap` (``flips``: reversals θ_{j+1,i} θ_{j,i} < 0 of a and w summed
        over the run; ``status``: :class:`~hambias.Status` codes).

    Raises:
        ValueError: a problem that is not a scalar-w :class:`TeacherStudent`, bad grids or
            steps.
    """
    _require_scalar_w(problem, "iterate_success_map")
    steps = check_count("steps", steps, minimum=1)
    a0, w0, starts = _grid(a0, w0)
    x, status, flips = _iterate_map_impl(method, problem, starts.reshape(-1, 2), steps)
    return _assemble(problem, a0, w0, x, flips, status)


def iterate_boundary(method: AbstractMethod, problem: TeacherStudent, w0, lo, hi, *,
                     steps: int, width: int = 16, tol: float = 1e-9) -> Array:
    """The a₀ at which runs of ``method`` from (a₀, w₀) turn from failure to success, per w₀.

    Multisection: every round runs ``width`` starts per row spread over the current bracket
    [lo, hi] (one vmapped batch of len(w0)·width runs, so the compiled program of an
    :func:`iterate_success_map` with that many grid points is reused) and keeps the cell
    between the last start that does not succeed and the first that does; the bracket
    shrinks (width − 1)-fold per round until it is below ``tol``.

    Args:
        method: any :class:`AbstractMethod` (as for :func:`iterate_success_map`).
        problem: :class:`TeacherStudent` with k = 1.
        w0: (m,) rows.
        lo, hi: (m,) brackets, ``lo`` on the failing side and ``hi`` on the succeeding side
            (either may be the larger: for a* > 0, lo < hi).
        steps: iterations per run.
        width: starts per row and round (≥ 3).
        tol: final bracket width.

    Returns:
        (m,) boundary estimates (midpoints of the final brackets).  A bracket whose ends do
        not fail and succeed as stated converges to one of its ends.

    >>> import jax.numpy as jnp
    >>> from hambias import GD
    >>> p = TeacherStudent(1.0, 1.0)
    >>> b = iterate_boundary(GD(0.05), p, jnp.array([0.5]), jnp.array([-0.9]), jnp.array([0.0]),
    ...                      steps=2000, tol=1e-6)
    >>> round(float(b[0]), 5)   # the boundary a₀ = −w₀
    -0.5
    """
    _require_scalar_w(problem, "iterate_boundary")
    steps = check_count("steps", steps, minimum=1)
    width = check_count("width", width, minimum=3)
    w0 = np.asarray(w0, dtype=np.float64).reshape(-1)
    lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), w0.shape).copy()
    hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), w0.shape).copy()
    frac = np.linspace(0.0, 1.0, width)
    rows = np.arange(w0.size)
    while np.max(np.abs(hi - lo)) > tol:
        cand = lo[:, None] + (hi - lo)[:, None] * frac[None, :]
        starts = np.stack([cand, np.broadcast_to(w0[:, None], cand.shape)], axis=-1)
        x, _, _ = _iterate_map_impl(method, problem, jnp.asarray(starts.reshape(-1, 2)), steps)
        ok = np.array(_outcome_and_loss(problem, x)[0] == SUCCESS).reshape(cand.shape)
        ok[:, 0], ok[:, -1] = False, True  # the ends keep their stated roles
        first = np.argmax(ok, axis=1)
        lo, hi = cand[rows, first - 1], cand[rows, first]
    return jnp.asarray(0.5 * (lo + hi))

