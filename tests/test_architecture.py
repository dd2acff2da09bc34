"""The house rules that keep crosscheck readable, checked: short functions, one-way data flow."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "crosscheck"
LIMIT = 80   # lines, docstring included


def _functions():
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                above = lines[node.lineno - 2] if node.lineno >= 2 else ""
                first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
                comment = " ".join(lines[max(0, first - 4):first - 1])
                yield path, node, node.end_lineno - node.lineno + 1, "# long:" in comment + above


def test_no_function_is_longer_than_80_lines_without_a_reason_next_to_it():
    long = [f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.name} ({n} lines)"
            for path, node, n, reason in _functions() if n > LIMIT and not reason]
    assert not long, long


def test_check_reads_as_the_list_of_stages():
    source = (PACKAGE / "_check.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    check = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check")
    calls = [n for n in ast.walk(check) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    calls = [n.func.id for n in sorted(calls, key=lambda n: (n.lineno, n.col_offset))]
    stages = ["settings", "prepare", "run_references", "refine", "agreement", "judge_block",
              "block", "taylor_orders", "assemble"]
    assert [c for c in calls if c in stages] == stages


def test_data_and_stages_never_import_a_renderer():
    """``str(report)`` reaches the renderers through ``_presentation``, which names them; the
    data and the stages import no ``_render_*`` module, not even lazily."""
    for name in ("_report", "_check", "_prepare", "_references", "_refine", "_agreement",
                 "_judge", "_assemble", "_kinks", "_verdict", "_diagnose", "_difference"):
        tree = ast.parse((PACKAGE / f"{name}.py").read_text(encoding="utf-8"))
        imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        assert not [m for m in imported if "_render" in m], name


def test_no_stage_result_carries_an_engine():
    for path in PACKAGE.rglob("*.py"):
        assert 'extra["engine"]' not in path.read_text(encoding="utf-8"), path
