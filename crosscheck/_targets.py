"""Finding the cases a command line names: ``path/to/file.py:NAME`` or ``module:NAME``."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from ._case import Case
from ._errors import CheckError


@dataclass
class Target:
    """One case found on the command line: ``label`` is ``<file or module>/<case name>``."""

    label: str
    case: Case
    source: str      # the file or module it came from (JUnit classname)


def _load_file(path: Path):
    directory = str(path.parent.resolve())
    if directory not in sys.path:
        sys.path.insert(0, directory)   # so the model's own sibling imports resolve
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:8]
    name = f"crosscheck_target_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:   # SystemExit and Ctrl-C too: never keep a half-run module
        del sys.modules[name]
        raise
    return module


def raised(exc: BaseException) -> str:
    """What user code did, in words: ``RuntimeError: boom``, or for ``sys.exit(0)``
    ``called sys.exit(0) at model.py:12`` -- an exit is not an answer, wherever it happens."""
    if isinstance(exc, SystemExit):
        where = ""
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            where = f" at {Path(last.filename).name}:{last.lineno}"
        return f"called sys.exit({exc.code!r}){where}"
    return f"raised {type(exc).__name__}: {exc}"


def _listed(module) -> list:
    """``(where, case)`` for every Case inside the module's lists and tuples, ``where`` as
    ``cases[1]``. Only lists and tuples: a generator would be used up, a callable run."""
    return [(f"{name}[{index}]", item) for name, value in vars(module).items()
            if not name.startswith("__") and isinstance(value, (list, tuple))
            for index, item in enumerate(value) if isinstance(item, Case)]


def _in_a_list(module, target: str, where: str, attr: str) -> Case:
    """The case named ``attr`` inside one of the module's lists, for ``models/rnn.py:correct``
    when the module defines only ``cases = [Case("correct", …), …]``.

    Raises:
        CheckError: no case has that name (the module's cases and lists named), or two
            different ones have (both places named).
    """
    listed = _listed(module)
    hits: dict = {}   # id(case) -> (place, case): one Case in two lists is still one case
    for place, case in listed:
        if case.name == attr:
            hits.setdefault(id(case), (place, case))
    if len(hits) > 1:
        places = [f"`{place}`" for place, _ in hits.values()]
        lists = sorted({place.split("[")[0] for place, _ in hits.values()})
        raise CheckError(f"target `{target}`: more than one case in `{where}` is named "
                         f"`{attr}`: {', '.join(places[:-1])} and {places[-1]}; give them "
                         f"distinct names, or name the whole list (`{where}:{lists[0]}`).")
    if hits:
        return next(iter(hits.values()))[1]
    found = sorted(k for k, v in vars(module).items() if isinstance(v, Case) or (k == "cases"))
    inside = sorted({case.name for _, case in listed} - set(found))
    parts = ([", ".join(found)] if found else []) + (
        [f"in its lists, cases named {', '.join(inside)}"] if inside else [])
    hint = f" (it defines: {'; '.join(parts)})" if parts else ""
    raise CheckError(f"target `{target}`: `{where}` has no `{attr}`{hint}.")


def load(target: str, base: str | os.PathLike | None = None) -> list:
    """The cases a target names, as :class:`Target` objects.

    ``NAME`` is an attribute of the module (a Case, an iterable of Cases, or a zero-argument
    callable returning either); failing that, the name of one Case inside the module's lists
    or tuples (``rnn.py:correct`` when the module defines only ``cases = [...]``).

    Raises:
        CheckError: the file, module or name does not exist, or does not name cases; two
            cases in the module's lists share the name; or importing it or calling its
            factory raised or exited (``sys.exit``). Only ``KeyboardInterrupt`` passes
            through.
    """
    where, sep, attr = target.rpartition(":")
    if not sep or not where or not attr:
        raise CheckError(f"target `{target}` is not `path/to/file.py:NAME` or `module:NAME`.")
    try:
        if where.endswith(".py") or os.sep in where or "/" in where:
            path = Path(base or ".") / where
            if not path.is_file():
                raise CheckError(f"target `{target}`: no file `{path}`.")
            module, source, stem = _load_file(path), str(where), path.stem
        else:
            if str(Path(base or ".").resolve()) not in sys.path:
                sys.path.insert(0, str(Path(base or ".").resolve()))
            module, source, stem = importlib.import_module(where), where, where.rsplit(".", 1)[-1]
    except (CheckError, KeyboardInterrupt):
        raise
    except SystemExit as exc:
        raise CheckError(f"target `{target}`: importing it {raised(exc)}; a module that "
                         f"defines cases must not exit when imported: put its script part "
                         f"under `if __name__ == \"__main__\":`.") from exc
    except BaseException as exc:  # noqa: BLE001 - whatever the module raises is its answer
        raise CheckError(f"target `{target}`: importing it raised {type(exc).__name__}: "
                         f"{exc}") from exc
    if not hasattr(module, attr):
        case = _in_a_list(module, target, where, attr)
        return [Target(f"{stem}/{case.name}", case, source)]
    value = getattr(module, attr)
    if callable(value) and not isinstance(value, Case):
        try:
            value = value()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001
            raise CheckError(f"target `{target}`: calling `{attr}()` {raised(exc)}") from exc
    cases = [value] if isinstance(value, Case) else value
    try:
        cases = list(cases)
    except TypeError:
        cases = None
    if not cases or not all(isinstance(c, Case) for c in cases):
        raise CheckError(f"target `{target}`: `{attr}` is not a crosscheck.Case, an iterable "
                         f"of Cases, or a zero-argument callable returning either.")
    return [Target(f"{stem}/{c.name}", c, source) for c in cases]
