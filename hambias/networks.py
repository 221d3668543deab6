"""The diagonal linear networks of the implicit-bias literature, mapped onto hambias exactly.

:func:`diagonal_network` returns a :class:`DiagonalNetwork`: a parameterisation θ = φ(u, v)
of the linear model, its own initialisation, the loss convention of the code that trains
it, and what each of these is in hambias's terms: the m⊙w geometry
(:class:`~hambias.PointwiseProduct`) whose mirror flow the network's gradient flow is,
the time map, and a method that runs the network's own gradient descent in its own
variables (so its discrete limit, not only its flow, can be compared with predictions).

Gradient flow on the network with loss c·f (f = ‖Ax − y‖²/(2d), hambias's loss; c = 1
for ``loss="half_mean"``, c = 2 for ``loss="mean"``, torch's ``MSELoss``) is, for every
kind, ẋ = −k·c·√(x² + γ²)·∇f(x) with (docs/theory/mw-flow.md#mw-gamma; derivations in
docs/conventions.md#conventions):

=========  ==========================================  ===============  ========
kind       parameterisation and start                  γ                k
=========  ==========================================  ===============  ========
"u2-v2"    x = u² − v², u₀ = v₀ = scale                 2·scale²         4
           (Woodworth et al. 2002.09277; Vaškevičius
           et al.)
"uv"       x = u ⊙ v, u₀ = √2·scale, v₀ = 0              scale²           2
           (Pesme & Flammarion 2304.00488; Even et
           al. 2302.08982)
"pm_uv"    x = u₊⊙v₊ − u₋⊙v₋, u±₀ = √(scale(1−s)/(1+s)),  u₀² + v₀²       2
           v±₀ = √(scale(1+s)/(1−s)), u₀v₀ = scale
           (Azulay et al. 2102.09769, shape s)
"mw"       x = m ⊙ w, m₀ = scale, w₀ = shape             |m₀² − w₀²|/2   2
           (the HAM paper's m⊙w, docs/theory/mw-flow.md#mw-flow)
=========  ==========================================  ===============  ========

so the network ends at ``predict_limit(network.geometry, problem, network.x0(n))`` (at
first order in the step size for GD), after flow time ``network.flow_time(steps, eta)``
of that geometry.  For the ± network ``gamma_from_init(u0, v0)`` is the wrong γ (it is
the γ of one product, zero at s = 0).

>>> net = diagonal_network("u2-v2", 0.1)
>>> float(net.geometry.gamma), float(net.flow_time(100, 1e-3))
(0.020000000000000004, 0.4)
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from ._validate import check_bounds, check_vector
from .geometry import PointwiseProduct
from .methods import AbstractMethod, mw_effective_bias

__all__ = ["DiagonalNetwork", "NetworkGD", "diagonal_network", "KINDS", "LOSSES"]

#: Network kinds (see the table in the module docstring).
KINDS = ("u2-v2", "uv", "pm_uv", "mw")
#: Loss conventions: the factor c of the network's loss c·f over hambias's f = ‖Ax − y‖²/(2d).
LOSSES = {"half_mean": 1.0, "mean": 2.0}
_RATE = {"u2-v2": 4.0, "uv": 2.0, "pm_uv": 2.0, "mw": 2.0}


class DiagonalNetwork(eqx.Module):
    """A diagonal linear network and its convention (build with :func:`diagonal_network`).

    Attributes:
        kind: ``"u2-v2"``, ``"uv"``, ``"pm_uv"`` or ``"mw"``.
        scale: the literature's initialisation scale (see :func:`diagonal_network`).
        shape: Azulay et al.'s shape s ∈ (−1, 1) for ``"pm_uv"``; w₀ for ``"mw"``; else 0.
        loss: ``"half_mean"`` (c = 1) or ``"mean"`` (c = 2).
    """

    kind: str = eqx.field(static=True)
    scale: Array
    shape: Array
    loss: str = eqx.field(static=True)

    # -- the start -------------------------------------------------------------------
    def _pm_start(self):
        s = self.shape
        return jnp.sqrt(self.scale * (1 - s) / (1 + s)), jnp.sqrt(self.scale * (1 + s) / (1 - s))

    def start(self, n: int):
        """The network's own initial variables, each of shape (n,)."""
        ones = jnp.ones((n,), dtype=jnp.result_type(float))
        if self.kind == "u2-v2":
            return self.scale * ones, self.scale * ones
        if self.kind == "uv":
            return jnp.sqrt(2.0) * self.scale * ones, 0.0 * ones
        if self.kind == "pm_uv":
            u0, v0 = self._pm_start()
            return u0 * ones, v0 * ones, u0 * ones, v0 * ones
        return self.scale * ones, self.shape * ones

    def x0(self, n: int) -> Array:
        """θ₀ = φ(start), shape (n,): 0 for the first three kinds, scale·shape for "mw"."""
        return self.params(self.start(n))

    def params(self, variables) -> Array:
        """θ = φ(variables)."""
        if self.kind == "u2-v2":
            u, v = variables
            return u * u - v * v
        if self.kind == "pm_uv":
            up, vp, um, vm = variables
            return up * vp - um * vm
        u, v = variables
        return u * v

    # -- the hambias side ------------------------------------------------------------
    @property
    def c(self) -> float:
        """The loss factor c (the network trains on c·f)."""
        return LOSSES[self.loss]

    @property
    def gamma(self) -> Array:
        """γ of the m⊙w flow this network's gradient flow is (a scalar)."""
        if self.kind == "u2-v2":
            return 2.0 * self.scale**2
        if self.kind == "uv":
            return self.scale**2
        if self.kind == "pm_uv":
            u0, v0 = self._pm_start()
            return u0**2 + v0**2
        return 0.5 * jnp.abs(self.scale**2 - self.shape**2)

    @property
    def geometry(self) -> PointwiseProduct:
        """The matching :class:`~hambias.PointwiseProduct` (γ)."""
        return PointwiseProduct(self.gamma)

    def flow_time(self, steps, eta) -> Array:
        """Time of ``geometry``'s flow reached by ``steps`` GD steps of size η: k·c·η·steps."""
        return _RATE[self.kind] * self.c * jnp.asarray(eta) * jnp.asarray(steps)

    def gd(self, eta) -> NetworkGD:
        """The network's own gradient descent with step η on c·f, reporting θ."""
        return NetworkGD(self, eta)

    def state(self, theta0) -> tuple:
        """The variables with φ(variables) = θ₀ that share the network's conserved quantities.

        Gradient flow conserves uv (u²−v²), u² − v² (u⊙v, m⊙w) and, for the ± network,
        u±² − v±² with the product asinh(2θ₊/c)+asinh(2θ₋/c); the state of the network
        started at its own start and passing through θ₀ has the same invariants.  At
        θ₀ = x0(n) it is ``start(n)``.
        """
        theta0 = check_vector("theta0", theta0)
        s = self.scale
        if self.kind == "u2-v2":  # uv = s², u² − v² = θ₀
            u = jnp.sqrt(_root_of_pair(theta0, s * s))
            return u, s * s / u
        if self.kind == "uv":  # u² − v² = 2s², uv = θ₀
            u = jnp.sqrt(s * s + jnp.sqrt(s**4 + theta0**2))
            return u, theta0 / u
        if self.kind == "mw":
            c = self.scale**2 - self.shape**2  # m² − w² = c, mw = θ₀
            m = jnp.sqrt(_root_of_pair(c, theta0)) * jnp.where(self.scale < 0, -1.0, 1.0)
            safe = jnp.where(m != 0, m, 1.0)
            w = jnp.where(m != 0, theta0 / safe, self.shape)
            return m, w
        # ± network: each product is an m⊙w pair, x± = γ₁ sinh(ψ₀ ± δ) with γ₁ = |c|/2 and
        # γ₁ sinh ψ₀ = u₀v₀ = p, so θ = x₊ − x₋ = γ sinh δ with γ = u₀² + v₀² and
        # x± = p cosh δ ± (γ/2) sinh δ (a form that holds at c = 0 too).
        u0, v0 = self._pm_start()
        c = u0**2 - v0**2
        gamma, p = u0**2 + v0**2, u0 * v0
        delta = jnp.arcsinh(theta0 / gamma)
        tp = p * jnp.cosh(delta) + 0.5 * gamma * jnp.sinh(delta)
        tm = p * jnp.cosh(delta) - 0.5 * gamma * jnp.sinh(delta)

        def pair(t):  # u² − v² = c, uv = t
            u = jnp.sqrt(_root_of_pair(c, t))
            return u, t / u

        (up, vp), (um, vm) = pair(tp), pair(tm)
        return up, vp, um, vm


