"""The properties every messaging run must keep.

* :class:`ExactlyOnceDelivery` (safety, checked at every delivery): the app of
  the intended recipient sees each submitted message once, with the text and
  sender that were sent, and never a message nobody sent; at the end, no
  conversation listing shows a message twice.
* :class:`NoAcknowledgedLoss` (at the end, after healing): every message whose
  ``stored`` reached its sender was delivered; and, since senders retry until
  ``stored``, every submitted message was delivered. (No recipient ever goes
  away in these worlds, so there is no exception for one.)
* :class:`ConversationOrder` (at the end, after healing): each recipient's
  listing of each conversation (what the app shows, by each message's place,
  not by arrival) has every sender's texts in the order they were sent, and
  the engine reports no text of it missing. A conversation with a message
  still undelivered is left to :class:`NoAcknowledgedLoss`.
* :class:`RelaysHoldNoPlaintext`: no request a relay receives (after the link's
  decryption) and nothing a relay stores contains the text of any message.

Later invariants (the chain's "one block per height", "progress after healing")
implement the same :class:`~dchat_testing.sim.Invariant` protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from ._simulation import Observation, Violation
from ._user import text_digest

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from ._relay import RelayNode
    from ._simulation import Simulation

__all__ = (
    "ConversationOrder",
    "ExactlyOnceDelivery",
    "Inbox",
    "Ledger",
    "NoAcknowledgedLoss",
    "RelaysHoldNoPlaintext",
    "SentMessage",
)

#: Every simulated message text starts with this, so relays' inputs can be
#: scanned with one search each.
PLAINTEXT_MARKER: Final = "dchat-sim-plaintext "


@dataclass(frozen=True, slots=True)
class SentMessage:
    """What the workload submitted."""

    sender: str
    sender_id: str
    recipient: str
    text: str


class Inbox(Protocol):
    """What a user's app shows: the checkers read it at the end of a run."""

    @property
    def name(self) -> str:
        """The node's name (a :class:`SentMessage`'s ``recipient``)."""
        ...

    def shown(self, peer: str) -> list[str]:
        """Ids (hex) of the messages of the conversation with ``peer``, in the order shown."""
        ...

    def missing(self, peer: str) -> int:
        """Texts of the conversation with ``peer`` known to be missing (gaps)."""
        ...


class Ledger:
    """The ground truth the checkers compare against, filled by the workload."""

    def __init__(self) -> None:
        self.sent: dict[str, SentMessage] = {}
        self.stored_seen: dict[str, float] = {}
        self.delivered: dict[str, int] = {}
        self._undelivered: set[str] = set()

    def record_sent(self, mid: str, message: SentMessage) -> None:
        """The app handed ``message`` to its node under id ``mid`` (hex)."""
        self.sent[mid] = message
        self._undelivered.add(mid)

    def record_delivered(self, mid: str) -> int:
        """A delivery of ``mid``; returns how many there have been."""
        self._undelivered.discard(mid)
        self.delivered[mid] = self.delivered.get(mid, 0) + 1
        return self.delivered[mid]

    def settled(self) -> bool:
        """Every sent message delivered."""
        return not self._undelivered

    def conversations(self, recipient: str) -> dict[str, list[str]]:
        """The messages sent to ``recipient``, by sender id, each list in the order sent."""
        found: dict[str, list[str]] = {}
        for mid, message in self.sent.items():
            if message.recipient == recipient:
                found.setdefault(message.sender_id, []).append(mid)
        return found


