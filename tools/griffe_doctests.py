"""Griffe extension of the hambias docs: doctest blocks render as code.

hambias's docstrings end with doctest examples (``>>>`` lines) that pytest runs, without an
``Examples:`` section header.  The Google-style parser leaves such lines in the prose, where
Markdown would join them into one paragraph and read ``x[0, 0]`` as a link.  This wraps each
doctest block (from its first ``>>>`` line to the next blank line) in a ``pycon`` fence.
"""

from __future__ import annotations

import re

import griffe

_PROMPT = re.compile(r"^(?P<indent>[ \t]*)>>> ")


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


class DoctestFences(griffe.Extension):
    """Wrap the doctest blocks of every docstring in code fences."""

    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        doc = obj.docstring
        if doc is not None and ">>>" in doc.value:
            doc.value = fence_doctests(doc.value)
