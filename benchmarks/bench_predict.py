"""Benchmark: dual Newton vs cvxpy (Clarabel) for the HAM implicit-bias prediction.

Prints, for n ∈ {100, 1000, 10000} dimensions and d = n/5 samples (seeded Gaussian
problems with a 5-sparse truth, x₀ = 0 and a random x₀), the wall time and the KKT
residual of both solvers, their agreement, and the time ratio cvxpy / Newton.

Then the γ rows: the m⊙w prediction at the scale of the classic u²−v² experiment
(250 × 10000 Rademacher, k = 7, noise 1) for γ = 2e-6, 2e-12, 2e-24 (initialisation
scale 1e-12), and HAM at α = 1e24, each with its time as a ratio to the γ = 2e-6 row
measured in the same run (goal: γ = 2e-24 within 3×).
cvxpy is skipped above ``--cvxpy-max-n`` (Clarabel needs > 600 s at n = 10000).  Baseline
(docs/baselines.md#prediction-cost): dense Newton 7–13 s at n = 10000 on one thread; cvxpy
0.4–4.7 s at n = 1000.

Usage:  python benchmarks/bench_predict.py [--quick] [--alpha 1.0] [--cvxpy-max-n 1000]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings


def _problem(n: int, seed: int):
    import numpy as np

    from hambias import LinearRegression

    rng = np.random.default_rng(seed)
    d = n // 5
    A = rng.normal(size=(d, n))
    x_star = np.zeros(n)
    x_star[rng.choice(n, 5, replace=False)] = rng.normal(size=5)
    return LinearRegression(A, A @ x_star), rng.normal(size=n) / np.sqrt(n)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n ∈ {100, 1000} only")
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--cvxpy-max-n", type=int, default=1000)
    parser.add_argument("--no-gamma-rows", action="store_true", help="skip the γ rows")
    parser.add_argument(
        "--blas-threads", type=int, default=1,
        help="BLAS threads (default 1: on a shared 2-core machine a second OpenBLAS thread "
        "made small factorisations up to 30x slower; measured). Set before numpy loads.",
    )
    args = parser.parse_args(argv)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.blas_threads))

    import jax

    jax.config.update("jax_enable_x64", True)  # entry point: float64 for the JAX parts
    import numpy as np

    from hambias import HAMGeometry
    from hambias.predict import predict_limit

    warnings.simplefilter("ignore", UserWarning)
    g = HAMGeometry(args.alpha)
    sizes = (100, 1000) if args.quick else (100, 1000, 10000)
    warm, _ = _problem(50, seed=0)  # imports and first-call costs of both solvers
    predict_limit(g, warm)
    predict_limit(g, warm, solver="cvxpy", throw=False)
    print(
        f"HAM alpha = {args.alpha}, d = n/5, float64, Newton KKT target 1e-10, "
        f"BLAS threads {os.environ['OPENBLAS_NUM_THREADS']}, load average {os.getloadavg()[0]:.1f}"
    )
    header = (
        f"{'n':>6} {'x0':>6} {'newton s':>9} {'it':>3} {'newton KKT':>10} "
        f"{'cvxpy s':>8} {'cvxpy KKT':>9} {'rel diff':>8} {'cvxpy/newton':>12}"
    )
    print(header)
    for n in sizes:
        p, x0r = _problem(n, seed=n)
        for label, x0 in (("zero", None), ("random", x0r)):
            predict_limit(g, p, x0)  # warm-up (BLAS threads, imports)
            t = time.perf_counter()
            pn = predict_limit(g, p, x0)
            tn = time.perf_counter() - t
            if n <= args.cvxpy_max_n:
                t = time.perf_counter()
                pc = predict_limit(g, p, x0, solver="cvxpy", throw=False)
                tc = time.perf_counter() - t
                rel = np.linalg.norm(pc.x - pn.x) / np.linalg.norm(pn.x)
                cv = f"{tc:8.3f} {pc.kkt_residual:9.1e} {rel:8.1e} {tc / tn:11.0f}x"
            else:
                cv = ("  skipped: Clarabel needs > 600 s at this size "
                      "(docs/baselines.md#prediction-cost)")
            print(f"{n:>6} {label:>6} {tn:9.3f} {pn.iterations:>3} {pn.kkt_residual:10.1e} {cv}")
    if not args.no_gamma_rows:
        _gamma_rows()
    return 0


def _gamma_rows(repeats: int = 3) -> None:
    """m⊙w at tiny γ (and HAM at huge α) on 250 × 10000: time ratios to γ = 2e-6."""
    import jax

    from hambias import HAMGeometry, PointwiseProduct, sparse_regression
    from hambias.predict import predict_limit

    p, _ = sparse_regression(jax.random.key(0), 250, 10_000, 7, design="rademacher", noise=1.0)
    rows = [("gamma = 2e-6", PointwiseProduct(2e-6)), ("gamma = 2e-12", PointwiseProduct(2e-12)),
            ("gamma = 2e-24", PointwiseProduct(2e-24)), ("alpha = 1e24", HAMGeometry(1e24))]
    print("\n250 x 10000 Rademacher, k = 7, noise 1 (best of %d):" % repeats)
    print(f"{'geometry':>15} {'seconds':>8} {'it':>3} {'KKT':>8} {'ratio to 2e-6':>14}")
    base = None
    for label, g in rows:
        best, pred = float("inf"), None
        for _ in range(repeats):
            t = time.perf_counter()
            pred = predict_limit(g, p)
            best = min(best, time.perf_counter() - t)
        base = best if base is None else base
        print(f"{label:>15} {best:8.2f} {pred.iterations:>3} {pred.kkt_residual:8.1e} "
              f"{best / base:13.2f}x")


if __name__ == "__main__":
    raise SystemExit(main())
