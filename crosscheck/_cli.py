"""The command line: ``crosscheck check TARGET…``, ``crosscheck run``, ``crosscheck compare``.

``check`` and ``run`` exit 0 when every case agrees (every block vouched for), 1 when some
block is flagged, 2 when a case could not be checked (bad target, bad input, user code that
raised or exited, a worker that died under ``--isolate``), 3 when no block is flagged but some
case is inconclusive (``--allow-inconclusive`` makes that 0), 130 when interrupted (Ctrl-C;
the finished cases are saved), 143 when terminated (SIGTERM, taken like Ctrl-C). When several
apply, the gravest wins: 2, then 1, then 3.
``--json FILE`` is rewritten after every case, marked ``partial`` until the run ends, so a run
killed outright leaves every finished case on disk. ``compare`` exits 1 when something fails
that did not before, 3 when nothing does but a case is newly inconclusive, 0 otherwise, 2 on
unreadable input or a new run that stopped early (its missing cases were not run). Neither jax nor torch is imported before a check needs it; matplotlib only
when an HTML report is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from pathlib import Path

from ._cli_args import EXIT_ERROR, EXIT_FLAGGED, EXIT_INCONCLUSIVE, EXIT_OK, exit_code, parser
from ._cli_outputs import (check_json, finish, interrupted, interrupted_code, journal,
                           sigterm_as_interrupt, stdout_outputs, write, write_outputs)
from ._errors import CheckError
from ._run_file import Outcome
from ._suite import Suite

CONNECT_TIMEOUT = 10   # seconds to reach a Dask scheduler given with --dask


def _options(ns, case_options: dict, defaults: dict | None = None) -> dict:
    """Case options, then the suite's defaults, then the command line's, each overriding."""
    options = dict(case_options)
    for key, value in (defaults or {}).items():
        if key == "tolerances":
            options[key] = {**(options.get(key) or {}), **value}
        else:
            options[key] = value
    if ns.oracles:
        options["oracles"] = [o.strip() for o in ns.oracles.split(",") if o.strip()]
    if ns.seed is not None:
        options["seed"] = ns.seed
    if getattr(ns, "fd", None) is not None:
        options["fd"] = ns.fd
    return options


@contextlib.contextmanager
def dask_executor(address):
    """A Dask client for ``--dask``: ``local`` starts a LocalCluster, else connects."""
    if not address:
        yield None
        return
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise CheckError("--dask needs dask's distributed scheduler: "
                         "`pip install 'crosscheck-grad[dask]'`.") from exc
    if address == "local":
        from ._cluster import local_cluster
        cluster, client = local_cluster()
        try:
            yield client
        finally:
            client.close()
            cluster.close()
        return
    from distributed import Client
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except OSError as exc:
        raise CheckError(f"--dask {address}: cannot reach the scheduler ({exc}); start one "
                         f"with `dask scheduler` or use `--dask local`.") from exc
    except (ValueError, TypeError) as exc:   # an address distributed cannot parse
        raise CheckError(f"--dask {address!r} is not a scheduler address ({exc}); pass one "
                         f"such as `tcp://host:8786`, or `local`.") from exc
    try:
        yield client
    finally:
        client.close()


def case_error(exc: BaseException) -> str:
    """Why a case could not be checked, from what checking it raised: any exception of the
    user's code, ``SystemExit`` included (an exit is not an answer)."""
    from ._targets import raised
    if isinstance(exc, CheckError):
        return str(exc)
    if isinstance(exc, SystemExit):
        return (f"the case's code {raised(exc)}; a loss or gradient must return a value or "
                f"raise, not end the process.")
    return f"{type(exc).__name__}: {exc}"


class RunState:
    """A run as it goes: the outcomes so far, what is in hand, what is still to come.

    ``save(state)``, when given, is called as each target is imported and each case begins
    and ends; the command line's keeps ``--json FILE`` up to date (:func:`_journal`), so a
    file left behind by a killed run names the case that was running. After Ctrl-C the
    state still holds every finished case.
    """

    def __init__(self, targets, save=None):
        self.results: list = []                 # Outcomes, in the order they finished
        self.current = None                     # the case being checked (or target imported)
        self.not_run: list = []                 # labels of cases found, not checked yet
        self.not_loaded: list = list(targets)   # targets not imported yet
        self._save = save

    def saved(self) -> None:
        if self._save is not None:
            self._save(self)

    def begin(self, current: str) -> None:
        self.current = current
        self.saved()

    def done(self, outcome) -> None:
        self.results.append(outcome)
        self.current = None
        self.saved()

    def counted(self) -> str:
        """``2 of 5``; ``2 of at least 4`` while some targets are not imported yet."""
        total = len(self.results) + len(self.not_run) + len(self.not_loaded)
        return f"{len(self.results)} of {'at least ' if self.not_loaded else ''}{total}"


