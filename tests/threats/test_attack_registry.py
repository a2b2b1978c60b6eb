"""Adding an attack is one file plus its YAML: a toy attack registered here, from a test
module, is accepted by the config validation, composed from its ``conf/attack`` YAML, built
by the attack mod and acts on a train reply. Nothing else names it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict

from fl_credit.config.compose import compose_experiment, conf_dir
from fl_credit.config.errors import ConfigError
from fl_credit.threats.attacks import attack_mods
from strategies.attacks import ATTACKS, Attack, attack_names, register_attack

# --- the one file a new attack is (in strategies/attacks/, with ``@register_attack`` on the
# class; here the fixture below registers it, so that it leaves the registry after this module)


class HalfStep(Attack):
    """Toy model poisoning: send ``global + factor * update`` (a damped honest update)."""

    name = "toy_half_step"
    params = ("factor",)

    def __init__(self, factor: float = 0.5) -> None:
        self.factor = float(factor)

    def rewrite(self, exchange, tools):
        pairs = zip(exchange.global_arrays, exchange.update, strict=True)
        return [g + self.factor * u for g, u in pairs], exchange.weight


YAML = """# Toy: the attacked banks send half their honest update.
name: toy_half_step
banks: [1]
start_round: 1
factor: 0.25
"""

# --- the checks ----------------------------------------------------------------------------


@pytest.fixture(autouse=True, scope="module")
def registered():
    register_attack(HalfStep)
    yield
    del ATTACKS[HalfStep.name]


@pytest.fixture
def conf_with_toy(tmp_path):
    folder = tmp_path / "conf"
    shutil.copytree(conf_dir(), folder)
    (folder / "attack" / "toy_half_step.yaml").write_text(YAML)
    return folder


def test_the_registry_lists_the_toy_attack():
    assert "toy_half_step" in attack_names()
    assert ATTACKS["toy_half_step"] is HalfStep


def test_an_unregistered_attack_is_refused_by_the_validation(conf_with_toy):
    (conf_with_toy / "attack" / "not_registered.yaml").write_text("name: not_registered\n")
    with pytest.raises(ConfigError, match="attack must be one of"):
        compose_experiment(["attack=not_registered"], config_dir=conf_with_toy)


def test_the_toy_attack_runs_through_config_and_mod(conf_with_toy):
    from strategies.secagg.inprocess import InProcessGrid

    cfg, raw = compose_experiment(["attack=toy_half_step"], config_dir=conf_with_toy)
    assert cfg.attack.name == "toy_half_step" and cfg.attack.factor == 0.25
    assert cfg.train.optimizer == "sgd"  # a model-rewriting attack needs model-update rounds
    (mod,) = attack_mods(cfg, num_banks=3)

    from flwr.clientapp import ClientApp

    InProcessGrid(ClientApp(), 1)  # the process's task identity, as a ServerApp sets it
    arrays = ArrayRecord({"w": Array(np.ones(3, np.float32)), "b": Array(np.zeros(1, np.float32))})
    request = Message(
        RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": 1})}),
        dst_node_id=1,
        message_type="train",
    )

    def honest(msg: Message, context: Context) -> Message:  # update: +1 on every weight
        new = ArrayRecord({k: Array(v.numpy() + 1.0) for k, v in msg.content["arrays"].items()})
        reply = RecordDict({"arrays": new, "metrics": MetricRecord({"num-examples": 10})})
        return Message(reply, reply_to=msg)

    def sent(pid: int) -> np.ndarray:
        ctx = Context(
            run_id=1, node_id=1, node_config={"partition-id": pid}, state=RecordDict(),
            run_config={},
        )
        return mod(request, ctx, honest).content["arrays"]["w"].numpy()

    np.testing.assert_allclose(sent(1), 1.25)  # the attacked bank: global + 0.25 * update
    np.testing.assert_allclose(sent(0), 2.0)  # an honest bank


@pytest.mark.parametrize("name", [n for n in attack_names() if n != "none"])
def test_every_registered_attack_builds_from_its_defaults(name, tmp_path):
    from strategies.attacks import make_attack

    attack = make_attack(name, [0, 1], num_banks=10, channel=str(tmp_path))
    assert isinstance(attack, ATTACKS[name]) and attack.name == name
