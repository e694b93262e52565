"""Relay protocol messages, carried one per link message.

A client deposits envelopes into mailboxes and, if it owns a mailbox, fetches
and acknowledges them. Every request has a client-chosen request id ``rid`` that
the reply repeats. Encoding: canonical CBOR maps with a type tag ``t``::

    put    {"t": "put", "rid": n, "mb": mailbox(32), "env": envelope, ?"auth": authorization}
           -> {"t": "stored", "rid": n, "id": entry(32)}
    fetch  {"t": "fetch", "rid": n, "mb": mailbox(32), "max": k}
           -> {"t": "batch", "rid": n, "items": [[id, env], ...]}
    ack    {"t": "ack", "rid": n, "mb": mailbox(32), "ids": [entry, ...]}
           -> {"t": "acked", "rid": n, "n": deleted}
    put_many {"t": "put_many", "rid": n, "items": [[mailbox(32), envelope, ?authorization], ...]}
           -> {"t": "stored_many", "rid": n, "res": [entry(32) or refusal code, ...],
               ?"pow": [seed(16), bits]}
    pull   {"t": "pull", "rid": n, "mb": mailbox(32), "max": k, "ack": [entry, ...],
            "wait": milliseconds}
           -> {"t": "batch", "rid": n, "items": [[id, env], ...]}
    pk_put {"t": "pk_put", "rid": n, "mb": mailbox(32), "last": blob,
            "otks": [[prekey id, blob], ...], "replace": bool}
           -> {"t": "pk_held", "rid": n, "n": one-time bundles held}
    pk_count {"t": "pk_count", "rid": n, "mb": mailbox(32)}
           -> {"t": "pk_held", "rid": n, "n": one-time bundles held}
    pk_get {"t": "pk_get", "rid": n, "mb": mailbox(32)}
           -> {"t": "pk_bundle", "rid": n, "bundle": blob}
    probe  {"t": "probe", "rid": n, "ch": challenge}
           -> {"t": "probe_ok", "rid": n, "sig": bytes(64)}
    rcpt   {"t": "rcpt", "rid": n, "r": receipt}
           -> {"t": "rcpt_ok", "rid": n, "n": envelopes it covers}
    audit  {"t": "audit", "rid": n, "root": bytes(32), "i": leaf index}
           -> {"t": "audit_ok", "rid": n, "id": entry(32), "rcpt": receipt,
               "path": [bytes(32), ...]}
    any failure -> {"t": "error", "rid": n, "code": str, "msg": str}
    tok_set {"t": "tok_set", "rid": n, "mb": mailbox(32), "hashes": [hash(16), ...]}
           -> {"t": "tok_held", "rid": n, "n": token hashes held}
    over a limit -> {"t": "busy", "rid": n, "why": str, "retry": milliseconds,
                     ?"pow": [seed(16), bits]}

Ownership: ``fetch`` and ``ack`` name a mailbox, and the relay serves them only
if it is the :class:`~dchat_core.MailboxId` of the key the client proved in the
link handshake (see :class:`~dchat_network.RelayServer`). So do ``pk_put`` and
``pk_count``; ``pk_get`` is open to anyone (a sender fetching a recipient's
prekey bundle). Each ``blob`` is a prekey bundle its owner wrapped so that only
holders of the owner's contact card or identity document can open it: opaque
to the relay, which never parses one (a bundle names its owner's identity key,
and the relay must not link a mailbox to a person). The codec checks only the
types of ``pk_put``; the server refuses (``bad_prekeys``) an empty blob, one over
:data:`MAX_PREKEY_BUNDLE` bytes, a prekey id outside ``0..2**32-1`` or repeated.

A ``stored`` reply is sent only after the envelope is durably committed, so the
sender may forget it; entries are deleted only by ``ack`` (or a ``pull``'s
``ack``) from the owner.

``put_many`` deposits up to :data:`MAX_BATCH` envelopes (at most
:data:`MAX_BATCH_BYTES` in all) in one request and one commit; each item is
answered on its own (an entry id, or the code that refused it), so one full
mailbox does not fail the others, and a refusal does not end the link.
``pull`` is the owner's push channel: it acknowledges ``ack``, then answers
with the waiting entries at once, or, when none wait, holds the answer until
one arrives or ``wait`` milliseconds (at most :data:`MAX_WAIT_MS`) pass.

``probe`` carries a validator's signed challenge (see :mod:`._probe`); the
relay answers with its node key's signature over it, or ``bad_probe`` (a
stale, foreign or forged challenge) or ``unsupported`` (no node key).

``rcpt`` hands the relay a delivery receipt the owner of the link's mailbox
signed (see :mod:`._receipts`); ``audit`` asks for leaf ``i`` of the receipt
batch with Merkle root ``root`` (``no_batch`` when the relay does not have it).

``busy`` is the relay's backpressure (see :class:`~dchat_network.lowlevel.RelayGuard`):
the request was not served because a limit is reached (``why``: ``rate``,
``connections``, ``disk``), and the client should send nothing of the kind to
this relay for ``retry`` milliseconds (at most :data:`MAX_RETRY_MS`). Unlike
``error`` it does not end the link, except for ``connections`` (the link was
over the relay's connection cap, and the relay closes it after answering).

Put authorization (:mod:`dchat_network._put_auth`): a deposit may carry an
``authorization`` (a put token, ``0x01 || token(16)``, a proof-of-work
stamp, ``0x02 || seed(16) || nonce(8)``, or a paid blind token,
``0x03 || redemption``, bought with ``tk_offer`` / ``tk_buy``: see
:mod:`._relay_token_wire` and :mod:`._token_shop`). A deposit the relay will not take
without work is answered ``busy`` with ``why`` ``pow`` and ``retry`` 0 (a
``put``) or the item code ``pow`` (a ``put_many``), and the answer's ``pow``
field says what work to do. ``tok_set`` (the owner's, like ``pk_put``)
replaces the mailbox's registered token hashes (at most
:data:`MAX_TOKENS_HELD`). A contact proof (``0x04 || epoch(8) || nonce(32)
|| proof``) is the third kind; its messages ``ring_set`` and ``zk_get`` are
in :mod:`._relay_proof_wire` (protocol section 41).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import RelayProtocolError
from ._probe import MAX_CHALLENGE as MAX_PROBE_CHALLENGE
from ._put_auth import MAX_POW_BITS, MAX_TOKENS_HELD, SEED_SIZE, PowChallenge, check_auth
from ._receipts import MAX_RECEIPT
from ._relay_blob_wire import (
    BLOB_DECODERS,
    BlobAt,
    BlobData,
    BlobDelete,
    BlobGet,
    BlobGone,
    BlobOpen,
    BlobPut,
)
from ._relay_onion_wire import (
    ONION_DECODERS,
    OnionDone,
    OnionFetched,
    OnionFetchPut,
    OnionKeyIs,
    OnionKeyQuery,
    OnionPut,
)
from ._relay_proof_wire import PROOF_DECODERS, RingHeld, RingSet, ZkContexts, ZkGet
from ._relay_token_wire import (
    TOKEN_DECODERS,
    TokenBuy,
    TokenIssued,
    TokenOfferAsk,
    TokenOffered,
)
from ._relay_topic_wire import (
    TOPIC_DECODERS,
    TopicPosts,
    TopicPublish,
    TopicPublished,
    TopicRead,
)

__all__ = (
    "MAX_BATCH",
    "MAX_BATCH_BYTES",
    "MAX_WAIT_MS",
    "MAX_PREKEYS_HELD",
    "MAX_PREKEY_BUNDLE",
    "MAX_PREKEY_PUT",
    "MAX_RETRY_MS",
    "RelayAck",
    "RelayAcked",
    "RelayBatch",
    "RelayBusy",
    "RelayError",
    "RelayFetch",
    "RelayMessage",
    "RelayPrekeyBundle",
    "RelayPrekeyCount",
    "RelayPrekeyGet",
    "RelayPrekeyPut",
    "RelayPrekeysHeld",
    "RelayAudit",
    "RelayAuditAnswer",
    "RelayProbe",
    "RelayProbeAnswer",
    "RelayReceipt",
    "RelayReceiptTaken",
    "RelayPull",
    "RelayPut",
    "RelayPutMany",
    "RelayStored",
    "RelayStoredMany",
    "RelayTokenSet",
    "RelayTokensHeld",
    "decode_relay_message",
    "encode_relay_message",
)

MAX_BATCH: Final = 64
#: The most envelope bytes in one ``batch`` or ``put_many`` (fits one link message).
MAX_BATCH_BYTES: Final = 768 * 1024
#: The longest a ``pull`` may ask the relay to hold its answer.
MAX_WAIT_MS: Final = 30_000
MAX_ENVELOPE: Final = 96 * 1024
#: The largest (wrapped) prekey bundle a relay accepts or serves, in bytes.
MAX_PREKEY_BUNDLE: Final = 2200
#: The most one-time bundles in one ``pk_put``.
MAX_PREKEY_PUT: Final = 100
#: The most one-time bundles a relay holds for one mailbox.
MAX_PREKEYS_HELD: Final = 200
#: The longest ``retry`` a ``busy`` answer may ask for (one hour).
MAX_RETRY_MS: Final = 3_600_000
#: The longest Merkle path an audit answer may carry.
MAX_AUDIT_PATH: Final = 64
_MAX_RID: Final = 2**63 - 1
_OTHER_DECODERS: Final = {
    **BLOB_DECODERS,
    **TOPIC_DECODERS,
    **ONION_DECODERS,
    **PROOF_DECODERS,
    **TOKEN_DECODERS,
}
_LIMITS: Final = DecodeLimits(
    max_size=8 * 1024 * 1024,
    max_depth=3,
    max_items=max(4 * MAX_BATCH, 3 * MAX_PREKEY_PUT, MAX_TOKENS_HELD) + 16,
)


@dataclass(frozen=True, slots=True)
class RelayPut:
    """Store ``envelope`` in ``mailbox`` (``auth``: a put token or proof-of-work stamp)."""

    rid: int
    mailbox: bytes
    envelope: bytes
    auth: bytes | None = None


@dataclass(frozen=True, slots=True)
class RelayStored:
    """The envelope is durably stored under ``entry_id``."""

    rid: int
    entry_id: bytes


@dataclass(frozen=True, slots=True)
class RelayFetch:
    """Return up to ``limit`` waiting entries of ``mailbox``, the caller's own."""

    rid: int
    mailbox: bytes
    limit: int


