"""Put authorization, sans-IO: per-contact put tokens and proof of work scaled with load.

Theory of operation
-------------------
A deposit (``put``, a ``put_many`` item) may carry an *authorization*, one
of three kinds, so the relay can tell mail somebody asked for from a flood
without learning who sent it:

* **A put token** (``0x01 || token``, 16 random bytes). A mailbox's owner
  gives each contact its own bearer token inside their end-to-end session
  and registers only the tokens' hashes (:func:`token_hash`) at its relay
  over its authenticated mailbox link (``tok_set``). The relay checks that
  the hash of a presented token is in the mailbox's set: it learns "token
  *k* of this mailbox was used", a per-contact pseudonym, never an identity.
* **A proof-of-work stamp** (``0x02 || seed || nonce``): for strangers (first
  contact, message requests) and anyone whose token the relay does not know.
  The stamp is valid if BLAKE2b-256 (personalised ``dchat-put-pow``) of
  ``seed || entry id || nonce`` starts with at least the required number of
  zero bits (:func:`pow_ok`). It is bound to the envelope (its entry id), so
  one solution pays for one envelope, and to a relay's seed that changes
  every :data:`SEED_PERIOD` seconds (the current and the previous one are
  accepted), so work cannot be stockpiled for a flood later.
* **A paid blind token** (``0x03 || redemption``, see :mod:`._token_shop`):
  bought from this relay against a currency-chain payment, accepted in place
  of work, once. The relay learns that somebody who paid came, not who.
  A refused one is answered with its code (``bad_token``, ``spent``,
  ``unknown_key``, ``expired``, ``full``), never with a challenge.
* **A contact proof** (``0x04 || epoch || nonce || proof``, :mod:`._put_proofs`):
  "one of this mailbox's contacts", without saying which; checked against
  the ring the owner registered (``ring_set``) and a one-use relay nonce.

:class:`PutAuthorizer` is the relay's book. Without a valid token a deposit
is a *stranger's*: it is served without work while the relay is quiet, and
counted in decaying meters (about the last ``pow_window`` seconds' worth):
the whole relay's puts and envelope bytes, and the target mailbox's puts.
When any meter passes its free allowance (``pow_free_relay``,
``pow_free_relay_bytes``, ``pow_free_mailbox``) the relay asks strangers for
work: ``pow_min_bits``
zero bits, plus ``pow_step_bits`` for each doubling of the load past the
allowance, at most ``pow_max_bits`` (0 turns proof of work off). A refused
deposit gets a typed answer carrying the challenge (:class:`PowChallenge`):
``busy`` ``pow`` to a ``put``, the item code ``pow`` and the reply's ``pow``
field in a ``stored_many``. Token holders and contacts with a valid proof
never pay work and do not count towards the meters; a proof that fails is
refused with its own code (:class:`~dchat_network.lowlevel.PutProofError`).

:class:`PutAuthClient` is the sender's side: which deposits to send with
which authorization. It attaches tokens only to a relay that asked for
work within :data:`ASK_MEMORY` seconds (so a quiet relay sees no
pseudonyms at all), and answers a refusal by proving contact if it holds a
contact secret for the mailbox, else by attaching the token if it holds
one, else a paid token for that relay if it holds one (:attr:`PutAuthClient.paid`),
else by solving the challenge (:func:`solve_pow`, which the trio shell
runs in a worker thread) up to ``max_bits``.

Nothing here reads a clock or does I/O: every call takes ``now``.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from ._put_proofs import PROOF_TAG, ContactRings, check_proof_auth

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from dchat_privacy import ContactSecret

__all__ = (
    "ASK_MEMORY",
    "MAX_POW_BITS",
    "MAX_TOKENS_HELD",
    "PowChallenge",
    "PutAuthClient",
    "PutAuthorizer",
    "auth_paid",
    "auth_pow",
    "auth_token",
    "check_auth",
    "pow_ok",
    "solve_pow",
    "token_hash",
)

TOKEN_SIZE: Final = 16
SEED_SIZE: Final = 16
NONCE_SIZE: Final = 8
TOKEN_HASH_SIZE: Final = 16
MAX_POW_BITS: Final = 40
"""The most zero bits a relay may ask for (the wire bound; far past any sane setting)."""
MAX_TOKENS_HELD: Final = 1024
"""The most token hashes one mailbox may register (one ``tok_set``)."""
SEED_PERIOD: Final = 600.0
"""Seconds one proof-of-work seed is current (the previous one is still accepted)."""
ASK_MEMORY: Final = 300.0
"""Seconds a sender keeps attaching authorizations to a relay after it asked for work."""
_POW_PERSON: Final = b"dchat-put-pow"
_TOKEN_TAG: Final = 0x01
_POW_TAG: Final = 0x02
_PAID_TAG: Final = 0x03
MAX_REDEMPTION: Final = 1024
"""The largest paid-token redemption a deposit may carry."""
_METERED_MAILBOXES: Final = 65536
"""Mailboxes whose stranger load is remembered (the memory bound; oldest forgotten first)."""


@dataclass(frozen=True, slots=True)
class PowChallenge:
    """What a relay asks of a stranger's deposit now: ``bits`` zero bits over ``seed``."""

    seed: bytes
    bits: int


