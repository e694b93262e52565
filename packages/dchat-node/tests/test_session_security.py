"""Security of the message path against a full compromise, with real processes.

(The post-quantum and deniability tests reach into private modules on
purpose: they play an attacker, or Bob, who uses every byte he holds.)

Each test records what an attacker can record (the envelopes a relay stores),
then hands the attacker a copy of the victim's whole data directory and its
passphrase, and tries to open the recorded envelopes with *everything* in it:
the identity keys, every stored session (current and previous), and the
prekey secrets, through the same engine the node runs (which tries each of
them). Before the messaging engine, messages were sealed to the long-term key
and every one of these envelopes opened.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dchat_core import IdentityId
from dchat_crypto import PrivateKey, PublicKey, RatchetSession, VerifyKey, XWingPrivateKey
from dchat_crypto import _xwing as xwing
from dchat_crypto._ratchet_state import ChainState, SkippedKeys
from dchat_identity import ContactCard, Identity
from dchat_messaging import (
    Content,
    DeviceKeys,
    MessageReceived,
    MessagingEngine,
    SealedEnvelope,
)
from dchat_messaging._sessions import SessionRecord
from dchat_messaging._wire import SessionEnvelope, seal_session_envelope
from dchat_node import NodeProcess
from dchat_storage import Database, EngineStore, open_database
from dchat_testing.pytest_plugin import PASSPHRASE

pytestmark = pytest.mark.slow


def _texts(node: NodeProcess, direction: str = "in") -> list[str]:
    with node.client() as client:
        return [m.text for m in client.messages() if m.direction == direction]


def _stored(relay: NodeProcess) -> list[bytes]:
    """Every envelope the relay stores, whatever mailbox or rotating tag it is under.

    The attacker records all of them: a contact's mail goes to tags that change
    every epoch (protocol section 38), not to the published mailbox.
    """
    uri = f"file:{relay.data_dir / 'node.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = db.execute("SELECT envelope FROM mailbox_entries ORDER BY seq")
        return [bytes(envelope) for (envelope,) in rows]


def _steal(node: NodeProcess, where: Path) -> Path:
    """A copy of the node's whole data directory, taken while it is stopped."""
    node.stop()
    shutil.copytree(node.data_dir, where)
    node.start()
    return where


@contextlib.contextmanager
def _engine_of(stolen: Path) -> Iterator[tuple[Database, Identity, MessagingEngine]]:
    """The engine a node would run, over a copied data directory and its passphrase."""
    db = open_database(stolen / "node.db", passphrase=PASSPHRASE.encode())
    try:
        record = db.identity.get()
        assert record is not None
        me = Identity.from_keystore(record.keystore, PASSPHRASE.encode())
        card = ContactCard.from_bytes(record.card)
        keys = DeviceKeys(me.identity_id, me.signing_key, me.encryption_key, me.mailbox_id, card)
        yield db, me, MessagingEngine(keys, EngineStore(db), namespace=f"msg.{me.identity_id}")
    finally:
        db.close()


def _attacker_opens(stolen: Path, envelopes: list[bytes]) -> list[str]:
    """What the thief reads from ``envelopes`` with everything in ``stolen``.

    A contact's mail is addressed to a rotating tag (protocol section 38); the
    seal binds the published mailbox, so the thief, who knows it, readdresses
    each envelope there first (as the node does for the tags it watches).
    """
    with _engine_of(stolen) as (db, me, engine):
        read: list[str] = []
        for raw in envelopes:
            sealed = SealedEnvelope(me.mailbox_id, SealedEnvelope.from_bytes(raw).ciphertext)
            events = engine.receive(sealed.to_bytes(), now=time.time())
            read.extend(
                e.text for e in events if isinstance(e, MessageReceived) and e.kind == "text"
            )
        assert [m.body for m in db.messages.list(None, 1000) if m.body in read] == read
        return read


