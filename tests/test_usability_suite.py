"""The suite stays honest on a busy machine: no fixed wall-clock limits outside deployment tests.

A test that kills a subprocess after N seconds, or a hypothesis example that must finish in
200 ms, fails on a loaded 2-core machine for no fault of the code. Deployment tests (marked
``deployment``) wait on progress and are kept to their own budget; everything else must not
rely on the clock.
"""

from __future__ import annotations

import ast
from pathlib import Path

import hypothesis

TESTS = Path(__file__).resolve().parent
SUBPROCESS_CALLS = {"run", "check_output", "check_call", "call", "communicate", "wait"}


def _marked_deployment(decorators: list[ast.expr]) -> bool:
    return any("deployment" in ast.unparse(d) for d in decorators)


def _module_is_deployment(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return "deployment" in ast.unparse(node.value)
    return False


def _clock_limits(node: ast.AST) -> list[int]:
    """Lines of subprocess calls with ``timeout=`` and of hypothesis ``deadline=`` not None."""
    found = []
    for call in ast.walk(node):
        if not isinstance(call, ast.Call):
            continue
        name = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        for kw in call.keywords:
            is_none = isinstance(kw.value, ast.Constant) and kw.value.value is None
            if kw.arg == "timeout" and name in SUBPROCESS_CALLS and not is_none:
                found.append(call.lineno)
            if kw.arg == "deadline" and not is_none:
                found.append(call.lineno)
    return found


def test_no_fixed_wall_clock_limits_outside_deployment_tests():
    offenders = []
    for path in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text())
        if _module_is_deployment(tree):
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.ClassDef):
                if _marked_deployment(node.decorator_list):
                    continue
            offenders += [f"{path.name}:{line}" for line in _clock_limits(node)]
    assert offenders == [], f"fixed wall-clock limits in non-deployment tests: {offenders}"


def test_hypothesis_has_no_deadline():
    """``tests/conftest.py`` loads a profile without hypothesis's 200 ms default deadline."""
    assert hypothesis.settings.default.deadline is None
