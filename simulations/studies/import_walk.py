"""The import walk of one run: how often following its imports returns to a visited file.

Starting at the module a command runs (``fl_credit.simulate`` by default), the walk follows,
depth first, every import of a project module (``fl_credit``, ``strategies``), at module level
or inside a function, in the order of the source. Each ``(importing file, imported module)``
pair is one stop; a stop whose module was already visited is a return. A package's
``__init__.py`` counts only when the import names the package itself.

    python -m simulations.studies.import_walk [--root DIR] [--start fl_credit.simulate]
        [--only fl_credit] [--list]

prints ``stops``, ``files`` and ``returns`` (``returns = stops - files + 1``).

``--calls [OVERRIDES...]`` follows the configuration through one run instead: it runs
``python -m fl_credit.simulate`` in this process (in-process engine, two rounds, a small
bootstrap, a temporary run folder, plus ``OVERRIDES``) and records every call of an
``fl_credit`` function that receives the :class:`ExperimentConfig` or one of its sections. Each
distinct ``(calling function, called function)`` pair whose files differ is one stop, in the order
first seen; a stop into a file already visited is a return. Run it with ``PYTHONPATH``
pointing at the tree to measure (its ``fl_credit.simulate`` is the entry point).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

PROJECT = ("fl_credit", "strategies")


def module_file(root: Path, module: str) -> Path | None:
    """The file that defines ``module`` under ``root``, or None when it is not a module."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(root: Path, path: Path, project: tuple[str, ...] = PROJECT) -> list[str]:
    """Project modules imported by the file at ``path``, in source order, without repeats."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    for node in sorted(nodes, key=lambda n: (n.lineno, n.col_offset)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif node.level == 0 and node.module:
            # ``from pkg import mod`` imports the module pkg.mod; otherwise the module itself.
            names = []
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                names.append(sub if module_file(root, sub) else node.module)
        else:
            continue
        for name in names:
            if name.split(".")[0] in project and module_file(root, name) and name not in found:
                found.append(name)
    return found


def walk(
    root: Path, start: str, project: tuple[str, ...] = PROJECT
) -> list[tuple[str, str, bool]]:
    """The stops of the walk from ``start``: ``(importer, imported, is_return)``."""
    visited = {start}
    stops: list[tuple[str, str, bool]] = []

    def visit(module: str) -> None:
        path = module_file(root, module)
        assert path is not None
        for target in imported_modules(root, path, project):
            seen = target in visited
            stops.append((module, target, seen))
            if not seen:
                visited.add(target)
                visit(target)

    visit(start)
    return stops


def _is_config(value: object) -> bool:
    """The experiment configuration or one of its sections (``cfg.train``, ``cfg.data``...)."""
    kind = type(value)
    return kind.__module__ in ("fl_credit.config.schema", "fl_credit.config.schema") and (
        kind.__name__.endswith("Config")
    )


def call_walk(overrides: list[str]) -> list[tuple[str, str, bool]]:
    """The stops of the configuration through one in-process run (see the module doc)."""
    import contextlib
    import importlib
    import runpy
    import sys
    import tempfile
    import threading

    package = Path(importlib.import_module("fl_credit").__file__).resolve().parent
    root = str(package.parent)
    edges: dict[tuple[str, str], tuple[str, str]] = {}

    def fl_file(code) -> str | None:
        name = code.co_filename
        return name if name.startswith(str(package)) else None

    def profile(frame, event, arg):
        if event != "call" or fl_file(frame.f_code) is None:
            return
        if not any(_is_config(v) for v in frame.f_locals.values()):
            return
        caller = frame.f_back
        while caller is not None and fl_file(caller.f_code) is None:
            caller = caller.f_back
        if caller is None:
            return
        a, b = caller.f_code.co_filename, frame.f_code.co_filename
        if a == b:
            return
        key = (f"{a}:{caller.f_code.co_name}", f"{b}:{frame.f_code.co_name}")
        edges.setdefault(key, (a.removeprefix(root + "/"), b.removeprefix(root + "/")))

    with tempfile.TemporaryDirectory() as run_dir:
        sys.argv = [
            "simulate",
            "engine.backend=inprocess",
            "train.rounds=2",
            "metrics.bootstrap=20",
            f"hydra.run.dir={run_dir}",
            *overrides,
        ]
        for name in ("fl_credit.runtime.fast_exit", "fl_credit.fast_exit"):  # new, old layout
            try:  # keep the process alive after the run, to count
                importlib.import_module(name).without_teardown = contextlib.nullcontext
                break
            except ImportError:
                continue
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:  # as ``python -m fl_credit.simulate`` (Hydra finds conf/ from the module's file)
            runpy.run_module("fl_credit.simulate", run_name="__main__", alter_sys=True)
        except SystemExit:
            pass
        finally:
            sys.setprofile(None)
            threading.setprofile(None)
    visited: set[str] = set()
    stops = []
    for a, b in edges.values():
        visited.add(a)
        stops.append((a, b, b in visited))
        visited.add(b)
    return stops


def main(argv: list[str] | None = None) -> int:
    """Print the walk's counts (and, with ``--list``, every stop)."""
    parser = argparse.ArgumentParser(prog="python -m simulations.studies.import_walk")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--start", default="fl_credit.simulate")
    parser.add_argument("--list", action="store_true", help="print every stop")
    parser.add_argument(
        "--calls", nargs="*", metavar="OVERRIDE", help="follow the configuration through a run"
    )
    parser.add_argument(
        "--only", default=",".join(PROJECT), help="top-level packages followed (comma list)"
    )
    args = parser.parse_args(argv)
    if args.calls is not None:
        stops = call_walk(args.calls)
        args.start = "fl_credit.simulate (calls taking the configuration)"
    else:
        stops = walk(args.root, args.start, tuple(args.only.split(",")))
    if args.list:
        for importer, imported, seen in stops:
            print(f"{importer} -> {imported}{'  (return)' if seen else ''}")
    files = len({importer for importer, _, _ in stops} | {imported for _, imported, _ in stops})
    returns = sum(seen for _, _, seen in stops)
    print(json.dumps({"start": args.start, "stops": len(stops), "files": files,
                      "returns": returns}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
