"""The pytest plugin every package's tests share (loaded by the repository's conftest.py).

Fixtures:

* Hypothesis runs under the ``dchat`` profile: no per-example deadline (set
  ``HYPOTHESIS_PROFILE`` to choose another).
* ``wait_until``: :func:`dchat_testing.wait_until`, the one way a test waits
  for another process (never a fixed sleep, never a single read).
* ``rng``: a ``random.Random`` seeded from the test's id (same test, same draws).
* ``vectors``: the folder of standard test vectors (``$DCHAT_VECTORS`` or
  ``../shared/vectors`` beside the repository); tests needing it skip, saying
  why, when it is absent.
* Real processes on loopback, always killed afterwards: ``relay`` (a relay
  node), ``make_user`` (user nodes homed on it), ``deposit`` (put an envelope
  straight into a mailbox, as any stranger can), ``crafted`` and
  ``crafted_message`` (genuine engine messages from an identity that has no
  node, for hostile-input tests).
* Shared by a module's tests (for tests whose outcome does not depend on what
  the others did): ``module_relay`` and ``module_carol``.
* ``net``: an :class:`dchat_testing.EngineNet`, messaging engines wired through
  an in-memory relay (a test module's own ``net`` fixture takes precedence).
* PostgreSQL (see :mod:`dchat_storage.testing`): ``pg_server`` (the server's
  URL, from ``DCHAT_TEST_POSTGRES_URL`` or a throwaway server started for the
  session), ``pg_template`` (a database migrated to head), ``pg_url`` (a fresh
  copy of the template per test) and ``pg_empty_url`` (a fresh empty database
  per test). Tests needing them are skipped, with the reason, only when no
  server can be had; with the variable set, an unreachable server is an error.

The run's child processes (node processes, ``dchat`` commands) share compiled
bytecode: see :func:`pytest_configure`. Under xdist the ``slow`` tests start
first, spread over the workers: see :func:`pytest_collection_modifyitems`.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import trio
from hypothesis import HealthCheck, settings

from dchat_core import NodeId
from dchat_crypto import SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import Content, DeviceAddress, DeviceKeys, MessagingEngine, SealedEnvelope
from dchat_messaging.testing import MemoryMessageStore
from dchat_network import RelayClient, connect
from dchat_network.lowlevel import RelayPrekeyBundle
from dchat_node import NodeProcess, free_port
from dchat_storage import open_database
from dchat_storage.testing import PostgresUnavailableError, postgres_database, postgres_server

from ._engine_net import EngineNet
from ._seeded import seeded_random
from ._waiting import wait_until as _wait_until

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Iterator


# Hypothesis checks correctness, not speed: its per-example deadline and the
# "too slow" health check fail tests on a loaded machine (two xdist workers and
# their node processes on two cores) without any bug. Speed is measured by the
# benchmarks instead. A test may still set its own deadline.
settings.register_profile("dchat", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dchat"))

#: The passphrase of every node the fixtures start (random per test session).
PASSPHRASE = secrets.token_urlsafe(12)


def pytest_configure(config: pytest.Config) -> None:
    """Let the processes a test run starts reuse each other's compiled bytecode.

    With ``PYTHONDONTWRITEBYTECODE`` set (as on some CI machines), every node
    process and every ``dchat`` command a test starts compiled the whole node
    from source again: about 2.8 s of CPU of a node's 5 s start, hundreds of
    times a run. The variable exists to keep ``.pyc`` files out of the source
    tree, so the run keeps to that and writes them to a private directory
    outside it (``PYTHONPYCACHEPREFIX``), which the xdist workers and every
    child process inherit. A prefix the user set is kept.
    """
    del config
    if not os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return
    prefix = os.environ.get("PYTHONPYCACHEPREFIX") or _private_pycache()
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = prefix
    sys.dont_write_bytecode = False
    sys.pycache_prefix = prefix


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, put the ``slow`` tests at the head of every worker's share.

    xdist's ``worksteal`` scheduler hands each worker one contiguous slice of
    the collection and lets an idle worker take the second half of another's
    queue. In file order the multi-process modules (each a minute or more)
    sat in the middle and end of the list, so a run often ended with one
    worker alone in a long test. Here each worker's slice begins with whole
    slow modules (alternating between the slices, so module-scoped process
    fixtures stay on one worker) and ends with the quick tests, which are what
    an idle worker steals and what the run finishes on. Outside xdist the
    order is left alone. Every worker computes the same order (xdist checks).
    """
    workers = int(getattr(config, "workerinput", {}).get("workercount", 0))
    if workers < 2:
        return
    items[:] = _slow_first(items, workers)