def _root_of_pair(c, t):
    """u² of the pair with u² − v² = c and uv = t, i.e. (c + √(c² + 4t²))/2, written as
    2t²/(√(c² + 4t²) − c) for c < 0 so that it does not cancel."""
    r = jnp.sqrt(c * c + 4 * t * t)
    safe = jnp.where(c < 0, r - c, 1.0)
    return jnp.where(c < 0, 2 * t * t / safe, 0.5 * (c + r))


class NetworkGD(AbstractMethod):
    """Gradient descent on a :class:`DiagonalNetwork`'s own variables, with loss c·f.

    The update is the chain rule of the parameterisation: for x = u² − v²,
    u ← u − 2cη u⊙∇f(x), v ← v + 2cη v⊙∇f(x); for x = u ⊙ v, u ← u − cη v⊙∇f,
    v ← v − cη u⊙∇f; for the ± network each product likewise with opposite signs.
    ``init(θ₀)`` is ``network.state(θ₀)`` (the network's own start at θ₀ = x0(n)).
    For a flow of the network this follows ``network.geometry`` at time
    ``network.flow_time(k, η)``.

    >>> import jax.numpy as jnp
    >>> from hambias import LinearRegression
    >>> net = diagonal_network("uv", 0.5)
    >>> m = net.gd(0.1)
    >>> p = LinearRegression(jnp.eye(1), jnp.array([1.0]))
    >>> [round(float(v[0]), 6) for v in m.step(m.init(jnp.zeros(1)), p)]
    [0.707107, 0.070711]
    """

    network: DiagonalNetwork
    eta: Array

    def __init__(self, network, eta):
        self.network = network
        self.eta = jnp.asarray(check_bounds("NetworkGD: eta", eta, gt=0.0),
                               dtype=jnp.result_type(float))

    def init(self, x0):
        return self.network.state(x0)

    def params(self, state):
        return self.network.params(state)

    def update(self, state, grad):
        h = self.network.c * self.eta
        kind = self.network.kind
        if kind == "u2-v2":
            u, v = state
            return u - (2 * h) * (u * grad), v + (2 * h) * (v * grad)
        if kind == "pm_uv":
            up, vp, um, vm = state
            return (up - h * (vp * grad), vp - h * (up * grad),
                    um + h * (vm * grad), vm + h * (um * grad))
        u, v = state
        return u - h * (v * grad), v - h * (u * grad)

    def implicit_bias(self, state0):
        return self.network.geometry, jnp.zeros(())

    def effective_bias(self, state0, state, problem):
        """The exact discrete limit of a finished run (:func:`hambias.methods.mw_effective_bias`):
        GD on u²−v² is GD on the pair (m, w) = (u + v, u − v) with twice the step, GD on u⊙v
        and m⊙w is that pair itself; the ± network has two pairs and no single γ∞ (None)."""
        kind = self.network.kind
        if kind == "pm_uv":
            return None
        to_mw = (lambda s: (s[0] + s[1], s[0] - s[1])) if kind == "u2-v2" else (lambda s: s)
        return mw_effective_bias(to_mw(state0), to_mw(state), problem)

    def own_start(self, n: int):
        """θ₀ of the network's own start (used by sweeps with ``[init] kind = "constant"``)."""
        return self.network.x0(n)


