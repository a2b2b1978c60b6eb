"""Every change fl-credit makes to Flower's internals, behind :func:`apply_patches`.

``fl_credit.runtime.engine.simulate`` runs every simulation inside ``with apply_patches(...)``.

Flower is pinned (``flwr==1.41.0`` in ``pyproject.toml``). Each patch below replaces or
wraps named Flower functions; ``PINNED_*SOURCES`` hold a sha256 prefix of each of those
functions' source at the pinned version. :func:`apply_patches` checks them before patching
and raises :class:`FlowerChangedError` when one differs (a patch written for one version
must not be laid over another), and ``tests/test_engine_patches.py`` fails loudly on the
same check, so an upgrade of Flower cannot slip past unnoticed.

``apply_patches("simulation", ...)`` (Flower's simulation runtime, used by
``fl_credit.runtime.engine``):

``backend``
    Flower 1.41's simulation runtime hard-codes ``RayBackend``, imported from its module when
    the run starts (``vce_api.start_vce``). The in-process backend is selected by serving
    that module's name with a small stand-in whose ``RayBackend`` is the in-process class,
    which also spares importing Ray (about 0.45 s) when Ray is not used. Selecting Ray puts
    the real module back, and so does leaving the ``with`` block.
``keep_ray``
    ``RayBackend.terminate`` calls ``ray.shutdown()`` after every run, so every point of a
    sweep paid Ray's start-up again. The patched ``terminate`` still kills the run's actors
    but leaves Ray up; Ray stops when the process exits.
``prompt_polling``
    The runtime polls: the message extractor every 0.1 s (``add_messages_to_queue``), the
    ServerApp's grid every 0.1 s for replies (``InMemoryGrid.send_and_receive``), and the
    worker and reply threads block on queues with 1 s timeouts, which they see the stop
    event through at the end of a run. The patch wakes the extractor and the grid as soon
    as the link state stores a message or a reply (an event set by the wrapped
    ``store_message_ins`` / ``store_message_res``; 0.1 s remains the fallback, so messages
    the link state answers for itself, such as expired ones, are still seen), and caps the
    queues' timeouts at 50 ms. Nothing else about the runtime changes: same link state,
    same message validation, same per-node contexts.

``apply_patches("superexec")`` (a bank's SuperExec under the Deployment Engine, used by
``python -m fl_credit.runtime.warm_superexec``):

``fork_clientapps``
    Flower 1.41's SuperExec starts every ClientApp task as a fresh ``flwr-clientapp``
    process, which imports Flower's client runtime, torch, pandas and the app: 3-10 s per
    message on the 2-core machine. The patched executor forks each ClientApp task from the
    SuperExec process instead, which imported those dependencies once; the child runs
    Flower's own ``run_clientapp`` with the same arguments ``flwr-clientapp`` would get, and
    exits. Every message still runs in its own process (state still travels in
    ``context.state``) and the app's code is still loaded from the run's FAB, never from the
    warm parent. Other task types, and runs that install dependencies at run time, go to
    Flower's own executor unchanged.
``install_each_fab_once`` (in the forked child)
    ``run_clientapp`` unzips and hash-checks the whole FAB on every message before finding
    the app installed (1 s per message under load); the wrapper skips that once a marker
    with the FAB's full sha256 sits in the folder Flower installed it to, and compiles the
    app's modules there once.

``apply_patches("supernode", idle_poll_seconds=..., reply_poll_seconds=...)`` (a bank's
SuperNode, used by ``python -m fl_credit.supernode``):

``supernode_polling``
    Flower 1.41's SuperNode loop sleeps a hard-coded 3 s after asking the SuperLink for a
    message and getting none, and 0.5 s between looks for the ClientApp's reply; with one
    message per exchange, every exchange waited out most of the 3 s. The two sleeps become
    the given intervals (defaults 0.2 s and 0.05 s); nothing else changes.

Process teardown (``os._exit`` after the atexit handlers, :mod:`fl_credit.runtime.fast_exit`) and
the plain SGD step that keeps ``torch._dynamo`` unimported (:mod:`fl_credit.model.training`) are not
Flower patches and live with what they change.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import inspect
import os
import queue
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fl_credit.config.errors import FlCreditError

PINNED_FLOWER = "1.41.0"

VCE_API = "flwr.server.superlink.fleet.vce.vce_api"
RAY_BACKEND = "flwr.server.superlink.fleet.vce.backend.raybackend"
GRID = "flwr.superlink.grid.inmemory_grid"
LINK_STATE = "flwr.server.superlink.linkstate.in_memory_linkstate"

# First 16 hex digits of the sha256 of ``inspect.getsource`` of every Flower object a patch
# relies on, at PINNED_FLOWER.
PINNED_SOURCES: dict[str, str] = {
    f"{VCE_API}:start_vce": "2d5e267f893950a7",
    f"{VCE_API}:run_api": "f85c0cd6e902752f",
    f"{VCE_API}:add_messages_to_queue": "953f4bd41a931a77",
    f"{VCE_API}:worker": "60f308688ba34fb5",
    f"{VCE_API}:put_message_into_state": "3622eb5bfcd9cd1a",
    f"{GRID}:InMemoryGrid.send_and_receive": "0229edfa5741b928",
    f"{LINK_STATE}:InMemoryLinkState.store_message_ins": "a2b78afac51dc4a2",
    f"{LINK_STATE}:InMemoryLinkState.store_message_res": "52a4f7ccc70e8908",
}
# Checked only when the Ray backend is used (reading them imports Ray).
PINNED_RAY_SOURCES: dict[str, str] = {
    f"{RAY_BACKEND}:RayBackend.terminate": "572052de11fe046c",
    f"{RAY_BACKEND}:RayBackend.init_ray": "617470e8182cea2e",
}

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

FALLBACK_POLL_SECONDS = 0.1
QUEUE_TIMEOUT_CAP_SECONDS = 0.05


class FlowerChangedError(FlCreditError):
    """The installed Flower differs from the one the patches were written for."""


@dataclass(frozen=True)
class PatchState:
    """What :func:`apply_patches` has done in this process."""

    backend: str
    keep_ray: bool
    prompt_polling: bool


def resolve(target: str) -> object:
    """The object named ``module:attr.attr`` (imports the module)."""
    module_name, _, path = target.partition(":")
    obj: object = importlib.import_module(module_name)
    if getattr(obj, "_fl_credit_stand_in", False):
        obj = _real_module(module_name)
    for part in path.split("."):
        obj = getattr(obj, part)
    return getattr(obj, "_fl_credit_original", obj)


def source_hash(target: str) -> str:
    """First 16 hex digits of the sha256 of ``target``'s source (the unpatched original)."""
    return hashlib.sha256(inspect.getsource(resolve(target)).encode()).hexdigest()[:16]