def _in_process(ns, base, defaults) -> tuple:
    """``(find, check)`` running the user's code here."""
    from ._check import check
    from ._targets import load

    def check_target(target):
        case = target.case
        return check(case.loss, case.grad, case.params, *case.args, case=target.label,
                     **_options(ns, case.options, defaults))
    return (lambda spec: load(spec, base=base)), check_target


def _isolated(ns, base, defaults) -> tuple:
    """``(find, check)`` running the user's code in processes of their own (``--isolate``)."""
    from . import _isolate
    defaults = dict(defaults or {})
    executor = defaults.pop("executor", None)   # a Dask client: its workers connect anew
    dask = executor.scheduler.address if executor is not None else None
    cli = argparse.Namespace(oracles=ns.oracles, seed=ns.seed, fd=getattr(ns, "fd", None))
    return ((lambda spec: _isolate.list_cases(spec, base)),
            (lambda listed: _isolate.check_case(listed, cli, base, defaults, dask)))


def selected(found: list, pattern) -> list:
    """The cases ``-k PATTERN`` keeps: those whose label contains it, ignoring case."""
    if pattern is None:
        return list(found)
    return [target for target in found if pattern.casefold() in target.label.casefold()]


def _no_match(pattern: str, labels: list) -> str:
    shown = ", ".join(labels[:10]) + (", …" if len(labels) > 10 else "")
    among = f"none of the {len(labels)} case(s) found ({shown})" if labels else "no case"
    return (f"-k `{pattern}` matched {among}; it keeps the cases whose label "
            f"(`file/case`) contains it, ignoring case.")


def _show(outcome, ns, out, err) -> None:
    """One finished case on the terminal: its error, its headline (--quiet) or its table."""
    from ._render_text import headline, print_report
    if outcome.error is not None:
        print(f"crosscheck: {outcome.label}: {outcome.error}", file=err)
    elif ns.quiet:
        print(headline(outcome.report), file=out)
    else:
        print_report(outcome.report, out)
        print(file=out)


def _check_all(found, check_target, state: RunState, show) -> None:
    """Check each found case in turn; a crash or exit is the case's answer, never the run's."""
    state.not_run = [target.label for target in found]
    for target in found:
        state.begin(target.label)
        start = time.perf_counter()
        try:
            report, error = check_target(target), None
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a case's crash or exit is its answer
            report, error = None, case_error(exc)
        state.not_run.pop(0)
        outcome = Outcome(target, report, error, time.perf_counter() - start)
        state.done(outcome)  # saved
        show(outcome)


