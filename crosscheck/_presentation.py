"""Where a report finds the renderer that shows it: ``str(report)``, rich, Jupyter.

Data flows one way (inputs → … → Report → renderers), so :mod:`crosscheck._report` must not
know which modules draw it. Yet ``str(report)``, ``report.__rich__()`` and
``report._repr_html_()`` have to work after a bare ``import crosscheck``. This module is the
one place that names the renderer of each form; the report's display methods ask it, and it
imports the renderer only then. So the report depends on a form's name, never on a renderer,
and ``import crosscheck`` loads no rendering code (rich's tables and matplotlib are imported
inside the renderers, later still).
"""

from __future__ import annotations

import importlib
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
