"""The Flower patches of the Deployment Engine: ``fork_clientapps`` and
``install_each_fab_once`` (a bank's SuperExec), ``supernode_polling`` (a bank's SuperNode);
see :mod:`fl_credit.runtime.flower_patches`, which applies them."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import os
import sys
import time
import traceback

SUPEREXEC = "flwr.supercore.superexec.run_superexec"
RUN_CLIENTAPP = "flwr.supernode.runtime.run_clientapp"
EXIT_HANDLER = "flwr.supercore.exit.exit_handler"
SUBPROCESS_EXECUTOR = "flwr.supercore.superexec.executor.subprocess_executor"
PINNED_SUPEREXEC_SOURCES: dict[str, str] = {
    f"{SUPEREXEC}:run_superexec": "d11f4e7fbc8f0b12",
    f"{RUN_CLIENTAPP}:run_clientapp": "6ce09559f3a2f5dc",
    f"{EXIT_HANDLER}:trigger_exit_handlers": "5703e77e3197160c",
    "flwr.supernode.cli.flwr_clientapp:flwr_clientapp": "9e02b412fb895b05",
    f"{SUBPROCESS_EXECUTOR}:SubprocessExecutor.launch": "83abf3dbe02281fd",
}

INSTALL = "flwr.cli.install"
PINNED_SUPEREXEC_SOURCES.update(
    {
        f"{INSTALL}:install_from_fab": "481bd04cde582322",
        f"{INSTALL}:validate_and_install": "628b69fb852ae858",
    }
)
SUPERNODE = "flwr.supernode.start_client_internal"
PINNED_SUPERNODE_SOURCES: dict[str, str] = {
    f"{SUPERNODE}:start_client_internal": "9e89a6eb68fbec68",
    f"{SUPERNODE}:_push_messages": "00bb86faffdec114",
}
SUPERNODE_IDLE_SLEEP = 3  # Flower 1.41's literal sleeps in start_client_internal
SUPERNODE_REPLY_SLEEP = 0.5


# --- fork_clientapps -------------------------------------------------------------------------


class ForkingExecutor:
    """A SuperExec executor that forks ClientApp tasks from this (warm) process.

    Implements Flower 1.41's ``Executor`` protocol around the executor Flower built
    (``inner``), which keeps every other task type and all capacity handling.
    """

    def __init__(self, inner) -> None:
        self.inner = inner
        self.children: set[int] = set()
        self.parent_pid = os.getpid()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def launch(self, spec):
        """Fork a ClientApp task; pass anything else to Flower's executor."""
        from flwr.supercore.constant import TaskType
        from flwr.supercore.superexec.executor import LaunchResult

        if spec.task_type != TaskType.CLIENT_APP or spec.runtime_dependency_install:
            return self.inner.launch(spec)
        pid = os.fork()
        if pid == 0:
            _run_forked_clientapp(spec)  # never returns
        self.children.add(pid)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        """Reap finished ClientApp children, then let Flower's executor do its part."""
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)
        self.inner.reconcile()

    def close(self) -> None:
        """Close Flower's executor (in the parent only)."""
        if os.getpid() == self.parent_pid:
            self.inner.close()


def _run_forked_clientapp(spec) -> None:
    """In the forked child: what ``flwr-clientapp`` does with ``spec``, then ``os._exit``."""
    code = 1
    try:
        # The parent's exit handlers (its Runtime API client, its executor) are not ours.
        exit_handler = importlib.import_module(EXIT_HANDLER)
        with exit_handler._lock_handlers:
            exit_handler.registered_exit_handlers.clear()
        _forget_app_modules()
        _install_each_fab_once()
        if spec.suppress_output:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
        from flwr.supercore.tls import validate_and_resolve_root_certificates
        from flwr.supernode.runtime.run_clientapp import run_clientapp

        kwargs = dict(
            runtime_api_address=spec.runtime_api_address,
            token=spec.token,
            insecure=spec.insecure,
            certificates=validate_and_resolve_root_certificates(
                spec.root_certificates_path, spec.insecure
            ),
            parent_pid=spec.parent_pid,
            runtime_dependency_install=spec.runtime_dependency_install,
        )
        profile_dir = os.environ.get("FL_CREDIT_PROFILE_CLIENTAPPS")
        if profile_dir:
            import cProfile

            profiler = cProfile.Profile()
            try:
                profiler.runcall(run_clientapp, **kwargs)
            finally:
                profiler.dump_stats(os.path.join(profile_dir, f"clientapp_{os.getpid()}.prof"))
        else:
            run_clientapp(**kwargs)
        code = 0
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException:  # noqa: BLE001 - the child must never return into the parent's loop
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _forget_app_modules() -> None:
    """Drop every module not installed in this environment (site-packages or the standard
    library) from ``sys.modules``: the warm parent imported this very module from the
    project's source tree, and the ClientApp must import the app from the run's FAB."""
    installed = tuple(
        os.path.realpath(p) + os.sep
        for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    )
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and not os.path.realpath(path).startswith(installed):
            del sys.modules[name]


