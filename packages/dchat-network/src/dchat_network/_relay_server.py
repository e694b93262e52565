"""The relay protocol's server and client logic, sans-IO.

:class:`RelayServer` answers one request at a time against a :class:`MailboxStore`
(the relay's durable mailboxes; the node passes its database, the simulator an
in-memory store). It never reads a clock or a socket: the caller supplies the
authenticated mailbox of the peer and the current time, and sends the reply.

:class:`RelayClient` builds requests with fresh request ids and checks that each
reply answers the request that is outstanding.

Rules the server enforces (see docs/protocol.md, "Relay protocol"):

* ``put`` is answered ``stored`` only after ``MailboxStore.put`` returned, i.e.
  after the envelope is durable; the same envelope twice is stored once. The
  arrival time stored is coarsened to :data:`ARRIVAL_GRANULARITY`.
* the envelope's own mailbox (found by the ``envelope_mailbox`` callback) must be
  the ``mb`` of the request, and the mailbox quota must not be exceeded.
* ``fetch``, ``ack`` and ``pull`` name a mailbox, which must be the one the
  peer proved in the link handshake: anything else is ``forbidden`` and ends
  the link.
* ``put_many`` checks and stores each item as ``put`` would, but answers each
  on its own (a refused item does not end the link); the shell runs the whole
  request in one transaction, so the stored ones cost one commit.
* ``pull`` acknowledges, then fetches; when nothing waits and the request
  allows a wait, the reply says so (``RelayReply.park``): the shell holds it
  until an envelope for that mailbox is stored (``RelayReply.notify`` of the
  storing request names the mailboxes that got new entries) or the wait ends,
  then asks :meth:`RelayServer.resume` for the answer.
* ``pk_put`` and ``pk_count`` are served only for the peer's own mailbox
  (else ``forbidden``); ``pk_get`` for anyone. Without a :class:`PrekeyStore`
  all three are ``unsupported``.
* ``pk_put`` stores nothing unless the whole set passes ``check_prekey_put``
  (``bad_prekeys``: shape only, as the bundles are opaque to the relay) and the
  mailbox would hold at most ``MAX_PREKEYS_HELD`` one-time bundles
  (``prekey_quota``).
* ``pk_get`` hands out the one-time bundle with the lowest prekey id and the
  store deletes it in the same transaction, so each is served once; when none
  is left it serves the last-resort bundle, which stays (``no_prekeys`` if the
  owner never published).
* ``probe`` is answered with the node key's signature over the challenge
  (:func:`~dchat_network._probe.answer_probe`) when the server has one
  (:attr:`RelayServer.node_key`, set by the host to the key its links prove),
  ``bad_probe`` for a stale, foreign or forged challenge, else ``unsupported``.
* ``rcpt`` is kept in the server's :class:`ReceiptBook` (:attr:`RelayServer.receipts`,
  made with the node key) when it is the link owner's, names this relay,
  verifies and names only envelopes this relay delivered to that mailbox
  (still held, pushed but not yet acknowledged, or acknowledged within the
  replay window); else ``bad_receipt``. ``audit`` is answered from the sealed batches
  (``no_batch`` for a root the relay does not hold). Without a node key a
  receipt is answered as covering 0 envelopes (not kept: the client stops
  sending them) and every audit is ``no_batch``.
* ``blob_open``, ``blob_put``, ``blob_get`` and ``blob_del`` are served from the blob store
  (:func:`~dchat_network._relay_blobs.answer_blob`): uploads are charged to
  the link's mailbox, reads are open to whoever names the blob; without a
  store they are ``unsupported``. A ``blob_put`` is a deposit for the rate
  buckets (one item, its bytes).
* any error reply ends the link (``RelayReply.close``).

Abuse limits (given ``limits``, see :mod:`dchat_network._relay_limits`):

* a deposit (``put``, ``put_many``, ``pk_put``, ``pk_get``) is charged to the
  link's :class:`PutBudget` when the shell passes one; if its buckets lack the
  tokens the answer is ``busy`` (``rate``) and nothing is done. This is
  :meth:`RelayServer.triage`, which touches no store: the host runs it in its
  event loop (the only place the buckets are used, so they need no lock), and
  a refusal costs no turn in the database worker; :meth:`RelayServer.serve`
  does the rest there. Triage also says whether the request is *authorised*
  work (:class:`RelayWork`), which the host hands to the worker before
  anonymous work (:mod:`dchat_network._relay_queue`).
* a deposit (or channel post) that would take the envelopes held by all
  mailboxes, with the posts of all topics, past ``disk_budget`` is answered
  ``busy`` (``disk``). The total is read from
  ``usage`` (one scan) at most once a second, and only when the running
  estimate (the last reading plus what was stored since, acks not subtracted,
  so it errs high) says the budget would be passed.
* an envelope its owner acknowledged within ``replay_window`` is refused
  (``delivered``) instead of stored again (:class:`DeliveredSet`); senders
  count that as delivered.

Put authorization (:class:`~dchat_network.lowlevel.PutAuthorizer`): each
envelope to be stored is authorized by its put token or proof-of-work stamp,
or served free while the relay is quiet; otherwise it is refused with the
challenge (``busy`` ``pow`` to a ``put``, the item code ``pow`` and the
reply's ``pow`` field in ``stored_many``). ``tok_set`` (owner only) replaces
the mailbox's token hashes; past the relay's token budget it is answered
``busy`` (``tokens``). ``ring_set`` (owner only) replaces the mailbox's
contact ring (``bad_ring`` if a key is invalid, ``busy`` ``rings`` past the
budget) and ``zk_get`` hands anyone one-use proof nonces and the ring; a
deposit whose contact proof fails is refused with the proof's code
(``proof_stale``, ``proof_replayed``, ``proof_mailbox``, ``proof_no_ring``,
``proof_invalid``; :mod:`dchat_network._put_proofs`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Final, Protocol

from dchat_core import NodeId
from dchat_privacy import TokenError

from ._errors import LinkClosedError, ProbeError, RelayBusyError, RelayProtocolError
from ._probe import answer_probe
from ._put_auth import is_paid
from ._put_proofs import PROOF_TAG, PutProofError
from ._receipts import ReceiptBook, ReceiptStore
from ._relay import (
    MAX_BATCH,
    MAX_BATCH_BYTES,
    MAX_PREKEYS_HELD,
    RelayAck,
    RelayAcked,
    RelayAudit,
    RelayAuditAnswer,
    RelayBatch,
    RelayBusy,
    RelayError,
    RelayFetch,
    RelayMessage,
    RelayPrekeyBundle,
    RelayPrekeyCount,
    RelayPrekeyGet,
    RelayPrekeyPut,
    RelayPrekeysHeld,
    RelayProbe,
    RelayProbeAnswer,
    RelayPull,
    RelayPut,
    RelayPutMany,
    RelayReceipt,
    RelayReceiptTaken,
    RelayStored,
    RelayStoredMany,
    RelayTokenSet,
    RelayTokensHeld,
    decode_relay_message,
    encode_relay_message,
)
from ._relay_blob_wire import BlobAt, BlobData, BlobDelete, BlobGet, BlobGone, BlobOpen, BlobPut
from ._relay_blobs import answer_blob
from ._relay_limits import DeliveredSet, RelayLimits, entry_id_of, retry_ms
from ._relay_onion_wire import (
    OnionDone,
    OnionFetched,
    OnionFetchPut,
    OnionKeyIs,
    OnionKeyQuery,
    OnionPut,
)
from ._relay_prekeys import BadPrekeysError, check_prekey_put
from ._relay_proof_wire import RingHeld, RingSet, ZkContexts, ZkGet
from ._relay_token_wire import TokenBuy, TokenIssued, TokenOfferAsk, TokenOffered
from ._relay_topic_wire import TopicPosts, TopicPublish, TopicPublished, TopicRead
from ._relay_topics import publish as publish_post
from ._relay_topics import read as read_topic
from ._token_shop import TokenSaleError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dchat_crypto import SigningKey
    from dchat_storage.lowlevel import RelayBlobStore

    from ._put_auth import PowChallenge
    from ._relay_limits import PutBudget
    from ._relay_topics import TopicStore
    from ._token_shop import TokenShop

__all__ = (
    "ARRIVAL_GRANULARITY",
    "MailboxStore",
    "PrekeyStore",
    "RelayClient",
    "RelayReply",
    "RelayServer",
    "RelayWork",
    "StoredEntry",
)

_REFUSALS: Final = {
    "bad_envelope": "malformed or for another mailbox",
    "quota": "mailbox is full",
    "delivered": "already delivered to its owner",
    "bad_token": "the paid token does not hold",
    "spent": "the paid token was spent already",
    "unknown_key": "the paid token's key is not this relay's",
    "expired": "the paid token's key epoch is over",
    "full": "this epoch's spent tokens are at their bound",
    "proof_stale": "contact proof for an old epoch",
    "proof_replayed": "contact proof nonce not issued, expired or used",
    "proof_mailbox": "contact proof nonce issued for another mailbox",
    "proof_no_ring": "the mailbox has no contact ring",
    "proof_invalid": "contact proof does not verify",
}
ARRIVAL_GRANULARITY: Final = 60.0
"""Stored arrival times are rounded down to a multiple of this many seconds.

