"""The Double Ratchet with header encryption (Signal specification, rev. 1/4).

Theory of operation: each party holds a sending and a receiving *chain*. Every
message advances its chain by one HMAC step (``KDF_CK``) and is encrypted with
a fresh message key, then that key is forgotten (forward secrecy). When a
party receives a header that opens under its *next* header key, the peer has
a new ratchet key: the party performs a DH ratchet step, mixing two fresh
X25519 outputs into the root key (``KDF_RK``), which gives a new receiving
chain and a new sending chain with a new key pair of its own (post-compromise
security). Headers are encrypted, so which chain and which message a
ciphertext belongs to is visible only to the recipient; it finds out by trial
decryption with its current, next and stored skipped-chain header keys.

Decryption is transactional: every change is computed on a copy and committed
only once the body authenticated, so any failure leaves the state exactly as it
was (the specification's "changes to the state are discarded").

Rotation. A sender cannot DH-ratchet alone: its next sending chain needs a new
key from the peer. Once the sending chain has carried
``policy.rotate_after_messages`` messages, or is ``policy.rotate_after_seconds``
old, every further header carries the *ratchet request* flag. A receiver that
sees the flag on its current receiving chain sets :attr:`RatchetSession.reply_needed`;
any reply (even empty) is on a chain whose key the requester has not seen yet,
so it makes the requester DH-ratchet, and the requester's next message makes
the replier ratchet too. Without replies nothing breaks: messages keep flowing
on the old chains.

The wire format is described in :mod:`dchat_crypto._ratchet_wire`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from ._errors import DecryptionError, InvalidKeyError
from ._keys import PrivateKey, PublicKey
from ._ratchet_state import ChainState, SkippedKeys, decode_state, encode_state
from ._ratchet_types import (
    RatchetArgumentError,
    RatchetPolicy,
    RatchetStateError,
    SessionSecrets,
    check_time,
)
from ._ratchet_wire import (
    FLAG_RATCHET_REQUEST,
    Header,
    HeaderCiphers,
    ParsedMessage,
    ad_prefix,
    kdf_ck,
    kdf_rk,
    open_body,
    open_header,
    parse_message,
    seal_body,
    seal_header,
)

if TYPE_CHECKING:
    from typing import Self

__all__ = ("RatchetSession",)

_MAX_COUNTER: Final = 2**32 - 1
_MAX_AD: Final = 1 << 16
_DEFAULT_POLICY: Final = RatchetPolicy()

# New skipped keys of a tentative decryption: (header_key, N, message_key).
_Entries = list[tuple[bytes, int, bytes]]


class RatchetSession:
    """One side of a Double Ratchet session with header encryption.

    Create it with :meth:`initiator` or :meth:`responder` from the
    :class:`SessionSecrets` of session setup, or restore it with
    :meth:`from_bytes`. Not thread-safe; persist :meth:`to_bytes` after each call.
    """

    __slots__ = ("_ad_prime", "_ciphers", "_policy", "_skipped", "_state")

    def __init__(
        self, state: ChainState, skipped: SkippedKeys, policy: RatchetPolicy, ad_prime: bytes
    ) -> None:
        """Internal; use :meth:`initiator`, :meth:`responder` or :meth:`from_bytes`."""
        self._state = state
        self._skipped = skipped
        self._policy = policy
        self._ad_prime = ad_prime
        self._ciphers = HeaderCiphers()

    @classmethod
    def initiator(
        cls,
        secrets: SessionSecrets,
        remote_ratchet_key: PublicKey,
        *,
        associated_data: bytes,
        policy: RatchetPolicy = _DEFAULT_POLICY,
        now: float,
    ) -> Self:
        """Start the initiator's side (``RatchetInitAliceHE``); it may send at once.

        Args:
            secrets: The shared secrets from session setup.
            remote_ratchet_key: The responder's initial ratchet public key.
            associated_data: Bound into every message (e.g. both identities);
                both sides must pass the same bytes.
            policy: Limits and rotation schedule.
            now: Current time in seconds, starts the sending chain's clock.

        Raises:
            InvalidKeyError: If ``remote_ratchet_key`` is a low-order point.
            RatchetArgumentError: If ``associated_data`` or ``now`` is invalid.
        """
        ad, now = _check_ad(associated_data), check_time(now)
        dhs = PrivateKey.generate()
        rk, cks, nhks = kdf_rk(secrets.root_key, dhs.exchange(remote_ratchet_key))
        state = ChainState(
            dhs=dhs,
            dhs_public=dhs.public_key.to_bytes(),
            dhr=remote_ratchet_key,
            rk=rk,
            cks=cks,
            ckr=None,
            hks=secrets.initiator_header_key,
            hkr=None,
            nhks=nhks,
            nhkr=secrets.responder_next_header_key,
            ns=0,
            nr=0,
            pn=0,
            sending_since=now,
            reply_needed=False,
        )
        return cls(state, SkippedKeys(policy.max_stored_skipped), policy, ad)

    @classmethod
    def responder(
        cls,
        secrets: SessionSecrets,
        ratchet_key: PrivateKey,
        *,
        associated_data: bytes,
        policy: RatchetPolicy = _DEFAULT_POLICY,
        now: float,
    ) -> Self:
        """Start the responder's side (``RatchetInitBobHE``).

        It can send only after its first received message (see :attr:`can_send`).

        Args:
            secrets: The shared secrets from session setup.
            ratchet_key: The private key whose public half the initiator used.
            associated_data: As for :meth:`initiator`; must be the same bytes.
            policy: Limits and rotation schedule.
            now: Current time in seconds.

        Raises:
            RatchetArgumentError: If ``associated_data`` or ``now`` is invalid.
        """
        ad, now = _check_ad(associated_data), check_time(now)
        state = ChainState(
            dhs=ratchet_key,
            dhs_public=ratchet_key.public_key.to_bytes(),
            dhr=None,
            rk=secrets.root_key,
            cks=None,
            ckr=None,
            hks=None,
            hkr=None,
            nhks=secrets.responder_next_header_key,
            nhkr=secrets.initiator_header_key,
            ns=0,
            nr=0,
            pn=0,
            sending_since=now,
            reply_needed=False,
        )
        return cls(state, SkippedKeys(policy.max_stored_skipped), policy, ad)

    # -- inspection ------------------------------------------------------------------

    @property
    def policy(self) -> RatchetPolicy:
        """The session's limits and rotation schedule."""
        return self._policy

    @property
    def can_send(self) -> bool:
        """False only for a responder that has not yet received a message."""
        return self._state.cks is not None

    @property
    def reply_needed(self) -> bool:
        """The peer asked for a reply to rotate its keys; any :meth:`encrypt` clears it."""
        return self._state.reply_needed

    @property
    def ratchet_key(self) -> PublicKey:
        """Our current ratchet public key (it changes at each DH ratchet step)."""
        return PublicKey(self._state.dhs_public)

    @property
    def remote_ratchet_key(self) -> PublicKey | None:
        """The peer's current ratchet public key, if known yet."""
        return self._state.dhr

    @property
    def skipped_key_count(self) -> int:
        """How many skipped message keys are stored."""
        return len(self._skipped)

    def rotation_due(self, *, now: float) -> bool:
        """Whether a message sent at ``now`` would carry the ratchet request flag."""
        state, policy = self._state, self._policy
        if state.cks is None:
            return False
        count, seconds = policy.rotate_after_messages, policy.rotate_after_seconds
        if count is not None and state.ns >= count:
            return True
        return seconds is not None and check_time(now) - state.sending_since >= seconds

    def __repr__(self) -> str:
        return (
            f"RatchetSession(can_send={self.can_send}, reply_needed={self.reply_needed}, "
            f"skipped_keys={len(self._skipped)})"
        )

    # -- messages ------------------------------------------------------------------------

    def encrypt(self, plaintext: bytes, *, now: float) -> bytes:
        """Encrypt one message (``RatchetEncryptHE``) and clear :attr:`reply_needed`.

        Raises:
            RatchetStateError: If the session cannot send yet, or the sending
                chain reached 2**32 - 1 messages without a reply.
            RatchetArgumentError: If ``now`` is not finite or ``plaintext`` not bytes.
        """
        now, state = check_time(now), self._state
        if state.cks is None or state.hks is None:
            raise RatchetStateError("a responder can send only after receiving a message")
        if state.ns >= _MAX_COUNTER:
            raise RatchetStateError("sending chain exhausted; the peer must reply first")
        flags = FLAG_RATCHET_REQUEST if self.rotation_due(now=now) else 0
        chain_key, message_key = kdf_ck(state.cks)
        ad = self._ad_prime
        header = Header(flags, state.dhs_public, state.pn, state.ns)
        prefix = seal_header(self._ciphers.get(state.hks), header, ad)
        message = prefix + seal_body(message_key, _as_bytes(plaintext), ad, prefix)
        state.cks = chain_key
        state.ns += 1
        state.reply_needed = False
        return message

    def decrypt(self, message: bytes, *, now: float) -> bytes:
        """Decrypt one message (``RatchetDecryptHE``).

        Messages may arrive out of order or never; each decrypts at most once.

        Raises:
            DecryptionError: On any failure (forged, corrupted, replayed, from
                another session, too far ahead, key evicted); the state is unchanged.
            RatchetArgumentError: If ``now`` is not finite or ``message`` not bytes.
        """
        now = check_time(now)
        parsed = parse_message(_as_bytes(message))
        state, ad, ciphers = self._state, self._ad_prime, self._ciphers
        if state.hkr is not None:
            header = open_header(ciphers.get(state.hkr), parsed, ad)
            if header is not None:
                return self._on_current_chain(header, parsed)
        header = open_header(ciphers.get(state.nhkr), parsed, ad)
        if header is not None:
            return self._on_new_chain(header, parsed, now)
        for header_key in self._skipped.header_keys():
            if header_key == state.hkr:
                continue  # already tried
            # Not cached: old chains are rare, and must not evict the current keys.
            header = open_header(ChaCha20Poly1305(header_key), parsed, ad)
            if header is not None:
                return self._from_skipped(header_key, header, parsed)
        raise DecryptionError

    def _from_skipped(self, header_key: bytes, header: Header, parsed: ParsedMessage) -> bytes:
        """``TrySkippedMessageKeysHE``: the header opened under a stored chain's key."""
        message_key = self._skipped.get(header_key, header.number)
        if message_key is None:
            raise DecryptionError  # already decrypted (replay), evicted or never skipped
        plaintext = open_body(message_key, parsed, self._ad_prime)
        self._skipped.remove(header_key, header.number)
        if header_key == self._state.hkr:
            self._note_request(header)
        return plaintext

    def _on_current_chain(self, header: Header, parsed: ParsedMessage) -> bytes:
        state = self._state
        assert state.hkr is not None  # the header opened under it
        if header.number < state.nr:
            return self._from_skipped(state.hkr, header, parsed)
        if header.number == state.nr:  # in order: the common case, nothing to skip
            return self._next_in_order(header, parsed)
        draft, entries = state.copy(), _Entries()
        self._skip(draft, header.number, entries)
        return self._finish(draft, entries, header, parsed)

    def _next_in_order(self, header: Header, parsed: ParsedMessage) -> bytes:
        """The next message of the current chain: decrypt, then advance in place."""
        state = self._state
        assert state.ckr is not None  # a current header key implies a receiving chain
        if header.number >= _MAX_COUNTER:
            raise DecryptionError
        chain_key, message_key = kdf_ck(state.ckr)
        plaintext = open_body(message_key, parsed, self._ad_prime)
        state.ckr = chain_key
        state.nr += 1
        self._note_request(header)
        return plaintext

    def _on_new_chain(self, header: Header, parsed: ParsedMessage, now: float) -> bytes:
        draft, entries = self._state.copy(), _Entries()
        self._skip(draft, header.previous_count, entries)
        try:
            _dh_ratchet(draft, PublicKey(header.ratchet_key), now)
        except InvalidKeyError:
            raise DecryptionError from None
        self._skip(draft, header.number, entries)
        return self._finish(draft, entries, header, parsed)

    def _finish(
        self, draft: ChainState, entries: _Entries, header: Header, parsed: ParsedMessage
    ) -> bytes:
        """Take the message's key from the draft chain, decrypt, then commit."""
        assert draft.ckr is not None  # set by _dh_ratchet before any message on a chain
        if header.number >= _MAX_COUNTER:
            raise DecryptionError  # no honest sender gets there; keeps Nr within 4 bytes
        draft.ckr, message_key = kdf_ck(draft.ckr)
        draft.nr += 1
        plaintext = open_body(message_key, parsed, self._ad_prime)
        self._state = draft
        self._skipped.add(entries)
        self._note_request(header)
        return plaintext

    def _skip(self, draft: ChainState, until: int, entries: _Entries) -> None:
        """``SkipMessageKeysHE`` on a draft: keep keys of messages before ``until``."""
        if until > draft.nr + self._policy.max_skip:
            raise DecryptionError
        if draft.ckr is None or draft.hkr is None:
            return
        chain_key, header_key = draft.ckr, draft.hkr
        for number in range(draft.nr, until):
            chain_key, message_key = kdf_ck(chain_key)
            entries.append((header_key, number, message_key))
        draft.ckr = chain_key
        draft.nr = max(draft.nr, until)

    def _note_request(self, header: Header) -> None:
        if header.flags & FLAG_RATCHET_REQUEST:
            self._state.reply_needed = True

    # -- storage ---------------------------------------------------------------------

    def copy(self) -> Self:
        """An independent copy of the whole state, as :meth:`to_bytes` and back would give.

        Cheaper than that round trip: for a caller that must be able to go back
        to this state (a step it later rolls back) without encoding it.
        """
        twin = type(self)(self._state.copy(), self._skipped.copy(), self._policy, self._ad_prime)
        twin._ciphers = self._ciphers  # a cache of keys both hold anyway
        return twin

    def to_bytes(self) -> bytes:
        """Encode the whole state (keys included) for storage; keep it secret."""
        return encode_state(self._state, self._skipped, self._policy, self._ad_prime[4:])

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        """Restore a session from :meth:`to_bytes` output.

        Raises:
            RatchetFormatError: If ``data`` is malformed, inconsistent or of an
                unknown version.
        """
        state, skipped, policy, ad = decode_state(data)
        return cls(state, skipped, policy, ad_prefix(ad))


def _dh_ratchet(state: ChainState, remote: PublicKey, now: float) -> None:
    """``DHRatchetHE``: new receiving chain for ``remote``, new sending chain and key."""
    state.pn, state.ns, state.nr = state.ns, 0, 0
    state.hks, state.hkr = state.nhks, state.nhkr
    state.dhr = remote
    state.rk, state.ckr, state.nhkr = kdf_rk(state.rk, state.dhs.exchange(remote))
    state.dhs = PrivateKey.generate()
    state.dhs_public = state.dhs.public_key.to_bytes()
    state.rk, state.cks, state.nhks = kdf_rk(state.rk, state.dhs.exchange(remote))
    state.sending_since = now
    state.reply_needed = False


def _as_bytes(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RatchetArgumentError(f"expected bytes, got {type(data).__name__}")
    return bytes(data)


def _check_ad(associated_data: bytes) -> bytes:
    if not isinstance(associated_data, bytes | bytearray | memoryview):
        raise RatchetArgumentError("associated_data must be bytes")
    if len(associated_data) > _MAX_AD:
        raise RatchetArgumentError(f"associated_data must be at most {_MAX_AD} bytes")
    return ad_prefix(bytes(associated_data))
