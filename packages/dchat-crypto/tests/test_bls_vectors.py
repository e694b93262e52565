"""BLS conformance vectors from ``<vectors>/bls`` (see its SOURCE.txt), run through the public API.

* ``bls12-381-tests_regenerated``: the ethereum/bls12-381-tests generator's JSON
  output. ``hash_to_G2`` (not exposed by dchat) and ``batch_verify`` (not
  offered) do not apply; every other category runs, every case.
* ``consensus-spec-tests``: the official YAML copies, parsed with a small
  reader for the subset of YAML they use.
* ``chia-blspy``: the PoP-scheme signatures and proof, and the invalid encodings.
  Basic/Aug-scheme values use other ciphersuites and do not apply.

Each test prints how many cases it ran and asserts the exact expected count,
so a vector silently skipped fails the suite.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING, Any

import blspy
import pytest

from dchat_crypto import (
    BadSignatureError,
    BlsPublicKey,
    BlsSecretKey,
    BlsSignature,
    bls_aggregate,
    bls_verify,
)
from dchat_crypto._bls_backend import CIPHERSUITE, POP_CIPHERSUITE, BlspyBackend
from dchat_crypto.hazmat import (
    BlsEncodingError,
    BlsSecretKeyError,
    BlsUsageError,
    bls_aggregate_verify,
    bls_fast_aggregate_verify,
    bls_verify_possession,
)

if TYPE_CHECKING:
    from pathlib import Path

REGENERATED_COUNTS = {
    "sign": 10,
    "verify": 29,
    "aggregate": 6,
    "aggregate_verify": 5,
    "fast_aggregate_verify": 12,
    "deserialization_G1": 16,
    "deserialization_G2": 18,
}
CONSENSUS_COUNTS = {
    "sign": 10,
    "verify": 2,
    "aggregate": 2,
    "aggregate_verify": 1,
    "fast_aggregate_verify": 6,
}


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("0x"))


def _bls_dir(vectors: Path, name: str) -> Path:
    path = vectors / "bls" / name
    if not path.is_dir():
        pytest.skip(f"BLS vectors folder {path} not found")
    return path


# -- one checker per category: returns the outcome, asserts it matches --------------


def _valid(check: Any) -> bool:
    """Run a verification; decoding and verification failures both mean invalid."""
    try:
        check()
    except (BlsEncodingError, BadSignatureError):
        return False
    return True


def _sign(case: dict[str, Any]) -> bool:
    message = _hex(case["input"]["message"])
    try:
        key = BlsSecretKey.from_bytes(_hex(case["input"]["privkey"]))
    except BlsSecretKeyError:
        assert case["output"] is None
        return False
    signature = key.sign(message)
    assert signature.to_bytes() == _hex(case["output"])
    bls_verify(key.public_key, message, signature)
    return True


def _verify(case: dict[str, Any]) -> bool:
    data = case["input"]
    valid = _valid(
        lambda: bls_verify(
            BlsPublicKey.from_bytes(_hex(data["pubkey"])),
            _hex(data["message"]),
            BlsSignature.from_bytes(_hex(data["signature"])),
        )
    )
    assert valid is case["output"]
    return valid


def _aggregate(case: dict[str, Any]) -> bool:
    signatures = [BlsSignature.from_bytes(_hex(s)) for s in case["input"]]
    if case["output"] is None:
        with pytest.raises(BlsUsageError):
            bls_aggregate(signatures)
        return False
    assert bls_aggregate(signatures).to_bytes() == _hex(case["output"])
    return True


def _aggregate_verify(case: dict[str, Any]) -> bool:
    data = case["input"]
    valid = _valid(
        lambda: bls_aggregate_verify(
            [BlsPublicKey.from_bytes(_hex(k)) for k in data["pubkeys"]],
            [_hex(m) for m in data["messages"]],
            BlsSignature.from_bytes(_hex(data["signature"])),
        )
    )
    assert valid is case["output"]
    return valid


def _fast_aggregate_verify(case: dict[str, Any]) -> bool:
    data = case["input"]
    valid = _valid(
        lambda: bls_fast_aggregate_verify(
            [BlsPublicKey.from_bytes(_hex(k)) for k in data["pubkeys"]],
            _hex(data["message"]),
            BlsSignature.from_bytes(_hex(data["signature"])),
        )
    )
    assert valid is case["output"]
    return valid


def _deserialization_g1(case: dict[str, Any]) -> bool:
    raw = _hex(case["input"]["pubkey"])
    # The point decoder follows the vector exactly (infinity is a valid point) ...
    point_ok = _valid(lambda: BlspyBackend().g1_from_bytes(raw))
    assert point_ok is case["output"]
    # ... and a public key is a valid point other than infinity (KeyValidate).
    key_ok = _valid(lambda: BlsPublicKey.from_bytes(raw))
    assert key_ok is (point_ok and (raw[0] & 0x40) == 0)
    return point_ok


def _deserialization_g2(case: dict[str, Any]) -> bool:
    valid = _valid(lambda: BlsSignature.from_bytes(_hex(case["input"]["signature"])))
    assert valid is case["output"]
    return valid


CHECKS = {
    "sign": _sign,
    "verify": _verify,
    "aggregate": _aggregate,
    "aggregate_verify": _aggregate_verify,
    "fast_aggregate_verify": _fast_aggregate_verify,
    "deserialization_G1": _deserialization_g1,
    "deserialization_G2": _deserialization_g2,
}


def _run(category: str, cases: list[tuple[str, dict[str, Any]]]) -> Counter[bool]:
    outcomes: Counter[bool] = Counter()
    for name, case in cases:
        try:
            outcomes[CHECKS[category](case)] += 1
        except AssertionError as error:
            raise AssertionError(f"{category}/{name}: {error}") from error
    return outcomes


def _report(source: str, category: str, outcomes: Counter[bool], expected: int) -> None:
    print(f"{source} {category}: {outcomes.total()} cases ({outcomes[True]} valid)")
    assert outcomes.total() == expected
    # Both sides are exercised wherever the vectors have both.
    assert outcomes[True] > 0


@pytest.mark.parametrize("category", sorted(REGENERATED_COUNTS))
def test_bls12_381_tests(vectors: Path, category: str) -> None:
    folder = _bls_dir(vectors, "bls12-381-tests_regenerated") / category
    cases = [(p.name, json.loads(p.read_text())) for p in sorted(folder.glob("*.json"))]
    outcomes = _run(category, cases)
    _report("bls12-381-tests", category, outcomes, REGENERATED_COUNTS[category])
    assert outcomes[False] > 0


# -- consensus-spec-tests: YAML ------------------------------------------------------


def _yaml_scalar(text: str) -> Any:
    text = text.strip()
    literals: dict[str, Any] = {"null": None, "true": True, "false": False, "[]": []}
    if text in literals:
        return literals[text]
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    raise ValueError(f"unsupported YAML scalar {text!r}")


def _yaml_block(lines: list[tuple[int, str]], i: int, indent: int) -> tuple[Any, int]:
    if lines[i][1].startswith("- "):
        items = []
        while i < len(lines) and lines[i][0] == indent and lines[i][1].startswith("- "):
            items.append(_yaml_scalar(lines[i][1][2:]))
            i += 1
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][0] == indent:
        key, colon, rest = lines[i][1].partition(":")
        assert colon, f"unsupported YAML line {lines[i][1]!r}"
        i += 1
        if rest.strip():
            mapping[key] = _yaml_scalar(rest)
        else:
            mapping[key], i = _yaml_block(lines, i, lines[i][0])
    return mapping, i


def _load_yaml(text: str) -> Any:
    """Read the YAML subset of the BLS test files: maps, lists, quoted strings, literals."""
    lines = [
        (len(line) - len(line.lstrip(" ")), line.strip())
        for line in text.splitlines()
        if line.strip()
    ]
    value, end = _yaml_block(lines, 0, 0)
    assert end == len(lines), "unparsed YAML left over"
    return value


def test_yaml_reader_reads_the_shapes_used() -> None:
    text = "input:\n  keys:\n  - '0x01'\n  - '0x02'\n  message: '0x03'\noutput: null\n"
    assert _load_yaml(text) == {
        "input": {"keys": ["0x01", "0x02"], "message": "0x03"},
        "output": None,
    }
    assert _load_yaml("input:\n- '0xc0'\noutput: true\n") == {"input": ["0xc0"], "output": True}
    with pytest.raises(ValueError, match="unsupported"):
        _load_yaml("output: 0x01\n")


def test_consensus_spec_tests(vectors: Path) -> None:
    root = _bls_dir(vectors, "consensus-spec-tests")
    for category, expected in sorted(CONSENSUS_COUNTS.items()):
        files = sorted((root / category).glob("*/data.yaml"))
        cases = [(p.parent.name, _load_yaml(p.read_text())) for p in files]
        _report("consensus-spec-tests", category, _run(category, cases), expected)


# -- chia-blspy ----------------------------------------------------------------------


def test_chia_pop_scheme_vectors(vectors: Path) -> None:
    data = json.loads(
        (_bls_dir(vectors, "chia-blspy") / "python_bindings_test_vectors.json").read_text()
    )
    (pop,) = [case for case in data["cases"] if case["scheme"] == "PopSchemeMPL"]
    assert pop["dst"].encode() == CIPHERSUITE
    message = _hex(data["message"])
    keys = [BlsSecretKey.from_bytes(_hex(data[name])) for name in ("sk1", "sk2")]
    signatures = [key.sign(message) for key in keys]
    assert [s.to_bytes().hex() for s in signatures] == [pop["sig1"], pop["sig2"]]
    aggregate = bls_aggregate(signatures)
    assert aggregate.to_bytes().hex() == pop["aggregate_sig1_sig2"]
    bls_fast_aggregate_verify([key.public_key for key in keys], message, aggregate)
    print("chia-blspy PoP scheme: 3 values")


def test_chia_invalid_encodings(vectors: Path) -> None:
    data = json.loads(
        (_bls_dir(vectors, "chia-blspy") / "python_bindings_test_vectors.json").read_text()
    )
    for raw in data["invalid_g1_encodings"]:
        with pytest.raises(BlsEncodingError):
            BlsPublicKey.from_bytes(_hex(raw))
        with pytest.raises(BlsEncodingError):
            BlspyBackend().g1_from_bytes(_hex(raw))
    for raw in data["invalid_g2_encodings"]:
        with pytest.raises(BlsEncodingError):
            BlsSignature.from_bytes(_hex(raw))
    counts = len(data["invalid_g1_encodings"]), len(data["invalid_g2_encodings"])
    print(f"chia-blspy invalid encodings: {counts[0]} G1, {counts[1]} G2")
    assert counts == (9, 11)


def test_chia_keys_and_possession_proof(vectors: Path) -> None:
    data = json.loads((_bls_dir(vectors, "chia-blspy") / "src_test_cpp_vectors.json").read_text())
    basic = data["chia_vector_1_basic"]
    assert BlsSecretKey.from_bytes(_hex(basic["sk1"])).public_key.to_bytes().hex() == basic["pk1"]
    # Chia derives keys with an older KeyGen (see _bls_backend), so its
    # KeyGen outputs are not ours; the PoP proof is checked from the secret key.
    pop = data["chia_vector_3_pop"]
    assert pop["pop_dst"].encode() == POP_CIPHERSUITE
    key = BlsSecretKey.from_bytes(_chia_keygen(_hex(pop["keygen_seed1"])))
    proof = key.prove_possession()
    assert proof.to_bytes().hex() == pop["pop_prove(sk1)"]
    bls_verify_possession(key.public_key, proof)
    # The helper is the KeyGen Chia used: it reproduces the vector's sk1.
    assert _chia_keygen(_hex(basic["keygen_seed1"])).hex() == basic["sk1"]
    print("chia-blspy keys and proof: 3 values")


def _chia_keygen(seed: bytes) -> bytes:
    """blspy's own KeyGen (an earlier draft: fixed salt, no retry loop)."""
    return bytes(blspy.PopSchemeMPL.key_gen(seed))
