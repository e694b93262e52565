"""The light reader against a validator's answers: honest ones verify, every lie is typed.

The validator side is a :class:`ValidatorChain` (conftest) answering the node
API's paths as the node does; a lying node is that answer rewritten. The state
codec and the strict answer parsers get hypothesis.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_chain import (
    ChainStateError,
    InvalidCertificateError,
    LightClient,
    Validator,
    ValidatorSet,
)
from dchat_chain.lowlevel import (
    ChainAnswerError,
    InvalidStateProofError,
    LightReader,
    LightStateError,
    StaleAnswerError,
    UnexpectedHeaderError,
    decode_light_state,
    encode_light_state,
    genesis_anchor,
    parse_headers,
    parse_proof,
)
from dchat_core import canonical_decode, canonical_encode
from dchat_crypto import BlsSecretKey, SigningKey
from dchat_testing import hostile_bytes


def _account_path(chain: Any, i: int = 0) -> str:
    return f"/v1/chain/accounts/{chain.PK[i].hex()}"


def _drive(reader: LightReader, path: str, key: bytes, fetch: Any) -> tuple[Any, bytes | None, int]:
    read = reader.read(path, key)
    while (request := read.next_request()) is not None:
        read.receive(fetch(request))
    return read.result()


def _fresh(chain: Any) -> LightReader:
    return LightReader.restore(None, chain.genesis)


def _key(chain: Any, i: int = 0) -> bytes:
    return b"acct/" + chain.PK[i]


def test_an_honest_answer_verifies_and_only_new_headers_are_fetched(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(70)  # more than one page of headers
    reader = _fresh(chain)
    asked: list[str] = []

    def fetch(path: str) -> Any:
        asked.append(path)
        return chain.fetch(path)

    doc, value, height = _drive(reader, _account_path(chain), _key(chain), fetch)
    assert height == 69
    assert value == chain.app.trees[69].get(_key(chain))
    assert doc["header_height"] == 70
    assert reader.height == 70
    assert asked[1:] == [
        "/v1/chain/headers?from=1&limit=64",
        "/v1/chain/headers?from=65&limit=6",
    ]
    chain.grow(72)
    asked.clear()
    again = LightReader.restore(reader.to_bytes(), chain.genesis)  # as a wallet file would
    _drive(again, _account_path(chain), _key(chain), fetch)
    assert asked[1:] == ["/v1/chain/headers?from=71&limit=2"]


def test_an_absent_key_is_proven_absent(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(2)
    stranger = SigningKey.generate().public_key.to_bytes()
    path = f"/v1/chain/accounts/{stranger.hex()}"
    _, value, _ = _drive(_fresh(chain), path, b"acct/" + stranger, chain.fetch)
    assert value is None


def _lying(chain: Any, lie: str) -> Any:
    other = None
    if lie == "chain":
        other = type(chain)("currency", "a-fork")
        other.grow(chain.signed.height)

    def fetch(path: str) -> Any:
        if other is not None and "headers" in path:
            return other.fetch(path)
        doc = chain.fetch(path)
        if lie == "certificate" and "headers" in path:
            item = doc["headers"][0]
            cert = chain.signed.certificates[item["height"]]
            forged = replace(cert, signature=chain.signed.certificates[4].signature)
            item["certificate"] = forged.to_bytes().hex()
        if lie == "app_hash" and "accounts" in path:
            doc["app_hash"] = "00" * 32
        if lie == "value" and "accounts" in path:
            doc["value"] = "00" * 16
        if lie == "empty" and "headers" in path:
            doc["headers"] = []
        return doc

    return fetch


@pytest.mark.parametrize(
    ("lie", "error"),
    [
        ("certificate", InvalidCertificateError),
        ("chain", UnexpectedHeaderError),
        ("app_hash", InvalidStateProofError),
        ("value", InvalidStateProofError),
        ("empty", ChainAnswerError),
    ],
)
def test_each_lie_is_refused_with_its_type(validator_chain: Any, lie: str, error: type) -> None:
    chain = validator_chain()
    chain.grow(4)
    reader = _fresh(chain)
    with pytest.raises(error):
        _drive(reader, _account_path(chain), _key(chain), _lying(chain, lie))
    if lie in ("certificate", "chain", "empty"):
        assert reader.height == 0  # nothing verified


def test_an_old_answer_is_stale_and_replayed_headers_do_not_link(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(3)
    old = chain.fetch(_account_path(chain))
    reader = _fresh(chain)
    chain.grow(6)
    _drive(reader, _account_path(chain), _key(chain), chain.fetch)
    with pytest.raises(StaleAnswerError, match="verified already"):
        _drive(reader, _account_path(chain), _key(chain), lambda _: old)
    chain.grow(8)

    def replayed(path: str) -> Any:  # always the first headers again
        return chain.fetch(path if "accounts" in path else "/v1/chain/headers?from=1&limit=1")

    with pytest.raises(UnexpectedHeaderError):
        _drive(reader, _account_path(chain), _key(chain), replayed)
    assert reader.height == 6


def test_catch_up_verifies_headers_only_up_to_the_height(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(5)
    reader = _fresh(chain)
    op = reader.catch_up(3)
    requests = []
    while (request := op.next_request()) is not None:
        requests.append(request)
        op.receive(chain.fetch(request))
    assert requests == ["/v1/chain/headers?from=1&limit=3"]
    assert reader.height == 3
    with pytest.raises(ChainStateError):
        op.result()  # a catch-up has no answer
    assert reader.catch_up(2).next_request() is None  # nothing to do


def test_a_read_is_used_once_in_order(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(2)
    read = _fresh(chain).read(_account_path(chain), _key(chain))
    with pytest.raises(ChainStateError):
        read.result()
    while (request := read.next_request()) is not None:
        read.receive(chain.fetch(request))
    with pytest.raises(ChainStateError):
        read.receive({})


def test_restore_refuses_another_genesis_or_nothing_to_anchor(validator_chain: Any) -> None:
    chain, other = validator_chain(), validator_chain("currency", "elsewhere")
    stored = _fresh(chain).to_bytes()
    with pytest.raises(LightStateError, match=r"w\.light was started from another genesis"):
        LightReader.restore(stored, other.genesis, name="w.light")
    with pytest.raises(LightStateError, match="give the chain's genesis"):
        LightReader.restore(None, None)
    with pytest.raises(LightStateError, match="not a usable genesis"):
        genesis_anchor(b"\xa0")
    assert LightReader.restore(stored, None).client.chain_id == "idx"


# -- the state codec ------------------------------------------------------------------


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
GOOD = encode_light_state(LightClient("test-chain", VALS), VALS.hash())


def test_state_round_trips_with_and_without_a_header(validator_chain: Any) -> None:
    client, anchor = decode_light_state(GOOD)
    assert (client.chain_id, client.height, anchor) == ("test-chain", 0, VALS.hash())
    assert client.validators.hash() == VALS.hash()
    chain = validator_chain()
    chain.grow(3)
    reader = _fresh(chain)
    _drive(reader, _account_path(chain), _key(chain), chain.fetch)
    client, anchor = decode_light_state(reader.to_bytes())
    assert (client.height, client.last_hash) == (3, chain.signed.headers[3].hash())


def test_a_state_anchored_elsewhere_is_refused() -> None:
    body = canonical_encode(
        {"chain": "test-chain", "anchor": _set().hash(), "header": None, "vals": VALS.to_bytes()}
    )
    mismatched = canonical_encode({"v": 1, "body": body, "sum": hashlib.sha256(body).digest()})
    with pytest.raises(LightStateError, match="not the anchor"):
        decode_light_state(mismatched)


@settings(max_examples=300, deadline=None)
@given(hostile_bytes(max_size=512))
def test_decoder_is_total_on_random_bytes(data: bytes) -> None:
    with contextlib.suppress(LightStateError):
        decode_light_state(data)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0), st.integers(min_value=0, max_value=255))
def test_any_flipped_byte_is_caught(position: int, mask: int) -> None:
    i = position % len(GOOD)
    damaged = GOOD[:i] + bytes([GOOD[i] ^ (mask or 1)]) + GOOD[i + 1 :]
    with pytest.raises(LightStateError):
        decode_light_state(damaged)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["chain", "anchor", "header", "vals", "x"]), st.binary()))
def test_decoder_checks_the_body_behind_a_valid_checksum(fields: dict[str, Any]) -> None:
    body = canonical_encode(fields)
    data = canonical_encode({"v": 1, "body": body, "sum": hashlib.sha256(body).digest()})
    with pytest.raises(LightStateError):
        decode_light_state(data)


# -- strict parsing of answers --------------------------------------------------------

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


def test_served_pages_parse_back_and_malformed_items_are_typed(validator_chain: Any) -> None:
    chain = validator_chain()
    chain.grow(2)
    page = parse_headers(chain.fetch("/v1/chain/headers?from=1&limit=2"), 2)
    assert [h for h, _, _ in page] == [chain.signed.headers[1], chain.signed.headers[2]]
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
    long_form = "b80b" + raw.hex()[2:]  # the same map with a non-minimal length
    with pytest.raises(ChainAnswerError, match=r"malformed header|canonically"):
        parse_headers({"headers": [{**item, "header": long_form}]}, 1)
