"""A model chain the banks verify: a bank trains only at a model it recomputes itself.

Each training instance of a chained run (the request carries ``chain``, the rule, with its
public configuration) is answered only at

- the first model of the chain: the zero model (the objective is convex, so the start
  changes nothing but the path), at the bank's first chained instance of the run (the
  chain never restarts; a changed configuration is refused);
- the model of the bank's last instance again (a retry: the once-per-model rule of
  :mod:`.policy` still applies), when the request forwards no sum;
- the model the bank computes from the sum of its last instance, which the request
  forwards and the bank verifies with its tag (:mod:`.forward`, :mod:`.tag`) and feeds
  to its own copy of the rule: for ``newton``, :class:`strategies.newton.NewtonSearch`,
  the very object the server's strategy steps with (the Newton step, the Armijo
  line-search schedule, the damping, the restart when the survivors change, the rounding
  slack of :func:`strategies.newton.rounding_slack`).

A sum is consumed once. Once the rule says the chain has converged (its next step changes
no coordinate by more than ``tol``, or the line search stalled), the bank refuses further
training instances: the next candidate would be a near-identical point. The bank trains at
*its own* recomputed model (the received one must agree to ``1e-9`` relative, so that a
server whose linear algebra rounds differently does not stop the run), so the server has no
say in the point: a near-identical replay (``w + 1e-12``) or an arbitrary probe point is
refused before the bank computes anything.

The rule's configuration is the bank's, never the request's: a coordinator that chose ``l2``,
``N`` or ``tol`` would choose the chain's points (a huge ``l2`` makes the "genuine" step
tiny: a near-identical replay again), and constraints of its choosing restrict the steps to
directions it picks. The bank's own code writes its configuration into its
``context.state`` (:data:`OWN_KEY`, never part of a message): the rule, the model's array
names, ``l2``, ``tol`` and the step constraints, from its own floors. ``N`` is the sum of
the registered (roster) weights, the banks' training rows, over the participants of the
chain's first instance -- the banks of the standardisation sum, which the ledger of
:mod:`.policy` carries over. A request whose configuration differs in any field is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, RecordDict

from . import forward

SPEC_FIELDS = ("chain", "chain-l2", "chain-tol", "chain-rows", "chain-arrays")
CONSTRAINT_FIELDS = ("chain-transform", "chain-bounded")
SPEC_KEY = "run-chain-spec"
WEIGHTS_KEY = "run-chain-weights"  # the roster's registered weights, name -> weight
OWN_KEY = "secagg-chain-own"
"""Entry of the bank's own ``context.state`` (written by its own code, never by a message):
its chain configuration, the fields of :data:`SPEC_FIELDS` but ``chain-rows``, and the
constraint fields when it has step constraints."""
SEARCH_PREFIX = "run-chain-search-"
NAMES_KEY = "run-chain-names"
RULES = ("newton",)
TOLERANCE = 1e-9


class ChainError(ValueError):
    """The request's model is not one this bank can recompute."""


