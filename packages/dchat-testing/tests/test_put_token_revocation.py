"""A removed or blocked contact's put token stops working at the relay (issue 15, item 4).

Real engines issue and hand over the token; a real ``RelayServer`` holds the
hashes the owner's agent registers (``tok_set``, as its mailbox link does).
Once the owner removes (or blocks) the contact, the next registration leaves
the token out and the relay answers the contact's deposit exactly as a
stranger's: ``busy`` ``pow`` while strangers pay work.
"""

from __future__ import annotations

import pytest

from dchat_messaging import Content
from dchat_network import RelayLimits, RelayServer
from dchat_network.lowlevel import (
    RelayBusy,
    RelayPut,
    RelayStored,
    RelayTokenSet,
    auth_token,
    encode_relay_message,
    token_hash,
)
from dchat_testing import AGENT_T0, AgentNode, MemoryMailboxStore, envelope_mailbox

T = AGENT_T0


def _deliver(src: AgentNode, dst: AgentNode, text: str) -> bytes:
    """``src`` writes to ``dst``, which accepts everything; the text's envelope."""
    content = Content.text_message(text, now_ms=int(T * 1000))
    src.agent.send_as(src.agent.contacts.find(dst.card.name), content, now=T)
    for engine, device in src.agent.bundles_due(T):
        src.agent.bundle_received(engine, device, src.bundles[bytes(device.mailbox)], now=T)
    entries = list(src.agent.outbox.due(T, 64))
    for entry in entries:
        src.agent.delivered(entry.message_id)
    dst.agent.accept_many(dst.engine, [e.envelope for e in entries], now=T)
    return entries[0].envelope


def _register(server: RelayServer, owner: AgentNode, rid: int) -> None:
    mailbox = bytes(owner.card.mailbox)
    _version, tokens = owner.agent.token_registration(mailbox)
    message = RelayTokenSet(rid, mailbox, tuple(token_hash(t) for t in tokens))
    server.handle(mailbox, encode_relay_message(message), T)


def _put(server: RelayServer, envelope: bytes, auth: bytes | None, rid: int) -> object:
    put = RelayPut(rid, envelope_mailbox(envelope), envelope, auth)
    return server.handle(b"S" * 32, encode_relay_message(put), T).message


@pytest.mark.parametrize("how", ["remove", "block"])
def test_the_relay_treats_a_revoked_contact_as_a_stranger(how: str) -> None:
    bundles: dict[bytes, bytes] = {}
    alice, bob, mallory = (AgentNode(n, bundles) for n in ("alice", "bob", "mallory"))
    for a, b in ((alice, bob), (bob, alice), (mallory, alice)):
        a.agent.contacts.add(b.card.name, b.card.to_text(), now=T)
    server = RelayServer(
        MemoryMailboxStore(), envelope_mailbox, limits=RelayLimits(pow_free_mailbox=0.0)
    )  # every stranger pays work at once
    _deliver(alice, bob, "hello bob")  # hands bob a token for alice's mailbox
    token = bob.agent.tokens.token_for(bytes(alice.card.mailbox))
    assert token is not None
    _register(server, alice, 1)
    with_token = _deliver(bob, alice, "one")
    assert isinstance(_put(server, with_token, auth_token(token), 2), RelayStored)
    stranger = _put(server, _deliver(mallory, alice, "a stranger"), None, 3)
    assert isinstance(stranger, RelayBusy)
    assert stranger.reason == "pow"

    if how == "remove":
        alice.agent.remove_contact("bob")
    else:
        alice.agent.block(bob.card.identity_id)
    _register(server, alice, 4)  # the mailbox link's next sync
    refused = _put(server, _deliver(bob, alice, "two"), auth_token(token), 5)
    assert isinstance(refused, RelayBusy)
    assert (refused.reason, refused.pow is not None) == ("pow", True)  # as the stranger's
