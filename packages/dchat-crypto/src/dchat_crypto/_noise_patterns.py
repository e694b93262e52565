"""Noise handshake patterns and protocol-name parsing (spec sections 7 and 9).

A protocol name ``Noise_<pattern>_<dh>_<cipher>_<hash>`` is parsed into a
:class:`NoiseProtocol`. Supported: DH ``25519``; ciphers ``ChaChaPoly`` and
``AESGCM``; hashes ``SHA256``, ``SHA512``, ``BLAKE2s``, ``BLAKE2b``; the 12
fundamental interactive patterns and the one-way ``N``, ``K``, ``X``, each with
any combination of ``psk0``..``pskN`` modifiers (``XXpsk0+psk2``). Deferred
patterns (``X1K``, ...) and other modifiers raise
:class:`NoiseProtocolNameError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from ._errors import NoiseProtocolNameError
from ._noise_crypto import CIPHERS, HASHES, CipherFunctions, HashFunctions

__all__ = ("ONE_WAY_PATTERNS", "PATTERNS", "NoiseProtocol", "parse_protocol_name")

Tokens = tuple[str, ...]

# name -> (initiator pre-message, responder pre-message, message patterns).
# Messages alternate initiator -> responder -> initiator ...
PATTERNS: dict[str, tuple[Tokens, Tokens, tuple[Tokens, ...]]] = {
    "N": ((), ("s",), (("e", "es"),)),
    "K": (("s",), ("s",), (("e", "es", "ss"),)),
    "X": ((), ("s",), (("e", "es", "s", "ss"),)),
    "NN": ((), (), (("e",), ("e", "ee"))),
    "NK": ((), ("s",), (("e", "es"), ("e", "ee"))),
    "NX": ((), (), (("e",), ("e", "ee", "s", "es"))),
    "XN": ((), (), (("e",), ("e", "ee"), ("s", "se"))),
    "XK": ((), ("s",), (("e", "es"), ("e", "ee"), ("s", "se"))),
    "XX": ((), (), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    "KN": (("s",), (), (("e",), ("e", "ee", "se"))),
    "KK": (("s",), ("s",), (("e", "es", "ss"), ("e", "ee", "se"))),
    "KX": (("s",), (), (("e",), ("e", "ee", "se", "s", "es"))),
    "IN": ((), (), (("e", "s"), ("e", "ee", "se"))),
    "IK": ((), ("s",), (("e", "es", "s", "ss"), ("e", "ee", "se"))),
    "IX": ((), (), (("e", "s"), ("e", "ee", "se", "s", "es"))),
}
ONE_WAY_PATTERNS = frozenset({"N", "K", "X"})

_NAME_RE = re.compile(r"Noise_([A-Z]+)((?:psk\d+)(?:\+psk\d+)*)?_([^_]+)_([^_]+)_([^_]+)")


@dataclass(frozen=True, slots=True)
class NoiseProtocol:
    """A parsed Noise protocol name with its resolved pattern and functions."""

    name: str
    base: str
    pattern: str
    pre_initiator: Tokens
    pre_responder: Tokens
    messages: tuple[Tokens, ...]
    cipher: CipherFunctions
    hash: HashFunctions

    @property
    def one_way(self) -> bool:
        """True for ``N``, ``K`` and ``X`` (a single initiator->responder message)."""
        return self.base in ONE_WAY_PATTERNS

    @property
    def psk_count(self) -> int:
        """Number of ``psk`` tokens, i.e. of pre-shared keys needed."""
        return sum(tokens.count("psk") for tokens in self.messages)


def _apply_psks(messages: tuple[Tokens, ...], modifiers: str) -> tuple[Tokens, ...]:
    result = [list(tokens) for tokens in messages]
    for modifier in modifiers.split("+"):
        index = int(modifier.removeprefix("psk"))
        if index > len(result):
            raise NoiseProtocolNameError(f"{modifier} is beyond the pattern's messages")
        if index == 0:
            result[0].insert(0, "psk")
        else:
            result[index - 1].append("psk")
    return tuple(tuple(tokens) for tokens in result)


def parse_protocol_name(name: str) -> NoiseProtocol:
    """Parse and resolve a full Noise protocol name.

    Args:
        name: E.g. ``"Noise_XX_25519_ChaChaPoly_BLAKE2s"``.

    Returns:
        The resolved protocol.

    Raises:
        NoiseProtocolNameError: If the name is malformed or anything is unsupported.
    """
    if not isinstance(name, str):
        raise NoiseProtocolNameError(f"unsupported Noise protocol name: {name!r}")
    return _parse(name)


# Every handshake parses its protocol name; the result is immutable, so each name
# is parsed once. Failures raise and are therefore never cached.
@lru_cache(maxsize=128)
def _parse(name: str) -> NoiseProtocol:
    match = _NAME_RE.fullmatch(name)
    if match is None:
        raise NoiseProtocolNameError(f"unsupported Noise protocol name: {name!r}")
    base, modifiers, dh, cipher, hash_name = match.groups()
    if base not in PATTERNS:
        raise NoiseProtocolNameError(f"unsupported Noise pattern: {base!r}")
    if dh != "25519":
        raise NoiseProtocolNameError(f"unsupported Noise DH function: {dh!r}")
    if cipher not in CIPHERS or hash_name not in HASHES:
        raise NoiseProtocolNameError(f"unsupported Noise cipher or hash in {name!r}")
    pre_i, pre_r, messages = PATTERNS[base]
    if modifiers:
        messages = _apply_psks(messages, modifiers)
    return NoiseProtocol(
        name=name,
        base=base,
        pattern=base + (modifiers or ""),
        pre_initiator=pre_i,
        pre_responder=pre_r,
        messages=messages,
        cipher=CIPHERS[cipher],
        hash=HASHES[hash_name],
    )
