"""Onion mode in the engine: an identity's envelopes are queued for onion deposit."""

from __future__ import annotations

from dchat_messaging import Content
from dchat_testing import EngineDevice, EngineNet

T0 = 1000.0


def _send(alice: EngineDevice, bob: EngineDevice, text: str, at: float) -> str:
    """Send ``text``; the relay text of the newest outbox entry."""
    content = Content.text_message(text, now_ms=int(at * 1000))
    for device in alice.engine.send(content, [bob.address], now=at):
        bundle = alice.relay.take_bundle(bytes(device.mailbox))
        alice.engine.bundle_received(device, bundle, now=at)
    return list(alice.store.queued(100))[-1].relay


def test_onion_mode_queues_for_onion_deposit_and_is_kept() -> None:
    net = EngineNet()
    alice, bob = net.person("alice"), net.person("bob")
    assert not alice.engine.onion  # off by default
    assert _send(alice, bob, "direct", T0) == bob.card.relay
    alice.engine.set_onion(True)
    assert _send(alice, bob, "through onions", T0 + 1) == f"onion:{bob.card.relay}"
    alice.restart()  # a new engine over the same store
    assert alice.engine.onion  # kept in the store, per identity
    assert not bob.engine.onion
    alice.engine.set_onion(False)
    assert _send(alice, bob, "direct again", T0 + 2) == bob.card.relay


def test_local_engines_keep_the_mode_per_identity_even_before_an_engine_exists() -> None:
    from dchat_core import IdentityId
    from dchat_messaging import LocalEngines
    from dchat_messaging.testing import MemoryMessageStore

    store = MemoryMessageStore()
    engines = LocalEngines(store, directory=None, dropped=set())  # type: ignore[arg-type]
    burner = IdentityId.derive(b"burner key")
    assert not engines.onion_mode(burner)
    engines.set_onion_mode(burner, True)
    assert engines.onion_mode(burner)
    assert store.get_state(f"msg.{burner}.onion") == b"\x01"  # where its engine will look


def test_the_mode_known_in_memory_is_never_stale() -> None:
    """What the node reads outside the store's worker (to skip a trip before a send)."""
    net = EngineNet()
    alice = net.person("alice")
    alice.restart()  # a new engine: the mode is not read yet
    assert alice.engine.onion_known is None  # unknown: the caller must read the store
    assert not alice.engine.onion
    assert alice.engine.onion_known is False
    alice.engine.set_onion(True)
    assert alice.engine.onion_known is True
    try:
        with alice.store.transaction():
            alice.engine.set_onion(False)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert alice.engine.onion_known is None  # never the rolled-back value
    assert alice.engine.onion  # read again: still on


def test_reply_blocks_are_skipped_without_a_read_only_when_onion_mode_is_known_off() -> None:
    from dchat_testing import AgentNode

    node = AgentNode("alice", {})
    agent, me = node.agent, node.identity.identity_id
    assert agent.no_reply_blocks(None, 0)  # no supply configured
    agent.engines.set_onion_mode(me, True)
    assert not agent.no_reply_blocks(None, 5)  # on: the worker decides what to build
    agent.engines.set_onion_mode(me, False)
    assert agent.no_reply_blocks(None, 5)  # known off
    node.engine._onion = None  # as after a rollback: unknown
    assert not agent.no_reply_blocks(None, 5)  # so the worker reads it
