"""The owner's side of a handle: the transactions that register, renew and release it.

Theory of operation. :class:`HandleOwner` knows the chat chain from its
genesis (chain id, ``pow_bits``, ``handle_pow_bits``) and the identity's key,
and builds signed transactions; it does no I/O and keeps no state, so the
shell reads what the plan depends on and passes it in: the identity's next
nonce (a node's hint: a wrong one only gets the transaction refused), whether
the identity is registered yet and, for a renewal, the current expiry height
(both from verified reads, :class:`HandleLookup` and :class:`LightRead`). An
identity that is not on the chain yet is registered in the same batch, at the
nonce before the handle's. Solving the proofs of work is CPU work of about
``2**bits`` hashes: the shell runs these methods in a worker thread.

After a key rotation (a guardian recovery on the chain moved the identity to
this key) the identity's id is no longer the one this key derives. The shell
reads ``idkey/<key>`` (:attr:`HandleOwner.key_path`, a verified read) and
:meth:`HandleOwner.chain_identity` says which identity the key speaks for (or
None: the key is not on the chain, register it); a new registration's work is
then bound to that identity, as a renewal's is to the record's.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from dchat_core import DecodeError, DecodeLimits, IdentityId, canonical_decode

from ._chat import ChatChainApp
from ._chat_identity import solve_pow
from ._errors import ChainAnswerError
from ._handle_names import handle_work_bits, normalize_handle, solve_handle_pow
from ._tx import Transaction

if TYPE_CHECKING:
    from collections.abc import Sequence

    from dchat_crypto import SigningKey

__all__ = ("HandleOwner",)


class HandleOwner:
    """Builds an identity's handle transactions for one chat chain.

    Args:
        key: The identity's current signing key.
        genesis: The chat chain's genesis document (the light client's anchor).

    Raises:
        ChainArgumentError: ``genesis`` is not a chat chain's.
    """

    def __init__(self, key: SigningKey, genesis: bytes) -> None:
        app = ChatChainApp.from_genesis(genesis)
        self.chain_id = app.chain_id
        self._params = app.params()
        self._key = key
        self.public_key = key.public_key.to_bytes()
        self.identity = bytes(IdentityId.derive(self.public_key))

    @property
    def key_path(self) -> tuple[str, bytes]:
        """The API path and state key naming the identity this key speaks for (a verified read)."""
        key = b"idkey/" + self.public_key
        return f"/v1/chain/state/{key.hex()}", key

    @staticmethod
    def chain_identity(value: bytes | None) -> bytes | None:
        """The identity id a verified ``idkey/`` value names (None: the key is not registered).

        Raises:
            ChainAnswerError: The value is not an identity id.
        """
        if value is None:
            return None
        try:
            identity = canonical_decode(value, DecodeLimits(max_size=64, max_depth=1))
        except DecodeError:
            identity = None
        if not isinstance(identity, bytes) or len(identity) != 32:
            raise ChainAnswerError("malformed idkey record: not an identity id")
        return identity

    def _tx(self, nonce: int, kind: str, body: dict[str, Any], fee: int = 0) -> Transaction:
        return Transaction.create(
            self._key, chain_id=self.chain_id, nonce=nonce, fee=fee, kind=kind, body=body
        )

    def registration(self, nonce: int, document: bytes) -> Transaction:
        """``register_identity`` of this key (its proof of work solved), alone."""
        return self._registration(nonce, document)

    def transaction(self, nonce: int, kind: str, body: dict[str, Any]) -> Transaction:
        """A fee-free chat-chain transaction of this identity (e.g. a group channel's)."""
        return self._tx(nonce, kind, body)

    def _registration(self, nonce: int, document: bytes) -> Transaction:
        work = solve_pow(self.chain_id, self.public_key, self._params["pow_bits"])
        doc = hashlib.sha256(document).digest()
        return self._tx(nonce, "register_identity", {"pow": work, "doc": doc})

    def _work(self, name: str, term: int, identity: bytes | None = None) -> bytes:
        bits = handle_work_bits(self._params["handle_pow_bits"], name)
        return solve_handle_pow(self.chain_id, name, identity or self.identity, bits, term)

    def register(
        self,
        nonce: int,
        text: str,
        relays: Sequence[str],
        card: bytes,
        *,
        registered: bool,
        document: bytes = b"",
        identity: bytes | None = None,
    ) -> list[Transaction]:
        """``register_handle`` for ``text``, after ``register_identity`` unless ``registered``.

        ``document`` is the identity document whose hash a new registration
        records. ``identity`` is the one the chain says this key speaks for
        (:meth:`chain_identity`; after a key rotation not the id the key
        derives): the work is bound to it. Raises :class:`InvalidHandleError`
        for a name outside the rule.
        """
        name = normalize_handle(text)
        txs = [] if registered else [self._registration(nonce, document)]
        work = self._work(name, 0, identity)
        body = {"name": name, "pow": work, "relays": list(relays), "card": card}
        txs.append(self._tx(nonce + len(txs), "register_handle", body))
        return txs

    def renew(
        self,
        nonce: int,
        text: str,
        expires: int,
        relays: Sequence[str],
        card: bytes,
        *,
        identity: bytes | None = None,
    ) -> Transaction:
        """``renew_handle`` of the handle expiring at ``expires``, with fresh relays and card.

        ``identity`` is the handle's owner as the chain names it (the verified
        record's): after a guardian recovery it is no longer the id this key
        derives, and the work is bound to it.
        """
        name = normalize_handle(text)
        body = {
            "name": name,
            "pow": self._work(name, expires, identity),
            "relays": list(relays),
            "card": card,
        }
        return self._tx(nonce, "renew_handle", body)

    def release(self, nonce: int, text: str) -> Transaction:
        """``release_handle``: give the handle up."""
        return self._tx(nonce, "release_handle", {"name": normalize_handle(text)})