def mismatches(pinned: dict[str, str]) -> list[str]:
    """The targets whose source differs from the pinned hash (empty when all match)."""
    import flwr

    found = []
    if flwr.__version__ != PINNED_FLOWER:
        found.append(f"flwr {flwr.__version__} installed, patches written for {PINNED_FLOWER}")
    for target, expected in pinned.items():
        try:
            actual = source_hash(target)
        except (ImportError, AttributeError, OSError, TypeError) as err:
            found.append(f"{target}: cannot read its source ({err})")
            continue
        if actual != expected:
            found.append(f"{target}: source changed (sha256 {actual}..., pinned {expected}...)")
    return found


_CHECKED: set[str] = set()


def _check(name: str, pinned: dict[str, str]) -> None:
    if name in _CHECKED:
        return
    problems = mismatches(pinned)
    if problems:
        raise FlowerChangedError(
            "fl_credit.runtime.flower_patches no longer matches the installed Flower; review the "
            "patches against it (then update PINNED_SOURCES): " + "; ".join(problems)
        )
    _CHECKED.add(name)


# --- backend ---------------------------------------------------------------------------------

_real_ray_backend: types.ModuleType | None = None


def _real_module(name: str) -> types.ModuleType:
    """The real module ``name`` even while a stand-in serves its name."""
    global _real_ray_backend
    if name != RAY_BACKEND:
        return importlib.import_module(name)
    if _real_ray_backend is None:
        stand_in = sys.modules.pop(RAY_BACKEND, None)
        try:
            _real_ray_backend = importlib.import_module(RAY_BACKEND)
        finally:
            if stand_in is not None:
                sys.modules[RAY_BACKEND] = stand_in
    return _real_ray_backend


