"""Every reference to the documentation points to a page and an anchor that exist.

References have the form ``docs/<page>.md#<anchor>`` (``hambias._refs.REFERENCE_RE``) and are
checked strictly wherever they appear, as is the section map behind the report's § labels.
Earlier sources cited specification files that are not in the project; none may come back.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from hambias import _refs

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / _refs.DOCS_DIR
# Where references to the documentation live: library, checks, notebooks, tests, benchmarks,
# sweep examples, the README, the committed report and the docs themselves.
SCANNED_DIRS = ("hambias", "notebooks", "tests", "benchmarks", "examples", "docs")
SCANNED_FILES = ("README.md", "figures/report.md")
SUFFIXES = {".py", ".md", ".toml", ".yml", ".txt"}
# Files outside the project that earlier sources cited (users do not have them).
ABSENT_FILES = re.compile(r"\b(?:THEORY|MEASUREMENTS)\.md\b")

# An explicit anchor: a heading attribute list "{#id}" / "{: #id .cls}" or an HTML id="...".
_ANCHOR = re.compile(r"\{:?[^}\n]*?#(?P<a>[A-Za-z][\w-]*)[^}\n]*\}|\bid=\"(?P<b>[A-Za-z][\w-]*)\"")


def _scanned() -> list[Path]:
    files = [ROOT / f for f in SCANNED_FILES]
    for d in SCANNED_DIRS:
        files += [p for p in sorted((ROOT / d).rglob("*"))
                  if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts]
    return files


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@cache
def _anchors(page: str) -> frozenset[str] | None:
    """Explicit anchors of ``docs/<page>``, or None if the page does not exist."""
    path = DOCS / page
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8")
    return frozenset(m.group("a") or m.group("b") for m in _ANCHOR.finditer(text))


def _missing(target: str) -> str | None:
    """Why ``page.md#anchor`` (under docs/) does not resolve, or None if it does."""
    page, _, anchor = target.partition("#")
    anchors = _anchors(page)
    if anchors is None:
        return f"no page docs/{page}"
    if anchor not in anchors:
        return f"no anchor #{anchor} in docs/{page}"
    return None


def test_the_docs_define_anchors():
    # Guards the anchor parser itself: a page with no anchors would make every test vacuous.
    assert "ham-step" in _anchors("theory/ham-step.md")
    assert "u7" in _anchors("theory/uncertainties.md")
    assert len(_anchors("conventions.md")) >= 5


def test_references_resolve():
    """Every ``docs/<page>.md#<anchor>`` in the sources names a page and anchor that exist."""
    bad, found = [], 0
    for path in _scanned():
        text = path.read_text(encoding="utf-8")
        for m in _refs.REFERENCE_RE.finditer(text):
            found += 1
            why = _missing(f"{m.group('page')}#{m.group('anchor')}")
            if why:
                line = text.count("\n", 0, m.start()) + 1
                bad.append(f"{_rel(path)}:{line}: {m.group(0)}: {why}")
    assert not bad, "\n".join(bad)
    assert found > 0


def test_the_section_map_points_to_existing_anchors():
    targets = [*_refs.THEORY_SECTIONS.values(), _refs.THEORY_INDEX,
               *_refs.SECTION_11_PAGES.values()]
    bad = [f"{t}: {why}" for t in targets if (why := _missing(t))]
    assert not bad, "\n".join(bad)
    # every section 1-12, and each item of the list of open points
    assert {str(k) for k in range(1, 13)} <= _refs.THEORY_SECTIONS.keys()
    assert {f"12.{k}" for k in range(1, 11)} <= _refs.THEORY_SECTIONS.keys()


def test_no_file_outside_the_project_is_cited():
    left = [f"{_rel(p)}: {m.group(0)!r}" for p in _scanned() if _rel(p) != "tests/test_docs.py"
            for m in ABSENT_FILES.finditer(p.read_text(encoding="utf-8"))]
    assert not left, f"{len(left)} citations, e.g.\n" + "\n".join(left[:10])


def test_readme_relative_links_exist():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", text)
    assert links
    missing = [link for link in links if not (ROOT / link).exists()]
    assert not missing, missing


def test_section_map_table_matches_the_section_map():
    """The table on docs/theory/index.md and THEORY_SECTIONS agree for sections 1-12."""
    text = (DOCS / "theory/index.md").read_text(encoding="utf-8")
    table = text[text.index("{#section-map}"):]
    rows = dict(re.findall(r"^\| (\d+) \|.*?\]\(([^)]+)\)", table, flags=re.M))
    assert set(rows) == {str(k) for k in range(1, 13)}
    for sec, link in rows.items():
        assert f"theory/{link}" == _refs.THEORY_SECTIONS[sec], sec


def test_docs_build_strict_without_executing_notebooks(tmp_path):
    """``mkdocs build --strict`` (notebooks not executed: that is the full build's job)."""
    for module in ("mkdocs", "material", "mkdocs_jupyter", "mkdocstrings_handlers.python"):
        pytest.importorskip(module, reason="the docs extra is not installed: pip install -e '.[docs]'")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HAMBIAS_DOCS_EXECUTE": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert (tmp_path / "site/theory/ham-step/index.html").is_file()
