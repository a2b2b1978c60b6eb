"""Running the protocol in one process: without Flower, or with a Ray-free Flower Grid.

:class:`LocalFederation` calls the protocol functions directly; requests and replies are
the same dicts the Flower glue carries in ConfigRecords, so it exercises exactly the code
the banks and the server run, minus the transport. :class:`InProcessGrid` is a Flower
``Grid`` that runs a ClientApp per node in this process, for fast end-to-end tests of a
ServerApp/strategy with the real mods (for tests and benchmarks).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flwr.app import Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.common.constant import SUPERLINK_NODE_ID, ErrorCode
from flwr.common.serde import (
    context_from_proto,
    context_to_proto,
    message_from_proto,
    message_to_proto,
)
from flwr.proto.message_pb2 import Context as ProtoContext  # pylint: disable=E0611
from flwr.serverapp import Grid
from flwr.supercore.run import Run
from flwr.supercore.task_identity import TaskIdentity

from .bank_protocol import client_advertise, client_mask, client_share_keys, client_unmask
from .coordinator_protocol import ServerEpoch, ServerInstance
from .identity import Consortium, Identity, generate_identity, make_consortium
from .protocol import ProtocolError, default_threshold
from .vector import Bounds, Layout

Tamper = Callable[[int, dict[str, Any]], dict[str, Any] | None]


def simulated_identities(
    num_banks: int, weights: Mapping[str, float] | None = None
) -> tuple[dict[str, Identity], Consortium]:
    """Fresh identities ``bank_0 ... bank_<n-1>`` and their roster (tests, benchmarks)."""
    identities = {f"bank_{k}": generate_identity(f"bank_{k}") for k in range(num_banks)}
    return identities, make_consortium(identities.values(), weights)


def partition_identities(
    identities: Mapping[str, Identity], consortium: Consortium
) -> Callable[[Context], tuple[Identity, Consortium]]:
    """Identity provider for simulated nodes: partition ``k`` is bank ``bank_k``."""
    idents = dict(identities)

    def provider(context: Context) -> tuple[Identity, Consortium]:
        return idents[f"bank_{int(context.node_config['partition-id'])}"], consortium

    return provider


@dataclass
class LocalFederation:
    """Banks (``node_ids``) and an honest server talking through direct function calls.

    Bank ``k`` (in sorted node order) is named ``bank_k`` and gets a fresh identity; all
    share one roster (:attr:`consortium`).

    Parameters
    ----------
    node_ids : Iterable[int]
        The banks' node ids.
    threshold : int, optional
        Shamir threshold (default: majority).
    """

    node_ids: Iterable[int]
    threshold: int | None = None
    states: dict[int, dict[str, Any]] = field(default_factory=dict)
    epoch: ServerEpoch | None = None

    def __post_init__(self) -> None:
        self.node_ids = sorted(int(n) for n in self.node_ids)
        self.states = {n: {} for n in self.node_ids}
        idents, self.consortium = simulated_identities(len(self.node_ids))
        self.identities = {n: idents[f"bank_{k}"] for k, n in enumerate(self.node_ids)}

    def setup(self, absent: Iterable[int] = ()) -> ServerEpoch:
        """Run the two key-setup exchanges; ``absent`` banks do not answer."""
        skip = set(absent)
        nodes = [n for n in self.node_ids if n not in skip]
        epoch_id = ServerEpoch.new_id()
        adv = {
            n: client_advertise(
                self.states[n],
                n,
                ServerEpoch.advertise_request(epoch_id),
                self.identities[n],
                self.consortium.members,
            )
            for n in nodes
        }
        adverts, _ = ServerEpoch.collect_advertise(epoch_id, adv, self.consortium)
        t = self.threshold or default_threshold(len(adverts))
        request = ServerEpoch.share_keys_request(epoch_id, adverts, t)
        shares = {n: client_share_keys(self.states[n], n, request, self.consortium) for n in nodes}
        self.epoch = ServerEpoch.from_share_keys(epoch_id, adverts, t, shares)
        return self.epoch

    def mask(
        self,
        plains: Mapping[int, np.ndarray],
        bounds: Bounds,
        mode: str = "sum",
        kind: str = "",
        model: bytes = b"",
    ) -> tuple[ServerInstance, dict[int, dict[str, Any]]]:
        """Open an instance over ``plains``' banks and let each one mask its vector."""
        assert self.epoch is not None
        inst = self.epoch.open_instance(sorted(plains), bounds, mode)
        return inst, {
            n: client_mask(self.states[n], n, inst.mask_request(n), plains[n], kind, model)
            for n in plains
        }

    def unmask(self, inst: ServerInstance, quiet: Iterable[int] = ()) -> dict[int, dict[str, Any]]:
        """Every survivor not in ``quiet`` answers the unmask request."""
        skip = set(quiet)
        return {
            n: client_unmask(self.states[n], n, inst.unmask_request(n))
            for n in inst.survivors
            if n not in skip
        }

    def aggregate(
        self,
        plains: Mapping[int, np.ndarray],
        layout: Layout,
        bounds: Bounds,
        drop_before_reply: Iterable[int] = (),
        drop_before_unmask: Iterable[int] = (),
        tamper: Tamper | None = None,
    ) -> tuple[np.ndarray, ServerInstance]:
        """One full instance; returns the unmasked ring sum and the server's instance.

        ``drop_before_reply`` banks mask but their replies are lost; ``tamper(node, reply)``
        may alter or drop (return None) a reply before the server sees it;
        ``drop_before_unmask`` survivors do not answer the unmask request.
        """
        inst, replies = self.mask(plains, bounds, layout.mode)
        lost = set(drop_before_reply)
        received: dict[int, dict[str, Any] | None] = {}
        for node, reply in replies.items():
            if node in lost:
                continue
            received[node] = tamper(node, dict(reply)) if tamper else reply
        inst.collect_masked(received, dict.fromkeys(received, layout.to_json()))
        if len(inst.survivors) < inst.epoch.threshold:
            raise ProtocolError(f"only {len(inst.survivors)} survivors")
        return inst.finish(self.unmask(inst, drop_before_unmask)), inst


