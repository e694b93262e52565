"""The Ristretto255 group over rbcl's libsodium matches RFC 9496 and decodes totally."""

from __future__ import annotations

import hashlib
import json
import pathlib
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_privacy.lowlevel import GROUP_ORDER, Element, Scalar, ZkDecodeError

VECTORS = json.loads(
    (pathlib.Path(__file__).parent / "data" / "ristretto255_rfc9496.json").read_text()
)


def test_small_multiples_of_the_generator() -> None:
    # RFC 9496 A.1: encodings of 0*B .. 15*B, by repeated addition and by scalar mult.
    acc = Element.identity()
    for i, encoding in enumerate(VECTORS["multiples_of_generator"]):
        assert acc.to_bytes().hex() == encoding
        assert Element.from_bytes(bytes.fromhex(encoding)) == acc
        assert Element.base_mul(Scalar.from_int(i)) == acc
        acc = acc + Element.generator()


@pytest.mark.parametrize("encoding", VECTORS["invalid_encodings"])
def test_invalid_encodings_are_refused(encoding: str) -> None:
    # RFC 9496 A.2: non-canonical, negative, non-square and s = -1 encodings.
    with pytest.raises(ZkDecodeError):
        Element.from_bytes(bytes.fromhex(encoding))


@pytest.mark.parametrize("case", VECTORS["hash_to_group"], ids=lambda c: c["element"][:8])
def test_hash_to_group(case: dict[str, str]) -> None:
    # RFC 9496 A.3: one-way map of SHA-512(label).
    digest = hashlib.sha512(case["label"].encode()).digest()
    assert Element.from_uniform_bytes(digest).to_bytes().hex() == case["element"]


@given(st.integers(0, GROUP_ORDER - 1), st.integers(0, GROUP_ORDER - 1))
def test_group_and_scalar_laws(a: int, b: int) -> None:
    sa, sb = Scalar.from_int(a), Scalar.from_int(b)
    g = Element.generator()
    assert g * sa + g * sb == g * (sa + sb)
    assert (g * sa) * sb == g * (sa * sb)
    assert g * sa - g * sb == g * (sa - sb)
    assert (sa + -sa).is_zero()
    h = Element.from_uniform_bytes(hashlib.sha512(b"h").digest())
    assert h * sa + h * sb == h * (sa + sb)


def test_scalars_must_be_canonical() -> None:
    assert Scalar.from_bytes((GROUP_ORDER - 1).to_bytes(32, "little")) == Scalar.from_int(-1)
    for bad in (GROUP_ORDER.to_bytes(32, "little"), b"\xff" * 32, bytes(31), bytes(33)):
        with pytest.raises(ZkDecodeError):
            Scalar.from_bytes(bad)


@given(st.binary(min_size=0, max_size=40))
def test_element_decoding_is_total(data: bytes) -> None:
    try:
        element = Element.from_bytes(data)
    except ZkDecodeError:
        return
    assert element.to_bytes() == data


def test_secret_scalars_are_not_printed() -> None:
    assert repr(Scalar.from_int(12345)) == "Scalar(...)"


def test_libsodium_is_loaded_on_first_use_and_leaves_no_temporary_file() -> None:
    # rbcl writes its bundled libsodium to a temporary file when imported: importing
    # dchat_privacy must not pay for that, and the first use removes the file.
    code = (
        "import sys, dchat_privacy; print('rbcl' in sys.modules);"
        "from dchat_privacy._ristretto import _na; _na();"
        "print(sys.modules['rbcl._sodium'].lib_path)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    imported_early, lib_path = out.stdout.split()
    assert imported_early == "False"
    assert not pathlib.Path(lib_path).exists()
