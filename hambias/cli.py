"""The ``hambias`` command line: ``hambias check`` (verify the paper's claims) and friends."""

from __future__ import annotations

import argparse
import sys

from . import __version__

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hambias",
        description="Theory and simulation of the implicit bias of optimizers, centred on HAM.",
    )
    parser.add_argument("--version", action="version", version=f"hambias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser(
        "check",
        help="verify the HAM paper's claims numerically; write the report and figures",
        description="Run the paper checks, write figures/ and report.md / report.json, "
        "and exit non-zero if any claim fails.",
    )
    check.add_argument("--quick", action="store_true", help="small problems, about a minute")
    check.add_argument("--only", action="append", metavar="NAME", help="run only this check")
    check.add_argument("--out", default="figures", help="output folder (default: figures)")
    sub.add_parser(
        "sweep",
        help="run a batched, resumable sweep from a TOML config (see examples/sweeps/)",
        description="Run a sweep: hambias sweep CONFIG --out PATH [--quiet] [--cpu-devices N]. "
        "Killed sweeps resume with the same command.",
        add_help=False,
    )
    sub.add_parser(
        "phase",
        help="phase diagrams of a stored sweep (hambias phase PATH --out DIR)",
        description="Draw the phase diagrams a stored sweep allows: recovery error over "
        "(alpha, initial scale) and (n, k), convergence time over (alpha, eta) with the "
        "stability boundary.",
        add_help=False,
    )
    return parser


def _run_check(args) -> int:
    from pathlib import Path

    import jax

    jax.config.update("jax_enable_x64", True)  # the checks are theory checks: float64
    from .report import run_checks

    try:
        return run_checks(
            quick=args.quick,
            only=args.only,
            out=Path(args.out),
            progress=lambda line: print(line, flush=True),
        )
    except ValueError as err:  # an unknown --only name
        print(f"hambias check: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hambias`` command."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "sweep":
        from .sweep import sweep_main

        return sweep_main(argv[1:], default_cpu_devices=True)
    if argv and argv[0] == "phase":
        from .plots import phase_main

        return phase_main(argv[1:])
    args = _build_parser().parse_args(argv)
    if args.command == "check":
        return _run_check(args)
    return 2  # pragma: no cover - argparse enforces the subcommands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
