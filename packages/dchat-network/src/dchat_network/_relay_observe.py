"""A relay's debug record of everything it can see, for adversarial privacy tests.

With ``observe_log`` set (:class:`~dchat_network.RelayLimits`), the relay host
appends one JSON line per event it witnesses: a connection (peer address and
the link's proven key, as a short id), each request (its kind, the mailboxes
it names, its size and a digest of its bytes), each onion it forwards (to
which relay, and the forwarded packet's digest) and each onion deposit (the
mailbox, the envelope's size and digest). The record of a forward does not
say which request brought the onion in (that pairing is the peel itself, which
a relay following the protocol keeps no record of; the times still order
them). It is what a curious or subpoenaed relay could keep; a test hands all
relays' logs to an adversary script. Time is the relay's wall clock,
unrounded. Never on in production.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from ._relay import (
    RelayFetch,
    RelayPrekeyCount,
    RelayPrekeyGet,
    RelayPrekeyPut,
    RelayPull,
    RelayPut,
    RelayPutMany,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TextIO

    from ._relay import RelayMessage

__all__ = ("ObserveLog", "digest", "named_mailboxes")


def digest(data: bytes) -> str:
    """A short digest of bytes seen (to match the same bytes seen elsewhere)."""
    return hashlib.sha256(data).hexdigest()[:24]


def named_mailboxes(request: RelayMessage) -> list[str]:
    """The mailboxes (or tags) a request names, in hex."""
    match request:
        case RelayPut() | RelayFetch() | RelayPull():
            return [request.mailbox.hex()]
        case RelayPrekeyGet() | RelayPrekeyPut() | RelayPrekeyCount():  # whose keys
            return [request.mailbox.hex()]
        case RelayPutMany():
            return [mailbox.hex() for mailbox, _ in request.items]
    return []


class ObserveLog:
    """Appends events as JSON lines to ``path`` (opened once, line-buffered)."""

    def __init__(self, path: str, now: Callable[[], float]) -> None:
        self._file: TextIO = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._now = now

    def write(self, event: str, **fields: Any) -> None:
        """Record ``event`` with ``fields`` and the current time."""
        self._file.write(json.dumps({"ev": event, "at": self._now(), **fields}) + "\n")

    def close(self) -> None:
        self._file.close()