@dataclass(frozen=True, slots=True)
class RelayBatch:
    """Waiting entries, oldest first."""

    rid: int
    items: tuple[tuple[bytes, bytes], ...]


@dataclass(frozen=True, slots=True)
class RelayAck:
    """Delete these entries of ``mailbox`` (the caller's own): they are safely received."""

    rid: int
    mailbox: bytes
    entry_ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RelayAcked:
    """``deleted`` entries were removed."""

    rid: int
    deleted: int


@dataclass(frozen=True, slots=True)
class RelayPutMany:
    """Store each ``(mailbox, envelope)`` of ``items``; whatever is stored commits together.

    ``auth``: empty, or one authorization (or None) per item.
    """

    rid: int
    items: tuple[tuple[bytes, bytes], ...]
    auth: tuple[bytes | None, ...] = ()


@dataclass(frozen=True, slots=True)
class RelayStoredMany:
    """Per item of a ``put_many``, in order: its entry id (32 bytes, stored) or refusal code."""

    rid: int
    results: tuple[bytes | str, ...]
    pow: PowChallenge | None = None
    """The work to do for the items refused ``pow``."""


@dataclass(frozen=True, slots=True)
class RelayPull:
    """Delete ``ack`` from ``mailbox`` (the caller's own), then return up to ``limit`` entries.

    When none is waiting the relay holds the answer until one arrives or
    ``wait_ms`` pass (0: answer at once).
    """

    rid: int
    mailbox: bytes
    limit: int
    ack: tuple[bytes, ...]
    wait_ms: int


