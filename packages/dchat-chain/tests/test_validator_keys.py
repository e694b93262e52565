"""Validator and wallet key records: exact bytes, round trips, typed errors for anything else."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain.lowlevel import (
    KeyRecordError,
    ValidatorKeys,
    decode_validator_keys,
    decode_wallet_key,
    encode_validator_keys,
    encode_wallet_key,
)
from dchat_core import NodeId, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey
from dchat_testing import hostile_bytes

SEED = bytes(range(64))
# The records of SEED's keys, as the key files written before the codec moved here hold them.
VALIDATOR_RECORD = bytes.fromhex(
    "a461760163626c73582035c64fa4ea102440bd883e0085a94ae24bbfe9a756fce8558eaf40220644ebb2646b"
    "696e646976616c696461746f7267656432353531395820000102030405060708090a0b0c0d0e0f1011121314"
    "15161718191a1b1c1d1e1f"
)
WALLET_RECORD = bytes.fromhex(
    "a3617601646b696e646677616c6c657467656432353531395820000102030405060708090a0b0c0d0e0f1011"
    "12131415161718191a1b1c1d1e1f"
)


def test_records_keep_their_format() -> None:
    keys = ValidatorKeys.from_seed(SEED)
    assert encode_validator_keys(keys) == VALIDATOR_RECORD
    assert encode_wallet_key(keys.account) == WALLET_RECORD


def test_records_round_trip() -> None:
    keys = ValidatorKeys.from_seed(SEED)
    back = decode_validator_keys(VALIDATOR_RECORD)
    assert back.account.to_bytes() == keys.account.to_bytes()
    assert back.bls.to_bytes() == keys.bls.to_bytes()
    assert decode_wallet_key(WALLET_RECORD).to_bytes() == SEED[:32]


def test_a_validator_record_serves_as_a_wallet_but_not_the_reverse() -> None:
    assert decode_wallet_key(VALIDATOR_RECORD).to_bytes() == SEED[:32]
    with pytest.raises(KeyRecordError) as info:
        decode_validator_keys(WALLET_RECORD)
    assert info.value.reason == "is not a validator key file"


def test_seed_gives_the_keys_and_ids() -> None:
    keys = ValidatorKeys.from_seed(SEED)
    assert keys.account.to_bytes() == SEED[:32]
    assert keys.bls.to_bytes() == BlsSecretKey.from_seed(SEED[32:]).to_bytes()
    assert keys.node_id == NodeId.derive(keys.account_public)
    assert ValidatorKeys.from_seed(bytes(64)).account_public != keys.account_public
    with pytest.raises(KeyRecordError):
        ValidatorKeys.from_seed(SEED[:63])


def test_repr_shows_no_secret() -> None:
    keys = ValidatorKeys.from_seed(SEED)
    assert keys.account.to_bytes().hex() not in repr(keys)
    assert keys.bls.to_bytes().hex() not in repr(keys)


def _record(**changes: object) -> bytes:
    record: dict[str, object] = {"v": 1, "kind": "validator", "ed25519": SEED[:32]}
    record["bls"] = ValidatorKeys.from_seed(SEED).bls.to_bytes()
    record.update(changes)
    return canonical_encode({k: v for k, v in record.items() if v is not None})


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (b"\xff", "is corrupt"),
        (canonical_encode([1, 2]), "is corrupt"),
        (_record(extra=1), "is corrupt"),
        (_record(v="1"), "is corrupt"),
        (_record(v=2), "is not a validator key file"),
        (_record(kind="wallet"), "is not a validator key file"),
        (_record(bls=bytes(32)), "holds an invalid key"),  # zero is no BLS key
        (_record(bls=b"\xff" * 32), "holds an invalid key"),  # not below the group order
        (_record(ed25519=bytes(31)), "holds an invalid key"),
        (_record(bls=None), "holds an invalid key"),
    ],
)
def test_bad_validator_records_are_refused(record: bytes, reason: str) -> None:
    with pytest.raises(KeyRecordError) as info:
        decode_validator_keys(record)
    assert info.value.reason.startswith(reason)
    assert str(info.value).startswith(f"key record {reason}")


def test_bad_wallet_records_are_refused() -> None:
    with pytest.raises(KeyRecordError, match="not a wallet or validator"):
        decode_wallet_key(_record(kind="channel"))
    with pytest.raises(KeyRecordError, match="invalid key"):
        decode_wallet_key(_record(kind="wallet", ed25519="seed"))


@settings(max_examples=300, deadline=None)
@given(hostile_bytes(max_size=200))
def test_any_bytes_decode_or_raise_a_key_record_error(data: bytes) -> None:
    for decode in (decode_validator_keys, decode_wallet_key):
        with contextlib.suppress(KeyRecordError):
            decode(data)  # returning is fine too: any other error fails the test


fields = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([0, 1, 2, "1"]),
        "kind": st.sampled_from(["validator", "wallet", "other", "x" * 17]),
        "ed25519": st.one_of(
            st.binary(min_size=31, max_size=33),
            st.integers(min_value=-(2**63), max_value=2**64 - 1),
        ),
        "bls": st.one_of(st.binary(min_size=32, max_size=32), st.text(max_size=3)),
        "extra": st.integers(min_value=-(2**63), max_value=2**64 - 1),
    },
)


@settings(max_examples=300, deadline=None)
@given(fields)
def test_any_map_decodes_or_raises_a_key_record_error(record: dict[str, object]) -> None:
    data = canonical_encode(record)
    try:
        key = decode_wallet_key(data)
    except KeyRecordError:
        return
    assert record["v"] == 1
    assert record["kind"] in {"wallet", "validator"}
    assert key.to_bytes() == record["ed25519"]
    assert isinstance(key, SigningKey)
