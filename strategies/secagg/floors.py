"""A bank's own floors: the least protection it accepts, whatever the coordinator asks.

The coordinator chooses the threshold, the banks of a key epoch and of each sum, and whether
a request is masked at all. A bank therefore checks every such choice against values it
holds itself -- its node configuration in a deployment, its settings from the run's agreed
configuration in a simulation -- never against a field of the request:

- ``secure_aggregation``: every data-dependent request must carry a secure-aggregation
  ``mask`` request (a plaintext request is refused, not answered in the clear);
- ``colluders`` ``c``: the threshold must satisfy ``2 t > n + c`` for an epoch of ``n``
  banks (below it, telling honest banks different stories about who dropped recovers a
  bank's input, see the package docstring), and every sum must hold at least ``c + 2``
  banks (so that at least two honest inputs remain once the colluders subtract theirs);
- ``min_threshold``: the least threshold;
- ``min_banks``: the fewest banks in an epoch and in any sum (participants and survivors);
- ``regrouping``: the bank consents to grouped aggregation (``grouped_secagg``), where the
  coordinator sums training updates over other groups of banks every round. The ledger's
  rule that every sum is over the banks of the previous one (:mod:`.policy`) is then waived;
  the statistics pin and the once-per-model rule stay. Differencing across groups is then
  bounded only by DP: consenting is the bank's choice, never the coordinator's.

The coordinator may raise any of these (a larger threshold, a larger epoch), never lower
them. A request below a floor is refused with one WARNING line in the bank's log.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from flwr.app import Context, Message

from .protocol import MIN_BANKS, ProtocolError, default_threshold
from .records import ACTIONS, SECAGG_KEY, message_type


@dataclass(frozen=True)
class Floors:
    """The least secure-aggregation protection this bank accepts.

    Attributes
    ----------
    secure_aggregation : bool
        Refuse data-dependent requests that are not masked.
    colluders : int
        Banks assumed to collude with the coordinator.
    min_threshold : int
        Least Shamir threshold (0: none beyond the colluder bound and a majority).
    min_banks : int
        Fewest banks in an epoch and in any sum (never below 3).
    regrouping : bool
        Consent to grouped aggregation: the ledger's same-set rule is waived.
    """

    secure_aggregation: bool = True
    colluders: int = 0
    min_threshold: int = 0
    min_banks: int = MIN_BANKS
    regrouping: bool = False

    def __post_init__(self) -> None:
        if self.colluders < 0 or self.min_threshold < 0 or self.min_banks < 0:
            raise ValueError(f"secure-aggregation floors must be >= 0: {self}")

    def fewest_banks(self) -> int:
        """The fewest banks any epoch or sum may have: ``max(3, min_banks, c + 2)``."""
        return max(MIN_BANKS, self.min_banks, self.colluders + 2)

    def least_threshold(self, num_banks: int) -> int:
        """The least threshold accepted for an epoch of ``num_banks``: a majority,
        ``floor((n + c) / 2) + 1`` and ``min_threshold``."""
        colluder_bound = (num_banks + self.colluders) // 2 + 1
        return max(default_threshold(num_banks), colluder_bound, self.min_threshold)

    def check_epoch(self, num_banks: int, threshold: int) -> None:
        """Raise :class:`ProtocolError` if a key epoch is below this bank's floors."""
        least = self.fewest_banks()
        if num_banks < least:
            raise ProtocolError(
                f"below this bank's floor: a key epoch of {num_banks} banks, it requires "
                f"at least {least} (colluders {self.colluders})"
            )
        least_t = self.least_threshold(num_banks)
        if threshold < least_t:
            raise ProtocolError(
                f"below this bank's floor: threshold {threshold} for {num_banks} banks, it "
                f"requires at least {least_t} (2t > n + c with colluders {self.colluders})"
            )


FloorsProvider = Callable[[Context], Floors]
"""``context -> Floors``: the bank's floors, from its own configuration."""


def default_floors(_: Context) -> Floors:
    """The floors of a bank that configured none: secure aggregation required, ``c = 0``."""
    return Floors()


def is_masked_request(msg: Message) -> bool:
    """Whether ``msg`` carries a secure-aggregation ``mask`` request."""
    if not msg.has_content() or SECAGG_KEY not in msg.content.config_records:
        return False
    return msg.content.config_records[SECAGG_KEY].get("phase") == "mask"


def plaintext_refusal(
    msg: Message, floors: Floors, answered_in_clear: Collection[str]
) -> str | None:
    """Why a request must be refused under the floors, or None.

    Parameters
    ----------
    msg : Message
        The incoming request.
    floors : Floors
        The bank's floors.
    answered_in_clear : Collection[str]
        Message types whose replies do not depend on the bank's data (acknowledgements,
        public counters); the secure-aggregation key setup and unmask are always among them.
    """
    kind = msg.metadata.message_type
    protocol = {message_type(a) for a in ACTIONS}
    if not floors.secure_aggregation or kind in protocol or kind in answered_in_clear:
        return None
    if is_masked_request(msg):
        return None
    return f"below this bank's floor: {kind} without secure aggregation"


REGROUPING_KEY = "run-floor-regrouping"
"""Entry of the bank's secagg state: the bank consented to grouped aggregation."""
FLOOR_STATE_KEY = "floor-fewest-banks"
"""Entry of the bank's secagg state: the fewest banks of any sum, written at key setup."""


def admit_epoch(state: dict, floors: Floors, request: dict) -> None:
    """Check a ``share_keys`` request against the floors; remember them for the epoch."""
    floors.check_epoch(len(request["members"]), int(request["threshold"]))
    state[FLOOR_STATE_KEY] = floors.fewest_banks()
    state[REGROUPING_KEY] = floors.regrouping


def check_recorded(state: dict, num_banks: int, what: str) -> None:
    """Raise :class:`ProtocolError` if a sum over ``num_banks`` is below the epoch's floor."""
    least = int(state.get(FLOOR_STATE_KEY, MIN_BANKS))
    if num_banks < least:
        raise ProtocolError(
            f"below this bank's floor: {num_banks} {what}, it requires at least {least}"
        )