A relay's store (or a copy of it) then does not say to the sub-second which
envelopes arrived together: sender and recipient stay harder to pair by
timing. Order within a mailbox is the store's insertion sequence (ties), and
the TTL sweep may expire an entry up to this much early.
"""
_USAGE_REFRESH: Final = 1.0
_TOKENS_RETRY: Final = 60.0
"""The ``retry`` of a ``busy`` (``tokens``) answer: the relay's token budget is spent."""
"""Seconds between two readings of the relay's total held bytes (when near the budget)."""


class StoredEntry(Protocol):
    """One stored envelope as a :class:`MailboxStore` returns it."""

    @property
    def entry_id(self) -> bytes: ...

    @property
    def envelope(self) -> bytes: ...


class MailboxStore(Protocol):
    """Durable mailboxes. ``put`` must not return before the envelope is durable."""

    def put(self, mailbox: bytes, envelope: bytes, received_at: float) -> tuple[bytes, bool]: ...

    def fetch(self, mailbox: bytes, limit: int = 100) -> Sequence[StoredEntry]: ...

    def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> int: ...

    def total_bytes(self, mailbox: bytes) -> int: ...


class PrekeyStore(Protocol):
    """Durable prekey bundles per mailbox: one-time ones and one last-resort bundle.

    Bundles are opaque bytes, stored and returned verbatim. ``put_prekeys``
    stores ``last`` (replacing the held last-resort bundle) and the one-time
    bundles ``(prekey id, bundle)``, keeping a held bundle whose id repeats;
    with ``replace`` it first drops every held bundle. It returns the number of
    one-time bundles now held. ``take_prekey`` removes and returns the one-time
    bundle with the lowest id, else returns the last-resort bundle (kept), else
    ``None``; it must be atomic and durable: no two calls, even concurrent
    ones, return the same one-time bundle.
    """

    def put_prekeys(
        self,
        mailbox: bytes,
        last: bytes,
        one_time: Sequence[tuple[int, bytes]],
        replace: bool,
        now: float,
    ) -> int: ...

    def take_prekey(self, mailbox: bytes) -> bytes | None: ...

    def count_prekeys(self, mailbox: bytes) -> int: ...


