"""The README's Python snippets run as written, each alone in a fresh interpreter.

They are the first thing a user copies, one at a time: a snippet that only works after an
earlier one (a missing import, a variable defined above) fails here.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
# Each snippet runs in its own interpreter; the tour solves a flow and 20,000 steps (~20 s
# on 2 cores including the JAX import), far below this bound.
SNIPPET_TIMEOUT_S = 300


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "hambias check" in text
    assert "pytest -q" in text


def test_readme_has_snippets():
    assert len(_python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_readme_python_snippet_runs_alone(index, tmp_path):
    block = _python_blocks()[index]
    proc = subprocess.run(
        [sys.executable, "-c", block],
        cwd=tmp_path,  # no access to the repository's files beyond the installed package
        capture_output=True,
        text=True,
        timeout=SNIPPET_TIMEOUT_S,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, f"README snippet {index + 1} fails alone:\n{proc.stderr[-3000:]}"
    if "predict_limit" in block:
        assert "newton" in proc.stdout.lower()
