"""The wallet's light-client state file and the strict parsers of the node's chain answers."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import LightClient, Validator, ValidatorSet
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey
from dchat_node import ChainAnswerError, LightStateError
from dchat_node._light_reader import LightReader, parse_headers, parse_proof
from dchat_node._light_state import decode_state, encode_state, read_state, write_state


def _set(n: int = 3) -> ValidatorSet:
    members = []
    for i in range(n):
        bls = BlsSecretKey.generate()
        members.append(
            Validator(
                validator_id=bytes([i]) * 20,
                signing_key=SigningKey.generate().public_key,
                bls_public_key=bls.public_key,
                power=10,
                proof_of_possession=bls.prove_possession(),
            )
        )
    return ValidatorSet.create(members)


VALS = _set()
GOOD = encode_state(LightClient("test-chain", VALS), VALS.hash())


def test_state_round_trips_and_is_written_atomically(tmp_path: Path) -> None:
    client, anchor = decode_state(GOOD)
    assert (client.chain_id, client.height, anchor) == ("test-chain", 0, VALS.hash())
    assert client.validators.hash() == VALS.hash()
    path = tmp_path / "light" / "test-chain.light"
    write_state(path, client, anchor)
    assert path.read_bytes() == GOOD
    assert [p.name for p in path.parent.iterdir()] == ["test-chain.light"]  # no temp left
    assert read_state(tmp_path / "absent.light") is None


def test_a_state_anchored_elsewhere_or_damaged_is_refused(tmp_path: Path) -> None:
    other = _set()
    body = canonical_encode(
        {"chain": "test-chain", "anchor": other.hash(), "header": None, "vals": VALS.to_bytes()}
    )
    mismatched = canonical_encode({"v": 1, "body": body, "sum": hashlib.sha256(body).digest()})
    with pytest.raises(LightStateError, match="not the anchor"):
        decode_state(mismatched)
    path = tmp_path / "test-chain.light"
    path.write_bytes(GOOD[:-1] + bytes([GOOD[-1] ^ 1]))
    with pytest.raises(LightStateError):
        LightReader.open(lambda _: {}, path, None)
    path.unlink()
    with pytest.raises(LightStateError, match="genesis"):
        LightReader.open(lambda _: {}, path, None)  # no file and nothing to anchor at


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_decoder_is_total_on_random_bytes(data: bytes) -> None:
    with contextlib.suppress(LightStateError):
        decode_state(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_flipped_byte_is_caught(position: int, mask: int) -> None:
    i = position % len(GOOD)
    damaged = GOOD[:i] + bytes([GOOD[i] ^ (mask or 1)]) + GOOD[i + 1 :]
    with pytest.raises(LightStateError):
        decode_state(damaged)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["chain", "anchor", "header", "vals", "x"]), st.binary()))
def test_decoder_checks_the_body_behind_a_valid_checksum(fields: dict[str, Any]) -> None:
    body = canonical_encode(fields)
    data = canonical_encode({"v": 1, "body": body, "sum": hashlib.sha256(body).digest()})
    with pytest.raises(LightStateError):
        decode_state(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
ITEM = st.fixed_dictionaries(
    {
        "height": st.integers(-1, 5) | st.booleans(),
        "header": st.text("0123456789abcdef", max_size=16) | JSON,
        "certificate": st.text("0123456789abcdefX", max_size=16) | JSON,
        "next_validators": st.none() | st.text("0123456789abcdef", max_size=8),
    }
)


@settings(max_examples=300, deadline=None)
@given(JSON | st.fixed_dictionaries({"headers": st.lists(ITEM, max_size=3)}))
def test_header_pages_are_parsed_strictly(doc: Any) -> None:
    with contextlib.suppress(ChainAnswerError):
        parse_headers(doc, 2)


@settings(max_examples=300, deadline=None)
@given(
    JSON
    | st.fixed_dictionaries(
        {
            "height": st.integers(-2, 1 << 60),
            "header_height": st.integers(-2, 1 << 60),
            "app_hash": st.text("0123456789abcdefg", max_size=70),
            "value": st.none() | st.text("0123456789abcdef", max_size=8),
            "proof": st.text("0123456789abcdef", max_size=8) | JSON,
        }
    )
)
def test_proven_answers_are_parsed_strictly(doc: Any) -> None:
    try:
        height, app_hash, _, _ = parse_proof(doc)
    except ChainAnswerError:
        return
    assert doc["header_height"] == height + 1
    assert len(app_hash) <= 64


def test_a_header_must_be_canonical() -> None:
    header = {
        "chain": "c",
        "h": 1,
        "r": 0,
        "t": 1,
        "prev": bytes(32),
        "txs": bytes(32),
        "app": bytes(32),
        "vals": bytes(32),
        "next": bytes(32),
        "prop": b"p",
        "lc": bytes(32),
    }
    raw = canonical_encode(header)
    assert canonical_decode(raw) == header
    item = {"height": 1, "header": raw.hex(), "certificate": "00", "next_validators": None}
    with pytest.raises(ChainAnswerError, match="certificate"):
        parse_headers({"headers": [item]}, 1)
    with pytest.raises(ChainAnswerError, match="at most 0"):
        parse_headers({"headers": [item]}, 0)
    with pytest.raises(ChainAnswerError, match="another height"):
        parse_headers({"headers": [{**item, "height": 2}]}, 1)
