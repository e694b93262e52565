"""Known-answer tests: cacophony and snow Noise vectors, byte-exact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dchat_crypto import HandshakeState, PrivateKey, PublicKey
from dchat_crypto.hazmat import (
    NoiseProtocolNameError,
    handshake_with_ephemeral,
    parse_protocol_name,
)

FILES = ("cacophony.txt", "snow_snow.txt")
# Lower bounds on how many vectors we support per file (all 25519, non-deferred).
MINIMUM_RUN = {"cacophony.txt": 288, "snow_snow.txt": 224}  # 512 in all


def _load(vectors: Path, name: str) -> list[dict[str, Any]]:
    path = vectors / "noise" / name
    if not path.is_file():
        pytest.skip(f"Noise vector file {path} not found")
    return json.loads(path.read_text())["vectors"]


def _supported(vector: dict[str, Any]) -> bool:
    try:
        parse_protocol_name(vector["protocol_name"])
    except NoiseProtocolNameError:
        return False  # 448 DH or a deferred pattern
    return True


def _side(vector: dict[str, Any], prefix: str, *, initiator: bool) -> HandshakeState:
    def get(key: str) -> bytes | None:
        value = vector.get(f"{prefix}_{key}")
        return None if value is None else bytes.fromhex(value)

    static, remote, eph = get("static"), get("remote_static"), get("ephemeral")
    kwargs: dict[str, Any] = {
        "initiator": initiator,
        "prologue": get("prologue") or b"",
        "static": None if static is None else PrivateKey(static),
        "remote_static": None if remote is None else PublicKey(remote),
        "psks": [bytes.fromhex(p) for p in vector.get(f"{prefix}_psks", [])],
    }
    name = vector["protocol_name"]
    if eph is None:
        return HandshakeState(name, **kwargs)
    return handshake_with_ephemeral(name, ephemeral=PrivateKey(eph), **kwargs)


def run_vector(vector: dict[str, Any]) -> None:
    """Replay one vector through two endpoints, checking every byte."""
    protocol = parse_protocol_name(vector["protocol_name"])
    init = _side(vector, "init", initiator=True)
    resp = _side(vector, "resp", initiator=False)
    handshake_len = len(protocol.messages)
    transports = None
    for i, message in enumerate(vector["messages"]):
        payload, expected = bytes.fromhex(message["payload"]), bytes.fromhex(message["ciphertext"])
        from_init = protocol.one_way or i % 2 == 0
        if i < handshake_len:
            sender, receiver = (init, resp) if from_init else (resp, init)
            assert sender.write_message(payload) == expected, f"handshake message {i}"
            assert receiver.read_message(expected) == payload
            continue
        if transports is None:
            assert init.is_complete
            assert resp.is_complete
            assert init.handshake_hash == resp.handshake_hash
            if "handshake_hash" in vector:
                assert init.handshake_hash.hex() == vector["handshake_hash"]
            transports = (init.split(), resp.split())
        tx, rx = transports if from_init else transports[::-1]
        assert tx.encrypt(payload) == expected, f"transport message {i}"
        assert rx.decrypt(expected) == payload


@pytest.mark.parametrize("filename", FILES)
def test_all_supported_vectors_pass(
    vectors: Path, filename: str, capsys: pytest.CaptureFixture[str]
) -> None:
    all_vectors = _load(vectors, filename)
    supported = [v for v in all_vectors if _supported(v)]
    failures = []
    for vector in supported:
        try:
            run_vector(vector)
        except Exception as exc:  # collect all, report together
            failures.append(f"{vector['protocol_name']}: {exc!r}")
    with capsys.disabled():
        print(
            f"\n{filename}: ran {len(supported)}, filtered out {len(all_vectors) - len(supported)}"
        )
    assert not failures, f"{len(failures)} failures, first: {failures[:5]}"
    assert len(supported) >= MINIMUM_RUN[filename]


@pytest.mark.parametrize("filename", FILES)
def test_xx_chachapoly_blake2s_present_and_passing(vectors: Path, filename: str) -> None:
    matching = [
        v
        for v in _load(vectors, filename)
        if v["protocol_name"] == "Noise_XX_25519_ChaChaPoly_BLAKE2s"
    ]
    assert matching
    for vector in matching:
        run_vector(vector)


def test_vector_replay_detects_a_wrong_byte(vectors: Path) -> None:
    vector = next(
        v
        for v in _load(vectors, "cacophony.txt")
        if v["protocol_name"] == "Noise_XX_25519_AESGCM_SHA256"
    )
    tampered = json.loads(json.dumps(vector))
    tampered["messages"][0]["payload"] = "00" + tampered["messages"][0]["payload"]
    with pytest.raises(AssertionError):
        run_vector(tampered)
