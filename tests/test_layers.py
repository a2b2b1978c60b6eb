"""The layer order of the code, read from its import statements (every import counts, also
the ones inside functions).

- ``strategies`` (the Flower-level algorithms) imports neither ``fl_credit`` nor
  ``simulations``; ``fl_credit`` never imports ``simulations``;
- inside ``fl_credit`` a package only imports packages of its own layer or below (``LAYERS``);
- inside ``simulations`` the studies and benchmarks never import the sweep reports (a sweep's
  report may run a study, such as the privacy audit, on its runs);
- there is no import cycle between modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# fl_credit's packages from the bottom up; a package may import its own layer and the ones
# below. Three modules sit below their package: ``data.registry`` (the data-source registry: the
# config validation asks it for the ``data.kind`` names; it imports its sources dynamically);
# ``run.files`` (the run folder's file names and atomic writers, standard library only), because
# the credit outputs and the deployed ServerApp write run files too; and ``threats.attacks``
# (the application side of the simulated attacks), because a simulated run wires its malicious
# banks. The validation pack and boosting are split the same way: their pure maths sits with
# the credit outputs (trees with the model), the bank's and the coordinator's halves with
# theirs, the reports with the run. The deployed ServerApp is an entry point like the run's
# and writes the same run folder, so it sits with the run.
LAYERS: list[set[str]] = [
    {"config", "data.registry", "validation.settings"},
    {"run.files"},
    {"data"},
    {"model", "boosting.tree", "boosting.inputs"},
    {"credit", "validation", "boosting"},
    {"protocol"},
    {"bank", "boosting.bank"},
    {"coordinator", "boosting.federated", "boosting.pooled", "validation.query"},
    {"runtime"},
    {"threats.attacks"},
    {"run", "boosting.comparison", "validation.report", "coordinator.server_app"},
    {"threats", "deploy"},
    {"__init__", "simulate", "validate", "scorecard", "evasion", "certs", "export_banks",
     "deploy_status", "supernode"},
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts = parts[:-1]
    return ".".join(parts)


def project_modules(top: str) -> dict[str, Path]:
    return {module_name(p): p for p in sorted((ROOT / top).rglob("*.py"))}


ALL = {**project_modules("fl_credit"), **project_modules("strategies"),
       **project_modules("simulations")}


def imports(path: Path) -> set[str]:
    """Project modules imported by ``path`` (a ``from pkg import mod`` counts as pkg.mod)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in ALL else node.module
                for a in node.names
            ]
        else:
            continue
        found.update(n for n in names if n in ALL)
    return found


GRAPH = {name: imports(path) for name, path in ALL.items()}


def layer(module: str) -> int:
    """Index in ``LAYERS`` of an fl_credit module (its longest matching unit)."""
    rest = module.removeprefix("fl_credit").lstrip(".") or "__init__"
    parts = rest.split(".")
    for size in range(len(parts), 0, -1):
        unit = ".".join(parts[:size])
        for index, units in enumerate(LAYERS):
            if unit in units:
                return index
    raise AssertionError(f"{module} is in no layer of LAYERS")


def test_strategies_import_neither_the_application_nor_the_studies():
    bad = sorted(
        f"{m} imports {t}" for m, ts in GRAPH.items() if m.startswith("strategies")
        for t in ts if t.startswith(("fl_credit", "simulations"))
    )
    assert bad == []


def test_the_application_does_not_import_the_studies():
    bad = sorted(
        f"{m} imports {t}" for m, ts in GRAPH.items() if m.startswith("fl_credit")
        for t in ts if t.startswith("simulations")
    )
    assert bad == []


def test_the_studies_and_benchmarks_do_not_import_the_sweep_reports():
    bad = sorted(
        f"{m} imports {t}" for m, ts in GRAPH.items()
        if m.startswith(("simulations.studies", "simulations.bench"))
        for t in ts if t.startswith("simulations.sweeps")
    )
    assert bad == []


def test_every_simulations_module_sits_in_a_role_package():
    loose = sorted(
        m for m in GRAPH if m.startswith("simulations.") and m.count(".") < 2
        and m.split(".")[1] not in {"sweeps", "studies", "bench"}
    )
    assert loose == []


def test_every_fl_credit_module_has_a_layer():
    for module in GRAPH:
        if module.startswith("fl_credit"):
            layer(module)


def test_no_import_runs_up_the_layers():
    bad = sorted(
        f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
        for m, ts in GRAPH.items() if m.startswith("fl_credit")
        for t in ts if t.startswith("fl_credit") and layer(t) > layer(m)
    )
    assert bad == []


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (depth-first search with colours), or None."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target) == 1:
                return [*stack[stack.index(target):], target]
            if target not in colour:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(graph):
        if node not in colour:
            found = visit(node)
            if found:
                return found
    return None


def without_packages(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The graph without the edge from a submodule to its own package's ``__init__``."""
    return {m: {t for t in ts if not m.startswith(t + ".")} for m, ts in graph.items()}


def test_there_is_no_import_cycle():
    assert find_cycle(without_packages(GRAPH)) is None


@pytest.mark.parametrize(
    "graph, cycle",
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ],
)
def test_the_cycle_search_finds_a_circle(graph, cycle):
    assert find_cycle(graph) == cycle