@dataclass(frozen=True, slots=True)
class RelayError:
    """The request failed; ``code`` is machine-readable, ``message`` for people."""

    rid: int
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class RelayBusy:
    """Not served: a limit is reached (``reason``); try again after ``retry_ms`` milliseconds."""

    rid: int
    reason: str
    retry_ms: int
    pow: PowChallenge | None = None
    """With ``reason`` ``pow``: the work to do before retrying."""


@dataclass(frozen=True, slots=True)
class RelayPrekeyPut:
    """Publish prekey bundles for ``mailbox`` (the caller's own).

    ``last`` is the wrapped last-resort bundle; ``one_time`` pairs each wrapped
    one-time bundle with the id of its one-time prekey, which the relay uses to
    hand them out lowest first (it cannot read the bundles). With ``replace``
    every held bundle is dropped first (rotation); otherwise held one-time
    bundles stay and ``last`` replaces the held last-resort bundle.
    """

    rid: int
    mailbox: bytes
    last: bytes
    one_time: tuple[tuple[int, bytes], ...]
    replace: bool


@dataclass(frozen=True, slots=True)
class RelayPrekeyCount:
    """How many one-time bundles does the relay hold for ``mailbox`` (the caller's own)?"""

    rid: int
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class RelayPrekeyGet:
    """Hand out one prekey bundle of ``mailbox`` (anyone may ask)."""

    rid: int
    mailbox: bytes


