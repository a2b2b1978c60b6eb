"""A deviating coordinator against the real bank code: equivocation, field games, differencing.

The banks are fl-credit's own ClientApp (``fl_credit.bank.client_app``: its moments and Newton
handlers, ``secagg_mod``, its identities and files) on an in-process grid. The test plays the
coordinator: it drives :class:`SecureAggregator` by hand and may send each bank a different
request. Every attack recovered the victim's data before the bank-side rules it tests
existed (the numbers are in the commit messages); each test now checks that the victim's
data does not come out.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict

from fl_credit.bank.client_app import load_bank, make_client_app, prepared_rows
from fl_credit.config.parsing import resolve_optimizer
from fl_credit.config.schema import ExperimentConfig, PartitionConfig
from fl_credit.coordinator.statistics import query_messages
from fl_credit.data.prepare import prepare, write_bank_files
from fl_credit.data.scaling import Standardizer, mean_from_sums, standardizer_from_sums
from fl_credit.model.training import newton_terms
from fl_credit.protocol.identity import identity_provider, write_identities
from fl_credit.protocol.keys import POS_WEIGHT, SCALER_KEYS, SCALER_MEAN
from fl_credit.protocol.settings import BankSettings
from strategies.newton import RANGE_FACTOR, NewtonSearch, fixed_point_bits, rounding_slack
from strategies.secagg import SecureAggregator
from strategies.secagg.inprocess import InProcessGrid
from strategies.secagg.records import SECAGG_KEY
from strategies.secagg.vector import Bounds

VICTIM = 0  # partition id of the bank the coordinator wants to isolate


class Coordinator:
    """The fl-credit banks of ``cfg`` and a coordinator free to deviate from the protocol."""

    def __init__(self, cfg: ExperimentConfig, embedded, folder: Path) -> None:
        cfg = resolve_optimizer(cfg)
        self.cfg = cfg
        prepared = prepare(cfg, embedded)
        self.bank_dir = folder / "banks"
        write_bank_files(prepared, self.bank_dir, suffix=".npz")
        rows = {name: info["rows"] for name, info in prepared.bank_info.items()}
        roster = write_identities(self.bank_dir, rows, weights=rows)
        self.n = len(prepared.banks)
        self.grid = InProcessGrid(make_client_app([], identity_provider(self.bank_dir)), self.n)
        self.nodes = self.grid.get_node_ids()
        self.victim = self.nodes[VICTIM]
        self.others = [n for n in self.nodes if n != self.victim]
        self.agg = SecureAggregator(consortium=roster)
        self.bank_settings = BankSettings.from_experiment(cfg, bank_dir=str(self.bank_dir))
        self.settings = self.bank_settings.to_config()
        self.count = 0.0
        self.pos_weight = 1.0
        self.scaler: Standardizer | None = None
        self.ring: np.ndarray | None = None  # the last unmasked ring sum (tag included)

    def config(self, **extra: object) -> ConfigRecord:
        merged = ConfigRecord(dict(self.settings))
        for key, value in extra.items():
            merged[key] = value  # type: ignore[assignment]
        return merged

    def ask(
        self,
        message_type: str,
        contents: dict[int, RecordDict],
        value_range: float,
        **extra: object,
    ) -> tuple[dict | None, object]:
        """One secure sum over ``contents``' banks, each sent its own content."""
        bits = fixed_point_bits(len(contents), value_range)
        bounds = Bounds(value_range=value_range, metric_range=value_range, max_weight=1.0,
                        bits=bits)  # fmt: skip
        pending = self.agg.begin(self.grid, list(contents), "sum", bounds, label=message_type)
        if pending.instance is None:
            return None, pending.report
        records = {n: pending.request_record(n, **extra) for n in pending.participants}
        messages = [
            Message(
                RecordDict({**dict(contents[n].items()), SECAGG_KEY: records[n]}),
                dst_node_id=n,
                message_type=message_type,
            )
            for n in pending.participants
        ]
        replies = self.grid.send_and_receive(messages)
        decoded, report = self.agg.complete(self.grid, pending, replies)
        if decoded is None:
            return None, report
        self.ring = decoded.ring
        return {**decoded.arrays, **decoded.metrics}, report

    def moments(self, nodes: list[int], config: dict[int, ConfigRecord]) -> dict | None:
        contents = {n: RecordDict({"config": config[n]}) for n in nodes}
        return self.ask("query.moments", contents, 1e13)[0]

    def agree_standardizer(self) -> np.ndarray:
        """The honest statistics over every bank, handed to every bank; the first pass."""
        first = self.moments(self.nodes, dict.fromkeys(self.nodes, self.config(**{"pass": 1})))
        assert first is not None
        values = first[("arrays", "0")]
        self.count, mean = mean_from_sums(values[1:])
        pass_two = self.config(**{"pass": 2, SCALER_MEAN: mean.tolist(), "count": self.count})
        second = self.moments(self.nodes, dict.fromkeys(self.nodes, pass_two))
        assert second is not None
        squares = second[("arrays", "0")] * self.count
        self.scaler = standardizer_from_sums(self.count, mean, squares)
        self.pos_weight = (self.count - values[0]) / values[0]
        agreed = {k: a.tolist() for k, a in zip(SCALER_KEYS, self.scaler.arrays(), strict=False)}
        agreed[POS_WEIGHT] = self.pos_weight
        replies = self.grid.send_and_receive(
            query_messages(self.nodes, "standardizer", self.config(**agreed))
        )
        assert not any(r.has_error() for r in replies)
        return values

    def chain_spec(self) -> dict[str, object]:
        """The public configuration of the banks' model chain (as the strategy sends it)."""
        names = ["linear.weight", "linear.bias"]
        return {"chain": "newton", "chain-l2": self.cfg.train.l2, "chain-tol": self.cfg.train.tol,
                "chain-rows": self.count, "chain-arrays": names}  # fmt: skip

    def newton(self, models: dict[int, ArrayRecord], **extra: object) -> tuple[dict | None, object]:
        """A Newton round: each bank gets its own model (the coordinator's choice), on the
        chain (``extra`` may forward the previous sum, ``prev-sum``)."""
        config = self.config(optimizer="newton", **{"server-round": 1})
        contents = {n: RecordDict({"arrays": a, "config": config}) for n, a in models.items()}
        extra = {**self.chain_spec(), **extra}
        return self.ask("train", contents, RANGE_FACTOR * self.pos_weight * self.count, **extra)

    def truth(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """The victim's own Newton terms at ``theta``, computed by the bank's own code."""
        context = Context(run_id=1, node_id=self.victim, node_config={"partition-id": VICTIM},
                          state=RecordDict(), run_config={})  # fmt: skip
        assert self.scaler is not None
        rows = prepared_rows(context, self.bank_settings, self.scaler)
        return newton_terms(rows.x_train, rows.y_train, self.pos_weight, theta)

    def victim_file(self):
        context = Context(run_id=1, node_id=self.victim, node_config={"partition-id": VICTIM},
                          state=RecordDict(), run_config={})  # fmt: skip
        return load_bank(context, self.bank_settings)


def model(theta: np.ndarray, order: tuple[str, str] = ("linear.weight", "linear.bias")):
    arrays = {"linear.weight": Array(theta[None, :-1].copy()), "linear.bias": Array(theta[-1:])}
    return ArrayRecord({name: arrays[name] for name in order})


def relative(recovered: np.ndarray, truth: np.ndarray) -> float:
    return float(np.max(np.abs(recovered - truth)) / max(np.max(np.abs(truth)), 1e-300))


@pytest.fixture
def three(embedded, tmp_path) -> Coordinator:
    """The default federation: 3 banks 25/25/50, secure aggregation, Newton, no DP."""
    return Coordinator(ExperimentConfig(), embedded, tmp_path)


@pytest.fixture
def four(embedded, tmp_path) -> Coordinator:
    cfg = dataclasses.replace(
        ExperimentConfig(), partition=PartitionConfig(scheme="power", banks=4, skew=0.0)
    )
    return Coordinator(cfg, embedded, tmp_path)


def test_a_model_sent_to_the_victim_alone_gives_garbage(three: Coordinator) -> None:
    """Equivocation across instances: instance 1 sends theta to every bank, instance 2 theta
    to the others and a saturating model to the victim; the difference of the two sums was
    the victim's Hessian and its default count."""
    fed = three
    fed.agree_standardizer()
    d = len(fed.scaler.mean) + 1  # type: ignore[union-attr]
    theta = np.zeros(d)
    first, _ = fed.newton(dict.fromkeys(fed.nodes, model(theta)))
    assert first is not None
    saturating = theta.copy()
    saturating[-1] = -40.0  # every row's probability 0: Hessian 0, gradient -s y
    second, report = fed.newton(
        {n: model(saturating if n == fed.victim else theta) for n in fed.nodes}
    )
    if second is not None:
        hess = first[("arrays", "hess")] - second[("arrays", "hess")]
        truth_grad, truth_hess, truth_loss = fed.truth(theta)
        loss_gap = first[("metrics", "loss")] - second[("metrics", "loss")]
        defaults = (np.log(2.0) * 4.0 * hess[-1, -1] - loss_gap) / 40.0 / fed.pos_weight
        print(
            f"model equivocation: victim's Hessian to {relative(hess, truth_hess):.1e} "
            f"relative, defaults {defaults:.3f} (true {fed.victim_file().y_train.sum()})"
        )
    assert second is None, "the victim's terms came out of an equivocated instance"
    # The victim's chain refuses a model it cannot recompute (before the view binding, which
    # also refuses it: test_a_shifted_mean_sent_to_the_victim_alone_gives_garbage).
    assert "model chain" in report.rejected[fed.victim]
    again, _ = fed.newton(dict.fromkeys(fed.nodes, model(theta)))
    assert again is not None  # the honest retry aggregates as before


def test_a_shifted_mean_sent_to_the_victim_alone_gives_garbage(three: Coordinator) -> None:
    """Equivocation inside the pinned statistics: the second pass of the moments query is
    asked again (same banks, so allowed) with the victim alone sent a shifted mean, twice;
    the differences gave its row count and feature sums."""
    fed = three
    fed.agree_standardizer()
    assert fed.scaler is not None
    mean, count = fed.scaler.mean, fed.count
    honest = fed.config(**{"pass": 2, SCALER_MEAN: mean.tolist(), "count": count})
    base = fed.moments(fed.nodes, dict.fromkeys(fed.nodes, honest))
    assert base is not None
    delta = 100.0
    shifted = []
    for k in (1, 2):
        lie = fed.config(**{"pass": 2, SCALER_MEAN: (mean + k * delta).tolist(), "count": count})
        sums = fed.moments(fed.nodes, {n: lie if n == fed.victim else honest for n in fed.nodes})
        shifted.append(None if sums is None else sums[("arrays", "0")] - base[("arrays", "0")])
    if shifted[0] is not None and shifted[1] is not None:
        rows = (shifted[1] - 2 * shifted[0]) * count / (2 * delta**2)
        centred = (rows * delta**2 - shifted[0] * count) / (2 * delta)
        bank = fed.victim_file()
        print(
            f"mean equivocation: victim's rows {np.median(rows):.4f} (true {len(bank.y_train)}), "
            f"feature sums to {relative(centred + rows * mean, bank.x_train.sum(0)):.1e} relative"
        )
    assert all(s is None for s in shifted), "the victim's statistics came out of an equivocation"


def test_the_once_per_model_rule_digests_the_model_the_bank_uses(four: Coordinator) -> None:
    """The rule used to hash the arrays under a key the request names: naming a missing key
    skipped it, reordering the arrays gave a new digest. Either way the same model again
    without the victim gave its exact gradient, Hessian, repaid and default counts."""
    fed = four
    fed.agree_standardizer()
    theta = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    first, _ = fed.newton(dict.fromkeys(fed.nodes, model(theta)))
    assert first is not None
    games = {
        "missing key": ({}, {"arrays-key": "elsewhere"}),
        "reordered arrays": ({"order": ("linear.bias", "linear.weight")}, {}),
    }
    for name, (how, extra) in games.items():
        second, report = fed.newton(dict.fromkeys(fed.others, model(theta, **how)), **extra)
        if second is not None:
            hess = first[("arrays", "hess")] - second[("arrays", "hess")]
            grad = first[("arrays", "grad")] - second[("arrays", "grad")]
            truth_grad, truth_hess, _ = fed.truth(theta)
            repaid = 2 * hess[-1, -1] + grad[-1]
            defaults = (2 * hess[-1, -1] - grad[-1]) / fed.pos_weight
            y = fed.victim_file().y_train
            print(
                f"{name}: victim's gradient to {relative(grad, truth_grad):.1e}, Hessian to "
                f"{relative(hess, truth_hess):.1e} relative; repaid {repaid:.3f} "
                f"(true {len(y) - y.sum()}), defaults {defaults:.3f} (true {y.sum()})"
            )
        assert second is None, f"{name}: the same model was answered again without the victim"
        assert all("refus" in r or "already" in r for r in report.rejected.values())


def test_statistics_minus_a_first_round_without_the_victim_is_refused(four: Coordinator) -> None:
    """Differencing across kinds: the pinned moments over all banks minus a first Newton
    round at the initial model (zero) over all but the victim gave its defaults, rows and
    feature sums, every rule of the time satisfied."""
    fed = four
    first_pass = fed.agree_standardizer()
    theta = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    rest, report = fed.newton(dict.fromkeys(fed.others, model(theta)))
    if rest is not None:
        grad, hess = rest[("arrays", "grad")], rest[("arrays", "hess")]
        repaid = 2 * hess[-1, -1] + grad[-1]  # of the other banks, as above
        defaults = (2 * hess[-1, -1] - grad[-1]) / fed.pos_weight
        repaid_x = grad[:-1] + 2 * hess[:-1, -1]  # sums of the scaled features, per class
        defaults_x = (4 * hess[:-1, -1] - repaid_x) / fed.pos_weight
        others_x = (repaid_x + defaults_x) * fed.scaler.std + (repaid + defaults) * fed.scaler.mean
        bank = fed.victim_file()
        print(
            f"statistics minus round 1: victim's defaults {first_pass[0] - defaults:.3f} "
            f"(true {bank.y_train.sum()}), rows {first_pass[1] - repaid - defaults:.3f} "
            f"(true {len(bank.y_train)}), feature sums to "
            f"{relative(first_pass[2:] - others_x, bank.x_train.sum(0)):.1e} relative"
        )
    assert rest is None, "a first round without the victim was answered after the statistics"
    assert all("ledger" in r for r in report.rejected.values())


def test_a_float32_copy_of_the_model_is_the_same_model(four: Coordinator) -> None:
    """Smarter: the same model in another dtype (the bank then computes in float32, so the
    old byte digest saw a new model). The digest of the used model is of float64 values."""
    fed = four
    fed.agree_standardizer()
    theta = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    assert fed.newton(dict.fromkeys(fed.nodes, model(theta)))[0] is not None
    single = ArrayRecord(
        {name: Array(arr.numpy().astype(np.float32)) for name, arr in model(theta).items()}
    )
    again, report = fed.newton(dict.fromkeys(fed.others, single))
    assert again is None
    assert all("already revealed" in r for r in report.rejected.values())


def test_near_identical_replay_is_refused_on_the_chain(four: Coordinator) -> None:
    """A model perturbed by 1e-12 is new to the once-per-model rule, so a round over all
    banks and the next one without the victim gave its terms (Hessian to 5e-14 relative
    before the chain). Each bank now answers only at the model it recomputes from the
    previous sum (and trains at that model: a server whose arithmetic differs by rounding
    is tolerated, its point is not used): the replay is refused, with or without the
    forwarded sum, within the tolerance (1e-12: the once-per-model rule refuses the bank's
    own point again) and beyond it (1e-6: the chain refuses)."""
    fed = four
    theta, first = first_round(fed)
    forwarded = {"prev-sum": fed.ring.tobytes()}
    for extra, shift in ((e, s) for e in ({}, forwarded) for s in (1e-12, 1e-6)):
        near, report = fed.newton(dict.fromkeys(fed.others, model(theta + shift)), **extra)
        if near is not None:
            hess = first[("arrays", "hess")] - near[("arrays", "hess")]
            error = relative(hess, fed.truth(theta)[1])
            print(f"near-identical replay: victim's Hessian to {error:.1e} relative")
        assert near is None, "a near-identical replay isolated the victim"
        why = "already revealed" if shift < 1e-9 and not extra else "model chain"
        assert all(why in r for r in report.rejected.values()), report.rejected


def first_round(fed: Coordinator) -> tuple[np.ndarray, dict]:
    """The statistics, then an honest first chained round at the zero model over all banks."""
    fed.agree_standardizer()
    theta = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    first, _ = fed.newton(dict.fromkeys(fed.nodes, model(theta)))
    assert first is not None and fed.ring is not None
    return theta, first


def next_search(fed: Coordinator, theta0: np.ndarray, sums: list[dict]) -> NewtonSearch:
    """The chain's search after ``sums``, as the honest strategy computes it."""
    spec = fed.chain_spec()
    search = NewtonSearch(theta0, spec["chain-l2"], spec["chain-rows"], spec["chain-tol"])
    bits = fixed_point_bits(fed.n, RANGE_FACTOR * fed.pos_weight * fed.count)
    for total in sums:
        search.observe(total[("arrays", "grad")],
                       total[("arrays", "hess")], total[("metrics", "loss")],
                       slack=rounding_slack(fed.n, bits, fed.count))  # fmt: skip
    return search


def test_an_arbitrary_probe_point_is_refused(three: Coordinator) -> None:
    """With the true sum forwarded, a point of the coordinator's choosing (not the Newton
    candidate) is refused by every bank; the true candidate is then accepted."""
    fed = three
    theta, first = first_round(fed)
    forwarded = {"prev-sum": fed.ring.tobytes()}
    probe = theta.copy()
    probe[3] = 5.0
    out, report = fed.newton(dict.fromkeys(fed.nodes, model(probe)), **forwarded)
    assert out is None and all("model chain" in r for r in report.rejected.values())
    target = next_search(fed, theta, [first]).candidate
    out, report = fed.newton(dict.fromkeys(fed.nodes, model(target)), **forwarded)
    assert out is not None, report.reason


def forged(ring: np.ndarray, position: int, delta: int, tag_delta: int = 0) -> dict:
    ring = ring.copy()
    ring[position] += np.uint64(delta % 2**64)
    ring[-1] += np.uint64(tag_delta % 2**64)
    return {"prev-sum": ring.tobytes()}


@pytest.mark.parametrize("where", ["loss", "grad"])
def test_a_forged_aggregate_is_refused_by_the_tag(three: Coordinator, where: str) -> None:
    """The coordinator forwards a forged sum -- a larger loss (the line search would halve
    the step towards the accepted point: a near-identical replay) or a changed gradient
    (any direction) -- with the candidate it implies. Every bank refuses: the tag fails."""
    fed = three
    theta, first = first_round(fed)
    d = len(theta)
    metrics = [key for key in first if key[0] == "metrics"]  # in layout order
    # [grad (d), hess (d*d), metrics..., clipped, tag]
    position = d + d * d + metrics.index(("metrics", "loss")) if where == "loss" else 1
    bits = fixed_point_bits(fed.n, RANGE_FACTOR * fed.pos_weight * fed.count)
    fake = dict(first)
    if where == "loss":
        fake[("metrics", "loss")] = first[("metrics", "loss")] + 1e6
    else:
        grad = first[("arrays", "grad")].copy()
        grad[1] += 1e3
        fake[("arrays", "grad")] = grad
    delta = int(round((1e6 if where == "loss" else 1e3) * 2**bits))
    assert fed.ring.shape == (d + d * d + len(metrics) + 2,)
    target = next_search(fed, theta, [fake]).candidate
    out, report = fed.newton(dict.fromkeys(fed.nodes, model(target)),
                             **forged(fed.ring, position, delta))  # fmt: skip
    assert out is None and all("fails its tag" in r for r in report.rejected.values())


def test_a_forged_aggregate_with_a_guessed_tag_fails(three: Coordinator) -> None:
    """Smarter: also move the tag, guessing the secret coefficient of the forged coordinate
    (1, or the change itself). Refused: the coefficient is uniform in Z_p and unknown."""
    fed = three
    theta, first = first_round(fed)
    ring, d = fed.ring, len(theta)
    for guess in (1, 2**20):
        out, report = fed.newton(dict.fromkeys(fed.nodes, model(theta)),
                                 **forged(ring, d + d * d, 2**20, guess * 2**20))  # fmt: skip
        assert out is None and all("fails its tag" in r for r in report.rejected.values())


def test_the_honest_chain_is_accepted_every_round(three: Coordinator) -> None:
    """The honest coordinator: each round forwards the last sum and sends the candidate
    NewtonSearch computes from it, from the chain's start (the zero model). Every round is
    accepted by every bank until the chain converges; then the banks refuse to go on (the
    next candidate would be within tol of the last model). (A far start, where the line
    search rejects a step, is now refused as a probe point: tests/secagg/
    test_secagg_chain_pins.py; NewtonSearch's halving is tested in tests/model.)"""
    fed = three
    fed.agree_standardizer()
    theta0 = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    sums: list[dict] = []
    extra: dict = {}
    search = next_search(fed, theta0, sums)
    while not search.converged:
        assert len(sums) < 30
        total, report = fed.newton(dict.fromkeys(fed.nodes, model(search.candidate)), **extra)
        assert total is not None, report.reason
        sums.append(total)
        extra = {"prev-sum": fed.ring.tobytes()}  # type: ignore[union-attr]
        search = next_search(fed, theta0, sums)
    after, report = fed.newton(dict.fromkeys(fed.nodes, model(search.candidate)), **extra)
    assert after is None and all("converged" in r for r in report.rejected.values())


def test_a_standardizer_handed_to_the_victim_alone_gives_garbage(three: Coordinator) -> None:
    """Smarter: equivocate outside the instance. The standardizer is handed over in a plain
    message and kept by each bank; the coordinator re-hands the victim alone one that scales
    its features to nearly zero and repeats the round (same model, same banks: allowed).
    The difference was the feature part of the victim's gradient and Hessian."""
    fed = three
    fed.agree_standardizer()
    assert fed.scaler is not None
    theta = np.zeros(len(fed.scaler.mean) + 1)
    first, _ = fed.newton(dict.fromkeys(fed.nodes, model(theta)))
    assert first is not None
    flat = [fed.scaler.mean, fed.scaler.std * 1e9, *fed.scaler.arrays()[2:]]
    forged = {k: np.asarray(a).tolist() for k, a in zip(SCALER_KEYS, flat, strict=False)}
    forged[POS_WEIGHT] = fed.pos_weight
    fed.grid.send_and_receive(query_messages([fed.victim], "standardizer", fed.config(**forged)))
    second, report = fed.newton(dict.fromkeys(fed.nodes, model(theta)))
    if second is not None:
        hess = first[("arrays", "hess")] - second[("arrays", "hess")]
        truth = fed.truth(theta)[1]
        print(
            "standardizer equivocation: victim's feature Hessian to "
            f"{relative(hess[:-1, :-1], truth[:-1, :-1]):.1e} relative"
        )
    assert second is None, "the victim's terms came out of an equivocated standardizer"
    assert "sanity check failed" in report.reason


def test_a_claimed_dropout_in_the_first_round_is_refused_at_the_unmask(four: Coordinator) -> None:
    """Smarter than leaving the victim out of round 1: ask every bank, then throw the
    victim's reply away and claim it dropped. The survivors refuse to unmask: their last
    sum (the statistics) was over all four banks."""
    fed = four
    fed.agree_standardizer()
    theta = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
    bits = fixed_point_bits(fed.n, RANGE_FACTOR * fed.pos_weight * fed.count)
    value_range = RANGE_FACTOR * fed.pos_weight * fed.count
    bounds = Bounds(value_range=value_range, metric_range=value_range, max_weight=1.0,
                    bits=bits)  # fmt: skip
    pending = fed.agg.begin(fed.grid, fed.nodes, "sum", bounds, label="round 1")
    config = fed.config(optimizer="newton", **{"server-round": 1})
    content = RecordDict({"arrays": model(theta), "config": config})
    replies = fed.grid.send_and_receive(pending.messages(content, "train", **fed.chain_spec()))
    kept = [r for r in replies if int(r.metadata.src_node_id) != fed.victim]
    decoded, report = fed.agg.complete(fed.grid, pending, kept)
    assert decoded is None and "unmasking failed" in report.reason


def test_a_request_cannot_make_the_bank_keep_its_declarations(monkeypatch) -> None:
    """The flag that keeps the handler's declarations on a reply lives in the bank's own
    state; a coordinator that puts it into a request gets the reply without them."""
    from flwr.app import ConfigRecord, Context, Message, RecordDict
    from flwr.supercore.task_identity import TaskIdentity

    from strategies.secagg.client_mod import KEEP_DECLARATIONS, secagg_mod
    from strategies.secagg.view import USED_KEY

    for key in ("_run_id", "_node_id", "_task_id"):  # what a running SuperNode sets
        if getattr(TaskIdentity, key) is None:
            monkeypatch.setattr(TaskIdentity, key, 1)

    request = Message(
        content=RecordDict({KEEP_DECLARATIONS: ConfigRecord({"keep": True})}),
        dst_node_id=1,
        message_type="query.privacy",
    )
    context = Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})

    def handler(msg: Message, _context: Context) -> Message:
        reply = Message(content=RecordDict(), reply_to=msg)
        reply.content[USED_KEY] = ConfigRecord({"model": b"digest", "held": b"kept"})
        return reply

    reply = secagg_mod(request, context, handler)
    assert USED_KEY not in reply.content


def test_a_poisoning_order_in_the_request_is_not_obeyed(embedded, tmp_path) -> None:
    """The coordinator writes the simulation's poisoning key into every bank's train config.
    Before, the train handler read that order from the request: a coordinator could make
    honest banks flip their labels or train on a resample of its choosing. Now a malicious
    bank's own attack mod leaves it in the bank's state, and a request cannot."""
    import json

    flip = json.dumps({"kind": "label_flip", "fraction": 1.0, "flip": "all"})
    grads = []
    for folder, extra in (("honest", {}), ("ordered", {"attack-poison": flip})):
        fed = Coordinator(ExperimentConfig(), embedded, tmp_path / folder)
        fed.agree_standardizer()
        theta = np.zeros(len(fed.scaler.mean) + 1)  # type: ignore[union-attr]
        config = fed.config(optimizer="newton", **{"server-round": 1}, **extra)
        contents = {n: RecordDict({"arrays": model(theta), "config": config}) for n in fed.nodes}
        sums, _ = fed.ask(
            "train", contents, RANGE_FACTOR * fed.pos_weight * fed.count, **fed.chain_spec()
        )
        assert sums is not None
        grads.append(sums[("arrays", "grad")])
    np.testing.assert_array_equal(grads[0], grads[1])
