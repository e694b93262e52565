"""Real processes on PostgreSQL: a relay and two users, one database each.

Each node gets a fresh database on the test server (``DCHAT_TEST_POSTGRES_URL``,
which ``.ci/run`` sets; dropped afterwards). Messages go both ways, nodes are
restarted (the relay killed), and nothing is lost, neither in the messages nor
in the event log; the user databases hold no plaintext (the at-rest sealing
works on PostgreSQL too) and the log no password; a second node on a database
in use is refused with one line. Without a server the test skips, but
not under ``CI=true``: CI must run it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from dchat_node import DchatNodeError, NodeProcess
from dchat_node.cli._process import free_port
from dchat_storage.testing import PostgresUnavailableError, postgres_database, postgres_server
from dchat_testing import wait_until
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow

TO_BOB = "the ledger is in the second drawer, under the atlas"
TO_ALICE = "found it; the atlas was a clever touch"
WHILE_AWAY = "sent while bob's node was down and the relay restarted"
SECRET = "pw-that-must-not-leak"


@pytest.fixture
def databases() -> Iterator[Callable[[], str]]:
    """Make fresh PostgreSQL databases (one per node); all dropped at the end."""
    with ExitStack() as stack:
        try:
            server = stack.enter_context(postgres_server())
        except PostgresUnavailableError as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI needs PostgreSQL for the node tests: {exc}")
            pytest.skip(f"no PostgreSQL server: {exc}")

        def make() -> str:
            return stack.enter_context(postgres_database(server))

        yield make


def _texts(node: NodeProcess, direction: str) -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages() if m.direction == direction]


def _outbox(node: NodeProcess) -> int:
    with node.client() as client:
        return int(client.status()["outbox"])


def _dump(url: str) -> bytes:
    """Every row of every table of the database at ``url``, as text."""
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
        rows = [
            str(row).encode()
            for (table,) in tables
            for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()
        ]
    return b"\n".join(rows)


def _relay(data_dir: Path, database_url: str) -> NodeProcess:
    listen = f"127.0.0.1:{free_port()}"
    return NodeProcess(
        data_dir, "relay", passphrase=PASSPHRASE, listen=listen, database_url=database_url
    )


def test_relay_and_users_on_postgresql_lose_nothing_across_restarts(
    tmp_path: Path, databases: Callable[[], str]
) -> None:
    urls = {name: databases() for name in ("relay", "alice", "bob")}
    # The test server trusts loopback, so a password is ignored: it must still never be shown.
    urls["alice"] = make_url(urls["alice"]).set(password=SECRET).render_as_string(False)
    relay = _relay(tmp_path / "relay", urls["relay"])
    with ExitStack() as running:
        running.callback(relay.kill)
        relay.start()
        users = {}
        for name in ("alice", "bob"):
            node = NodeProcess(
                tmp_path / name,
                "user",
                passphrase=PASSPHRASE,
                relay=relay.info["link"],
                poll_interval=0.2,
                database_url=urls[name],
            )
            running.callback(node.kill)
            node.start()
            users[name] = node
        alice, bob = users["alice"], users["bob"]
        with alice.client() as a, bob.client() as b:
            a.create_identity("alice")
            b.create_identity("bob")
            a.add_contact("bob", b.card())
            b.add_contact("alice", a.card())
            wait_until(lambda: _outbox(alice) == _outbox(bob) == 0, what="documents delivered")
            a.send("bob", TO_BOB)
            wait_until(lambda: _texts(bob, "in") == [TO_BOB], what="alice -> bob")
            b.send("alice", TO_ALICE)
            wait_until(lambda: _texts(alice, "in") == [TO_ALICE], what="bob -> alice")

        # The databases are on the server, not in the data directories.
        assert not any((tmp_path / name / "node.db").exists() for name in urls)

        bob.stop()
        with alice.client() as a:
            a.send("bob", WHILE_AWAY)
        wait_until(lambda: _outbox(alice) == 0, what="the relay stored it durably")
        relay.kill()  # SIGKILL: whatever it acknowledged must be in PostgreSQL
        relay.start()
        alice.stop()
        alice.start()
        bob.start()
        wait_until(lambda: _texts(bob, "in") == [TO_BOB, WHILE_AWAY], what="delivered after")
        with relay.client() as r:
            wait_until(lambda: r.status()["mailbox_entries"] == 0, what="acknowledged")
        assert _texts(alice, "in") == [TO_ALICE]
        assert _texts(alice, "out") == [TO_BOB, WHILE_AWAY]
        assert _texts(bob, "out") == [TO_ALICE]
        with bob.client() as b:  # the event log, a table of the same database, kept it all
            events, _ = b.event_page(after=0, limit=100)
        received = [e.message for e in events if e.kind == "message" and e.message is not None]
        assert [m.text for m in received if m.direction == "in"] == [TO_BOB, WHILE_AWAY]

        # Sealed at rest on PostgreSQL too: no plaintext in any row of a user's database.
        for name in ("alice", "bob"):
            rows = _dump(urls[name])
            for text in (TO_BOB, TO_ALICE, WHILE_AWAY):
                assert text.encode() not in rows
                assert text.encode().hex().encode() not in rows

        log = (tmp_path / "alice" / "node.log").read_text()
        assert "database open" in log
        assert ":***@" in log
        assert SECRET not in log

        # A second node on a database in use is refused with one line.
        intruder = _relay(tmp_path / "intruder", urls["relay"])
        running.callback(intruder.kill)
        with pytest.raises(DchatNodeError, match="exited early") as caught:
            intruder.start()
        assert "another node is using the database" in str(caught.value)
        assert "Traceback" not in str(caught.value)
        with relay.client() as r:
            assert r.status()["mailbox_entries"] == 0  # the first relay runs on
