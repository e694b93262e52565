"""Linking a second device between real node processes, syncing contacts, revoking it.

Both devices have two home relays: pairing and sync items go to each (raw
mailboxes are multi-path), so sync goes on after the first relay dies.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from dchat_identity import ContactCard, Identity
from dchat_node import NodeProcess, free_port
from dchat_node.cli import app
from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dchat_sdk import RemoteClient


def _pairing(client: RemoteClient) -> dict[str, Any]:
    return client.request("GET", "/v1/devices/pairing")


def _state(client: RemoteClient) -> str:
    return str(_pairing(client)["state"])


def _names(client: RemoteClient) -> set[str]:
    return {c.name for c in client.contacts()}


def _stranger_card(relay: NodeProcess, name: str) -> str:
    return ContactCard.issue(Identity.generate(), name=name, relay=relay.info["link"]).to_text()


@pytest.fixture
def second_relay(tmp_path: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(
        tmp_path / "relay-2",
        "relay",
        passphrase=secrets.token_urlsafe(12),
        listen=f"127.0.0.1:{free_port()}",
    )
    node.start()
    yield node
    node.kill()


@pytest.fixture
def make_device(
    tmp_path: Path, relay: NodeProcess, second_relay: NodeProcess
) -> Iterator[Callable[[str], NodeProcess]]:
    """User nodes with two home relays (``relay`` first); killed after the test."""
    started: list[NodeProcess] = []
    homes = f'relays = ["{relay.info["link"]}", "{second_relay.info["link"]}"]'

    def make(name: str) -> NodeProcess:
        (tmp_path / name).mkdir(mode=0o700)
        (tmp_path / name / "dchat.toml").write_text(f"[node]\n{homes}\n")
        node = NodeProcess(
            tmp_path / name, "user", passphrase=secrets.token_urlsafe(12), poll_interval=0.2
        )
        node.start()
        started.append(node)
        return node

    yield make
    for node in started:
        node.kill()


@pytest.mark.slow
def test_link_sync_and_revoke_a_device(
    make_device: Callable[[str], NodeProcess],
    relay: NodeProcess,
    second_relay: NodeProcess,
    wait_until: Callable[..., Any],
) -> None:
    one, two = make_device("phone"), make_device("laptop")
    with one.client() as a1, two.client() as a2:
        alice = a1.create_identity("alice")
        a1.add_contact("bob", _stranger_card(relay, "bob"))  # before any device exists

        # Malformed and wrong codes: typed errors, nothing changes.
        with pytest.raises(ApiError) as bad:
            a2.request("POST", "/v1/devices/join", {"code": "not a code", "name": "laptop"})
        assert (bad.value.status, bad.value.code) == (400, "pairing_code")
        wrong = {"code": "AAAAA-BBBBB", "name": "laptop", "timeout": 1}
        a2.request("POST", "/v1/devices/join", wrong)
        wait_until(lambda: _state(a2) == "failed")
        assert _pairing(a2)["error"]["code"] == "pairing_expired"

        # An expired code: the host refuses the late hello and says so.
        a1.request("POST", "/v1/devices/link", {"ttl": 1})
        expired = wait_until(lambda: (a1.request("GET", "/v1/devices/pairing") or {})["error"])
        assert expired["code"] == "pairing_expired"

        # SAS compared and refused on the new device: both sides fail, nothing linked.
        seq = a1.document()["seq"]
        session = a1.request("POST", "/v1/devices/link", {"ttl": 60})
        a2.request("POST", "/v1/devices/join", {"code": session["code"], "name": "laptop"})
        wait_until(lambda: _state(a1) == "sas" and _state(a2) == "sas")
        a2.request("POST", "/v1/devices/pairing/abort", {"reason": "sas_mismatch"})
        wait_until(lambda: _state(a1) == "failed")
        assert _pairing(a1)["error"]["code"] == "pairing_aborted"
        assert a1.document()["seq"] == seq
        with pytest.raises(ApiError):
            a1.request("POST", "/v1/devices/pairing/confirm")

        # The real link.
        session = a1.request("POST", "/v1/devices/link", {"ttl": 60})
        assert session["qr"].startswith("dchat-pair:")
        a2.request("POST", "/v1/devices/join", {"code": session["code"], "name": "laptop"})
        wait_until(lambda: _state(a1) == "sas" and _state(a2) == "sas")
        assert _pairing(a1)["sas"] == _pairing(a2)["sas"]
        a2.request("POST", "/v1/devices/pairing/confirm")
        a1.request("POST", "/v1/devices/pairing/confirm")
        wait_until(lambda: _state(a2) == "done")

        me = a2.request("GET", "/v1/identity")
        assert (me["identity_id"], me["name"], me["role"]) == (alice, "alice", "linked")
        listed = a1.request("GET", "/v1/devices")["devices"]
        assert sorted(d["name"] for d in listed) == ["laptop", "primary"]
        laptop = next(d for d in listed if d["name"] == "laptop")
        assert laptop["attested"]["keystore"] == "software"
        assert len(a2.request("GET", "/v1/devices")["devices"]) == 2
        shown = CliRunner().invoke(app, ["--data-dir", str(two.data_dir), "id"])
        assert shown.exit_code == 0, shown.output
        assert alice in shown.output
        assert "linked device" in shown.output
        assert "laptop" in shown.output
        listing = CliRunner().invoke(app, ["--data-dir", str(one.data_dir), "device", "list"])
        assert "software" in listing.output  # the laptop's attested (claimed) keystore

        # Contacts flow both ways, including the one added before linking.
        a1.add_contact("carol", _stranger_card(relay, "carol"))
        wait_until(lambda: {"bob", "carol"} <= _names(a2))
        a2.add_contact("dave", _stranger_card(relay, "dave"))
        wait_until(lambda: "dave" in _names(a1))
        a1.request("PUT", "/v1/settings/theme", {"value": "dark"})
        wait_until(
            lambda: a2.request("GET", "/v1/sync")["registers"].get("settings/theme") == "dark"
        )
        # The first home relay dies: sync items went to both, so nothing waits for it.
        relay.kill()
        a1.add_contact("frank", _stranger_card(second_relay, "frank"))
        wait_until(lambda: "frank" in _names(a2))
        a2.add_contact("grace", _stranger_card(second_relay, "grace"))
        wait_until(lambda: "grace" in _names(a1))
        assert a2.request("GET", "/v1/sync")["rejected"] == 0  # copies: handled once

        # Revoked: the laptop's later changes are refused by the phone.
        revoked = a1.request("POST", "/v1/devices/revoke", {"device": "laptop"})
        assert revoked["document_seq"] == a1.document()["seq"]
        assert a1.document()["revoked"] == 1
        a2.add_contact("erin", _stranger_card(relay, "erin"))
        wait_until(lambda: a1.request("GET", "/v1/sync")["last_error"] == "revoked_device")
        assert "erin" not in _names(a1)
        with pytest.raises(ApiError) as gone:
            a1.request("POST", "/v1/devices/revoke", {"device": "laptop"})
        assert gone.value.status == 404