@dataclass(frozen=True, slots=True)
class RelayPrekeysHeld:
    """The relay now holds ``count`` one-time bundles for the mailbox."""

    rid: int
    count: int


@dataclass(frozen=True, slots=True)
class RelayPrekeyBundle:
    """One wrapped prekey bundle; a one-time one is never handed out again."""

    rid: int
    bundle: bytes


@dataclass(frozen=True, slots=True)
class RelayTokenSet:
    """Replace the put-token hashes registered for ``mailbox`` (the caller's own)."""

    rid: int
    mailbox: bytes
    hashes: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RelayTokensHeld:
    """The relay now holds ``count`` token hashes for the mailbox."""

    rid: int
    count: int


@dataclass(frozen=True, slots=True)
class RelayProbe:
    """Sign this validator's challenge with the relay's node key (see :mod:`._probe`)."""

    rid: int
    challenge: bytes


@dataclass(frozen=True, slots=True)
class RelayProbeAnswer:
    """The relay node key's signature over the challenge (with its domain)."""

    rid: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class RelayReceipt:
    """A delivery receipt signed by the owner of the link's mailbox (see :mod:`._receipts`)."""

    rid: int
    receipt: bytes


@dataclass(frozen=True, slots=True)
class RelayReceiptTaken:
    """The relay keeps the receipt; it covers ``count`` envelopes."""

    rid: int
    count: int


@dataclass(frozen=True, slots=True)
class RelayAudit:
    """Show leaf ``index`` of the receipt batch with Merkle root ``root``."""

    rid: int
    root: bytes
    index: int


@dataclass(frozen=True, slots=True)
class RelayAuditAnswer:
    """The leaf's entry id, the receipt it names and its Merkle path (leaf upwards)."""

    rid: int
    entry_id: bytes
    receipt: bytes
    path: tuple[bytes, ...]


