"""The command line: ``crosscheck check TARGET…``, ``crosscheck run``, ``crosscheck compare``.

``check`` and ``run`` exit 0 when every block agrees, 1 when some block is flagged, 2 when a
case could not be checked (bad target, bad input). ``compare`` exits 1 when something fails
that did not before, 0 otherwise, 2 on unreadable input. Neither jax nor torch is imported
before a check needs it; matplotlib only when an HTML report is written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import sys
import time
from pathlib import Path

from ._errors import CheckError
from ._run_comparison import SLOWER_RATIO, SLOWER_SECONDS
from ._run_file import Outcome, summary
from ._suite import Suite, parse_fd

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2
CONNECT_TIMEOUT = 10   # seconds to reach a Dask scheduler given with --dask


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosscheck",
        description="Check hand-written numpy gradients against centered differences, "
                    "jax.grad and torch.autograd, block by block.")
    sub = parser.add_subparsers(dest="command", required=True)
    chk = sub.add_parser(
        "check", help="check the cases named by TARGETs",
        description="Check cases. TARGET is path/to/file.py:NAME or module:NAME naming a "
                    "crosscheck.Case, an iterable of Cases, or a zero-argument callable "
                    "returning either. Exit 0: all agree; 1: a block is flagged; 2: could "
                    "not check.")
    chk.add_argument("targets", nargs="+", metavar="TARGET")
    _common(chk, "write the report(s) as JSON (schema crosscheck.report/1; a list when "
                 "there are several)")
    run = sub.add_parser(
        "run", help="check the suite declared in pyproject.toml",
        description="Check every case of the suite in the [tool.crosscheck] table of "
                    "pyproject.toml (cases, and optionally oracles, seed, fd, tolerances); "
                    "TARGETs given on the command line replace the suite's cases. Exit 0: "
                    "all agree; 1: a block is flagged; 2: a case could not be checked.")
    run.add_argument("targets", nargs="*", metavar="TARGET")
    run.add_argument("--config", metavar="FILE", default=None,
                     help="the pyproject.toml to read (default: ./pyproject.toml); case "
                          "paths are relative to its folder")
    _common(run, "write the run as JSON (schema crosscheck.run/1: metadata and every "
                 "report), for `crosscheck compare`")
    cmp = sub.add_parser(
        "compare", help="compare two runs' JSON files",
        description="Compare two runs (written by `run --json`, or `check --json` output): "
                    "new failures, fixes, changed diagnoses, added and removed cases, and "
                    "oracles that became much slower. Exit 1 when something fails that did "
                    "not before, 0 otherwise, 2 when a file cannot be read.")
    cmp.add_argument("old", metavar="OLD.json")
    cmp.add_argument("new", metavar="NEW.json")
    cmp.add_argument("--markdown", metavar="FILE", help="also write the comparison as Markdown")
    cmp.add_argument("--slower-ratio", type=float, default=SLOWER_RATIO, metavar="R",
                     help=f"an oracle counts as slower when its time grew more than R times "
                          f"(default {SLOWER_RATIO:g}) ...")
    cmp.add_argument("--slower-seconds", type=float, default=SLOWER_SECONDS, metavar="S",
                     help=f"... and by more than S seconds (default {SLOWER_SECONDS:g})")
    return parser


def _fd_arg(text: str):
    try:
        return parse_fd(text, "--fd")
    except CheckError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _common(p: argparse.ArgumentParser, json_help: str) -> None:
    p.add_argument("--json", metavar="FILE", help=json_help)
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one testcase per case")
    p.add_argument("--markdown", metavar="FILE",
                   help="write a Markdown summary (fit for $GITHUB_STEP_SUMMARY)")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML report with "
                   "charts (charts need matplotlib)")
    p.add_argument("--oracles", metavar="LIST", default=None,
                   help="comma-separated references among fd,jax,torch (default: all three)")
    p.add_argument("--seed", type=int, default=None, help="seed for random choices (default 0)")
    p.add_argument("--fd", metavar="MODE", default=None, type=_fd_arg,
                   help="centered-difference coverage: auto (default), all, or N elements "
                        "sampled per block")
    p.add_argument("--dask", metavar="ADDRESS", default=None,
                   help="evaluate centered differences on a Dask cluster: a scheduler address "
                        "(tcp://host:8786) or `local` for a LocalCluster sized to this machine")
    p.add_argument("--quiet", action="store_true", help="print only the headline per case")


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
    try:
        yield client
    finally:
        client.close()


def run_targets(targets, ns, out=None, err=None, *, base=None, defaults=None) -> tuple:
    """Check every case; a failing or crashing case never stops the others.

    Args:
        targets: target strings (``path/to/file.py:NAME`` or ``module:NAME``).
        ns: the parsed command line (``oracles``, ``seed``, ``quiet``).
        out, err: streams for the tables and the errors (default: stdout, stderr).
        base: the folder relative target paths start from (default: the current one).
        defaults: options for every case (a suite's ``oracles``, ``seed``, ``tolerances``).

    Returns:
        ``(exit code, outcomes)``: one :class:`crosscheck._run_file.Outcome` per case, which
        unpacks as ``(target or label, report or None, error or None)``.
    """
    from ._check import check
    from ._render_text import headline, print_report
    from ._targets import load

    out = out or sys.stdout
    err = err or sys.stderr
    results = []
    for spec in targets:
        start = time.perf_counter()
        try:
            found = load(spec, base=base)
        except CheckError as exc:
            print(f"crosscheck: {exc}", file=err)
            results.append(Outcome(spec, None, str(exc), time.perf_counter() - start))
            continue
        for target in found:
            case = target.case
            start = time.perf_counter()
            try:
                report = check(case.loss, case.grad, case.params, *case.args,
                               case=target.label, **_options(ns, case.options, defaults))
            except CheckError as exc:
                print(f"crosscheck: {target.label}: {exc}", file=err)
                results.append(Outcome(target, None, str(exc), time.perf_counter() - start))
                continue
            except Exception as exc:  # noqa: BLE001 - a crashing case never stops the others
                print(f"crosscheck: {target.label}: {type(exc).__name__}: {exc}", file=err)
                results.append(Outcome(target, None, f"{type(exc).__name__}: {exc}",
                                       time.perf_counter() - start))
                continue
            if ns.quiet:
                print(headline(report), file=out)
            else:
                print_report(report, out)
                print(file=out)
            results.append(Outcome(target, report, None, time.perf_counter() - start))
    errors = sum(1 for _, r, _ in results if r is None)
    flagged = sum(1 for _, r, _ in results if r is not None and not r.ok)
    code = EXIT_ERROR if errors else EXIT_FLAGGED if flagged else EXIT_OK
    return code, results


def _check_json(results) -> str:
    """``check --json``: a report dict for one case, a list for several."""
    items = []
    for target, report, error in results:
        if report is not None:
            items.append(report.to_dict())
        else:
            label = getattr(target, "label", target)
            items.append({"schema": "crosscheck.report/1", "case": label, "error": error})
    return json.dumps(items[0] if len(items) == 1 else items, indent=2)


def _write(path: str, text: str) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def _write_outputs(ns, results, title: str, meta, json_text) -> int:
    """Write every output the command line asked for; 2 when one cannot be written."""
    jobs = []
    if ns.json:
        jobs.append((ns.json, json_text))
    if ns.junit:
        from ._render_junit import render_junit
        jobs.append((ns.junit, lambda: render_junit(results)))
    if ns.markdown:
        from ._render_markdown import render_markdown
        jobs.append((ns.markdown, lambda: render_markdown(results, title=title, metadata=meta)))
    if ns.html:
        from ._render_html import render_page
        jobs.append((ns.html, lambda: render_page(results, title=title, metadata=meta)))
    for path, render in jobs:
        try:
            _write(path, render())
        except OSError as exc:
            print(f"crosscheck: cannot write `{path}`: {exc.strerror or exc}.", file=sys.stderr)
            return EXIT_ERROR
    return EXIT_OK


def _finish(code: int, results, write_code: int) -> int:
    print(f"crosscheck: {summary(results)}")
    return max(code, write_code)


def _cmd_check(ns, command: str) -> int:
    from ._run_file import metadata
    try:
        with dask_executor(ns.dask) as executor:
            code, results = run_targets(ns.targets, ns,
                                        defaults={"executor": executor} if executor else None)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    meta = metadata(command) if (ns.markdown or ns.html) else None
    written = _write_outputs(ns, results, "crosscheck check", meta, lambda: _check_json(results))
    return _finish(code, results, written)


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
    defaults = {}
    if suite.oracles:
        defaults["oracles"] = suite.oracles
    if suite.seed is not None:
        defaults["seed"] = suite.seed
    if suite.tolerances:
        defaults["tolerances"] = suite.tolerances
    if suite.fd is not None:
        defaults["fd"] = suite.fd
    try:
        with dask_executor(ns.dask) as executor:
            if executor:
                defaults["executor"] = executor
            if ns.targets:
                code, results = run_targets(ns.targets, ns, defaults=defaults)
            else:
                code, results = run_targets(suite.cases, ns, base=suite.base,
                                            defaults=defaults)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    doc = run_document(results, command, suite)
    written = _write_outputs(ns, results, "crosscheck run", doc["metadata"],
                             lambda: json.dumps(doc, indent=2))
    return _finish(code, results, written)


def _cmd_compare(ns) -> int:
    from ._render_comparison import render_comparison
    from ._run_comparison import compare_runs
    from ._run_file import read_run
    try:
        if ns.slower_ratio < 1 or ns.slower_seconds < 0:
            raise CheckError(f"--slower-ratio must be at least 1 and --slower-seconds at "
                             f"least 0, got {ns.slower_ratio:g} and {ns.slower_seconds:g}.")
        old, new = read_run(ns.old), read_run(ns.new)
    except CheckError as exc:
        print(f"crosscheck: {exc}", file=sys.stderr)
        return EXIT_ERROR
    result = compare_runs(old, new, slower_ratio=ns.slower_ratio,
                          slower_seconds=ns.slower_seconds)
    print(render_comparison(result))
    if ns.markdown:
        from ._render_markdown import render_comparison_markdown
        try:
            _write(ns.markdown, render_comparison_markdown(result, ns.old, ns.new))
        except OSError as exc:
            print(f"crosscheck: cannot write `{ns.markdown}`: {exc.strerror or exc}.",
                  file=sys.stderr)
            return EXIT_ERROR
    return EXIT_FLAGGED if result.failed else EXIT_OK


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ns = _parser().parse_args(argv)
    command = shlex.join(["crosscheck", *argv])
    if ns.command == "check":
        return _cmd_check(ns, command)
    if ns.command == "run":
        return _cmd_run(ns, command)
    if ns.command == "compare":
        return _cmd_compare(ns)
    return EXIT_ERROR  # pragma: no cover - argparse requires a command