def _ensure_task_identity() -> None:
    """Messages need a run/task identity, which a real ServerApp process sets at start."""
    for attr, value in (("run_id", 1), ("node_id", SUPERLINK_NODE_ID), ("task_id", 1)):
        try:
            getattr(TaskIdentity, attr)
        except RuntimeError:
            setattr(TaskIdentity, attr, value)


class InProcessGrid(Grid):
    """A Grid that runs a ClientApp for every simulated node in this process.

    Like the Deployment Engine, each message is handled with a Context restored from its
    serialized form (and saved back afterwards), and messages go through protobuf, so
    anything kept outside ``context.state`` or not serializable shows up at once. No
    Ray, no threads: suited to fast tests of ServerApp logic.

    Parameters
    ----------
    client_app : ClientApp
        The app every node runs.
    num_nodes : int
        Number of nodes; node ``k`` gets ``node_config = {"partition-id": k,
        "num-partitions": num_nodes}``.
    seed : int (default: 0)
        Seed of the (random 64-bit) node ids.
    """

    def __init__(self, client_app: ClientApp, num_nodes: int, seed: int = 0) -> None:
        rng = random.Random(seed)
        self.app = client_app
        self.node_ids = [rng.getrandbits(64) | 1 for _ in range(num_nodes)]
        self.partition = {n: k for k, n in enumerate(self.node_ids)}
        self._contexts = {
            n: context_to_proto(
                Context(
                    run_id=1,
                    node_id=n,
                    node_config={"partition-id": k, "num-partitions": num_nodes},
                    state=RecordDict(),
                    run_config={},
                )
            ).SerializeToString()
            for k, n in enumerate(self.node_ids)
        }
        self.log: list[tuple[str, int, Message]] = []  # (message type, node, reply)
        self._run: Run | None = None
        _ensure_task_identity()

    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        assert self._run is not None
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, group_id=group_id, ttl=ttl)

    def get_node_ids(self) -> list[int]:
        return list(self.node_ids)

    def push_messages(self, messages: Iterable[Message]) -> list[str]:
        raise NotImplementedError("use send_and_receive")

    def pull_messages(self, message_ids: Iterable[str]) -> list[Message]:
        raise NotImplementedError("use send_and_receive")

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> list[Message]:
        """Deliver each message to its node's ClientApp and return the replies."""
        replies = []
        for msg in messages:
            msg.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            node = msg.metadata.dst_node_id
            wire = message_from_proto(message_to_proto(msg))
            proto = ProtoContext()
            proto.ParseFromString(self._contexts[node])
            context = context_from_proto(proto)
            try:
                reply = self.app(wire, context)
            except Exception as err:  # a crashing ClientApp still replies (error)
                reply = Message(
                    Error(code=ErrorCode.CLIENT_APP_RAISED_EXCEPTION, reason=repr(err)),
                    reply_to=wire,
                )
            else:
                self._contexts[node] = context_to_proto(context).SerializeToString()
            reply.metadata.__dict__["_message_id"] = uuid.uuid4().hex
            reply = message_from_proto(message_to_proto(reply))
            self.log.append((msg.metadata.message_type, node, reply))
            replies.append(reply)
        return replies
