"""Prekey-bundle fetches through onions, answered through a reply block (protocol §46), sans-IO.

Theory of operation. A sender in onion mode must not ask the recipient's
relay for the recipient's prekey bundle itself: the relay would see the
sender's address next to the recipient's mailbox (a contact link by IP). So
the fetch travels as an onion over the same kind of route as a deposit (two
relays, then the mailbox relay M) and its answer comes back through a
single-use reply block (:func:`dchat_privacy.build_reply_block`) built for
the route's first relays in reverse order, each of them re-layering it:

* :func:`build_onion_fetch`: the last hop's payload is
  ``{"fetch": mailbox(32), "what": "prekeys"}``; the body carries the reply
  block (1432 bytes) for the route ``R(n-1) .. R1`` whose hop payloads are
  ``{"back": 1}``. The sender keeps the block's keys in a :class:`ReplyBook`.
* M (:meth:`OnionKeys.peel` gives an :class:`OnionFetch`) takes one bundle as
  a direct fetch would and answers :func:`answer_fetch`: the reply message
  (:func:`dchat_privacy.write_reply`, always 5462 bytes).
* Each relay that forwarded the fetch peels the answer it got back with its
  onion key (:meth:`OnionKeys.peel_reply`: replay cache, epoch keys as for any
  onion) and hands it back; the first relay's layer ends the block, it answers
  ``reply id (16) || body (4096)``.
* The sender opens it (:func:`open_fetch_reply`): the book strips every layer,
  checks the seal and forgets the block (a second answer is refused as a replay).

So M learns a mailbox and a reply block, never the sender's address; the
first relay learns the sender's address, never the mailbox; the sizes are the
same for every fetch. Reply data is a canonical map: ``{"ok": bundle}`` or
``{"err": code}`` (``none``: the mailbox holds no bundle).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Final

from dchat_core import DecodeError, DecodeLimits, Fields, RelayAddress, canonical_decode
from dchat_core import canonical_encode as _encode
from dchat_privacy import (
    OnionPrivateKey,
    ReplyBook,
    SphinxError,
    build_message,
    build_reply_block,
    write_reply,
)
from dchat_privacy.lowlevel import BODY_SIZE, MESSAGE_SIZE, ReplayedPacketError

from ._errors import OnionFetchError, OnionRouteError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_privacy.lowlevel import ReplyBlock

    from ._relay_onion import OnionKeyRecord

__all__ = (
    "FETCH_ANSWER_SIZE",
    "MAX_FETCHED",
    "answer_fetch",
    "build_onion_fetch",
    "open_fetch_reply",
)

REPLY_ID_SIZE: Final = 16
FETCH_ANSWER_SIZE: Final = REPLY_ID_SIZE + BODY_SIZE
"""What the first relay answers a fetch with: the reply id and the reply's body."""
MAX_FETCHED: Final = 4000
"""The longest bundle a fetch's reply carries (the reply data holds 4064 bytes)."""
_REPLY_LIMITS: Final = DecodeLimits(max_size=4096, max_depth=2, max_items=4)
_BACK: Final = _encode({"back": 1})


def build_onion_fetch(
    route: Sequence[tuple[RelayAddress, OnionKeyRecord]],
    mailbox: bytes,
    book: ReplyBook,
) -> bytes:
    """The onion asking the last relay of ``route`` for ``mailbox``'s prekey bundle.

    ``route``: each hop's address and verified key record, the mailbox relay
    last (at least 2 hops). The reply block's keys go into ``book``.

    Raises:
        OnionRouteError: a route of fewer than 2 hops, or a mailbox not 32 bytes.
    """
    if len(route) < 2 or len(mailbox) != 32:
        raise OnionRouteError("a fetch onion has 2+ hops and a 32-byte mailbox")
    back = [(record.onion_key, _BACK) for _, record in reversed(route[:-1])]
    block, keys = build_reply_block(back, session_key=OnionPrivateKey.generate())
    book.add(keys)
    hops = []
    for (_, record), (nxt, nxt_record) in itertools.pairwise(route):
        to = RelayAddress(nxt.host, nxt.port, nxt_record.node)
        hops.append((record.onion_key, _encode({"to": str(to)})))
    hops.append((route[-1][1].onion_key, _encode({"fetch": mailbox, "what": "prekeys"})))
    packet, _circuit = build_message(hops, block.to_bytes(), session_key=OnionPrivateKey.generate())
    return packet


def answer_fetch(block: ReplyBlock, bundle: bytes | None) -> bytes:
    """The mailbox relay's answer (:data:`~dchat_privacy.lowlevel.MESSAGE_SIZE` bytes).

    ``bundle``: the prekey bundle taken for the fetch, or None (none held).
    A bundle over :data:`MAX_FETCHED` is answered as ``too_big``.
    """
    if bundle is None:
        data = _encode({"err": "none"})
    elif len(bundle) > MAX_FETCHED:
        data = _encode({"err": "too_big"})
    else:
        data = _encode({"ok": bundle})
    message = write_reply(block, data)
    assert len(message) == MESSAGE_SIZE
    return message


def open_fetch_reply(book: ReplyBook, answer: bytes) -> bytes:
    """The bundle in the first relay's ``answer`` to a fetch.

    Raises:
        OnionFetchError: the answer is malformed, forged, replayed (``code``
            ``bad_reply``, ``replayed``), or the relay holds no bundle
            (``none``, ``too_big``).
    """
    if len(answer) != FETCH_ANSWER_SIZE:
        raise OnionFetchError("bad_reply", f"a fetch answer is {FETCH_ANSWER_SIZE} bytes")
    try:
        data = book.open(answer[:REPLY_ID_SIZE], answer[REPLY_ID_SIZE:])
    except SphinxError as exc:
        code = "replayed" if isinstance(exc, ReplayedPacketError) else "bad_reply"
        raise OnionFetchError(code, f"the fetch reply does not open: {exc}") from None
    try:
        value = canonical_decode(data, _REPLY_LIMITS)
        key = "ok" if isinstance(value, dict) and "ok" in value else "err"
        f = Fields(value, "fetch reply", frozenset({key}))
        if key == "ok":
            return f.get_bytes("ok", max_size=MAX_FETCHED)
        code = f.get_str("err", max_len=16)
    except DecodeError as exc:
        raise OnionFetchError("bad_reply", f"malformed fetch reply: {exc}") from None
    raise OnionFetchError(code if code in {"none", "too_big"} else "bad_reply", code)