def token_hash(token: bytes) -> bytes:
    """What the owner registers for a put token (the relay never holds unused tokens)."""
    return hashlib.blake2b(token, digest_size=TOKEN_HASH_SIZE, person=b"dchat-put-token").digest()


def auth_token(token: bytes) -> bytes:
    """A put token as a deposit's authorization."""
    return bytes([_TOKEN_TAG]) + token


def auth_pow(seed: bytes, nonce: bytes) -> bytes:
    """A proof-of-work stamp as a deposit's authorization."""
    return bytes([_POW_TAG]) + seed + nonce


def auth_paid(redemption: bytes) -> bytes:
    """A paid blind token's redemption as a deposit's authorization."""
    return bytes([_PAID_TAG]) + redemption


def is_paid(auth: bytes | None) -> bool:
    """Whether ``auth`` is a paid blind token."""
    return auth is not None and len(auth) > 0 and auth[0] == _PAID_TAG


def check_auth(auth: bytes) -> bool:
    """Whether ``auth`` has the shape of an authorization (the codec's check)."""
    if not auth:
        return False
    if auth[0] == _TOKEN_TAG:
        return len(auth) == 1 + TOKEN_SIZE
    if auth[0] == _PAID_TAG:
        return 2 <= len(auth) <= 1 + MAX_REDEMPTION
    if auth[0] == PROOF_TAG:
        return check_proof_auth(auth)
    return auth[0] == _POW_TAG and len(auth) == 1 + SEED_SIZE + NONCE_SIZE


def _pow_digest(seed: bytes, entry_id: bytes, nonce: bytes) -> bytes:
    return hashlib.blake2b(seed + entry_id + nonce, digest_size=32, person=_POW_PERSON).digest()


def _zero_bits(digest: bytes) -> int:
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def pow_ok(seed: bytes, entry_id: bytes, nonce: bytes, bits: int) -> bool:
    """Whether ``nonce`` stamps ``entry_id`` with at least ``bits`` zero bits under ``seed``."""
    return bits <= 0 or _zero_bits(_pow_digest(seed, entry_id, nonce)) >= bits


def solve_pow(
    seed: bytes, entry_id: bytes, bits: int, *, start: int = 0, tries: int | None = None
) -> bytes | None:
    """A nonce meeting ``bits`` for ``entry_id`` under ``seed``, or None after ``tries``.

    Expected work: ``2**bits`` BLAKE2b calls (about a second at 20 bits in
    CPython). CPU-bound: a trio shell runs it in a worker thread.
    """
    prefix = hashlib.blake2b(digest_size=32, person=_POW_PERSON)
    prefix.update(seed + entry_id)
    limit = 1 << (8 * NONCE_SIZE) if tries is None else start + tries
    target = 1 << (256 - bits) if bits > 0 else 1 << 256
    for counter in range(start, limit):
        nonce = counter.to_bytes(NONCE_SIZE, "big")
        attempt = prefix.copy()
        attempt.update(nonce)
        if int.from_bytes(attempt.digest(), "big") < target:
            return nonce
    return None


class _Meter:
    """A count that decays exponentially with time constant ``tau`` (about: events per tau)."""

    __slots__ = ("_at", "_value")

    def __init__(self) -> None:
        self._value = 0.0
        self._at = 0.0

    def value(self, now: float, tau: float) -> float:
        if now > self._at:
            self._value *= math.exp(-(now - self._at) / tau)
            self._at = now
        return self._value

    def add(self, amount: float, now: float, tau: float) -> None:
        self._value = self.value(now, tau) + amount


