"""MkDocs hooks of the hambias documentation (``mkdocs.yml``: ``hooks``).

* The tutorials are the jupytext scripts of ``notebooks/`` and the paper-check report is
  ``figures/report.md`` with its figures; both live outside ``docs/`` and are added to the site
  here, so there is one copy of each.
* The tutorials are executed at build time (by mkdocs-jupyter) in quick mode,
  ``HAMBIAS_QUICK=1``.
* References to the documentation in docstrings, notebooks and the report
  (``docs/<page>.md#<anchor>``) become links, and so do the report's § labels (through the
  section map of ``hambias._refs``).
"""

from __future__ import annotations

import html
import os
import posixpath
import re
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

from hambias import _refs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FIGURES = ROOT / "figures"
# Site paths of the generated pages.
TUTORIALS = "tutorials"
REPORT = "report"


def on_config(config):
    # Read by the notebooks (small problems) in the executing kernels, which inherit this
    # process's environment.  MPLBACKEND stays unset there: the kernels' inline backend is
    # what puts the figures into the pages.
    os.environ.setdefault("HAMBIAS_QUICK", "1")
    os.environ.pop("MPLBACKEND", None)
    return config


@event_priority(100)  # before mkdocs-jupyter wraps the notebook files
def on_files(files: Files, config) -> Files:
    for nb in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        files.append(File.generated(config, f"{TUTORIALS}/{nb.name}", abs_src_path=str(nb)))
    for path in sorted(FIGURES.rglob("*")):
        if path.suffix not in (".md", ".png"):
            continue
        rel = path.relative_to(FIGURES).as_posix()
        uri = f"{REPORT}/index.md" if rel == "report.md" else f"{REPORT}/{rel}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_nav(nav, config, files):
    # mkdocs-jupyter wraps each notebook File in a proxy that recomputes abs_src_path from
    # src_dir, which a generated File (ours: the source lives in notebooks/) does not have;
    # give the proxy the wrapped file's path so it can read and execute the notebook.
    for f in files:
        inner = f.__dict__.get("file")
        if inner is not None and f.__dict__.get("abs_src_path") is None:
            f.__dict__["abs_src_path"] = inner.abs_src_path
    return nav


# The paper checks of §11 each have their own page.
_CHECK_PAGES = {
    "explicit_bias_beta": _refs.SECTION_11_PAGES["explicit-bias"],
    "stability_threshold": _refs.SECTION_11_PAGES["stability"],
    "negative_alpha_box": _refs.SECTION_11_PAGES["negative-alpha"],
    "regression_experiment": _refs.SECTION_11_PAGES["regression"],
    "switch_off_decay": "theory/explicit-bias.md#switch-off",
    "single_neuron_sign_flips": "theory/two-layer.md#two-layer",
}


def _href(target: str, page, files, *, markdown: bool = False) -> str | None:
    """The link from ``page`` to ``target`` (``page.md#anchor`` under docs/).

    In Markdown (``markdown=True``) a relative path to the source file, which MkDocs resolves
    and validates; in HTML the final relative URL.
    """
    path, _, anchor = target.partition("#")
    file = files.get_file_from_path(path)
    if file is None:
        return None
    if markdown:
        return f"{posixpath.relpath(path, posixpath.dirname(page.file.src_uri))}#{anchor}"
    return f"{file.url_relative_to(page.file)}#{anchor}"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """In the report, link the § column to the theory pages."""
    if page.file.src_uri != f"{REPORT}/index.md":
        return markdown
    lines, check = [], None
    for line in markdown.split("\n"):
        heading = re.match(r"## .*\(`(\w+)`", line)
        if heading:
            check = heading.group(1)
        cell = re.match(r"(\| [A-Z ]+ \| )§(\d+)( \|.*)", line)
        if cell:
            n = cell.group(2)
            target = _CHECK_PAGES.get(check) if n == "11" else None
            href = _href(target or _refs.theory_target(n), page, files, markdown=True)
            if href:
                line = f"{cell.group(1)}[§{n}]({href}){cell.group(3)}"
        lines.append(line)
    return "\n".join(lines)


_TEXT_REF = re.compile(r"(?<![\w/\"'=])docs/([\w./-]+?\.md)#([A-Za-z][\w-]*)")


def on_page_content(content: str, page, config, files) -> str:
    """In the API, tutorial and report pages, turn references to the documentation into links."""
    if not page.file.src_uri.startswith(("api/", f"{TUTORIALS}/", f"{REPORT}/")):
        return content

    def new_form(m):
        href = _href(f"{m.group(1)}#{m.group(2)}", page, files)
        return m.group(0) if href is None else f'<a href="{html.escape(href)}">{m.group(0)}</a>'

    return _TEXT_REF.sub(new_form, content)