def test_forward_secrecy_recorded_envelopes_stay_closed_after_full_compromise(
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    alice, bob = user_pair
    wait_until(lambda: len(_texts(bob, "in")) == 0 and _stored(relay) == [])
    bob.stop()
    secrets = [f"secret {i}: the vault code is {1000 + i}" for i in range(3)]
    with alice.client() as a:
        for text in secrets:
            a.send("bob", text)
        wait_until(lambda: a.status()["outbox"] == 0)
    recorded = _stored(relay)
    assert len(recorded) >= 3  # the texts (and the controls the first mail carries)
    bob.start()
    wait_until(lambda: _texts(bob) == secrets)
    wait_until(lambda: _stored(relay) == [])

    stolen = _steal(bob, tmp_path / "stolen")
    assert _attacker_opens(stolen, recorded) == []


def test_post_compromise_security_heals_after_both_sides_write(
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    alice, bob = user_pair
    with alice.client() as a, bob.client() as b:
        a.send("bob", "before the theft")
        wait_until(lambda: _texts(bob) == ["before the theft"])
    stolen = _steal(bob, tmp_path / "stolen")

    # Without healing, the thief reads the next message on the stolen chain
    # (this is what the test below must stop being true).
    bob.stop()
    with alice.client() as a:
        a.send("bob", "right after the theft")
        wait_until(lambda: a.status()["outbox"] == 0)
    early = _stored(relay)
    assert _attacker_opens(tmp_path / "stolen", early) == ["right after the theft"]
    bob.start()
    wait_until(lambda: "right after the theft" in _texts(bob))

    with alice.client() as a, bob.client() as b:
        for i in range(3):
            b.send("alice", f"bob {i}")
            wait_until(lambda i=i: f"bob {i}" in _texts(alice))
            a.send("bob", f"alice {i}")
            wait_until(lambda i=i: f"alice {i}" in _texts(bob))
    bob.stop()
    with alice.client() as a:
        a.send("bob", "after healing")
        wait_until(lambda: a.status()["outbox"] == 0)
    # The message, and perhaps alice's delivery receipt for "bob 2" (receipts after
    # the first of a burst are held up to a second, so it may land after bob stopped):
    # the thief opens none of them.
    late = _stored(relay)
    assert 1 <= len(late) <= 2
    assert _attacker_opens(shutil.copytree(stolen, tmp_path / "stolen2"), late) == []
    bob.start()
    wait_until(lambda: "after healing" in _texts(bob))


def _copy(path: Path, where: Path) -> Path:
    return Path(shutil.copytree(path, where))


def _wait_for_prekeys(relay: NodeProcess, mailbox: bytes, wait_until: Callable[..., None]) -> None:
    def published() -> bool:
        db = open_database(relay.data_dir / "node.db")
        try:
            return db.prekeys.count_prekeys(mailbox) > 0
        finally:
            db.close()

    wait_until(published)


def test_post_quantum_first_messages_need_ml_kem_not_just_x25519(
    relay: NodeProcess,
    make_user: Callable[[str], NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Harvest now, decrypt later: the attacker knows every X25519 secret, not ML-KEM's.

    The first message of a session is set up to Bob's prekeys. The attacker
    records it, later steals Bob's whole data directory *before* Bob read it
    (so every prekey is still there) and, as a quantum computer would, knows
    every X25519 output; only the ML-KEM-768 half of the X-Wing secret is
    replaced by a value the attacker could know. That is not enough to open
    it; with the real X-Wing decapsulation the same stolen state does open it
    (so the test can fail).
    """
    alice, bob = make_user("alice"), make_user("bob")
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        card = b.card()
    mailbox = bytes(ContactCard.from_text(card).mailbox)
    _wait_for_prekeys(relay, mailbox, wait_until)
    bob.stop()
    with alice.client() as a:
        a.add_contact("bob", card)  # the document goes first, then the text: both set up
        a.send("bob", "harvest now, decrypt later")
        wait_until(lambda: a.status()["outbox"] == 0)
    # The document, the text and (with the first mail) a put token: all out (outbox 0).
    wait_until(lambda: len(_stored(relay)) >= 2)
    recorded = _stored(relay)
    stolen = _copy(bob.data_dir, tmp_path / "stolen")

    def x25519_only(self: XWingPrivateKey, ciphertext: bytes) -> bytes:
        ct_x = ciphertext[xwing._MLKEM_CIPHERTEXT :]
        ss_x = self._x25519.exchange(PublicKey(ct_x))
        pk_x = self._public.to_bytes()[xwing._MLKEM_PUBLIC :]
        return xwing._combine(bytes(32), ss_x, ct_x, pk_x)  # ML-KEM half: a known value

    with monkeypatch.context() as patch:
        patch.setattr(XWingPrivateKey, "decapsulate", x25519_only)
        assert _attacker_opens(stolen, recorded) == []
    assert "harvest now, decrypt later" in _attacker_opens(stolen, recorded)


def test_deniability_what_bob_stores_lets_bob_write_as_alice(
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    wait_until: Callable[..., None],
    tmp_path: Path,
) -> None:
    """Nothing Bob keeps proves to anyone else that Alice wrote a message.

    What this checks: (1) no message carries a signature (the content has no
    signature field; the only signed things are the card and the identity
    document, which say nothing about any message); (2) using only what Bob's
    data directory holds after receiving Alice's messages, Bob writes a
    message of his own choosing that his node opens, authenticates and stores
    exactly like one from Alice. A transcript Bob shows a third party is
    therefore no proof. Before the engine, each message carried Alice's
    Ed25519 signature over its text, which Bob could not produce.
    """
    alice, bob = user_pair
    with alice.client() as a:
        a.send("bob", "see you at nine")
    wait_until(lambda: _texts(bob) == ["see you at nine"])
    with alice.client() as a:
        alice_id = a.request("GET", "/v1/identity")["identity_id"]
    stolen = _steal(bob, tmp_path / "bob-stolen")

    with _engine_of(stolen) as (db, me, engine):
        store = EngineStore(db)
        namespace = f"msg.{me.identity_id}"
        sender = IdentityId.parse(alice_id)
        alice_key = next(
            VerifyKey.from_bytes(c.identity_key.to_bytes())
            for c in (ContactCard.from_bytes(r.card) for r in db.contacts.list())
            if c.identity_id == sender
        )
        key = f"{namespace}.sess.{alice_key.to_bytes().hex()}"
        stored = store.get_state(key)
        assert stored is not None
        record = SessionRecord.from_bytes(stored)
        # The session Alice wrote on (if both set one up at once, it may be either).
        session = next(s.ratchet for s in record.slots() if s.ratchet._state.ckr is not None)
        state = session._state  # Bob's view of Alice's sending chain
        assert state.ckr is not None
        assert state.hkr is not None
        assert state.dhr is not None
        as_alice = ChainState(
            dhs=PrivateKey.generate(), dhs_public=state.dhr.to_bytes(), dhr=None, rk=state.rk,
            cks=state.ckr, ckr=None, hks=state.hkr, hkr=None, nhks=state.nhkr,
            nhkr=state.nhks, ns=state.nr, nr=0, pn=0, sending_since=2e9, reply_needed=False,
        )  # fmt: skip
        forger = RatchetSession(as_alice, SkippedKeys(10), session.policy, session._ad_prime)
        text = "I owe Bob 1,000,000"
        content = Content.text_message(text, now_ms=2_000_000_000_000)
        message = forger.encrypt(content.to_padded(), now=2e9)
        inner = SessionEnvelope(sender, alice_key, None, message)
        forged = seal_session_envelope(
            inner, mailbox=me.mailbox_id, device_key=me.encryption_key.public_key
        )
        events = engine.receive(forged.to_bytes(), now=time.time())
        (event,) = events
        assert isinstance(event, MessageReceived)
        assert event.sender == sender
        assert event.text == text
        rows = {m.body: m for m in db.messages.list(None, 100)}
        real, fake = rows["see you at nine"], rows[text]
        assert (real.direction, real.peer_id) == (fake.direction, fake.peer_id) == ("in", alice_id)
