"""Relay probes: a validator's signed, fresh challenge and the relay's signed answer.

Theory of operation
-------------------
A validator measures a relay's uptime by asking it, over an ordinary relay
link, to sign a *challenge* with its node key (the key its link handshake
proves and its directory entry names). The challenge is the canonical map::

    {"v": 1, "relay": relay node id(32), "by": prober key(32), "e": epoch,
     "n": nonce(16), "at": milliseconds since the epoch, "sig": bytes(64)}

``sig`` is the prober's Ed25519 signature over ``"dchat-probe-v1" 0x00 ||
canonical(map without "sig")``. The relay checks that signature, that the
challenge names *its* node id and that ``at`` is within
:data:`MAX_SKEW_MS` of its clock, and answers with its node key's signature
over ``"dchat-probe-answer-v1" 0x00 || challenge bytes``. The domain prefix
keeps the relay from being used as a signing oracle for anything else (link
proofs and transactions have their own prefixes).

The prober accepts an answer only for a challenge it has outstanding, only
before its deadline (a late answer is a failure: a relay that answers after
``timeout`` was not serving), and only if the signature verifies under the
key the link proved, whose node id must be the one the directory names. A
fresh random nonce per challenge makes a recorded answer useless later, and
the prober's signature makes the challenge attributable: an answer is
evidence, to anyone, that this relay was up and answering this validator at
``at``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Self

from dchat_core import DecodeError, DecodeLimits, Fields, NodeId, canonical_decode, canonical_encode
from dchat_crypto import BadSignatureError, SigningKey, VerifyKey

from ._errors import ProbeError

__all__ = (
    "ANSWER_DOMAIN",
    "CHALLENGE_DOMAIN",
    "MAX_SKEW_MS",
    "NONCE_SIZE",
    "ProbeChallenge",
    "answer_probe",
    "check_probe_answer",
    "check_signed",
)

CHALLENGE_DOMAIN: Final = b"dchat-probe-v1\x00"
ANSWER_DOMAIN: Final = b"dchat-probe-answer-v1\x00"
#: How far a challenge's time may be from the relay's clock.
MAX_SKEW_MS: Final = 60_000
NONCE_SIZE: Final = 16
MAX_CHALLENGE: Final = 256
_LIMITS: Final = DecodeLimits(max_size=MAX_CHALLENGE, max_depth=1, max_items=16)
_FIELDS: Final = frozenset({"v", "relay", "by", "e", "n", "at", "sig"})


@dataclass(frozen=True, slots=True)
class ProbeChallenge:
    """A prober's signed challenge to one relay.

    Attributes:
        relay: The node id of the relay it is for.
        prober: The prober's Ed25519 public key (a validator's account key).
        epoch: The reward epoch the probe counts for.
        nonce: 16 random bytes, fresh per challenge.
        issued_ms: When it was made (milliseconds since the Unix epoch).
        signature: The prober's signature (see the module doc).
    """

    relay: bytes
    prober: bytes
    epoch: int
    nonce: bytes
    issued_ms: int
    signature: bytes

    def _unsigned(self) -> dict[str, Any]:
        return {
            "v": 1,
            "relay": self.relay,
            "by": self.prober,
            "e": self.epoch,
            "n": self.nonce,
            "at": self.issued_ms,
        }

    @classmethod
    def create(
        cls, key: SigningKey, relay: NodeId, epoch: int, nonce: bytes, now_ms: int
    ) -> ProbeChallenge:
        """A challenge to ``relay`` signed by ``key`` (``nonce``: fresh random bytes)."""
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"a probe nonce is {NONCE_SIZE} bytes")
        draft = cls(bytes(relay), key.public_key.to_bytes(), epoch, nonce, now_ms, b"")
        signature = key.sign(CHALLENGE_DOMAIN + canonical_encode(draft._unsigned()))
        return cls(draft.relay, draft.prober, epoch, nonce, now_ms, signature)

    def to_bytes(self) -> bytes:
        """The canonical encoding (what the relay signs, after its domain)."""
        return canonical_encode({**self._unsigned(), "sig": self.signature})

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Decode a challenge from untrusted bytes (structure only; see :meth:`check`).

        Raises:
            ProbeError: Not exactly one well-formed challenge.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "probe challenge", _FIELDS)
            if f.get_int("v") != 1:
                raise ProbeError("unsupported probe version")
            return cls(
                relay=f.get_bytes("relay", size=32),
                prober=f.get_bytes("by", size=32),
                epoch=f.get_int("e", hi=1 << 62),
                nonce=f.get_bytes("n", size=NONCE_SIZE),
                issued_ms=f.get_int("at", hi=1 << 62),
                signature=f.get_bytes("sig", size=64),
            )
        except DecodeError as exc:
            raise ProbeError(f"malformed probe challenge: {exc}") from None

    def check(self, relay: NodeId, now_ms: int) -> None:
        """What a relay checks before answering: for it, fresh, signed by the prober.

        Raises:
            ProbeError: Another relay's, stale or from the future, or forged.
        """
        if self.relay != bytes(relay):
            raise ProbeError("the challenge is for another relay")
        if abs(now_ms - self.issued_ms) > MAX_SKEW_MS:
            raise ProbeError("the challenge is not fresh")
        signed = CHALLENGE_DOMAIN + canonical_encode(self._unsigned())
        check_signed(self.prober, self.signature, signed, "the challenge")


def check_signed(key: bytes, signature: bytes, message: bytes, what: str) -> None:
    """Check ``key``'s signature over ``message``.

    Raises:
        ProbeError: It does not verify (``what`` names the signed thing in the message).
    """
    try:
        VerifyKey(key).verify(signature, message)
    except BadSignatureError:
        raise ProbeError(f"{what}'s signature does not verify") from None


def answer_probe(node_key: SigningKey, challenge: bytes, now_ms: int) -> bytes:
    """A relay's answer to ``challenge``: its node key's signature, after the checks.

    Raises:
        ProbeError: The challenge is malformed, not for this relay, stale or forged.
    """
    parsed = ProbeChallenge.from_bytes(challenge)
    parsed.check(NodeId.derive(node_key.public_key.to_bytes()), now_ms)
    return node_key.sign(ANSWER_DOMAIN + challenge)


def check_probe_answer(challenge: ProbeChallenge, relay_key: bytes, signature: bytes) -> bool:
    """Whether ``signature`` answers ``challenge`` by the relay whose node key is ``relay_key``."""
    if bytes(NodeId.derive(relay_key)) != challenge.relay or len(signature) != 64:
        return False
    try:
        VerifyKey(relay_key).verify(signature, ANSWER_DOMAIN + challenge.to_bytes())
    except BadSignatureError:
        return False
    return True
