"""Looking a handle up through an untrusted node: two verified reads, sans-IO.

Theory of operation. :class:`HandleLookup` runs two :class:`LightRead` s of the
chat chain one after the other, each checked by commit certificates and a
Merkle proof (:mod:`._light_reader`):

1. ``handle/<skeleton>`` from ``GET /v1/chain/handles/<name>``. Absent, expired
   at the height of the proven state, or holding another (look-alike) name:
   the handle is not registered, and :meth:`HandleLookup.result` is None.
2. ``id/<identity>`` from ``GET /v1/chain/identities/<id hex>``: the
   identity's *current* key. The handle's card must be signed by that key; a
   card from before a key rotation is reported (``card_current`` false) so the
   caller refuses it instead of trusting a retired key.

A node that lies in either answer (a forged value, a proof for another key, a
header its validators did not sign) makes a read raise the light client's
typed error; a node that withholds can only make the lookup fail, never
succeed with something else. The shell drives it like a read::

    lookup = HandleLookup(reader, "@alice")
    while (path := lookup.next_request()) is not None:
        lookup.receive(get_json(path))
    found = lookup.result()
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final

from dchat_core import DchatError, DecodeError, DecodeLimits, Fields, canonical_decode
from dchat_identity import ContactCard

from ._chat_handles import MAX_HANDLE_RELAYS, handle_key
from ._errors import ChainAnswerError, ChainStateError
from ._handle_names import normalize_handle

if TYPE_CHECKING:
    from ._light_reader import LightRead, LightReader

__all__ = ("HandleLookup", "HandleRecord", "decode_handle_record")

_LIMITS: Final = DecodeLimits(max_size=8192, max_depth=3, max_items=64)
_RECORD: Final = frozenset({"name", "id", "exp", "relays", "mb", "card"})
_IDENTITY: Final = frozenset({"key", "doc", "ver", "g", "th"})


@dataclass(frozen=True, slots=True)
class HandleRecord:
    """A handle as the chain certified it.

    Attributes:
        name: The normalised handle.
        identity: The owner's 32-byte identity id.
        expires: The first height at which the handle is no longer live.
        relays: The owner's relays (``HOST:PORT`` or ``NODEID@HOST:PORT``).
        mailbox: The mailbox whose prekey bundles those relays host.
        card: The owner's signed contact card (canonical bytes).
        height: The height of the state the record was proven in.
        key: The identity's current key (proven too; 32 bytes, empty before
            the second read).
    """

    name: str
    identity: bytes
    expires: int
    relays: tuple[str, ...]
    mailbox: bytes
    card: bytes
    height: int
    key: bytes = b""

    @property
    def card_current(self) -> bool:
        """Whether the card is signed by the identity's current key."""
        try:
            return ContactCard.from_bytes(self.card).identity_key.to_bytes() == self.key
        except DchatError:
            return False


def decode_handle_record(value: bytes, height: int) -> HandleRecord:
    """A certified ``handle/`` value.

    Raises:
        ChainAnswerError: The value is not a handle record.
    """
    try:
        f = Fields(canonical_decode(value, _LIMITS), "handle", _RECORD)
        relays = f.get_list("relays", max_len=MAX_HANDLE_RELAYS)
        if not all(isinstance(r, str) and len(r) <= 320 for r in relays):
            raise DecodeError("handle: relays must be text")
        return HandleRecord(
            name=f.get_str("name", max_len=64),
            identity=f.get_bytes("id", size=32),
            expires=f.get_int("exp"),
            relays=tuple(relays),
            mailbox=f.get_bytes("mb", size=32),
            card=f.get_bytes("card", max_size=4096),
            height=height,
        )
    except DecodeError as exc:
        raise ChainAnswerError(f"malformed handle record: {exc}") from None


def _current_key(value: bytes | None) -> bytes:
    if value is None:
        raise ChainAnswerError("the handle names an identity the chain does not hold")
    try:
        return Fields(canonical_decode(value, _LIMITS), "identity", _IDENTITY).get_bytes(
            "key", size=32
        )
    except DecodeError as exc:
        raise ChainAnswerError(f"malformed identity record: {exc}") from None


class HandleLookup:
    """One verified lookup of a handle (see the module docstring).

    Args:
        reader: The chat chain's light reader (verified headers stay verified).
        text: The handle as typed (``@alice`` or ``alice``).

    Raises:
        InvalidHandleError: ``text`` cannot be a handle.
    """

    def __init__(self, reader: LightReader, text: str) -> None:
        self.name = normalize_handle(text)
        self._reader = reader
        self._read: LightRead = reader.read(f"/v1/chain/handles/{self.name}", handle_key(self.name))
        self._record: HandleRecord | None = None
        self._done = False

    def next_request(self) -> str | None:
        """The API path to GET next, or None when the lookup is complete."""
        return None if self._done else self._read.next_request()

    def receive(self, doc: Any) -> None:
        """Take the decoded JSON answer to :meth:`next_request`.

        Raises:
            ChainAnswerError, LightClientError, InvalidCertificateError: The
                answer does not verify (see :class:`LightRead`).
            ChainStateError: The lookup is complete already.
        """
        if self._done:
            raise ChainStateError("the lookup is complete")
        self._read.receive(doc)
        if self._read.next_request() is not None:
            return
        _, value, height = self._read.result()
        if self._record is None:
            self._first(value, height)
        else:
            self._record = replace(self._record, key=_current_key(value))
            self._done = True

    def _first(self, value: bytes | None, height: int) -> None:
        record = None if value is None else decode_handle_record(value, height)
        if record is None or record.name != self.name or record.expires <= height:
            self._done = True  # not registered (absent, a look-alike's, or expired)
            return
        self._record = record
        path = f"/v1/chain/identities/{record.identity.hex()}"
        self._read = self._reader.read(path, b"id/" + record.identity)

    def result(self) -> HandleRecord | None:
        """The live handle with its owner's current key, or None if not registered.

        Raises:
            ChainStateError: The lookup is not complete.
        """
        if not self._done:
            raise ChainStateError("the lookup is not complete")
        return self._record
