"""``/metrics`` of real processes: a relay, two users and four validators, scraped with the token.

A message from alice to bob must show in both users' and the relay's
counters, the validators' chain height must rise, and nothing any node
exposes may name the users' identities or mailboxes. When Debian's
``prometheus`` is installed, a real Prometheus server scrapes all seven
nodes with the tokens and the test reads the results through its HTTP API
(skipped, saying so, when it is not installed; ``.ci/run`` installs it).
The nodes are started once for the module.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dchat_chain.lowlevel import NetPlan
from dchat_crypto import KdfParams
from dchat_identity import ContactCard
from dchat_node import NodeProcess, free_port
from dchat_node.cli._testnet import init_testnet
from dchat_testing import wait_until

pytestmark = pytest.mark.slow

PASSPHRASE = "metrics test passphrase"


def scrape(node: NodeProcess, token: str | None = None) -> httpx.Response:
    token = node.info["token"] if token is None else token
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.get(node.info["url"] + "/metrics", headers=headers, timeout=10)


def metrics(node: NodeProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = scrape(node)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return found


def one(node: NodeProcess, name: str, **labels: str) -> float:
    return metrics(node).get((name, tuple(sorted(labels.items()))), -1.0)


class Cluster:
    """A relay, alice and bob homed on it (one message sent), and four validators."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.relay = NodeProcess(
            root / "relay", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{free_port()}"
        )
        self.started: list[NodeProcess] = []
        self.cards: list[ContactCard] = []

    def start(self) -> None:
        self._run(self.relay)
        self.alice, self.bob = (
            self._run(
                NodeProcess(
                    self.root / name,
                    "user",
                    passphrase=PASSPHRASE,
                    relay=self.relay.info["link"],
                    poll_interval=0.2,
                )
            )
            for name in ("alice", "bob")
        )
        plan = NetPlan(validators=4, accounts=1)
        net = self.root / "net"
        summary = init_testnet(
            net, plan, PASSPHRASE.encode(), kdf=KdfParams.TESTING, block_interval=0.3
        )
        self.validators = [
            self._run(
                NodeProcess(net / v["dir"], "validator", passphrase=PASSPHRASE, listen=v["listen"])
            )
            for v in summary["validators"]
        ]
        with self.alice.client() as a, self.bob.client() as b:
            a.create_identity("alice")
            b.create_identity("bob")
            self.cards = [ContactCard.from_text(a.card()), ContactCard.from_text(b.card())]
            a.add_contact("bob", b.card())
            b.add_contact("alice", a.card())
            a.send("bob", "counted, never named")

    def _run(self, node: NodeProcess) -> NodeProcess:
        self.started.append(node)
        node.start()
        return node

    @property
    def nodes(self) -> list[NodeProcess]:
        return [self.relay, self.alice, self.bob, *self.validators]

    def stop(self) -> None:
        for node in self.started:
            node.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("metrics"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_every_role_serves_metrics_that_follow_a_message_and_the_chain(cluster: Cluster) -> None:
    relay, alice, bob, validators = cluster.relay, cluster.alice, cluster.bob, cluster.validators
    wait_until(
        lambda: one(bob, "dchat_messages_received_total") >= 1, timeout=60, what="bob counted it"
    )
    assert scrape(relay, "wrong").status_code == 401
    assert one(alice, "dchat_messages_sent_total", kind="text") == 1
    wait_until(lambda: one(alice, "dchat_delivery_latency_seconds_count") >= 1, timeout=30)
    assert one(alice, "dchat_envelopes_sent_total") >= 1
    assert one(alice, "dchat_outbox_envelopes") == 0
    assert one(alice, "dchat_mailbox_links", state="connected") >= 1
    assert one(relay, "dchat_relay_envelopes_stored_total") >= 1
    wait_until(lambda: one(relay, "dchat_relay_envelopes_delivered_total") >= 1, timeout=30)
    assert one(relay, "dchat_links_open") >= 2  # the users' standing mailbox links
    timed = "dchat_chain_commit_latency_seconds_count"
    for validator in validators:
        wait_until(lambda v=validator: one(v, "dchat_chain_height") >= 2, timeout=60)
        # A late starter catches up by block sync (not timed), then decides heights itself.
        wait_until(lambda v=validator: one(v, timed) >= 1, timeout=60)
        assert one(validator, "dchat_chain_validators") == 4
    wait_until(lambda: one(validators[0], "dchat_chain_peers_connected") == 3, timeout=30)
    cards = cluster.cards
    forbidden = [str(c.identity_id) for c in cards] + [bytes(c.mailbox).hex() for c in cards]
    for node in cluster.nodes:
        text = scrape(node).text
        assert not [secret for secret in forbidden if secret in text], node.role


@pytest.mark.skipif(
    shutil.which("prometheus") is None,
    reason="Debian's prometheus is not installed (.ci/run installs it)",
)
def test_a_real_prometheus_scrapes_every_role_with_the_tokens(
    cluster: Cluster, tmp_path: Path
) -> None:
    wait_until(
        lambda: one(cluster.bob, "dchat_messages_received_total") >= 1, timeout=60, what="delivery"
    )
    _prometheus_scrapes(tmp_path, cluster.nodes)


def _prometheus_scrapes(tmp_path: Path, nodes: list[NodeProcess]) -> None:
    """A real Prometheus scrapes every node with its token; ask its query API for the results."""
    jobs = []
    for i, node in enumerate(nodes):
        token_file = tmp_path / f"token-{i}"
        token_file.write_text(node.info["token"])
        target = node.info["url"].removeprefix("http://")
        jobs.append(
            f"  - job_name: node{i}\n"
            f"    authorization: {{credentials_file: {token_file}}}\n"
            f"    static_configs:\n"
            f"      - {{targets: ['{target}'], labels: {{dchat_role: {node.role}}}}}\n"
        )
    config = tmp_path / "prometheus.yml"
    config.write_text("global: {scrape_interval: 1s}\nscrape_configs:\n" + "".join(jobs))
    port = free_port()
    server = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    api = f"http://127.0.0.1:{port}/api/v1/query"

    def query(expr: str) -> list[dict[str, Any]]:
        try:
            answer = httpx.get(api, params={"query": expr}, timeout=5).json()
        except httpx.HTTPError:
            return []
        result: list[dict[str, Any]] = answer.get("data", {}).get("result", [])
        return result

    try:
        up = wait_until(
            lambda: len(query("up == 1")) == len(nodes),
            timeout=60,
            what="Prometheus scraping every node",
        )
        assert up
        heights = query('dchat_chain_height{dchat_role="validator"}')
        assert len(heights) == 4
        assert all(float(r["value"][1]) >= 2 for r in heights)
        stored = query("dchat_relay_envelopes_stored_total")
        assert stored
        assert float(stored[0]["value"][1]) >= 1
        sent = query('dchat_messages_sent_total{kind="text"}')
        assert sum(float(r["value"][1]) for r in sent) >= 1
    finally:
        server.terminate()
        server.wait(timeout=30)
