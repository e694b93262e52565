"""``GET /metrics``: the node's figures in the Prometheus text format.

Theory of operation. Nothing here counts anything. The figures are kept
where the logic that produces them lives, as plain numbers the engines
update anyway (sans-IO): the messaging agent's receive counters and the
outbox's delivery-latency :class:`dchat_core.Histogram` (dchat-messaging),
the relay server's and the link listener's counters and the standing links'
states (dchat-network), the validator driver's commit-latency histogram and
the peer links' counters (dchat-chain), the group commits of
:class:`dchat_storage.AsyncStore` and the lifecycle schedule's sweeps.
:class:`NodeMetrics` is a prometheus-client *custom collector*: at each
scrape it reads those values and writes them out as metric families, so
there is no second set of books to keep in step, and the message path pays
nothing for metrics beyond the engines' own counters.

Figures that live in the database (outbox depth, the relay's mailbox
contents) are read once per scrape, in one worker trip
(:meth:`NodeMetrics.refresh`), never per message. The database's size is
:meth:`dchat_storage.Database.size_bytes`: the files of ``node.db`` (with its
``-wal``/``-shm``), or on PostgreSQL the server's size of the node's database.
The free space of the data directory's filesystem is read at each scrape
(``statvfs``). The age of the last verified backup comes from the record the
backup job writes into the data directory after a verification passed
(:func:`dchat_storage.backup.read_backup_status`); a node that never had one
exports no ``dchat_backup_*`` figures.

Each app has its own :class:`~prometheus_client.CollectorRegistry` (never the
global default one), so several nodes in one process (the tests) do not
clash; it also holds prometheus-client's process collector (CPU, memory,
open files of the node process).

Labels carry only values from small fixed sets: a role, a link state, a
content kind, an error class name or relay refusal code, the chain's kind
and id. Never an identity, mailbox, device or peer key, address or message
id: a metrics scrape must not help anyone link a user to their traffic.

``/metrics`` needs the API's bearer token like every route but ``/health``
(Prometheus sends it with ``authorization: {credentials_file: ...}``; see
docs/operations.md).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Final

from fastapi import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from dchat_storage.backup import read_backup_status

from ..relay._role import RelayRole
from ..user._role import UserRole
from ..validator._role import ValidatorRole

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from fastapi import FastAPI
    from fastapi.params import Depends
    from prometheus_client.metrics_core import Metric

    from dchat_core import Histogram
    from dchat_network import LinkStats

    from .._runtime import Node
    from ..relay._service import RelayService

__all__ = ("LINK_STATES", "NodeMetrics", "add_metrics_route")

LINK_STATES: Final = ("connecting", "connected", "waiting", "stopped")
"""The states of a user node's standing mailbox links (each is always reported)."""


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _by(
    family: Callable[..., CounterMetricFamily | GaugeMetricFamily],
    name: str,
    doc: str,
    label: str,
    counts: Mapping[str, float],
) -> CounterMetricFamily | GaugeMetricFamily:
    """One family with a sample per value of ``label`` (``counts``: a snapshot)."""
    metric = family(name, doc, labels=[label])
    for value, count in sorted(counts.items()):
        metric.add_metric([value], count)
    return metric