@dataclass(frozen=True, slots=True)
class RelayReply:
    """What to send back, and whether to close the link afterwards."""

    data: bytes
    message: RelayMessage
    close: bool
    notify: tuple[bytes, ...] = ()
    """Mailboxes that got new entries (wake their parked pulls)."""
    park: RelayPull | TopicRead | None = None
    """A pull (or topic read) to hold until its mailbox (topic) gets an entry or its
    wait ends (then :meth:`resume`)."""


@dataclass(frozen=True, slots=True)
class RelayWork:
    """A request :meth:`RelayServer.triage` let through, for :meth:`RelayServer.serve`."""

    request: RelayMessage
    authorised: bool
    """A deposit with an item carrying a put token registered for its mailbox, or a
    request on a link whose own mailbox has put tokens registered (a user whom
    contacts write to): the host hands these to the worker first."""


class RelayServer:
    """Serves relay requests against ``store``.

    Args:
        store: The durable mailboxes.
        envelope_mailbox: Returns the mailbox an envelope is addressed to, or
            ``None`` if the envelope is malformed.
        quota: The most bytes one mailbox may hold (default: the limits', else 64 MiB).
        prekeys: The hosted prekey bundles; without it ``pk_*`` requests are
            refused as ``unsupported``.
        limits: The abuse limits (disk budget, replay window); None: neither.
        usage: Returns the envelopes and envelope bytes held by all mailboxes (for
            the disk budget; ``MailboxRepo.usage``).
        receipts: Where the receipt book keeps receipts and batches durably
            (``ReceiptRepo``; None: in memory only, lost on restart).
        blobs: The attachment blob store; without it ``blob_*`` requests are
            refused as ``unsupported``.
        topics: The broadcast channel topics (:mod:`._relay_topics`); without
            it ``tp_*`` requests are refused as ``unsupported``.
    """

    def __init__(
        self,
        store: MailboxStore,
        envelope_mailbox: Callable[[bytes], bytes | None],
        *,
        quota: int | None = None,
        prekeys: PrekeyStore | None = None,
        limits: RelayLimits | None = None,
        usage: Callable[[], tuple[int, int]] | None = None,
        receipts: ReceiptStore | None = None,
        blobs: RelayBlobStore | None = None,
        topics: TopicStore | None = None,
    ) -> None:
        self._store = store
        self.topics = topics
        """The channel topics (None: topics unsupported)."""
        self.posts_stored = 0
        """Channel posts stored (the same post again is not counted)."""
        self.post_uploads = 0
        """Channel post uploads answered (``tp_pub`` requests, the same post again too)."""
        self.topic_reads = 0
        """Topic read answers sent (held ones counted when answered)."""
        self._receipt_store = receipts
        self.blobs = blobs
        """The attachment blob store (None: blobs unsupported)."""
        self._limits = limits
        self._usage = usage
        self._held: int | None = None  # all mailboxes' bytes, as last read plus stored since
        self._held_read = float("-inf")
        self.recently_delivered = (
            DeliveredSet(limits.replay_entries, limits.replay_window) if limits else None
        )
        """The replay window's book (None without limits)."""
        self._prekeys = prekeys
        self._envelope_mailbox = envelope_mailbox
        self._quota = quota if quota is not None else (limits or RelayLimits()).mailbox_quota
        self.authorizer = (limits or RelayLimits(pow_max_bits=0)).authorizer()
        """Put tokens and proof of work (without ``limits``: tokens only, never work)."""
        self._challenge: PowChallenge | None = None  # of this request's last ``pow`` refusal
        self.stored = 0
        """Envelopes stored (a duplicate of a stored one is not counted)."""
        self.stored_bytes = 0
        """Their bytes."""
        self.delivered = 0
        """Envelopes acknowledged by their mailbox's owner (and deleted)."""
        self._refused: Counter[str] = Counter()
        self._refused_early: Counter[str] = Counter()  # by triage (the host's event loop)
        self._node_key: SigningKey | None = None
        self.receipts: ReceiptBook | None = None
        """The delivery receipts given to this relay (made when :attr:`node_key` is set)."""
        self.probes = 0
        """Probe challenges answered."""
        self._tokens: TokenShop | None = None

    @property
    def node_key(self) -> SigningKey | None:
        """The relay's node key: answers probes, names the relay in receipts (None: neither)."""
        return self._node_key

    @node_key.setter
    def node_key(self, key: SigningKey) -> None:
        self._node_key = key
        relay = bytes(NodeId.derive(key.public_key.to_bytes()))
        self.receipts = ReceiptBook(relay, store=self._receipt_store)

    @property
    def tokens(self) -> TokenShop | None:
        """The paid tokens sold and redeemed here (None: none; ``tk_*`` answer ``unsupported``)."""
        return self._tokens

    @tokens.setter
    def tokens(self, shop: TokenShop) -> None:
        self._tokens = shop
        self.authorizer.redeem = shop.redeem

    def sell(self, request: TokenBuy, paid: tuple[bytes, int] | None, now: float) -> RelayReply:
        """Answer a ``tk_buy`` whose payment record (``(payee, amount)``, or None) was read.

        In the store's worker: the payment is recorded as used in its transaction.
        """
        if self._tokens is None:
            return self._reply(RelayError(request.rid, "unsupported", "this relay sells no tokens"))
        try:
            issuance = self._tokens.sell(request.request, paid, now)
        except (TokenSaleError, TokenError) as exc:
            return self._reply(RelayError(request.rid, exc.code, str(exc)))
        return self._reply(TokenIssued(request.rid, issuance))

    def handle(
        self, owner: bytes, data: bytes, now: float, budget: PutBudget | None = None
    ) -> RelayReply:
        """Answer the request ``data`` from a peer that proved mailbox ``owner``.

        ``budget``: the link's rate buckets, charged for deposits (None: no rate limit).
        The same as :meth:`triage`, then :meth:`serve` unless that answered.
        """
        work = self.triage(owner, data, now, budget)
        return work if isinstance(work, RelayReply) else self.serve(owner, work.request, now)

    def triage(
        self, owner: bytes, data: bytes, now: float, budget: PutBudget | None = None
    ) -> RelayReply | RelayWork:
        """Decode ``data`` and charge its rate: the answer if that settles it, else the work.

        Touches no store (the host calls it from its event loop, so a request
        refused here costs no turn in the database worker): a malformed
        request is answered ``malformed``, a deposit over its link's or
        source's rate ``busy`` (``rate``), charged to ``budget`` otherwise.
        The work says whether it is authorised (:class:`RelayWork`), for the
        host's :class:`~dchat_network.lowlevel.WorkQueue`.
        """
        try:
            request = decode_relay_message(data)
        except RelayProtocolError as exc:
            return self._reply(RelayError(0, "malformed", str(exc)), early=True)
        busy = self._rate(request, now, budget)
        if busy is not None:
            return self._reply(busy, early=True)
        return RelayWork(request, self._authorised(owner, request))

    def _authorised(self, owner: bytes, request: RelayMessage) -> bool:
        """Whether ``request`` is authorised work (see :class:`RelayWork`); only reads."""
        holds = self.authorizer.holds
        match request:
            case RelayPut():
                return holds(request.mailbox, request.auth)
            case RelayPutMany():
                pairs = zip(request.items, request.auth, strict=False)  # auth: () or one each
                return any(holds(box, a) for (box, _), a in pairs)
        return self.authorizer.has_tokens(owner)

    def serve(self, owner: bytes, request: RelayMessage, now: float) -> RelayReply:
        """Answer a request :meth:`triage` let through (in the store's worker)."""
        self._challenge = None
        if (busy := self._over_disk(request, now)) is not None:
            return self._reply(busy)
        match request:
            case RelayPut():
                stored = self._store_one(request.mailbox, request.envelope, now, auth=request.auth)
                if stored == "pow":
                    return self._reply(RelayBusy(request.rid, "pow", 0, self._challenge))
                if isinstance(stored, str):
                    return self._reply(RelayError(request.rid, stored, _REFUSALS[stored]))
                return self._reply(RelayStored(request.rid, stored), (request.mailbox,))
            case RelayPutMany():
                return self._put_many(request, now)
            case RelayFetch() if request.mailbox == owner:
                return self._reply(self._fetch(request.rid, request.mailbox, request.limit))
            case RelayAck() if request.mailbox == owner:
                acked = self._ack(owner, request.entry_ids, now)
                return self._reply(RelayAcked(request.rid, acked))
            case RelayPull() if request.mailbox == owner:
                self._ack(owner, request.ack, now)
                batch = self._fetch(request.rid, owner, request.limit)
                park = request if not batch.items and request.wait_ms > 0 else None
                return RelayReply(encode_relay_message(batch), batch, False, park=park)
            case RelayPrekeyPut() | RelayPrekeyCount() | RelayPrekeyGet():
                return self._reply(self._prekey_request(owner, request, now))
            case RelayTokenSet() if request.mailbox == owner:
                return self._reply(self._set_tokens(request))
            case RingSet() if request.mailbox == owner:
                return self._reply(self._set_ring(request))
            case ZkGet():
                ctx = self.authorizer.rings.contexts(request.mailbox, request.count, now)
                nonces = ZkContexts(request.rid, ctx.epoch, ctx.nonces, ctx.ring)
                return self._reply(replace(nonces, key=ctx.key, signature=ctx.signature))
            case RelayFetch() | RelayAck() | RelayPull() | RelayTokenSet() | RingSet():
                return self._reply(RelayError(request.rid, "forbidden", "not your mailbox"))
            case RelayProbe():
                return self._reply(self._probe(request, now))
            case RelayReceipt() | RelayAudit():
                return self._reply(self._receipt_request(owner, request, now))
            case BlobOpen() | BlobPut() | BlobGet() | BlobDelete():
                return self._reply(answer_blob(self.blobs, owner, request, now))
            case TopicPublish():
                self.post_uploads += 1
                answer = publish_post(self.topics, request, now, self._limits)
                new = isinstance(answer, TopicPublished) and answer.new
                self.posts_stored += int(new)
                if new and self._held is not None:
                    self._held += len(request.post)
                return self._reply(answer, (request.topic,) if new else ())
            case TokenOfferAsk() if self._tokens is not None:
                return self._reply(TokenOffered(request.rid, self._tokens.offer(now).to_bytes()))
            case TokenOfferAsk() | TokenBuy():
                return self._reply(RelayError(request.rid, "unsupported", "no token sales here"))
            case TopicRead():
                answer = read_topic(self.topics, request)
                empty = isinstance(answer, TopicPosts) and not answer.items
                if empty and request.wait_ms > 0:
                    return RelayReply(encode_relay_message(answer), answer, False, park=request)
                self.topic_reads += 1
                return self._reply(answer)
        return self._reply(RelayError(getattr(request, "rid", 0), "unexpected", "not a request"))

    def resume(self, pull: RelayPull | TopicRead) -> RelayReply:
        """The answer to a parked ``pull`` (or topic read) once woken or timed out (maybe empty)."""
        if isinstance(pull, TopicRead):
            self.topic_reads += 1
            return self._reply(read_topic(self.topics, pull))
        return self._reply(self._fetch(pull.rid, pull.mailbox, pull.limit))

    @property
    def refusals(self) -> Counter[str]:
        """Refused requests and ``put_many`` items, by error code (a fixed set)."""
        total = Counter(dict(self._refused))  # dict() copies in one step: no thread runs meanwhile
        total.update(dict(self._refused_early))
        return total

    def _reply(
        self, message: RelayMessage, notify: tuple[bytes, ...] = (), *, early: bool = False
    ) -> RelayReply:
        close = isinstance(message, RelayError)
        # Triage runs in the host's event loop, the rest in the store's worker:
        # each counts in its own counter, so no count is lost between threads.
        refused = self._refused_early if early else self._refused
        if isinstance(message, RelayError):
            refused[message.code] += 1
        elif isinstance(message, RelayBusy):
            refused[f"busy_{message.reason}"] += 1
        return RelayReply(encode_relay_message(message), message, close, notify)

    def _rate(
        self, request: RelayMessage, now: float, budget: PutBudget | None
    ) -> RelayBusy | None:
        """A ``busy`` answer if the request is a deposit over its rate, else it is charged."""
        if budget is None:
            return None
        match request:
            case RelayPut():
                items, size = 1, len(request.envelope)
            case RelayPutMany():
                items, size = len(request.items), sum(len(env) for _, env in request.items)
            case RelayPrekeyPut():
                items = 1
                size = len(request.last) + sum(len(blob) for _, blob in request.one_time)
            case RelayPrekeyGet() | ZkGet():
                items, size = 1, 0
            case BlobPut():
                items, size = 1, len(request.data)
            case TopicPublish():
                items, size = 1, len(request.post)
            case OnionPut() | OnionFetchPut():
                items, size = 1, len(request.packet)
            case _:
                return None
        if (wait := budget.charge(items, size, now)) > 0:
            return RelayBusy(request.rid, "rate", retry_ms(wait))
        return None

    def _over_disk(self, request: RelayMessage, now: float) -> RelayBusy | None:
        """A ``busy`` answer if the request is a deposit past the disk budget."""
        match request:
            case RelayPut():
                size = len(request.envelope)
            case RelayPutMany():
                size = sum(len(env) for _, env in request.items)
            case TopicPublish():
                size = len(request.post)
            case _:
                return None
        if self._over_budget(size, now):
            assert self._limits is not None
            return RelayBusy(request.rid, "disk", retry_ms(self._limits.disk_retry))
        return None

    def _over_budget(self, size: int, now: float) -> bool:
        """Whether ``size`` more bytes would pass the disk budget (re-reading the total if so)."""
        budget = self._limits.disk_budget if self._limits else 0
        if not budget or self._usage is None:
            return False
        fresh = now - self._held_read >= _USAGE_REFRESH or now < self._held_read
        if (self._held is None or self._held + size > budget) and fresh:
            topics = self.topics.topic_total() if self.topics is not None else 0
            self._held, self._held_read = self._usage()[1] + topics, now
        assert self._held is not None
        return self._held + size > budget

    def _set_tokens(self, request: RelayTokenSet) -> RelayMessage:
        count = self.authorizer.set_tokens(request.mailbox, request.hashes)
        if count is None:
            return RelayBusy(request.rid, "tokens", retry_ms(_TOKENS_RETRY))
        return RelayTokensHeld(request.rid, count)

    def _set_ring(self, request: RingSet) -> RelayMessage:
        try:
            count = self.authorizer.rings.set_ring(
                request.mailbox, request.ring, request.key, request.signature
            )
        except PutProofError as exc:
            return RelayError(request.rid, exc.code, "a ring key or its signature is not valid")
        if count is None:
            return RelayBusy(request.rid, "rings", retry_ms(_TOKENS_RETRY))
        return RingHeld(request.rid, count)

    def _store_one(
        self,
        mailbox: bytes,
        envelope: bytes,
        now: float,
        held: dict[bytes, int] | None = None,
        auth: bytes | None = None,
    ) -> bytes | str:
        """Store one envelope; its entry id, or the code that refused it.

        ``held`` carries each mailbox's stored bytes from one envelope of a
        batch to the next (all in one transaction), so the sum is read once.
        A ``pow`` refusal leaves its challenge in ``_challenge``.
        """
        if self._envelope_mailbox(envelope) != mailbox:
            return "bad_envelope"
        entry = entry_id_of(envelope)
        recent = self.recently_delivered
        if recent and (mailbox, entry, now) in recent:
            return "delivered"
        try:
            if (refused := self._needs_work(mailbox, entry, auth, now, len(envelope))) is not None:
                return refused
        except PutProofError as exc:
            return exc.code
        held = {} if held is None else held
        size = held[mailbox] if mailbox in held else self._store.total_bytes(mailbox)
        if size + len(envelope) > self._quota:
            return "quota"
        arrived = now - now % ARRIVAL_GRANULARITY  # coarsened (ARRIVAL_GRANULARITY)
        entry_id, created = self._store.put(mailbox, envelope, arrived)
        held[mailbox] = size + len(envelope) * created
        self.stored += int(created)
        self.stored_bytes += len(envelope) * created
        if self._held is not None:
            self._held += len(envelope) * created
        return entry_id

    def _put_many(self, request: RelayPutMany, now: float) -> RelayReply:
        held: dict[bytes, int] = {}
        auth = request.auth or (None,) * len(request.items)
        results: list[bytes | str] = []
        refused: dict[bytes, str] = {}  # mailbox -> the code that refused an item of it
        for (mailbox, env), one in zip(request.items, auth, strict=True):
            if mailbox in refused:  # behind a refused item: never stored ahead of it
                results.append(self._held_back(mailbox, env, now, one) or refused[mailbox])
                continue
            result = self._store_one(mailbox, env, now, held, one)
            if isinstance(result, str) and result not in ("delivered", "bad_envelope"):
                refused[mailbox] = result  # the sender retries it
            results.append(result)
        self._refused.update(r for r in results if isinstance(r, str))  # each item, by code
        notify = {
            m for (m, _), r in zip(request.items, results, strict=True) if isinstance(r, bytes)
        }
        reply = RelayStoredMany(request.rid, tuple(results), self._challenge)
        return self._reply(reply, tuple(sorted(notify)))

    def _held_back(
        self, mailbox: bytes, envelope: bytes, now: float, auth: bytes | None
    ) -> str | None:
        """An item held behind a refused one: still weighed as load (``pow`` if due), unstored."""
        if self._envelope_mailbox(envelope) != mailbox:
            return "bad_envelope"
        if is_paid(auth) or (auth is not None and auth[0] == PROOF_TAG):
            return None  # a paid token or proof nonce is not spent on an item not stored
        needs = self._needs_work(mailbox, entry_id_of(envelope), auth, now)
        return "pow" if needs is not None else None

    def _needs_work(
        self, mailbox: bytes, entry: bytes, auth: bytes | None, now: float, size: int = 0
    ) -> str | None:
        """Weigh a deposit as load; None if it may be stored, else ``pow`` or a paid token's code.

        A challenge is kept for the reply.
        """
        challenge = self.authorizer.authorize(mailbox, entry, auth, now, size)
        if isinstance(challenge, str):
            return challenge
        if challenge is not None and (
            self._challenge is None or challenge.bits > self._challenge.bits
        ):
            self._challenge = challenge
        return None if challenge is None else "pow"

    def _fetch(self, rid: int, mailbox: bytes, limit: int) -> RelayBatch:
        items: list[tuple[bytes, bytes]] = []
        size = 0
        for entry in self._store.fetch(mailbox, limit):
            size += len(entry.envelope) + 64
            if items and size > MAX_BATCH_BYTES:
                break
            items.append((entry.entry_id, entry.envelope))
        if self.receipts is not None:  # what the owner may now give a receipt for
            self.receipts.handed(mailbox, [entry_id for entry_id, _ in items])
        return RelayBatch(rid, tuple(items))

    def _ack(self, mailbox: bytes, entry_ids: Sequence[bytes], now: float) -> int:
        deleted = self._store.ack(mailbox, list(entry_ids)) if entry_ids else 0
        self.delivered += deleted
        if deleted and self.recently_delivered is not None:
            self.recently_delivered.add(mailbox, tuple(entry_ids), now)
        return deleted

    def _probe(self, request: RelayProbe, now: float) -> RelayMessage:
        if self.node_key is None:
            return RelayError(request.rid, "unsupported", "this relay answers no probes")
        try:
            signature = answer_probe(self.node_key, request.challenge, int(now * 1000))
        except ProbeError as exc:
            return RelayError(request.rid, "bad_probe", str(exc))
        self.probes += 1
        return RelayProbeAnswer(request.rid, signature)

    def _receipt_request(
        self, owner: bytes, request: RelayReceipt | RelayAudit, now: float
    ) -> RelayMessage:
        book = self.receipts
        if book is None and isinstance(request, RelayReceipt):
            return RelayReceiptTaken(request.rid, 0)  # not kept: the client stops offering them
        if isinstance(request, RelayAudit):
            answer = None if book is None else book.answer(request.root, request.index)
            if answer is None:
                return RelayError(request.rid, "no_batch", "no such receipt batch or leaf")
            return RelayAuditAnswer(request.rid, answer.entry_id, answer.receipt, answer.path)
        assert book is not None
        try:  # only for entries this relay handed the owner (the book keeps which)
            return RelayReceiptTaken(request.rid, book.take(owner, request.receipt, now=now))
        except ProbeError as exc:
            return RelayError(request.rid, "bad_receipt", str(exc))

    def _prekey_request(
        self, owner: bytes, request: RelayPrekeyPut | RelayPrekeyCount | RelayPrekeyGet, now: float
    ) -> RelayMessage:
        store = self._prekeys
        if store is None:
            return RelayError(request.rid, "unsupported", "this relay hosts no prekeys")
        if isinstance(request, RelayPrekeyGet):
            bundle = store.take_prekey(request.mailbox)
            if bundle is None:
                return RelayError(request.rid, "no_prekeys", "no prekeys published")
            return RelayPrekeyBundle(request.rid, bundle)
        if request.mailbox != owner:
            return RelayError(request.rid, "forbidden", "not your mailbox")
        if isinstance(request, RelayPrekeyCount):
            return RelayPrekeysHeld(request.rid, store.count_prekeys(request.mailbox))
        return self._put_prekeys(store, request, now)

    @staticmethod
    def _put_prekeys(store: PrekeyStore, request: RelayPrekeyPut, now: float) -> RelayMessage:
        try:
            check_prekey_put(request.last, request.one_time)
        except BadPrekeysError as exc:
            return RelayError(request.rid, "bad_prekeys", str(exc))
        one_time = request.one_time
        held = 0 if request.replace else store.count_prekeys(request.mailbox)
        if held + len(one_time) > MAX_PREKEYS_HELD:
            return RelayError(request.rid, "prekey_quota", "too many one-time prekeys held")
        count = store.put_prekeys(request.mailbox, request.last, one_time, request.replace, now)
        return RelayPrekeysHeld(request.rid, count)