def _slow_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` reordered so each of ``workers`` slices starts with slow modules."""
    modules: dict[str, list[pytest.Item]] = {}
    quick: list[pytest.Item] = []
    for item in items:
        if item.get_closest_marker("slow") is None:
            quick.append(item)
        else:
            modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    for index, group in enumerate(modules.values()):
        heads[index % workers].extend(group)
    # The slice sizes worksteal cuts: len // workers for the first, and so on.
    ordered: list[pytest.Item] = []
    remaining = len(items)
    for index, head in enumerate(heads):
        size = remaining // (workers - index)
        remaining -= size
        ordered += head
        take = max(0, size - len(head))
        ordered += quick[:take]
        del quick[:take]
    return ordered + quick


def _private_pycache() -> str:
    """``$TMPDIR/dchat-test-pycache-<uid>``, if this user owns it alone; else a fresh one.

    Python trusts what it finds in a bytecode cache, so a directory someone else
    created or can write is never used.
    """
    path = Path(tempfile.gettempdir()) / f"dchat-test-pycache-{os.getuid()}"
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        info = path.lstat()
    except OSError:
        return tempfile.mkdtemp(prefix="dchat-test-pycache-")
    mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
    if mine and not info.st_mode & 0o077:
        return str(path)
    return tempfile.mkdtemp(prefix="dchat-test-pycache-")


@pytest.fixture
def wait_until() -> Callable[..., object]:
    """Poll a predicate until it holds (see :func:`dchat_testing.wait_until`)."""
    return _wait_until


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """A ``random.Random`` seeded from the test's node id."""
    return seeded_random(request.node.nodeid)


def vectors_dir() -> Path:
    """``$DCHAT_VECTORS`` if set, else ``<repo>/../shared/vectors``."""
    override = os.environ.get("DCHAT_VECTORS")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[4].parent / "shared" / "vectors"


@pytest.fixture(scope="session")
def vectors() -> Path:
    """The standard vectors folder; skips (saying where it looked) if absent."""
    path = vectors_dir()
    if not path.is_dir():
        pytest.skip(f"conformance vectors folder not found at {path} (set DCHAT_VECTORS)")
    return path


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[NodeProcess]:
    """A relay node process on a free loopback port."""
    node = NodeProcess(
        tmp_path / "relay", "relay", passphrase=PASSPHRASE, listen=f"127.0.0.1:{free_port()}"
    )
    node.start()
    yield node
    node.kill()


@pytest.fixture(scope="module")
def module_relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A relay node process shared by a module's tests.

    A node's start is seconds of CPU (mostly importing the node); use it where
    a test's outcome does not depend on what the module's other tests did.
    """
    node = NodeProcess(
        tmp_path_factory.mktemp("module-relay") / "relay",
        "relay",
        passphrase=PASSPHRASE,
        listen=f"127.0.0.1:{free_port()}",
    )
    node.start()
    yield node
    node.kill()


def start_user(data_dir: Path, relay: NodeProcess) -> NodeProcess:
    """A user node process homed on ``relay`` (the caller kills it)."""
    node = NodeProcess(
        data_dir, "user", passphrase=PASSPHRASE, relay=relay.info["link"], poll_interval=0.2
    )
    node.start()
    return node


@pytest.fixture
def make_user(tmp_path: Path, relay: NodeProcess) -> Iterator[Callable[[str], NodeProcess]]:
    """Start user node processes homed on ``relay``; all are killed after the test."""
    started: list[NodeProcess] = []

    def make(name: str) -> NodeProcess:
        node = start_user(tmp_path / name, relay)
        started.append(node)
        return node

    yield make
    for node in started:
        node.kill()


@pytest.fixture
def user_pair(make_user: Callable[[str], NodeProcess]) -> tuple[NodeProcess, NodeProcess]:
    """Users ``alice`` and ``bob`` with identities, each the other's contact."""
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
    return alice, bob


@pytest.fixture
def carol(make_user: Callable[[str], NodeProcess]) -> NodeProcess:
    """A user with an identity and a contact ``dave`` (whose relay is never reached)."""
    return _as_carol(make_user("carol"))


@pytest.fixture(scope="module")
def module_carol(
    tmp_path_factory: pytest.TempPathFactory, module_relay: NodeProcess
) -> Iterator[NodeProcess]:
    """``carol`` shared by a module's tests, homed on ``module_relay``.

    Only for tests that hold whatever the others sent or asked before them
    (refusals, framing, answers relative to what was there before).
    """
    node = start_user(tmp_path_factory.mktemp("module-carol") / "carol", module_relay)
    try:
        yield _as_carol(node)
    finally:
        node.kill()


def _as_carol(node: NodeProcess) -> NodeProcess:
    with node.client() as api:
        api.create_identity("carol")
        dave = ContactCard.issue(Identity.generate(), name="dave", relay="127.0.0.1:1")
        api.add_contact("dave", dave.to_text())
    return node


@pytest.fixture
def deposit(relay: NodeProcess) -> Callable[[SealedEnvelope], None]:
    """Put an envelope straight into its mailbox at ``relay``, as any stranger can."""
    host, port = relay.info["link"].rsplit(":", 1)
    pinned = NodeId.parse(relay.info["node_id"])

    def put(envelope: SealedEnvelope) -> None:
        async def run() -> None:
            key = SigningKey.generate()
            link = await connect(host, int(port), node_key=key, expected_peer=pinned)
            try:
                client = RelayClient()
                request = client.put(bytes(envelope.mailbox), envelope.to_bytes())
                client.receive(await link.request(request))
            finally:
                await link.aclose()

        trio.run(run)

    return put


def craft(
    sender: Identity, card: ContactCard, content: Content, *, timeout: float = 20.0
) -> SealedEnvelope:
    """A genuine session message from ``sender`` to ``card``'s primary device.

    It runs the real engine (with an in-memory store) and fetches the
    recipient's prekey bundle from its relay, as any stranger can; the
    recipient's node must have published its prekeys (it does on its first
    mailbox fetch, so this waits until a bundle is there).
    """
    keys = DeviceKeys(
        sender.identity_id, sender.signing_key, sender.encryption_key, sender.mailbox_id
    )
    store = MemoryMessageStore()
    engine = MessagingEngine(keys, store)
    device = DeviceAddress.primary(card)
    engine.send(content, [device], now=time.time())
    host, port = card.relay.rsplit(":", 1)

    async def fetch() -> bytes:
        link = await connect(host, int(port), node_key=SigningKey.generate())
        try:
            client = RelayClient()
            reply = client.receive(await link.request(client.get_prekeys(bytes(card.mailbox))))
            assert isinstance(reply, RelayPrekeyBundle)
            return reply.bundle
        finally:
            await link.aclose()

    bundle = _wait_until(lambda: trio.run(fetch), timeout=timeout, what="a prekey bundle")
    assert isinstance(bundle, bytes)
    engine.bundle_received(device, bundle, now=time.time())
    (entry,) = store.due(float("inf"), 10)
    return SealedEnvelope.from_bytes(entry.envelope)


def craft_control(sender: Identity, card: ContactCard, kind: str, data: bytes) -> SealedEnvelope:
    """A genuine control message (see :func:`craft`)."""
    return craft(sender, card, Content.control(kind, data, now_ms=int(time.time() * 1000)))


@pytest.fixture
def crafted() -> Callable[[Identity, ContactCard, str, bytes], SealedEnvelope]:
    """:func:`craft_control` as a fixture."""
    return craft_control


@pytest.fixture
def crafted_message() -> Callable[[Identity, ContactCard, Content], SealedEnvelope]:
    """:func:`craft` as a fixture."""
    return craft


@pytest.fixture
def net() -> EngineNet:
    """Messaging engines wired through an in-memory relay (see :class:`EngineNet`)."""
    return EngineNet()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server's maintenance database, for the whole session."""
    server = postgres_server()
    try:
        url = server.__enter__()
    except PostgresUnavailableError as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> Iterator[str]:
    """A database migrated to head, copied for each test (faster than migrating each)."""
    with postgres_database(pg_server) as url:
        open_database(url).close()
        yield urlsplit(url).path.lstrip("/")


@pytest.fixture
def pg_url(pg_server: str, pg_template: str) -> Iterator[str]:
    """A fresh database migrated to head (a copy of ``pg_template``), dropped afterwards."""
    with postgres_database(pg_server, template=pg_template) as url:
        yield url


@pytest.fixture
def pg_empty_url(pg_server: str) -> Iterator[str]:
    """A fresh empty database, dropped afterwards."""
    with postgres_database(pg_server) as url:
        yield url
