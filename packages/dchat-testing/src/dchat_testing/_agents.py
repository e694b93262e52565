"""Two user agents (:class:`~dchat_messaging.UserMessaging`) that trade mail by hand.

:class:`AgentNode` is one user node's messaging over a memory store (or a
given one), its
prekeys published to a shared dict; :func:`deliver_mail` moves one node's
queued envelopes for another into it as one batch; :func:`agent_pair` makes
two that know each other. Conversation and payment
tests drive two of them without a relay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, UserMessaging
from dchat_messaging.testing import MemoryMessageStore

if TYPE_CHECKING:
    from dchat_core import MessageId
    from dchat_messaging.lowlevel import UserStore

__all__ = ("AGENT_T0", "AgentNode", "agent_pair", "deliver_mail")

AGENT_T0: Final = 1_000_000.0
"""The agents' clock (seconds)."""
_RELAY: Final = "127.0.0.1:7400"


class AgentNode:
    """One user node's messaging; its prekeys published to ``bundles``."""

    def __init__(
        self, name: str, bundles: dict[bytes, bytes], store: UserStore | None = None
    ) -> None:
        self.identity = Identity.generate()
        self.card = ContactCard.issue(self.identity, name=name, relay=_RELAY)
        self.store: UserStore = MemoryMessageStore() if store is None else store
        self.agent = UserMessaging(self.store)
        self.agent.engines.set_main(self.identity, self.card)
        engine = self.agent.engines.main()
        assert engine is not None
        self.engine = engine
        self.bundles = bundles
        upload = engine.prekey_upload(held=None, now=AGENT_T0)
        assert upload is not None
        bundles[bytes(self.card.mailbox)] = upload.last_resort

    def send(self, to: str, text: str) -> MessageId:
        """Send ``text`` to the contact ``to``; its message id."""
        content = Content.text_message(text, now_ms=int(AGENT_T0 * 1000))
        self.agent.send_as(self.agent.contacts.find(to), content, now=AGENT_T0)
        return content.message_id

    def outgoing(self) -> list[tuple[bytes, bytes]]:
        """Every queued envelope as ``(mailbox, envelope)``, taken out of the outbox."""
        for engine, device in self.agent.bundles_due(AGENT_T0):
            bundle = self.bundles[bytes(device.mailbox)]
            self.agent.bundle_received(engine, device, bundle, now=AGENT_T0)
        taken: list[tuple[bytes, bytes]] = []
        while entries := list(self.agent.outbox.due(AGENT_T0 + 3600, 1000)):
            for entry in entries:
                self.agent.delivered(entry.message_id)
            taken += self.agent.route(entries, AGENT_T0)  # as a node deposits them
        return taken

    def mailboxes(self) -> set[bytes]:
        """Where mail for this node goes: its published mailbox and its rotating tags."""
        watched = self.agent.tags.watch(AGENT_T0 + 1, [_RELAY])  # the engine accepts them now
        return {bytes(self.card.mailbox)} | {tag.mailbox for tag, _, _ in watched}

    def row(self, message_id: MessageId) -> dict[str, object]:
        """What a conversation view shows of a stored text."""
        entry = self.store.get_message(bytes(message_id))
        assert entry is not None
        return self.agent.conversations.row(entry)


def deliver_mail(src: AgentNode, dst: AgentNode) -> list[object]:
    """Move ``src``'s queued mail for ``dst`` into ``dst`` as one batch; its updates."""
    boxes = dst.mailboxes()
    mine = [env for box, env in src.outgoing() if box in boxes]
    return list(dst.agent.accept_many(dst.engine, mine, now=AGENT_T0 + 1).updates)


def agent_pair(stores: tuple[UserStore, UserStore] | None = None) -> tuple[AgentNode, AgentNode]:
    """Alice and Bob, each in the other's contacts (as ``alice`` and ``bob``).

    Args:
        stores: Their stores (a node database's ``EngineStore``); default: memory stores.
    """
    bundles: dict[bytes, bytes] = {}
    alice_store, bob_store = stores or (None, None)
    alice, bob = AgentNode("alice", bundles, alice_store), AgentNode("bob", bundles, bob_store)
    alice.agent.contacts.add("bob", bob.card.to_text(), now=AGENT_T0)
    bob.agent.contacts.add("alice", alice.card.to_text(), now=AGENT_T0)
    return alice, bob
