"""Where the documentation explains each topic: the targets of hambias's references.

Sources cite the documentation as ``docs/<page>.md#<anchor>``, a path from the repository
root to a page of ``docs/`` and one of its explicit anchors; ``tests/test_docs.py`` fails
on a page or anchor that does not exist.

The paper checks label each claim with a section number §1–§12 (and §12.1–§12.10 for the
open points); :data:`THEORY_SECTIONS` maps each number to the page that covers it (the table
at docs/theory/index.md#section-map), which the report links:

>>> theory_target("7")
'theory/implicit-bias.md#implicit-bias'
"""

from __future__ import annotations

import re

__all__ = [
    "DOCS_DIR",
    "REFERENCE_RE",
    "SECTION_11_PAGES",
    "THEORY_INDEX",
    "THEORY_SECTIONS",
    "theory_target",
]

#: The folder of the documentation sources, relative to the repository root.
DOCS_DIR = "docs"

#: Section number (the § labels of the paper checks) → ``page#anchor`` under ``docs/``.
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

#: §11 covers four topics, each with its page; :data:`THEORY_SECTIONS` ["11"] (β > 0) is the
#: default.
SECTION_11_PAGES: dict[str, str] = {
    "stability": "theory/stability.md#stability",
    "negative-alpha": "theory/negative-alpha.md#negative-alpha",
    "regression": "theory/regression-experiment.md#regression-experiment",
    "explicit-bias": "theory/explicit-bias.md#explicit-bias",
}

#: The theory overview with the table of the sections.
THEORY_INDEX = "theory/index.md#section-map"

#: A reference in the new form, ``docs/<page>.md#<anchor>``.
REFERENCE_RE = re.compile(r"\bdocs/(?P<page>[\w./-]+?\.md)#(?P<anchor>[A-Za-z][\w-]*)")


def theory_target(section: str) -> str:
    """``page#anchor`` (under ``docs/``) for a section number such as ``"7"`` or ``"12.7"``.

    Raises:
        KeyError: a section number the section map does not have.
    """
    return THEORY_SECTIONS[section.strip().lstrip("§").strip()]
