"""Every change fl-credit makes to Flower's internals, behind :func:`apply_patches`.

``fl_credit.runtime.engine.simulate`` runs every simulation inside ``with apply_patches(...)``.

Flower is pinned (``flwr==1.41.0`` in ``pyproject.toml``). Each patch described below (code in
:mod:`.patches_simulation` and :mod:`.patches_deployment`) replaces or
wraps named Flower functions; ``PINNED_*SOURCES`` hold a sha256 prefix of each of those
functions' source at the pinned version. :func:`apply_patches` checks them before patching
and raises :class:`FlowerChangedError` when one differs (a patch written for one version
must not be laid over another), and ``tests/runtime/test_engine_patches.py`` fails loudly on the
same check, so an upgrade of Flower cannot slip past unnoticed.

``apply_patches("simulation", ...)`` (Flower's simulation runtime, used by
``fl_credit.runtime.engine``):

``backend``
    Flower 1.41's simulation runtime hard-codes ``RayBackend``, imported from its module when
    the run starts (``vce_api.start_vce``). The in-process backend is selected by serving
    that module's name with a small stand-in whose ``RayBackend`` is the in-process class,
    which also spares importing Ray when Ray is not used. Selecting Ray puts
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
    process, which imports Flower's client runtime, torch, pandas and the app: seconds per
    message. The patched executor forks each ClientApp task from the
    SuperExec process instead, which imported those dependencies once; the child runs
    Flower's own ``run_clientapp`` with the same arguments ``flwr-clientapp`` would get, and
    exits. Every message still runs in its own process (state still travels in
    ``context.state``) and the app's code is still loaded from the run's FAB, never from the
    warm parent. Other task types, and runs that install dependencies at run time, go to
    Flower's own executor unchanged.
``install_each_fab_once`` (in the forked child)
    ``run_clientapp`` unzips and hash-checks the whole FAB on every message before finding
    the app installed; the wrapper skips that once a marker
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
import hashlib
import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass

from fl_credit.config.errors import FlCreditError
from fl_credit.runtime import patches_deployment as deployment
from fl_credit.runtime import patches_simulation as simulation

PINNED_FLOWER = "1.41.0"


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
        obj = simulation._real_module(module_name)
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
            "patches against it (then update the pinned sources): " + "; ".join(problems)
        )
    _CHECKED.add(name)


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
        _check("superexec", deployment.PINNED_SUPEREXEC_SOURCES)
        deployment._fork_clientapps()
        yield _state
        return
    if runtime == "supernode":
        _check("supernode", deployment.PINNED_SUPERNODE_SOURCES)
        deployment._supernode_polling(idle_poll_seconds, reply_poll_seconds)
        yield _state
        return
    _check("simulation", simulation.PINNED_SOURCES)
    if backend is None:
        _check("ray", simulation.PINNED_RAY_SOURCES)
        simulation._select_backend(None)
        if keep_ray:
            simulation._keep_ray_running()
    if prompt_polling:
        simulation._prompt_polling()
    _state = PatchState(
        backend="ray" if backend is None else backend.__name__,
        keep_ray=_state.keep_ray or (backend is None and keep_ray),
        prompt_polling=_state.prompt_polling or prompt_polling,
    )
    if backend is not None:
        simulation._select_backend(backend)
    try:
        yield _state
    finally:
        if backend is not None:
            simulation._restore_backend()
