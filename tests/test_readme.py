"""The README's Python snippets run as written (they are the first thing a user copies)."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "hambias check" in text
    assert "pytest -q" in text


def test_readme_python_snippets_run(capsys):
    blocks = _python_blocks()
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:  # later snippets build on earlier ones, as in a session
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "newton" in out.lower()
