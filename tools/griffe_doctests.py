"""Griffe extension of the hambias docs: doctest blocks render as code, Sphinx roles as code.

hambias's docstrings end with doctest examples (``>>>`` lines) that pytest runs, without an
``Examples:`` section header.  The Google-style parser leaves such lines in the prose, where
Markdown would join them into one paragraph and read ``x[0, 0]`` as a link.  This wraps each
doctest block (from its first ``>>>`` line to the next blank line) in a ``pycon`` fence.

Some docstrings also use Sphinx roles (``:class:`~hambias.HAMGeometry```), which Markdown shows
verbatim; they become inline code (the last component for a ``~`` target).
"""

from __future__ import annotations

import re

import griffe

_PROMPT = re.compile(r"^(?P<indent>[ \t]*)>>> ")
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc|const):`(?P<t>~?[^`]+)`")


def _role_as_code(m: re.Match) -> str:
    target = m.group("t")
    return f"`{target[1:].rsplit('.', 1)[-1]}`" if target.startswith("~") else f"`{target}`"


def fence_doctests(text: str) -> str:
    """``text`` with every doctest block wrapped in a fenced ``pycon`` code block."""
    lines, out, i = text.split("\n"), [], 0
    while i < len(lines):
        m = _PROMPT.match(lines[i])
        if not m:
            out.append(lines[i])
            i += 1
            continue
        indent = m.group("indent")
        out.append(f"{indent}```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append(f"{indent}```")
    return "\n".join(out)


def roles_as_code(text: str) -> str:
    """``text`` with Sphinx cross-reference roles replaced by inline code."""
    return _ROLE.sub(_role_as_code, text)


class DoctestFences(griffe.Extension):
    """Wrap the doctest blocks of every docstring in code fences; Sphinx roles become code."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        doc = obj.docstring
        if doc is None:
            return
        value = roles_as_code(doc.value)
        if ">>>" in value:
            value = fence_doctests(value)
        doc.value = value
