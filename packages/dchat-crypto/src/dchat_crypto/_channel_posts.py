"""Broadcast channels' signed records: the descriptor and the post (protocol §31).

Both the relay (which lets only a channel's publishers fill its topic) and the
subscribers' messaging engines (which check every post) read these records, so
they live here, below both. Canonical maps::

    descriptor {"v": 1, "ck": channel Ed25519 key(32), "n": version,
                "pubs": [publisher Ed25519 key(32), ...] (<= 16), "sig": bytes(64)}
    post       {"v": 1, "tp": topic(32), "pk": publisher key(32), "q": 1..2^63-1,
                "ts": ms, "body": bytes(<= 65536), "sig": bytes(64)}

``sig`` is Ed25519 over ``domain || canonical(map without "sig")`` with the
domains ``"dchat-channel-desc-v1" 0x00`` (signed by ``ck``) and
``"dchat-channel-post-v1" 0x00`` (signed by ``pk``). The topic of a channel is
``BLAKE2b-256(ck, person="dchat-topic")``; a post's id is ``BLAKE2b-256(post
bytes, person="dchat-post")``. ``q`` is the publisher's own counter, so a
reader sees gaps and a replayed counter. Every structural problem and every
bad signature raises :class:`ChannelRecordError` (the signature case says
nothing more).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from dchat_core import DecodeError, DecodeLimits, Fields, canonical_decode, canonical_encode

from ._errors import BadSignatureError, ChannelRecordError, InvalidKeyError
from ._keys import SigningKey, VerifyKey

__all__ = ("MAX_POST_BODY", "MAX_PUBLISHERS", "ChannelDescriptor", "ChannelPost", "topic_of")

MAX_POST_BODY: Final = 64 * 1024
"""The largest post body (ciphertext) a post may carry."""
MAX_PUBLISHERS: Final = 16
"""The most publisher keys a descriptor lists (besides the channel key)."""
_DESC_DOMAIN: Final = b"dchat-channel-desc-v1\x00"
_POST_DOMAIN: Final = b"dchat-channel-post-v1\x00"
_MAX_SEQ: Final = 2**63 - 1
_DESC_LIMITS: Final = DecodeLimits(max_size=1024, max_depth=2, max_items=32)
_POST_LIMITS: Final = DecodeLimits(max_size=MAX_POST_BODY + 256, max_depth=1, max_items=16)


def topic_of(channel_key: bytes) -> bytes:
    """The relay topic of the channel whose Ed25519 key is ``channel_key`` (32 bytes)."""
    return hashlib.blake2b(channel_key, digest_size=32, person=b"dchat-topic").digest()


def _key(raw: bytes) -> VerifyKey:
    try:
        return VerifyKey.from_bytes(raw)
    except InvalidKeyError:
        raise ChannelRecordError("not an Ed25519 key") from None


def _verify(key: bytes, signature: bytes, message: bytes) -> None:
    try:
        _key(key).verify(signature, message)
    except BadSignatureError:
        raise ChannelRecordError("bad signature") from None


@dataclass(frozen=True, slots=True)
class ChannelDescriptor:
    """Who may publish in a channel, signed by the channel key (higher ``version`` wins)."""

    channel_key: bytes
    version: int
    publishers: tuple[bytes, ...]
    signature: bytes

    @classmethod
    def sign(
        cls, key: SigningKey, version: int, publishers: tuple[bytes, ...]
    ) -> ChannelDescriptor:
        """A descriptor of ``key``'s channel listing ``publishers`` (Ed25519 keys)."""
        ck = key.public_key.to_bytes()
        unsigned = cls(ck, version, tuple(publishers), b"")
        unsigned.check()
        return cls(ck, version, tuple(publishers), key.sign(_DESC_DOMAIN + unsigned._body()))

    def check(self) -> None:
        """Raise :class:`ChannelRecordError` unless the fields are in range."""
        if not 0 <= self.version <= _MAX_SEQ or len(self.publishers) > MAX_PUBLISHERS:
            raise ChannelRecordError("descriptor out of range")
        if len(set(self.publishers)) != len(self.publishers):
            raise ChannelRecordError("a publisher is listed twice")
        for raw in (self.channel_key, *self.publishers):
            _key(raw)

    @property
    def topic(self) -> bytes:
        """The channel's relay topic."""
        return topic_of(self.channel_key)

    def allows(self, publisher: bytes) -> bool:
        """Whether ``publisher`` may sign posts of this channel."""
        return publisher == self.channel_key or publisher in self.publishers

    def _body(self) -> bytes:
        value = {"v": 1, "ck": self.channel_key, "n": self.version, "pubs": list(self.publishers)}
        return canonical_encode(value)

    def to_bytes(self) -> bytes:
        """The canonical encoding."""
        return canonical_encode(
            {
                "v": 1,
                "ck": self.channel_key,
                "n": self.version,
                "pubs": list(self.publishers),
                "sig": self.signature,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ChannelDescriptor:
        """Parse and verify a descriptor from untrusted bytes.

        Raises:
            ChannelRecordError: malformed, out of range, or the signature fails.
        """
        try:
            f = Fields(canonical_decode(data, _DESC_LIMITS), "channel descriptor", _DESC_FIELDS)
            if f.get_int("v") != 1:
                raise DecodeError("unknown descriptor version")
            pubs = f.get_list("pubs", max_len=MAX_PUBLISHERS)
            if not all(isinstance(p, bytes) for p in pubs):
                raise DecodeError("publishers must be keys")
            ck, sig = f.get_bytes("ck", size=32), f.get_bytes("sig", size=64)
            desc = cls(ck, f.get_int("n"), tuple(pubs), sig)
        except DecodeError as exc:
            raise ChannelRecordError(f"malformed descriptor: {exc}") from None
        desc.check()
        _verify(desc.channel_key, desc.signature, _DESC_DOMAIN + desc._body())
        return desc


_DESC_FIELDS: Final = frozenset({"v", "ck", "n", "pubs", "sig"})
_POST_FIELDS: Final = frozenset({"v", "tp", "pk", "q", "ts", "body", "sig"})


@dataclass(frozen=True, slots=True)
class ChannelPost:
    """One post: ``body`` (opaque to relays) signed by ``publisher`` with its counter ``seq``."""

    topic: bytes
    publisher: bytes
    seq: int
    time_ms: int
    body: bytes
    signature: bytes

    @classmethod
    def sign(
        cls, key: SigningKey, topic: bytes, seq: int, time_ms: int, body: bytes
    ) -> ChannelPost:
        """A post to ``topic`` signed by ``key``."""
        pk = key.public_key.to_bytes()
        unsigned = cls(topic, pk, seq, time_ms, body, b"")
        unsigned._check()
        return cls(topic, pk, seq, time_ms, body, key.sign(_POST_DOMAIN + unsigned._body()))

    def _check(self) -> None:
        if len(self.topic) != 32 or not 1 <= self.seq <= _MAX_SEQ:
            raise ChannelRecordError("post out of range")
        if not 0 <= self.time_ms <= _MAX_SEQ or len(self.body) > MAX_POST_BODY:
            raise ChannelRecordError("post out of range")

    def _map(self) -> dict[str, object]:
        return {
            "v": 1,
            "tp": self.topic,
            "pk": self.publisher,
            "q": self.seq,
            "ts": self.time_ms,
            "body": self.body,
        }

    def _body(self) -> bytes:
        return canonical_encode(self._map())

    def to_bytes(self) -> bytes:
        """The canonical encoding."""
        return canonical_encode({**self._map(), "sig": self.signature})

    @property
    def post_id(self) -> bytes:
        """BLAKE2b-256 of the encoding, personalised ``dchat-post``."""
        return post_id_of(self.to_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> ChannelPost:
        """Parse a post from untrusted bytes and verify its signature by its own ``pk``.

        Whether ``pk`` may publish in the topic is the caller's check
        (:meth:`ChannelDescriptor.allows`, and that the topic is the descriptor's).

        Raises:
            ChannelRecordError: malformed, out of range, or the signature fails.
        """
        try:
            f = Fields(canonical_decode(data, _POST_LIMITS), "channel post", _POST_FIELDS)
            if f.get_int("v") != 1:
                raise DecodeError("unknown post version")
            post = cls(
                f.get_bytes("tp", size=32),
                f.get_bytes("pk", size=32),
                f.get_int("q", lo=1),
                f.get_int("ts"),
                f.get_bytes("body", max_size=MAX_POST_BODY),
                f.get_bytes("sig", size=64),
            )
        except DecodeError as exc:
            raise ChannelRecordError(f"malformed post: {exc}") from None
        _verify(post.publisher, post.signature, _POST_DOMAIN + post._body())
        return post


def post_id_of(data: bytes) -> bytes:
    """A post's id from its encoding."""
    return hashlib.blake2b(data, digest_size=32, person=b"dchat-post").digest()
