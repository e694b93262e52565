"""The transcript and contact-proof statement are what docs/protocol.md section 30 says."""

from __future__ import annotations

import hashlib
import struct

from dchat_privacy import ContactContext, ContactRing, ContactSecret, prove_contact
from dchat_privacy.lowlevel import GROUP_ORDER, Element, Scalar, Transcript, prove_dlog

B = Element.generator()


def record(kind: int, label: bytes, data: bytes) -> bytes:
    return struct.pack(">BH", kind, len(label)) + label + struct.pack(">I", len(data)) + data


def challenge(state: bytes) -> Scalar:
    digest = hashlib.sha512(state + record(0x02, b"challenge", b"")).digest()
    return Scalar.from_int(int.from_bytes(digest, "little") % GROUP_ORDER)


def start(name: bytes) -> bytes:
    return b"dchat-zk-transcript-v1" + record(0x01, b"protocol", name)


def test_schnorr_challenge_by_hand() -> None:
    x = Scalar.from_int(7)
    transcript = Transcript(b"example")
    transcript.append(b"context", b"abc")
    proof = prove_dlog(transcript, B * x, x)
    commit = B * proof.response - (B * x) * proof.challenge
    state = (
        start(b"example")
        + record(0x01, b"context", b"abc")
        + record(0x01, b"sigma-shape", bytes([1]) + (1).to_bytes(2, "big"))
        + record(0x01, b"bases", B.to_bytes())
        + record(0x01, b"publics", (B * x).to_bytes())
        + record(0x01, b"commit", commit.to_bytes())
    )
    assert challenge(state) == proof.challenge


def test_contact_proof_challenge_by_hand() -> None:
    secrets = [ContactSecret.from_bytes(Scalar.from_int(i).to_bytes()) for i in (3, 5)]
    ring = ContactRing([s.public_key for s in secrets])
    context = ContactContext(b"mbox", 9, bytes(range(16)))
    proof = prove_contact(secrets[1], ring, context).proof
    keys = [k.element for k in ring.keys]
    commits = [
        B * s - p * c for p, c, s in zip(keys, proof.challenges, proof.responses, strict=True)
    ]
    state = (
        start(b"dchat-contact-proof-v1")
        + record(0x01, b"mailbox", b"mbox")
        + record(0x01, b"epoch", (9).to_bytes(8, "big"))
        + record(0x01, b"nonce", bytes(range(16)))
        + record(0x01, b"mode", b"\x00")
        + record(0x01, b"sigma-shape", bytes([1]) + (2).to_bytes(2, "big"))
        + record(0x01, b"bases", B.to_bytes())
        + record(0x01, b"publics", b"".join(k.to_bytes() for k in keys))
        + record(0x01, b"commit", b"".join(r.to_bytes() for r in commits))
    )
    assert challenge(state) == proof.challenges[0] + proof.challenges[1]


def test_tag_base_by_hand() -> None:
    context = ContactContext(b"mbox", 9, bytes(16))
    digest = hashlib.sha512(b"dchat-contact-tag-v1" + b"\x04mbox" + (9).to_bytes(8, "big")).digest()
    assert context.tag_base() == Element.from_uniform_bytes(digest)