def _select_backend(backend_class: type | None) -> None:
    """Serve ``RAY_BACKEND`` with a stand-in holding ``backend_class``, or the real module."""
    global _real_ray_backend
    current = sys.modules.get(RAY_BACKEND)
    if current is not None and not getattr(current, "_fl_credit_stand_in", False):
        _real_ray_backend = current
    if backend_class is None:
        sys.modules[RAY_BACKEND] = _real_module(RAY_BACKEND)
        return
    stand_in = types.ModuleType(RAY_BACKEND, "fl-credit stand-in: the in-process backend")
    stand_in.RayBackend = backend_class  # type: ignore[attr-defined]
    stand_in._fl_credit_stand_in = True  # type: ignore[attr-defined]
    sys.modules[RAY_BACKEND] = stand_in


def _restore_backend() -> None:
    """Serve ``RAY_BACKEND`` with Flower's module again (or nothing, if never imported)."""
    if getattr(sys.modules.get(RAY_BACKEND), "_fl_credit_stand_in", False):
        if _real_ray_backend is not None:
            sys.modules[RAY_BACKEND] = _real_ray_backend
        else:
            del sys.modules[RAY_BACKEND]


# --- keep_ray --------------------------------------------------------------------------------


def _keep_ray_running() -> None:
    backend = _real_module(RAY_BACKEND).RayBackend
    if hasattr(backend.terminate, "_fl_credit_original"):
        return

    def terminate(self) -> None:
        """Kill this run's actors; leave Ray running for the next run in this process."""
        if self.pool:
            self.pool.terminate_all_actors()

    terminate._fl_credit_original = backend.terminate  # type: ignore[attr-defined]
    backend.terminate = terminate


# --- prompt_polling --------------------------------------------------------------------------

_MESSAGE_STORED = threading.Event()
_REPLY_STORED = threading.Event()


def _notify_after(original: Callable, event: threading.Event) -> Callable:
    @functools.wraps(original)
    def store(self, message):
        stored = original(self, message)
        if stored is not None:
            event.set()
        return stored

    store._fl_credit_original = original  # type: ignore[attr-defined]
    return store


def add_messages_to_queue(state, queue_, nodes_mapping, f_stop) -> None:
    """Flower's extractor loop (``vce_api.add_messages_to_queue``), woken by new messages.

    Same work per pass (one pending message per node); the next pass starts at once when
    this one found messages or when the link state stores one, else after the fallback.
    """
    while not f_stop.is_set():
        _MESSAGE_STORED.clear()
        found = False
        for node_id in nodes_mapping.keys():
            for msg in state.get_message_ins(node_id=node_id, limit=1):
                queue_.put(msg)
                found = True
        if not found:
            _MESSAGE_STORED.wait(FALLBACK_POLL_SECONDS)


def send_and_receive(self, messages, *, timeout: float | None = None):
    """Flower's ``InMemoryGrid.send_and_receive``, woken by stored replies.

    Same contract: push, then pull until every reply arrived or ``timeout`` passed; between
    pulls it waits for the link state to store a reply (at most ``pull_interval``).
    """
    msg_ids = set(self.push_messages(messages))
    del messages
    end_time = time.time() + (timeout if timeout is not None else 0.0)
    ret = []
    while timeout is None or time.time() < end_time:
        _REPLY_STORED.clear()
        res_msgs = self.pull_messages(msg_ids)
        ret.extend(res_msgs)
        msg_ids.difference_update({msg.metadata.reply_to_message_id for msg in res_msgs})
        if len(msg_ids) == 0:
            break
        _REPLY_STORED.wait(self.pull_interval)
    return ret


class PromptQueue(queue.Queue):
    """A queue whose timed ``get`` waits at most :data:`QUEUE_TIMEOUT_CAP_SECONDS`.

    Flower's worker and reply threads block on ``get(timeout=1.0)`` and check the stop event
    in between; a shorter wait lets a finished run end within 50 ms instead of up to 1 s.
    """

    def get(self, block: bool = True, timeout: float | None = None):
        """``Queue.get`` with the timeout capped."""
        if timeout is not None:
            timeout = min(timeout, QUEUE_TIMEOUT_CAP_SECONDS)
        return super().get(block, timeout)


