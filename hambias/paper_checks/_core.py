"""Shared machinery of the paper checks: claims, results, verdicts, the ``main(argv)`` wrapper.

A check module exposes ``run(*, quick, out, seed) -> CheckResult`` and ``main(argv)``.
Its claims are grouped; each group is a function returning :class:`Claim` objects.
:func:`run_groups` runs the groups so that a missing toolkit module turns the
group's claim into "not checked" (never a pass) and an unexpected exception
turns it into a failure that names the exception.
"""

from __future__ import annotations

import argparse
import importlib
import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "PASS",
    "FAIL",
    "NOT_CHECKED",
    "NOTE",
    "Claim",
    "CheckResult",
    "Unavailable",
    "claim_range",
    "claim_true",
    "note",
    "needs",
    "group",
    "run_groups",
    "require_x64",
    "make_main",
    "loglog_slope",
]

PASS, FAIL, NOT_CHECKED, NOTE = "pass", "fail", "not checked", "note"
VERDICTS = (PASS, FAIL, NOT_CHECKED, NOTE)


@dataclass(frozen=True)
class Claim:
    """One verifiable statement and its verdict.

    Attributes:
        name: short identifier, unique within its check.
        section: the section number, e.g. ``"§7"``; docs/theory/index.md#section-map maps
            each number to its page.
        statement: the claim in one sentence.
        measured: what was measured (a number, or a short text).
        expected: the expected value or bound, as text.
        tolerance: the tolerance, as text.
        why: one-line justification of the tolerance.
        verdict: one of ``pass``, ``fail``, ``not checked``, ``note``.
        detail: extra context (the reason a claim was not checked, an error).
    """

    name: str
    section: str
    statement: str
    measured: float | str | None
    expected: str
    tolerance: str
    why: str
    verdict: str
    detail: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_json(self) -> dict:
        d = asdict(self)
        m = d["measured"]
        if isinstance(m, float) and not math.isfinite(m):
            d["measured"] = repr(m)
        return d


@dataclass(frozen=True)
class CheckResult:
    """The result of one check module: its claims, figures and run time."""

    check: str
    title: str
    paper: str
    claims: tuple[Claim, ...]
    figures: tuple[str, ...] = ()
    seconds: float = 0.0
    quick: bool = False
    seed: int = 0
    config: dict = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return any(c.verdict == FAIL for c in self.claims)

    @property
    def counts(self) -> dict[str, int]:
        return {v: sum(c.verdict == v for c in self.claims) for v in VERDICTS}

    def to_json(self) -> dict:
        return {
            "check": self.check,
            "title": self.title,
            "paper": self.paper,
            "quick": self.quick,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "figures": list(self.figures),
            "config": self.config,
            "claims": [c.to_json() for c in self.claims],
        }


class Unavailable(Exception):
    """A toolkit piece a claim needs is missing: the claim is reported as not checked."""


def _finite(x) -> bool:
    try:
        return bool(np.all(np.isfinite(np.asarray(x, dtype=float))))
    except (TypeError, ValueError):
        return False


def _as_measured(x):
    if isinstance(x, str):
        return x
    arr = np.asarray(x, dtype=float)
    return float(arr) if arr.ndim == 0 else str(np.round(arr, 6).tolist())


def claim_range(name, section, statement, measured, *, lo=-math.inf, hi=math.inf, why,
                expected=None, tolerance=None, detail="") -> Claim:
    """A claim that ``lo <= measured <= hi`` (all elements; NaN or inf always fails)."""
    arr = np.asarray(measured) if _finite(measured) else None
    ok = arr is not None and bool(np.all((arr >= lo) & (arr <= hi)))
    if expected is None:
        expected = (f"≤ {hi:.3g}" if lo == -math.inf else
                    f"≥ {lo:.3g}" if hi == math.inf else f"in [{lo:.3g}, {hi:.3g}]")
    return Claim(name, section, statement, _as_measured(measured), expected,
                 tolerance if tolerance is not None else expected, why,
                 PASS if ok else FAIL, detail)


def claim_true(name, section, statement, ok: bool, *, measured, expected, tolerance="exact",
               why, detail="") -> Claim:
    """A claim whose verdict is the boolean ``ok`` (a comparison made by the caller)."""
    return Claim(name, section, statement, _as_measured(measured), expected, tolerance, why,
                 PASS if bool(ok) else FAIL, detail)


