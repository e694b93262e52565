"""Recovery phrases: new identity from one, restore on a fresh node, document from contacts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from typer.testing import CliRunner

from dchat_identity import ContactCard, Identity, IdentityArgumentError, IdentityDocument
from dchat_node.cli import app
from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dchat_messaging import SealedEnvelope
    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

runner = CliRunner()


def _dchat(node: NodeProcess, *args: str) -> str:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _seq(client: RemoteClient, identity_id: str) -> int | None:
    try:
        return int(client.peer_document(identity_id)["seq"])
    except ApiError:
        return None


def _own_seq(client: RemoteClient) -> int | None:
    try:
        return int(client.document()["seq"])
    except ApiError:
        return None


def _bad_checksum(phrase: str) -> str:
    """``phrase`` with another last word whose checksum fails (one in 256 would pass)."""
    head = phrase.split()[:-1]
    for word in ("zoo", "zone", "zero", "wrap", "abandon"):
        candidate = " ".join([*head, word])
        try:
            Identity.from_phrase(candidate)
        except IdentityArgumentError:
            return candidate
    raise AssertionError("five last words in a row passed the checksum")


@pytest.mark.slow
def test_restore_from_phrase_continues_the_document_chain(
    make_user: Callable[[str], NodeProcess],
    deposit: Callable[[SealedEnvelope], None],
    crafted: Callable[[Identity, ContactCard, str, bytes], SealedEnvelope],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    out = _dchat(alice, "init", "--name", "alice", "--phrase")
    words = re.search(r"shown once.*?\n\s+((?:[a-z]+ ){23}[a-z]+)", out, re.S)
    assert words is not None, out
    phrase = words.group(1)
    with alice.client() as a, bob.client() as b:
        alice_id = a.status()["identity_id"]
        assert alice_id == str(Identity.from_phrase(phrase).identity_id)
        b.create_identity("bob")
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())
        wait_until(lambda: _seq(b, alice_id) == 1)
        a.request("PUT", "/v1/profile", {"display_name": "Alice", "visibility": "public"})
        wait_until(lambda: _seq(b, alice_id) == 2)
        bob_card = b.card()
    alice.kill()  # every device of alice is gone; the phrase is not

    fresh = make_user("alice-again")
    with fresh.client() as f, bob.client() as b:
        for body, status in [
            ({"name": "x", "restore_phrase": phrase.replace("abandon", "zoo") + " zoo"}, 400),
            ({"name": "x", "restore_phrase": _bad_checksum(phrase)}, 400),
            ({"name": "x", "restore_phrase": phrase, "recovery_phrase": True}, 422),
        ]:
            with pytest.raises(ApiError) as bad:
                f.request("POST", "/v1/identity", body)
            assert bad.value.status == status
        assert f.status()["identity_id"] is None  # nothing was created by the bad calls

        phrase_file = tmp_path / "phrase.txt"
        phrase_file.write_text(phrase.upper() + "\n")  # BIP-39 normalises case and spaces
        _dchat(fresh, "init", "--name", "alice", "--restore", "--phrase-file", str(phrase_file))
        assert f.status()["identity_id"] == alice_id
        assert "restored from its phrase" in _dchat(fresh, "id")
        with pytest.raises(ApiError):
            f.document()  # no made-up version 1: it would fork what contacts hold

        f.add_contact("bob", bob_card)
        # A stranger's answer with a document of another key changes nothing.
        other = Identity.generate()
        forged = IdentityDocument.genesis(
            other.signing_key, other.encryption_key.public_key, now=1.8e9
        )
        rejected = f.status()["rejected"]
        deposit(
            crafted(
                Identity.generate(),
                ContactCard.from_text(f.card()),
                "identity.head",
                forged.to_bytes(),
            )
        )
        wait_until(lambda: f.status()["rejected"] > rejected)
        # A stranger cannot ask Bob for Alice's document.
        rejected = b.status()["rejected"]
        deposit(
            crafted(
                Identity.generate(),
                ContactCard.from_text(bob_card),
                "identity.lookup",
                b"\xa1av\x01",
            )
        )
        wait_until(lambda: b.status()["rejected"] > rejected)

        assert "asked 1 contact" in _dchat(fresh, "resync", "bob")
        wait_until(lambda: _own_seq(f) == 2)
        assert f.request("GET", "/v1/identity")["restoring"] is False

        # The restored node continues the chain: Bob accepts version 3.
        f.request("PUT", "/v1/profile", {"bio": "back again", "visibility": "contacts"})
        wait_until(lambda: _seq(b, alice_id) == 3)
        assert f.document()["seq"] == 3
