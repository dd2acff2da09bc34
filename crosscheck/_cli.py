"""The command line: ``crosscheck check TARGET…``.

Exit status: 0 every block agrees, 1 some block flagged, 2 could not check (bad target,
bad input). Neither jax nor torch is imported before a check needs it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._errors import CheckError

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2


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
    _common(chk)
    return parser


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", metavar="FILE", help="write the report(s) as JSON "
                   "(schema crosscheck.report/1; a list when there are several)")
    p.add_argument("--oracles", metavar="LIST", default=None,
                   help="comma-separated references among fd,jax,torch (default: all three)")
    p.add_argument("--seed", type=int, default=None, help="seed for random choices (default 0)")
    p.add_argument("--quiet", action="store_true", help="print only the headline per case")


def _options(ns, case_options: dict) -> dict:
    options = dict(case_options)
    if ns.oracles:
        options["oracles"] = [o.strip() for o in ns.oracles.split(",") if o.strip()]
    if ns.seed is not None:
        options["seed"] = ns.seed
    return options


def run_targets(targets, ns, out=sys.stdout, err=sys.stderr) -> tuple:
    """Check every case; return ``(exit code, results)`` where results are
    ``(target or label, report or None, error or None)``."""
    from ._check import check
    from ._render_text import headline, print_report
    from ._targets import load

    results = []
    for spec in targets:
        try:
            found = load(spec)
        except CheckError as exc:
            print(f"crosscheck: {exc}", file=err)
            results.append((spec, None, str(exc)))
            continue
        for target in found:
            case = target.case
            try:
                report = check(case.loss, case.grad, case.params, *case.args,
                               case=target.label, **_options(ns, case.options))
            except CheckError as exc:
                print(f"crosscheck: {target.label}: {exc}", file=err)
                results.append((target, None, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a crashing case never stops the others
                print(f"crosscheck: {target.label}: {type(exc).__name__}: {exc}", file=err)
                results.append((target, None, f"{type(exc).__name__}: {exc}"))
                continue
            if ns.quiet:
                print(headline(report), file=out)
            else:
                print_report(report, out)
                print(file=out)
            results.append((target, report, None))
    errors = sum(1 for _, r, _ in results if r is None)
    flagged = sum(1 for _, r, _ in results if r is not None and not r.ok)
    code = EXIT_ERROR if errors else EXIT_FLAGGED if flagged else EXIT_OK
    return code, results


def _write_json(path: str, results) -> None:
    items = []
    for target, report, error in results:
        if report is not None:
            items.append(report.to_dict())
        else:
            label = getattr(target, "label", target)
            items.append({"schema": "crosscheck.report/1", "case": label, "error": error})
    data = items[0] if len(items) == 1 else items
    Path(path).write_text(json.dumps(data, indent=2))


def main(argv=None) -> int:
    ns = _parser().parse_args(argv)
    if ns.command == "check":
        code, results = run_targets(ns.targets, ns)
        if ns.json:
            _write_json(ns.json, results)
        n = len(results)
        flagged = [getattr(t, "label", t) for t, r, _ in results if r is not None and not r.ok]
        errors = [getattr(t, "label", t) for t, r, _ in results if r is None]
        summary = f"crosscheck: {n} case(s): {n - len(flagged) - len(errors)} agree"
        if flagged:
            summary += f", {len(flagged)} flagged ({', '.join(flagged)})"
        if errors:
            summary += f", {len(errors)} could not be checked ({', '.join(errors)})"
        print(summary)
        return code
    return EXIT_ERROR  # pragma: no cover - argparse requires a command
