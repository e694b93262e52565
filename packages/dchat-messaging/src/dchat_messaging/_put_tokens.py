"""Put tokens: the ones we hand our contacts, and the ones they handed us.

Theory of operation
-------------------
A relay asks strangers for proof of work when it is loaded, but mail from a
contact should not pay it (see :mod:`dchat_network._put_auth`). So each
contact gets a bearer *put token* for our mailbox: 16 random bytes, sent
inside the end-to-end session as a ``put.token`` control message (never on
a contact card: a card is often public, and a token shared with everyone
who saw the card would authorize anyone). The owner registers only the
tokens' hashes at its relay, over its mailbox link (``tok_set``), and the
relay checks that a deposit's token hashes into the set: it learns "token
*k* of this mailbox", a per-contact pseudonym, never who the contact is.

:class:`PutTokens` keeps both sides, durably under the ``put_tokens`` state
key (canonical CBOR ``{"v": version, "issued": {identity id: token},
"held": {mailbox in hex: token}}``):

* *issued*: the token of each contact we wrote to from our identity, made
  the first time we send them something (:meth:`issue`). Each change bumps
  ``version``; :attr:`registration` is the ``(version, tokens)`` whose hashes
  the mailbox link registers when the version is new to it (on each connection too, as
  the relay keeps them in memory only).
* *held*: per contact's mailbox, the token it gave us (:meth:`learn`),
  accepted only for the sender's own mailbox as its card names it; the
  deposit pool attaches it (:meth:`token_for`) once the relay asks for work.

Only the primary identity's mailbox issues tokens; a burner's or a linked
device's mail is a stranger's to the relay (they pay work when it is loaded).
Reads are from memory (the deposit pool asks from the trio thread); writes
happen in the store's transactions and are undone with them.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._controls import load_state
from ._errors import EngineStateError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_core import IdentityId, MailboxId

    from ._store import StateStore

__all__ = ("PUT_TOKEN_KIND", "PutTokens")

PUT_TOKEN_KIND: Final = "put.token"  # noqa: S105 (a message kind, not a secret)
"""The control message that hands a contact its put token for our mailbox."""
_KEY: Final = "put_tokens"
_TOKEN: Final = 16
_LIMITS: Final = DecodeLimits(max_size=256, max_depth=1, max_items=8)
MAX_ISSUED: Final = 1024
"""The most contacts holding a token of ours (the relay's per-mailbox cap)."""


def encode_put_token(mailbox: bytes, token: bytes) -> bytes:
    """The payload of a ``put.token`` control: ``{"v": 1, "mb": mailbox, "tok": token}``."""
    return canonical_encode({"v": 1, "mb": mailbox, "tok": token})


def decode_put_token(data: bytes) -> tuple[bytes, bytes] | None:
    """``(mailbox, token)`` from a ``put.token`` payload, or None if it is malformed."""
    try:
        fields = Fields(canonical_decode(data, _LIMITS), "put token", frozenset({"v", "mb", "tok"}))
        if fields.get_int("v", lo=1, hi=1) != 1:  # pragma: no cover (get_int bounds it)
            return None
        return fields.get_bytes("mb", size=32), fields.get_bytes("tok", size=_TOKEN)
    except (DecodeError, ValueError):
        return None


class PutTokens:
    """The put tokens we issued and the ones we hold (see the module docstring)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._issued: dict[str, bytes] = {}
        self._held: dict[bytes, bytes] = {}
        self._version = 0
        self.registration: tuple[int, tuple[bytes, ...]] = (0, ())
        """``(version, tokens)`` our mailbox link registers (hashed; replaced, never mutated)."""

    def load(self) -> None:
        """Read the stored tokens.

        Raises:
            EngineStateError: the stored value is damaged.
        """
        raw = load_state(self._store, _KEY)
        if raw is None:
            return
        try:
            fields = Fields(raw, "put tokens", frozenset({"v", "issued", "held"}))
            issued, held = fields.raw("issued"), fields.raw("held")
            version = fields.get_int("v")
        except (DecodeError, ValueError):
            raise EngineStateError("stored put tokens are damaged") from None
        if not (isinstance(issued, dict) and isinstance(held, dict)):
            raise EngineStateError("stored put tokens are damaged")
        try:
            held_map = {bytes.fromhex(mailbox): token for mailbox, token in held.items()}
        except (TypeError, ValueError):
            raise EngineStateError("stored put tokens are damaged") from None
        tokens = [*issued.values(), *held_map.values()]
        if not all(isinstance(t, bytes) and len(t) == _TOKEN for t in tokens):
            raise EngineStateError("stored put tokens are damaged")
        self._issued, self._held, self._version = dict(issued), held_map, version
        self._publish()

    def token_for(self, mailbox: bytes) -> bytes | None:
        """The token a contact gave us for its ``mailbox``, if any."""
        return self._held.get(mailbox)

    def issued_to(self, peer: IdentityId) -> bytes | None:
        """The token we gave ``peer``, if any."""
        return self._issued.get(str(peer))

    def issue(self, peer: IdentityId) -> bytes | None:
        """A new token for ``peer`` (stored), or None if it has one or the cap is reached."""
        if str(peer) in self._issued or len(self._issued) >= MAX_ISSUED:
            return None
        token = os.urandom(_TOKEN)
        self._change(lambda: self._issued.__setitem__(str(peer), token), issued=True)
        return token

    def revoke(self, peer: IdentityId) -> bool:
        """Withdraw ``peer``'s token (the relay refuses it after the next registration)."""
        if str(peer) not in self._issued:
            return False
        self._change(lambda: self._issued.pop(str(peer)), issued=True)
        return True

    def learn(self, data: bytes, sender_mailbox: MailboxId | None) -> bool:
        """Keep the token of a ``put.token`` payload if it is for ``sender_mailbox``."""
        decoded = decode_put_token(data)
        if decoded is None or sender_mailbox is None or decoded[0] != bytes(sender_mailbox):
            return False
        mailbox, token = decoded
        if self._held.get(mailbox) != token:
            self._change(lambda: self._held.__setitem__(mailbox, token), issued=False)
        return True

    def _change(self, apply: Callable[[], object], *, issued: bool) -> None:
        before = (dict(self._issued), dict(self._held), self._version)

        def undo() -> None:
            self._issued, self._held, self._version = before
            self._publish()

        apply()
        self._version += issued
        self._publish()
        self._store.on_rollback(undo)
        held = {mailbox.hex(): token for mailbox, token in self._held.items()}
        value = {"v": self._version, "issued": self._issued, "held": held}
        self._store.put_state(_KEY, canonical_encode(value))

    def _publish(self) -> None:
        self.registration = (self._version, tuple(sorted(self._issued.values())))
