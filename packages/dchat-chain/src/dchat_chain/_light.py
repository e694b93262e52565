"""A light client: follow a chain by commit certificates, read its state by Merkle proofs.

Theory of operation. The client trusts one thing to start with: a chain id and
the validator set that signs the next header (the genesis set, or the
``next_validators_hash`` set of a header trusted out of band). From there it
accepts headers one height at a time. Header ``h + 1`` is accepted only if

* it names our chain, height ``h + 1`` and the hash of header ``h`` as its parent;
* its ``validators_hash`` is the hash of the set we trust for ``h + 1``, which
  header ``h`` fixed through its ``next_validators_hash``;
* its commit certificate is for its hash and verifies against that set (one BLS
  fast-aggregate verification, more than 2/3 of the power);
* if it announces a different set for ``h + 2``, the caller hands over that set
  and it hashes to the announced value.

So every set the client ever uses is linked to the one it started from by a
chain of certified headers, and a set that does not chain from it cannot sign
anything the client accepts. There is no skipping: a header is checked against
the set its parent announced, which needs no trust-period assumption.

State proofs follow the engine's app-hash convention (see :mod:`._block`):
header ``N`` carries the application root *after block N - 1*, so the state
after block ``N`` is proven against header ``N + 1``. :meth:`verify_state`
returns the height whose state a proof was checked at, so callers cannot mix
the two up silently.

Errors::

    LightClientError(DchatChainError, PeerError, ValueError)
    ├── UnexpectedHeaderError       another chain id, an unexpected height, or a
    │                               parent that is not the last verified header
    ├── UntrustedValidatorsError    signed by (or announcing) a set that does not
    │                               chain from the trusted one
    ├── UnverifiedHeaderError       a proof against a header this client never verified
    └── InvalidStateProofError      a Merkle proof that does not hold
    InvalidCertificateError         (from ._errors) a forged or foreign certificate
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Final

from dchat_core import (
    DecodeError,
    DecodeLimits,
    Fields,
    PeerError,
    canonical_decode,
    canonical_encode,
)

from ._block import ZERO_HASH, BlockHeader
from ._errors import DchatChainError, InvalidCertificateError
from ._merkle import verify_proof
from ._validators import ValidatorSet

if TYPE_CHECKING:
    from ._block_commit import CommitCertificate

__all__ = (
    "InvalidStateProofError",
    "LightClient",
    "LightClientError",
    "UnexpectedHeaderError",
    "UnverifiedHeaderError",
    "UntrustedValidatorsError",
)

DEFAULT_KEEP: Final = 1024
_LIMITS: Final = DecodeLimits(max_size=1 << 20, max_depth=4, max_items=4096)
_FIELDS: Final = frozenset({"v", "chain", "h", "last", "vals"})


class LightClientError(DchatChainError, PeerError, ValueError):
    """Root of the light client's refusals; the client is unchanged after one."""


class UnexpectedHeaderError(LightClientError):
    """The header is for another chain, at an unexpected height, or does not link."""


class UntrustedValidatorsError(LightClientError):
    """The header's signing set, or the next set it announces, does not chain from ours."""


class UnverifiedHeaderError(LightClientError):
    """A state proof was presented against a header this client has not verified."""


class InvalidStateProofError(LightClientError):
    """A Merkle proof does not show the claimed value under the header's app hash."""