def _le(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``0.5``, ``1.0``, ``60.0``)."""
    return repr(float(bound))


def _histogram(name: str, doc: str, histogram: Histogram) -> HistogramMetricFamily:
    buckets = histogram.cumulative()
    total = max(histogram.count, buckets[-1][1])  # an observation racing the read stays valid
    rows = [(_le(bound), float(n)) for bound, n in buckets]
    rows.append(("+Inf", float(total)))
    return HistogramMetricFamily(name, doc, buckets=rows, sum_value=histogram.sum)


def _listener(stats: LinkStats) -> Iterator[Metric]:
    """The link listener of a relay or validator."""
    yield _gauge("dchat_links_open", "Inbound links open now.", stats.open)
    yield _counter("dchat_links_accepted_total", "Inbound connections accepted.", stats.accepted)
    yield _by(
        CounterMetricFamily,
        "dchat_link_handshake_failures_total",
        "Inbound connections that failed before completing the handshake, by error class.",
        "kind",
        dict(stats.handshake_failures),
    )
    yield _by(
        CounterMetricFamily,
        "dchat_links_ended_total",
        "Established inbound links that ended with an error, by error class.",
        "kind",
        dict(stats.ended),
    )


def _guard(service: RelayService) -> Iterator[Metric]:
    """A relay's abuse limits: connections held, refused, and the replay window's size."""
    guard, recent = service.guard, service.server.recently_delivered
    if guard is not None:
        yield _gauge("dchat_relay_connections", "Admitted connections open now.", guard.connections)
        yield _by(
            CounterMetricFamily,
            "dchat_relay_connection_refusals_total",
            "Connections refused or closed by the relay's limits, by reason.",
            "reason",
            dict(guard.refusals),
        )
    if recent is not None:
        yield _gauge(
            "dchat_relay_replay_entries",
            "Delivered envelopes remembered to refuse their replay.",
            len(recent),
        )


def _cover(status: dict[str, Any]) -> Iterator[Metric]:
    """Cover traffic (all zero while it is off): what went out, what came back."""
    for kind, doc in (
        ("loops_sent", "Cover loop messages sent (to the node's own cover tag)."),
        ("drops_sent", "Cover drop messages sent (to a throwaway mailbox)."),
        ("loops_returned", "Cover loops that came back."),
        ("loops_missing", "Cover loops not back within a minute (a relay dropping mail?)."),
        ("replaced", "Cover drop slots taken by real envelopes."),
        ("skipped", "Cover slots skipped to keep within the budget."),
        ("failed", "Cover deposits a relay refused or could not take."),
    ):
        yield _counter(f"dchat_cover_{kind}_total", doc, status[kind])
    yield _gauge(
        "dchat_cover_budget_bytes", "Cover budget, bytes per second (0: off).", status["budget"]
    )
    rtt = status["loop_rtt_ms"]
    yield _gauge(
        "dchat_cover_loop_rtt_seconds", "Mean round trip of cover loops.", (rtt or 0) / 1000
    )


class NodeMetrics(Collector):
    """Reads a node's figures at scrape time (a prometheus-client custom collector)."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._stored: dict[str, Any] = {}

    async def refresh(self) -> None:
        """Read the figures kept in the database (one worker trip per scrape)."""
        role, db = self._node.role, self._node.store.db
        figures: Callable[[], dict[str, Any]] = dict
        if isinstance(role, UserRole):
            user = role.user

            def figures() -> dict[str, Any]:
                return {
                    "outbox": db.outbox.count(),
                    "waiting": user.engines.pending_count(),
                    "oldest": user.agent.outbox.oldest(),
                }

        elif isinstance(role, RelayRole):

            def figures() -> dict[str, Any]:
                entries, size = db.mailboxes.usage()
                return {"entries": entries, "bytes": size}

        def read() -> dict[str, Any]:
            return figures() | {"size": db.size_bytes()}

        self._stored = await self._node.store.run(read)

    def collect(self) -> Iterator[Metric]:
        """The metric families of this node, read now."""
        yield from self._common()
        role = self._node.role
        if isinstance(role, UserRole):
            yield from self._user(role)
        elif isinstance(role, RelayRole):
            yield from self._relay(role)
        elif isinstance(role, ValidatorRole):
            yield from self._validator(role)

    def _common(self) -> Iterator[Metric]:
        node = self._node
        info = GaugeMetricFamily("dchat_node_info", "The node's role (always 1).", labels=["role"])
        info.add_metric([node.config.role], 1)
        yield info
        yield _gauge(
            "dchat_node_start_time_seconds", "When the node started (Unix time).", node.started_at
        )
        yield _gauge(
            "dchat_database_size_bytes",
            "Size of the node database (its SQLite files, or its PostgreSQL database).",
            self._stored.get("size", 0),
        )
        yield from self._filesystem()
        schedule = node.lifecycle.schedule
        yield _counter("dchat_lifecycle_sweeps_total", "Lifecycle sweeps run.", schedule.sweeps)
        yield _counter(
            "dchat_lifecycle_deleted_rows_total", "Rows the sweeps deleted.", schedule.deleted
        )
        yield _counter(
            "dchat_group_commits_total",
            "Database group commits (one transaction for concurrent writers).",
            node.store.group_commits,
        )
        yield from self._backup()

    def _backup(self) -> Iterator[Metric]:
        """The last verified backup, when the backup job recorded one (else nothing)."""
        status = read_backup_status(self._node.config.data_dir)
        if status is None:
            return
        yield _gauge(
            "dchat_backup_last_success_timestamp_seconds",
            "When the newest snapshot that passed verification was taken (Unix time).",
            status.snapshot_time,
        )
        yield _gauge(
            "dchat_backup_last_verify_timestamp_seconds",
            "When the backup repository last passed a full verification (Unix time).",
            status.verified_at,
        )
        yield _gauge(
            "dchat_backup_snapshots",
            "Snapshots in the repository at that verification.",
            status.snapshots,
        )

    def _filesystem(self) -> Iterator[Metric]:
        """Space on the data directory's filesystem (for a disk-nearly-full alert)."""
        try:
            fs = os.statvfs(self._node.config.data_dir)
        except OSError:
            return
        yield _gauge(
            "dchat_data_filesystem_avail_bytes",
            "Bytes available to the node on its data directory's filesystem.",
            fs.f_bavail * fs.f_frsize,
        )
        yield _gauge(
            "dchat_data_filesystem_size_bytes",
            "Size of the data directory's filesystem.",
            fs.f_blocks * fs.f_frsize,
        )

    def _user(self, role: UserRole) -> Iterator[Metric]:
        user = role.user
        agent, stats = user.agent, user.agent.stats
        sent = {"text": 0, "control": 0} | dict(user.engines.sent)
        yield _by(
            CounterMetricFamily,
            "dchat_messages_sent_total",
            "Messages sent to contacts, by kind (each fans out to one envelope per device).",
            "kind",
            sent,
        )
        yield _counter(
            "dchat_messages_received_total", "New text messages received.", stats.received
        )
        yield _counter(
            "dchat_envelopes_sent_total", "Envelopes a relay confirmed it stored.", agent.sent
        )
        yield _counter(
            "dchat_envelopes_received_total", "Envelopes taken from mailboxes.", stats.envelopes
        )
        refusals = dict(stats.refusals)
        if (other := stats.rejected - sum(refusals.values())) > 0:
            refusals["UnhandledControl"] = other  # control messages of a kind nobody handles
        yield _by(
            CounterMetricFamily,
            "dchat_envelopes_rejected_total",
            "Received envelopes and control messages refused, by reason (error class).",
            "reason",
            refusals,
        )
        yield _gauge(
            "dchat_bot_stranger_slots",
            "Strangers' texts stored that the bot has not taken yet (protocol section 48).",
            agent.strangers.pending_total(),
        )
        yield _counter("dchat_session_resets_total", "Sessions set up again.", stats.session_resets)
        yield _counter(
            "dchat_envelopes_duplicate_total",
            "Copies of envelopes received already (multi-path: via another relay), dropped.",
            stats.duplicates,
        )
        yield from self._outbox(agent.outbox.latency, user.now())
        yield from self._mailbox_links(role)
        yield from _cover(agent.cover.status())

    def _outbox(self, latency: Histogram, now: float) -> Iterator[Metric]:
        stored = self._stored
        yield _gauge(
            "dchat_outbox_envelopes",
            "Envelopes queued for a relay.",
            stored.get("outbox", 0),
        )
        yield _gauge(
            "dchat_outbox_waiting_messages",
            "Messages waiting for a session (a recipient device's prekey bundle).",
            stored.get("waiting", 0),
        )
        oldest = stored.get("oldest")
        yield _gauge(
            "dchat_outbox_oldest_age_seconds",
            "Age of the oldest queued envelope (0 when the outbox is empty).",
            0.0 if oldest is None else max(0.0, now - oldest),
        )
        yield _histogram(
            "dchat_delivery_latency_seconds",
            "Time from a send's enqueue to the relay's stored acknowledgement, per envelope.",
            latency,
        )

    def _mailbox_links(self, role: UserRole) -> Iterator[Metric]:
        links = list(role.user.links.values())
        states = dict.fromkeys(LINK_STATES, 0)
        failures: dict[str, int] = {}
        for link in links:
            states[link.state] = states.get(link.state, 0) + 1
            for kind, n in dict(link.errors).items():
                failures[kind] = failures.get(kind, 0) + n
        yield _by(
            GaugeMetricFamily,
            "dchat_mailbox_links",
            "Standing links to the home relays (one per mailbox drained and relay), by state.",
            "state",
            states,
        )
        yield _by(
            CounterMetricFamily,
            "dchat_mailbox_link_failures_total",
            "Failed attempts of the standing links (dial, handshake, broken link), by error.",
            "kind",
            failures,
        )
        yield _gauge(
            "dchat_deposit_links", "Pooled links for deposits, open now.", role.user.pool.open_links
        )

    def _relay(self, role: RelayRole) -> Iterator[Metric]:
        service, server = role.service, role.service.server
        yield _counter(
            "dchat_relay_envelopes_stored_total", "Envelopes stored (once each).", server.stored
        )
        yield _counter(
            "dchat_relay_stored_bytes_total", "Bytes of the envelopes stored.", server.stored_bytes
        )
        yield _counter(
            "dchat_relay_channel_posts_stored_total",
            "Broadcast channel posts stored (once each, whoever reads them).",
            server.posts_stored,
        )
        yield _counter(
            "dchat_relay_channel_uploads_total",
            "Channel post uploads answered (a post sent again counts again).",
            server.post_uploads,
        )
        yield _counter(
            "dchat_relay_topic_reads_total",
            "Channel topic reads answered (held ones when answered).",
            server.topic_reads,
        )
        yield _counter(
            "dchat_relay_envelopes_delivered_total",
            "Envelopes their mailbox's owner acknowledged (then deleted).",
            server.delivered,
        )
        yield _by(
            CounterMetricFamily,
            "dchat_relay_refusals_total",
            "Requests and deposited envelopes refused, by relay protocol error code.",
            "code",
            dict(server.refusals),
        )
        yield _by(
            CounterMetricFamily,
            "dchat_relay_put_authorizations_total",
            "Deposits by authorization: token, proof, paid, work, free, refused (work asked).",
            "kind",
            dict(server.authorizer.counts),
        )
        yield _gauge(
            "dchat_relay_put_tokens",
            "Put-token hashes registered by all mailboxes.",
            server.authorizer.tokens_held,
        )
        yield _gauge(
            "dchat_relay_contact_ring_keys",
            "Contact-ring keys (section 41) registered by all mailboxes.",
            server.authorizer.rings.keys_held,
        )
        yield _gauge(
            "dchat_relay_mailbox_envelopes",
            "Envelopes held in mailboxes.",
            self._stored.get("entries", 0),
        )
        yield _gauge(
            "dchat_relay_mailbox_bytes",
            "Bytes of the envelopes held in mailboxes.",
            self._stored.get("bytes", 0),
        )
        yield _gauge("dchat_relay_parked_pulls", "Pulls held open until mail.", service.parked)
        yield _counter("dchat_relay_probes_total", "Validators' probes answered.", server.probes)
        receipts = server.receipts
        yield _counter(
            "dchat_relay_receipts_total",
            "Delivery receipts accepted from mailbox owners.",
            0 if receipts is None else receipts.taken,
        )
        yield from _guard(service)
        yield from _listener(service.links)

    def _validator(self, role: ValidatorRole) -> Iterator[Metric]:
        service = role.service
        if service is None:  # keys not unlocked yet
            return
        book, driver = service.book, service.driver
        state = driver.engine.state
        info = GaugeMetricFamily(
            "dchat_chain_info", "The chain this validator runs (always 1).", labels=["chain", "id"]
        )
        info.add_metric([book.app.kind, state.chain_id], 1)
        yield info
        yield _gauge("dchat_chain_height", "Height of the last committed block.", state.height - 1)
        engine = driver.engine
        yield _gauge("dchat_chain_round", "Consensus round of the current height.", engine.round)
        yield _gauge(
            "dchat_chain_validators", "Validators in the set.", len(state.validators.validators)
        )
        yield _gauge(
            "dchat_chain_mempool_transactions", "Transactions waiting.", len(book.app.mempool)
        )
        yield _counter(
            "dchat_chain_evidence_total", "Double signatures seen (evidence).", len(book.evidence)
        )
        yield _counter(
            "dchat_chain_messages_rejected_total",
            "Peer consensus and sync messages refused as invalid.",
            driver.rejected,
        )
        yield _histogram(
            "dchat_chain_commit_latency_seconds",
            "Time from a height's start (after pacing) to its decision.",
            driver.commit_latency,
        )
        yield from self._peers(service.peers)
        yield from _listener(service.links)

    @staticmethod
    def _peers(peers: Sequence[Any]) -> Iterator[Metric]:
        stats = [peer.stats for peer in peers]
        failures: dict[str, int] = {}
        for one in stats:
            for kind, n in dict(one.dial_failures).items():
                failures[kind] = failures.get(kind, 0) + n
        yield _gauge("dchat_chain_peers", "Peer validators configured.", len(stats))
        yield _gauge(
            "dchat_chain_peers_connected",
            "Peer validators with an outbound link up.",
            sum(one.connected for one in stats),
        )
        yield _counter(
            "dchat_chain_peer_messages_dropped_total",
            "Messages to peers dropped because a link's queue was full.",
            sum(one.dropped for one in stats),
        )
        yield _by(
            CounterMetricFamily,
            "dchat_chain_peer_dial_failures_total",
            "Failed dials to peer validators, by error class.",
            "kind",
            failures,
        )


def add_metrics_route(app: FastAPI, node: Node, auth: list[Depends]) -> NodeMetrics:
    """Serve ``GET /metrics`` (behind the token) from a registry of this app's own."""
    registry = CollectorRegistry(auto_describe=False)
    metrics = NodeMetrics(node)
    registry.register(metrics)
    ProcessCollector(registry=registry)

    @app.get("/metrics", dependencies=auth, response_class=Response)
    async def prometheus_metrics() -> Response:
        await metrics.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