def diagonal_network(kind: str, scale, *, shape=0.0, loss: str = "half_mean") -> DiagonalNetwork:
    """A diagonal linear network of the literature, in hambias's terms (table above).

    Args:
        kind: ``"u2-v2"``, ``"uv"``, ``"pm_uv"`` or ``"mw"``.
        scale: initialisation scale > 0 (the literature's α; for "mw" m₀).
        shape: s ∈ (−1, 1) for "pm_uv" (Azulay et al.'s initialisation shape, 0 =
            balanced u₀ = v₀); w₀ for "mw"; must be 0 otherwise.
        loss: ``"half_mean"`` (‖Ax − y‖²/(2d), hambias's f) or ``"mean"`` (‖Ax − y‖²/d,
            torch's ``MSELoss`` with reduction "mean").

    Raises:
        ValueError: an unknown kind or loss, scale ≤ 0, |shape| ≥ 1 for "pm_uv", a
            nonzero shape where none is defined, or an "mw" start with γ = 0.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {tuple(LOSSES)}, got {loss!r}")
    check_bounds("diagonal_network: scale", scale, gt=0.0)
    if kind == "pm_uv":
        check_bounds("diagonal_network: shape", shape, gt=-1.0, lt=1.0)
    elif kind == "mw":
        check_bounds("diagonal_network: shape (w0)", shape)
        if np.ndim(scale) == 0 and np.ndim(shape) == 0 and float(scale) ** 2 == float(shape) ** 2:
            raise ValueError("an 'mw' start with m0² = w0² has γ = 0: the m⊙w flow then has "
                             "no Legendre potential (use a balanced ExpStep instead)")
    elif np.any(np.asarray(shape) != 0):
        raise ValueError(f"shape is defined for kinds 'pm_uv' and 'mw' only, got shape={shape!r} "
                         f"for {kind!r}")
    dtype = jnp.result_type(float)
    return DiagonalNetwork(kind, jnp.asarray(scale, dtype), jnp.asarray(shape, dtype), loss)
