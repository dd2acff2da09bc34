"""The JSON Schemas (draft 2020-12) of crosscheck's two published formats, as shipped.

``report-1`` is ``crosscheck.report/1``: :meth:`crosscheck.Report.to_dict`, ``crosscheck check
--json``. ``run-1`` is ``crosscheck.run/1``: ``crosscheck run --json`` and the pytest
plugin's ``run.json``; its ``reports`` refer to ``report-1`` by its ``$id``
(``urn:crosscheck:schema:report-1``), so a validator of run files needs both
(:func:`validator` wires them). docs/formats.md says what every key means.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

# name -> file under crosscheck/schemas/
FILES: dict[str, str] = {
    "report-1": "report-1.schema.json",
    "run-1": "run-1.schema.json",
}
# the documents' own `schema` tags -> name
TAGS: dict[str, str] = {
    "crosscheck.report/1": "report-1",
    "crosscheck.run/1": "run-1",
}


def schema(name: str) -> dict[str, Any]:
    """The schema ``name`` as a dict: ``"report-1"`` or ``"run-1"``, or a document's tag
    (``"crosscheck.report/1"``, ``"crosscheck.run/1"``).

    Raises:
        KeyError: no such schema (the message lists the known names).
    """
    key = TAGS.get(name, name)
    if key not in FILES:
        known = ", ".join([*FILES, *TAGS])
        raise KeyError(f"no crosscheck schema {name!r}; known: {known}")
    text = (resources.files("crosscheck") / "schemas" / FILES[key]).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def validator(name: str) -> Any:
    """A ``jsonschema.Draft202012Validator`` for schema ``name``, with every crosscheck schema
    registered so that ``run-1`` resolves its reference to ``report-1``.

    Needs the ``jsonschema`` package (``pip install jsonschema``; in the ``dev`` extra).
    ``validator("run-1").validate(doc)`` raises ``jsonschema.ValidationError``;
    ``iter_errors(doc)`` lists every problem.
    """
    import jsonschema
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    registry: Registry[Any] = Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s)) for s in (schema(n) for n in FILES))
    return jsonschema.Draft202012Validator(schema(name), registry=registry,
                                           format_checker=jsonschema.FormatChecker())