RelayMessage = (
    RelayPut
    | RelayStored
    | RelayFetch
    | RelayBatch
    | RelayAck
    | RelayAcked
    | RelayError
    | RelayPrekeyPut
    | RelayPrekeyCount
    | RelayPrekeyGet
    | RelayPrekeysHeld
    | RelayPrekeyBundle
    | RelayPutMany
    | RelayStoredMany
    | RelayPull
    | RelayBusy
    | RelayTokenSet
    | RelayTokensHeld
    | RelayProbe
    | RelayProbeAnswer
    | RelayReceipt
    | RelayReceiptTaken
    | RelayAudit
    | RelayAuditAnswer
    | BlobOpen
    | BlobPut
    | BlobAt
    | BlobGet
    | BlobData
    | BlobDelete
    | BlobGone
    | TopicPublish
    | TopicPublished
    | TopicRead
    | TopicPosts
    | OnionKeyQuery
    | OnionKeyIs
    | OnionPut
    | OnionDone
    | OnionFetchPut
    | OnionFetched
    | TokenOfferAsk
    | TokenOffered
    | TokenBuy
    | TokenIssued
    | RingSet
    | RingHeld
    | ZkGet
    | ZkContexts
)


def encode_relay_message(message: RelayMessage) -> bytes:
    """Canonical encoding of one relay message."""
    match message:
        case RelayPut(rid, mailbox, envelope, auth):
            body: dict[str, object] = {"t": "put", "mb": mailbox, "env": envelope}
            if auth is not None:
                body["auth"] = auth
        case RelayStored(rid, entry_id):
            body = {"t": "stored", "id": entry_id}
        case RelayFetch(rid, mailbox, limit):
            body = {"t": "fetch", "mb": mailbox, "max": limit}
        case RelayBatch(rid, items):
            body = {"t": "batch", "items": [list(item) for item in items]}
        case RelayAck(rid, mailbox, entry_ids):
            body = {"t": "ack", "mb": mailbox, "ids": list(entry_ids)}
        case RelayAcked(rid, deleted):
            body = {"t": "acked", "n": deleted}
        case RelayError(rid, code, text):
            body = {"t": "error", "code": code, "msg": text}
        case RelayPrekeyPut(rid, mailbox, last, one_time, replace):
            otks = [[prekey_id, blob] for prekey_id, blob in one_time]
            body = {"t": "pk_put", "mb": mailbox, "last": last, "otks": otks, "replace": replace}
        case RelayPrekeyCount(rid, mailbox):
            body = {"t": "pk_count", "mb": mailbox}
        case RelayPrekeyGet(rid, mailbox):
            body = {"t": "pk_get", "mb": mailbox}
        case RelayPrekeysHeld(rid, count):
            body = {"t": "pk_held", "n": count}
        case RelayPrekeyBundle(rid, bundle):
            body = {"t": "pk_bundle", "bundle": bundle}
        case RelayPutMany(rid, items, auth):
            listed = [list(item) for item in items]
            for item, one in zip(listed, auth, strict=False):
                if one is not None:
                    item.append(one)
            body = {"t": "put_many", "items": listed}
        case RelayStoredMany(rid, results, challenge):
            body = {"t": "stored_many", "res": list(results)}
            if challenge is not None:
                body["pow"] = [challenge.seed, challenge.bits]
        case RelayPull(rid, mailbox, limit, ack, wait_ms):
            body = {"t": "pull", "mb": mailbox, "max": limit, "ack": list(ack), "wait": wait_ms}
        case RelayBusy(rid, reason, retry_ms, challenge):
            body = {"t": "busy", "why": reason, "retry": retry_ms}
            if challenge is not None:
                body["pow"] = [challenge.seed, challenge.bits]
        case RelayTokenSet(rid, mailbox, hashes):
            body = {"t": "tok_set", "mb": mailbox, "hashes": list(hashes)}
        case RelayTokensHeld(rid, count):
            body = {"t": "tok_held", "n": count}
        case RelayProbe(rid, challenge):
            body = {"t": "probe", "ch": challenge}
        case RelayProbeAnswer(rid, signature):
            body = {"t": "probe_ok", "sig": signature}
        case RelayReceipt(rid, receipt):
            body = {"t": "rcpt", "r": receipt}
        case RelayReceiptTaken(rid, count):
            body = {"t": "rcpt_ok", "n": count}
        case RelayAudit(rid, root, index):
            body = {"t": "audit", "root": root, "i": index}
        case RelayAuditAnswer(rid, entry_id, receipt, path):
            body = {"t": "audit_ok", "id": entry_id, "rcpt": receipt, "path": list(path)}
        case BlobOpen() | BlobPut() | BlobAt() | BlobGet() | BlobData() | BlobDelete() | BlobGone():
            rid, body = message.rid, message.fields()
        case TopicPublish() | TopicPublished() | TopicRead() | TopicPosts():
            rid, body = message.rid, message.fields()
        case OnionKeyQuery() | OnionKeyIs() | OnionPut() | OnionDone():
            rid, body = message.rid, message.fields()
        case OnionFetchPut() | OnionFetched():
            rid, body = message.rid, message.fields()
        case RingSet() | RingHeld() | ZkGet() | ZkContexts():
            rid, body = message.rid, message.fields()
        case TokenOfferAsk() | TokenOffered() | TokenBuy() | TokenIssued():
            rid, body = message.rid, message.fields()
    return canonical_encode({**body, "rid": rid})


