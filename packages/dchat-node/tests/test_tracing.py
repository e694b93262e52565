"""OpenTelemetry spans of send -> relay -> receive, with the SDK's in-memory exporter.

A relay and two user nodes run in this process, each with its own tracer
provider and :class:`InMemorySpanExporter`; alice sends bob a text. The
spans must show alice's send and deposit (the deposit linked to the send),
the relay's request and push, and bob's receive, and no attribute may carry
the text, an identity id, a mailbox or a key of the test's users. Tracing
off is one shared object that allocates nothing per step.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dchat_core import SystemClock
from dchat_node._runtime import Node, build_node
from dchat_node._tracing import TRACING_OFF, Tracing, tracing_from_config
from dchat_node.config import NodeConfig, load_config
from dchat_node.user._role import UserRole
from dchat_node.user._service import UserService
from dchat_storage import AsyncStore, open_database
from dchat_testing import wait_until_async

PASSPHRASE = b"tracing test passphrase"
TEXT = "a very private tracing test message"


def traced() -> tuple[Tracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return Tracing(provider), exporter


async def start(
    stack: ExitStack, nursery: trio.Nursery, data_dir: Path, tracing: Tracing, **options: Any
) -> Node:
    """Build and start a node in ``nursery`` over a new database in ``data_dir``."""
    db = stack.enter_context(open_database(data_dir / "node.db"))
    config = NodeConfig.model_validate({"data_dir": data_dir, **options})
    node = build_node(config, AsyncStore(db), SystemClock(), PASSPHRASE, tracing)
    await node.start(nursery, PASSPHRASE)
    return node


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, Path]:
    made = {name: tmp_path / name for name in ("relay", "alice", "bob")}
    for path in made.values():
        path.mkdir()
    return made


async def _send_and_receive(alice: Node, bob: Node) -> tuple[UserService, UserService]:
    assert isinstance(alice.role, UserRole)
    assert isinstance(bob.role, UserRole)
    a, b = alice.role.user, bob.role.user
    await a.create_identity("alice")
    await b.create_identity("bob")
    await a.add_contact("bob", b.card.to_text())
    await b.add_contact("alice", a.card.to_text())
    await a.send("bob", TEXT)
    await wait_until_async(lambda: b.agent.stats.received >= 1, what="bob receives")
    for user in (a, b):
        await user.pool.aclose()  # the deposit links (the node's exit closes them)
    return a, b


def attribute_values(exporter: InMemorySpanExporter) -> list[str]:
    values = []
    for span in exporter.get_finished_spans():
        values += [str(v) for v in (span.attributes or {}).values()]
        for event in span.events:
            values += [str(v) for v in (event.attributes or {}).values()]
    return values


async def test_spans_of_a_send_through_the_relay_to_the_receiver(dirs: dict[str, Path]) -> None:
    (relay_tracing, relay_spans), (a_tracing, a_spans), (b_tracing, b_spans) = (
        traced(),
        traced(),
        traced(),
    )
    with ExitStack() as stack:
        async with trio.open_nursery() as nursery:
            relay = await start(
                stack, nursery, dirs["relay"], relay_tracing, role="relay", listen="127.0.0.1:0"
            )
            home = {"role": "user", "relay": relay.link_address, "relay_node": str(relay.node_id)}
            alice = await start(stack, nursery, dirs["alice"], a_tracing, **home)
            bob = await start(stack, nursery, dirs["bob"], b_tracing, **home)
            a, b = await _send_and_receive(alice, bob)
            nursery.cancel_scope.cancel()

    sent = {s.name: s for s in a_spans.get_finished_spans()}
    assert {"dchat.send", "dchat.deposit"} <= sent.keys()
    send = sent["dchat.send"]
    deposits = [s for s in a_spans.get_finished_spans() if s.name == "dchat.deposit"]
    linked = [d for d in deposits if any(link.context == send.context for link in d.links)]
    assert linked, "no deposit span links to the send"
    assert linked[0].attributes is not None
    assert linked[0].attributes["dchat.envelopes"] >= 1
    assert linked[0].attributes["dchat.envelopes_refused"] == 0
    relay_names = {s.name for s in relay_spans.get_finished_spans()}
    assert {"dchat.relay.request", "dchat.relay.push"} <= relay_names
    received = [s for s in b_spans.get_finished_spans() if s.name == "dchat.receive"]
    assert sum((s.attributes or {}).get("dchat.messages", 0) for s in received) >= 1

    forbidden = [TEXT, "alice", "bob"]
    for user in (a, b):
        identity = user.identity
        forbidden += [str(identity.identity_id), bytes(identity.mailbox_id).hex()]
        forbidden.append(identity.signing_key.public_key.to_bytes().hex())
        forbidden.append(user.card.to_text())
    for exporter in (relay_spans, a_spans, b_spans):
        values = attribute_values(exporter)
        assert values  # the spans carry figures
        assert not [v for v in values for secret in forbidden if secret in v]


def test_tracing_off_is_one_shared_do_nothing_step() -> None:
    first = TRACING_OFF.span("dchat.send")
    assert first is TRACING_OFF.span("dchat.receive") is TRACING_OFF.deposit_span()
    with first as span:
        assert span is None
    assert not TRACING_OFF.enabled


def test_the_config_turns_tracing_on_with_a_file(tmp_path: Path) -> None:
    assert tracing_from_config(load_config(tmp_path)) is TRACING_OFF
    (tmp_path / "dchat.toml").write_text(
        '[node]\nrole = "relay"\n\n[tracing]\nfile = "spans.jsonl"\n'
    )
    tracing = tracing_from_config(load_config(tmp_path))
    assert tracing.enabled
    with tracing.span("dchat.relay.request") as span:
        assert span is not None
        span.set_attribute("dchat.relay.reply", "Stored")
    tracing.shutdown()
    line = (tmp_path / "spans.jsonl").read_text()
    assert '"dchat.relay.request"' in line
    assert '"service.name": "dchat-relay"' in line


def test_an_otlp_endpoint_without_the_exporter_package_falls_back_to_a_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "dchat.toml").write_text('[tracing]\nendpoint = "http://127.0.0.1:9/v1/traces"\n')
    tracing = tracing_from_config(load_config(tmp_path))
    with tracing.span("dchat.send"):
        pass
    tracing.shutdown()
    assert '"dchat.send"' in (tmp_path / "traces.jsonl").read_text()
