"""Stealth payments: unlinkable one-time accounts, found by their owner only, spendable.

The chain side is a :class:`ValidatorChain` (conftest) answering the node API's
paths; the wallet scans it with :class:`StealthScan`, reads balances with a
light reader and spends with the one-time key.
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import crypto_core_ed25519_add

from dchat_chain import ChainArgumentError, Transaction
from dchat_chain.lowlevel import (
    MAX_STEALTH_OWNERS,
    ChainAnswerError,
    LightReader,
    LightStateError,
    StealthFormatError,
    StealthKeys,
    StealthMemo,
    StealthMetaAddress,
    StealthScan,
    account_key,
    stealth_payment,
    stealth_transfers,
)
from dchat_crypto import SigningKey
from dchat_crypto.hazmat import ed25519_base_mul, ed25519_scalar_from_hash
from dchat_identity import Identity
from dchat_testing import hostile_bytes

BOB = StealthKeys.from_seed(b"b" * 32)
EVE = StealthKeys.from_seed(b"e" * 32)
BURNER_1 = StealthKeys.from_seed(b"1" * 32)
BURNER_2 = StealthKeys.from_seed(b"2" * 32)


def _counter_rng() -> Any:
    counter = itertools.count()
    return lambda n: next(counter).to_bytes(8) * (n // 8)


def _shares_a_run(a: bytes, b: bytes, width: int = 4) -> bool:
    return any(a[i : i + width] in b for i in range(len(a) - width + 1))


def test_two_payments_to_one_meta_address_share_no_field() -> None:
    meta = BOB.meta_address
    rng = _counter_rng()
    (acc1, memo1), (acc2, memo2) = stealth_payment(meta, rng), stealth_payment(meta, rng)
    one, two = acc1 + memo1.ephemeral, acc2 + memo2.ephemeral
    assert acc1 != acc2
    assert memo1.ephemeral != memo2.ephemeral
    # No 4-byte run in common between the two payments, nor with the published keys.
    assert not _shares_a_run(one, two)
    assert not _shares_a_run(one + two, meta.to_bytes())
    assert BOB.owns(acc1, memo1)
    assert BOB.owns(acc2, memo2)


def test_the_owner_finds_and_signs_for_the_one_time_account() -> None:
    account, memo = stealth_payment(BOB.meta_address)
    key = BOB.spending_key(account, memo)
    assert key.public_key.to_bytes() == account
    tx = Transaction.create(
        key, chain_id="c", nonce=0, fee=1, kind="transfer", body={"to": b"x" * 32, "amount": 1}
    )
    tx.verify_signature()  # the chain's own check: an ordinary Ed25519 signature


def test_a_wrong_scan_key_finds_nothing() -> None:
    found = [stealth_payment(BOB.meta_address) for _ in range(64)]
    assert not any(EVE.owns(account, memo) for account, memo in found)
    with pytest.raises(StealthFormatError):
        EVE.spending_key(*found[0])
    # Eve holding Bob's spend key but not his scan key still finds nothing.
    hybrid = StealthMetaAddress(EVE.meta_address.scan_key, BOB.meta_address.spend_key)
    assert hybrid != BOB.meta_address


def test_a_tampered_memo_finds_nothing() -> None:
    account, memo = stealth_payment(BOB.meta_address)
    other = ed25519_base_mul(ed25519_scalar_from_hash(b"another ephemeral"))
    assert not BOB.owns(account, StealthMemo(other, memo.view_tag))
    assert not BOB.owns(account, StealthMemo(memo.ephemeral, memo.view_tag ^ 1))
    assert not BOB.owns(account[:-1] + bytes([account[-1] ^ 1]), memo)
    flipped = bytearray(memo.to_bytes())
    flipped[0] ^= 1
    try:
        tampered = StealthMemo.from_bytes(bytes(flipped))
    except StealthFormatError:
        return  # not a point any more: refused on decoding
    assert not BOB.owns(account, tampered)


def test_meta_address_text_round_trips_and_bad_text_is_typed() -> None:
    text = BOB.meta_address.to_text()
    assert StealthMetaAddress.from_text(text) == BOB.meta_address
    for bad in ("", text[:-2], text.upper(), "dchat-stealth:" + "00" * 64, text[1:]):
        with pytest.raises(StealthFormatError):
            StealthMetaAddress.from_text(bad)


@given(hostile_bytes())
def test_decoders_take_any_bytes(data: bytes) -> None:
    for decode in (StealthMemo.from_bytes, StealthMetaAddress.from_bytes):
        try:
            value = decode(data)
        except StealthFormatError:
            continue
        assert value.to_bytes() == data
    with contextlib.suppress(StealthFormatError):
        StealthMetaAddress.from_text(data.decode("latin-1"))
    assert isinstance(stealth_transfers([data]), list)


@given(st.binary(min_size=33, max_size=33))
def test_any_memo_decodes_and_a_random_one_matches_nothing(data: bytes) -> None:
    memo = StealthMemo.from_bytes(data)
    assert memo.to_bytes() == data
    account, real = stealth_payment(BOB.meta_address)
    assert not BOB.owns(account, memo) or memo == real


def test_a_memo_key_with_a_small_order_part_finds_nothing() -> None:
    # R + T (T of order 4) is outside the prime-order subgroup: libsodium refuses it.
    account, memo = stealth_payment(BOB.meta_address)
    order_four = bytes(32)  # y = 0: a point of order 4
    shifted = crypto_core_ed25519_add(memo.ephemeral, order_four)
    assert not BOB.owns(account, StealthMemo(shifted, memo.view_tag))
    assert not BOB.owns(account, StealthMemo(order_four, memo.view_tag))


# -- on the chain ---------------------------------------------------------------------


def _pay(chain: Any, sender: int, amount: int, to: StealthKeys = BOB) -> tuple[bytes, bytes]:
    account, memo = stealth_payment(to.meta_address)
    body = {"to": account, "amount": amount, "stealth": memo.to_bytes()}
    return account, chain.tx(sender, "transfer", body)


def _scan(chain: Any, scan: StealthScan, fetch: Any = None) -> None:
    scan.scan_to(chain.signed.height)
    while (request := scan.next_request()) is not None:
        scan.receive((fetch or chain.fetch)(request))


def _balance(chain: Any, account: bytes) -> tuple[int, int]:
    reader = LightReader.restore(None, chain.genesis)
    read = reader.read(f"/v1/chain/accounts/{account.hex()}", account_key(account))
    while (request := read.next_request()) is not None:
        read.receive(chain.fetch(request))
    value = read.result()[1]
    return (0, 0) if value is None else (int.from_bytes(value[:8]), int.from_bytes(value[8:]))


def test_the_wallet_scans_verified_blocks_and_spends_what_it_finds(validator_chain: Any) -> None:
    chain = validator_chain()
    first, tx1 = _pay(chain, 0, 40)
    chain.block([tx1, chain.transfer(1).raw])
    chain.block()
    second, tx2 = _pay(chain, 1, 25)
    chain.block([tx2])
    chain.block([chain.transfer(2).raw])
    chain.block()

    scan = StealthScan.restore(None, chain.genesis, BOB)
    _scan(chain, scan)
    assert [(f.account, f.amount) for f in scan.finds] == [(first, 40), (second, 25)]
    assert scan.height == chain.signed.height
    assert scan.transfers_checked == 2
    # Eve's scan of the same blocks finds nothing.
    eve = StealthScan.restore(None, chain.genesis, EVE)
    _scan(chain, eve)
    assert eve.finds == []

    # Resuming from the stored state scans only new blocks and keeps the finds.
    asked: list[str] = []
    resumed = StealthScan.restore(scan.to_bytes(), None, BOB)
    _scan(chain, resumed, lambda p: asked.append(p) or chain.fetch(p))
    assert asked == []
    assert resumed.finds == scan.finds

    # Sweep the first one-time account to a plain account; the chain accepts its signature.
    find = resumed.finds[0]
    key = BOB.spending_key(find.account, find.memo)
    sink = SigningKey(b"s" * 32).public_key.to_bytes()
    sweep = Transaction.create(
        key, chain_id=chain.app.chain_id, nonce=0, fee=1, kind="transfer",
        body={"to": sink, "amount": 39},
    )  # fmt: skip
    chain.block([sweep.raw])
    chain.block()
    assert chain.app.index.get(sweep.hash).code == 0
    assert _balance(chain, find.account) == (0, 1)
    assert _balance(chain, sink)[0] == 39


def test_a_node_that_hides_or_invents_a_transaction_is_refused(validator_chain: Any) -> None:
    chain = validator_chain()
    _, tx = _pay(chain, 0, 40)
    chain.block([tx])
    chain.block()

    def hiding(path: str) -> Any:
        doc = chain.fetch(path)
        return {**doc, "txs": []} if path.endswith("/txs") else doc

    def inventing(path: str) -> Any:
        doc = chain.fetch(path)
        if path.endswith("/txs"):
            return {**doc, "txs": [*doc["txs"], _pay(chain, 1, 5)[1].hex()]}
        return doc

    for liar in (hiding, inventing):
        scan = StealthScan.restore(None, chain.genesis, BOB)
        with pytest.raises(ChainAnswerError):
            _scan(chain, scan, liar)
        assert scan.height == 0
        assert scan.finds == []


def test_the_chain_refuses_a_memo_of_another_size(validator_chain: Any) -> None:
    chain = validator_chain()
    account, memo = stealth_payment(BOB.meta_address)
    bad = chain.tx(0, "transfer", {"to": account, "amount": 1, "stealth": memo.to_bytes()[:32]})
    chain.block([bad])
    assert chain.app.index.get(Transaction.decode(bad).hash).code != 0


@given(hostile_bytes())
def test_a_corrupt_scan_state_is_a_typed_error(data: bytes) -> None:
    with contextlib.suppress(LightStateError):
        StealthScan.restore(data, None, BOB)


# -- one scan for an identity and its burners ------------------------------------------


def test_a_burners_keys_derive_from_its_own_seed_unlinkably_and_deterministically() -> None:
    owner, one, two = (Identity.generate() for _ in range(3))
    metas = [StealthKeys.of_identity(i).meta_address.to_bytes() for i in (owner, one, two)]
    assert StealthKeys.of_identity(one).meta_address.to_bytes() == metas[1]  # deterministic
    assert metas[0] == StealthKeys.from_seed(owner.signing_key.to_bytes()).meta_address.to_bytes()
    for a, b in itertools.combinations(metas, 2):
        assert not _shares_a_run(a, b)
    # Nothing public of a burner is the owner's either: its identity key, its meta-address.
    assert not _shares_a_run(metas[1], owner.signing_key.public_key.to_bytes())
    # Each one's keys find only payments to its own meta-address.
    keys = [StealthKeys.of_identity(i) for i in (owner, one, two)]
    for payee, finder in itertools.product(range(3), repeat=2):
        account, memo = stealth_payment(keys[payee].meta_address)
        assert keys[finder].owns(account, memo) is (payee == finder)


def test_one_pass_finds_the_owners_and_two_burners_payments_each_attributed(
    validator_chain: Any,
) -> None:
    chain = validator_chain()
    ring = {b"": BOB, b"burner-1": BURNER_1, b"burner-2": BURNER_2}
    paid = [_pay(chain, 0, 40, BURNER_1), _pay(chain, 1, 25, BOB), _pay(chain, 2, 7, BURNER_2)]
    chain.block([paid[0][1], paid[1][1]])
    chain.block([paid[2][1], chain.transfer(3).raw])
    chain.block()
    asked: list[str] = []
    scan = StealthScan.restore(None, chain.genesis, ring)
    _scan(chain, scan, lambda p: asked.append(p) or chain.fetch(p))
    assert {(f.account, f.amount, f.owner) for f in scan.finds} == {
        (paid[0][0], 40, b"burner-1"), (paid[1][0], 25, b""), (paid[2][0], 7, b"burner-2"),
    }  # fmt: skip
    assert scan.transfers_checked == 3  # each stealth transfer once, against every key
    assert sum("/txs" in p for p in asked) == 2  # each block's transactions fetched once
    # Each owner spends its own: the burner's spend key signs for its one-time account.
    (find,) = scan.finds_of(b"burner-1")
    assert BURNER_1.spending_key(find.account, find.memo).public_key.to_bytes() == find.account
    with pytest.raises(StealthFormatError):
        BOB.spending_key(find.account, find.memo)
    # The finds and their owners survive the stored state.
    again = StealthScan.restore(scan.to_bytes(), None, ring)
    assert again.finds == scan.finds


def test_a_destroyed_burner_drops_out_of_the_scan_with_its_finds(validator_chain: Any) -> None:
    chain = validator_chain()
    _, tx = _pay(chain, 0, 40, BURNER_1)
    chain.block([tx])
    chain.block()
    scan = StealthScan.restore(None, chain.genesis, {b"": BOB, b"burner-1": BURNER_1})
    _scan(chain, scan)
    assert [f.owner for f in scan.finds] == [b"burner-1"]
    # The burner is destroyed: the next round's keyring lacks it.
    after = StealthScan.restore(scan.to_bytes(), None, {b"": BOB})
    assert after.finds == []
    later, tx = _pay(chain, 1, 9, BURNER_1)
    mine, tx_bob = _pay(chain, 2, 5, BOB)
    chain.block([tx, tx_bob])
    chain.block()
    _scan(chain, after)
    assert [(f.account, f.owner) for f in after.finds] == [(mine, b"")]
    assert later not in {f.account for f in after.finds}


def test_a_keyring_too_large_is_refused(validator_chain: Any) -> None:
    genesis = validator_chain().genesis
    ring = {i.to_bytes(2): BOB for i in range(MAX_STEALTH_OWNERS + 1)}
    with pytest.raises(ChainArgumentError):
        StealthScan.restore(None, genesis, ring)
    with pytest.raises(ChainArgumentError):
        StealthScan.restore(None, genesis, {b"x" * 65: BOB})
