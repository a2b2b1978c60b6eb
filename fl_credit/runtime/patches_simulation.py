"""The Flower patches of the simulation runtime: ``backend``, ``keep_ray``, ``prompt_polling``
(see :mod:`fl_credit.runtime.flower_patches`, which applies them)."""

from __future__ import annotations

import functools
import importlib
import queue
import sys
import threading
import time
import types
from collections.abc import Callable

VCE_API = "flwr.server.superlink.fleet.vce.vce_api"
RAY_BACKEND = "flwr.server.superlink.fleet.vce.backend.raybackend"
GRID = "flwr.superlink.grid.inmemory_grid"
LINK_STATE = "flwr.server.superlink.linkstate.in_memory_linkstate"

# First 16 hex digits of the sha256 of ``inspect.getsource`` of every Flower object a patch
# relies on, at flower_patches.PINNED_FLOWER.
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

FALLBACK_POLL_SECONDS = 0.1
QUEUE_TIMEOUT_CAP_SECONDS = 0.05


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