def _prompt_polling() -> None:
    vce_api = importlib.import_module(VCE_API)
    grid = importlib.import_module(GRID)
    link_state = importlib.import_module(LINK_STATE)
    if getattr(vce_api.add_messages_to_queue, "_fl_credit_original", None):
        return
    state_cls = link_state.InMemoryLinkState
    state_cls.store_message_ins = _notify_after(state_cls.store_message_ins, _MESSAGE_STORED)
    state_cls.store_message_res = _notify_after(state_cls.store_message_res, _REPLY_STORED)
    send_and_receive._fl_credit_original = grid.InMemoryGrid.send_and_receive
    grid.InMemoryGrid.send_and_receive = send_and_receive
    add_messages_to_queue._fl_credit_original = vce_api.add_messages_to_queue
    vce_api.add_messages_to_queue = add_messages_to_queue
    PromptQueue._fl_credit_original = vce_api.Queue
    vce_api.Queue = PromptQueue


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
    every message, then finds the app already installed (1 s per message on the loaded
    machine). The wrapper looks for the folder Flower installs that FAB to and a marker
    holding the FAB's full sha256, written after Flower's own install and check succeeded;
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


# --- the one entry point ---------------------------------------------------------------------

RUNTIMES = ("simulation", "superexec", "supernode")
_state = PatchState(backend="", keep_ray=False, prompt_polling=False)


@contextlib.contextmanager
def apply_patches(
    runtime: str = "simulation",
    *,
    backend: type | None = None,
    keep_ray: bool = True,
    prompt_polling: bool = True,
    idle_poll_seconds: float = 0.2,
    reply_poll_seconds: float = 0.05,
) -> Iterator[PatchState]:
    """Patch Flower 1.41 for the code run inside the ``with`` block.

    ``with apply_patches(backend=...): run_simulation(...)`` (``fl_credit.runtime.engine``),
    ``with apply_patches("superexec"): flower_superexec()`` (``fl_credit.runtime.warm_superexec``)
    or ``with apply_patches("supernode", ...): flower_supernode()`` (``fl_credit.supernode``).

    Parameters
    ----------
    runtime : {"simulation", "superexec", "supernode"}
        Which part of Flower runs in the block (the patches differ; see the module
        docstring).
    backend : type, optional
        Simulation only. A class implementing Flower's simulation ``Backend`` interface to
        run ClientApps with (``fl_credit.runtime.engine.InProcessBackend``); ``None`` selects
        Flower's Ray backend. The selection holds inside the block only; afterwards
        Flower's own module is back.
    keep_ray : bool
        Simulation only. With the Ray backend, leave Ray running after the run (one Ray
        instance for all runs of this process). Once applied it stays applied.
    prompt_polling : bool
        Simulation only. Wake the runtime's message extractor and the grid on new messages
        instead of polling every 0.1 s, and end a finished run within 50 ms. Once applied
        it stays applied.
    idle_poll_seconds, reply_poll_seconds : float
        SuperNode only. What Flower's hard-coded 3 s (asking the SuperLink for a message
        when the last ask found none) and 0.5 s (waiting for the ClientApp's reply) sleeps
        become.

    Yields
    ------
    PatchState
        What is in effect inside the block.

    Raises
    ------
    FlowerChangedError
        When the installed Flower is not the pinned one or a patched function's source
        differs from what the patch was written against; nothing is patched then.
    ValueError
        For an unknown ``runtime``.
    """
    global _state
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
    if runtime == "superexec":
        _check("superexec", PINNED_SUPEREXEC_SOURCES)
        _fork_clientapps()
        yield _state
        return
    if runtime == "supernode":
        _check("supernode", PINNED_SUPERNODE_SOURCES)
        _supernode_polling(idle_poll_seconds, reply_poll_seconds)
        yield _state
        return
    _check("simulation", PINNED_SOURCES)
    if backend is None:
        _check("ray", PINNED_RAY_SOURCES)
        _select_backend(None)
        if keep_ray:
            _keep_ray_running()
    if prompt_polling:
        _prompt_polling()
    _state = PatchState(
        backend="ray" if backend is None else backend.__name__,
        keep_ray=_state.keep_ray or (backend is None and keep_ray),
        prompt_polling=_state.prompt_polling or prompt_polling,
    )
    if backend is not None:
        _select_backend(backend)
    try:
        yield _state
    finally:
        if backend is not None:
            _restore_backend()
