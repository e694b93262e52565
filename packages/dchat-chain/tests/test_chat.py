"""Chat chain: identities, documents, prekeys, relays, channels, ordering, receipts, recovery."""

from __future__ import annotations

import pytest

from dchat_chain import ChatChainApp, Transaction
from dchat_chain._chat_identity import pow_ok
from dchat_chain.lowlevel import (
    BlockContext,
    FeeTooLowError,
    UnauthorizedError,
    chat_channel_id,
    relay_directory,
    solve_pow,
    verify_proof,
)
from dchat_core import IdentityId, canonical_decode, canonical_encode
from dchat_crypto import SigningKey

A, B, C, D, NEW = (SigningKey(bytes([i]) * 32) for i in (21, 22, 23, 24, 25))
PK = {k: k.public_key.to_bytes() for k in (A, B, C, D, NEW)}
ID = {k: bytes(IdentityId.derive(PK[k])) for k in PK}
DAY = 24 * 3600 * 1000
POW_BITS = 6


class Chain:
    def __init__(self, **params: int) -> None:
        genesis = {
            "v": 1,
            "kind": "chat",
            "chain_id": "chat",
            "params": {"pow_bits": POW_BITS, "recovery_delay_ms": DAY, **params},
            "accounts": [[PK[A], 100]],
        }
        self.app = ChatChainApp.from_genesis(canonical_encode(genesis))
        self.nonces = dict.fromkeys(PK.values(), 0)
        self.time_ms = 0

    def tx(self, key: SigningKey, kind: str, body: dict, fee: int = 0) -> bytes:
        pk = PK[key]
        tx = Transaction.create(
            key, chain_id="chat", nonce=self.nonces[pk], fee=fee, kind=kind, body=body
        )
        self.nonces[pk] += 1
        return tx.raw

    def run(self, key: SigningKey, kind: str, body: dict, fee: int = 0) -> int:
        raw = self.tx(key, kind, body, fee)
        self.time_ms += 1000
        height = self.app.height + 1
        result = self.app.apply_block(BlockContext("chat", height, self.time_ms, b""), [raw])
        self.app.commit()
        return result.tx_results[0].code

    def register(self, key: SigningKey, guardians: list[bytes] = (), threshold: int = 0) -> int:
        body = {"pow": solve_pow("chat", PK[key], POW_BITS), "doc": b"\x01" * 32}
        if guardians:
            body.update(guardians=sorted(guardians), threshold=threshold)
        return self.run(key, "register_identity", body)

    def get(self, key: bytes):
        raw = self.app.state.committed_get(key)
        return None if raw is None else canonical_decode(raw)


@pytest.fixture
def chain() -> Chain:
    return Chain()


def test_registration_costs_work_not_fees(chain: Chain) -> None:
    chain2 = Chain(pow_bits=20)
    # A near-certain failure: 20 bits of work are not in an empty nonce.
    assert chain2.run(C, "register_identity", {"pow": b"\x00", "doc": bytes(32)}) == 8
    assert chain2.get(b"id/" + ID[C]) is None
    assert chain.register(C) == 0
    assert chain.get(b"id/" + ID[C]) == {
        "key": PK[C],
        "doc": b"\x01" * 32,
        "ver": 1,
        "g": [],
        "th": 0,
    }
    assert chain.register(C) == 9  # already registered


def test_proof_of_work_is_bound_to_the_key(chain: Chain) -> None:
    pow_for_c = solve_pow("chat", PK[C], POW_BITS)
    assert not pow_ok("chat", PK[D], pow_for_c, POW_BITS)  # fixed keys: no 1-in-64 fluke
    assert not pow_ok("other-chain", PK[C], pow_for_c, POW_BITS)
    assert chain.run(D, "register_identity", {"pow": pow_for_c, "doc": bytes(32)}) == 8
    assert chain.run(C, "register_identity", {"pow": pow_for_c, "doc": bytes(32)}) == 0


def test_min_fee_applies_except_to_registration() -> None:
    chain = Chain(min_fee=5)
    assert chain.register(B) == 0
    with pytest.raises(FeeTooLowError):
        chain.app.check_tx(chain.tx(B, "set_prekeys", {"pointer": b"p"}))
    assert chain.register(A) == 0
    assert chain.run(A, "set_prekeys", {"pointer": b"p"}, fee=5) == 0
    assert chain.app.account(PK[A]).balance == 95
    assert canonical_decode(chain.app.state.committed_get(b"meta/burned")) == 5


def test_a_group_channel_is_paid_in_registration_work_not_fees() -> None:
    chain = Chain(min_fee=5)
    assert chain.register(B) == 0  # B has no fee account at all
    assert chain.run(B, "create_channel", {"name": "g"}) == 0
    chan = chat_channel_id(ID[B], "g")
    body = {"channel": chan, "first": 0, "last": 3, "root": b"r" * 32}
    assert chain.run(B, "commit_order", body) == 0
    assert chain.register(C) == 0
    assert chain.run(B, "set_role", {"channel": chan, "member": ID[C], "role": 2}) == 0
    with pytest.raises(UnauthorizedError):  # unregistered: no work paid, no channel
        chain.app.check_tx(chain.tx(D, "create_channel", {"name": "g"}))


