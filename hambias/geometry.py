"""Separable Hessian geometries: what a mirror flow is made of.

A geometry is a separable Legendre potential R(x) = Σ_i r(x_i).  Its Hessian
R''(x) is a diagonal Riemannian metric, and the mirror flow d∇R(x_t) = −∇f(x_t) dt
is the Riemannian gradient flow ẋ = −g⁻¹(x) ∇f(x) with inverse metric
g⁻¹ = 1/R''  (docs/theory/setting.md#mirror-flow).

Every geometry is an immutable :class:`equinox.Module` (a pytree), so jit, vmap
and grad work through its methods, and a batch of geometries (a vector of α, say)
can be vmapped over.  A new geometry is one small class implementing five
elementwise methods; see :class:`AbstractGeometry`.

The library never enables float64; callers who need it (tests, CLI, checks)
call ``jax.config.update("jax_enable_x64", True)`` themselves.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float

from . import _series
from ._validate import is_concrete as _is_concrete

__all__ = [
    "AbstractGeometry",
    "Euclidean",
    "PointwiseProduct",
    "HAMGeometry",
    "gamma_from_init",
    "mw_flow_time",
]

# The cvxpy primal form of R_α is (u log u − u + 1)/α² with u = 1 + α|x|: the signal
# (α|x|)²/2 sits under O(α|x|) terms, so for small α·max|x| the interior-point solver's
# tolerance is amplified and Clarabel ends "optimal_inaccurate" (measured on 60×500:
# at α·max|x| = 0.007 and 0.015 at every tolerance 1e-10…1e-8).  Below this value the
# form is refused (predict_limit then uses the dual Newton solver, with a message).
_CVXPY_MIN_ALPHA_SCALE = 5e-2

# Below this |α x| the closed forms of HAMGeometry lose digits to cancellation
# (error ~ eps/u), so the Taylor series is used (one implementation: hambias._series).
_HAM_SERIES_CUTOFF = _series.SERIES_CUTOFF

# Gauss–Legendre rule of the default regulariser H(x) = ∫₀ˣ s/g⁻¹(s) ds: 32 nodes
# integrate polynomials of degree 63 exactly; for the smooth integrands of this
# module (checked against the closed forms in the tests) the error is at round-off.
_GL_NODES, _GL_WEIGHTS = (tuple(v.tolist()) for v in np.polynomial.legendre.leggauss(32))


class AbstractGeometry(eqx.Module):
    """A separable Hessian geometry R(x) = Σ_i r(x_i).

    Subclasses implement the elementwise maps

    * ``inverse_metric(x)``      g⁻¹(x) = 1 / r''(x)
    * ``mirror_map(x)``          ∇R(x) = r'(x)
    * ``inverse_mirror_map(phi)`` (∇R)⁻¹(φ)
    * ``coordinate_potential(x)`` r(x), with r(0) = 0 where 0 is in the domain
    * ``coordinate_conjugate(phi)`` r*(φ)

    and may override ``domain_violation(x)`` (a boolean mask of coordinates
    outside the domain of R; default: none).  Everything else (potential,
    conjugate, Bregman divergence, normalised potential, dual Hessian) is
    derived here, so flows, iterates and predictions work for any subclass.
    """

    # -- the five elementwise maps a geometry must provide -------------------
    @abc.abstractmethod
    def inverse_metric(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise inverse metric g⁻¹(x) = 1/R''(x)."""

    @abc.abstractmethod
    def mirror_map(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise mirror map ∇R(x)."""

    @abc.abstractmethod
    def inverse_mirror_map(self, phi: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise inverse of the mirror map, (∇R)⁻¹(φ) = ∇R*(φ)."""

    @abc.abstractmethod
    def coordinate_potential(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise potential r(x_i); ``potential`` is its sum."""

    @abc.abstractmethod
    def coordinate_conjugate(self, phi: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise convex conjugate r*(φ_i); ``conjugate`` is its sum."""

    # -- domain ----------------------------------------------------------------
    def domain_violation(self, x: Float[ArrayLike, "*shape"]) -> Bool[Array, "*shape"]:
        """Boolean mask of the coordinates of ``x`` outside the domain of R."""
        return jnp.zeros(jnp.shape(x), dtype=bool)

    def check_domain(self, x: ArrayLike) -> Array:
        """Return ``x`` as an array, raising if a coordinate lies outside the domain.

        Eagerly this raises ``ValueError``; under ``jit`` it uses
        :func:`equinox.error_if` (a runtime error) for geometries with a
        bounded domain.
        """
        x = jnp.asarray(x)
        if not self.has_bounded_domain():
            return x
        bad = self.domain_violation(x)
        if _is_concrete(x, self):
            if bool(np.any(np.asarray(bad))):
                raise ValueError(self._domain_message(np.asarray(x), np.asarray(bad)))
            return x
        return eqx.error_if(x, jnp.any(bad), f"point outside the domain of {type(self).__name__}")

    def has_bounded_domain(self) -> bool:
        """Whether ``domain_violation`` can ever be true (static)."""
        return False

    def domain_half_width(self):
        """Per-coordinate w with domain {|x_i| < w_i} (inf: unbounded), or None (all of ℝⁿ)."""
        return None

    def _domain_message(self, x: np.ndarray, bad: np.ndarray) -> str:
        idx = np.flatnonzero(bad)
        return (
            f"{type(self).__name__}: {idx.size} coordinate(s) outside the domain, "
            f"first at index {int(idx[0])} with value {x.reshape(-1)[idx[0]]!r}"
        )

    # -- scale -----------------------------------------------------------------
    def length_scale(self) -> Array:
        """The geometry's own length scale s > 0 (a scalar or one per coordinate).

        Below |x| ≈ s the inverse metric stays near its value at 0; above it, it
        changes by a large factor (γ for m⊙w, 1/|α| for HAM).  A flow started in
        |x| ≲ s lives there at first, so an absolute error tolerance above s
        makes its early dynamics, and everything that follows, meaningless.
        :func:`hambias.solve_flow` uses it to choose its coordinates and
        tolerances.  Default: ``inf`` (no scale of its own, as for Euclidean).
        """
        return jnp.asarray(jnp.inf)

    # -- derived quantities ----------------------------------------------------
    def potential(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
        """R(x) = Σ_i r(x_i), a scalar (summed over all coordinates)."""
        return jnp.sum(self.coordinate_potential(x))

    def conjugate(self, phi: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
        """R*(φ) = Σ_i r*(φ_i), a scalar."""
        return jnp.sum(self.coordinate_conjugate(phi))

    def dual_inverse_metric(self, phi: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """∇²R*(φ) (diagonal) = g⁻¹((∇R)⁻¹(φ)); used by the dual Newton solver."""
        return self.inverse_metric(self.inverse_mirror_map(phi))

    def coordinate_bregman(self, x: Float[ArrayLike, "*shape"],
                           y: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise D(x_i, y_i) = r(x_i) − r(y_i) − r'(y_i)(x_i − y_i)."""
        x, y = jnp.asarray(x), jnp.asarray(y)
        return (
            self.coordinate_potential(x)
            - self.coordinate_potential(y)
            - self.mirror_map(y) * (x - y)
        )

    def bregman_divergence(self, x: Float[ArrayLike, "*shape"],
                           y: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
        """D_R(x, y) = R(x) − R(y) − ⟨∇R(y), x − y⟩ ≥ 0.

        See docs/theory/setting.md#bregman-divergence.
        """
        return jnp.sum(self.coordinate_bregman(x, y))

    # -- the explicit regulariser of the β > 0 flow ------------------------------
    def coordinate_regulariser(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """Elementwise H(x_i) = ∫₀^{x_i} s / g⁻¹(s) ds, so that g⁻¹(x) H'(x) = x.

        With weight decay β the flow dθ = −g⁻¹∇f dt − βθ dt is the Riemannian gradient flow
        of f + βH in the same metric (docs/theory/explicit-bias.md#explicit-bias), so its
        rest point minimises f + βH.  The default evaluates the integral by Gauss–Legendre
        quadrature on [0, x] (exact to round-off for the smooth inverse metrics of this
        module, which override it with closed forms anyway).
        """
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        nodes = jnp.asarray(_GL_NODES, dtype=x.dtype)
        weights = jnp.asarray(_GL_WEIGHTS, dtype=x.dtype)
        s = 0.5 * x[..., None] * (nodes + 1.0)  # quadrature points on [0, x]
        return 0.5 * x * jnp.sum(weights * s / self.inverse_metric(s), axis=-1)

    def regulariser(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, ""]:
        """H(x) = Σ_i H(x_i), a scalar (the explicit bias of the β > 0 flow)."""
        return jnp.sum(self.coordinate_regulariser(x))

    def regulariser_grad(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """∇H(x) = x / g⁻¹(x), elementwise."""
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        return x / self.inverse_metric(x)

    def regulariser_curvature(self, x: Float[ArrayLike, "*shape"]) -> Float[Array, "*shape"]:
        """H''(x_i) = d/dx (x / g⁻¹(x)), elementwise (the diagonal of ∇²H); autodiff by default."""
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        flat = x.reshape(-1)
        d = jax.vmap(jax.grad(lambda v: v / self.inverse_metric(v)))(flat)
        return d.reshape(x.shape)

    # -- what the prediction solvers may use -------------------------------------
    def continuation(self, x_scale: float, *, start: float, factor: float) -> tuple:
        """Easier geometries that lead to this one, easiest first (default: none).

        The β > 0 (primal) Newton of :func:`hambias.predict_limit` solves them in turn,
        each warm-started at the previous minimiser, when this geometry's own scale is far
        from the solution's scale ``x_scale`` (a huge α): there f + βH has a kink of width
        ~1/α and Newton from the ridge start overshoots it.  A geometry whose "hardness"
        h (α·x_scale for HAM, x_scale/γ for m⊙w) exceeds ``start`` returns the stages
        with h = start, start·factor, … below h.
        """
        return ()

    def cvxpy_potential(self, cp, x, *, x_scale: float):
        """A DCP expression of R(x) for a cvxpy variable x, and its extra constraints.

        Returns ``(expression, constraints)``.  Raises ``NotImplementedError`` when the
        geometry has no DCP form (then only the Newton solver applies) and
        ``ValueError`` when the form would be inaccurate at this ``x_scale``.
        """
        raise NotImplementedError(f"{type(self).__name__} has no DCP form of its potential")

    def cvxpy_conjugate(self, cp, z):
        """A DCP expression of R*(z) for a cvxpy expression z (used by the dual form)."""
        raise NotImplementedError(f"{type(self).__name__} has no DCP form of its conjugate")

    def cvxpy_regulariser(self, cp, x):
        """``(expression, constraints)``: a DCP form of H(x) for β > 0."""
        raise NotImplementedError(f"{type(self).__name__} has no DCP form of its regulariser")

    def cvxpy_scale(self) -> float:
        """A factor the cvxpy objective is multiplied by (same minimiser) so that the
        interior-point solver works on O(1) numbers (default 1)."""
        return 1.0

    def normalised_potential(self, x: ArrayLike) -> Array:
        """r(x)/r(1), elementwise: the shape of R on a common scale (for plots).

        Euclidean gives x²; HAM moves from x² (α → 0) to |x| (α → ∞).  Needs the
        point 1 inside the domain (so not for HAM with α ≤ −1, whose box is |x| < 1/|α|).
        """
        one = jnp.ones_like(jnp.asarray(x, dtype=jnp.result_type(float)))
        return self.coordinate_potential(x) / self.coordinate_potential(one)


class Euclidean(AbstractGeometry):
    """Plain gradient descent: R(x) = ½‖x‖², inverse metric 1.

    >>> import jax.numpy as jnp
    >>> float(Euclidean().potential(jnp.array([3.0, 4.0])))
    12.5
    """

    def inverse_metric(self, x):
        return jnp.ones_like(jnp.asarray(x, dtype=jnp.result_type(float)))

    def mirror_map(self, x):
        return jnp.asarray(x, dtype=jnp.result_type(float))

    def inverse_mirror_map(self, phi):
        return jnp.asarray(phi, dtype=jnp.result_type(float))

    def coordinate_potential(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        return 0.5 * x * x

    def coordinate_conjugate(self, phi):
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        return 0.5 * phi * phi

    def coordinate_bregman(self, x, y):
        d = jnp.asarray(x) - jnp.asarray(y)
        return 0.5 * d * d

    def coordinate_regulariser(self, x):
        return self.coordinate_potential(x)

    def regulariser_curvature(self, x):
        return self.inverse_metric(x)

    def cvxpy_potential(self, cp, x, *, x_scale):
        return 0.5 * cp.sum_squares(x), []

    def cvxpy_conjugate(self, cp, z):
        return 0.5 * cp.sum_squares(z)

    def cvxpy_regulariser(self, cp, x):
        return 0.5 * cp.sum_squares(x), []


def _check_param(name: str, value, *, positive: bool, allow_zero: bool = False) -> None:
    """Eager validation of a geometry parameter (skipped under tracing)."""
    if not _is_concrete(value):
        return
    arr = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive:
        ok = arr >= 0 if allow_zero else arr > 0
        if not np.all(ok):
            raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")


class PointwiseProduct(AbstractGeometry):
    """The m⊙w geometry (pointwise overparameterisation x = m⊙w), paper normalisation.

    Inverse metric √(x² + γ²); potential (docs/theory/mw-flow.md#mw-potential)

        ψ_γ(x) = Σ_i [x_i arcsinh(x_i/γ_i) − √(x_i² + γ_i²) + γ_i],

    mirror map arcsinh(x/γ), inverse map γ sinh φ, conjugate γ(cosh φ − 1).
    GD on (m, w) runs this flow at twice the speed with γ = |m₀² − w₀²|/2
    (see :func:`gamma_from_init` and :func:`mw_flow_time`).

    Args:
        gamma: γ > 0, a scalar or one value per coordinate.

    >>> g = PointwiseProduct(0.5)
    >>> float(g.inverse_metric(0.0))
    0.5
    """

    gamma: Array | float

    def __init__(self, gamma):
        _check_param("PointwiseProduct: gamma", gamma, positive=True)
        self.gamma = gamma if isinstance(gamma, (int, float)) else jnp.asarray(gamma)

    def length_scale(self):
        return jnp.abs(jnp.asarray(self.gamma))

    def inverse_metric(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        return _hypot(x, self.gamma)

    def mirror_map(self, x):
        return jnp.arcsinh(jnp.asarray(x) / self.gamma)

    def inverse_mirror_map(self, phi):
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        # γ sinh φ; for |φ| > _EXP_TAIL as sign(φ)·γe^{|φ|}/2 so that a tiny γ (1e-300)
        # times a huge sinh stays finite as long as the product is representable.
        return jnp.sign(phi) * _gamma_cosh_or_sinh(phi, self.gamma, jnp.sinh)

    def dual_inverse_metric(self, phi):
        # ∇²R*(φ) = γ cosh φ = g⁻¹((∇R)⁻¹(φ)), without the round trip.
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        return _gamma_cosh_or_sinh(phi, self.gamma, jnp.cosh)

    def coordinate_potential(self, x):
        # γ q(r), r = x/γ, q(r) = r asinh r − (√(1+r²) − 1), the last term written
        # as r·(r/(1 + √(1+r²))) against cancellation and overflow.
        r = jnp.asarray(x, dtype=jnp.result_type(float)) / self.gamma
        return self.gamma * (r * jnp.arcsinh(r) - r * (r / (1.0 + _hypot(r, 1.0))))

    def coordinate_conjugate(self, phi):
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        a = jnp.abs(phi)
        small = a <= _EXP_TAIL
        s = jnp.sinh(0.5 * jnp.where(small, a, 0.0))
        tail = jnp.exp(jnp.where(small, 0.0, a) + jnp.log(0.5 * self.gamma)) - self.gamma
        return jnp.where(small, 2.0 * self.gamma * s * s, tail)  # γ(cosh φ − 1)

    def coordinate_regulariser(self, x):
        # √(x² + γ²) − γ = x²/(√(x² + γ²) + γ): a smoothed |x| (pseudo-Huber at scale γ)
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        return x * (x / (self.inverse_metric(x) + self.gamma))

    def regulariser_curvature(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        g = self.inverse_metric(x)
        return (self.gamma / g) * (self.gamma / g) / g

    def continuation(self, x_scale, *, start, factor):
        gamma = np.asarray(self.gamma, dtype=float)
        return tuple(PointwiseProduct(gamma * h_ratio)
                     for h_ratio in _stage_ratios(float(x_scale) / float(gamma.min()),
                                                  start, factor))

    def cvxpy_conjugate(self, cp, z):
        g = np.asarray(self.gamma, dtype=float)
        return cp.sum(cp.multiply(g / 2, cp.exp(z) + cp.exp(-z)) - g)

    def cvxpy_regulariser(self, cp, x):
        g = np.broadcast_to(np.asarray(self.gamma, dtype=float), x.shape)
        return cp.sum(cp.norm(cp.vstack([x, g]), 2, axis=0)) - float(np.sum(g)), []

    def cvxpy_scale(self):
        # Scaled by 1/max γ when γ < 1e-2 (same maximiser): measured 2e-8 agreement with
        # Newton at γ = 1e-3 (8e-6 unscaled); the exp-cone solve is only ~3e-5 accurate at
        # γ = 1 and ~3e-4 at γ = 10 (the certificate then refuses the point).
        gmax = float(np.max(np.asarray(self.gamma, dtype=float)))
        return 1.0 / gmax if gmax < 1e-2 else 1.0


# |φ| above which cosh φ and sinh φ equal e^{|φ|}/2 in float64 (e^{−2|φ|} < 1e-17).
_EXP_TAIL = 20.0
# α|φ| above which HAM's inverse map is evaluated as e^{α|φ| − log α} (e^700 = 1e304 is
# still finite; the quotient by α can be representable well beyond e^709.8).
_EXP_LARGE = 700.0


def _hypot(a, b):
    """√(a² + b²) without overflow or underflow, with correct derivatives everywhere.

    Written as m·√((a/m)² + (b/m)²), m = max(|a|, |b|): the value does not depend on m,
    so autodiff through m contributes nothing (jnp.hypot's second derivative is 0 where
    |a| = |b|, which Hessians of the m⊙w potential would inherit).
    """
    m = jnp.maximum(jnp.abs(a), jnp.abs(b))
    safe = jnp.where(m > 0, m, 1.0)
    return jnp.where(m > 0, safe * jnp.sqrt((a / safe) ** 2 + (b / safe) ** 2), 0.0)


def _gamma_cosh_or_sinh(phi, gamma, fn):
    """γ·fn(|φ|) for fn = cosh or sinh, as γe^{|φ|}/2 beyond _EXP_TAIL (no overflow)."""
    a = jnp.abs(phi)
    small = a <= _EXP_TAIL
    near = gamma * fn(jnp.where(small, a, 0.0))
    far = jnp.exp(jnp.where(small, 0.0, a) + jnp.log(0.5 * gamma))
    return jnp.where(small, near, far)


def _stage_ratios(hardness: float, start: float, factor: float) -> list[float]:
    """Parameter ratios of continuation stages: hardness h_k = start·factor^k < hardness.

    Stage k changes the geometry's scale parameter by h/h_k (γ larger, α smaller), so
    that its hardness is h_k; the list runs from the easiest stage to the last one
    before the geometry itself.  Empty when hardness ≤ start.
    """
    if not (np.isfinite(hardness) and hardness > start):
        return []
    k = int(np.ceil(np.log(hardness / start) / np.log(factor)))
    return [hardness / (start * factor**j) for j in range(k)]


def _ham_ratio_log1p(u):
    """log1p(u)/u, analytic at u = 0 (series below the cutoff; see hambias._series)."""
    return _series.ratio_log1p(u, jnp)


def _ham_ratio_expm1(v):
    """expm1(v)/v, analytic at v = 0."""
    return _series.ratio_expm1(v, jnp)


def _ham_potential_ratio(u):
    """((1+u) log1p(u) − u)/u² = Σ_{k≥2} (−u)^{k−2}/(k(k−1)); ½ at u = 0."""
    return _series.potential_ratio(u, jnp)


def _ham_conjugate_ratio(v):
    """(expm1(v) − v)/v² = Σ_{j≥0} v^j/(j+2)!; ½ at v = 0; +inf on overflow."""
    return _series.conjugate_ratio(v, jnp)


class HAMGeometry(AbstractGeometry):
    """The HAM geometry: inverse metric 1 + α|x| and potential R_α.

    See docs/theory/potential.md#potential.

        R_α(x) = Σ_i [(1 + α|x_i|) log(1 + α|x_i|) − α|x_i|] / α²
        ∇R_α(x) = sign(x) log(1 + α|x|)/α,   (∇R_α)⁻¹(φ) = sign(φ)(e^{α|φ|} − 1)/α
        R_α*(φ) = Σ (e^{α|φ_i|} − 1 − α|φ_i|)/α²

    α = 0 is Euclidean (the formulas are evaluated as series there, so small α
    loses no digits).  α < 0 is the box-barrier geometry of
    docs/theory/negative-alpha.md#negative-alpha: the domain is |x| < 1/|α|, and points
    outside it raise ``ValueError``.

    Args:
        alpha: the hyperbolic strength α (finite; a scalar, or one per coordinate).

    >>> g = HAMGeometry(2.0)
    >>> float(g.inverse_metric(-1.5))
    4.0
    """

    alpha: Array | float

    def __init__(self, alpha):
        _check_param("HAMGeometry: alpha", alpha, positive=False)
        self.alpha = alpha if isinstance(alpha, (int, float)) else jnp.asarray(alpha)

    def length_scale(self):
        # 1/|α|: the inverse metric 1 + α|x| doubles (α > 0) or vanishes (α < 0) there;
        # inf at α = 0 (Euclidean).
        return 1.0 / jnp.abs(jnp.asarray(self.alpha, dtype=jnp.result_type(float)))

    def has_bounded_domain(self) -> bool:
        if _is_concrete(self.alpha):
            return bool(np.any(np.asarray(self.alpha) < 0))
        return True

    def domain_violation(self, x):
        x = jnp.asarray(x)
        return jnp.logical_or(self.alpha * jnp.abs(x) <= -1.0, jnp.isnan(x))

    def domain_half_width(self):
        alpha = np.asarray(self.alpha, dtype=float)
        if not np.any(alpha < 0):
            return None
        with np.errstate(divide="ignore"):
            return np.where(alpha < 0, -1.0 / np.where(alpha < 0, alpha, -1.0), np.inf)

    def _domain_message(self, x, bad):
        idx = np.flatnonzero(bad)
        a = np.broadcast_to(np.asarray(self.alpha, dtype=float), x.shape).reshape(-1)[idx[0]]
        return (
            f"HAMGeometry(alpha={a:g}) with alpha < 0 is defined only inside the box "
            f"|x| < 1/|alpha| = {1 / abs(a):g}; {idx.size} coordinate(s) lie outside, "
            f"first at index {int(idx[0])} with value {x.reshape(-1)[idx[0]]!r}"
        )

    def inverse_metric(self, x):
        return 1.0 + self.alpha * jnp.abs(jnp.asarray(x, dtype=jnp.result_type(float)))

    def mirror_map(self, x):
        # sign(x) log1p(α|x|)/α; where α|x| > e^_EXP_LARGE as sign(x)(log α + log(|x| + 1/α))/α,
        # (1 + α|x| = α(|x| + 1/α)), so that α|x| beyond float64 (α = 1e300, x = 1e10) does
        # not overflow while the result is representable.
        x = self.check_domain(jnp.asarray(x, dtype=jnp.result_type(float)))
        u = self.alpha * jnp.abs(x)
        big = u > np.exp(_EXP_LARGE)
        near = x * _ham_ratio_log1p(jnp.where(big, 0.0, u))
        a = jnp.where(big, self.alpha, 1.0)
        far = jnp.sign(x) * (jnp.log(a) + jnp.log(jnp.abs(x) + 1.0 / a)) / a
        return jnp.where(big, far, near)

    def inverse_mirror_map(self, phi):
        # sign(φ)(e^{α|φ|} − 1)/α; beyond α|φ| = _EXP_LARGE as sign(φ)(e^{α|φ| − log α} − 1/α),
        # so that a huge α (1e300) does not overflow e^{α|φ|} while the quotient, x, is
        # representable.
        phi = jnp.asarray(phi, dtype=jnp.result_type(float))
        v = self.alpha * jnp.abs(phi)
        big = v > _EXP_LARGE
        near = phi * _ham_ratio_expm1(jnp.where(big, 0.0, v))
        a = jnp.where(big, self.alpha, 1.0)
        far = jnp.sign(phi) * (jnp.exp(jnp.where(big, v, 0.0) - jnp.log(a)) - 1.0 / a)
        return jnp.where(big, far, near)

    def coordinate_potential(self, x):
        x = self.check_domain(jnp.asarray(x, dtype=jnp.result_type(float)))
        return x * x * _ham_potential_ratio(self.alpha * jnp.abs(x))

    def coordinate_conjugate(self, phi):
        # |φ|·ratio·|φ| in this order: at α = 1e300, φ ~ 1e-297 and φ² would underflow
        # although the conjugate (~1e-300) is representable.
        a = jnp.abs(jnp.asarray(phi, dtype=jnp.result_type(float)))
        return a * _ham_conjugate_ratio(self.alpha * a) * a

    def coordinate_bregman(self, x, y):
        """Elementwise D_{R_α}(x_i, y_i), written without cancellation.

        Same signs (x·y ≥ 0): D = (|x| − |y|)² ρ(t)/(1 + α|y|) with
        t = α(|x| − |y|)/(1 + α|y|) and ρ(t) = ((1 + t) log(1 + t) − t)/t²;
        opposite signs: D = R_α(x) + R_α*(∇R_α(y)) + |∇R_α(y)|·|x|, a sum of
        nonnegative terms.  Both equal r(x) − r(y) − r'(y)(x − y) exactly.
        """
        x = self.check_domain(jnp.asarray(x, dtype=jnp.result_type(float)))
        y = self.check_domain(jnp.asarray(y, dtype=jnp.result_type(float)))
        ax, ay = jnp.abs(x), jnp.abs(y)
        b = 1.0 + self.alpha * ay
        t = self.alpha * (ax - ay) / b
        same = (ax - ay) ** 2 * _ham_potential_ratio(t) / b
        phi_y = self.mirror_map(y)
        opposite = (
            self.coordinate_potential(x) + self.coordinate_conjugate(phi_y) + jnp.abs(phi_y) * ax
        )
        return jnp.where(x * y >= 0, same, opposite)

    def dual_inverse_metric(self, phi):
        # ∇²R*(φ) = e^{α|φ|} = 1 + α|x|, computed without the round trip.
        return jnp.exp(self.alpha * jnp.abs(jnp.asarray(phi, dtype=jnp.result_type(float))))

    def coordinate_regulariser(self, x):
        """H_α(x) = [α|x| − log(1 + α|x|)]/α², without cancellation.

        See docs/theory/explicit-bias.md#h-alpha.
        """
        x = self.check_domain(jnp.asarray(x, dtype=jnp.result_type(float)))
        a = jnp.abs(x)
        return a * _series.h_ratio(self.alpha * a, jnp) * a

    def regulariser_curvature(self, x):
        x = jnp.asarray(x, dtype=jnp.result_type(float))
        g = self.inverse_metric(x)
        return 1.0 / (g * g)

    def continuation(self, x_scale, *, start, factor):
        alpha = np.asarray(self.alpha, dtype=float)
        if np.any(alpha < 0):
            return ()
        return tuple(HAMGeometry(alpha / h_ratio)
                     for h_ratio in _stage_ratios(float(alpha.max()) * float(x_scale),
                                                  start, factor))

    def _cvxpy_lift(self, cp, x):
        alpha = np.asarray(self.alpha, dtype=float)
        if np.any(alpha == 0):
            raise NotImplementedError("the DCP form of R_alpha needs alpha != 0 in every "
                                      "coordinate")
        t = cp.Variable(x.shape)
        return alpha, cp.multiply(alpha, t), [t >= x, t >= -x]

    def cvxpy_potential(self, cp, x, *, x_scale):
        """Σ(u log u − u + 1)/α², u = 1 + αt, t ≥ |x| (R_α increases with |x|; α < 0: the
        entropy's domain u ≥ 0 is the box)."""
        alpha = np.asarray(self.alpha, dtype=float)
        if np.all(alpha == 0):
            return 0.5 * cp.sum_squares(x), []
        scale = float(np.min(np.abs(alpha))) * float(x_scale)
        if scale < _CVXPY_MIN_ALPHA_SCALE:
            raise ValueError(
                f"cvxpy's primal form of R_alpha cancels for |alpha|·max|x| = {scale:.2g} "
                f"< {_CVXPY_MIN_ALPHA_SCALE:g}")
        alpha, at, cons = self._cvxpy_lift(cp, x)
        return cp.sum(cp.multiply(1.0 / alpha**2, -cp.entr(1 + at) - at)), cons

    def cvxpy_regulariser(self, cp, x):
        alpha = np.asarray(self.alpha, dtype=float)
        if np.all(alpha == 0):
            return 0.5 * cp.sum_squares(x), []
        alpha, at, cons = self._cvxpy_lift(cp, x)
        return cp.sum(cp.multiply(1.0 / alpha**2, at - cp.log(1 + at))), cons

    def cvxpy_scale(self):
        # Scaled by max|α| (same minimiser): Clarabel then reaches its tolerance where the
        # unscaled 1/α² form stops at "optimal_inaccurate" (measured).
        amax = float(np.max(np.abs(np.asarray(self.alpha, dtype=float))))
        return amax if amax > 0 else 1.0


def gamma_from_init(m0: ArrayLike, w0: ArrayLike) -> Array:
    """γ = |m₀² − w₀²| / 2 for the m⊙w flow started at (m₀, w₀).

    See docs/theory/mw-flow.md#mw-gamma.

    m² − w² is conserved by the gradient flow on (m, w) without weight decay, and
    (m² + w²)² = 4x² + (m² − w²)², so ẋ = −2√(x² + γ²) ∇f with γ = |m₀² − w₀²|/2.
    (PILoT prints a constant that corresponds to γ = |m₀² − w₀²|; that convention
    does not reproduce GD on (m, w).)

    >>> float(gamma_from_init(2.0, 1.0))
    1.5
    """
    m0, w0 = jnp.asarray(m0), jnp.asarray(w0)
    return 0.5 * jnp.abs(m0 * m0 - w0 * w0)


def mw_flow_time(steps: ArrayLike, eta: ArrayLike) -> Array:
    """Time of the paper-normalised m⊙w flow reached by ``steps`` GD steps of size η on (m, w).

    GD on (m, w) follows ẋ = −2√(x² + γ²)∇f to first order in η, twice the speed
    of the paper's flow ẋ = −√(x² + γ²)∇f (:class:`PointwiseProduct`), so
    ``steps`` steps of size η correspond to time τ = 2 η · steps there.

    >>> round(float(mw_flow_time(100, 1e-3)), 6)
    0.2
    """
    return 2.0 * jnp.asarray(eta) * jnp.asarray(steps)