def decode_relay_message(data: bytes) -> RelayMessage:
    """Parse one relay message from untrusted bytes.

    Raises:
        RelayProtocolError: malformed, unknown type or out-of-range field.
    """
    try:
        value = canonical_decode(data, _LIMITS)
        kind = value.get("t") if isinstance(value, dict) else None
        decoder = _DECODERS.get(kind) if isinstance(kind, str) else None
        if decoder is not None:
            return decoder(value)
        blob = _OTHER_DECODERS.get(kind) if isinstance(kind, str) else None
        if blob is None:
            raise RelayProtocolError("unknown relay message type")
        return blob(value)  # type: ignore[return-value]
    except DecodeError as exc:
        raise RelayProtocolError(f"malformed relay message: {exc}") from None


def _fields(value: object, *names: str) -> tuple[Fields, int]:
    fields = Fields(value, "relay message", frozenset({"t", "rid", *names}))
    return fields, fields.get_int("rid", hi=_MAX_RID)


def _auth(value: object) -> bytes:
    if not (isinstance(value, bytes) and check_auth(value)):
        raise RelayProtocolError("malformed put authorization")
    return value


def _challenge(f: Fields) -> PowChallenge | None:
    if not f.has("pow"):
        return None
    value = f.raw("pow")
    if not (isinstance(value, list) and len(value) == 2):
        raise RelayProtocolError("pow must be [seed, bits]")
    seed, bits = value
    if not (isinstance(seed, bytes) and len(seed) == SEED_SIZE):
        raise RelayProtocolError("pow seed must be 16 bytes")
    if isinstance(bits, bool) or not isinstance(bits, int) or not 0 < bits <= MAX_POW_BITS:
        raise RelayProtocolError("pow bits out of range")
    return PowChallenge(seed, bits)


