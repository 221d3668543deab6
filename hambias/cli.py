"""The ``hambias`` command line: every parser of the package lives here.

* ``hambias check``  verify the HAM paper's claims numerically; write the report and figures;
* ``hambias sweep``  run or resume a batched, sharded sweep from a TOML config;
* ``hambias phase``  draw the phase diagrams of a stored sweep.

Each subcommand is an entry point: it enables float64 where it needs it (the checks
always, a sweep when its config asks), never the library.
"""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["main", "build_parser", "check_main", "sweep_main", "phase_main"]

_SWEEP_HELP = (
    "Run or resume a batched, sharded sweep. CONFIG is a TOML file with 'steps' and tables "
    "[grid] (eta, dnk, alpha, init_scale, beta, seed, method), [problem], [init], [model] "
    "and [record]; the keys are listed by 'python -c \"import hambias.sweep.config as c; "
    "print(c.__doc__)\"' and in the documentation's sweep page. A killed sweep resumes with "
    "the same command.")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``hambias`` with its three subcommands."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="hambias",
        description="Theory and simulation of the implicit bias of optimizers, centred on HAM.")
    parser.add_argument("--version", action="version", version=f"hambias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check", help="verify the HAM paper's claims numerically; write the report and figures",
        description="Run the paper checks, write the figures and report.md / report.json, "
        "and exit non-zero if any claim fails.")
    check.add_argument("--quick", action="store_true", help="small problems, about half the time")
    check.add_argument("--only", action="append", metavar="NAME", help="run only this check")
    check.add_argument("--out", default=None,
                       help="output folder (default: build/check, or build/check-quick with "
                       "--quick; the committed figures/ folder is written only when named)")
    sweep = sub.add_parser("sweep", help="run or resume a sweep from a TOML config",
                           description=_SWEEP_HELP)
    _sweep_arguments(sweep)
    phase = sub.add_parser(
        "phase", help="phase diagrams of a stored sweep",
        description="Draw the phase diagrams (recovery over (α, initial scale) and (n, k), "
        "convergence time over (α, η) with the stability boundary) of a stored sweep.")
    _phase_arguments(phase)
    return parser


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="TOML sweep config")
    p.add_argument("--out", required=True, help="store directory (resumed if it exists)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary output")
    p.add_argument("--cpu-devices", type=int, default=None, metavar="N",
                   help="XLA CPU devices to shard over when no accelerator is used "
                   "(default: one per available core, unless XLA_FLAGS sets "
                   "--xla_force_host_platform_device_count)")


def _phase_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="sweep directory (the --out of hambias sweep)")
    p.add_argument("--out", default="build/phase",
                   help="output folder (default: build/phase)")
    p.add_argument("--prefix", default=None,
                   help="file-name prefix (default: the sweep directory's name)")


# -- check ---------------------------------------------------------------------------------
def check_main(args) -> int:
    """Run the paper checks (float64) and write the report; 2 on a bad --only name."""
    from pathlib import Path

    import jax

    jax.config.update("jax_enable_x64", True)  # the checks are theory checks: float64
    from .report import run_checks

    out = Path(args.out) if args.out else Path("build") / ("check-quick" if args.quick
                                                            else "check")
    try:
        return run_checks(quick=args.quick, only=args.only, out=out,
                          progress=lambda line: print(line, flush=True))
    except ValueError as err:  # an unknown --only name, an unwritable --out
        print(f"hambias check: {err}", file=sys.stderr)
        return 2


