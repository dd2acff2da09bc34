"""Where a report finds the renderer that shows it: ``str(report)``, rich, Jupyter.

Data flows one way (inputs → … → Report → renderers), so :mod:`crosscheck._report` must not
know which modules draw it. Yet ``str(report)``, ``report.__rich__()`` and
``report._repr_html_()`` have to work after a bare ``import crosscheck``. This module is the
one place that names the renderer of each form; the report's display methods ask it, and it
imports the renderer only then. So the report depends on a form's name, never on a renderer,
and ``import crosscheck`` loads no rendering code (rich's tables and matplotlib are imported
inside the renderers, later still). ``report.save(path)`` comes here for the same reason: it
picks the renderer by the path's suffix.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any, Literal

Form = Literal["plain", "rich", "html"]

# form -> (module, function): the function takes a Report and returns the form.
RENDERERS: dict = {
    "plain": ("._render_text", "render_plain"),   # str(report): the table as text
    "rich": ("._render_text", "render_rich"),     # report.__rich__(): the table for rich
    "html": ("._render_html", "render_report_html"),   # report._repr_html_(): Jupyter
}


def present(form: Form, report) -> Any:
    """``report`` rendered as ``form``, by the renderer :data:`RENDERERS` names for it."""
    module, function = RENDERERS[form]
    return getattr(importlib.import_module(module, __package__), function)(report)


def _json(report) -> str:
    return json.dumps(report.to_dict(), indent=2) + "\n"


def _page(report) -> str:
    from ._render_html import render_page
    return render_page([report], title=report.case or "crosscheck")


def _markdown(report) -> str:
    from ._render_markdown import render_report_markdown
    return render_report_markdown(report)


def _text(report) -> str:
    from ._render_text import render_plain
    return render_plain(report) + "\n"


def _junit(report) -> str:
    from ._render_junit import render_junit
    return render_junit([report])


# suffix -> what `report.save(path)` writes there: the same forms the command line writes
# (`--html`, `--json`, `--markdown`, `--junit`) and `str(report)`.
SAVERS: dict = {".html": _page, ".json": _json, ".md": _markdown, ".txt": _text,
                ".xml": _junit}


def save(report, path) -> Path:
    """Write ``report`` to ``path`` in the form its suffix names (:data:`SAVERS`), atomically
    (a temporary file beside it, then a rename), and return the path.

    Raises:
        CheckError: ``path`` is not a path, its suffix is not one of :data:`SAVERS`, or the
            file cannot be written (a folder there, a file where a folder belongs, no right).
    """
    import os

    from ._errors import CheckError
    from ._run_file import write_atomically
    if not isinstance(path, (str, os.PathLike)) or isinstance(path, bytes):
        raise CheckError(f"`report.save` needs a path (a str or pathlib.Path) such as "
                         f"`\"report.html\"`, not {type(path).__name__}.")
    target = Path(path).expanduser()
    suffix = target.suffix.lower()
    if suffix not in SAVERS:
        named = f"suffix `{target.suffix}`" if target.suffix else "no suffix"
        raise CheckError(f"cannot save a report as `{target}`: it has {named}; end the path "
                         f"with one of {', '.join(SAVERS)} (HTML, JSON, Markdown, text, "
                         f"JUnit XML).")
    try:
        write_atomically(target, SAVERS[suffix](report))
    except OSError as exc:
        raise CheckError(f"cannot save the report to `{target}`: "
                         f"{exc.strerror or exc}.") from exc
    return target
