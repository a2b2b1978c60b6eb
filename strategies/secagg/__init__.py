"""Secure aggregation for Flower's Message API: the server learns only the banks' sum.

Pairwise additive masking with key agreement and dropout recovery after Bonawitz et al.
(CCS 2017), with the amortised key setup discussed below.

Plug-in
-------
Client (every bank)::

    from strategies.secagg import install_secagg, secagg_mod
    app = ClientApp(mods=[secagg_mod])
    install_secagg(app)          # query.secagg_{advertise,share_keys,unmask}

Server::

    strategy = SecAggFedAvg(threshold=None, clipping_range=1.0, quantization_bits=16)
    stats = strategy.secure_sum(grid, RecordDict({...}), "query.scaling_stats",
                                value_range=1e9, quantization_bits=8)
    result = strategy.start(grid, initial_arrays, num_rounds=...)

What one bank sends
-------------------
A bank never sends anything about itself in plaintext during an aggregation: its reply
is ``y = x + PRG(b) + sum_{j>i} PRG(s_ij) - sum_{j<i} PRG(s_ij)`` in Z_(2^64)^d, where
``x`` is the fixed-point vector of ``[weight * clip(update), weight * metrics, weight,
clipped-count]`` (:mod:`.vector`), ``s_ij`` is a seed both banks derive from an X25519
agreement and ``b`` is a fresh random self-mask seed. The weight, the metrics and the
clipping count are inside ``x``; only the layout (array names and shapes, metric names:
the same for every bank) is public. Alongside ``y`` go AES-GCM-encrypted Shamir shares of
``b`` for each peer and of the bank's next mask key (see below); the server only relays
them. PRG = ChaCha20 keystream, KDF = HKDF-SHA256, all from ``cryptography``.

Dropout recovery
----------------
Survivors reveal, for every *surviving* peer, a share of its self-mask seed ``b`` and, for
every *dropped* peer, a share of the mask secret key it used, so the server can remove
both kinds of masks from the sum of the survivors' ``y``. A bank whose reply is missing,
an error, malformed or of the wrong length is a dropped bank: its masks are removed and
its input is not in the sum. Reconstructed secrets are verified (public key / hash
commitment), and other share subsets are tried if one fails.

Why the self mask matters: if the server claims a live bank ``v`` dropped, it gets ``v``'s
mask key and can strip the pairwise masks from ``y_v`` -- but ``y_v`` still carries
``PRG(b_v)``, and an honest bank never answers twice for the same instance nor lists ``v``
as both survivor and dropped (:func:`.protocol.client_unmask`), so it never reveals both
shares for one peer. Banks accept only thresholds that are a strict majority of the epoch
(``t >= n // 2 + 1``, ``t >= 2``): two disjoint groups of honest banks cannot both reach
``t``, so telling different banks different stories does not help either, and a bank
refuses to unmask when fewer than ``t`` survivors are claimed.

What is amortised, and why it is safe
-------------------------------------
A key epoch (2 exchanges) establishes, for each bank, an X25519 *encryption* key pair,
the pairwise AES keys derived from it (HKDF, label = epoch and the pair), and a *first*
mask key pair with its Shamir shares. It is reused across rounds and across secure sums;
each instance then costs 2 exchanges (the request, whose reply carries the masked input,
and the unmask). A new epoch is started only when there is none, when the set of
connected nodes changed, or when a bank that dropped out of an instance is wanted again
(its mask key may have been reconstructed, so it must re-key before taking part).

The brief proposed reusing one mask key pair for the whole epoch, with per-round masks
``HKDF(s_ij, epoch, round)``. That is not safe with dropout recovery: the server holds
``b_v`` of every earlier round in which ``v`` survived (it needs it to unmask), so
reconstructing ``v``'s long-term mask key after a later dropout would unmask all of
``v``'s earlier inputs of the epoch. Instead, *mask keys are one-time*: with its masked
input a bank sends the public key of its next mask key pair and the encrypted shares of
the next secret key, and forgets the key it just used. The server forwards next-round
keys with the next request, so no exchange is added. Revealing a dropped bank's mask key
therefore exposes only pairwise masks of that one instance. Each key carries a
generation number bound (with the public key) into the AES-GCM associated data of its
shares; a bank masks with a peer's key only if its generation is newer than any it used
with that peer, and keeps the peer keys of its pending instance to decide which shares
it may reveal. A server that replays an old or not-yet-used key of ``v`` can only get
shares from banks that have not seen that key, which with a majority threshold are
fewer than ``t``. Self-mask seeds are fresh per instance; their shares are labelled with
the instance's sequence number.

Cost per instance and bank: one X25519 key generation, ``n - 1`` agreements for the
pairwise seeds, two Shamir splits and ``~2n`` AES-GCM encryptions, and ``n`` ChaCha20
streams of ``8 d`` bytes. The server does PRG work only for survivors' self masks and the
(survivor, dropped) pairs.

Threat model and limits
-----------------------
Honest-but-curious server that may lie about who dropped; banks follow the protocol.
Public keys are relayed by the server without signatures, so a server that substitutes
keys (man in the middle) is out of scope; that needs authenticated node keys (e.g.
SuperNode authentication) to sign the advertised keys, as in Bonawitz's active variant.
Federated evaluation with ``secure_evaluate=False`` and any plain ``query`` the
integrator sends outside this module are not protected. A bank's reply can still be
poisoned within the clipping range (masking hides, it does not validate).

Fixed point: ring Z_(2^64), ``bits`` fractional bits; sums are exact if
``n * max|value| * 2^bits < 2^63`` (checked before sending); rounding error per
coordinate of a weighted average at most ``n * 2^-(bits+1) / sum(weights)``.
"""

from .client_mod import (
    IdentityProvider,
    dropout_mod,
    install_secagg,
    make_secagg_handler,
    secagg_mod,
)
from .identity import (
    Consortium,
    Identity,
    IdentityError,
    Member,
    generate_identity,
    load_consortium,
    load_identity,
    make_consortium,
    save_consortium,
    save_identity,
)
from .masking import quantization_error_bound
from .protocol import MIN_BANKS, ProtocolError, default_threshold
from .secure_sum import (
    AggregationReport,
    PendingInstance,
    SecureAggregator,
    SumResult,
    plain_sum,
)
from .strategy import SecAggFedAvg
from .vector import Bounds

__all__ = [
    "MIN_BANKS",
    "AggregationReport",
    "Bounds",
    "Consortium",
    "Identity",
    "IdentityError",
    "IdentityProvider",
    "Member",
    "PendingInstance",
    "ProtocolError",
    "SecAggFedAvg",
    "SecureAggregator",
    "SumResult",
    "default_threshold",
    "dropout_mod",
    "generate_identity",
    "install_secagg",
    "load_consortium",
    "load_identity",
    "make_consortium",
    "make_secagg_handler",
    "plain_sum",
    "quantization_error_bound",
    "save_consortium",
    "save_identity",
    "secagg_mod",
]
