"""The import walk of one run: how often following it returns to a file already visited.

Two walks; each prints ``stops``, ``files`` (the distinct files entered) and ``returns`` (the
stops into a file entered before, so ``returns = stops - files``).

The import walk (default) starts at the module a command runs (``fl_credit.simulate``) and
follows, depth first, every import of a project module (``fl_credit``, ``strategies``), at
module level or inside a function, in the order of the source. Each ``(importing file,
imported module)`` pair is one stop. A package's ``__init__.py`` counts only when the import
names the package itself::

    python -m simulations.studies.import_walk [--root DIR] [--start fl_credit.simulate]
        [--only fl_credit] [--list]

The call walk (``--calls [OVERRIDES...]``) follows the configuration through one run: it runs
``python -m fl_credit.simulate OVERRIDES`` in this process (the default run without
overrides; a temporary run folder) and, in every thread of this process, records each call of
a project function (``fl_credit/``, ``strategies/``) whose arguments (``self`` included) hold
the :class:`ExperimentConfig` or one of its sections. A call whose file differs from its
nearest project caller's is one stop; every call counts, not only distinct pairs. Under the
default Ray engine the banks run in other processes, so the walk sees the coordinator's side
and the run around it. Set ``PYTHONPATH`` to the tree to measure (its ``fl_credit.simulate`` is
the entry point); the method also runs on the layout before the packages (``--calls``
detects ``fl_credit.config`` there and ``fl_credit.config.schema`` now)::

    PYTHONPATH=TREE python simulations/studies/import_walk.py --calls [--list]

The figures, before and after the layout, are in ``docs/development.md``.
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
    """The experiment configuration or one of its sections (``cfg.train``, ``cfg.dp``...)."""
    kind = type(value)
    return (kind.__module__ or "").startswith("fl_credit.config") and kind.__name__.endswith(
        "Config"
    )


def call_walk(overrides: list[str], stops: list[tuple[str, str, bool]]) -> None:
    """Append to ``stops`` the stops of the configuration through one run (module doc), in
    call order."""
    import atexit
    import contextlib
    import importlib
    import runpy
    import tempfile
    import threading

    package = Path(importlib.import_module("fl_credit").__file__).resolve().parent
    root = str(package.parent) + "/"
    project = tuple(root + top + "/" for top in PROJECT)
    entered: set[str] = set()

    def profile(frame, event, arg):
        callee = frame.f_code.co_filename
        if event != "call" or not callee.startswith(project):
            return
        if not any(_is_config(v) for v in frame.f_locals.values()):
            return
        caller = frame.f_back  # the nearest project frame (Flower or Hydra may sit between)
        while caller is not None and not caller.f_code.co_filename.startswith(project):
            caller = caller.f_back
        if caller is None or caller.f_code.co_filename == callee:
            return
        stops.append((caller.f_code.co_filename.removeprefix(root), callee.removeprefix(root),
                      callee in entered))
        entered.add(callee)

    def stop_tracing() -> None:
        sys.setprofile(None)
        threading.setprofile(None)

    with tempfile.TemporaryDirectory() as run_dir:
        sys.argv = ["simulate", f"hydra.run.dir={run_dir}", *overrides]
        for name in ("fl_credit.runtime.fast_exit", "fl_credit.fast_exit"):  # new, old layout
            with contextlib.suppress(ImportError):  # keep the process alive after the run
                importlib.import_module(name).without_teardown = contextlib.nullcontext
                break
        atexit.register(stop_tracing)  # a run may still leave through os._exit after atexit
        threading.setprofile(profile)
        sys.setprofile(profile)
        try:  # as ``python -m fl_credit.simulate`` (Hydra finds conf/ from the module's file)
            runpy.run_module("fl_credit.simulate", run_name="__main__", alter_sys=True)
        except SystemExit:
            pass
        finally:
            stop_tracing()


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
        import atexit

        stops: list[tuple[str, str, bool]] = []
        # A run can end the process with os._exit once the atexit handlers have run.
        atexit.register(report, stops, "fl_credit.simulate (calls taking the configuration)",
                        args.list)
        call_walk(args.calls, stops)
        return 0
    report(walk(args.root, args.start, tuple(args.only.split(","))), args.start, args.list)
    return 0


def report(stops: list[tuple[str, str, bool]], start: str, listing: bool) -> None:
    """Print the walk's counts (and, with ``listing``, every stop)."""
    if listing:
        for importer, imported, seen in stops:
            print(f"{importer} -> {imported}{'  (return)' if seen else ''}")
    files = len({imported for _, imported, _ in stops})
    returns = sum(seen for _, _, seen in stops)
    print(json.dumps({"start": start, "stops": len(stops), "files": files, "returns": returns}),
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
