"""Throughput of the sweep engine (hambias.sweep) against baselines, as ratios.

Prints trajectory-steps/s of the engine's batched, sharded step (the code path of
``run_sweep``: the registered method's own ``update``, vmapped) for batch 1, 64, 1024,
16384, shared A and independent A, float64 and float32, next to a naive numpy loop (one
trajectory at a time), the fraction of the measured matmul peak (4·d·n flops per step),
and the engine's time per step as a fraction of a roofline loop on the same shapes (the
two matrix products and a hand-fused GD + HYP* step in the engine's cache blocking only).
Then, at batch 1024 float64 with a shared A: GD on the u²−v² network ("mw_gd") against a
numpy loop of the same method, and a method registered by the user (a sign-gradient step
written here) against a numpy loop of it.  Not a test.

    python benchmarks/bench_sweep.py [--devices N] [--quick | --only-1024] [--d 20 --n 100]

``--devices`` (default: the number of CPU cores) forces that many XLA CPU devices,
which must happen before jax is imported; on a GPU host it is ignored.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    p.add_argument("--devices", type=int, default=cores or 1,
                   help="XLA CPU devices to shard over (default: one per available core, as "
                   "hambias sweep does)")
    p.add_argument("--d", type=int, default=20)
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--quick", action="store_true", help="batches 1 and 1024 only, shorter timing")
    p.add_argument("--only-1024", action="store_true",
                   help="float64, batch 1024 only (shared and independent A): the goal cases")
    p.add_argument("--work", type=float, default=3e5,
                   help="trajectory-steps per timed call (default 3e5)")
    return p.parse_args(argv)


# Best of this many timed calls, for the numpy loop and the engine alike: the box is shared
# with other machines, and a single timing swings by ±20 % (docs/baselines.md#baselines).
REPEATS = 5


def main(argv=None) -> int:
    args = _parse(argv)
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={args.devices}")
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    jax.config.update("jax_enable_x64", True)
    import hambias as hb
    from hambias.methods import method_factory, signed
    from hambias.sweep.engine import batch_methods, batch_states, block_rows, layout, run_batch

    d, n = args.d, args.n
    batches = [1024] if args.only_1024 else [1, 1024] if args.quick else [1, 64, 1024, 16384]
    dtypes = ("float64",) if args.only_1024 else ("float64", "float32")
    devices = jax.local_devices()
    mesh = Mesh(np.asarray(devices), ("batch",))
    rng = np.random.default_rng(0)
    print(f"# bench_sweep: d={d} n={n}, {len(devices)} x {devices[0].platform} device(s), "
          f"jax {jax.__version__}")

    def timed(fn, steps, repeats=REPEATS):
        """Best seconds per call of fn(steps) over ``repeats`` timed calls after a warm-up."""
        fn(steps)  # compile and warm up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            fn(steps)
            best = min(best, time.perf_counter() - t)
        return steps, best

    def steps_for(B):
        """Steps so that one call does about ``work`` trajectory-steps (one compile per shape)."""
        return int(min(8192, max(64, args.work // B)))

    # ---- measured peak: a large matmul
    peak = {}
    for dt_name in ("float64", "float32"):
        a = jnp.asarray(rng.standard_normal((2048, 2048)), dtype=dt_name)
        f = jax.jit(lambda a: a @ a)
        f(a).block_until_ready()
        t = time.perf_counter()
        for _ in range(5):
            f(a).block_until_ready()
        peak[dt_name] = 5 * 2 * 2048**3 / (time.perf_counter() - t)
    print(f"# matmul peak (2048^3, all devices' threads): float64 {peak['float64']:.3g} FLOP/s, "
          f"float32 {peak['float32']:.3g} FLOP/s")

    # ---- naive numpy loop: one trajectory at a time, GD + HYP*
    def numpy_rate(dtype):
        A = rng.standard_normal((d, n)).astype(dtype)
        y = rng.standard_normal(d).astype(dtype)

        def run(steps):
            x = np.zeros(n, dtype)
            eta, alpha = dtype(0.01), dtype(1.0)
            for _ in range(steps):
                g = A.T @ (A @ x - y) / d
                xh = x - eta * g
                x = xh * np.exp(-eta * alpha * np.sign(xh) * g)
            return x

        steps, dt = timed(run, 5000)
        return steps / dt

    np_rate = {k: numpy_rate(getattr(np, k)) for k in dtypes}
    try:
        import torch  # noqa: F401

        torch_note = "torch importable but no loop implemented here"
    except ImportError:
        torch_note = "torch not installed"
    print("# numpy loop: " + ", ".join(f"{k} {v:.3g}" for k, v in np_rate.items()) +
          f" trajectory-steps/s; PyTorch loop: {torch_note}")

    # ---- roofline: the two products + the elementwise step, nothing else, in the engine's
    # layout (same sharding, same cache blocks of rows on each device, per-point scalars
    # folded, sign(θ½)·g by selects) without the loss, the convergence/divergence monitor
    # and the freezing of diverged rows: "% roofline" is what those cost.
    def roofline(A, y, X, shared):
        rows = P("batch")

        def scan(A, y, X, cg, cs, c0, steps):
            def body(X, _):
                if shared:
                    R = X @ A.T - y
                    S = R @ A
                else:
                    R = jnp.einsum("bdn,bn->bd", A, X) - y
                    S = jnp.einsum("bd,bdn->bn", R, A)
                Xh = X - cg * S
                return Xh * jnp.exp(cs * signed(Xh, S) + c0), None

            return jax.lax.scan(body, X, None, length=steps)[0]

        # the engine's layout: devices used, rows per device (padded), rows per block
        block = block_rows(shared, d, n, X.dtype.itemsize, devices[0].platform)
        used, per_device, block = layout(X.shape[0], len(devices), block)
        sub = Mesh(np.asarray(devices[:used]), ("batch",))
        m = used * per_device

        def local(A, y, X, cg, cs, c0, steps):
            split = lambda *vs: tuple(v.reshape((-1, block) + v.shape[1:]) for v in vs)
            if shared:
                out = jax.lax.map(lambda b: scan(A, y, *b, steps), split(X, cg, cs, c0))
            else:
                out = jax.lax.map(lambda b: scan(*b, steps), split(A, y, X, cg, cs, c0))
            return out.reshape(X.shape)

        def run(A, y, X, cg, cs, c0, steps):
            specs = ((P(), P()) if shared else (rows, rows)) + (rows,) * 4
            return jax.shard_map(lambda *a: local(*a, steps), mesh=sub, in_specs=specs,
                                 out_specs=rows)(A, y, X, cg, cs, c0)

        run = jax.jit(run, static_argnums=6)
        idx = np.arange(m) % X.shape[0]
        X = X[idx]
        eta, alpha = np.full((m, 1), 0.01, X.dtype), 1.0  # per-point scalars, as in the engine
        cg, cs, c0 = eta / d, -eta * alpha / d, np.zeros_like(eta)
        if not shared:
            A, y = A[idx], y[idx]
        batch, whole = NamedSharding(sub, rows), NamedSharding(sub, P())
        Xs = jax.device_put(X, batch)
        As = jax.device_put(A, whole if shared else batch)
        ys = jax.device_put(y, whole if shared else batch)
        coefs = [jax.device_put(c, batch) for c in (cg, cs, c0)]
        return lambda steps: run(As, ys, Xs, *coefs, steps).block_until_ready()

    print(f"{'dtype':8s} {'A':12s} {'batch':>6s} {'engine st/s':>12s} {'x numpy':>8s} "
          f"{'%peak':>6s} {'roofline st/s':>14s} {'% roofline':>10s}")
    results = {}
    for dt_name in dtypes:
        dtype = np.dtype(dt_name)
        for shared in (True, False):
            for B in batches:
                A1 = rng.standard_normal((d, n)).astype(dtype)
                A = A1 if shared else rng.standard_normal((B, d, n)).astype(dtype)
                y = rng.standard_normal(d if shared else (B, d)).astype(dtype)
                X0 = (0.1 * rng.standard_normal((B, n)) / np.sqrt(n)).astype(dtype)
                lam = float(np.linalg.norm(A1, 2) ** 2 / d)
                eta = np.full(B, 0.5 / lam, dtype)
                alpha, beta = np.full(B, 1.0, dtype), np.zeros(B, dtype)

                methods = batch_methods(method_factory("hyp_star"), None, eta, alpha, beta)
                states = batch_states(methods, X0)

                def engine(steps, methods=methods, states=states, A=A, y=y):
                    run_batch(methods, states, A, y, steps=steps, loss_every=0, conv_tol=1e-6,
                              blowup=1e12, mesh=mesh)

                steps, dt = timed(engine, steps_for(B))
                rate = B * steps / dt
                r_steps, r_dt = timed(roofline(A, y, X0, shared), steps_for(B))
                r_rate = B * r_steps / r_dt
                frac = rate * 4 * d * n / peak[dt_name]
                results[(dt_name, shared, B)] = rate
                print(f"{dt_name:8s} {'shared' if shared else 'independent':12s} {B:6d} "
                      f"{rate:12.3g} {rate / np_rate[dt_name]:8.1f} {100 * frac:6.1f} "
                      f"{r_rate:14.3g} {100 * rate / r_rate:10.1f}", flush=True)
    # ---- other methods through the same engine, against numpy loops of the same method
    B, dtype = 1024, np.float64
    A = rng.standard_normal((d, n))
    y = rng.standard_normal(d)
    eta = np.full(B, 0.5 / float(np.linalg.norm(A, 2) ** 2 / d))
    zeros = np.zeros(B)

    def sign_gd(*, eta, **_):  # a user's method: θ ← θ − η·sign(∇f)
        return _SignGD(eta)

    class _SignGD(hb.AbstractMethod):
        eta: jax.Array

        def update(self, state, grad):
            return state - self.eta * jnp.sign(grad)

    hb.register_method("bench_sign_gd", sign_gd, replace=True)
    net = hb.diagonal_network("u2-v2", 0.1)
    model = tuple(sorted(dict(kind="u2-v2", scale=0.1, shape=0.0, loss="half_mean").items()))

    def np_mw(steps):  # GD on u²−v² (loss ‖Ax − y‖²/(2d)) one trajectory at a time
        u, v, e = np.full(n, 0.1), np.full(n, 0.1), 0.01
        for _ in range(steps):
            g = A.T @ (A @ (u * u - v * v) - y) / d
            u, v = u - 2 * e * u * g, v + 2 * e * v * g
        return u

    def np_sign(steps):
        x, e = np.zeros(n), 1e-3
        for _ in range(steps):
            x = x - e * np.sign(A.T @ (A @ x - y) / d)
        return x

    extra = {}
    for label, name, mdl, x0, loop in (
            ("mw_gd (u2-v2)", "mw_gd", model, np.zeros((B, n)), np_mw),
            ("registered sign GD", "bench_sign_gd", None, np.zeros((B, n)), np_sign)):
        methods = batch_methods(method_factory(name), mdl, eta if name == "mw_gd"
                                else np.full(B, 1e-3), zeros, zeros)
        states = batch_states(methods, x0)

        def engine(steps, methods=methods, states=states):
            run_batch(methods, states, A, y, steps=steps, loss_every=0, conv_tol=1e-6,
                      blowup=1e12, mesh=mesh)

        steps, dt = timed(engine, steps_for(B))
        l_steps, l_dt = timed(loop, 5000)
        extra[label] = (B * steps / dt) / (l_steps / l_dt)
        print(f"float64  shared       {B:6d} {B * steps / dt:12.3g} {extra[label]:8.1f}"
              f"   {label} (x its own numpy loop)", flush=True)
    del net
    k64s, k64i = ("float64", True, 1024), ("float64", False, 1024)
    print("# goals at batch 1024 float64: shared >= 27x numpy "
          f"({results[k64s] / np_rate['float64']:.1f}x), independent >= 20x "
          f"({results[k64i] / np_rate['float64']:.1f}x), mw_gd >= 20x "
          f"({extra['mw_gd (u2-v2)']:.1f}x), registered >= 10x "
          f"({extra['registered sign GD']:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
