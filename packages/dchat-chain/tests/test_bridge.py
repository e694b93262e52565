"""Cross-chain actions: a relay listed on chat exactly when its stake is bonded on currency.

Both chains are the real applications, advanced by blocks whose certificates
four in-test validators per chain sign; every proof crosses over through the
embedded light clients, as it would between two networks.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dchat_chain import ChatChainApp, CurrencyChainApp, LightClient, Transaction, TxResult
from dchat_chain._bridge import DONE, LOCKED, REFUNDED, claim_key, lock_id, lock_key
from dchat_chain._bridge_headers import CLIENT_KEY
from dchat_chain._consensus_sim import genesis_keys
from dchat_chain._light_sim import SignedChain, validator_set_of
from dchat_chain.lowlevel import decode_relay_index, decode_relay_listing
from dchat_core import IdentityId, canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey

CUR_BLS = [BlsSecretKey.from_seed(bytes([110 + i]) * 32) for i in range(4)]
CUR_VALIDATORS = [SigningKey(bytes([120 + i]) * 32) for i in range(4)]
CHAT_BLS, CHAT_SET = genesis_keys(4)
OWNER = SigningKey(b"\x51" * 32)  # currency account of the relay operator
RELAY = SigningKey(b"\x52" * 32)  # the operator's chat identity key
OTHER = SigningKey(b"\x53" * 32)  # another chat identity (owner of the decoy lock)
RELAYER = SigningKey(b"\x54" * 32)  # carries proofs between the chains; anyone could
PK = {k: k.public_key.to_bytes() for k in (OWNER, RELAY, OTHER, RELAYER)}
ID = {k: bytes(IdentityId.derive(PK[k])) for k in (RELAY, OTHER)}
SECRET = b"\x77" * 32
STAKE = 500
BALANCE = 10_000


def currency_genesis() -> bytes:
    validators = [
        [k.public_key.to_bytes(), b.public_key.to_bytes(), b.prove_possession().to_bytes(), 100]
        for k, b in zip(CUR_VALIDATORS, CUR_BLS, strict=True)
    ]
    doc = {
        "v": 1,
        "kind": "currency",
        "chain_id": "cur",
        "accounts": [[PK[OWNER], BALANCE], [PK[RELAYER], BALANCE]],
        "validators": validators,
        "bridge": {"chain": "chat", "validators": CHAT_SET.to_bytes()},
    }
    return canonical_encode(doc)


def chat_genesis(currency_set: bytes) -> bytes:
    doc = {
        "v": 1,
        "kind": "chat",
        "chain_id": "chat",
        "params": {"pow_bits": 0},
        "bridge": {"chain": "cur", "validators": currency_set},
    }
    return canonical_encode(doc)


class World:
    """Two certified chains, the relay operator, a relayer and one (plus a decoy) lock."""

    def __init__(self) -> None:
        cur_app = CurrencyChainApp.from_genesis(currency_genesis())
        cur_set = validator_set_of(cur_app.initial_validators())
        self.cur = SignedChain("cur", cur_app, cur_set, CUR_BLS)
        chat_app = ChatChainApp.from_genesis(chat_genesis(cur_set.to_bytes()))
        self.chat = SignedChain("chat", chat_app, CHAT_SET, CHAT_BLS)
        self.nonces: dict[tuple[str, bytes], int] = {}
        self.lock = lock_id("cur", PK[OWNER], 1)
        self.decoy = lock_id("cur", PK[OWNER], 0)
        self.deadline = 0
        self.stale: tuple[bytes, bytes, int] | None = None
        for key in (RELAY, OTHER):
            body = {"pow": b"", "doc": bytes(32)}
            assert self.send(self.chat, key, "register_identity", body).code == 0
        # A decoy lock for another identity: proofs of it must never list our relay.
        assert self.send(self.cur, OWNER, "xlock", self.lock_body(ID[OTHER], 1000)).code == 0

    # -- plumbing ---------------------------------------------------------------------

    def send(
        self, chain: SignedChain, key: SigningKey, kind: str, body: dict[str, Any]
    ) -> TxResult:
        """One transaction in its own block on ``chain``."""
        slot = (chain.state.chain_id, PK[key])
        nonce = self.nonces.get(slot, 0)
        self.nonces[slot] = nonce + 1
        tx = Transaction.create(
            key, chain_id=chain.state.chain_id, nonce=nonce, fee=0, kind=kind, body=body
        )
        return chain.produce([tx.raw]).tx_results[0]

    def lock_body(self, to: bytes, deadline: int) -> dict[str, Any]:
        digest = hashlib.sha256(SECRET).digest()
        return {"hash": digest, "amount": STAKE, "deadline": deadline, "to": to, "dest": "chat"}

    @staticmethod
    def follower_height(target: SignedChain) -> int:
        raw = target.app.query(CLIENT_KEY).value
        assert raw is not None
        return LightClient.from_bytes(raw, check_possession=False).height

    def certified_query(self, source: SignedChain, key: bytes) -> tuple[bytes | None, bytes, int]:
        """Read ``key`` on ``source`` and produce the block whose header proves it."""
        value, proof = source.query(key)
        source.produce()
        return value, proof, source.height

    def headers(self, source: SignedChain, target: SignedChain, upto: int) -> list[bytes]:
        return source.items(self.follower_height(target) + 1, upto)

    # -- protocol steps ---------------------------------------------------------------

    def do_lock(self, deadline_in: int) -> TxResult:
        self.deadline = self.chat.height + deadline_in
        result = self.send(self.cur, OWNER, "xlock", self.lock_body(ID[RELAY], self.deadline))
        # Anyone may keep a proof of the open lock and replay it later ("stale").
        record, proof, at = self.certified_query(self.cur, lock_key(self.lock))
        assert record is not None
        self.stale = (record, proof, at)
        return result

    def do_claim(self, variant: str = "honest") -> TxResult:
        """Claim with a fresh proof, or ``stale``: the first proof ever seen of the open lock."""
        proven = self.decoy if variant == "other_lock" else self.lock
        record, proof, at = self.certified_query(self.cur, lock_key(proven))
        if variant == "stale" and self.stale is not None:
            record, proof, at = self.stale
        if record is None:  # nothing to prove yet; a dishonest relayer tries anyway
            record = canonical_encode({"st": LOCKED})
        body = {
            "lock": self.lock,
            "at": at,
            "record": record,
            "proof": proof,
            "secret": b"\x00" * 32 if variant == "wrong_secret" else SECRET,
            "endpoint": "relay.example:4000",
            "region": "eu",
            "headers": self.headers(self.cur, self.chat, at),
        }
        return self.send(self.chat, RELAY, "xclaim", body)

    def do_finalize(self) -> TxResult:
        claim, proof, at = self.certified_query(self.chat, claim_key(self.lock))
        if claim is None:  # forge a claim record; the absence proof cannot back it
            claim = canonical_encode({"secret": SECRET, "by": ID[RELAY], "h": 1})
        body = {
            "lock": self.lock,
            "at": at,
            "claim": claim,
            "proof": proof,
            "headers": self.headers(self.chat, self.cur, at),
        }
        return self.send(self.cur, RELAYER, "xfinalize", body)

    def do_refund(self) -> TxResult:
        _, proof, at = self.certified_query(self.chat, claim_key(self.lock))
        body = {
            "lock": self.lock,
            "at": at,
            "proof": proof,
            "headers": self.headers(self.chat, self.cur, at),
        }
        return self.send(self.cur, RELAYER, "xrefund", body)

    # -- observations -----------------------------------------------------------------

    def lock_status(self, lock: bytes | None = None) -> int | None:
        raw = self.cur.app.query(lock_key(lock or self.lock)).value
        return None if raw is None else int(canonical_decode(raw)["st"])

    def claimed(self) -> bool:
        return self.chat.app.query(claim_key(self.lock)).value is not None

    def listed(self) -> bool:
        raw = self.chat.app.query(b"relay/" + ID[RELAY]).value
        return raw is not None and canonical_decode(raw).get("lock") == self.lock

    def relay_stake(self) -> int:
        raw = self.cur.app.query(b"relay/" + PK[OWNER]).value
        return 0 if raw is None else int(canonical_decode(raw))

    def check_consistent(self) -> None:
        """Safety at every moment: no side is done while the other is undone for good."""
        status, claimed = self.lock_status(), self.claimed()
        assert claimed == self.listed()
        if claimed:  # a relay listed by a claim is in the index, and the reader decodes it
            assert ID[RELAY] in decode_relay_index(self.chat.app.query(b"relayidx").value)
            decode_relay_listing(ID[RELAY], self.chat.app.query(b"relay/" + ID[RELAY]).value)
        assert not (claimed and status == REFUNDED)
        assert not (status == DONE and not claimed)
        assert self.relay_stake() == (STAKE if status == DONE else 0)
        balance = self.cur.app.account(PK[OWNER]).balance  # type: ignore[attr-defined]
        held = STAKE if status in (LOCKED, DONE) else 0
        assert balance + held == BALANCE - STAKE  # the decoy stays locked throughout
        assert self.lock_status(self.decoy) == LOCKED


def test_happy_path_lists_the_relay_and_bonds_the_stake() -> None:
    w = World()
    assert w.do_lock(5).code == 0
    assert w.do_claim().code == 0
    assert w.claimed()
    assert w.listed()
    assert w.lock_status() == LOCKED  # pending: only one way out remains
    assert w.do_refund().code != 0
    assert w.do_finalize().code == 0
    assert w.lock_status() == DONE
    assert w.relay_stake() == STAKE
    w.check_consistent()
    # Replays: a second claim and a second finalize change nothing.
    assert "already claimed" in w.do_claim().log
    assert "already settled" in w.do_finalize().log
    w.check_consistent()


def test_deadline_is_inclusive_and_refund_needs_the_state_after_it() -> None:
    w = World()
    assert w.do_lock(3).code == 0
    while w.chat.height < w.deadline - 1:
        w.chat.produce()
    # The refund proof at header D holds the state after D - 1: too early.
    _, proof, at = w.certified_query(w.chat, claim_key(w.lock))
    assert at == w.deadline
    body = {"lock": w.lock, "at": at, "proof": proof, "headers": w.headers(w.chat, w.cur, at)}
    assert "after the deadline" in w.send(w.cur, RELAYER, "xrefund", body).log
    # The chat chain is now past D: the secret revealed now is refused, even with
    # the proof of the still-open lock kept from before.
    assert "deadline has passed" in w.do_claim().log
    assert "deadline has passed" in w.do_claim("stale").log
    assert w.do_refund().code == 0
    assert w.lock_status() == REFUNDED
    assert "already claimed" not in w.do_claim().log
    assert not w.claimed()
    w.check_consistent()


def test_a_claim_in_the_deadline_block_itself_counts() -> None:
    w = World()
    assert w.do_lock(3).code == 0
    while w.chat.height < w.deadline - 1:  # the claim's own block is the deadline block
        w.chat.produce()
    assert w.do_claim().code == 0
    assert w.chat.height == w.deadline
    assert w.do_refund().code != 0
    assert w.do_finalize().code == 0
    w.check_consistent()


@pytest.mark.parametrize(
    ("variant", "reason"),
    [("wrong_secret", "secret does not open"), ("other_lock", "proof does not verify")],
)
def test_claims_with_a_bad_secret_or_another_locks_proof_are_refused(
    variant: str, reason: str
) -> None:
    w = World()
    assert w.do_lock(10).code == 0
    result = w.do_claim(variant)
    assert reason in result.log
    assert not w.claimed()
    w.check_consistent()


def test_a_claim_needs_a_verified_header_and_a_real_certificate() -> None:
    w = World()
    assert w.do_lock(10).code == 0
    record, proof, at = w.certified_query(w.cur, lock_key(w.lock))
    body = {
        "lock": w.lock,
        "at": at,
        "record": record,
        "proof": proof,
        "secret": SECRET,
        "endpoint": "e",
        "region": "r",
    }
    assert "not verified here" in w.send(w.chat, RELAY, "xclaim", body).log
    items = w.headers(w.cur, w.chat, at)
    tampered = canonical_decode(items[-1])
    tampered["cert"]["r"] += 1
    forged = [*items[:-1], canonical_encode(tampered)]
    assert "header refused" in w.send(w.chat, RELAY, "xclaim", {**body, "headers": forged}).log
    assert not w.claimed()
    # Someone else's identity cannot claim a lock addressed to RELAY.
    result = w.send(w.chat, OTHER, "xclaim", {**body, "headers": items})
    assert "another identity" in result.log
    assert w.send(w.chat, RELAY, "xclaim", {**body, "headers": items}).code == 0
    w.check_consistent()


def test_header_delivery_is_idempotent_and_refuses_conflicts() -> None:
    w = World()
    w.cur.produce()
    items = w.headers(w.cur, w.chat, w.cur.height)
    assert w.send(w.chat, RELAYER, "bridge_headers", {"headers": items}).code == 0
    assert w.send(w.chat, RELAYER, "bridge_headers", {"headers": items}).code == 0
    conflicting = canonical_decode(items[0])
    conflicting["header"]["t"] += 1
    result = w.send(w.chat, RELAYER, "bridge_headers", {"headers": [canonical_encode(conflicting)]})
    assert "different header" in result.log


def test_a_lock_for_a_chain_the_bridge_does_not_reach_is_refused() -> None:
    w = World()
    body = {**w.lock_body(ID[RELAY], 5), "dest": "elsewhere"}
    assert "does not lead" in w.send(w.cur, OWNER, "xlock", body).log


STEPS = st.sampled_from(
    ["tick_cur", "tick_chat", "claim", "stale", "wrong_secret", "other_lock", "finalize", "refund"]
)


def run_schedule(w: World, lock_at: int | None, deadline_in: int, steps: list[str]) -> None:
    for index, step in enumerate(steps):
        if index == lock_at:
            w.do_lock(deadline_in)
        if step == "tick_cur":
            w.cur.produce()
        elif step == "tick_chat":
            w.chat.produce()
        elif step in ("claim", "stale", "wrong_secret", "other_lock"):
            w.do_claim(step)
        elif step == "finalize":
            w.do_finalize()
        else:
            w.do_refund()
        w.check_consistent()


def settle(w: World) -> None:
    """Let time pass beyond the deadline, then an honest relayer resolves the lock."""
    while w.chat.height < w.deadline + 1:
        w.chat.produce()
    if w.lock_status() == LOCKED:
        (w.do_finalize if w.claimed() else w.do_refund)()
    w.check_consistent()
    status = w.lock_status()
    assert status in (None, DONE, REFUNDED)
    assert (status == DONE) == w.claimed() == w.listed()
    # Late and replayed steps (the secret revealed after the refund, a second
    # finalize or refund) must change nothing.
    for late in (lambda: w.do_claim("stale"), w.do_claim, w.do_finalize, w.do_refund):
        late()
        w.check_consistent()
    assert w.lock_status() == status


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    lock_at=st.none() | st.integers(0, 5),
    deadline_in=st.integers(1, 6),
    steps=st.lists(STEPS, max_size=10),
)
def test_every_schedule_leaves_both_sides_done_or_both_undone(
    lock_at: int | None, deadline_in: int, steps: list[str]
) -> None:
    w = World()
    run_schedule(w, lock_at, deadline_in, steps)
    settle(w)


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    lock_at=st.none() | st.integers(0, 8),
    deadline_in=st.integers(1, 10),
    steps=st.lists(STEPS, max_size=20),
)
def test_every_long_schedule_leaves_both_sides_done_or_both_undone(
    lock_at: int | None, deadline_in: int, steps: list[str]
) -> None:
    w = World()
    run_schedule(w, lock_at, deadline_in, steps)
    settle(w)


def test_a_malformed_bridge_in_genesis_is_refused() -> None:
    from dchat_chain import ChainArgumentError

    with pytest.raises(ChainArgumentError):
        ChatChainApp.from_genesis(chat_genesis(b"not a validator set"))
    assert ChatChainApp.from_genesis(chat_genesis(CHAT_SET.to_bytes())).height == 0