FAB_MARKER = ".fl_credit_fab_sha256"


def _install_each_fab_once() -> None:
    """Make ``run_clientapp``'s ``install_from_fab`` unpack and verify a FAB only once.

    Flower unzips the whole FAB into a temporary folder and checks every file's hash on
    every message, then finds the app already installed. The wrapper looks for the folder
    Flower installs that FAB to and a marker holding the FAB's full sha256, written after
    Flower's own install and check succeeded;
    it also compiles the app's modules there once (this machine sets
    ``PYTHONDONTWRITEBYTECODE``, so every message recompiled them).
    """
    import tomllib
    import zipfile
    from io import BytesIO

    from flwr.common.config import get_metadata_from_config, get_project_dir

    module = importlib.import_module(RUN_CLIENTAPP)
    original = module.install_from_fab

    def install_from_fab(fab_file, install_dir=None, skip_prompt=False):
        if not isinstance(fab_file, bytes) or install_dir is not None:
            return original(fab_file, install_dir, skip_prompt)
        digest = hashlib.sha256(fab_file).hexdigest()
        try:
            with zipfile.ZipFile(BytesIO(fab_file)) as fab:
                config = tomllib.loads(fab.read("pyproject.toml").decode())
            fab_id, version = get_metadata_from_config(config)
            path = get_project_dir(fab_id, version, digest)
            if (path / FAB_MARKER).read_text() == digest:
                return path
        except (OSError, KeyError, ValueError, zipfile.BadZipFile, tomllib.TOMLDecodeError):
            pass
        path = original(fab_file, install_dir, skip_prompt)
        import compileall

        compileall.compile_dir(str(path), quiet=2, workers=1)
        tmp = path / f"{FAB_MARKER}.{os.getpid()}"
        tmp.write_text(digest)
        tmp.replace(path / FAB_MARKER)
        return path

    module.install_from_fab = install_from_fab


def _fork_clientapps() -> None:
    superexec = importlib.import_module(SUPEREXEC)
    if hasattr(superexec.get_executor, "_fl_credit_original"):
        return
    original = superexec.get_executor

    @functools.wraps(original)
    def get_executor(*args, **kwargs):
        return ForkingExecutor(original(*args, **kwargs))

    get_executor._fl_credit_original = original  # type: ignore[attr-defined]
    superexec.get_executor = get_executor


# --- supernode_polling ------------------------------------------------------------------------


class _SuperNodeClock:
    """Stands in for the ``time`` module inside Flower's SuperNode loop: its two literal
    sleeps (3 s when the SuperLink had no message, 0.5 s while waiting for a reply) become
    ``idle`` and ``reply``; everything else is the real ``time`` module."""

    def __init__(self, idle: float, reply: float) -> None:
        self.idle = idle
        self.reply = reply

    def sleep(self, seconds: float) -> None:
        """The configured wait for Flower's idle (3 s) and reply (0.5 s) sleeps."""
        if seconds >= SUPERNODE_IDLE_SLEEP:
            time.sleep(self.idle)
        elif seconds == SUPERNODE_REPLY_SLEEP:
            time.sleep(self.reply)
        else:
            time.sleep(seconds)

    def __getattr__(self, name: str):
        return getattr(time, name)


def _supernode_polling(idle: float, reply: float) -> None:
    module = importlib.import_module(SUPERNODE)
    clock = _SuperNodeClock(idle, reply)
    clock._fl_credit_original = time  # type: ignore[attr-defined]
    module.time = clock
