"""Guardian recovery between real nodes: 3 of 5 guardians give an identity back.

One relay, the owner, a contact, five guardians, a thief and the owner's new
node, all real processes. The thief's attempt is vetoed by the owner's
device; then the owner loses every device and recovers on a new node; the
contact follows the new key and refuses the old one.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import pytest
from typer.testing import CliRunner

from dchat_core import DecodeLimits, IdentityId, canonical_decode
from dchat_crypto import PrivateKey, seal
from dchat_identity import ContactCard, Identity, RecoveryRequest, approve_recovery
from dchat_identity.lowlevel import (
    ApprovalMessage,
    GuardianApproval,
    GuardianShare,
    RequestMessage,
    ShareRelease,
)
from dchat_messaging import Content
from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_sdk import ApiError, RemoteClient
from dchat_storage import open_database
from dchat_testing.pytest_plugin import PASSPHRASE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dchat_messaging import SealedEnvelope

runner = CliRunner()
GUARDIANS = [f"g{i}" for i in range(1, 6)]


def _dchat(node: NodeProcess, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    reply: dict[str, Any] = json.loads(result.output)
    return reply


@pytest.fixture
def start_user(tmp_path: Path, relay: NodeProcess) -> Iterator[Callable[[str], NodeProcess]]:
    started: list[NodeProcess] = []

    def start(name: str) -> NodeProcess:
        data = tmp_path / name
        data.mkdir()
        # A short guardian policy, so the test's time locks are accepted.
        (data / "dchat.toml").write_text("[node]\nguardian_min_lock = 2.0\n")
        node = NodeProcess(
            data, "user", passphrase=PASSPHRASE, relay=relay.info["link"], poll_interval=0.2
        )
        node.start()
        started.append(node)
        return node

    yield start
    for node in started:
        node.kill()


def _stored_identity(node: NodeProcess) -> tuple[Identity, dict[bytes, Any]]:
    """A stopped node's keys and guardian holdings, read from its sealed database."""
    db = open_database(node.data_dir / "node.db", passphrase=PASSPHRASE.encode())
    try:
        record = db.identity.get()
        assert record is not None
        held = db.settings.get("guardian.held")
        identity = Identity.from_keystore(record.keystore, PASSPHRASE.encode())
    finally:
        db.close()
    limits = DecodeLimits(max_size=1 << 20, max_depth=3)
    decoded = {} if held is None else canonical_decode(held, limits)
    return identity, {bytes.fromhex(k): v for k, v in decoded.items()}


def _refusals(client: RemoteClient, kind: str) -> int:
    count: int = client.status()["refusals"].get(kind, 0)
    return count


def _request_at(client: RemoteClient, request_id: str) -> dict[str, Any] | None:
    rows = client.request("GET", "/v1/guardians/requests")["requests"]
    return next((r for r in rows if r["request_id"] == request_id), None)


