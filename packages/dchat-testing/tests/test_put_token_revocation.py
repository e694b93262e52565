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


def _deliver(src: AgentNode, dst: AgentNode, text: str, *, routed: bool = False) -> bytes:
    """``src`` writes to ``dst``, which accepts everything; the text's envelope.

    ``routed``: as the node deposits it (to ``dst``'s rotating tag if ``src`` holds its secret).
    """
    content = Content.text_message(text, now_ms=int(T * 1000))
    src.agent.send_as(src.agent.contacts.find(dst.card.name), content, now=T)
    for engine, device in src.agent.bundles_due(T):
        src.agent.bundle_received(engine, device, src.bundles[bytes(device.mailbox)], now=T)
    entries = list(src.agent.outbox.due(T, 64))
    for entry in entries:
        src.agent.delivered(entry.message_id)
    dst.agent.accept_many(dst.engine, [e.envelope for e in entries], now=T)
    return src.agent.route(entries, T)[0][1] if routed else entries[0].envelope


def _register(server: RelayServer, owner: AgentNode, rid: int) -> None:
    mailbox = bytes(owner.card.mailbox)
    _version, tokens = owner.agent.token_registration(mailbox)
    message = RelayTokenSet(rid, mailbox, tuple(token_hash(t) for t in tokens))
    server.handle(mailbox, encode_relay_message(message), T)


def _register_tags(server: RelayServer, owner: AgentNode, rid: int) -> None:
    """What the owner's tag links register on connecting (a muted tag: an empty set)."""
    for tag, _relay, _catch_up in owner.agent.tags.watch(T, ["relay:1"]):
        hashes = (token_hash(tag.token),) if tag.token else ()
        server.handle(tag.mailbox, encode_relay_message(RelayTokenSet(rid, tag.mailbox, hashes)), T)


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
    _register_tags(server, alice, 1)
    with_token = _deliver(bob, alice, "one")
    assert isinstance(_put(server, with_token, auth_token(token), 2), RelayStored)
    tagged = _deliver(bob, alice, "one, as the node routes it", routed=True)
    tag_token = bob.agent.token_for(envelope_mailbox(tagged))
    assert envelope_mailbox(tagged) != bytes(alice.card.mailbox)  # to alice's tag
    assert tag_token is not None
    assert isinstance(_put(server, tagged, auth_token(tag_token), 6), RelayStored)
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
    # Its rotating tag too: muted (removed: still drained) or no longer watched (blocked).
    _register_tags(server, alice, 7)  # removed: the muted tags' new links clear their sets
    again = _deliver(bob, alice, "two, as the node routes it", routed=True)
    refused = _put(server, again, auth_token(tag_token), 8)
    if how == "remove":
        assert isinstance(refused, RelayBusy)
        assert refused.reason == "pow"
    else:  # blocked: its mail is dropped anyway; a live tag's token may stay until a restart
        assert envelope_mailbox(again) not in {
            t.mailbox for t, _, _ in alice.agent.tags.watch(T, ["relay:1"])
        }
