"""The suite: the ``[tool.crosscheck]`` table of a ``pyproject.toml``, validated once.

::

    [tool.crosscheck]
    cases = ["reference/seed_net.py:correct", "reference/seed_net.py:buggy"]
    oracles = ["fd", "torch"]          # optional; default: every oracle
    seed = 0                           # optional
    fd = "auto"                        # optional: "auto", "all" or elements sampled per block
    tolerances = {fd_safety = 8.0}     # optional; merged into check's `tolerances=`

A case is any target ``crosscheck check`` takes: a layer's too (``Case.layer``, e.g.
``"reference/layers.py:affine/buggy"``, found by its name in the module's ``cases``).
``crosscheck run`` checks every case with these options. The table is read and checked here,
at the door, so that a typo (``case =``, ``fd_safty``) is an error naming the key and the
file, never an option silently ignored a night long.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ._errors import CheckError

SUITE_KEYS = ("cases", "oracles", "seed", "tolerances", "fd")


@dataclass
class Suite:
    """The ``[tool.crosscheck]`` table of one ``pyproject.toml``, validated.

    ``base`` is the folder the case paths are relative to (the ``pyproject.toml``'s own).
    """

    cases: list = field(default_factory=list)
    oracles: Optional[list] = None
    seed: Optional[int] = None
    tolerances: dict = field(default_factory=dict)
    fd: Any = None
    base: Path = Path(".")
    path: Optional[Path] = None

    def to_dict(self) -> dict:
        return {"config": str(self.path) if self.path else None, "cases": self.cases,
                "oracles": self.oracles, "seed": self.seed, "tolerances": self.tolerances,
                "fd": self.fd}


def _toml():
    # The `tomli` fallback serves Python 3.10, which pyproject.toml still supports (and for
    # which it still installs `tomli`); drop it together with 3.10.
    try:
        import tomllib
    except ImportError:
        try:
            import tomli as tomllib
        except ImportError:
            raise CheckError("reading `pyproject.toml` needs Python 3.11 or later, or the "
                             "`tomli` package on older Pythons: `pip install tomli`.") from None
    return tomllib


def load_suite(path) -> Suite:
    """Read and validate the ``[tool.crosscheck]`` table of the ``pyproject.toml`` at ``path``.

    A file without the table gives an empty :class:`Suite` (no cases, no options).

    Raises:
        CheckError: the file cannot be read, is not TOML, or the table is malformed.
    """
    path = Path(path)
    tomllib = _toml()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CheckError(f"cannot read `{path}`: {exc.strerror or exc}.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise CheckError(f"`{path}` is not valid TOML: {exc}.") from exc
    table = data.get("tool", {}).get("crosscheck", {})
    where = f"`[tool.crosscheck]` in `{path}`"
    if not isinstance(table, dict):
        raise CheckError(f"{where} must be a table, e.g. `cases = [\"model.py:correct\"]`.")
    unknown = sorted(set(table) - set(SUITE_KEYS))
    if unknown:
        raise CheckError(f"{where} has unknown key(s) {', '.join(f'`{k}`' for k in unknown)}; "
                         f"known keys: {', '.join(SUITE_KEYS)}.")
    suite = Suite(base=path.parent, path=path)
    cases = table.get("cases", [])
    if not isinstance(cases, list) or not all(isinstance(c, str) and c for c in cases):
        raise CheckError(f"{where}: `cases` must be a list of targets such as "
                         f"`\"reference/seed_net.py:correct\"`, got {cases!r}.")
    suite.cases = list(cases)
    if "oracles" in table:
        suite.oracles = _oracles(table["oracles"], where)
    if "seed" in table:
        seed = table["seed"]
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise CheckError(f"{where}: `seed` must be a non-negative integer, got {seed!r}.")
        suite.seed = seed
    if "fd" in table:
        suite.fd = parse_fd(table["fd"], where)
    tolerances = table.get("tolerances", {})
    if not isinstance(tolerances, dict):
        raise CheckError(f"{where}: `tolerances` must be a table such as "
                         f"`{{fd_safety = 8.0}}`, got {tolerances!r}.")
    from ._tolerances import merged
    try:
        merged(tolerances)
    except CheckError as exc:
        raise CheckError(f"{where}: {exc}") from exc
    suite.tolerances = dict(tolerances)
    return suite


def parse_fd(value: Any, where: str) -> Any:
    """``"auto"``, ``"all"`` or a positive int (also from a command-line string): the rule
    ``check()`` applies, with the suite's or the command line's place named."""
    from ._prepare import validate_fd
    return validate_fd(value, where)


def _oracles(value: Any, where: str) -> list:
    from ._prepare import validate_oracles
    return list(validate_oracles(value, where))