def test_document_versions_must_increase(chain: Chain) -> None:
    chain.register(B)
    assert chain.run(B, "update_document", {"doc": b"\x02" * 32, "version": 3}) == 0
    assert chain.run(B, "update_document", {"doc": b"\x03" * 32, "version": 3}) == 9
    assert chain.run(C, "update_document", {"doc": b"\x03" * 32, "version": 9}) == 8
    assert chain.get(b"id/" + ID[B])["doc"] == b"\x02" * 32


def test_prekey_pointer_and_relay_directory(chain: Chain) -> None:
    chain.register(B)
    assert chain.run(B, "set_prekeys", {"pointer": b"bundle@relay"}) == 0
    assert chain.get(b"prekeys/" + ID[B]) == b"bundle@relay"
    relay = {"endpoint": "relay.example:7400", "region": "eu", "stake_ref": PK[B]}
    assert chain.run(B, "register_relay", relay) == 0
    assert chain.get(b"relay/" + ID[B])["ep"] == "relay.example:7400"
    assert chain.run(B, "receipt_batch", {"root": b"r" * 32, "count": 10}) == 0
    assert chain.run(B, "receipt_batch", {"root": b"s" * 32, "count": 5}) == 0
    assert chain.get(b"rcpt/" + ID[B] + (1).to_bytes(8, "big"))["root"] == b"s" * 32
    assert chain.get(b"rep/" + ID[B]) == {"v": 0, "d": 15}
    listed = relay_directory(chain.app.state)
    assert [(i, r["ep"], r["stake"]) for i, r in listed] == [(ID[B], "relay.example:7400", PK[B])]
    assert chain.run(B, "unregister_relay", {}) == 0
    assert relay_directory(chain.app.state) == []
    assert chain.run(B, "receipt_batch", {"root": b"r" * 32, "count": 1}) == 8


def test_vouching_counts_once_per_pair(chain: Chain) -> None:
    chain.register(B)
    chain.register(C)
    assert chain.run(B, "vouch", {"identity": ID[C], "on": True}) == 0
    assert chain.run(B, "vouch", {"identity": ID[C], "on": True}) == 9
    assert chain.get(b"rep/" + ID[C]) == {"v": 1, "d": 0}
    assert chain.run(B, "vouch", {"identity": ID[C], "on": False}) == 0
    assert chain.get(b"rep/" + ID[C]) == {"v": 0, "d": 0}
    assert chain.run(B, "vouch", {"identity": ID[B], "on": True}) == 9


def test_channel_roles_follow_the_permission_rules(chain: Chain) -> None:
    for key in (B, C, D):
        chain.register(key)
    assert chain.run(B, "create_channel", {"name": "general"}) == 0
    chan = chat_channel_id(ID[B], "general")
    assert chain.run(B, "create_channel", {"name": "general"}) == 9

    def role(key, who, r):
        return chain.run(key, "set_role", {"channel": chan, "member": ID[who], "role": r})

    assert role(C, D, 1) == 8  # outsiders cannot add
    assert role(B, C, 2) == 0  # owner makes C admin
    assert role(C, D, 1) == 0  # admin adds a member
    assert role(C, D, 2) == 8  # but cannot make admins
    assert role(D, C, 0) == 8  # members cannot remove others
    assert role(C, B, 0) == 8  # nobody removes the owner
    assert role(D, D, 0) == 0  # anyone may leave
    assert role(B, B, 0) == 8  # except the owner
    assert chain.get(b"chm/" + chan + ID[C]) == 2
    assert chain.get(b"chm/" + chan + ID[D]) is None


def test_channel_transfer(chain: Chain) -> None:
    chain.register(B)
    chain.register(C)
    chain.run(B, "create_channel", {"name": "x"})
    chan = chat_channel_id(ID[B], "x")
    assert chain.run(B, "transfer_channel", {"channel": chan, "new_owner": ID[C]}) == 9
    chain.run(B, "set_role", {"channel": chan, "member": ID[C], "role": 1})
    assert chain.run(C, "transfer_channel", {"channel": chan, "new_owner": ID[C]}) == 8
    assert chain.run(B, "transfer_channel", {"channel": chan, "new_owner": ID[C]}) == 0
    assert chain.get(b"ch/" + chan)["owner"] == ID[C]
    assert chain.get(b"chm/" + chan + ID[B]) == 2


