"""Where the documentation explains each topic: the targets of hambias's references.

Sources cite the documentation as ``docs/<page>.md#<anchor>``, a path from the repository
root to a page of ``docs/`` and one of its explicit anchors; ``tests/test_docs.py`` fails
on a page or anchor that does not exist.

Older sources cite a numbered specification that is not part of the project ("THEORY.md §7",
"MEASUREMENTS.md").  :data:`THEORY_SECTIONS` maps each of its section numbers to the page that
now covers it, and :func:`rewrite_legacy` turns such references into the new form, so they can
be rewritten mechanically:

>>> rewrite_legacy("the implicit bias (THEORY.md §7)")
'the implicit bias (docs/theory/implicit-bias.md#implicit-bias)'
>>> rewrite_legacy("stable iff η(1 + α|θ*|)λ < 2 (THEORY §11)")
'stable iff η(1 + α|θ*|)λ < 2 (docs/theory/stability.md#stability)'
"""

from __future__ import annotations

import re
from collections.abc import Iterator

__all__ = [
    "DOCS_DIR",
    "THEORY_SECTIONS",
    "SECTION_11_TOPICS",
    "MEASUREMENTS",
    "THEORY_INDEX",
    "LEGACY_RE",
    "REFERENCE_RE",
    "theory_target",
    "legacy_references",
    "rewrite_legacy",
]

#: The folder of the documentation sources, relative to the repository root.
DOCS_DIR = "docs"

#: Section number of the legacy specification → ``page#anchor`` under ``docs/``.
THEORY_SECTIONS: dict[str, str] = {
    "1": "theory/setting.md#setting",
    "2": "theory/ham-step.md#ham-step",
    "3": "theory/ham-flow.md#ham-flow",
    "4": "theory/potential.md#potential",
    "5": "theory/mw-flow.md#mw-flow",
    "5.1": "theory/mw-flow.md#mw-velocity",
    "5.2": "theory/mw-flow.md#mw-conservation",
    "5.3": "theory/mw-flow.md#mw-gamma",
    "5.4": "theory/mw-flow.md#mw-closed-form",
    "5.5": "theory/mw-flow.md#mw-potential",
    "5.6": "theory/mw-flow.md#mw-implicit-bias",
    "6": "theory/exp-step.md#exp-step",
    "7": "theory/implicit-bias.md#implicit-bias",
    "8": "theory/l2-l1.md#l2-l1",
    "9": "theory/sign-choice.md#sign-choice",
    "10": "theory/pl-rate.md#pl-rate",
    "11": "theory/explicit-bias.md#explicit-bias",
    "12": "theory/uncertainties.md#uncertainties",
    **{f"12.{k}": f"theory/uncertainties.md#u{k}" for k in range(1, 11)},
}

#: §11 covers four topics; a reference whose context mentions one of these words points to
#: that topic's page (the first match in this order), otherwise to the default
#: :data:`THEORY_SECTIONS` ["11"] (β > 0).
SECTION_11_TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "stability": ("theory/stability.md#stability",
                  ("stab", "η(1 + α", "eta(1", "λ_max", "η_c", "step size")),
    "negative-alpha": ("theory/negative-alpha.md#negative-alpha",
                       ("negative", "α < 0", "alpha < 0", "box", "barrier")),
    "regression": ("theory/regression-experiment.md#regression-experiment",
                   ("regression", "D.1", "expected outcome", "1/√n", "scale", "falls by")),
    "explicit-bias": ("theory/explicit-bias.md#explicit-bias",
                      ("β", "beta", "H_α", "decay", "ridge", "lasso", "explicit")),
}

#: Where the baselines ("MEASUREMENTS.md") are now.
MEASUREMENTS = "baselines.md#baselines"
#: The theory overview with the table of the legacy sections (for ranges such as §2–§9).
THEORY_INDEX = "theory/index.md#section-map"

_NUM = r"\d+(?:\.\d+)?"
_SEC = rf"(?:§\s*{_NUM}|sections?\s+{_NUM})"
#: A legacy reference: "THEORY.md §7", "THEORY §3, §9", "THEORY.md §2–§6",
#: "THEORY.md sections 7-8", a bare "THEORY.md", or "MEASUREMENTS.md" (the word THEORY
#: alone is no reference).
LEGACY_RE = re.compile(
    rf"THEORY(?:\.md(?P<secs>\s+{_SEC}(?:\s*(?:,|and|–|-)\s*(?:§\s*)?{_NUM}(?![\w.]))*)?"
    rf"|(?P<secs_short>\s+§\s*{_NUM}(?:\s*(?:,|and|–|-)\s*§\s*{_NUM}(?![\w.]))*))"
    r"|MEASUREMENTS\.md"
)
#: A reference in the new form, ``docs/<page>.md#<anchor>``.
REFERENCE_RE = re.compile(r"\bdocs/(?P<page>[\w./-]+?\.md)#(?P<anchor>[A-Za-z][\w-]*)")


def theory_target(section: str, context: str = "") -> str:
    """``page#anchor`` (under ``docs/``) for a legacy section number such as ``"7"`` or ``"12.7"``.

    ``context`` (the surrounding text) picks among the four topics of §11.

    Raises:
        KeyError: a section number the legacy specification does not have.
    """
    section = section.strip().lstrip("§").strip()
    if section == "11":
        return _topic_11(context) or THEORY_SECTIONS["11"]
    return THEORY_SECTIONS[section]


def _topic_11(context: str) -> str | None:
    low = context.lower()
    for page, words in SECTION_11_TOPICS.values():
        if any(w.lower() in low for w in words):
            return page
    return None


def legacy_references(text: str) -> Iterator[tuple[re.Match, list[str]]]:
    """Each legacy reference in ``text`` with the ``page#anchor`` targets it stands for.

    The context that decides among the §11 topics is the line the reference is on, then, if
    that line names no topic, the three lines before it (a comment's sentence often spans
    several lines).
    """
    for m in LEGACY_RE.finditer(text):
        if m.group(0) == "MEASUREMENTS.md":
            yield m, [MEASUREMENTS]
            continue
        secs = m.group("secs") or m.group("secs_short")
        if not secs:
            yield m, ["theory/index.md#theory"]
            continue
        own_line = _lines_around(text, m, before=0)
        wider = _lines_around(text, m, before=3)
        numbers = re.findall(_NUM, secs)
        ranged = re.search(r"\d\s*[–-]\s*§?\s*\d", secs) is not None
        if ranged and len(numbers) == 2 and int(float(numbers[1])) - int(float(numbers[0])) > 1:
            yield m, [THEORY_INDEX]
            continue
        targets: list[str] = []
        for n in numbers:
            if n == "11":
                target = _topic_11(own_line) or theory_target(n, wider)
            else:
                target = theory_target(n)
            if target not in targets:
                targets.append(target)
        yield m, targets


def _lines_around(text: str, m: re.Match, *, before: int) -> str:
    """The line(s) of ``text`` that hold match ``m``, and ``before`` lines above them."""
    start = text.rfind("\n", 0, m.start()) + 1
    for _ in range(before):
        if start == 0:
            break
        start = text.rfind("\n", 0, start - 1) + 1
    end = text.find("\n", m.end())
    return text[start:None if end < 0 else end]


def rewrite_legacy(text: str) -> str:
    """``text`` with every legacy reference replaced by ``docs/<page>.md#<anchor>`` references."""
    out, last = [], 0
    for m, targets in legacy_references(text):
        out.append(text[last:m.start()])
        out.append(", ".join(f"{DOCS_DIR}/{t}" for t in targets))
        last = m.end()
    out.append(text[last:])
    return "".join(out)