class LightClient:
    """Follows one chain's headers from a trusted validator set.

    Args:
        chain_id: The chain to follow.
        validators: The set trusted to sign header ``height + 1``.
        height: The last verified height (0: nothing verified yet, genesis).
        last_hash: The hash of header ``height`` (zeros at genesis).
        keep: How many recent verified headers to remember for :meth:`verify_state`.
    """

    __slots__ = ("_chain_id", "_headers", "_height", "_keep", "_last_hash", "_validators")

    def __init__(
        self,
        chain_id: str,
        validators: ValidatorSet,
        *,
        height: int = 0,
        last_hash: bytes = ZERO_HASH,
        keep: int = DEFAULT_KEEP,
    ) -> None:
        self._chain_id = chain_id
        self._validators = validators
        self._height = height
        self._last_hash = last_hash
        self._keep = max(keep, 1)
        self._headers: OrderedDict[int, BlockHeader] = OrderedDict()

    @classmethod
    def from_trusted_header(
        cls, header: BlockHeader, next_validators: ValidatorSet, *, keep: int = DEFAULT_KEEP
    ) -> LightClient:
        """Start from a header obtained out of band (a checkpoint) and the set after it.

        Raises:
            UntrustedValidatorsError: ``next_validators`` is not the set the header announces.
        """
        if next_validators.hash() != header.next_validators_hash:
            raise UntrustedValidatorsError("the set does not match the header's next set")
        client = cls(
            header.chain_id,
            next_validators,
            height=header.height,
            last_hash=header.hash(),
            keep=keep,
        )
        client._remember(header)
        return client

    # -- facts ---------------------------------------------------------------------------

    @property
    def chain_id(self) -> str:
        """The chain this client follows."""
        return self._chain_id

    @property
    def height(self) -> int:
        """The last verified height (0 before any header)."""
        return self._height

    @property
    def last_hash(self) -> bytes:
        """The hash of the last verified header."""
        return self._last_hash

    @property
    def validators(self) -> ValidatorSet:
        """The set trusted to sign the next header."""
        return self._validators

    def header(self, height: int) -> BlockHeader | None:
        """A remembered verified header, or None."""
        return self._headers.get(height)

    # -- headers -------------------------------------------------------------------------

    def check_header(
        self,
        header: BlockHeader,
        certificate: CommitCertificate,
        next_validators: ValidatorSet | None = None,
    ) -> ValidatorSet:
        """Judge ``header`` as the next one without changing the client.

        Returns:
            The set trusted for the height after ``header``.

        Raises:
            UnexpectedHeaderError: Wrong chain, height or parent.
            UntrustedValidatorsError: The signing or announced set does not chain.
            InvalidCertificateError: The certificate is not for the header or is forged.
        """
        if header.chain_id != self._chain_id:
            raise UnexpectedHeaderError(f"header is for chain {header.chain_id!r}")
        if header.height != self._height + 1:
            raise UnexpectedHeaderError(f"expected height {self._height + 1}, got {header.height}")
        if header.prev_block_hash != self._last_hash:
            raise UnexpectedHeaderError("header does not extend the last verified header")
        if header.validators_hash != self._validators.hash():
            raise UntrustedValidatorsError("header is signed by a set we do not trust")
        if certificate.height != header.height or certificate.block_hash != header.hash():
            raise InvalidCertificateError("certificate is for another block")
        certificate.verify(self._validators, self._chain_id)
        return self._next_set(header, next_validators)

    def _next_set(self, header: BlockHeader, offered: ValidatorSet | None) -> ValidatorSet:
        if header.next_validators_hash == self._validators.hash():
            return self._validators  # unchanged; priorities do not matter to a light client
        if offered is None or offered.hash() != header.next_validators_hash:
            raise UntrustedValidatorsError("the header changes the set; the new set is needed")
        return offered

    def update(
        self,
        header: BlockHeader,
        certificate: CommitCertificate,
        next_validators: ValidatorSet | None = None,
    ) -> BlockHeader:
        """Verify ``header`` (see :meth:`check_header`) and advance to it.

        Returns:
            The verified header.
        """
        following = self.check_header(header, certificate, next_validators)
        self._validators = following
        self._height = header.height
        self._last_hash = header.hash()
        self._remember(header)
        return header

    def _remember(self, header: BlockHeader) -> None:
        self._headers[header.height] = header
        while len(self._headers) > self._keep:
            self._headers.popitem(last=False)

    # -- state ---------------------------------------------------------------------------

    def verify_state(
        self, header: BlockHeader, key: bytes, value: bytes | None, proof: bytes
    ) -> int:
        """Check that ``key`` held ``value`` (None: absent) after block ``header.height - 1``.

        Returns:
            The height whose resulting state the proof speaks of (``header.height - 1``).

        Raises:
            UnverifiedHeaderError: ``header`` is not a header this client verified
                (or it has been forgotten).
            InvalidStateProofError: The proof does not hold under ``header.app_hash``.
        """
        if self._headers.get(header.height) != header:
            raise UnverifiedHeaderError(f"header {header.height} was not verified here")
        if not verify_proof(header.app_hash, key, value, proof):
            raise InvalidStateProofError("state proof does not verify")
        return header.height - 1

    # -- persistence ---------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The trusted state (not the remembered headers), canonically encoded."""
        return canonical_encode(
            {
                "v": 1,
                "chain": self._chain_id,
                "h": self._height,
                "last": self._last_hash,
                "vals": self._validators.to_bytes(),
            }
        )

    @classmethod
    def from_bytes(
        cls, data: bytes, *, check_possession: bool = True, keep: int = DEFAULT_KEEP
    ) -> LightClient:
        """Restore a client from :meth:`to_bytes` output.

        ``check_possession=False`` is for bytes this node (or its chain state) stored.

        Raises:
            UntrustedValidatorsError: The bytes are malformed or hold an invalid set.
        """
        try:
            f = Fields(canonical_decode(data, _LIMITS), "light client", _FIELDS)
            if f.get_int("v") != 1:
                raise DecodeError("light client: unsupported version")
            chain_id = f.get_str("chain", max_len=64)
            height = f.get_int("h", hi=1 << 62)
            last_hash = f.get_bytes("last", size=32)
            raw_set = f.get_bytes("vals")
        except DecodeError as exc:
            raise UntrustedValidatorsError(f"malformed light client state: {exc}") from None
        try:
            validators = ValidatorSet.from_bytes(raw_set, check_possession=check_possession)
        except DchatChainError as exc:
            raise UntrustedValidatorsError(f"bad trusted set: {exc}") from None
        return cls(chain_id, validators, height=height, last_hash=last_hash, keep=keep)
