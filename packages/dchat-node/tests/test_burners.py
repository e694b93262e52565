"""Burners between real nodes: a message nobody can link to the sender's main identity."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from dchat_core import IdentityId
from dchat_identity import ContactCard, Identity
from dchat_messaging import SealedEnvelope
from dchat_messaging._wire import open_session_envelope
from dchat_node.cli import app
from dchat_sdk import ApiError
from dchat_storage import open_database
from dchat_testing.pytest_plugin import PASSPHRASE

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_node import NodeProcess

runner = CliRunner()


def _dchat(node: NodeProcess, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _marks(card: ContactCard, *, with_mailbox: bool = True) -> list[bytes]:
    """Every form in which the main identity could show up in stored bytes."""
    raw = [bytes(card.identity_id), card.identity_key.to_bytes(), card.encryption_key.to_bytes()]
    text = [str(card.identity_id), card.to_text()[11:40]]
    if with_mailbox:
        raw.append(bytes(card.mailbox))
        text.append(str(card.mailbox))
    return raw + [r.hex().encode() for r in raw] + [t.encode() for t in text]


def _files(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


def _envelopes(relay: NodeProcess, mailbox: bytes) -> list[bytes]:
    db = open_database(relay.data_dir / "node.db")
    try:
        return [entry.envelope for entry in db.mailboxes.fetch(mailbox)]
    finally:
        db.close()


def _identity(node: NodeProcess) -> Identity:
    db = open_database(node.data_dir / "node.db", passphrase=PASSPHRASE.encode())
    try:
        record = db.identity.get()
        assert record is not None
        return Identity.from_keystore(record.keystore, PASSPHRASE.encode())
    finally:
        db.close()


@pytest.mark.slow
def test_a_burner_message_cannot_be_linked_to_the_main_identity(
    make_user: Callable[[str], NodeProcess], relay: NodeProcess, wait_until: Callable[..., None]
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        alice_id = a.create_identity("alice")
        b.create_identity("bob")
        main = ContactCard.from_text(a.card())
        bob_card = ContactCard.from_text(b.card())
        bob.stop()  # Bob is offline: the relay keeps what the burner sends him

        burner: dict[str, Any] = json.loads(_dchat(alice, "burner", "new", "--ttl", "1h",
                                                   "--name", "anon"))  # fmt: skip
        burner_id, burner_card = burner["burner_id"], ContactCard.from_text(burner["card"])
        assert burner_id != alice_id
        _dchat(alice, "burner", "contact", burner_id, "bob", bob_card.to_text())
        assert "queued" in _dchat(alice, "send", "--as", burner_id, "bob", "guess who")
        wait_until(lambda: a.status()["outbox"] == 0)

        # Nothing the burner published or sent carries the main identity.
        for mark in _marks(main):
            assert mark not in burner_card.to_bytes()
            assert mark not in burner["card"].encode()
        relay.stop()
        stored = _files(relay.data_dir)
        envelopes = _envelopes(relay, bytes(bob_card.mailbox))
        assert len(envelopes) == 2  # the text and the burner's own tag secret (mb.tag)
        # The relay hosts the main identity's mailbox (its prekey bundles wait
        # there, wrapped), so that mailbox id is in its files; nothing that names
        # the identity is: not its id, keys or card.
        for mark in _marks(main, with_mailbox=False):
            assert mark not in stored, "the relay stored bytes of the main identity"
        # Bob's key opens the outer layer: the sender named there is the burner.
        for envelope in envelopes:
            outer = SealedEnvelope.from_bytes(envelope)
            opened = open_session_envelope(outer, _identity(bob).encryption_key)
            assert str(opened.sender) == burner_id
            assert IdentityId.derive(opened.sender_device.to_bytes()) == opened.sender
        relay.start()
        bob.start()

    with alice.client() as a, bob.client() as b:
        # A stranger's message waits as a request, out of the inbox.
        wait_until(lambda: any(m.text == "guess who" for m in b.messages(burner_id)))
        assert [r["identity_id"] for r in b.requests()] == [burner_id]
        assert all(m.text != "guess who" for m in b.messages())
        message = next(m for m in b.messages(burner_id) if m.text == "guess who")
        assert message.peer_id == burner_id
        assert message.peer_id != alice_id
        with pytest.raises(ApiError):  # Bob never received the main identity's document
            b.peer_document(alice_id)
        assert b.status()["rejected"] == 0

        # Bob's reply reaches the burner (on the burner's own rotating tags).
        b.add_contact("anon", burner_card.to_text())
        assert b.requests() == []  # a contact now
        b.send("anon", "who is this?")
        wait_until(lambda: any(m.text == "who is this?" for m in a.messages()))

        # Discarded: the keys are gone and the burner cannot be used.
        _dchat(alice, "burner", "discard", burner_id)
        assert json.loads(_dchat(alice, "burner", "list"))["burners"] == []
        with pytest.raises(ApiError) as gone:
            a.request("POST", f"/v1/burners/{burner_id}/messages", {"to": "bob", "text": "x"})
        assert gone.value.code == "not_found"

        # Expired: discarded by the node, a typed error when used.
        created = a.request("POST", "/v1/burners", {"ttl": 1.0})
        short = created["burner_id"]
        wait_until(lambda: time.time() > created["expires"] + 0.05)
        with pytest.raises(ApiError) as expired:
            a.request("POST", f"/v1/burners/{short}/messages", {"to": "bob", "text": "late"})
        assert (expired.value.code, expired.value.status) == ("burner_expired", 410)
        assert a.request("GET", "/v1/burners")["burners"] == []

        # The creation rate limit (3 at once) holds, and survives a restart.
        kept = a.request("POST", "/v1/burners", {"ttl": 3600.0})["burner_id"]
        with pytest.raises(ApiError) as limited:
            a.request("POST", "/v1/burners", {"ttl": 3600.0})
        assert (limited.value.code, limited.value.status) == ("rate_limited", 429)
    alice.stop()
    alice.start()
    with alice.client() as a:
        assert [x["burner_id"] for x in a.request("GET", "/v1/burners")["burners"]] == [kept]
        with pytest.raises(ApiError) as still:
            a.request("POST", "/v1/burners", {"ttl": 3600.0})
        assert still.value.code == "rate_limited"
        with pytest.raises(ApiError) as bad:
            a.request("POST", "/v1/burners", {"ttl": -1, "extra": 1})
        assert bad.value.status == 422
