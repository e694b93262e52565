"""Broadcast channels' invite links and post contents (protocol §31).

An invite link is ``dchat-channel:`` and the unpadded base64url of the
canonical map::

    {"v": 1, "ck": channel Ed25519 key(32), "cs": content secret(32),
     "t": title(<= 128), "r": [relay address, ...] (1..8)}

Whoever holds the link can read the channel (the content secret) and check its
posts (the channel key); it grants no right to publish. A post's ``body``
(:class:`dchat_crypto.hazmat.ChannelPost`) is ``nonce(12) || ChaCha20-Poly1305(
key, nonce, plaintext, ad)`` with ``key = HKDF-SHA256(cs, salt=topic,
info="dchat-channel-content-v1")``, a random nonce, and ``ad =
"dchat-channel-body-v1" 0x00 || topic || publisher key || q(8, big-endian)``,
so a body cannot be moved under another post's header. The plaintext is
canonical ``{"text": str(<= 16000)}``. Every channel is private in this
sense: relays store ciphertext only (there is no plaintext mode).
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass
from typing import Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode
from dchat_crypto import DecryptionError
from dchat_crypto.hazmat import chacha20poly1305_decrypt, chacha20poly1305_encrypt, hkdf_sha256

from ._content import MAX_TEXT
from ._errors import ChannelError

__all__ = ("LINK_PREFIX", "ChannelLink", "open_body", "seal_body")

LINK_PREFIX: Final = "dchat-channel:"
MAX_TITLE: Final = 128
MAX_RELAYS: Final = 8
_MAX_LINK: Final = 4096
_LIMITS: Final = DecodeLimits(max_size=2048, max_depth=2, max_items=32)
_NONCE: Final = 12
_B64: Final = re.compile(r"[A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class ChannelLink:
    """What a subscriber needs: the channel key, the content secret, the title, the relays."""

    channel_key: bytes
    secret: bytes
    title: str
    relays: tuple[str, ...]

    def encode(self) -> str:
        """The ``dchat-channel:`` text."""
        value = {
            "v": 1,
            "ck": self.channel_key,
            "cs": self.secret,
            "t": self.title,
            "r": list(self.relays),
        }
        return LINK_PREFIX + base64.urlsafe_b64encode(canonical_encode(value)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ChannelLink:
        """Parse an invite link.

        Raises:
            ChannelError: ``bad_link``: not a channel link, or malformed.
        """
        text = text.strip()
        body = text.removeprefix(LINK_PREFIX)
        if body == text or len(text) > _MAX_LINK or not _B64.fullmatch(body):
            raise ChannelError("bad_link", "not a dchat channel link")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            f = Fields(canonical_decode(raw, _LIMITS), "channel link", _FIELDS)
            if f.get_int("v") != 1:
                raise DecodeError("unknown link version")
            relays = f.get_list("r", max_len=MAX_RELAYS)
            if not relays or not all(isinstance(r, str) and 0 < len(r) <= 300 for r in relays):
                raise DecodeError("a link names 1 to 8 relays")
            title = f.get_str("t", max_len=MAX_TITLE)
            link = cls(f.get_bytes("ck", size=32), f.get_bytes("cs", size=32), title, tuple(relays))
        except (DecodeError, ValueError) as exc:
            raise ChannelError("bad_link", f"malformed channel link: {exc}") from None
        return link


_FIELDS: Final = frozenset({"v", "ck", "cs", "t", "r"})


def _key(secret: bytes, topic: bytes) -> bytes:
    return hkdf_sha256(secret, salt=topic, info=b"dchat-channel-content-v1", length=32)


def _ad(topic: bytes, publisher: bytes, seq: int) -> bytes:
    return b"dchat-channel-body-v1\x00" + topic + publisher + seq.to_bytes(8, "big")


def seal_body(secret: bytes, topic: bytes, publisher: bytes, seq: int, text: str) -> bytes:
    """A post body: ``text`` encrypted under the channel's content key, with a random nonce."""
    if not text or len(text) > MAX_TEXT:
        raise ChannelError("bad_text", f"a post is 1 to {MAX_TEXT} characters")
    nonce = os.urandom(_NONCE)
    plain = canonical_encode({"text": text})
    return nonce + chacha20poly1305_encrypt(
        _key(secret, topic), nonce, plain, _ad(topic, publisher, seq)
    )


def open_body(secret: bytes, topic: bytes, publisher: bytes, seq: int, body: bytes) -> str:
    """The text of a post body.

    Raises:
        ChannelError: ``undecryptable`` (one opaque code for any failure).
    """
    try:
        plain = chacha20poly1305_decrypt(
            _key(secret, topic), body[:_NONCE], body[_NONCE:], _ad(topic, publisher, seq)
        )
        f = Fields(canonical_decode(plain, DecodeLimits(max_size=1 << 17)), "post", _TEXT)
        text = f.get_str("text", max_len=MAX_TEXT)
    except (DecryptionError, DecodeError, ValueError):
        raise ChannelError("undecryptable", "the post does not open") from None
    if not text:
        raise ChannelError("undecryptable", "the post does not open")
    return text


_TEXT: Final = frozenset({"text"})