def _normal(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The chain configuration in ``fields`` with its values in canonical types."""
    if fields["chain"] not in RULES:
        raise ChainError(f"unknown model chain {fields['chain']!r}")
    try:
        spec = {k: fields[k] for k in SPEC_FIELDS}
        spec.update({k: float(spec[k]) for k in ("chain-l2", "chain-tol", "chain-rows")})
        spec["chain-arrays"] = [str(n) for n in spec["chain-arrays"]]
        if "chain-transform" in fields:  # step constraints (e.g. monotone effects)
            spec["chain-transform"] = [float(v) for v in fields["chain-transform"]]
            spec["chain-bounded"] = [bool(b) for b in fields["chain-bounded"]]
    except (KeyError, TypeError, ValueError) as err:
        raise ChainError(f"malformed model chain: {err}") from None
    if len(spec["chain-arrays"]) != 2 or not spec["chain-rows"] > 0:
        raise ChainError("malformed model chain")
    return spec


def _spec(request: Mapping[str, Any]) -> dict[str, Any] | None:
    return _normal(request) if "chain" in request else None


def remember_weights(state: MutableMapping[str, Any], weights: Mapping[str, float]) -> None:
    """Keep the roster's registered weights (run-wide): the chain's ``N`` sums them."""
    state[WEIGHTS_KEY] = json.dumps({str(k): float(v) for k, v in weights.items()})


def own_spec(
    state: Mapping[str, Any], own: Mapping[str, Any] | None, banks: list[str]
) -> dict[str, Any]:
    """The chain configuration this bank holds itself: ``own`` (from its own configuration)
    with ``N``, the registered weights of ``banks``, the chain's first instance.

    Raises
    ------
    ChainError
        Without a configuration of its own, or with a bank the roster does not weigh.
    """
    if own is None:
        raise ChainError("this bank holds no model-chain configuration of its own")
    weights = json.loads(str(state.get(WEIGHTS_KEY, "{}")))
    missing = [b for b in banks if b not in weights]
    if missing:
        raise ChainError(f"no registered weight for {missing}: the chain's N is unknown")
    return _normal({**own, "chain-rows": sum(weights[b] for b in banks)})


def _differing(asked: Mapping[str, Any], own: Mapping[str, Any]) -> str | None:
    """The first field where the request's configuration differs from the bank's own."""
    for key in sorted(set(asked) | set(own)):
        a, b = asked.get(key), own.get(key)
        if key != "chain-transform" or a is None or b is None:
            if a != b:
                return f"{key} {_short(a)}, this bank's own is {_short(b)}"
        elif np.shape(a) != np.shape(b) or not np.allclose(a, b, rtol=1e-12, atol=0.0):
            return f"{key} differs from this bank's own"
    return None


def _theta(content: RecordDict, names: list[str]) -> np.ndarray:
    arrays = content.array_records.get("arrays")
    if arrays is None or any(n not in arrays for n in names):
        raise ChainError("the request carries no model of the chain's layout")
    return np.concatenate([arrays[n].numpy().astype(np.float64).ravel() for n in names])


def _load(state: Mapping[str, Any]) -> Any:
    from strategies.newton import NewtonSearch

    fields = {k[len(SEARCH_PREFIX) :]: v for k, v in state.items() if k.startswith(SEARCH_PREFIX)}
    return NewtonSearch.from_state(fields)


def _store(state: MutableMapping[str, Any], search: Any) -> None:
    for key in [k for k in state if k.startswith(SEARCH_PREFIX)]:
        del state[key]
    state.update({SEARCH_PREFIX + k: v for k, v in search.to_state().items()})


def _advance(state: MutableMapping[str, Any], search: Any, kind: str, request: Any) -> None:
    """Feed the forwarded sum of the bank's last instance (if any) to the search."""
    from strategies.newton import GRAD, HESS, LOSS, rounding_slack

    summed = forward.forwarded(state, kind, request)
    if summed is None:
        return  # a retry at the same model
    names, bits = forward.consume(state, kind)
    try:
        grad = summed.arrays[("arrays", GRAD)]
        hess = summed.arrays[("arrays", HESS)]
        loss = float(summed.metrics[("metrics", LOSS)])  # type: ignore[arg-type]
    except KeyError:
        raise ChainError("the forwarded sum is not a Newton sum") from None
    previous = state.get(NAMES_KEY)
    restart = previous is not None and sorted(previous) != names
    slack = rounding_slack(len(names), bits, search.total_rows)
    search.observe(grad, hess, loss, restart=restart, slack=slack)
    state[NAMES_KEY] = names


def _short(value: Any) -> str:
    return f"[{len(value)} values]" if isinstance(value, list) and len(value) > 4 else repr(value)


def chained_content(
    state: MutableMapping[str, Any],
    kind: str,
    request: Mapping[str, Any],
    content: RecordDict,
    own: Mapping[str, Any] | None = None,
    banks: list[str] | None = None,
) -> RecordDict | None:
    """The content to train on if the instance is chained (None if it is not).

    Parameters
    ----------
    state : MutableMapping
        The bank's secagg state (updated; saved by the caller only if it masks).
    kind : str
        Instance kind; only ``train`` instances are chained.
    request : Mapping
        The ``"secagg"`` request fields.
    content : RecordDict
        The request content (without the secagg record).
    own : Mapping, optional
        The bank's own chain configuration (:data:`OWN_KEY`); a chained instance without
        one is refused.
    banks : list of str, optional
        The instance's participants (names); at the chain's first instance they give ``N``.

    Returns
    -------
    RecordDict or None
        ``content`` with the model replaced by the one this bank recomputed.

    Raises
    ------
    ChainError
        The model is not the chain's next one, the configuration is not the bank's own, the
        chain changed, or a forwarded sum fails.
    """
    if kind != "train":
        return None
    asked, pinned = _spec(request), state.get(SPEC_KEY)
    if asked is None and pinned is None:
        return None
    if asked is None:
        raise ChainError("the request leaves this bank's model chain")
    if pinned is None:
        cfg = own_spec(state, own, list(banks or []))
    else:  # N stays the first instance's; the rest must still be the bank's own
        cfg = json.loads(pinned)
        if own is None or _differing(_normal({**own, "chain-rows": cfg["chain-rows"]}), cfg):
            raise ChainError("this bank's own chain configuration changed: no further training")
    differing = _differing(asked, cfg)
    if differing:
        raise ChainError(f"not this bank's own model chain: {differing}")
    names = cfg["chain-arrays"]
    received = _theta(content, names)
    if pinned is None:
        from strategies.newton import NewtonSearch

        if np.any(received != 0.0):
            raise ChainError("the model is not the chain's start (the zero model)")
        search = NewtonSearch(received, cfg["chain-l2"], cfg["chain-rows"], cfg["chain-tol"])
        if "chain-transform" in cfg:
            bounded = np.asarray(cfg["chain-bounded"], dtype=bool)
            transform = np.asarray(cfg["chain-transform"], dtype=np.float64)
            if transform.size != len(received) * len(bounded):
                raise ChainError("malformed model chain: constraint shape")
            search.transform = transform.reshape(len(received), len(bounded))
            search.bounded = bounded
        state[SPEC_KEY] = json.dumps(cfg, sort_keys=True)
    else:
        search = _load(state)
        _advance(state, search, kind, request)
        if search.converged:  # its next candidate is within tol: a near-identical point
            raise ChainError("this bank's model chain has converged: no further training")
    expected = search.candidate
    if received.shape != expected.shape or not np.all(
        np.abs(received - expected) <= TOLERANCE * (1.0 + np.abs(expected))
    ):
        raise ChainError(
            "the model is not on this bank's model chain (neither its start nor the one it "
            "computes from the previous sum)"
        )
    _store(state, search)
    return _with_model(content, names, expected)


def _with_model(content: RecordDict, names: list[str], theta: np.ndarray) -> RecordDict:
    arrays = content["arrays"]
    weight = arrays[names[0]].numpy()
    new = {
        names[0]: Array(theta[:-1].reshape(weight.shape).astype(weight.dtype, copy=False)),
        names[1]: Array(theta[-1:].astype(arrays[names[1]].numpy().dtype, copy=False)),
    }
    record = ArrayRecord({k: new.get(k, v) for k, v in arrays.items()})
    out = RecordDict(dict(content.items()))
    out["arrays"] = record
    return out


RULE_KEY = "secagg-chain-rule"  # the handler's declaration; never leaves the bank


def declare_rule(reply: Message, rule: str) -> Message:
    """Declare that ``reply`` is a step of the chain ``rule`` (e.g. a Newton evaluation).

    The secagg mod then masks it only inside a chained instance of that rule: whether the
    chain is required is decided by the bank's handler, not by the request.
    """
    if reply.has_content() and not reply.has_error():
        reply.content[RULE_KEY] = ConfigRecord({"rule": rule})
    return reply


def pop_rule(reply: Message) -> str | None:
    """Remove the handler's chain declaration from ``reply``; return the rule (or None)."""
    if not reply.has_content() or RULE_KEY not in reply.content.config_records:
        return None
    rule = reply.content.config_records[RULE_KEY].get("rule")
    del reply.content[RULE_KEY]
    return str(rule)


def check_rule(declared: str | None, request: Mapping[str, Any], chained: bool) -> None:
    """Refuse a reply its handler declared a chain step of, outside a chained instance."""
    if declared is not None and (not chained or request.get("chain") != declared):
        raise ChainError(f"a {declared} step outside this bank's verified model chain")