def test_ordering_commitments_are_contiguous(chain: Chain) -> None:
    chain.register(B)
    chain.register(C)
    chain.run(B, "create_channel", {"name": "o"})
    chan = chat_channel_id(ID[B], "o")
    commit = lambda key, first, last: chain.run(  # noqa: E731
        key, "commit_order", {"channel": chan, "first": first, "last": last, "root": b"m" * 32}
    )
    assert commit(B, 0, 9) == 0
    assert commit(B, 5, 12) == 9  # overlap
    assert commit(B, 11, 12) == 9  # gap
    assert commit(B, 10, 9) == 9  # empty range
    assert commit(C, 10, 12) == 8  # not a sequencer
    assert commit(B, 10, 10) == 0
    assert chain.get(b"ch/" + chan)["next"] == 11
    entry = chain.get(b"ord/" + chan + (10).to_bytes(8, "big"))
    assert entry["last"] == 10
    assert entry["by"] == ID[B]


def test_guardian_recovery_waits_for_the_time_lock(chain: Chain) -> None:
    chain.register(C)
    chain.register(D)
    chain.register(B, [ID[C], ID[D]], 2)
    request = {"identity": ID[B], "new_key": PK[NEW]}
    assert chain.run(A, "recovery_request", request) == 8  # not a registered guardian
    assert chain.run(C, "recovery_request", request) == 0
    assert chain.run(NEW, "recovery_execute", {"identity": ID[B]}) == 9  # one approval
    assert chain.run(D, "recovery_approve", {"identity": ID[B]}) == 0
    assert chain.run(NEW, "recovery_execute", {"identity": ID[B]}) == 9  # time-locked
    chain.time_ms += DAY
    assert chain.run(NEW, "recovery_execute", {"identity": ID[B]}) == 0
    assert chain.get(b"id/" + ID[B])["key"] == PK[NEW]
    assert chain.get(b"idkey/" + PK[B]) is None
    assert chain.run(B, "set_prekeys", {"pointer": b"old key"}) == 8
    assert chain.run(NEW, "set_prekeys", {"pointer": b"new key"}) == 0


def test_the_owner_can_veto_a_recovery(chain: Chain) -> None:
    chain.register(C)
    chain.register(B, [ID[C]], 1)
    assert chain.run(C, "recovery_request", {"identity": ID[B], "new_key": PK[NEW]}) == 0
    assert chain.run(C, "recovery_veto", {"identity": ID[B]}) == 8
    assert chain.run(B, "recovery_veto", {"identity": ID[B]}) == 0
    chain.time_ms += DAY
    assert chain.run(NEW, "recovery_execute", {"identity": ID[B]}) == 9
    assert chain.get(b"id/" + ID[B])["key"] == PK[B]


def test_guardian_sets_are_validated(chain: Chain) -> None:
    chain.register(C)
    body = {"pow": solve_pow("chat", PK[B], POW_BITS), "doc": bytes(32)}
    assert chain.run(B, "register_identity", {**body, "guardians": [ID[C]], "threshold": 2}) == 1
    assert chain.run(B, "register_identity", {**body, "guardians": [ID[C]], "threshold": 0}) == 1
    assert chain.run(B, "register_identity", {**body, "guardians": [ID[B]], "threshold": 1}) == 1


def test_state_is_provable(chain: Chain) -> None:
    chain.register(B)
    result = chain.app.query(b"id/" + ID[B])
    assert verify_proof(result.app_hash, result.key, result.value, result.proof)
    absent = chain.app.query(b"id/" + ID[C])
    assert absent.value is None
    assert verify_proof(absent.app_hash, absent.key, None, absent.proof)


def test_unregistered_senders_are_unauthorized(chain: Chain) -> None:
    with pytest.raises(UnauthorizedError):
        chain.app.check_tx(chain.tx(B, "create_channel", {"name": "x"}))


def test_genesis_validators_are_checked_and_fixed() -> None:
    from dchat_chain import ChainArgumentError
    from dchat_chain.lowlevel import validator_id_of
    from dchat_crypto import BlsSecretKey

    keys = [(SigningKey.generate(), BlsSecretKey.generate()) for _ in range(3)]
    rows = [
        [k.public_key.to_bytes(), b.public_key.to_bytes(), b.prove_possession().to_bytes(), 2]
        for k, b in keys
    ]
    base = {"v": 1, "kind": "chat", "chain_id": "chat"}
    app = ChatChainApp.from_genesis(canonical_encode({**base, "validators": rows}))
    updates = app.initial_validators()
    assert [u.validator_id for u in updates] == sorted(validator_id_of(r[0]) for r in rows)
    assert {u.power for u in updates} == {2}
    assert ChatChainApp.from_genesis(canonical_encode(base)).initial_validators() == ()
    stolen = [rows[0][0], rows[0][1], rows[1][2], 2]  # another key's proof of possession
    with pytest.raises(ChainArgumentError, match="proof"):
        ChatChainApp.from_genesis(canonical_encode({**base, "validators": [stolen]}))
    with pytest.raises(ChainArgumentError, match="twice"):
        ChatChainApp.from_genesis(canonical_encode({**base, "validators": [rows[0], rows[0]]}))
    with pytest.raises(ChainArgumentError, match="malformed"):
        ChatChainApp.from_genesis(canonical_encode({**base, "validators": [[b"x", 1, 2, 3]]}))