def note(name, section, statement, *, detail="") -> Claim:
    """A statement reported for information, never a pass.

    For the uncertainties of docs/theory/uncertainties.md#uncertainties.
    """
    return Claim(name, section, statement, None, "—", "—", "not a numerical claim", NOTE, detail)


def needs(module: str, *names: str):
    """Import ``hambias.<module>`` names, raising :class:`Unavailable` if they do not exist yet."""
    try:
        mod = importlib.import_module(f"hambias.{module}")
    except ImportError as e:
        raise Unavailable(f"hambias.{module} is not available ({e})") from None
    out = []
    for n in names:
        if not hasattr(mod, n):
            raise Unavailable(f"hambias.{module}.{n} is not available")
        out.append(getattr(mod, n))
    return out[0] if len(out) == 1 else tuple(out)


@dataclass(frozen=True)
class _Group:
    section: str
    statement: str
    fn: Callable


def group(section: str, statement: str):
    """Decorate a claim-producing function with the section and statement it verifies."""

    def wrap(fn):
        return _Group(section, statement, fn)

    return wrap


def run_groups(groups: Sequence[_Group], ctx) -> list[Claim]:
    """Run claim groups; a missing module gives "not checked", an exception gives "fail"."""
    claims: list[Claim] = []
    for g in groups:
        name = g.fn.__name__.lstrip("_")
        try:
            out = g.fn(ctx)
        except Unavailable as e:
            claims.append(Claim(name, g.section, g.statement, None, "—", "—",
                                "cannot be measured without the missing module",
                                NOT_CHECKED, f"not checked: {e}"))
            continue
        except Exception as e:  # noqa: BLE001 - a crash is reported, never hidden
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            claims.append(Claim(name, g.section, g.statement, None, "—", "—",
                                "the check crashed", FAIL, f"error: {tb}"))
            continue
        claims.extend(out)
    return claims


def require_x64() -> None:
    """Refuse to run in float32: the checks' tolerances assume float64."""
    import jax

    if not jax.config.jax_enable_x64:
        raise ValueError(
            "paper checks need float64: call jax.config.update('jax_enable_x64', True) at the "
            "entry point (the CLI and main(argv) do), got float32 defaults"
        )


def time_to_level(ts, rel, level) -> float:
    """First time a decreasing record ``rel`` (at times ``ts``) falls to ``level``.

    Interpolated log-linearly between the two records around the passage (the records of
    an exponential decay lie on a line there); 0 if ``rel[0] <= level``, ∞ if it never does.
    """
    idx = np.flatnonzero(np.asarray(rel) <= level)
    if idx.size == 0:
        return np.inf
    i = idx[0]
    if i == 0:
        return 0.0
    la, lb = np.log(rel[i - 1]), np.log(rel[i])
    return float(ts[i - 1] + (np.log(level) - la) / (lb - la) * (ts[i] - ts[i - 1]))


def loglog_slope(h, err) -> float:
    """Observed order of convergence (:func:`hambias.convergence_order`); NaN if unusable.

    A NaN makes the claim that uses it fail, which is what a non-finite or zero error
    (a diverged or degenerate run) should do to an order-of-convergence claim.
    """
    from hambias.compare import convergence_order

    try:
        return convergence_order(h, err)
    except ValueError:
        return float("nan")


def relative_distance(a, b) -> float:
    """‖a − b‖₂ / ‖b‖₂."""
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def regression_problem(ctx, *, quick=(10, 40), full=(20, 100), k: int = 5):
    """The check's seeded sparse regression: (problem, x_star), smaller in quick mode."""
    import jax

    from hambias import sparse_regression

    d, n = quick if ctx.quick else full
    return sparse_regression(jax.random.key(ctx.seed), d, n, k)


class Context:
    """What a check's claim groups share: quick flag, seed, output folder, figures written."""

    def __init__(self, *, quick: bool, seed: int, out: Path | None):
        self.quick = quick
        self.seed = seed
        self.out = None if out is None else Path(out)
        self.figures: list[str] = []
        self.config: dict = {}
        self.data: dict = {}
        # diffrax compiles once per geometry type and number of save times (2-4 s each on
        # 2 cores); quick runs skip those compiles with the scipy backend (the independent
        # solver), full runs use diffrax, so the report exercises both.
        self.flow_backend = "scipy" if quick else "diffrax"

    def save(self, fig, stem: str, meta: dict) -> None:
        """Save ``fig`` as ``<out>/<stem>.png`` (+ JSON sidecar) when an output folder is set."""
        from hambias.plots import close_figure, save_figure

        if self.out is not None:
            path = save_figure(fig, self.out / f"{stem}.png",
                               meta={"quick": self.quick, "seed": self.seed, **meta})
            self.figures.append(str(path))
        close_figure(fig)


