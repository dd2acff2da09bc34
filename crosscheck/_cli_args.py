"""The command line's words: its arguments, their checks, and its exit codes.

Kept apart from :mod:`crosscheck._cli`, which runs the commands, so the interface a user
types (and ``--help`` shows) reads in one place.
"""

from __future__ import annotations

import argparse
import re

from ._errors import CheckError
from ._run_comparison import SLOWER_RATIO, SLOWER_SECONDS
from ._suite import parse_fd

EXIT_OK, EXIT_FLAGGED, EXIT_ERROR = 0, 1, 2
EXIT_INCONCLUSIVE = 3    # no block flagged, but a case no reference could vouch for
# the exit codes of a finished run, mildest first: when several apply, the last one wins
GRAVITY = (EXIT_OK, EXIT_INCONCLUSIVE, EXIT_FLAGGED, EXIT_ERROR)
EXIT_HELP = ("Exit 0: every case agrees; 1: a block is flagged; 2: a case could not be "
             "checked; 3: no block flagged but a case is inconclusive (0 with "
             "--allow-inconclusive); 130: interrupted (Ctrl-C), 143: terminated (SIGTERM), the "
             "finished cases saved to every output asked for.")
EXIT_INTERRUPTED = 130   # 128 + SIGINT, as shells report a command ended by Ctrl-C
EXIT_TERMINATED = 143    # 128 + SIGTERM: a CI job's timeout, `kill`

def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crosscheck",
        description="Check hand-written numpy gradients against centered differences, "
                    "jax.grad and torch.autograd, block by block.")
    sub = parser.add_subparsers(dest="command", required=True)
    chk = sub.add_parser(
        "check", help="check the cases named by TARGETs",
        description="Check cases. TARGET is path/to/file.py:NAME or module:NAME naming a "
                    "crosscheck.Case, an iterable of Cases, a zero-argument callable "
                    "returning either, or the name of a Case inside the module's lists "
                    "(rnn.py:correct). " + EXIT_HELP)
    chk.add_argument("targets", nargs="+", metavar="TARGET")
    _common(chk, "write the report(s) as JSON (schema crosscheck.report/1; a list when "
                 "there are several)")
    run = sub.add_parser(
        "run", help="check the suite declared in pyproject.toml",
        description="Check every case of the suite in the [tool.crosscheck] table of "
                    "pyproject.toml (cases, and optionally oracles, seed, fd, tolerances); "
                    "TARGETs given on the command line replace the suite's cases. "
                    + EXIT_HELP)
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
                    "not before; 3 when nothing does but a case is newly inconclusive "
                    "(0 with --allow-inconclusive); 0 otherwise; 2 when a file cannot be "
                    "read, or when the new run stopped early (a `partial` file: its missing "
                    "cases are listed as not run).")
    cmp.add_argument("old", metavar="OLD.json")
    cmp.add_argument("new", metavar="NEW.json")
    cmp.add_argument("--markdown", metavar="FILE", help="also write the comparison as Markdown")
    cmp.add_argument("--slower-ratio", type=_finite_float, default=SLOWER_RATIO, metavar="R",
                     help=f"an oracle counts as slower when its time grew more than R times "
                          f"(default {SLOWER_RATIO:g}) ...")
    cmp.add_argument("--slower-seconds", type=_finite_float, default=SLOWER_SECONDS, metavar="S",
                     help=f"... and by more than S seconds (default {SLOWER_SECONDS:g})")
    _inconclusive_flags(cmp, "a case newly inconclusive")
    return parser


def _inconclusive_flags(p: argparse.ArgumentParser, what: str) -> None:
    """``--strict`` / ``--allow-inconclusive``: whether an inconclusive case exits 3 or 0."""
    group = p.add_mutually_exclusive_group()
    group.add_argument("--strict", dest="allow_inconclusive", action="store_false",
                       help=f"{what} exits 3: not every block could be vouched for (the "
                            f"default; say it to make a CI job's intent explicit)")
    group.add_argument("--allow-inconclusive", dest="allow_inconclusive", action="store_true",
                       help=f"{what} exits 0, as if it agreed (a flagged block still exits "
                            f"1); the outputs still say inconclusive")
    p.set_defaults(allow_inconclusive=False)