@pytest.mark.slow
def test_recovery_through_three_of_five_guardians(
    start_user: Callable[[str], NodeProcess],
    relay: NodeProcess,
    deposit: Callable[[SealedEnvelope], None],
    crafted: Callable[[Identity, ContactCard, str, bytes], SealedEnvelope],
    crafted_message: Callable[[Identity, ContactCard, Content], SealedEnvelope],
    wait_until: Callable[..., None],
) -> None:
    with ExitStack() as stack:
        alice, bob = start_user("alice"), start_user("bob")
        guardians = [start_user(name) for name in GUARDIANS]
        a, b = stack.enter_context(alice.client()), stack.enter_context(bob.client())
        gs = [stack.enter_context(g.client()) for g in guardians]
        alice_id = a.create_identity("alice")
        b.create_identity("bob")
        cards = {
            name: (g.create_identity(name), g.card()) for name, g in zip(GUARDIANS, gs, strict=True)
        }
        for name, (_, card) in cards.items():
            a.add_contact(name, card)
        a.add_contact("bob", b.card())
        b.add_contact("alice", a.card())

        # Alice picks 3 of 5 guardians (through the CLI); each gets a share and her new document.
        setup = _dchat(alice, "guardian", "add", *GUARDIANS, "--threshold", "3")
        assert setup["threshold"] == 3
        assert [g["name"] for g in setup["guardians"]] == GUARDIANS
        wait_until(
            lambda: all(len(g.request("GET", "/v1/guardians/held")["held"]) == 1 for g in gs)
        )
        wait_until(lambda: all(g.peer_document(alice_id)["seq"] == 2 for g in gs))
        assert gs[0].request("GET", "/v1/guardians/held")["held"][0]["subject"] == alice_id

        # A thief asks the guardians for Alice's identity; Alice's phone still works and vetoes.
        mallory = start_user("mallory")
        m = stack.enter_context(mallory.client())
        for name, (_, card) in cards.items():
            m.add_contact(name, card)
        body = {"subject": alice_id, "guardians": GUARDIANS, "lock": 30.0, "name": "alice"}
        m.request("POST", "/v1/recovery", body)
        wait_until(lambda: m.request("GET", "/v1/recovery")["state"] == "time_locked")
        stolen = m.request("GET", "/v1/recovery")["request_id"]
        wait_until(lambda: len(a.request("GET", "/v1/guardians")["alerts"]) == 1)
        assert a.request("GET", "/v1/guardians")["alerts"][0]["request_id"] == stolen
        _dchat(alice, "guardian", "veto", stolen)
        wait_until(lambda: m.request("GET", "/v1/recovery")["state"] == "vetoed")
        wait_until(
            lambda: all((_request_at(g, stolen) or {}).get("status") == "vetoed" for g in gs)
        )
        with pytest.raises(ApiError) as vetoed:
            gs[0].request("POST", f"/v1/guardians/requests/{stolen}/approve")
        assert vetoed.value.code == "vetoed"
        with pytest.raises(ApiError) as refused:
            m.request("POST", "/v1/recovery/finish")
        assert refused.value.code == "vetoed"
        mallory.kill()

        # Alice loses every device. On a new node she names her guardians again.
        alice.kill()
        alice2 = start_user("alice-new")
        a2 = stack.enter_context(alice2.client())
        for name, (_, card) in cards.items():
            a2.add_contact(name, card)
        guardian_flags = [arg for name in GUARDIANS for arg in ("--guardian", name)]
        _dchat(alice2, "guardian", "recover", "start", "--subject", alice_id, *guardian_flags,
               "--lock", "6s", "--name", "alice")  # fmt: skip
        wait_until(lambda: a2.request("GET", "/v1/recovery")["state"] == "time_locked")
        status = a2.request("GET", "/v1/recovery")
        request_id = status["request_id"]
        assert status["threshold"] == 3
        assert status["subject"] == alice_id
        wait_until(lambda: all(_request_at(g, request_id) is not None for g in gs))

        # A replayed request is refused and changes nothing.
        row = _request_at(gs[0], request_id)
        assert row is not None
        g1_card = ContactCard.from_text(cards["g1"][1])
        a2_card = ContactCard.from_text(a2.card())
        request = RecoveryRequest.from_bytes(bytes.fromhex(row["request"]))
        # Only the replay check runs first, so any sender can attempt it.
        envelope = crafted(
            Identity.generate(), g1_card, "guardian.request",
            RequestMessage(request, a2_card).to_bytes(),
        )  # fmt: skip
        before = _refusals(gs[0], "ReplayedRecoveryError")
        deposit(envelope)
        wait_until(lambda: _refusals(gs[0], "ReplayedRecoveryError") == before + 1)
        assert len(gs[0].request("GET", "/v1/guardians/requests")["requests"]) == 2

        # Two guardians approve: M-1 approvals cannot recover, even after the lock.
        _dchat(guardians[0], "guardian", "approve", request_id)
        gs[1].request("POST", f"/v1/guardians/requests/{request_id}/approve")
        with pytest.raises(ApiError) as again:
            gs[0].request("POST", f"/v1/guardians/requests/{request_id}/approve")
        assert again.value.code == "already_approved"
        # 60 s: once (CI run 5 of session 12, 8 node processes on 2 loaded cores) the two
        # approvals had not reached alice's new node within 20 s. One cause was found in
        # session 15: two approvals handled at once each started from the same stored
        # state and one was lost (the shells now take one step at a time,
        # test_guardian_steps.py); the longer wait stays for a loaded machine.
        wait_until(lambda: a2.request("GET", "/v1/recovery")["approvals"] == 2, timeout=60)
        wait_until(lambda: time.time() >= status["not_before"] + 0.2)
        with pytest.raises(ApiError) as short:
            a2.request("POST", "/v1/recovery/finish")
        assert short.value.code == "not_enough_approvals"
        assert a2.request("GET", "/v1/recovery")["state"] == "approving"

        # A forged approval (not a guardian's signature) is refused.
        forged = GuardianApproval(bytes.fromhex(request_id), 2, int(time.time() * 1000), bytes(64))
        envelope = crafted(
            Identity.generate(), a2_card, "guardian.approval",
            ApprovalMessage(forged, ShareRelease(2, bytes(80))).to_bytes(),
        )  # fmt: skip
        deposit(envelope)
        wait_until(lambda: _refusals(a2, "ForgedRecordError") == 1)

        # Guardian 4's genuine approval with a share sealed to the wrong key is refused.
        guardians[3].kill()
        g4, held = _stored_identity(guardians[3])
        share = GuardianShare.from_bytes(held[bytes(IdentityId.parse(alice_id))][0])
        approval, release = approve_recovery(g4, share, request, now=time.time())
        stranger = PrivateKey.generate().public_key
        wrong = ShareRelease(release.index, seal(stranger, b"not the share", context=b"x"))
        envelope = crafted(
            g4, a2_card, "guardian.approval", ApprovalMessage(approval, wrong).to_bytes()
        )
        deposit(envelope)
        wait_until(lambda: _refusals(a2, "InvalidShareError") == 1)
        assert a2.request("GET", "/v1/recovery")["approvals"] == 2

        # The third guardian approves; guardian 4's genuine approval is replayed and refused.
        gs[2].request("POST", f"/v1/guardians/requests/{request_id}/approve")
        wait_until(lambda: a2.request("GET", "/v1/recovery")["approvals"] == 3)
        good = ApprovalMessage(approval, release).to_bytes()
        for _ in range(2):
            envelope = crafted(g4, a2_card, "guardian.approval", good)
            deposit(envelope)
        wait_until(lambda: _refusals(a2, "ReplayedRecoveryError") == 1)
        assert a2.request("GET", "/v1/recovery")["approvals"] == 4

        # Finish: the new node is Alice (same subject, new key, continued chain).
        assert _dchat(alice2, "guardian", "recover", "finish")["state"] == "done"
        doc = a2.document()
        assert (doc["subject"], doc["seq"], doc["recovered"]) == (alice_id, 3, True)
        assert doc["identity_key"] == a2_card.identity_key.to_bytes().hex()

        # Bob, whom Alice adds again, follows the new key: same contact, new card.
        a2.add_contact("bob", b.card())
        wait_until(lambda: b.peer_document(alice_id)["seq"] == 3)
        assert [(c.name, c.identity_id) for c in b.contacts()] == [
            ("alice", str(a2_card.identity_id))
        ]
        a2.send("bob", "it is me, on a new phone")
        wait_until(lambda: any(m.text == "it is me, on a new phone" for m in b.messages()))
        assert next(m for m in b.messages() if m.text.startswith("it is me")).peer_name == "alice"

        # The old key (in a thief's hands) is refused by Bob from now on.
        old, _ = _stored_identity(alice)
        assert str(old.identity_id) == alice_id
        bob_card = ContactCard.from_text(b.card())
        money = Content.text_message("send me money", now_ms=int(time.time() * 1000))
        envelope = crafted_message(old, bob_card, money)
        deposit(envelope)
        wait_until(lambda: b.status()["rejected_retired"] == 1)
        assert all(m.text != "send me money" for m in b.messages())
        # The guardians followed the rotation too, and dropped the now useless share.
        wait_until(
            lambda: all(g.peer_document(alice_id)["seq"] == 3 for g in (gs[0], gs[1], gs[2]))
        )
        assert gs[0].request("GET", "/v1/guardians/held")["held"] == []
