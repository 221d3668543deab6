"""Every paper check runs in quick mode, its claims are well-formed, and checks can fail."""

import json

import jax
import numpy as np
import pytest

import hambias.geometry
from hambias import paper_checks
from hambias.report import run_checks
from hambias.paper_checks import CHECKS, FAIL, NOT_CHECKED, NOTE, PASS
from hambias.paper_checks._core import claim_range, loglog_slope

# The theory has sections §1–§12 (docs/theory/index.md#section-map); the report must cover each
# of them.
SECTIONS = {f"§{i}" for i in range(1, 13)}


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory):
    """All checks once in quick mode (shared by the tests below: ~1–2 min on 2 cores)."""
    out = tmp_path_factory.mktemp("figures")
    return out, {name: paper_checks.run_check(name, quick=True, out=out) for name in CHECKS}


@pytest.mark.parametrize("name", list(CHECKS))
def test_check_passes_in_quick_mode(quick_results, name):
    _, results = quick_results
    res = results[name]
    assert res.claims, f"{name} returned no claims"
    bad = [(c.name, c.measured, c.expected, c.detail) for c in res.claims if c.verdict == FAIL]
    assert not bad, f"{name}: failing claims {bad}"
    for c in res.claims:
        assert c.statement and c.section.startswith("§")
        if c.verdict in (PASS, FAIL):
            assert c.why and c.tolerance and c.expected != "—"
        # every claim of the theory pages is checkable with the toolkit as it is: "not checked"
        # would mean a module or name went missing, which must not pass silently
        assert c.verdict != NOT_CHECKED, f"{name}: {c.name} not checked: {c.detail}"


def test_report_covers_every_section(quick_results):
    _, results = quick_results
    covered = {c.section for r in results.values() for c in r.claims}
    assert SECTIONS <= covered, f"sections without a claim: {sorted(SECTIONS - covered)}"
    assert any(c.verdict == NOTE for c in results["uncertainties"].claims)


def test_figures_have_sidecars(quick_results):
    out, results = quick_results
    figs = [f for r in results.values() for f in r.figures]
    assert len(figs) >= 8
    for f in figs:
        png = out / f.split("/")[-1]
        assert png.exists() and png.stat().st_size > 10_000
        meta = json.loads(png.with_suffix(".json").read_text())
        assert meta["hambias_version"] and "quick" in meta["meta"]


def test_claim_helpers_fail_on_nan_and_out_of_range():
    assert claim_range("a", "§1", "s", np.nan, hi=1.0, why="w").verdict == FAIL
    assert claim_range("a", "§1", "s", 2.0, hi=1.0, why="w").verdict == FAIL
    assert claim_range("a", "§1", "s", 0.5, lo=0.0, hi=1.0, why="w").verdict == PASS
    assert np.isclose(loglog_slope([1, 2, 4], [1, 4, 16]), 2.0)


def test_main_entry_point(tmp_path, capsys):
    from hambias.paper_checks import uncertainties

    assert uncertainties.main(["--quick", "--out", str(tmp_path)]) == 0
    assert "note" in capsys.readouterr().out


def test_run_checks_writes_report_and_rejects_unknown(tmp_path):
    lines = []
    code = run_checks(quick=True, only=["uncertainties", "ham_step"], out=tmp_path,
                      progress=lines.append)
    assert code == 0 and any("ham_step" in s for s in lines)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == 0 and len(report["checks"]) == 2
    md = (tmp_path / "report.md").read_text()
    assert "tolerance" in md and "note" in md
    with pytest.raises(ValueError, match="unknown check"):
        run_checks(quick=True, only=["no_such_check"], out=tmp_path, progress=None)


def test_broken_metric_makes_checks_fail(tmp_path, monkeypatch):
    """Acceptance: the HAM metric 1 + 2α|θ| instead of 1 + α|θ| is caught."""

    def broken(self, x):
        return 1.0 + 2.0 * self.alpha * jax.numpy.abs(jax.numpy.asarray(x, dtype=float))

    monkeypatch.setattr(hambias.geometry.HAMGeometry, "inverse_metric", broken)
    jax.clear_caches()  # compiled flows traced with the true metric must not be reused
    try:
        names = ["inverse_metrics", "mirror_potential", "ham_flow_limit"]
        lines = []
        code = run_checks(quick=True, only=names, out=tmp_path, progress=lines.append)
        report = json.loads((tmp_path / "report.json").read_text())
    finally:
        monkeypatch.undo()
        jax.clear_caches()
    assert code == 1
    failed = {r["check"]: [c["name"] for c in r["claims"] if c["verdict"] == FAIL]
              for r in report["checks"]}
    assert all(failed[n] for n in names), failed
    assert any(n.startswith("table_HAM") for n in failed["inverse_metrics"])
    assert any(n.startswith("local_order") for n in failed["ham_flow_limit"])


def test_missing_module_is_not_checked_and_crash_is_fail():
    from hambias.paper_checks._core import Context, group, needs, run_groups

    @group("§7", "needs a module that does not exist")
    def _missing(ctx):
        needs("no_such_module", "solve")
        return []

    @group("§7", "crashes")
    def _crash(ctx):
        raise RuntimeError("boom")

    claims = run_groups((_missing, _crash), Context(quick=True, seed=0, out=None))
    assert [c.verdict for c in claims] == [NOT_CHECKED, FAIL]
    assert "hambias.no_such_module" in claims[0].detail and "boom" in claims[1].detail
