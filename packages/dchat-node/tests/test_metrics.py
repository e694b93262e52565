"""``GET /metrics`` in process: names, values read from the engines, the token, no identifiers.

Each test builds a real (unstarted) node over a real database, drives its
sans-IO engines directly, and scrapes the app's ``/metrics`` through the
API's guard, as Prometheus would. The same endpoint is scraped from real
processes in ``test_metrics_processes.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from dchat_chain.lowlevel import NetPlan
from dchat_core import MailboxId, SystemClock
from dchat_crypto import KdfParams
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, SealedEnvelope
from dchat_network import RelayClient
from dchat_node._runtime import Node, build_node
from dchat_node.api._app import create_app
from dchat_node.cli._testnet import init_testnet
from dchat_node.config import NodeConfig, load_config
from dchat_storage import AsyncStore, open_database
from dchat_storage.backup import BackupStatus, write_backup_status
from dchat_testing import wait_until_async

TOKEN = "metrics-test-token"
NOW = 1_700_000_000.0


async def scrape(app: Any, token: str | None = TOKEN) -> tuple[int, str]:
    """GET /metrics through the whole app (guard included); the status and the body."""
    headers = [] if token is None else [(b"authorization", f"Bearer {token}".encode())]
    scope = {"type": "http", "method": "GET", "path": "/metrics", "headers": headers}
    scope |= {"query_string": b"", "http_version": "1.1", "scheme": "http", "root_path": ""}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body.decode()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def value(text: str, name: str, **labels: str) -> float:
    return samples(text)[name, tuple(sorted(labels.items()))]


def label_values(text: str) -> set[str]:
    return {v for (_, labels) in samples(text) for _, v in labels}


@pytest.fixture
def make_node(tmp_path: Path) -> Iterator[Any]:
    opened = []

    def make(role: str, **options: Any) -> Node:
        data_dir = tmp_path / role
        data_dir.mkdir()
        db = open_database(data_dir / "node.db")
        opened.append(db)
        config = NodeConfig.model_validate({"role": role, "data_dir": data_dir, **options})
        return build_node(config, AsyncStore(db), SystemClock(), b"unused")

    yield make
    for db in opened:
        db.close()


async def test_metrics_need_the_token(make_node: Any) -> None:
    app = create_app(make_node("relay"), TOKEN)
    assert (await scrape(app, None))[0] == 401
    assert (await scrape(app, "wrong"))[0] == 401
    status, text = await scrape(app)
    assert status == 200
    assert value(text, "dchat_node_info", role="relay") == 1
    assert value(text, "dchat_database_size_bytes") > 0  # node.db exists
    size = value(text, "dchat_data_filesystem_size_bytes")
    assert 0 < value(text, "dchat_data_filesystem_avail_bytes") <= size
    assert "process_cpu_seconds_total" in text  # the process collector, in this app's registry


async def test_the_last_verified_backup_shows_once_recorded(make_node: Any) -> None:
    node = make_node("relay")
    app = create_app(node, TOKEN)
    _, text = await scrape(app)
    assert "dchat_backup_" not in text  # never backed up: no figure (an alert's absent())
    write_backup_status(node.config.data_dir, BackupStatus(NOW - 3600, NOW - 60, 7))
    _, text = await scrape(app)
    assert value(text, "dchat_backup_last_success_timestamp_seconds") == NOW - 3600
    assert value(text, "dchat_backup_last_verify_timestamp_seconds") == NOW - 60
    assert value(text, "dchat_backup_snapshots") == 7


async def test_a_user_nodes_messages_queue_and_latency_show(make_node: Any) -> None:
    node = make_node("user", relay="127.0.0.1:1")
    user = node.role.user
    me, bob = Identity.generate(), Identity.generate()
    my_card = ContactCard.issue(me, name="alice", relay="127.0.0.1:1")
    bob_card = ContactCard.issue(bob, name="bob", relay="127.0.0.1:1")
    user.engines.set_main(me, my_card)
    user.book.add("bob", bob_card.to_text(), now=NOW)
    text_message = Content.text_message("hello", now_ms=int(NOW * 1000))
    user.engines.send_as(user.book.find("bob"), text_message, now=NOW)  # waits for a bundle
    envelope = SealedEnvelope(MailboxId(bytes(bob.mailbox_id)), b"c" * 64).to_bytes()
    user.outbox.enqueue(b"q" * 16, "127.0.0.1:1", bytes(bob.mailbox_id), envelope, NOW)
    user.agent.deposited(user.outbox.due(NOW + 1, 8), [b"e" * 32], now=NOW + 0.3)
    engine = user.engines.main()
    assert engine is not None
    user.agent.accept(engine, b"not an envelope", now=NOW)
    app = create_app(node, TOKEN)
    status, text = await scrape(app)
    assert status == 200
    assert value(text, "dchat_messages_sent_total", kind="text") == 1
    assert value(text, "dchat_messages_sent_total", kind="control") == 0
    assert value(text, "dchat_envelopes_sent_total") == 1
    assert value(text, "dchat_envelopes_received_total") == 1
    rejected = {k: v for k, v in samples(text).items() if k[0] == "dchat_envelopes_rejected_total"}
    assert sum(rejected.values()) == 1
    assert value(text, "dchat_outbox_waiting_messages") == 1
    assert value(text, "dchat_outbox_envelopes") == 0
    assert value(text, "dchat_delivery_latency_seconds_count") == 1
    assert value(text, "dchat_delivery_latency_seconds_bucket", le="0.25") == 0
    assert value(text, "dchat_delivery_latency_seconds_bucket", le="0.5") == 1
    assert value(text, "dchat_delivery_latency_seconds_bucket", le="+Inf") == 1
    for state in ("connecting", "connected", "waiting", "stopped"):
        assert value(text, "dchat_mailbox_links", state=state) == 0
    # Nothing in the exposition names an identity, a mailbox or a key of the test's users.
    secrets = [str(me.identity_id), str(bob.identity_id)]
    secrets += [bytes(i.mailbox_id).hex() for i in (me, bob)]
    secrets += [i.signing_key.public_key.to_bytes().hex() for i in (me, bob)]
    for secret in secrets:
        assert secret not in text
        assert not any(secret in label for label in label_values(text))


async def test_a_relays_stores_refusals_and_mailboxes_show(make_node: Any) -> None:
    node = make_node("relay")
    server = node.role.service.server
    owner, other = b"o" * 32, bytes(MailboxId.derive(b"k" * 32))
    client = RelayClient()
    good = SealedEnvelope(MailboxId(other), b"sealed" * 20).to_bytes()
    items = [(other, good), (other, b"malformed")]
    stored = server.handle(owner, client.put_many(items), NOW)
    assert not stored.close
    app = create_app(node, TOKEN)
    _, text = await scrape(app)
    assert value(text, "dchat_relay_envelopes_stored_total") == 1
    assert value(text, "dchat_relay_stored_bytes_total") == len(good)
    assert value(text, "dchat_relay_refusals_total", code="bad_envelope") == 1
    assert value(text, "dchat_relay_mailbox_envelopes") == 1
    assert value(text, "dchat_relay_mailbox_bytes") == len(good)
    assert value(text, "dchat_relay_envelopes_delivered_total") == 0
    assert value(text, "dchat_relay_probes_total") == 0
    assert value(text, "dchat_relay_receipts_total") == 0
    assert value(text, "dchat_links_open") == 0
    assert other.hex() not in text
    assert value(text, "dchat_relay_put_authorizations_total", kind="free") == 1  # quiet relay
    kinds = {"token", "proof", "work", "free", "refused", "paid"}  # a fixed set of kinds
    assert label_values(text) <= {"relay", "bad_envelope", *kinds}  # role and codes only


async def test_a_relays_abuse_refusals_show_by_reason(make_node: Any) -> None:
    limits = {"link_puts": 1.0, "burst": 1.0, "max_connections_per_source": 1}
    node = make_node("relay", relay_limits=limits)
    service = node.role.service
    server, guard = service.server, service.guard
    assert guard is not None
    assert service.connect("192.0.2.1") is None
    assert service.connect("192.0.2.1") == "source_connections"  # over the per-source cap
    budget = guard.budget("192.0.2.1", NOW)
    box = bytes(MailboxId.derive(b"k" * 32))
    client = RelayClient()
    for n in range(3):  # one put a second: the second and third are busy
        envelope = SealedEnvelope(MailboxId(box), bytes([n]) * 40).to_bytes()
        server.handle(b"o" * 32, client.put_many([(box, envelope)]), NOW, budget)
    _, text = await scrape(create_app(node, TOKEN))
    assert value(text, "dchat_relay_refusals_total", code="busy_rate") == 2
    assert value(text, "dchat_relay_connection_refusals_total", reason="source_connections") == 1
    assert value(text, "dchat_relay_connections") == 1
    assert value(text, "dchat_relay_replay_entries") == 0
    assert "192.0.2.1" not in text
    kinds = {"token", "proof", "work", "free", "refused", "paid"}  # put authorization kinds
    assert label_values(text) <= {"relay", "busy_rate", "source_connections", *kinds}


async def test_an_unstarted_validator_reports_only_the_common_figures(make_node: Any) -> None:
    _, text = await scrape(create_app(make_node("validator"), TOKEN))
    names = {name for name, _ in samples(text)}
    assert "dchat_node_info" in names
    assert not any(name.startswith("dchat_chain_") for name in names)


async def test_each_app_has_its_own_registry(make_node: Any) -> None:
    first, second = make_node("relay"), make_node("user")
    _, one = await scrape(create_app(first, TOKEN))
    _, two = await scrape(create_app(second, TOKEN))
    _, again = await scrape(create_app(first, TOKEN))  # a second app over the same node
    assert value(one, "dchat_node_info", role="relay") == 1
    assert ("dchat_node_info", (("role", "relay"),)) not in samples(two)
    assert value(again, "dchat_node_info", role="relay") == 1


async def test_a_running_validator_reports_its_chain_and_its_unreachable_peers(
    tmp_path: Path,
) -> None:
    """One validator of four, alone in this process: no quorum, its peers refuse its dials."""
    secret = b"metrics validator"
    plan = NetPlan(validators=4, accounts=1)
    init_testnet(tmp_path / "net", plan, secret, kdf=KdfParams.TESTING, block_interval=0.05)
    home = tmp_path / "net" / "validator-0"
    with open_database(home / "node.db") as db:
        node = build_node(load_config(home), AsyncStore(db), SystemClock(), secret)
        async with trio.open_nursery() as nursery:
            await node.start(nursery, secret)
            service = node.role.service
            assert service is not None
            peers = service.peers
            await wait_until_async(lambda: all(p.stats.dial_failures for p in peers), timeout=30)
            _, text = await scrape(create_app(node, TOKEN))
            nursery.cancel_scope.cancel()
    assert value(text, "dchat_chain_info", chain=service.app.kind, id=service.app.chain_id) == 1
    assert value(text, "dchat_chain_height") == 0
    assert value(text, "dchat_chain_round") >= 0
    assert value(text, "dchat_chain_validators") == 4
    assert (value(text, "dchat_chain_peers"), value(text, "dchat_chain_peers_connected")) == (3, 0)
    assert value(text, "dchat_chain_peer_dial_failures_total", kind="LinkClosedError") >= 3
    assert value(text, "dchat_chain_commit_latency_seconds_count") == 0
    assert value(text, "dchat_chain_mempool_transactions") == 0
    assert value(text, "dchat_chain_evidence_total") == 0
    assert value(text, "dchat_links_open") == 0
    assert value(text, "dchat_database_size_bytes") > 0
