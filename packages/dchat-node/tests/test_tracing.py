"""OpenTelemetry spans of send -> relay -> receive, with the SDK's in-memory exporter.

A relay and two user nodes run in this process under one installed tracing
(``dchat_network.tracing``: tracing is per process) with an
:class:`InMemorySpanExporter`; alice sends bob a text through the API's send.
The spans must show alice's send and deposit (the deposit linked to the
send), the relay's request and push, and bob's receive, and no attribute
may carry the text, an identity id, a mailbox, a key or a card of the
test's users. Tracing off is one shared object that allocates nothing per
step; the node's settings turn it on with a file exporter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import trio
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dchat_core import SystemClock
from dchat_network import tracing
from dchat_network.tracing import TRACING_OFF, Tracing
from dchat_node._runtime import Node, build_node
from dchat_node.api._messages import traced_send
from dchat_node.config import NodeConfig, load_config
from dchat_node.user._role import UserRole
from dchat_node.user._service import UserService
from dchat_storage import AsyncStore, open_database
from dchat_testing import wait_until_async

PASSPHRASE = b"tracing test passphrase"
TEXT = "a very private tracing test message"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    previous = tracing.install(Tracing(provider))
    yield exporter
    tracing.install(previous).shutdown()


async def start(stack: ExitStack, nursery: trio.Nursery, data_dir: Path, **options: Any) -> Node:
    """Build and start a node in ``nursery`` over a new database in ``data_dir``."""
    db = stack.enter_context(open_database(data_dir / "node.db"))
    config = NodeConfig.model_validate({"data_dir": data_dir, **options})
    node = build_node(config, AsyncStore(db), SystemClock(), PASSPHRASE)
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
    await traced_send(a, "bob", TEXT)
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


async def test_spans_of_a_send_through_the_relay_to_the_receiver(
    dirs: dict[str, Path], spans: InMemorySpanExporter
) -> None:
    with ExitStack() as stack:
        async with trio.open_nursery() as nursery:
            relay = await start(stack, nursery, dirs["relay"], role="relay", listen="127.0.0.1:0")
            home = {"role": "user", "relay": relay.link_address, "relay_node": str(relay.node_id)}
            alice = await start(stack, nursery, dirs["alice"], **home)
            bob = await start(stack, nursery, dirs["bob"], **home)
            a, b = await _send_and_receive(alice, bob)
            nursery.cancel_scope.cancel()

    finished = spans.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    (send,) = by_name["dchat.send"]
    linked = [
        d for d in by_name["dchat.deposit"] if any(k.context == send.context for k in d.links)
    ]
    assert len(linked) == 1, "exactly one deposit span links to the send"
    attributes = linked[0].attributes
    assert attributes is not None
    assert attributes["dchat.envelopes"] >= 1
    assert attributes["dchat.envelopes_refused"] == 0
    replies = {
        (s.attributes or {}).get("dchat.relay.reply") for s in by_name["dchat.relay.request"]
    }
    assert len(replies) > 1  # puts, pulls and prekey requests, by reply kind
    assert by_name["dchat.relay.push"]  # bob's parked pull answered when alice's envelope came
    assert sum((s.attributes or {}).get("dchat.envelopes", 0) for s in by_name["dchat.receive"])

    forbidden = [TEXT, "alice", "bob", relay.link_address or "?", str(relay.node_id)]
    for user in (a, b):
        identity = user.identity
        forbidden += [str(identity.identity_id), bytes(identity.mailbox_id).hex()]
        forbidden.append(identity.signing_key.public_key.to_bytes().hex())
        forbidden.append(user.card.to_text())
    values = attribute_values(spans)
    assert values  # the spans carry figures
    assert not [v for v in values for secret in forbidden if secret in v]


def test_tracing_off_is_one_shared_do_nothing_step() -> None:
    assert tracing.active is TRACING_OFF  # the default
    first = TRACING_OFF.span("dchat.send")
    assert first is TRACING_OFF.span("dchat.receive") is TRACING_OFF.deposit_span()
    with first as span:
        assert span is None
    assert not TRACING_OFF.enabled


def test_a_file_target_turns_tracing_on(tmp_path: Path) -> None:
    off = tracing.configure("dchat-relay", endpoint=None, file=None, fallback=tmp_path / "x")
    assert off is TRACING_OFF
    on = tracing.configure(
        "dchat-relay", endpoint=None, file=tmp_path / "spans.jsonl", fallback=tmp_path / "x"
    )
    assert on.enabled
    with on.span("dchat.relay.request") as span:
        assert span is not None
        span.set_attribute("dchat.relay.reply", "Stored")
    on.shutdown()
    line = (tmp_path / "spans.jsonl").read_text()
    assert '"dchat.relay.request"' in line
    assert '"service.name": "dchat-relay"' in line


def test_an_otlp_endpoint_without_the_exporter_package_falls_back_to_a_file(
    tmp_path: Path,
) -> None:
    on = tracing.configure(
        "dchat-user",
        endpoint="http://127.0.0.1:9/v1/traces",
        file=None,
        fallback=tmp_path / "traces.jsonl",
    )
    with on.span("dchat.send"):
        pass
    on.shutdown()
    assert '"dchat.send"' in (tmp_path / "traces.jsonl").read_text()


def test_the_node_settings_name_the_targets(tmp_path: Path) -> None:
    (tmp_path / "dchat.toml").write_text('[node]\nrole = "relay"\ntracing_file = "spans.jsonl"\n')
    config = load_config(tmp_path)
    assert config.tracing_file == Path("spans.jsonl")
    assert config.tracing_endpoint is None
