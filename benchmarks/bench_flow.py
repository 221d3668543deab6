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
Baseline (docs/baselines.md#flows-to-infinity): LSODA with the analytic Jacobian 3–26 ms for all α.

Second part (``--part gamma``): the cost of a small geometry scale.  solve_flow at the
default tolerances for m⊙w with γ = 1e-12 against γ = 1e-3, timed in the same run: (a) the
1-D flow on f = (θ − 1)²/2 from 0 to its half-way time, (b) the 20×40 and 20×100
regressions from 0 to t1 = 3·log(1/γ), past the first saddle-to-saddle jumps, and (c) the
same to t = ∞.  Goal: (a) and (b) within 2× of γ = 1e-3.  (c) is reported, not a goal:
at γ = 1e-12 the flow has more plateaus and a 500× longer horizon (steady state near
t = 1e6 instead of 2e3), so it needs the implicit stage.

Usage:  python benchmarks/bench_flow.py [--repeats 5] [--cap 30] [--part all|alpha|gamma]
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


GAMMAS = (1e-3, 1e-12)


def _t_half(gamma):
    """Time at which m⊙w on f = (θ − 1)²/2 from 0 reaches θ = ½ (closed form)."""
    import math

    root = math.sqrt(1.0 + gamma * gamma)
    num = 0.5 + gamma * gamma + root * math.hypot(0.5, gamma)
    return (math.log(num / 0.5) - math.log(gamma) - math.asinh(gamma)) / root


def _gamma_part(args):
    import math

    import jax

    jax.config.update("jax_enable_x64", True)  # entry point: float64
    import numpy as np

    from hambias import LinearRegression, PointwiseProduct, sparse_regression
    from hambias.flow import solve_flow

    one = LinearRegression([[1.0]], [1.0])
    tasks = [("1-D, t1 = half-way", lambda g: (one, _t_half(g)), True)]
    for d, n in ((20, 40), (20, 100)):
        problem = sparse_regression(jax.random.key(0), d, n, 5)[0]
        tasks.append((f"{d}x{n}, t1 = 3 log(1/g)",
                      lambda g, p=problem: (p, 3.0 * math.log(1.0 / g)), True))
        tasks.append((f"{d}x{n}, t1 = inf", lambda g, p=problem: (p, np.inf), False))
    print(f"\nm⊙w, default tolerances (rtol 1e-8, atol 1e-10), x0 = 0; median of {args.repeats} "
          f"after a warm-up; times in ms")
    print(f"{'task':>24} {'gamma':>7} {'ms':>9} {'steps':>7} {'t_final':>10} {'check':>12} "
          f"{'ratio':>6}")
    ratios = {}
    for label, make, goal in tasks:
        base = None
        for g in GAMMAS:
            problem, t1 = make(g)
            x0 = np.zeros(problem.n)

            def run(problem=problem, t1=t1, g=g, x0=x0):
                return jax.block_until_ready(solve_flow(PointwiseProduct(g), problem, x0, t1=t1))

            run()
            t, r = _timed(run, args.repeats)
            assert bool(r.converged), r.message
            check = (f"|x-1/2|={abs(float(r.x[0]) - 0.5):.1e}" if problem.n == 1 else
                     ("switched" if bool(r.stats["switched"]) else ""))
            base = t if base is None else base
            print(f"{label:>24} {g:7.0e} {t * 1e3:9.2f} {int(r.stats['num_steps']):7d} "
                  f"{float(r.t_final):10.4g} {check:>12} {t / base:6.2f}")
        ratios[label] = (t / base, goal)
    ok = all(r <= 2.0 for r, goal in ratios.values() if goal)
    print("gamma = 1e-12 / 1e-3: " + ", ".join(f"{k}: {r:.2f}" for k, (r, _) in ratios.items())
          + f"  -> goal (<=2x for the finite horizons) {'met' if ok else 'NOT met'}")


def _alpha_part(args):

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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per scipy run")
    parser.add_argument("--part", choices=("all", "alpha", "gamma"), default="all")
    args = parser.parse_args(argv)
    if args.part in ("all", "alpha"):
        _alpha_part(args)
    if args.part in ("all", "gamma"):
        _gamma_part(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
