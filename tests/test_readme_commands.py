"""Every command in the shell blocks of README.md and docs/*.md runs as written.

The blocks (```sh, ```bash, ```shell, and the ``$ `` lines of ```console) are read from the
documents themselves, so a command added or changed there is tested without touching this file.
Each command is classified by what it runs:

- ``crosscheck ...`` and ``python scripts/....py`` run, in the documented order, in a scratch
  copy of the repository, with this interpreter (``.venv/bin/python`` and ``python`` are
  ``sys.executable``; ``crosscheck`` is ``python -m crosscheck``). A command must end with a
  verdict (exit 0, 1 or 3; never 2, "could not check", nor a traceback), a script with exit 0,
  and each must write every report file it names. Model files and reports the documents name as
  examples (``model.py:correct``, ``old.json``) are stood in for by a small correct case and a
  report of one.
- The Quick start (environment set-up, ``scripts/compare.py``, ``pytest``) is what ``.ci/run``
  runs, as written; here its commands, and any other ``pip install``, ``python -m venv`` or
  ``pytest``, are checked without running them: pip and pytest must accept their options, the
  extras must exist in pyproject.toml, packages installed by name must be the project's
  dependencies, the files named must exist.
- Anything else fails, naming the command, so that a new kind of command gets a rule here.

Commands that start a Dask cluster or render HTML charts take several seconds each: they run
where ``CI`` is set (hosted CI services and ``.ci/run`` set it) and are skipped otherwise; a
report a skipped command would have written is then stood in for like an example one.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from crosscheck import _cli

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELLS = {"sh", "bash", "shell", "console"}

# Any verdict; EXIT_ERROR ("could not check", also argparse's usage error) is not one.
VERDICTS = {_cli.EXIT_OK, _cli.EXIT_FLAGGED, getattr(_cli, "EXIT_INCONCLUSIVE", _cli.EXIT_OK)}
WRITES = ("--json", "--junit", "--html", "--markdown", "--out")   # options naming a file written
RUN_SLOW = bool(os.environ.get("CI"))
# What makes a command slow (seconds each, with a 2-core machine's load): run where CI is set.
SLOW = {
    "--dask": "starts a Dask cluster",
    "--html": "renders its charts with matplotlib",
}

# Commands that can run only where the reader is: their options are parsed, not run.
NOT_RUN = {
    "--dask tcp://": "needs the reader's own Dask scheduler (`--dask local` runs the same path)",
}

# Stands in for a model file or module a document names as an example (`model.py:correct`,
# `my_models:suite`): whatever NAME is asked for is a list holding one small correct case.
STAND_IN_MODEL = '''\
"""Stands in for the reader's own model file (tests/test_readme_commands.py)."""
import numpy as np

from crosscheck import Case


def loss(p, X):
    return (p["W"] * X).sum() ** 2 / 2


def grad(p, X):
    return {"W": (p["W"] * X).sum() * X}


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return [Case(name, loss, grad, {"W": np.array([[0.5, -1.0], [2.0, 0.25]])},
                 (np.array([[1.0, 2.0], [-0.5, 3.0]]),))]