def _fd_arg(text: str):
    try:
        return parse_fd(text, "--fd")
    except CheckError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _seed_arg(text: str) -> int:
    if text.strip().isascii() and text.strip().isdigit():
        return int(text)
    raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer; pass e.g. "
                                     f"`--seed 0`.")


def _finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number; pass e.g. 2.0.")
    return value


# `local`, or a scheduler address: `tcp://host:8786`, `host:8786`, `tls://[::1]:8786`
DASK_ADDRESS = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+)"
                          r"(?::\d{1,5})?/?")


def _dask_arg(text: str) -> str:
    if text == "local" or DASK_ADDRESS.fullmatch(text):
        return text
    raise argparse.ArgumentTypeError(
        f"{text!r} is not a scheduler address; pass one such as `tcp://host:8786` (or "
        f"`host:8786`), or `local` for a cluster on this machine.")


def _common(p: argparse.ArgumentParser, json_help: str) -> None:
    p.add_argument("--json", metavar="FILE", help=json_help + "; `-` writes it to standard "
                   "output, and the tables go to standard error. A FILE is rewritten after "
                   "every case as a crosscheck.run/1 file marked `partial` until the run "
                   "ends, so a killed run keeps its finished cases")
    p.add_argument("--isolate", action="store_true",
                   help="check each case in a process of its own: a crash there (a "
                        "segfault, an out-of-memory kill, os._exit) makes that case `could "
                        "not check`, naming the signal, and the run goes on; costs a new "
                        "interpreter (and imports of numpy, jax, torch) per case")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML: one testcase per case")
    p.add_argument("--markdown", metavar="FILE",
                   help="write a Markdown summary (fit for $GITHUB_STEP_SUMMARY)")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML report with "
                   "charts (charts need matplotlib)")
    p.add_argument("--oracles", metavar="LIST", default=None,
                   help="comma-separated references among fd,jax,torch (default: all three)")
    p.add_argument("--seed", type=_seed_arg, default=None,
                   help="seed for random choices, a non-negative integer (default 0)")
    p.add_argument("--fd", metavar="MODE", default=None, type=_fd_arg,
                   help="centered-difference coverage: auto (default), all, or N elements "
                        "sampled per block")
    p.add_argument("--dask", metavar="ADDRESS", default=None, type=_dask_arg,
                   help="evaluate centered differences on a Dask cluster: a scheduler address "
                        "(tcp://host:8786) or `local` for a LocalCluster sized to this machine")
    p.add_argument("--quiet", action="store_true", help="print only the headline per case")
    p.add_argument("-k", dest="select", metavar="PATTERN", default=None,
                   help="check only the cases whose label -- `file/case` as the reports name "
                        "them, e.g. `seed_net/buggy` -- contains PATTERN (case-insensitive, "
                        "as pytest's -k, without its and/or/not); no case matching exits 2")
    _inconclusive_flags(p, "an inconclusive case (no block flagged)")


def exit_code(outcomes, allow_inconclusive: bool = False) -> int:
    """The exit status of finished cases: 2 when one could not be checked, else 1 when a
    block is flagged, else 3 when a case is inconclusive (0 with ``allow_inconclusive``),
    else 0 -- never 0 for a case no reference could vouch for, unless asked."""
    found = {o.outcome for o in outcomes}
    if "could not check" in found:
        return EXIT_ERROR
    if "flagged" in found:
        return EXIT_FLAGGED
    if "inconclusive" in found and not allow_inconclusive:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def gravest(*codes: int) -> int:
    """The gravest of exit codes by :data:`GRAVITY` (an unknown code counts as gravest)."""
    return max(codes, key=lambda c: GRAVITY.index(c) if c in GRAVITY else len(GRAVITY))