class PutAuthorizer:
    """A relay's put tokens and proof-of-work policy (see the module docstring).

    Args:
        free_relay: Stranger puts per ``window`` the whole relay serves without work.
        free_mailbox: Stranger puts per ``window`` one mailbox gets without work.
        free_relay_bytes: Stranger envelope bytes per ``window`` the whole relay
            stores without work (so many sources' large envelopes together are
            bounded, not only their count).
        min_bits: Bits asked as soon as a meter passes its allowance.
        step_bits: Bits added per doubling of the load past the allowance.
        max_bits: The most bits asked (0: never ask, proof of work off).
        window: The meters' time constant, seconds.
        max_tokens: Token hashes all mailboxes together may register (the memory bound).
        max_ring_keys: Contact-ring keys all mailboxes together may register.
        secret: The seeds' key (random per process by default).
    """

    def __init__(
        self,
        *,
        free_relay: float = 6000.0,
        free_mailbox: float = 60.0,
        min_bits: int = 8,
        step_bits: int = 2,
        max_bits: int = 22,
        window: float = 60.0,
        max_tokens: int = 262144,
        max_ring_keys: int = 262144,
        secret: bytes | None = None,
        free_relay_bytes: float = 256.0 * 1024 * 1024,
    ) -> None:
        self._free = (free_relay, free_mailbox, free_relay_bytes)
        self._bits = (min_bits, step_bits, min(max_bits, MAX_POW_BITS))
        self._window = window
        self._max_tokens = max_tokens
        self._secret = os.urandom(32) if secret is None else secret
        self._seeds: dict[int, bytes] = {}
        self._tokens: dict[bytes, frozenset[bytes]] = {}
        self.tokens_held = 0
        """Token hashes registered by all mailboxes together."""
        self.rings = ContactRings(max_keys=max_ring_keys)
        """Contact rings and proof nonces (:mod:`._put_proofs`)."""
        self._relay_load = _Meter()
        self._relay_bytes = _Meter()
        self._mailbox_load: OrderedDict[bytes, _Meter] = OrderedDict()
        self.counts = {"token": 0, "proof": 0, "work": 0, "free": 0, "refused": 0, "paid": 0}
        """Deposits by how they were authorized (``refused``: answered ``pow``)."""
        self.redeem: Callable[[bytes, float], str | None] | None = None
        """Accepts a paid token's redemption once (None: or its refusal code); None: none sold."""

    # -- tokens --------------------------------------------------------------------

    def set_tokens(self, mailbox: bytes, hashes: Iterable[bytes]) -> int | None:
        """Replace ``mailbox``'s token hashes; their count, or None if past ``max_tokens``."""
        new = frozenset(hashes)
        old = self._tokens.get(mailbox, frozenset())
        held = self.tokens_held - len(old) + len(new)
        if held > self._max_tokens and len(new) > len(old):
            return None
        self.tokens_held = held
        if new:
            self._tokens[mailbox] = new
        else:
            self._tokens.pop(mailbox, None)
        return len(new)

    def has_tokens(self, mailbox: bytes) -> bool:
        """Whether ``mailbox`` has put tokens or a ring registered (contacts have a way in)."""
        return mailbox in self._tokens or self.rings.has_ring(mailbox)

    def holds(self, mailbox: bytes, auth: bytes | None) -> bool:
        """Whether ``auth`` is a put token registered for ``mailbox``.

        Only reads (nothing is counted): the relay's host asks it from its
        event loop to put token holders' deposits first while the database
        worker may be registering tokens (a dict read is atomic there).
        """
        if auth is None or auth[0] != _TOKEN_TAG:
            return False
        held = self._tokens.get(mailbox)
        return held is not None and token_hash(auth[1:]) in held

    # -- deposits ------------------------------------------------------------------

    def authorize(
        self, mailbox: bytes, entry_id: bytes, auth: bytes | None, now: float, size: int = 0
    ) -> PowChallenge | str | None:
        """None if the deposit may be stored (and it is counted), else the challenge to meet.

        ``size``: the envelope's bytes, for the relay's byte meter.

        A paid token is redeemed (spent) here; a refused one is answered with its code.

        Raises:
            PutProofError: ``auth`` is a contact proof the relay refuses (``code`` says why).
        """
        if self.holds(mailbox, auth):
            self.counts["token"] += 1
            return None
        if is_paid(auth) and self.redeem is not None:
            assert auth is not None
            refused = self.redeem(auth[1:], now)
            self.counts["paid" if refused is None else "refused"] += 1
            return refused
        if auth is not None and auth[0] == PROOF_TAG:
            self.rings.check(mailbox, auth, now)
            self.counts["proof"] += 1
            return None
        bits = self.required_bits(mailbox, now)
        if bits > 0:
            if auth is None or auth[0] != _POW_TAG or not self._stamp_ok(auth, entry_id, bits, now):
                self.counts["refused"] += 1
                return PowChallenge(self.seed(now), bits)
            self.counts["work"] += 1
        else:
            self.counts["free"] += 1
        self._count(mailbox, now, size)
        return None

    def required_bits(self, mailbox: bytes, now: float) -> int:
        """The zero bits a stranger's deposit into ``mailbox`` needs now (0: none)."""
        min_bits, step, max_bits = self._bits
        if max_bits <= 0:
            return 0
        meter = self._mailbox_load.get(mailbox)
        loads = (
            self._relay_load.value(now, self._window),
            0.0 if meter is None else meter.value(now, self._window),
            self._relay_bytes.value(now, self._window),
        )
        pairs = zip(loads, self._free, strict=True)
        ratio = max(load / free if free > 0 else math.inf for load, free in pairs)
        if ratio < 1.0:
            return 0
        doublings = int(math.log2(ratio)) if math.isfinite(ratio) else 0
        return min(max_bits, min_bits + step * doublings)

    def seed(self, now: float) -> bytes:
        """The current proof-of-work seed."""
        return self._seed(int(now // SEED_PERIOD))

    def _seed(self, period: int) -> bytes:
        seed = self._seeds.get(period)
        if seed is None:
            self._seeds = {p: s for p, s in self._seeds.items() if p >= period - 1}
            digest = hashlib.blake2b(period.to_bytes(8, "big", signed=True), key=self._secret)
            seed = self._seeds[period] = digest.digest()[:SEED_SIZE]
        return seed

    def _stamp_ok(self, auth: bytes, entry_id: bytes, bits: int, now: float) -> bool:
        seed, nonce = auth[1 : 1 + SEED_SIZE], auth[1 + SEED_SIZE :]
        period = int(now // SEED_PERIOD)
        if seed not in (self._seed(period), self._seed(period - 1)):
            return False
        return pow_ok(seed, entry_id, nonce, bits)

    def _count(self, mailbox: bytes, now: float, size: int = 0) -> None:
        self._relay_load.add(1.0, now, self._window)
        self._relay_bytes.add(float(size), now, self._window)
        meter = self._mailbox_load.get(mailbox)
        if meter is None:
            meter = self._mailbox_load[mailbox] = _Meter()
            if len(self._mailbox_load) > _METERED_MAILBOXES:
                self._mailbox_load.popitem(last=False)
        else:
            self._mailbox_load.move_to_end(mailbox)
        meter.add(1.0, now, self._window)


class PutAuthClient:
    """A sender's choice of authorizations (see the module docstring).

    Args:
        tokens: The put token we hold for a mailbox, or None.
        max_bits: The most work this sender pays for one envelope.
        secrets: The contact secret we hold for a mailbox (section 41), or None.
    """

    def __init__(
        self,
        tokens: Callable[[bytes], bytes | None] | None = None,
        *,
        max_bits: int = 24,
        secrets: Callable[[bytes], ContactSecret | None] | None = None,
    ) -> None:
        self.tokens = tokens or (lambda _mailbox: None)
        self.secrets = secrets or (lambda _mailbox: None)
        self.max_bits = max_bits
        self.paid: Callable[[str], bytes | None] = lambda _relay: None
        """Takes one paid token's redemption for the relay ``host:port`` (spent once taken)."""
        self._asked: dict[str, float] = {}  # relay: when it last asked for work

    def first(self, relay: str, mailboxes: Sequence[bytes], now: float) -> list[bytes | None]:
        """Authorizations for a first attempt: tokens, but only at a relay that asked lately."""
        if now - self._asked.get(relay, -math.inf) > ASK_MEMORY:
            return [None] * len(mailboxes)
        return [self._token(mailbox) for mailbox in mailboxes]

    def asked(self, relay: str, now: float) -> None:
        """``relay`` asked for work: keep attaching tokens there for a while."""
        self._asked[relay] = now

    def retry(
        self,
        mailbox: bytes,
        sent: bytes | None,
        challenge: PowChallenge,
        relay: str = "",
        *,
        prove: bool = True,
    ) -> bytes | PowChallenge | ContactSecret | None:
        """For an item refused ``pow``: what to attach, prove or pay; None: give up.

        A contact secret we hold goes first (the caller proves with it, unless
        it sent a proof already, or ``prove`` is false: the relay's ring lacks
        our key); then a token we hold and did not send; if the relay refused
        those, or we hold none, a paid token for ``relay`` if we hold one, else
        we pay the work if it is at most ``max_bits``.
        """
        secret = self.secrets(mailbox)
        if prove and secret is not None and (sent is None or sent[0] != PROOF_TAG):
            return secret
        token = self._token(mailbox)
        if token is not None and sent != token:
            return token
        if not is_paid(sent) and (paid := self.paid(relay)) is not None:
            return auth_paid(paid)
        return challenge if challenge.bits <= self.max_bits else None

    def _token(self, mailbox: bytes) -> bytes | None:
        token = self.tokens(mailbox)
        return None if token is None else auth_token(token)
