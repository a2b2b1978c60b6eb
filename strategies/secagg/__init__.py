"""Secure aggregation for Flower's Message API: the server learns only the banks' sum.

Pairwise additive masking with key agreement and dropout recovery after Bonawitz et al.
(CCS 2017), in its active-adversary variant (signed key advertisements), with the
amortised key setup discussed below, verifiable dealings and differencing rules.

Plug-in
-------
Client (every bank)::

    from strategies.secagg import install_secagg, secagg_mod
    app = ClientApp(mods=[secagg_mod])
    install_secagg(app, identity_provider)   # query.secagg_{advertise,share_keys,unmask}

``identity_provider(context) -> (Identity, Consortium)``: the bank's Ed25519 signing
identity and its own copy of the consortium roster (:mod:`.identity`; names, verification
keys, registered weights). Server::

    strategy = SecAggFedAvg(consortium=roster, clipping_range=1.0, quantization_bits=16)
    stats = strategy.secure_sum(grid, RecordDict({...}), "query.scaling_stats",
                                value_range=1e9, quantization_bits=8)
    result = strategy.start(grid, initial_arrays, num_rounds=...)

What one bank sends
-------------------
A bank never sends anything about its data in plaintext during an aggregation: its reply
is ``y = x + PRG(b) + sum_{j>i} PRG(s_ij) - sum_{j<i} PRG(s_ij)`` in Z_(2^64)^d, where
``x`` is the fixed-point vector of ``[w * clip(update), w * metrics, w, clipped-count]``
(:mod:`.vector`), ``s_ij`` a seed both banks derive from an X25519 agreement of their
one-time mask keys and ``b`` a one-time self-mask seed. Only the layout (array names and
shapes, metric names: the same for every bank) is public. Alongside ``y`` goes the bank's
*dealing* for the next instance (below): a fresh mask public key, per peer one AES-GCM
ciphertext of its Shamir shares of the next mask secret key and self-mask seed, and hash
commitments; the server only relays them. PRG = ChaCha20 keystream, KDF = HKDF-SHA256,
signatures Ed25519, all from ``cryptography``.

Key epochs and identities (issue 9.3)
-------------------------------------
A key epoch takes 2 exchanges. *advertise*: each bank makes one X25519 encryption key pair
per other member of its roster (:mod:`.pairkeys`) and signs ``(epoch id, node id, bank
name, encryption public keys)`` with its long-term Ed25519 identity. The pair ``(i, j)``
derives its AES key from ``i``'s key for ``j`` and ``j``'s key for ``i``, so revealing one
bank's key for one peer opens that pair's channel only (the evidence of an accusation,
below). The advertisement also carries a one-epoch Ed25519 key with which the bank signs
each of its dealings (instance, threshold, members, mask key, commitments); the server
checks that signature on receipt and blames a dealing that fails it.
*share_keys*: the server relays every advertisement; each bank verifies
each signature against the roster it holds locally (never taken from the server), refuses
a name twice, a key seen before in the run, a low-order key, and an epoch or threshold
below its own floors (next section), derives the pairwise AES keys (HKDF, label = epoch and the
pair) and answers with its dealing for the epoch's first instance. A server holding the
roster (recommended) drops forged advertisements itself and blames their sender. Signing
the encryption keys suffices: every later key is authenticated by the pairwise AEAD keys
derived from them, so a server that substitutes or replays keys (man in the middle) is
refused; an advertisement from another epoch or node fails its signature.

Bank-side floors (:mod:`.floors`)
---------------------------------
The server chooses the threshold, the banks of each epoch and of each sum, and whether a
request is masked at all; a bank checks each such choice against its own configuration
(``install_secagg(..., floors=...)``: the node config in a deployment, the run's agreed
configuration in a simulation), never against a request field:

- the threshold must satisfy ``2 t > n + c`` for an epoch of ``n`` banks, ``c`` the
  colluders the bank declares, and be at least its ``min_threshold`` (and a majority);
- an epoch, a sum's participants and an unmask's survivors must hold at least
  ``max(3, min_banks, c + 2)`` banks, so that at least two honest inputs remain in every
  sum once ``c`` colluders subtract theirs (an epoch of {victim, colluder, colluder} gave
  the victim's input exactly before);
- with ``secure_aggregation`` required, a data-dependent request without a ``mask``
  request is refused instead of being answered in the clear (the app lists its data-free
  messages: acknowledgements, public counters).

The server may raise any of these (a larger threshold or epoch), never lower them; a
request below a floor is refused with one WARNING line in the bank's log. A threshold
above ``n`` or one that no dropout can meet only stops the run; it reveals nothing.
Floors bound what a *declared* number of colluders learns: more colluders than a bank
declares get what ``2 t <= n + c`` allows (see the bound below).

One-time mask keys bound to their instance (issue 9.1, 9.2)
-----------------------------------------------------------
Every instance ``s`` (a training round, an evaluation, a secure sum) uses a mask key pair
and a self-mask seed that serve exactly that instance. They are dealt one instance ahead:
in share_keys for the epoch's first instance, and in the masked reply to instance ``s``
for instance ``s + 1`` (instances are strictly sequential: the server opens one at a
time). The associated data of the dealing ciphertext from ``i`` to ``j`` is ``(epoch, i,
j, s, public key)`` -- the key's generation is its sequence number -- and the server
forwards it in ``j``'s mask request of instance ``s``. ``j`` opens it, which authenticates
the key as ``i``'s key for exactly instance ``s``, checks the share commitments, keeps its
shares, and refuses (naming ``i``) otherwise. A bank masks only with its own key bound to
the current sequence number and with peer keys that authenticate for it; a bank whose key
is bound to another instance (it was skipped, or looked dropped) refuses and must re-key
(the server starts a new epoch for it). The unmask reveals kept shares only: a peer
reveals a dropped bank's key only for the instance it was dealt for. So the attack of
issue 9.1 -- withhold instance ``s`` from ``v``, collect ``v``'s unused key as "dropped",
let ``v`` mask ``s + 1`` with it -- fails: ``v`` refuses to use a key bound to ``s``.
Stale keys of dropped banks cannot be relabelled (issue 9.2): the AEAD binds them to their
instance, and every bank refuses a public key it has seen before in the run.

*Binding rather than fresh per-instance keys.* Bonawitz et al. run the advertise and
share-keys rounds for every instance: 4 exchanges per instance (plus a consistency round).
Dealing the next instance's key inside the masked reply keeps 2 exchanges per instance
(the request and the unmask) and 2 per key epoch, with the same one-key-one-instance
property; the price is that a bank left out of one instance must re-key. An epoch-long
mask key with per-round masks ``HKDF(s_ij, round)`` would not be safe: the server holds
``b_v`` of every round ``v`` survived, so reconstructing ``v``'s key after a later dropout
would unmask all of ``v``'s earlier inputs.

Dropout recovery, and why the self mask matters
-----------------------------------------------
Survivors reveal, for every surviving peer, its self-mask seed share and, for every
dropped peer, its mask-key share, so the server removes both kinds of masks from the sum
of the survivors' ``y``. A bank whose reply is missing, an error, malformed or of the
wrong length is dropped: its masks are removed and its input is not in the sum. If the
server claims a live bank ``v`` dropped, it gets ``v``'s mask key and can strip the
pairwise masks from ``y_v`` -- but ``y_v`` still carries ``PRG(b_v)``. An honest bank
answers one unmask per instance and never lists ``v`` as both survivor and dropped, so it
reveals at most one of ``v``'s two secrets. Banks accept only thresholds that are a strict
majority of the epoch (``t >= n // 2 + 1``, ``t >= 2``) and unmask only with at least
``max(t, 3)`` survivors. With ``c`` banks colluding with the server, telling different
honest banks different stories gets ``t`` shares of both secrets of ``v`` only if
``h1 + c >= t`` and ``h2 + 1 + c >= t`` for disjoint honest groups ``h1 + h2 <= n - 1 -
c``, i.e. ``2t <= n + c``: the protocol is safe against ``c`` colluding banks when ``t >
(n + c) / 2`` (the default majority covers ``c = 0``, and ``c = 1`` for even ``n``;
``SecureAggregator(colluders=c)`` raises the threshold to ``floor((n + c) / 2) + 1``; the
bound is tight: ``test_server_with_one_colluding_bank_needs_t_above_half_of_n_plus_one``
recovers a bank's input with one colluder at ``n = 5, t = 3``, and fails at ``t = 4``).
This is the bound Bonawitz's consistency-check round gives, so no such round (and no
extra exchange) is needed: the argument only uses that each honest bank reveals one
secret per peer per instance, which the sequence-number binding makes hold across
instances too.

Verifiable dealings and blame (issue 9.7)
-----------------------------------------
Each share is committed by its dealer with a salted SHA-256 commitment (salt inside the
ciphertext), each self-mask seed with a hash commitment, each mask key by its public key.
Holders check their shares against the commitments on receipt (at the mask request, before
training); the server checks every revealed share against the same commitment. Hence:

- a revealed share that does not match was altered by the bank that revealed it (honest
  holders checked it): that bank is blamed and the share ignored, so a lying survivor no
  longer defeats reconstruction (the old 256-subset search failed at n >= 12 with one);
- the first ``t`` verified shares decide a secret; if they do not reconstruct the
  committed seed or key, the dealer committed to inconsistent shares and is blamed (every
  accepted share is the dealer's own, so no consistency check over further shares is
  needed); its signed dealing and those shares are a proof anyone can check
  (:func:`.blame.failure_proof`, used for liveness below);
- a dealing that does not open or fails its commitments makes its holder refuse the
  request, naming the dealer and attaching *evidence*: its secret key for the pair
  (:mod:`.blame`). The server -- or anyone with the two signed advertisements and the
  dealing -- checks that the key is the accuser's advertised key for the dealer, derives
  the pair's AES key, opens the dealer's ciphertext and checks the share commitments: the
  dealer is blamed if that fails, the accuser if it succeeds (a false accusation). An
  accusation without evidence, or whose key is not the advertised one, is ignored: the
  refusing bank is merely dropped from the instance. Revealing the pair's key shows the
  server only what the two banks sent each other, which the lying one of them held
  already. So one malicious bank can no longer get an honest one excluded (with 3 banks
  one refusal naming an honest bank did before);
- a low-order, reused or duplicate mask key, or a malformed reply, blames its sender at
  receipt; the instance goes on without it (treated as dropped).

A blamed bank is treated as dropped, left out of every later instance and key epoch of the
run, and named in one WARNING line (``bank_3 (node ...) blamed: ...``). The aggregator
exposes each node's verified bank name (:attr:`SecureAggregator.bank_names`).

One view per instance (:mod:`.view`)
------------------------------------
A bank checks every rule against what it received, and a deviating server may send each
bank something else: the victim alone a different model (two instances at the "same" model
then differ by the victim's terms), or a shifted mean inside the pinned statistics query.
Each bank therefore hashes the request it received -- the message type, every record of the
content (model arrays, configuration, the query's parameters) and the common fields of the
``"secagg"`` record (epoch, sequence number, participants and their mask keys, mode, bounds,
weighting) -- leaving out only the dealing ciphertexts and commitments addressed to it alone
(which it authenticates with the pairwise AEAD and reads nothing else from). It derives its
pairwise masks with that *view* in the HKDF label, bound to the digest of the values it
keeps from earlier messages and computed with (the agreed standardiser, class weight and WoE
table, declared by the handler: :func:`.view.declare_held`; re-handing the victim alone a
standardiser that scales its features to zero, then repeating a round, gave the feature part
of its Hessian to 5.2e-14). The masks of ``i`` and ``j`` cancel only
if ``view_i = view_j``; otherwise the sum keeps ``PRG(s_ij, view_i) - PRG(s_ij, view_j)``,
which only ``i`` or ``j`` can compute. The server could strip it only with ``i``'s or
``j``'s mask key, i.e. by claiming that bank dropped -- and then that bank's input is not in
the sum and its self mask still hides its reply (one secret per peer, above). So an
equivocated instance decodes to uniformly random ring values: the sanity check fails (a
coordinate within the clip range by chance has probability about ``2 n C 2^bits / 2^64``),
nothing is released, and the honest server's failure line says the banks were sent
different requests. The bank echoes its view (a hash of what the server sent, nothing
about its data) so the server removes dropped banks' pairwise masks under the right label.

*Why binding rather than an echo of signed views.* Signed views relayed with the unmask
request would let honest banks refuse before revealing and carry evidence, for an Ed25519
signature and ``n - 1`` verifications per bank and instance. Binding needs one SHA-256 of the
request, no signature and no exchange, and its guarantee does not depend on any check being
run: without equal views there is no sum. What it does not give is attribution to the
banks (they do not see the sum); for confidentiality none is needed.

Differencing: one ledger per bank (:mod:`.policy`)
--------------------------------------------------
Two sums of related quantities over sets differing by one bank give that bank's value --
also across kinds: at the zero model a Newton round's gradient and Hessian are linear in the
statistics, so the moments over all banks minus a first round without the victim gave its
defaults, rows and feature sums. Each bank keeps one ledger for every data-dependent kind
(``query``: statistics, WoE counts, histograms, federated evaluation; ``train``;
``evaluate``), with bank names kept across key epochs:

- a sum (participants at the request, survivors at the unmask) must be over the survivors of
  the bank's last revealed sum; it may be over a subset of them only for ``train`` /
  ``evaluate`` when the bank's last training sum was over that whole set (a bank dropped
  between two training rounds); the set never grows back, and never shrinks between kinds;
- ``query`` instances are pinned to the banks of the first one, and a claimed dropout in one
  is refused at the unmask;
- a ``train`` / ``evaluate`` aggregate at a given model is revealed once (or again with the
  same survivors). The model is the digest of what the handler used (names sorted, values
  as float64: a reordered, renamed or float32 copy is the same model), declared by the
  handler (:func:`.view.declare_used`) or else of every array of the request; a request
  without a model is refused. Recorded at the unmask: a round skipped before its unmask
  revealed nothing and may be retried at the same model.

What a dropout still reveals, without DP: a bank that drops out between two training rounds
(or that the server claims dropped, or leaves out) is in the sum at ``w_k`` and not in the
one at ``w_(k+1)``, so the difference is that bank's reply at ``w_k`` plus the others'
change from ``w_k`` to ``w_(k+1)``. On a model chain (below) the server does not choose
``w_(k+1)``: it is the genuine next Newton candidate, so the bank's terms come out only up to
the others' change over one genuine step (a full or halved Newton step; the last step before
convergence is the smallest). Off the chain (training that declares no chain rule: the
FedAvg/SGD path) the server chooses ``w_(k+1)``, and at ``w_k + 1e-12`` the difference was
that bank's Newton reply at ``w_k`` to 5e-14 relative before the chain. The ledger makes
either a one-off per bank -- it is never summed again -- and impossible when no smaller set
is allowed (3 banks: at least 3 survivors). A bank that drops between the statistics and the
first training round stops training (that round is exactly the cross-kind difference). Only
DP bounds the one-off.

A model chain the banks verify (:mod:`.chain`, :mod:`.tag`, :mod:`.forward`)
---------------------------------------------------------------------------
A bank's Newton handler declares its reply a step of the ``newton`` chain
(:func:`.chain.declare_rule`); the mod masks such a reply only inside a chained instance, so
whether the chain applies is decided by the bank's code, not by a request field. The bank
answers only at the chain's start (the zero model, at its first chained instance of the
run), at the model of its last instance again
(a retry; the once-per-model rule applies), or at the model it computes itself from the sum
of its last instance, which the server forwards in the next request (``prev-sum``, no extra
exchange) -- with :class:`strategies.newton.NewtonSearch`, the object the server's strategy
steps with: the Newton step, the Armijo schedule (halving up to 30 times), the damping, the
restart when the survivors change (the bank knows them from its own unmask) and the
rounding slack. The bank trains at its own recomputed model (the received one must agree to
``1e-9`` relative) and refuses once the chain has converged (the next candidate would be
within ``tol``). Near-identical replays and arbitrary probe points are refused
(``test_near_identical_replay_is_refused_on_the_chain``,
``test_an_arbitrary_probe_point_is_refused``).

*The chain's configuration is the bank's.* ``l2``, ``tol`` and the step constraints come
from the bank's own configuration (its node config, or the agreed configuration in a
simulation), which its own code writes into its ``context.state`` (:data:`.chain.OWN_KEY`),
never from the request; ``N`` is the sum of the roster's registered weights (training rows)
of the chain's first participants (the banks of the standardisation sum, by the ledger).
A request whose configuration differs in any field is refused, and the configuration never
changes within a run. Were it the server's, it would choose the chain's points: ``l2 =
10^6`` (or ``N = 10^14``) with ``tol = 10^-15`` made the "genuine" step about ``6e-7``, and
one round over all banks minus the next without the victim gave its Hessian to ``1e-11``
relative; a probe point as the start, or a step constraint along one direction of its
choosing, was answered (``tests/secagg/test_secagg_chain_pins.py``).

*Authenticated sums: a linear tag.* A forged forwarded sum would steer the chain anywhere (a
loss that fails Armijo thirty times walks the candidate to ``w_k + 2^-30 d``, a changed
gradient gives any direction). Each dealer adds a fresh 32-byte contribution to the dealing
ciphertexts it sends its peers (AES-GCM under the pairwise keys; the server relays them
unread); the instance's group key hashes all participants' contributions, and from it each
bank derives the same secret ``r`` in ``Z_p^d`` (``p = 2^57 - 13``). Bank ``i`` appends
``t_i = <r, s_i> mod p`` to its signed fixed-point vector ``s_i``; the tag is masked like
the other coordinates, so the server decodes ``S = sum s_i`` and ``T = sum t_i`` (exact:
``n p < 2^64`` for ``n <= 128``) and forwards the whole ring vector. A bank checks
``T = <r, S> mod p`` before it uses ``S``: forging ``S' != S`` passes with probability
``1 / p`` for a server without a colluding bank, and a bank refuses at the first failure
(``test_a_forged_aggregate_is_refused_by_the_tag``,
``test_a_forged_aggregate_with_a_guessed_tag_fails``). A sum is consumed once, and only if
the bank revealed its shares for that instance. Cost: one ring element per reply, 32 bytes
per dealing ciphertext, one inner product of length ``d`` per bank for the tag and one for
the check, and the forwarded sum (``8 d`` bytes) in each training request.

What the chain does *not* give: (1) a server colluding with a bank knows ``r`` and can forge
the sum: against colluders the chain is no defence, and only DP bounds a replay. (2) Every
bank sees the sum the server sees (with 3 banks, the sum of the other two banks' Newton
terms at each model); the consortium accepts this: the released model is a function of the
same sums, and a bank learns no more than the server. (3) Only Newton training is chained;
the FedAvg step (SGD training) and federated evaluation are protected by the ledger and the
once-per-model rule only, so a near-identical replay there remains the one-off above.

Poisoning (issue 9.6)
---------------------
Masking hides inputs, it does not validate them: without zero-knowledge range proofs
(ACORN, RoFL) a masked input cannot be range-checked. What is checked is the decoded sum
(:func:`.vector.check_sum`), in exact ring arithmetic: every averaged coordinate within
its clipping range, the clipped count in ``[0, n * size]``, and the total weight. A failed
check rejects the instance with one WARNING line; the model is unchanged.

Weights are *public* by default: each bank encodes the weight registered for it in the
roster it holds (enrolment: row count, or 1), and the decoded total must equal the
survivors' registered weights exactly. The bank does not take its weight from the server:
a server choosing weights could give every other bank a weight near 0 and read one bank's
update off the average. ``weights="secret"`` (each bank's example count inside the masked
vector) needs the banks' consent (``install_secagg(..., allow_secret_weights=True)``); a
bank can then claim any weight up to ``max_weight`` (2^20 took 99.99% of a 5-bank toy
average), and two rounds whose survivors differ by one bank give that bank's count.

What one malicious bank can still do, with public weight share ``s`` and clip ``C``
(measured in ``test_remaining_poisoning_bound``): encoding honestly but lying within the
clip, move each coordinate of the average by at most ``2 C s`` (measured 0.067 = s(C -
u) for s = 0.067, C = 1); sending raw ring values, place the average anywhere in the box
``[-C, C]`` whatever ``s`` (measured: pushed a coordinate by 0.9 C and passed; it cannot
know the others' sum, so pushing to the edge risks rejection). Keep ``clipping_range``
close to honest update sizes. Before the hardening one raw value moved the model by 4.7e11.

Liveness
--------
Blame restores progress when the culprit is caught before anyone reveals (forged
advertisement, bad dealing, low-order or reused key, a false accusation) or its
misbehaviour does not stop the unmask (a lying survivor): the run goes on with the other
banks while the floors allow. Statistics are pinned at the first query a bank *unmasks*,
so a first query spoiled by a refusing bank is retried without it. An instance that fails
*after* the unmask leaves the model unchanged, and the differencing rule refuses that
model with other survivors -- unless the server shows each bank a *failure proof* for the
missing ones: a survivor whose self-mask shares do not reconstruct its signed seed
commitment is proven by its signed advertisement and dealing plus ``t`` revealed shares
matching their signed commitments. Each bank checks the proof against its own roster
(:func:`.blame.excused`) and then answers the same model without that bank. This is safe:
either the server could not remove the cheater's self mask (the failed sum showed
nothing), or the cheater gave it its seed, and then the difference of the two sums is the
cheater's own input; an honest bank never signs inconsistent shares, so it can never be
left out this way. A proof is not bound to the model: a bank proven to have cheated once
may be differenced out of any later model -- its own input, which no honest bank needs
hidden. A dropped bank whose *mask-key* shares fail leaves the same survivors, which the
rule already allows. One case still halts training at a model: a sum that fails the
sanity check (a bank masked garbage).
A bank that masks garbage forces such a failure without being identifiable; excluding it
would need zero-knowledge input proofs with cheater identification.

Threat model and limits
-----------------------
- Server, honest-but-curious or malicious (drops, delays, reorders, forges or replays
  messages, lies about who dropped, substitutes keys, sends different banks different
  requests): learns the sum over at least ``max(t, 3)`` banks of each instance, every
  bank of which received the same request, over the banks of each bank's previous sum; the
  public layout, participants and survivors, the total clipped count; plus, once per bank
  that drops out (or is claimed dropped) between two training rounds, that bank's last
  training reply up to the others' change over one genuine Newton step on the model chain,
  or exactly off it (SGD training, evaluation) (bounded by DP only); the chain's start,
  ``l2``, ``tol``, ``N`` and constraints are each bank's own, never the server's, and
  each DP bank accounts its own spend (delta, colluders and, under bank-level DP, every
  release) against its own floors.
- Up to ``c`` banks colluding with the server, ``c`` declared in every honest bank's floors
  (which enforce ``t > (n + c) / 2`` and at least ``c + 2`` banks per sum): additionally
  their own inputs, so the sum of at least two honest banks; and, knowing the tag key, they
  can forge the forwarded sums, so against colluders the model chain is no defence (DP only).
- Every bank: the sums the server forwards on the model chain (what the server learns).
- A malicious bank: can poison within the bound above, or stall (see Liveness); learns the
  released aggregates (with 2 banks that is the other's input, hence the minimum of 3);
  cannot get an honest bank blamed (accusations need evidence).
- Out of scope: a compromised bank identity key (roster distribution is the enrolment's
  job), traffic analysis, the plaintext messages the integrator sends outside this module
  (e.g. federated evaluation with ``secure_evaluate=False``), the released model itself
  (DP's job), side channels.

Cost
----
Exchanges: 2 per key epoch, 2 per instance (the request and the unmask), as before the
hardening; the view adds one SHA-256 of the request per bank and 32 bytes to its reply; the
tag one ring element per reply and 32 bytes per dealing ciphertext, and a chained training
request carries the previous sum; floors, evidence and failure proofs add none (an
accusation rides in the refusal, a proof in the next request). Per key epoch and bank:
``m - 1`` X25519 key pairs (``m`` roster members) and one Ed25519 key pair; per instance one
Ed25519 signature, and on the server one verification per participant. Per instance and
bank: ``n - 1`` X25519 agreements and ChaCha20 streams of
``8 d`` bytes (pairwise masks), ``n - 1`` AES-GCM decryptions and ``2 (n - 1)``
commitment checks (received dealings), one X25519 key generation, two Shamir splits and
``n - 1`` AES-GCM encryptions (its dealing). Per key epoch and bank: ``n - 1`` Ed25519
verifications and X25519 agreements. The server does PRG work only for survivors' self
masks and (survivor, dropped) pairs. Measured in ``simulations/bench/secagg.py``.

Fixed point: ring Z_(2^64), ``bits`` fractional bits; sums are exact if ``n *
ceil(max|value| * 2^bits) < 2^63`` (checked in integers before sending, issue 9.8);
rounding error per coordinate of a weighted average at most ``n * 2^-(bits+1) / sum(w)``.
"""

from .aggregator import PendingInstance, SecureAggregator, plain_sum
from .client_mod import (
    IdentityProvider,
    dropout_mod,
    install_secagg,
    make_secagg_handler,
    secagg_mod,
)
from .floors import Floors
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
from .results import AggregationReport, SumResult
from .strategy import SecAggFedAvg
from .vector import Bounds

__all__ = [
    "MIN_BANKS",
    "AggregationReport",
    "Bounds",
    "Consortium",
    "Floors",
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
