"""Runner and report writer of ``hambias check``: run the paper checks, write report.md/.json.

:func:`run_checks` runs the registered checks of :mod:`hambias.paper_checks` (all, or
``only``), writes their figures into ``out``, and writes ``report.md`` (for
people) and ``report.json`` (for machines) there: every claim with its measured
value, expected value or bound, tolerance and its one-line justification, and
verdict.  The exit code is 1 if any claim failed (a crashed check counts as a
failure), else 0; claims that could not be checked are listed as such and never
count as passes.

The caller (the CLI) enables float64 first.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["run_checks", "write_report", "probe_writable"]


def _verdict_counts(results) -> dict[str, int]:
    from hambias.paper_checks import FAIL, NOT_CHECKED, NOTE, PASS

    out = {PASS: 0, FAIL: 0, NOT_CHECKED: 0, NOTE: 0}
    for r in results:
        for c in r.claims:
            out[c.verdict] += 1
    return out


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v).replace("|", "\\|")


def write_report(results, out: Path, *, quick: bool, seconds: float) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` for a list of :class:`~hambias.paper_checks.CheckResult`.

    Returns:
        The two paths ``(report.md, report.json)``.
    """
    from . import __version__

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    counts = _verdict_counts(results)
    meta = {
        "hambias_version": __version__,
        "python": platform.python_version(),
        "quick": quick,
        "seconds": round(seconds, 2),
        "counts": counts,
        "exit_code": 1 if counts["fail"] else 0,
    }
    js = out / "report.json"
    js.write_text(json.dumps({**meta, "checks": [r.to_json() for r in results]}, indent=2)
                  + "\n")

    lines = [
        "# hambias check: the HAM paper's claims, measured",
        "",
        f"hambias {__version__}, {'quick' if quick else 'full'} mode, {seconds:.1f} s. "
        f"Verdicts: **{counts['pass']} pass, {counts['fail']} fail, "
        f"{counts['not checked']} not checked**, {counts['note']} notes.",
        "",
        "Sections (§n) refer to the theory pages; docs/theory/index.md#section-map maps each "
        "number to its page. A claim that could not be checked is listed as *not checked* with "
        "the reason; it never counts as a pass.",
        "",
    ]
    for r in results:
        c = r.counts
        lines += [
            f"## {r.title} (`{r.check}`; paper: {r.paper})",
            "",
            f"{c['pass']} pass, {c['fail']} fail, {c['not checked']} not checked, "
            f"{c['note']} notes; {r.seconds:.1f} s, seed {r.seed}.",
            "",
        ]
        notes = [cl for cl in r.claims if cl.verdict == "note"]
        rows = [cl for cl in r.claims if cl.verdict != "note"]
        if rows:
            lines += ["| verdict | § | claim | measured | expected | tolerance: why |",
                      "|---|---|---|---|---|---|"]
            for cl in rows:
                v = {"pass": "PASS", "fail": "**FAIL**"}.get(cl.verdict, cl.verdict.upper())
                extra = f" ({_fmt(cl.detail)})" if cl.detail else ""
                lines.append(f"| {v} | {cl.section} | {_fmt(cl.statement)}{extra} | "
                             f"{_fmt(cl.measured)} | {_fmt(cl.expected)} | "
                             f"{_fmt(cl.tolerance)}: {_fmt(cl.why)} |")
            lines.append("")
        for cl in notes:
            lines.append(f"* note ({cl.section}, `{cl.name}`): {cl.statement}")
        if notes:
            lines.append("")
        for f in r.figures:
            lines.append(f"![{Path(f).stem}]({Path(f).name})")
        if r.figures:
            lines.append("")
    md = out / "report.md"
    md.write_text("\n".join(lines))
    return md, js


def probe_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write and remove a file in it.

    Raises:
        ValueError: naming the folder and the operating system's reason.
    """
    import tempfile

    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as err:
        raise ValueError(f"cannot write to the output folder {folder}: "
                         f"{err.strerror or err}") from None


def run_checks(*, quick: bool, only: list[str] | None, out: Path,
               progress: Callable[[str], None] | None = print) -> int:
    """Run the paper checks, write figures and the report into ``out``; return the exit code.

    Args:
        quick: small problems (about a minute in all) instead of the default sizes.
        only: names of the checks to run (default: all of :data:`hambias.paper_checks.CHECKS`).
        out: output folder for figures, ``report.md`` and ``report.json``.
        progress: called with one line per started/finished check (``None``: silent).

    Returns:
        1 if any claim failed or a check crashed, else 0.

    Raises:
        ValueError: an unknown check name in ``only`` (the message lists the known ones),
            or an ``out`` folder that cannot be created or written (checked first).
    """
    from hambias import paper_checks
    from hambias.paper_checks import FAIL, CheckResult, Claim

    names = list(paper_checks.CHECKS) if not only else list(only)
    for n in names:
        if n not in paper_checks.CHECKS:
            raise ValueError(f"unknown check {n!r}; expected one of "
                             f"{', '.join(paper_checks.CHECKS)}")
    say = progress or (lambda _msg: None)
    out = Path(out)
    probe_writable(out)  # before minutes of checks, not after them
    t0 = time.perf_counter()
    results = []
    for i, name in enumerate(names, 1):
        say(f"[{i}/{len(names)}] {name} ({paper_checks.CHECKS[name]}) ...")
        t = time.perf_counter()
        try:
            res = paper_checks.run_check(name, quick=quick, out=out)
        except Exception as e:  # noqa: BLE001 - a crashed check is a failed claim
            res = CheckResult(name, name, "—", (Claim(
                "crash", paper_checks.CHECKS[name], f"check {name} runs", None, "—", "—",
                "a check that crashes verifies nothing", FAIL,
                f"error: {type(e).__name__}: {e}"),), (), time.perf_counter() - t, quick)
        results.append(res)
        c = res.counts
        say(f"      {c['pass']} pass, {c['fail']} fail, {c['not checked']} not checked "
            f"({time.perf_counter() - t:.1f} s)")
        for cl in res.claims:
            if cl.verdict == FAIL:
                say(f"      FAIL {cl.name}: measured {cl.measured}, expected {cl.expected} "
                    f"{cl.detail}")
    seconds = time.perf_counter() - t0
    md, _ = write_report(results, out, quick=quick, seconds=seconds)
    counts = _verdict_counts(results)
    say(f"{counts['pass']} pass, {counts['fail']} fail, {counts['not checked']} not checked, "
        f"{counts['note']} notes in {seconds:.1f} s; report: {md}")
    return 1 if counts["fail"] else 0