class RelayClient:
    """Builds requests and checks replies, one outstanding request at a time."""

    def __init__(self) -> None:
        self._rid = 0
        self._pending: RelayMessage | None = None

    def _request(self, message: RelayMessage) -> bytes:
        self._pending = message
        return encode_relay_message(message)

    def _next_rid(self) -> int:
        self._rid += 1
        return self._rid

    def put(self, mailbox: bytes, envelope: bytes, auth: bytes | None = None) -> bytes:
        """A request to store ``envelope`` in ``mailbox`` (``auth``: token or stamp)."""
        return self._request(RelayPut(self._next_rid(), mailbox, envelope, auth))

    def fetch(self, mailbox: bytes, limit: int = MAX_BATCH) -> bytes:
        """A request for up to ``limit`` entries of our own ``mailbox``."""
        return self._request(RelayFetch(self._next_rid(), mailbox, limit))

    def ack(self, mailbox: bytes, entry_ids: Sequence[bytes]) -> bytes:
        """A request to delete received entries of our own ``mailbox``."""
        return self._request(RelayAck(self._next_rid(), mailbox, tuple(entry_ids)))

    def put_many(
        self, items: Sequence[tuple[bytes, bytes]], auth: Sequence[bytes | None] = ()
    ) -> bytes:
        """A request to store each ``(mailbox, envelope)`` (1 to ``MAX_BATCH``).

        ``auth``: empty, or per item its authorization (a put token or stamp) or None.
        """
        one_each = tuple(auth) if any(a is not None for a in auth) else ()
        return self._request(RelayPutMany(self._next_rid(), tuple(items), one_each))

    def set_tokens(self, mailbox: bytes, hashes: Sequence[bytes]) -> bytes:
        """A request to replace the put-token hashes of our own ``mailbox``."""
        return self._request(RelayTokenSet(self._next_rid(), mailbox, tuple(hashes)))

    def set_ring(self, mailbox: bytes, ring: bytes, key: bytes, signature: bytes) -> bytes:
        """A request to replace the contact ring of our own ``mailbox`` (section 41)."""
        return self._request(RingSet(self._next_rid(), mailbox, ring, key, signature))

    def proof_contexts(self, mailbox: bytes, count: int) -> bytes:
        """A request for ``count`` one-use contact-proof nonces for ``mailbox``."""
        return self._request(ZkGet(self._next_rid(), mailbox, count))

    def pull(
        self, mailbox: bytes, ack: Sequence[bytes], *, limit: int = MAX_BATCH, wait_ms: int = 0
    ) -> bytes:
        """A request to acknowledge ``ack`` of our own ``mailbox`` and fetch, waiting if empty."""
        return self._request(RelayPull(self._next_rid(), mailbox, limit, tuple(ack), wait_ms))

    def put_prekeys(
        self, mailbox: bytes, last: bytes, otks: Sequence[tuple[int, bytes]], *, replace: bool
    ) -> bytes:
        """A request to publish prekey bundles for our own ``mailbox``.

        The bundles are opaque to the relay (the caller wraps them); it only
        checks their sizes and the prekey ids.

        Args:
            mailbox: Our mailbox.
            last: The wrapped last-resort bundle, 1 to ``MAX_PREKEY_BUNDLE`` bytes.
            otks: ``(one-time prekey id, wrapped bundle)`` pairs, at most
                ``MAX_PREKEY_PUT``, ids distinct and in ``0..2**32-1``; the
                relay hands them out lowest id first.
            replace: Drop every bundle the relay holds first (after a rotation).
        """
        one_time = tuple((prekey_id, blob) for prekey_id, blob in otks)
        return self._request(RelayPrekeyPut(self._next_rid(), mailbox, last, one_time, replace))

    def count_prekeys(self, mailbox: bytes) -> bytes:
        """A request for the number of one-time bundles held for our own ``mailbox``."""
        return self._request(RelayPrekeyCount(self._next_rid(), mailbox))

    def get_prekeys(self, mailbox: bytes) -> bytes:
        """A request for one (wrapped) prekey bundle of anyone's ``mailbox``."""
        return self._request(RelayPrekeyGet(self._next_rid(), mailbox))

    def probe(self, challenge: bytes) -> bytes:
        """A request to sign a probe ``challenge`` (see :mod:`dchat_network._probe`)."""
        return self._request(RelayProbe(self._next_rid(), challenge))

    def receipt(self, receipt: bytes) -> bytes:
        """A request to keep a delivery receipt for our own mailbox."""
        return self._request(RelayReceipt(self._next_rid(), receipt))

    def audit(self, root: bytes, index: int) -> bytes:
        """A request for leaf ``index`` of the receipt batch with ``root``."""
        return self._request(RelayAudit(self._next_rid(), root, index))

    def blob_open(self, blob_id: bytes, size: int) -> bytes:
        """A request to start or resume uploading a blob (charged to our link's mailbox)."""
        return self._request(BlobOpen(self._next_rid(), blob_id, size))

    def blob_put(self, blob_id: bytes, offset: int, data: bytes) -> bytes:
        """A request to append ``data`` to a blob at ``offset`` (the bytes the relay holds)."""
        return self._request(BlobPut(self._next_rid(), blob_id, offset, data))

    def blob_get(self, blob_id: bytes, offset: int, limit: int) -> bytes:
        """A request for up to ``limit`` bytes of a complete blob from ``offset``."""
        return self._request(BlobGet(self._next_rid(), blob_id, offset, limit))

    def blob_delete(self, blob_id: bytes) -> bytes:
        """A request to delete a blob our link's mailbox uploaded."""
        return self._request(BlobDelete(self._next_rid(), blob_id))

    def publish(self, topic: bytes, post: bytes, desc: bytes | None = None) -> bytes:
        """A request to store a signed channel ``post`` in ``topic`` (``desc``: its descriptor)."""
        return self._request(TopicPublish(self._next_rid(), topic, post, desc))

    def token_offer(self) -> bytes:
        """Ask for the relay's signed token offer."""
        return self._request(TokenOfferAsk(self._next_rid()))

    def token_buy(self, request: bytes) -> bytes:
        """Ask for the blind signatures of a paid token request."""
        return self._request(TokenBuy(self._next_rid(), request))

    def read_topic(
        self, topic: bytes, after: int, *, limit: int = MAX_BATCH, wait_ms: int = 0, desc: int = 0
    ) -> bytes:
        """A request for posts of ``topic`` after ``after``, held up to ``wait_ms`` if none.

        ``desc``: the descriptor version we hold (the relay sends a newer one).
        """
        return self._request(TopicRead(self._next_rid(), topic, after, limit, wait_ms, desc))

    def onion_key(self) -> bytes:
        """A request for the relay's signed onion key record."""
        return self._request(OnionKeyQuery(self._next_rid()))

    def onion(self, packet: bytes) -> bytes:
        """A request to peel ``packet`` and forward or deposit what it carries."""
        return self._request(OnionPut(self._next_rid(), packet))

    def onion_fetch(self, packet: bytes) -> bytes:
        """A request to peel a fetch onion (§46) and forward or answer it."""
        return self._request(OnionFetchPut(self._next_rid(), packet))

    def receive(self, data: bytes) -> RelayMessage:
        """Parse the reply to the outstanding request.

        Raises:
            RelayProtocolError: malformed, an error reply, or not the expected answer.
        """
        pending, self._pending = self._pending, None
        if pending is None:
            raise RelayProtocolError("reply without a request")
        reply = decode_relay_message(data)
        if isinstance(reply, RelayError):
            if reply.code == "idle" and reply.rid == 0:  # the relay closed a silent link
                raise LinkClosedError("the relay closed the idle link")
            refused = RelayProtocolError(f"relay refused: {reply.code}: {reply.message}")
            refused.code = reply.code
            raise refused
        if isinstance(reply, RelayBusy):
            raise RelayBusyError(reply.reason, reply.retry_ms / 1000, reply.pow)
        if type(reply) is not _EXPECTED.get(type(pending)) or reply.rid != pending.rid:
            raise RelayProtocolError("relay answered a different request")
        if (
            isinstance(pending, RelayPutMany)
            and isinstance(reply, RelayStoredMany)
            and len(reply.results) != len(pending.items)
        ):
            raise RelayProtocolError("relay answered a different number of items")
        if (
            isinstance(pending, RelayPull)
            and isinstance(reply, RelayBatch)
            and len(reply.items) > pending.limit
        ):
            raise RelayProtocolError("relay answered more entries than asked")
        _check_blob_reply(pending, reply)
        return reply