class ExactlyOnceDelivery:
    """Each message reaches its recipient's app once, unaltered, and is shown once."""

    name = "exactly-once delivery"

    def __init__(self, ledger: Ledger, inboxes: Sequence[Inbox] = ()) -> None:
        self._ledger = ledger
        self._inboxes = inboxes

    def observe(self, obs: Observation) -> Iterable[Violation]:
        if obs.kind == "stored_seen":
            self._ledger.stored_seen.setdefault(str(obs.data["mid"]), obs.time)
        if obs.kind != "deliver":
            return ()
        mid = str(obs.data["mid"])
        count = self._ledger.record_delivered(mid)
        sent = self._ledger.sent.get(mid)
        if sent is None:
            return (Violation(self.name, obs.time, f"{obs.node} got message {mid} nobody sent"),)
        if count > 1:
            return (Violation(self.name, obs.time, f"{obs.node} got message {mid} {count} times"),)
        wrong = (
            obs.node != sent.recipient
            or obs.data["sender"] != sent.sender_id
            or obs.data["text"] != text_digest(sent.text)
        )
        if wrong:
            detail = f"message {mid} from {sent.sender} arrived altered or at {obs.node}"
            return (Violation(self.name, obs.time, detail),)
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        found = []
        for inbox in self._inboxes:
            for peer in self._ledger.conversations(inbox.name):
                shown = inbox.shown(peer)
                twice = sorted({mid for mid in shown if shown.count(mid) > 1})
                if twice:
                    detail = f"{inbox.name} shows message {twice[0]} from {peer} more than once"
                    found.append(Violation(self.name, sim.now, detail))
        return found


class NoAcknowledgedLoss:
    """After healing, everything acknowledged (indeed everything sent) is delivered."""

    name = "no acknowledged message lost"

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def observe(self, obs: Observation) -> Iterable[Violation]:
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        found = []
        for mid, message in self._ledger.sent.items():
            if mid in self._ledger.delivered:
                continue
            if mid in self._ledger.stored_seen:
                detail = (
                    f"message {mid} ({message.sender} -> {message.recipient}) was acknowledged "
                    f"at t={self._ledger.stored_seen[mid]:.3f}s and never delivered"
                )
                found.append(Violation(self.name, sim.now, detail))
            else:
                detail = f"message {mid} ({message.sender} -> {message.recipient}) never stored"
                found.append(Violation("every message delivered after healing", sim.now, detail))
        return found


class RelaysHoldNoPlaintext:
    """No relay ever receives or stores a message text."""

    name = "relays hold no plaintext"

    def __init__(self, ledger: Ledger, relays: list[RelayNode]) -> None:
        self._ledger = ledger
        self._relays = relays
        self._marker = PLAINTEXT_MARKER.encode()

    def observe(self, obs: Observation) -> Iterable[Violation]:
        if obs.kind != "relay_input":
            return ()
        payload = obs.data["payload"]
        if isinstance(payload, bytes) and self._marker in payload:
            return (Violation(self.name, obs.time, f"{obs.node} received a plaintext"),)
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        texts = [message.text.encode() for message in self._ledger.sent.values()]
        for relay in self._relays:
            for envelope in relay.store.envelopes():
                if self._marker in envelope or any(text in envelope for text in texts):
                    return (Violation(self.name, sim.now, f"{relay.name} stores a plaintext"),)
        return ()


class ConversationOrder:
    """Each conversation shows each sender's texts in the order sent, with no gap left."""

    name = "per-conversation order"

    def __init__(self, ledger: Ledger, inboxes: Sequence[Inbox]) -> None:
        self._ledger = ledger
        self._inboxes = inboxes

    def observe(self, obs: Observation) -> Iterable[Violation]:
        return ()

    def finish(self, sim: Simulation) -> Iterable[Violation]:
        found = []
        for inbox in self._inboxes:
            for peer, sent in self._ledger.conversations(inbox.name).items():
                if any(mid not in self._ledger.delivered for mid in sent):
                    continue  # a loss: NoAcknowledgedLoss names it
                ours = set(sent)
                shown = [mid for mid in inbox.shown(peer) if mid in ours]
                if shown != sent:
                    place = next(
                        i for i in range(len(shown) + 1) if shown[i : i + 1] != sent[i : i + 1]
                    )
                    what = shown[place] if place < len(shown) else "nothing"
                    expected = sent[place] if place < len(sent) else "nothing"
                    detail = (
                        f"{inbox.name} shows the texts from {peer} out of order: "
                        f"{what} in the place of {expected}"
                    )
                    found.append(Violation(self.name, sim.now, detail))
                elif missing := inbox.missing(peer):
                    detail = f"{inbox.name} reports {missing} texts from {peer} missing at the end"
                    found.append(Violation(self.name, sim.now, detail))
        return found