'''


@dataclass(frozen=True)
class Block:
    document: Path
    line: int                   # of the opening fence, 1-based
    language: str
    commands: tuple             # (line number, argv) per command; `&&` chains split

    @property
    def id(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"


def _split(text: str, where: str) -> list:
    """The argv lists of one shell line: words, `&&` between commands, `#` comments dropped."""
    lex = shlex.shlex(text, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    commands, argv = [], []
    for token in lex:
        if token == "&&":
            commands.append(argv)
            argv = []
        elif token and set(token) <= set("();<>|&"):
            raise AssertionError(f"{where}: `{text}` uses `{token}`; this test knows `&&` only "
                                 f"(teach it, or write the command without)")
        else:
            argv.append(token)
    return [c for c in [*commands, argv] if c]


def shell_blocks(document: Path) -> list:
    """The shell blocks of a Markdown file (a fence may be indented, as inside a list)."""
    blocks, lines = [], document.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```\s*([\w-]*)", lines[i])
        i += 1
        if not fence:
            continue
        indent, language, start, body = fence.group(1), fence.group(2).lower(), i, []
        while i < len(lines) and lines[i].strip() != "```":
            body.append((i + 1, lines[i][len(indent):] if lines[i].startswith(indent) else lines[i]))
            i += 1
        i += 1
        if language not in SHELLS:
            continue
        commands, pending = [], ""
        for number, text in body:
            if language == "console" and not pending:
                if not text.startswith("$ "):
                    continue            # a line of output
                text = text[2:]
            if text.rstrip().endswith("\\"):
                pending += text.rstrip()[:-1] + " "
                continue
            text, pending = pending + text, ""
            where = f"{document.relative_to(ROOT)}:{number}"
            commands += [(number, argv) for argv in _split(text, where)]
        blocks.append(Block(document, start, language, tuple(commands)))
    return blocks


ALL_BLOCKS = [block for document in DOCUMENTS for block in shell_blocks(document)]


def quick_start() -> Block:
    """The first shell block under the README's `## Quick start` heading."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert "## Quick start" in lines, "README.md has no `## Quick start` heading (.ci/run reads it)"
    heading = lines.index("## Quick start") + 1
    after = [b for b in ALL_BLOCKS if b.document.name == "README.md" and b.line > heading]
    assert after, "the README's Quick start has no shell block"
    return min(after, key=lambda b: b.line)


def test_the_quick_start_is_two_commands_set_up_then_test():
    """`.ci/run` runs the first line (set up, then scripts/compare.py) and the second (pytest)."""
    block = quick_start()
    lines = sorted({number for number, _ in block.commands})
    assert len(lines) == 2, f"the Quick start should be two commands, one a line; it has {len(lines)}"
    first = [argv for number, argv in block.commands if number == lines[0]]
    second = [argv for number, argv in block.commands if number == lines[1]]
    assert first[0][:3] == ["python", "-m", "venv"], first
    assert first[-1][-1] == "scripts/compare.py", first
    assert second == [[".venv/bin/python", "-m", "pytest"]], second
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'eval "$setup_command"' in ci and 'eval "$test_command"' in ci


# ------------------------------------------------------------------ what a command is
def _interpreter(word: str) -> bool:
    return word in ("python", "python3") or bool(re.fullmatch(r"[\w.-]+/bin/python3?", word))


def kind(argv: list) -> str:
    """``venv``, ``pip``, ``pytest``, ``crosscheck``, ``script`` or ``echo``."""
    head, rest = argv[0], argv[1:]
    if head in ("crosscheck", "pip", "pytest", "echo"):
        return head
    if head.endswith(("/bin/pip", "/bin/pytest")):
        return head.rsplit("/", 1)[1]
    if _interpreter(head) and rest[:1] == ["-m"] and rest[1:2] and rest[1] in (
            "venv", "pip", "pytest", "crosscheck"):
        return rest[1]
    if _interpreter(head) and rest and rest[0].endswith(".py"):
        return "script"
    raise AssertionError(f"`{shlex.join(argv)}`: this test does not know how to check this "
                         f"kind of command; add a rule to tests/test_readme_commands.py")


def _args(argv: list) -> list:
    """The arguments after ``pip``, ``pytest``, ``python -m pip``, …"""
    return argv[3:] if _interpreter(argv[0]) and argv[1:2] == ["-m"] else argv[1:]


# ------------------------------------------------------------------ checked without running
def _env() -> dict:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env.pop("PYTHONWARNINGS", None)
    return env


@functools.lru_cache(maxsize=None)
def _help(*command: str) -> str:
    proc = subprocess.run([sys.executable, *command, "--help"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def _options_known(args: list, help_text: str, command: str) -> None:
    for arg in args:
        option = arg.split("=", 1)[0]
        if option.startswith("-") and option != "-":
            assert re.search(rf"(^|[\s,]){re.escape(option)}([\s,=]|$)", help_text, re.M), (
                f"`{command}`: `{option}` is not an option of `{command.split()[0]}`")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;@]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _in_a_venv(argv: list, venvs: set) -> None:
    if "/bin/" in argv[0]:
        venv = argv[0].split("/bin/")[0]
        assert venv in venvs, f"`{shlex.join(argv)}`: no documented `python -m venv {venv}`"


def check_venv(argv: list) -> None:
    assert not _args(argv)[-1].startswith("-"), f"`{shlex.join(argv)}` names no directory"


def check_pip(argv: list, venvs: set) -> None:
    command, args = shlex.join(argv), _args(argv)
    _in_a_venv(argv, venvs)
    assert args[:1] == ["install"], f"`{command}`: only `pip install` has a rule here"
    _options_known(args[1:], _help("-m", "pip", "install"), "pip install")
    project = _pyproject()["project"]
    extras = project.get("optional-dependencies", {})
    dependencies = {_name(r) for r in project.get("dependencies", [])}
    dependencies |= {_name(r) for group in extras.values() for r in group}
    with_value = {"-i", "--index-url", "--extra-index-url", "-c", "--constraint", "-r",
                  "--requirement", "-f", "--find-links", "-e", "--editable"}
    i = 1
    while i < len(args):
        arg, value = args[i], args[i + 1] if i + 1 < len(args) else ""
        if arg in ("-i", "--index-url", "--extra-index-url"):
            assert value.startswith("https://"), f"`{command}`: index `{value}` is not https"
        elif arg in ("-e", "--editable") or not arg.startswith("-"):
            target = value if arg.startswith("-") else arg
            path, _, extra = target.partition("[")
            if path.startswith(".") or "/" in path:
                assert (ROOT / path / "pyproject.toml").is_file(), f"`{command}`: no project at `{path}`"
                for name in filter(None, (e.strip() for e in extra.rstrip("]").split(","))):
                    assert name in extras, (f"`{command}`: pyproject.toml has no extra `{name}` "
                                            f"(it has: {', '.join(extras)})")
            else:
                assert _name(target) in dependencies, (
                    f"`{command}`: `{target}` is not among the project's dependencies")
        i += 2 if arg in with_value else 1


def check_pytest(argv: list, venvs: set) -> None:
    _in_a_venv(argv, venvs)
    _options_known(_args(argv), _help("-m", "pytest", "-p", "no:cacheprovider"), "pytest")
    for path in _pyproject()["tool"]["pytest"]["ini_options"].get("testpaths", []):
        assert (ROOT / path).is_dir(), f"pyproject.toml's pytest testpaths names a missing `{path}`"


def check_script(argv: list, venvs: set) -> None:
    _in_a_venv(argv, venvs)
    assert (ROOT / argv[1]).is_file(), f"`{shlex.join(argv)}`: no file `{argv[1]}`"


def parse_crosscheck(argv: list):
    """The command's arguments as the CLI reads them (a SystemExit is a usage error)."""
    try:
        return _cli.parser().parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"`{shlex.join(argv)}`: crosscheck refuses these arguments") from exc


# ------------------------------------------------------------------ running
def _scratch_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(
        ".venv", ".git", "tests", "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis",
        ".mypy_cache"))
    return copy


def _stand_ins(argv: list, cwd: Path) -> None:
    """Create the example model files and reports a command names that the repository lacks."""
    ns = parse_crosscheck(argv)
    if ns.command == "compare":
        for report in (ns.old, ns.new):
            if not (cwd / report).exists():
                proc = subprocess.run(
                    [sys.executable, "-m", "crosscheck", "check", "reference/linear_1d.py:correct",
                     "--oracles", "fd", "--quiet", "--json", report],
                    cwd=cwd, capture_output=True, text=True, timeout=300, env=_env())
                assert proc.returncode == 0, proc.stderr[-2000:]
        return
    for target in getattr(ns, "targets", []):
        where = target.rpartition(":")[0]
        if where.endswith(".py") or "/" in where:
            path = cwd / where
        elif where:
            path = cwd / (where.replace(".", "/") + ".py")
            if (cwd / where.replace(".", "/")).is_dir():
                continue
        else:
            continue
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(STAND_IN_MODEL, encoding="utf-8")


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+ - [\w.]+ - [A-Z]+ - ")
CHAINED = ("The above exception was the direct cause", "During handling of the above exception")


def crashed(stderr: str) -> bool:
    """Whether stderr holds a traceback of an exception nothing caught. A library may log one
    it caught (Dask's workers do, under a `2026-01-31 12:00:00,000 - name - ERROR - ` header):
    that one, with the exceptions chained to it, is output, not a crash."""
    logged, last = False, ""
    for line in filter(str.strip, stderr.splitlines()):
        if line.startswith("Traceback (most recent call last):"):
            logged = logged and bool(LOG_RECORD.match(last) or last.startswith(CHAINED))
            if not logged:
                return True
        elif LOG_RECORD.match(line):
            logged = True
        last = line
    return False


def _run(argv: list, what: str, cwd: Path, where: str) -> None:
    head = [sys.executable, "-m", "crosscheck"] if what == "crosscheck" else [sys.executable]
    proc = subprocess.run([*head, *argv[1:]], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=_env())
    tail = f"\n--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}"
    assert not crashed(proc.stderr), f"{where} crashed{tail}"
    expected = {0} if what == "script" else VERDICTS
    assert proc.returncode in expected, f"{where} exited {proc.returncode}, not {sorted(expected)}{tail}"
    for option, value in zip(argv, argv[1:]):
        if option in WRITES and value != "-":
            assert (cwd / value).is_file() and (cwd / value).stat().st_size, (
                f"{where} did not write `{value}`{tail}")


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=[b.id for b in ALL_BLOCKS])
def test_every_command_of_the_block_runs_as_written(block, tmp_path):
    venvs = {".venv"} | {_args(argv)[-1] for _, argv in block.commands if kind(argv) == "venv"}
    in_quick_start = block == quick_start()
    cwd, ran, skipped, previous = None, 0, [], None
    for number, argv in block.commands:
        command, what = shlex.join(argv), kind(argv)
        where = f"{block.document.relative_to(ROOT)}:{number}: `{command}`"
        if what == "venv":
            check_venv(argv)
        elif what == "pip":
            check_pip(argv, venvs)
        elif what == "pytest":
            check_pytest(argv, venvs)
        elif what == "echo":
            assert argv[1:] == ["$?"] and previous, f"{where}: only `echo $?` after a command has a rule"
        elif what == "script" and in_quick_start:
            check_script(argv, venvs)     # .ci/run runs it, in the Quick start's first command
        else:
            if what == "crosscheck":
                parse_crosscheck(argv)
            else:
                check_script(argv, venvs)
            reason = next((why for text, why in NOT_RUN.items() if text in command), None)
            slow = next((why for option, why in SLOW.items() if option in argv), None)
            if reason is None and slow and not RUN_SLOW:
                reason = f"{slow}: slow, runs where CI is set"
            if reason:
                skipped.append(f"`{command}`: {reason}")
            else:
                cwd = cwd or _scratch_copy(tmp_path)
                if what == "crosscheck":
                    _stand_ins(argv, cwd)
                _run(argv, what, cwd, where)
                ran += 1
        previous = argv
    if skipped and not ran:
        pytest.skip("; ".join(skipped))
