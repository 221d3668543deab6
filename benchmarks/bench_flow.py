"""Benchmark: the default solve_flow to t = ∞ against scipy's RK45, DOP853, Radau and LSODA.

For α ∈ {0, 1, 100, 1e4} on the seeded 20×100 regression ``sparse_regression(key(0),
20, 100, 5)`` from x₀ = 0, prints the wall time (median of ``--repeats`` runs, JIT
warm-up excluded), the steps, the endpoint's distance to a tight reference, and the
ratio default / best scipy method.  All runs use rtol = 1e-10, atol = 1e-12 and the
same stopping rule: ‖∇f(x)‖ ≤ 1e-9 ‖∇f(x₀)‖ (the steady-state event of solve_flow).

The scipy baselines are the fastest fair scipy set-up, not hambias's scipy backend:
``solve_ivp`` with a numpy vector field, the analytic numpy Jacobian (implicit
methods) and a terminal event.  A run that exceeds ``--cap`` seconds is stopped and
reported as "capped".  Goal: default ≤ 2× the best scipy time for α ≤ 100, ≤ 3× at 1e4.
Baseline (MEASUREMENTS.md): LSODA with the analytic Jacobian 3–26 ms for all α.

Usage:  python benchmarks/bench_flow.py [--repeats 5] [--cap 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

RTOL, ATOL, STEADY_TOL = 1e-10, 1e-12, 1e-9
ALPHAS = (0.0, 1.0, 100.0, 1e4)
SCIPY_METHODS = ("RK45", "DOP853", "Radau", "LSODA")


class _Capped(Exception):
    pass


def _scipy_run(method, A, y, alpha, cap):
    """solve_ivp to the steady state with numpy callbacks; returns (x, steps, nfev)."""
    import numpy as np
    from scipy.integrate import solve_ivp

    d, n = A.shape
    AtA, Aty = A.T @ A / d, A.T @ y / d
    start = time.perf_counter()

    def fun(t, x):
        if time.perf_counter() - start > cap:
            raise _Capped
        return -(1.0 + alpha * np.abs(x)) * (AtA @ x - Aty)

    def jac(t, x):
        g = AtA @ x - Aty
        return -(1.0 + alpha * np.abs(x))[:, None] * AtA - np.diag(alpha * np.sign(x) * g)

    x0 = np.zeros(n)
    threshold = STEADY_TOL * np.linalg.norm(AtA @ x0 - Aty)

    def steady(t, x):
        return np.linalg.norm(AtA @ x - Aty) - threshold

    steady.terminal, steady.direction = True, -1
    kwargs = {"jac": jac} if method in ("Radau", "LSODA", "BDF") else {}
    sol = solve_ivp(fun, (0.0, 1e15), x0, method=method, rtol=RTOL, atol=ATOL, events=steady,
                    **kwargs)
    if sol.status != 1:
        raise RuntimeError(f"{method} did not reach the steady state: {sol.message}")
    return sol.y[:, -1], len(sol.t) - 1, sol.nfev


def _timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per scipy run")
    args = parser.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)  # entry point: float64
    import numpy as np

    from hambias import HAMGeometry, sparse_regression
    from hambias.flow import solve_flow

    problem, _ = sparse_regression(jax.random.key(0), 20, 100, 5)
    A, y = np.asarray(problem.A), np.asarray(problem.y)
    x0 = np.zeros(problem.n)
    print(f"20x100 regression, x0 = 0, rtol={RTOL:g}, atol={ATOL:g}, steady_tol={STEADY_TOL:g}; "
          f"median of {args.repeats}; times in ms")
    print(f"{'alpha':>7} {'solver':>16} {'ms':>9} {'steps':>7} {'|x-ref|/|ref|':>14} "
          f"{'ratio':>7}")
    worst = {}
    for alpha in ALPHAS:
        g = HAMGeometry(alpha)

        def default():
            r = solve_flow(g, problem, x0, t1=np.inf, rtol=RTOL, atol=ATOL, steady_tol=STEADY_TOL)
            return jax.block_until_ready(r)

        default()  # warm-up: compile (once: α is traced, not static)
        t_def, r = _timed(default, args.repeats)
        assert bool(r.converged), r.message
        ref = _scipy_run("LSODA", A, y, alpha, args.cap)[0]  # reference endpoint
        rows = {}
        for method in SCIPY_METHODS:
            try:
                t_m, (x_m, steps_m, _) = _timed(lambda m=method: _scipy_run(m, A, y, alpha,
                                                                             args.cap),
                                                 args.repeats)
                rows[method] = (t_m, steps_m, x_m)
            except _Capped:
                rows[method] = None
        best = min(v[0] for v in rows.values() if v is not None)
        err = np.linalg.norm(np.asarray(r.x) - ref) / np.linalg.norm(ref)
        solver = "default" + ("(switched)" if bool(r.stats["switched"]) else "")
        print(f"{alpha:7g} {solver:>16} {t_def * 1e3:9.2f} {int(r.stats['num_steps']):7d} "
              f"{err:14.2e} {t_def / best:7.2f}")
        for method, v in rows.items():
            if v is None:
                print(f"{alpha:7g} {'scipy ' + method:>16} {'capped':>9} (> {args.cap:g} s)")
                continue
            e = np.linalg.norm(v[2] - ref) / np.linalg.norm(ref)
            print(f"{alpha:7g} {'scipy ' + method:>16} {v[0] * 1e3:9.2f} {v[1]:7d} {e:14.2e} "
                  f"{v[0] / best:7.2f}")
        worst[alpha] = t_def / best
    ok = all(r <= (3.0 if a >= 1e4 else 2.0) for a, r in worst.items())
    print("default / best scipy: " + ", ".join(f"alpha={a:g}: {r:.2f}" for a, r in worst.items())
          + f"  -> goal (<=2x for alpha<=100, <=3x at 1e4) {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