def run_targets(targets, ns, out=None, err=None, *, base=None, defaults=None,
                state: RunState | None = None) -> tuple:
    """Check every case; a failing, crashing or exiting case never stops the others.

    Args:
        targets: target strings (``path/to/file.py:NAME`` or ``module:NAME``).
        ns: the parsed command line (``oracles``, ``seed``, ``quiet``, ``isolate``,
            ``select`` (``-k``), ``allow_inconclusive``).
        out, err: streams for the tables and the errors (default: stdout, stderr).
        base: the folder relative target paths start from (default: the current one).
        defaults: options for every case (a suite's ``oracles``, ``seed``, ``tolerances``).
        state: a :class:`RunState` made with the same ``targets``, kept up to date (and
            saved) as cases finish; Ctrl-C (``KeyboardInterrupt``) propagates, and leaves
            the finished cases there.

    Returns:
        ``(exit code, outcomes)``: one :class:`crosscheck._run_file.Outcome` per case, which
        unpacks as ``(target or label, report or None, error or None)``; the code is
        :func:`exit_code`'s, or 2 when ``-k`` matched no case.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    state = state if state is not None else RunState(targets)
    find, check_target = (_isolated if getattr(ns, "isolate", False) else _in_process)(
        ns, base, defaults)
    pattern, labels, kept = getattr(ns, "select", None), [], 0
    while state.not_loaded:
        spec = state.not_loaded[0]
        state.begin(spec)
        start = time.perf_counter()
        try:
            found = find(spec)
        except CheckError as exc:
            print(f"crosscheck: {exc}", file=err)
            state.not_loaded.pop(0)
            state.done(Outcome(spec, None, str(exc), time.perf_counter() - start))
            continue
        state.not_loaded.pop(0)
        labels += [target.label for target in found]
        found = selected(found, pattern)
        kept += len(found)
        _check_all(found, check_target, state, lambda o: _show(o, ns, out, err))
    code = exit_code(state.results, getattr(ns, "allow_inconclusive", False))
    if pattern is not None and not kept and (labels or not state.results):
        # (when no target loaded, their errors say why no case matched: nothing to add)
        from ._render_text import visible   # a pattern or label may hold terminal escapes
        print(f"crosscheck: {visible(_no_match(pattern, labels))}", file=err)
        code = EXIT_ERROR
    return code, state.results


def _cmd_check(ns, command: str) -> int:
    from ._run_file import metadata
    human = sys.stderr if stdout_outputs(ns) else None   # `--json -`: stdout is the JSON's
    state = RunState(ns.targets, journal(ns, command))
    try:
        with dask_executor(ns.dask) as executor:
            code, results = run_targets(ns.targets, ns, out=human, state=state,
                                        defaults={"executor": executor} if executor else None)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        return interrupted(ns, state, "crosscheck check", command, exc=exc)
    meta = metadata(command) if (ns.markdown or ns.html) else None
    written = write_outputs(ns, results, "crosscheck check", meta, lambda: check_json(results))
    return finish(code, results, written, human)


def resolve_suite(config, targets) -> Suite:
    """The suite to run: ``config`` (default ``./pyproject.toml``) read if it exists.

    Raises:
        CheckError: a named config is missing, the table is malformed, or there is nothing
            to run (no targets given and no cases declared).
    """
    from ._suite import load_suite
    path = Path(config or "pyproject.toml")
    if path.is_file():
        suite = load_suite(path)
    elif config:
        raise CheckError(f"no file `{path}`; pass the pyproject.toml that holds the "
                         f"`[tool.crosscheck]` table.")
    else:
        suite = Suite()
    if not targets and not suite.cases:
        where = f"`{path}`" if path.is_file() else f"no `pyproject.toml` in {Path.cwd()}"
        raise CheckError(
            f"nothing to run: {where} declares no cases. Add a `[tool.crosscheck]` table "
            f"with `cases = [\"path/to/model.py:NAME\"]` to pyproject.toml, or name "
            f"TARGETs: `crosscheck run path/to/model.py:NAME`.")
    return suite


def _cmd_run(ns, command: str) -> int:
    from ._run_file import run_document
    try:
        suite = resolve_suite(ns.config, ns.targets)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    human = sys.stderr if stdout_outputs(ns) else None   # `--json -`: stdout is the JSON's
    defaults = {}
    if suite.oracles:
        defaults["oracles"] = suite.oracles
    if suite.seed is not None:
        defaults["seed"] = suite.seed
    if suite.tolerances:
        defaults["tolerances"] = suite.tolerances
    if suite.fd is not None:
        defaults["fd"] = suite.fd
    targets = ns.targets or suite.cases
    state = RunState(targets, journal(ns, command, suite))
    try:
        with dask_executor(ns.dask) as executor:
            if executor:
                defaults["executor"] = executor
            if ns.targets:
                code, results = run_targets(ns.targets, ns, out=human, defaults=defaults,
                                            state=state)
            else:
                code, results = run_targets(suite.cases, ns, out=human, base=suite.base,
                                            defaults=defaults, state=state)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        return interrupted(ns, state, "crosscheck run", command, suite, exc=exc)
    doc = run_document(results, command, suite)
    written = write_outputs(ns, results, "crosscheck run", doc["metadata"],
                             lambda: json.dumps(doc, indent=2))
    return finish(code, results, written, human)


def _cmd_compare(ns) -> int:
    from ._render_comparison import render_comparison
    from ._run_comparison import compare_runs
    from ._run_file import read_run, stopped_early
    try:
        if ns.slower_ratio < 1 or ns.slower_seconds < 0:
            raise CheckError(f"--slower-ratio must be at least 1 and --slower-seconds at "
                             f"least 0, got {ns.slower_ratio:g} and {ns.slower_seconds:g}.")
        old, new = read_run(ns.old), read_run(ns.new)
        result = compare_runs(old, new, slower_ratio=ns.slower_ratio,
                              slower_seconds=ns.slower_seconds, stopped=stopped_early(ns.new))
        text = render_comparison(result)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - exit 1 means "new failure": a crash must not say it
        print(f"crosscheck: cannot compare `{ns.old}` with `{ns.new}`: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(text)
    if ns.markdown:
        from ._render_markdown import render_comparison_markdown
        try:
            write(ns.markdown, render_comparison_markdown(result, ns.old, ns.new))
        except OSError as exc:
            print(f"crosscheck: cannot write `{ns.markdown}`: {exc.strerror or exc}.",
                  file=sys.stderr)
            return EXIT_ERROR
    if result.not_run:   # cases the new run never reached: nothing can be said of them
        return EXIT_ERROR
    if result.failed:
        return EXIT_FLAGGED
    return EXIT_INCONCLUSIVE if result.unvouched and not ns.allow_inconclusive else EXIT_OK


def main(argv=None) -> int:
    try:
        with sigterm_as_interrupt():
            return _main(argv)
    except KeyboardInterrupt as exc:   # outside a run's cases (those are saved): no traceback
        code, word = interrupted_code(exc)
        print(f"crosscheck: {word}.", file=sys.stderr)
        return code


def _main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = parser()
    ns = arguments.parse_args(argv)
    if len(stdout_outputs(ns)) > 1:
        arguments.error(f"only one output can go to standard output, got `-` for "
                     f"{' and '.join(stdout_outputs(ns))}.")
    command = shlex.join(["crosscheck", *argv])
    if ns.command == "check":
        return _cmd_check(ns, command)
    if ns.command == "run":
        return _cmd_run(ns, command)
    if ns.command == "compare":
        return _cmd_compare(ns)
    return EXIT_ERROR  # pragma: no cover - argparse requires a command