# -- sweep ---------------------------------------------------------------------------------
def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def request_cpu_devices(n: int, explicit: bool) -> None:
    """Ask JAX for ``n`` CPU devices (``jax_num_cpu_devices``) to shard a sweep over.

    One device per core uses the cores better than one device with more threads (on the
    2-core development box: 2.4-2.6× against 1.4× for a second thread).  A number already
    chosen (``jax_num_cpu_devices`` or ``--xla_force_host_platform_device_count`` in
    XLA_FLAGS) is kept unless ``explicit``.  JAX takes the option only before its first
    computation; after that a default request is dropped and an explicit one is an error.
    """
    import jax

    chosen = (jax.config.jax_num_cpu_devices != -1
              or "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""))
    if chosen and not explicit:
        return
    try:
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError as e:  # the backends are up: their devices stay
        if explicit:
            raise ValueError(f"--cpu-devices {n}: JAX is already initialised in this "
                             f"process ({e})") from None


def sweep_main(argv: list[str] | None = None, *, command: bool = False) -> int:
    """``hambias sweep CONFIG --out PATH [--quiet] [--cpu-devices N]``: run or resume a sweep.

    The config is validated first; then JAX is asked for N CPU devices (``--cpu-devices``)
    or, as a ``command`` (``hambias sweep``, ``python -m hambias.sweep``), one per
    available core (JAX takes that only if it has not computed anything yet in this
    process), and float64 is enabled when the config asks for it.  Returns 0 when the
    sweep is complete; a bad config, a config mismatch or a late ``--cpu-devices`` prints
    the message and returns 2; Ctrl-C prints one line (the same command resumes) and
    returns 130 (a command exits at once: XLA's threads may still be running the chunk
    that was interrupted, and the finished chunks are already safe on disk).
    """
    parser = argparse.ArgumentParser(prog="hambias sweep", description=_SWEEP_HELP)
    _sweep_arguments(parser)
    args = parser.parse_args(argv)
    if args.cpu_devices is not None and args.cpu_devices < 1:
        parser.error(f"--cpu-devices must be a positive integer, got {args.cpu_devices}")
    from .sweep import load_config, run_sweep

    try:
        cfg = load_config(args.config)
        if args.cpu_devices is not None or command:
            request_cpu_devices(args.cpu_devices or available_cores(),
                                explicit=args.cpu_devices is not None)
        import jax

        if cfg.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        s = run_sweep(cfg, args.out, quiet=args.quiet)
    except (ValueError, OSError) as e:
        print(f"hambias sweep: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\nhambias sweep: interrupted; the same command resumes {args.out}",
              file=sys.stderr, flush=True)
        if command:
            os._exit(130)
        return 130
    if not args.quiet:
        print(f"[sweep] {s.path}: {s.n_points} points in {s.n_chunks} chunks; ran {s.chunks_run}, "
              f"skipped {s.chunks_skipped} done; {s.n_diverged} diverged; {s.seconds:.1f} s on "
              f"{s.devices} device(s)", file=sys.stderr)
    return 0 if s.complete else 1


# -- phase ---------------------------------------------------------------------------------
def phase_main(argv: list[str] | None = None) -> int:
    """``hambias phase PATH [--out DIR] [--prefix NAME]``: phase diagrams of a stored sweep.

    Writes :func:`hambias.plots.sweep_phase_diagrams` of the sweep at PATH into DIR and
    prints the paths.  Returns 0 when at least one diagram was written, 1 when the sweep's
    axes allow none, 2 on a bad PATH.
    """
    parser = argparse.ArgumentParser(prog="hambias phase",
                                     description="Draw the phase diagrams of a stored sweep.")
    _phase_arguments(parser)
    args = parser.parse_args(argv)
    from .plots import sweep_phase_diagrams

    try:
        paths = sweep_phase_diagrams(args.path, args.out, prefix=args.prefix)
    except (ValueError, OSError) as err:
        print(f"hambias phase: error: {err}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    if not paths:
        print(f"hambias phase: {args.path}: no diagram applies (each needs >= 2 values on both "
              f"axes: alpha x init_scale, n x k, alpha x eta)", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hambias`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "sweep":
        return sweep_main(argv[1:], command=True)
    if argv and argv[0] == "phase":
        return phase_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check_main(args)
    return 2  # pragma: no cover - argparse enforces the subcommands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