def _check_blob_reply(pending: RelayMessage, reply: RelayMessage) -> None:
    """A blob answer must name the asked blob, offset and size, and no more bytes than asked."""
    if isinstance(pending, BlobOpen | BlobPut) and isinstance(reply, BlobAt):
        size = pending.size if isinstance(pending, BlobOpen) else reply.size
        if reply.blob_id != pending.blob_id or reply.size != size:
            raise RelayProtocolError("relay answered for another blob")
    if (
        isinstance(pending, BlobGet)
        and isinstance(reply, BlobData)
        and (reply.offset != pending.offset or len(reply.data) > pending.limit)
    ):
        raise RelayProtocolError("relay answered another range")
    if (
        isinstance(pending, TopicRead)
        and isinstance(reply, TopicPosts)
        and (len(reply.items) > pending.limit or any(s <= pending.after for s, _ in reply.items))
    ):
        raise RelayProtocolError("relay answered posts not asked for")


_EXPECTED: Final[dict[type[RelayMessage], type[RelayMessage]]] = {
    RelayPut: RelayStored,
    RelayFetch: RelayBatch,
    RelayAck: RelayAcked,
    RelayPrekeyPut: RelayPrekeysHeld,
    RelayPrekeyCount: RelayPrekeysHeld,
    RelayPrekeyGet: RelayPrekeyBundle,
    RelayPutMany: RelayStoredMany,
    RelayPull: RelayBatch,
    RelayTokenSet: RelayTokensHeld,
    RingSet: RingHeld,
    ZkGet: ZkContexts,
    RelayProbe: RelayProbeAnswer,
    RelayReceipt: RelayReceiptTaken,
    RelayAudit: RelayAuditAnswer,
    BlobOpen: BlobAt,
    BlobPut: BlobAt,
    BlobGet: BlobData,
    BlobDelete: BlobGone,
    TopicPublish: TopicPublished,
    TopicRead: TopicPosts,
    OnionKeyQuery: OnionKeyIs,
    OnionPut: OnionDone,
    OnionFetchPut: OnionFetched,
    TokenOfferAsk: TokenOffered,
    TokenBuy: TokenIssued,
}
