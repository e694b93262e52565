"""Relay protocol messages for onion deposits (protocol §39, "Onion deposits").

::

    okey   {"t": "okey", "rid": n}
           -> {"t": "okey_is", "rid": n, "rec": signed onion key record}
    onion  {"t": "onion", "rid": n, "pkt": bytes(5462)}
           -> {"t": "onion_done", "rid": n, "res": result code}

    onion_fetch  {"t": "onion_fetch", "rid": n, "pkt": bytes(5462)}
           -> {"t": "onion_fetched", "rid": n, "res": result code, "data": bytes}

``okey`` asks the relay for its current onion key, as a record signed with
its node key (:mod:`._relay_onion`). ``onion`` hands it one Sphinx message of
exactly :data:`ONION_PACKET_SIZE` bytes; the relay peels its layer and either
forwards the rest to the next relay the layer names (and answers what that
relay answered) or, as the last hop, deposits the envelope it carries as a
``put`` would. ``res`` is one of :data:`ONION_RESULTS`; an onion that does
not authenticate or was seen before is answered (``bad_onion``,
``replayed``), not an error: a relay-to-relay link carries many senders'
onions and one bad one must not end it.

``onion_fetch`` (§46) is a fetch onion (:mod:`._onion_fetch`): peeled and
forwarded as ``onion`` is; the last hop answers ``res`` ``ok`` with the
reply-block message in ``data`` (5462 bytes), each relay on the way back
peels its layer of ``data``, the first one answers 4112 bytes; any other
``res`` (an :data:`ONION_RESULTS` code) has an empty ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, Fields
from dchat_privacy.lowlevel import MESSAGE_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "MAX_KEY_RECORD",
    "ONION_DECODERS",
    "ONION_PACKET_SIZE",
    "ONION_RESULTS",
    "OnionDone",
    "OnionFetchPut",
    "OnionFetched",
    "OnionKeyIs",
    "OnionKeyQuery",
    "OnionPut",
)

ONION_PACKET_SIZE: Final = MESSAGE_SIZE
"""Every onion on the wire has this size (a BOLT 4 header and a 4096-byte body)."""
MAX_KEY_RECORD: Final = 512
ONION_RESULTS: Final = frozenset(
    {
        "stored",  # the last hop stored the envelope (or held it already)
        "partial",  # the last hop keeps this piece of an envelope until the rest arrives
        "bad_onion",  # a hop could not authenticate its layer, or its payload was malformed
        "replayed",  # a hop saw this onion before (in this key epoch)
        "unreachable",  # a hop could not reach the next one
        "busy",  # a hop (or the mailbox relay) is over a limit; try later
        "pow",  # the mailbox relay asks for work or a put token for this mailbox
        "quota",  # the mailbox is full
        "delivered",  # its owner already acknowledged this envelope
        "bad_envelope",  # the envelope is malformed or for another mailbox
    }
)
_MAX_RID: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class OnionKeyQuery:
    """Ask for the relay's signed onion key record."""

    rid: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "okey"}


@dataclass(frozen=True, slots=True)
class OnionKeyIs:
    """The relay's onion key ``record`` (signed with its node key)."""

    rid: int
    record: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "okey_is", "rec": self.record}


@dataclass(frozen=True, slots=True)
class OnionPut:
    """Peel ``packet`` and forward or deposit what it carries."""

    rid: int
    packet: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "onion", "pkt": self.packet}


@dataclass(frozen=True, slots=True)
class OnionDone:
    """What became of an onion (one of :data:`ONION_RESULTS`)."""

    rid: int
    result: str

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "onion_done", "res": self.result}


@dataclass(frozen=True, slots=True)
class OnionFetchPut:
    """Peel ``packet`` (a fetch onion) and forward it, or answer it as its mailbox relay."""

    rid: int
    packet: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "onion_fetch", "pkt": self.packet}


@dataclass(frozen=True, slots=True)
class OnionFetched:
    """A fetch onion's answer: ``ok`` and the reply (peeled so far), or why not."""

    rid: int
    result: str
    data: bytes = b""

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "onion_fetched", "res": self.result, "data": self.data}


def _fields(value: object, *names: str) -> tuple[Fields, int]:
    fields = Fields(value, "relay message", frozenset({"t", "rid", *names}))
    return fields, fields.get_int("rid", hi=_MAX_RID)


def _query(value: object) -> OnionKeyQuery:
    return OnionKeyQuery(_fields(value)[1])


def _key_is(value: object) -> OnionKeyIs:
    f, rid = _fields(value, "rec")
    return OnionKeyIs(rid, f.get_bytes("rec", max_size=MAX_KEY_RECORD))


def _put(value: object) -> OnionPut:
    f, rid = _fields(value, "pkt")
    return OnionPut(rid, f.get_bytes("pkt", size=ONION_PACKET_SIZE))


def _done(value: object) -> OnionDone:
    f, rid = _fields(value, "res")
    result = f.get_str("res", max_len=16)
    if result not in ONION_RESULTS:
        raise DecodeError("unknown onion result")
    return OnionDone(rid, result)


def _fetch(value: object) -> OnionFetchPut:
    f, rid = _fields(value, "pkt")
    return OnionFetchPut(rid, f.get_bytes("pkt", size=ONION_PACKET_SIZE))


def _fetched(value: object) -> OnionFetched:
    f, rid = _fields(value, "res", "data")
    result = f.get_str("res", max_len=16)
    data = f.get_bytes("data", max_size=ONION_PACKET_SIZE)
    if result not in ONION_RESULTS | {"ok"} or (result == "ok") != bool(data):
        raise DecodeError("unknown onion fetch result")
    return OnionFetched(rid, result, data)


ONION_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "okey": _query,
    "okey_is": _key_is,
    "onion": _put,
    "onion_done": _done,
    "onion_fetch": _fetch,
    "onion_fetched": _fetched,
}
