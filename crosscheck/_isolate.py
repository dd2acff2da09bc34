"""Each case in a process of its own (``--isolate``): a crash costs one case, not the run.

Under ``crosscheck check --isolate`` and ``crosscheck run --isolate`` the command-line
process never runs the user's code. For each target, one process imports it and lists its
cases; then every case is checked in a fresh process of its own. The processes are started
with multiprocessing's ``spawn`` (a new interpreter that inherits nothing but its arguments,
the working folder and ``sys.path``), receive the target string, the case's position in it
and the command line's options, and send back the report's ``to_dict()`` -- plain data -- with
the per-element mismatch maps that ``to_dict()`` leaves out and the HTML heat-maps draw. The
parent rebuilds the :class:`~crosscheck.Report` from them (:func:`rebuild`), so every
renderer and the run file see what an in-process run would give.

A process that dies without sending a result -- killed by a signal (SIGSEGV from compiled
code, SIGKILL from the out-of-memory killer) or exiting on its own (``os._exit``) -- makes
that case "could not check", the signal named: ``the case's process was killed by SIGKILL``.
Ctrl-C is the parent's to handle: the worker ignores SIGINT, and the parent kills it.

Cost: a new interpreter per target and per case, which imports numpy (and jax, torch when
the oracles ask for them) again each time -- measured on the reference nets, about 0.6 s
more per case with centered differences alone and 2 s with jax and torch; jax's
compilations are not shared between cases.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import signal
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

from ._errors import CheckError

EXIT_GRACE = 10.0   # seconds a worker that sent its result gets to exit before it is killed
# what usually sends each signal, for the message
WHY = {
    "SIGKILL": "the out-of-memory killer sends it, as does `kill -9`",
    "SIGSEGV": "a crash in compiled code: numpy, jax, torch or an extension module",
    "SIGBUS": "a crash in compiled code, or a memory-mapped file that went away",
    "SIGABRT": "compiled code aborted (a failed internal assertion)",
    "SIGFPE": "a fatal arithmetic error in compiled code",
}


@dataclass(frozen=True)
class Listed:
    """A case a worker found: its label and source, as :class:`crosscheck._targets.Target`
    has them, and where to find it again (the target string, its position there)."""

    label: str
    source: str
    spec: str
    index: int


def death(exitcode: Optional[int], who: str = "the case's process") -> str:
    """Why a worker ended without a result, in words."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = WHY.get(name)
        return f"{who} was killed by {name}" + (f" ({why})" if why else "")
    return (f"{who} exited with status {exitcode} without a result (did the code call "
            f"`os._exit`?)")


def list_cases(spec: str, base=None) -> list:
    """The cases target ``spec`` names, as :class:`Listed`, found in a process of its own.

    Raises:
        CheckError: the target cannot be loaded (as :func:`crosscheck._targets.load` says),
            or the process importing it died.
    """
    found = _spawn(f"target `{spec}`: ", "the process importing it", _list, spec, base)
    return [Listed(label, source, spec, index) for index, (label, source) in enumerate(found)]


def check_case(listed: Listed, cli: argparse.Namespace, base=None,
               defaults: Optional[Mapping] = None, dask: Optional[str] = None):
    """The :class:`~crosscheck.Report` of one case, checked in a process of its own.

    ``cli`` holds the command line's ``oracles``, ``seed`` and ``fd``; ``defaults`` the
    suite's options (no executor: ``dask`` is the address of a scheduler to connect to).

    Raises:
        CheckError: the case could not be checked (its message as in-process), or its
            process died (the signal named).
    """
    data, mismatch = _spawn("", "the case's process", _check, listed, cli, base,
                            dict(defaults or {}), dask)
    return rebuild(data, mismatch)


def rebuild(data: Mapping, mismatch: Optional[Mapping] = None):
    """A :class:`~crosscheck.Report` from its ``to_dict()`` (and the blocks' mismatch maps).

    Fields are matched by name, so ``rebuild(d).to_dict() == d``; what ``to_dict()`` leaves
    out besides ``mismatch`` (the hand-written and reference arrays) stays ``None``/empty:
    no renderer reads them.
    """
    from ._report import Block, Diagnosis, OracleInfo, Report

    def make(cls, values: Mapping, **extra):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names}, **extra)

    mismatch = mismatch or {}
    blocks = {}
    for name, b in data["blocks"].items():
        diagnosis = make(Diagnosis, b["diagnosis"]) if b.get("diagnosis") else None
        blocks[name] = make(Block, {**b, "shape": tuple(b["shape"]), "diagnosis": diagnosis,
                                    "mismatch": mismatch.get(name)}, name=name)
    oracles = {name: make(OracleInfo, o, name=name) for name, o in data["oracles"].items()}
    return make(Report, {**data, "blocks": blocks, "oracles": oracles})


# --------------------------------------------------------------------------- the workers

def _list(spec: str, base) -> list:
    from ._targets import load
    return [(t.label, t.source) for t in load(spec, base=base)]


def _check(listed: Listed, cli: argparse.Namespace, base, defaults: dict,
           dask: Optional[str]) -> tuple:
    from ._check import check
    from ._cli import _options, dask_executor
    from ._targets import load
    found = load(listed.spec, base=base)
    if listed.index >= len(found) or found[listed.index].label != listed.label:
        raise CheckError(f"target `{listed.spec}` named other cases when imported again "
                         f"(case {listed.index + 1} was `{listed.label}`); under --isolate "
                         f"a target must name the same cases every time it is imported.")
    target = found[listed.index]
    case = target.case
    with dask_executor(dask) as executor:
        options = _options(cli, case.options, {**defaults, **({"executor": executor}
                                                              if executor else {})})
        report = check(case.loss, case.grad, case.params, *case.args, case=target.label,
                       **options)
    return report.to_dict(), {name: b.mismatch for name, b in report.blocks.items()}


def _serve(conn, function: Callable, args: tuple) -> None:
    """In the worker: run ``function(*args)``, send ``("ok", result)`` or ``("error", why)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
    from ._cli import case_error
    try:
        message: tuple = ("ok", function(*args))
    except KeyboardInterrupt:   # pragma: no cover - SIGINT is ignored here
        raise
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: every end is an answer
        message = ("error", case_error(exc))
    conn.send(message)
    conn.close()


def _spawn(prefix: str, who: str, function: Callable, *args: Any) -> Any:
    """``function(*args)`` in a spawned process; its result, or :class:`CheckError`."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(send, function, args),
                              name="crosscheck-isolate")
    process.start()
    send.close()   # the worker holds the only writing end: its death ends recv()
    try:
        try:
            message = receive.recv()
        except EOFError:
            message = None
        process.join(EXIT_GRACE if message is not None else None)
    except BaseException:   # Ctrl-C in the parent: the worker goes with it
        process.kill()
        process.join()
        raise
    finally:
        receive.close()
        if process.is_alive():   # sent its result but hangs on the way out
            process.kill()
            process.join()
    if message is None:
        raise CheckError(prefix + death(process.exitcode, who))
    kind, value = message
    if kind == "error":   # already worded as in-process (load's errors name the target)
        raise CheckError(value)
    return value
