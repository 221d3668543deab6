"""The batched engine of a sweep: any registered method, vmapped over a batch of points.

A batch is homogeneous in the method and the problem shape.  Its methods are built by
vmapping the registered factory over the per-point hyperparameters (η, α, β), so the
step is the method's own ``update`` (:mod:`hambias.methods`), vmapped; the engine only
supplies what it does fast: the gradient of the batch as two matrix products
(R = X Aᵀ − y and G = (R/d) A when the batch shares one problem, batched
matrix-vector products otherwise), the loss monitor (:func:`hambias.iterates.divergence_status`,
the same as :func:`hambias.run_iterates`'), the sharding over devices and, on CPUs, the
cache blocks.

Layout (bits do not depend on the device count on CPUs): each device runs its rows
``block`` at a time (a ``lax.map`` over blocks inside ``shard_map``); every block does
the whole time loop while its working set stays in cache.  A batch of at most one block
runs whole on one device; a larger one runs in whole blocks on min(devices, blocks)
devices, each with a power-of-two number of blocks.
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ..iterates import divergence_status
from ..problems import minibatch_mask
from ..status import Status

__all__ = ["run_batch", "batch_methods", "batch_states", "block_rows", "layout", "CPU_BLOCK_BYTES",
           "SHARED_MIN_BLOCK_ROWS"]

#: Bytes of a block's working set (per row: X, G and the next X, 3n floats; R and the loss
#: terms, 2d; for per-point problems the row's A, d·n) that the CPU engine aims to keep in a
#: core's private L2 cache (256 KiB - 2 MiB on current x86 and Arm cores).  On the 2-core
#: benchmark box (1 MiB of L2 per core), 20×100 float64 blocks of 128 rows (shared A) and
#: 16 rows (per-point A) ran 1.2× and 1.7× faster than one 512-row batch per device, which
#: spills to L3.
CPU_BLOCK_BYTES = 384 * 2**10
#: Fewest rows of a block with a shared A.  Every block reads all of A at every step, and
#: a narrow block turns the batch's matmul into matrix-vector products: 4-row blocks of a
#: shared 200×2000 (1000×5000) float64 A ran 2.9× (5.3×) slower than 128-row blocks, which
#: are as fast as the whole batch.
SHARED_MIN_BLOCK_ROWS = 128
#: Steps per iteration of the compiled time loop.  A step of a cache block is short (about
#: 15 µs for 16 rows of a per-point 20×100 float64 problem), so the loop's own overhead
#: counts: two steps per iteration ran 1.07× faster on the 2-core benchmark box (the
#: arithmetic of each step is unchanged).
UNROLL = 2


def block_rows(shared: bool, d: int, n: int, itemsize: int, platform: str) -> int | None:
    """Rows of a CPU block: the largest power of two whose working set fits
    :data:`CPU_BLOCK_BYTES` (at least 1, and at least :data:`SHARED_MIN_BLOCK_ROWS` with a
    shared A).  It depends on the problem's shape and dtype only, never on the batch or the
    devices.  None (no blocks) on accelerators, which want one wide kernel per step."""
    if platform != "cpu":
        return None
    row = (3 * n + 2 * d + (0 if shared else d * n)) * itemsize
    rows = 1 << max(0, (CPU_BLOCK_BYTES // row).bit_length() - 1)
    return max(rows, SHARED_MIN_BLOCK_ROWS) if shared else rows


def layout(m: int, ndev: int, block: int | None) -> tuple[int, int, int]:
    """(devices used, rows per device, rows per block) for a batch of m points.

    Without blocks (accelerators) the next power of two ≥ m rows (few distinct shapes,
    few compilations) are split over all ``ndev`` devices.  With CPU blocks of ``block``
    rows, a batch of at most one block runs whole (padded to a power of two) on one
    device, and a larger one in whole blocks on as many devices as it has blocks (each
    device's block count padded to a power of two).  Every point is then computed by the
    same program (a block of ``block`` rows, or the whole small batch) whatever the number
    of devices, so its bits do not depend on it.  (XLA picks its matmul kernel by size:
    the same rows in a 128- and a 256-row batch can differ in the last bit.)
    """
    b = 1 << max(0, (m - 1).bit_length())
    if block is None:
        per_device = -(-max(b, ndev) // ndev)
        return ndev, per_device, per_device
    if b <= block:
        return 1, b, b
    blocks = -(-m // block)
    used = min(ndev, blocks)
    per = -(-blocks // used)
    return used, (1 << (per - 1).bit_length()) * block, block


@lru_cache(maxsize=32)
def _runner(steps: int, loss_every: int, conv_tol: float, blowup: float, shared: bool,
            mesh: Mesh, block: int, batch_size: int):
    """A jitted batched run: (methods, states, keys, A, y) → (X, loss0, loss, conv, status,
    div_step, history) for a batch of points; ``methods`` and ``states`` are pytrees batched
    along axis 0 (built on the host, where their inputs are validated: equinox's run-time
    checks do not run inside ``shard_map``); ``keys`` (raw key data, one per point) draw the
    mini-batches when ``batch_size`` > 0."""
    ok = int(Status.SUCCESS)

    def residual_grad(X, A, y, keys, k):
        """(loss, G): the loss and the gradient of every point, R = XAᵀ − y: the full
        ∇f = (R/d)A, or with ``batch_size`` b the mean over b rows drawn without replacement
        with fold_in(key, k), (R⊙M/b)A (M the 0/1 rows of the draw, as in run_iterates)."""
        d = A.shape[-2]
        R = X @ A.T - y if shared else jnp.einsum("bdn,bn->bd", A, X) - y
        if batch_size:
            draw = lambda kd: minibatch_mask(jax.random.fold_in(jax.random.wrap_key_data(kd), k),
                                             d, batch_size)
            W = jax.vmap(draw)(keys).astype(R.dtype) * (1.0 / batch_size)
        else:
            W = 1.0 / d
        # one problem: the two products are matmuls over the batch
        G = (R * W) @ A if shared else jnp.einsum("bd,bdn->bn", R * W, A)
        return jnp.sum(R * R, axis=1) * (0.5 / d), G

    def run(methods, states, keys, A, y):
        update = jax.vmap(lambda m, s, g: m.update(s, g))
        params = jax.vmap(lambda m, s: m.params(s))
        X0 = params(methods, states)
        loss0, G0 = residual_grad(params(methods, states), A, y, keys, 0)
        thr_conv = conv_tol * loss0
        status0 = divergence_status(params(methods, states), loss0, loss0, blowup)
        conv0 = jnp.where((status0 == ok) & (loss0 <= thr_conv), 0, -1).astype(jnp.int32)
        div0 = jnp.where(status0 != ok, 0, -1).astype(jnp.int32)

        # The carry holds the gradient at the current state; a frozen (diverged) row keeps
        # its state, and whatever its carried gradient and update are, they are discarded by
        # the same selection, so only the state is selected.  The loss is not carried: it is
        # the loss of the final (or recorded) state, computed again where it is needed.
        def body(carry, _):
            states, G, k, conv, status, div = carry
            new = update(methods, states, G)
            Xn = params(methods, new)
            loss_n, G_n = residual_grad(Xn, A, y, keys, k + 1)
            code = divergence_status(Xn, loss_n, loss0, blowup)
            bad = (code != ok) & (status == ok)
            status = jnp.where(bad, code, status)
            div = jnp.where(bad, k + 1, div)
            keep = status == ok
            conv = jnp.where((conv < 0) & keep & (loss_n <= thr_conv), k + 1, conv)
            pick = lambda a, b: jnp.where(keep.reshape(keep.shape + (1,) * (a.ndim - 1)), a, b)
            states = jax.tree_util.tree_map(pick, new, states)
            return (states, G_n, k + 1, conv, status, div), None

        def loss_of(states, k):
            return residual_grad(params(methods, states), A, y, keys, k)[0]

        carry = (states, G0, jnp.int32(0), conv0, status0, div0)
        if loss_every:
            def outer(carry, _):
                carry, _ = lax.scan(body, carry, None, length=loss_every, unroll=UNROLL)
                return carry, jnp.where(carry[4] == ok, loss_of(carry[0], carry[2]), jnp.nan)

            carry, hist = lax.scan(outer, carry, None, length=steps // loss_every)
            hist = hist.T
        else:
            carry, _ = lax.scan(body, carry, None, length=steps, unroll=UNROLL)
            hist = jnp.zeros((X0.shape[0], 0), X0.dtype)
        states, _, k, conv, status, div = carry
        return params(methods, states), loss0, loss_of(states, k), conv, status, div, hist

    def local(methods, states, keys, A, y):
        """The rows of one device, ``block`` rows at a time."""
        m = jax.tree_util.tree_leaves(states)[0].shape[0]
        if block >= m:
            return run(methods, states, keys, A, y)
        split = lambda v: v.reshape((m // block, block) + v.shape[1:])
        per_row = (methods, states, keys) if shared else (methods, states, keys, A, y)
        blocks = lax.map(lambda b: run(*b, A, y) if shared else run(*b),
                         jax.tree_util.tree_map(split, per_row))
        return tuple(o.reshape((m,) + o.shape[2:]) for o in blocks)

    rows, whole = P("batch"), P()
    specs = (rows, rows, rows) + ((whole, whole) if shared else (rows, rows))
    return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=specs, out_specs=rows))


def batch_methods(factory, model, eta, alpha, beta):
    """The registered ``factory`` vmapped over per-point (η, α, β): one method pytree whose
    leaves carry the batch on axis 0 (built eagerly, so bad values raise here)."""
    network = None
    if model is not None:
        from ..networks import diagonal_network

        network = diagonal_network(**dict(model))
    return jax.vmap(lambda e, a, b: factory(eta=e, alpha=a, beta=b, model=network))(
        jnp.asarray(eta), jnp.asarray(alpha), jnp.asarray(beta))


def batch_states(methods, X0):
    """The initial states of a batch of methods at the rows of X0 (built on the host)."""
    return jax.vmap(lambda m, x: m.init(x))(methods, jnp.asarray(X0))


def run_batch(methods, states, A, y, *, steps, loss_every, conv_tol, blowup, mesh,
              keys=None, batch_size=0):
    """Run one homogeneous batch (one method and shape) sharded over ``mesh``.

    ``methods`` and ``states`` are batched pytrees (:func:`batch_methods`,
    :func:`batch_states`); ``A`` is (d, n) for a shared problem or (m, d, n) per point;
    with ``batch_size`` > 0, ``keys`` (m, 2) raw key data draw each point's mini-batches.
    Returns numpy arrays (X, loss0, loss, conv_step, status, divergence_step, history) for
    the m points.
    """
    leaves = jax.tree_util.tree_leaves(states)
    m, dtype = leaves[0].shape[0], leaves[0].dtype
    shared = A.ndim == 2
    block = block_rows(shared, *A.shape[-2:], np.dtype(dtype).itemsize,
                       mesh.devices.flat[0].platform)
    ndev, per_device, block = layout(m, mesh.devices.size, block)
    if ndev < mesh.devices.size:
        mesh = Mesh(mesh.devices.flat[:ndev], ("batch",))
    size = ndev * per_device
    pad = lambda v: np.concatenate([v, np.repeat(v[:1], size - m, axis=0)]) if size > m else v
    batch = NamedSharding(mesh, P("batch"))
    repl = NamedSharding(mesh, P())
    methods, states = jax.tree_util.tree_map(
        lambda v: jax.device_put(pad(np.asarray(v)), batch), (methods, states))
    put = [jax.device_put(v if shared else pad(v), repl if shared else batch) for v in (A, y)]
    keys = np.zeros((m, 2), np.uint32) if keys is None else np.asarray(keys, np.uint32)
    keys = jax.device_put(pad(keys), batch)
    out = _runner(steps, loss_every, conv_tol, blowup, shared, mesh, block, int(batch_size))(
        methods, states, keys, *put)
    return [np.asarray(o)[:m] for o in out]
