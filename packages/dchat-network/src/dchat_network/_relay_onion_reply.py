"""Reply blocks over the relay network (issue 18, item 2; protocol §45), sans-IO.

A user in onion mode gives a contact single-use reply blocks
(:func:`dchat_privacy.build_reply_block`) routed over three relays it picks:
two drawn from its onion relays, then its own mailbox relay, whose hop
payload is a deposit marked ``"rp": true`` into the user's mailbox. The
contact learns only the first relay's pinned address (where to send) and
nothing of the rest. It seals its answer with :func:`dchat_privacy.write_reply`
and hands the message to that first relay in an ordinary ``onion`` request;
the relays peel it as any onion, and the mailbox relay, seeing ``rp``, files
the body whole (it is sealed for the block's owner) as a *reply envelope*
made by the host's ``wrap_reply`` (for dchat's messaging: an envelope whose
``rp`` field carries the 16-byte reply id, see :mod:`dchat_messaging`). The
owner opens it with its :class:`~dchat_privacy.ReplyBook`.

A block is usable while every relay of its route still peels it: until the
earliest end of its hops' key epochs (:attr:`ReplyGift.until`). The relays'
replay caches refuse a second use within the epoch; the owner's book
refuses it after that (and across restarts, when persisted).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_privacy import OnionPrivateKey, build_reply_block
from dchat_privacy.lowlevel import ReplyGift, ReplyKeys

from ._errors import OnionRouteError
from ._relay_onion import deposit_hops

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_core import RelayAddress

    from ._relay_onion import OnionKeyRecord

__all__ = ("REPLY_PREFIX", "build_reply_gift", "reply_route", "split_reply_route")

REPLY_PREFIX: Final = "reply:"
"""An outbox relay text ``reply:<peer identity hex>``: deposit under one of the
reply blocks held for that peer (never at a relay of the peer's card)."""


def reply_route(peer: bytes) -> str:
    """The outbox relay text that answers ``peer`` under a reply block it gave."""
    return REPLY_PREFIX + peer.hex()


def split_reply_route(relay: str) -> bytes | None:
    """The peer a ``reply:`` outbox relay text answers; None for any other text."""
    if not relay.startswith(REPLY_PREFIX):
        return None
    try:
        return bytes.fromhex(relay[len(REPLY_PREFIX) :])
    except ValueError:
        return None


def build_reply_gift(
    route: Sequence[tuple[RelayAddress, OnionKeyRecord]],
    mailbox: bytes,
    auth: bytes | None = None,
    *,
    session_key: OnionPrivateKey | None = None,
) -> tuple[ReplyGift, ReplyKeys]:
    """A reply block over ``route`` (the owner's mailbox relay last) into ``mailbox``.

    Returns what the contact gets (the first relay, the block, its expiry)
    and what the owner keeps (its :class:`ReplyBook` entry).

    Raises:
        OnionRouteError: a route of fewer than two relays, or a first relay
            not pinned to its node id.
    """
    if len(route) < 2:
        raise OnionRouteError("a reply block's route has two or more relays")
    deposit: dict[str, object] = {"mb": mailbox, "rp": True}
    if auth is not None:
        deposit["auth"] = auth
    until = int(min(record.usable_until for _, record in route))
    block, keys = build_reply_block(
        deposit_hops(route, deposit),
        session_key=session_key or OnionPrivateKey.generate(),
        until=until,
    )
    first, record = route[0]
    pinned = type(first)(first.host, first.port, record.node)
    return ReplyGift(pinned, block, until), keys