def _put(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb", "env", "auth")
    auth = _auth(f.raw("auth")) if f.has("auth") else None
    mailbox, envelope = f.get_bytes("mb", size=32), f.get_bytes("env", max_size=MAX_ENVELOPE)
    return RelayPut(rid, mailbox, envelope, auth)


def _stored(value: object) -> RelayMessage:
    f, rid = _fields(value, "id")
    return RelayStored(rid, f.get_bytes("id", size=32))


def _fetch(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb", "max")
    return RelayFetch(rid, f.get_bytes("mb", size=32), f.get_int("max", lo=1, hi=MAX_BATCH))


def _batch(value: object) -> RelayMessage:
    f, rid = _fields(value, "items")
    items = []
    for item in f.get_list("items", max_len=MAX_BATCH):
        if not (isinstance(item, list) and len(item) == 2):
            raise RelayProtocolError("batch item must be [id, envelope]")
        entry, envelope = item
        if not (isinstance(entry, bytes) and len(entry) == 32 and isinstance(envelope, bytes)):
            raise RelayProtocolError("batch item has bad field types")
        if len(envelope) > MAX_ENVELOPE:
            raise RelayProtocolError("batch envelope too large")
        items.append((entry, envelope))
    return RelayBatch(rid, tuple(items))


def _entry_ids(f: Fields, name: str) -> tuple[bytes, ...]:
    ids = f.get_list(name, max_len=MAX_BATCH)
    if not all(isinstance(i, bytes) and len(i) == 32 for i in ids):
        raise RelayProtocolError("ack ids must be 32-byte entry ids")
    return tuple(ids)


def _ack(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb", "ids")
    return RelayAck(rid, f.get_bytes("mb", size=32), _entry_ids(f, "ids"))


def _put_many(value: object) -> RelayMessage:
    f, rid = _fields(value, "items")
    items, total, auth = [], 0, []
    for item in f.get_list("items", max_len=MAX_BATCH):
        if not (isinstance(item, list) and len(item) in (2, 3)):
            raise RelayProtocolError("put_many item must be [mailbox, envelope, ?auth]")
        mailbox, envelope = item[:2]
        auth.append(_auth(item[2]) if len(item) == 3 else None)
        if not (isinstance(mailbox, bytes) and len(mailbox) == 32 and isinstance(envelope, bytes)):
            raise RelayProtocolError("put_many item has bad field types")
        if len(envelope) > MAX_ENVELOPE:
            raise RelayProtocolError("put_many envelope too large")
        total += len(envelope)
        items.append((mailbox, envelope))
    if not items or total > MAX_BATCH_BYTES:
        raise RelayProtocolError("put_many must hold 1 to 64 envelopes of at most 768 KiB")
    return RelayPutMany(rid, tuple(items), tuple(auth) if any(auth) else ())


def _stored_many(value: object) -> RelayMessage:
    f, rid = _fields(value, "res", "pow")
    results: list[bytes | str] = []
    for result in f.get_list("res", max_len=MAX_BATCH):
        entry_id = isinstance(result, bytes) and len(result) == 32
        if not (entry_id or (isinstance(result, str) and 0 < len(result) <= 64)):
            raise RelayProtocolError("stored_many result must be an entry id or a code")
        results.append(result)
    return RelayStoredMany(rid, tuple(results), _challenge(f))


def _pull(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb", "max", "ack", "wait")
    mailbox = f.get_bytes("mb", size=32)
    limit = f.get_int("max", lo=1, hi=MAX_BATCH)
    return RelayPull(rid, mailbox, limit, _entry_ids(f, "ack"), f.get_int("wait", hi=MAX_WAIT_MS))


def _acked(value: object) -> RelayMessage:
    f, rid = _fields(value, "n")
    return RelayAcked(rid, f.get_int("n", hi=MAX_BATCH))


def _error(value: object) -> RelayMessage:
    f, rid = _fields(value, "code", "msg")
    return RelayError(rid, f.get_str("code", max_len=64), f.get_str("msg", max_len=512))


def _busy(value: object) -> RelayMessage:
    f, rid = _fields(value, "why", "retry", "pow")
    reason, retry = f.get_str("why", max_len=64), f.get_int("retry", hi=MAX_RETRY_MS)
    return RelayBusy(rid, reason, retry, _challenge(f))


def _tok_set(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb", "hashes")
    hashes = f.get_list("hashes", max_len=MAX_TOKENS_HELD)
    if not all(isinstance(h, bytes) and len(h) == 16 for h in hashes):
        raise RelayProtocolError("token hashes must be 16 bytes each")
    if len(set(hashes)) != len(hashes):
        raise RelayProtocolError("token hashes repeat")
    return RelayTokenSet(rid, f.get_bytes("mb", size=32), tuple(hashes))


def _tok_held(value: object) -> RelayMessage:
    f, rid = _fields(value, "n")
    return RelayTokensHeld(rid, f.get_int("n", hi=MAX_TOKENS_HELD))


def _pk_put(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb", "last", "otks", "replace")
    mailbox = f.get_bytes("mb", size=32)
    last = f.get_bytes("last")
    one_time = []
    for item in f.get_list("otks", max_len=MAX_PREKEY_PUT):
        if not (isinstance(item, list) and len(item) == 2):
            raise RelayProtocolError("otks item must be [prekey id, bundle]")
        prekey_id, blob = item
        if isinstance(prekey_id, bool) or not isinstance(prekey_id, int):
            raise RelayProtocolError("otks prekey id must be an integer")
        if not isinstance(blob, bytes):
            raise RelayProtocolError("otks bundle must be bytes")
        one_time.append((prekey_id, blob))
    replace = f.raw("replace")
    if not isinstance(replace, bool):
        raise RelayProtocolError("replace must be a boolean")
    return RelayPrekeyPut(rid, mailbox, last, tuple(one_time), replace)


def _pk_count(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb")
    return RelayPrekeyCount(rid, f.get_bytes("mb", size=32))


def _pk_get(value: object) -> RelayMessage:
    f, rid = _fields(value, "mb")
    return RelayPrekeyGet(rid, f.get_bytes("mb", size=32))


def _pk_held(value: object) -> RelayMessage:
    f, rid = _fields(value, "n")
    return RelayPrekeysHeld(rid, f.get_int("n", hi=MAX_PREKEYS_HELD))


def _pk_bundle(value: object) -> RelayMessage:
    f, rid = _fields(value, "bundle")
    return RelayPrekeyBundle(rid, f.get_bytes("bundle", max_size=MAX_PREKEY_BUNDLE))


def _probe(value: object) -> RelayMessage:
    f, rid = _fields(value, "ch")
    return RelayProbe(rid, f.get_bytes("ch", max_size=MAX_PROBE_CHALLENGE))


def _probe_ok(value: object) -> RelayMessage:
    f, rid = _fields(value, "sig")
    return RelayProbeAnswer(rid, f.get_bytes("sig", size=64))


def _rcpt(value: object) -> RelayMessage:
    f, rid = _fields(value, "r")
    return RelayReceipt(rid, f.get_bytes("r", max_size=MAX_RECEIPT))


def _rcpt_ok(value: object) -> RelayMessage:
    f, rid = _fields(value, "n")
    return RelayReceiptTaken(rid, f.get_int("n", hi=MAX_BATCH))


def _audit(value: object) -> RelayMessage:
    f, rid = _fields(value, "root", "i")
    return RelayAudit(rid, f.get_bytes("root", size=32), f.get_int("i", hi=1 << 32))


def _audit_ok(value: object) -> RelayMessage:
    f, rid = _fields(value, "id", "rcpt", "path")
    path = f.get_list("path", max_len=MAX_AUDIT_PATH)
    if not all(isinstance(p, bytes) and len(p) == 32 for p in path):
        raise RelayProtocolError("an audit path holds 32-byte hashes")
    receipt = f.get_bytes("rcpt", max_size=MAX_RECEIPT)
    return RelayAuditAnswer(rid, f.get_bytes("id", size=32), receipt, tuple(path))


_DECODERS = {
    "put": _put,
    "stored": _stored,
    "fetch": _fetch,
    "batch": _batch,
    "ack": _ack,
    "acked": _acked,
    "error": _error,
    "pk_put": _pk_put,
    "pk_count": _pk_count,
    "pk_get": _pk_get,
    "pk_held": _pk_held,
    "pk_bundle": _pk_bundle,
    "put_many": _put_many,
    "stored_many": _stored_many,
    "pull": _pull,
    "busy": _busy,
    "tok_set": _tok_set,
    "tok_held": _tok_held,
    "probe": _probe,
    "probe_ok": _probe_ok,
    "rcpt": _rcpt,
    "rcpt_ok": _rcpt_ok,
    "audit": _audit,
    "audit_ok": _audit_ok,
}