def execute(check: str, title: str, paper: str, groups, *, quick: bool, out, seed: int,
            figures: Callable | None = None) -> CheckResult:
    """Run a check's claim groups (and its figure function) into a :class:`CheckResult`."""
    require_x64()
    t0 = time.perf_counter()
    ctx = Context(quick=quick, seed=seed, out=out)
    claims = run_groups(groups, ctx)
    sec = groups[0].section if groups else "—"
    if figures is not None and out is not None:
        try:
            figures(ctx)
        except Unavailable as e:
            claims.append(Claim("figures", sec, "the check's figures are written", None, "—",
                                "—", "figures need the missing module", NOT_CHECKED,
                                f"not checked: {e}"))
        except Exception as e:  # noqa: BLE001
            tb = traceback.format_exception_only(type(e), e)[-1].strip()
            claims.append(Claim("figures", sec, "the check's figures are written", None, "—",
                                "—", "a figure that cannot be drawn is a defect", FAIL,
                                f"error: {tb}"))
    return CheckResult(check, title, paper, tuple(claims), tuple(ctx.figures),
                       time.perf_counter() - t0, quick, seed, dict(ctx.config))


def make_check(name: str, title: str, paper: str, groups, seed: int, doc: str | None, *,
               figures: Callable | None = None) -> tuple[Callable, Callable]:
    """The ``(run, main)`` pair of a check module.

    ``run(*, quick=False, out=None, seed=seed)`` evaluates the claim groups (and the figure
    function when ``out`` is set) into a :class:`CheckResult`; ``main(argv)`` is its
    command line (``--quick``, ``--out``, ``--seed``).
    """

    def run(*, quick: bool = False, out=None, seed: int = seed) -> CheckResult:
        return execute(name, title, paper, groups, quick=quick, out=out, seed=seed,
                       figures=figures)

    run.__doc__ = f"Run the claims of the {name} check; see the module docstring."
    return run, make_main(run, doc, seed)


def make_main(run: Callable, doc: str | None, default_seed: int) -> Callable:
    """Build the ``main(argv)`` of a check module: parse flags, run, print, exit code."""

    def main(argv: list[str] | None = None) -> int:
        import jax

        jax.config.update("jax_enable_x64", True)
        p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
        p.add_argument("--quick", action="store_true", help="small problems, seconds")
        p.add_argument("--out", default="figures", help="figure folder (default: figures)")
        p.add_argument("--seed", type=int, default=default_seed, help="problem seed")
        args = p.parse_args(argv)
        res = run(quick=args.quick, out=Path(args.out), seed=args.seed)
        for c in res.claims:
            print(f"[{c.verdict:>11}] {c.section} {c.name}: measured {c.measured} "
                  f"(expected {c.expected}) {c.detail}")
        return 1 if res.failed else 0

    return main


def ham_iterates(problem, x0, *, eta: float, alpha: float, steps: int, beta: float = 0.0,
                 star: bool = True):
    """Final point of ``steps`` GD+HYP* (or HYP) steps (numpy): :class:`hambias.GDHyp` run by
    :func:`hambias.run_iterates` (one compiled program for every step count and η)."""
    from hambias import GDHyp, run_iterates

    res = run_iterates(GDHyp(eta, alpha, beta, star), problem, x0, steps=int(steps),
                       record_every=max(int(steps), 1), record_x=False)
    return np.asarray(res.x)


def ham_step_size(problem, alpha: float, x_scale: float, *, c: float = 0.5) -> float:
    """η₀ = c / (L (1 + α max|x|)), a stable step.

    See docs/theory/implicit-bias.md#implicit-bias-measured and docs/theory/stability.md#stability.
    """
    return c / (float(problem.lipschitz()) * (1.0 + abs(alpha) * x_scale))


def min_l1_linprog(problem) -> np.ndarray:
    """argmin ‖x‖₁ s.t. Ax = y by scipy's HiGHS LP, certified (a reference independent of cvxpy).

    Raises:
        hambias.PredictionError: the LP point did not pass the L1 optimality certificate.
    """
    from hambias.predict import min_l1_interpolant

    return np.asarray(min_l1_interpolant(problem, solver="highs").x)
