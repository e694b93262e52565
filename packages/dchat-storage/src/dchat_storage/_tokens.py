"""A relay's paid-token state: sealed issuer keys, used payments, spent tokens.

Theory of operation: ``dchat_network.TokenShop`` keeps its state here (it is
a ``dchat_network.lowlevel.TokenStore``). Each epoch's issuer key is one row
of ``relay_token_keys`` (sealed by the shop: this module never sees a
private key in clear). A payment reference that bought tokens is a row of
``relay_token_payments`` and a redeemed token's spent hash one of
``relay_token_spent``; both are inserted with ``ON CONFLICT DO NOTHING`` and
the insert says whether it was new, so a payment buys once and a token is
spent once even across restarts and concurrent workers. The spent hash is
written in the transaction that stores the deposit it paid for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from ._access import insert_ignore
from ._schema import TokenKeyRow, TokenPaymentRow, TokenSpentRow

if TYPE_CHECKING:
    from ._access import Access

__all__ = ("TokenRepo",)


class TokenRepo:
    """A relay's paid-token state. Obtain it as :attr:`Database.tokens`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    def token_keys(self) -> list[tuple[int, bytes]]:
        """Every stored (sealed) issuer key as ``(epoch, blob)``, oldest first."""
        with self._access.read("token keys") as conn:
            rows = conn.execute(
                select(TokenKeyRow.epoch, TokenKeyRow.key).order_by(TokenKeyRow.epoch)
            )
            return [(int(epoch), bytes(key)) for epoch, key in rows]

    def keep_token_key(self, epoch: int, key: bytes) -> None:
        """Store the (sealed) issuer key of ``epoch`` (one stored already stays)."""
        with self._access.write("keep token key") as conn:
            insert_ignore(conn, TokenKeyRow, {"epoch": epoch, "key": key})

    def use_payment(self, ref: bytes, now: float) -> bool:
        """Record payment reference ``ref`` as used; False if it already was."""
        with self._access.write("use token payment") as conn:
            return insert_ignore(conn, TokenPaymentRow, {"ref": ref, "used_at": now})

    def spend_token(self, epoch: int, digest: bytes) -> bool:
        """Record a redeemed token's spent hash; False if it already was."""
        with self._access.write("spend token") as conn:
            return insert_ignore(conn, TokenSpentRow, {"digest": digest, "epoch": epoch})

    def spent_tokens(self, since_epoch: int) -> list[tuple[int, bytes]]:
        """The spent hashes of epochs ``>= since_epoch`` as ``(epoch, hash)``."""
        with self._access.read("spent tokens") as conn:
            query = select(TokenSpentRow.epoch, TokenSpentRow.digest).where(
                TokenSpentRow.epoch >= since_epoch
            )
            return [(int(epoch), bytes(digest)) for epoch, digest in conn.execute(query)]

    def forget_tokens(self, before_epoch: int) -> None:
        """Drop issuer keys and spent hashes of epochs before ``before_epoch``.

        Used payment references are kept: a payment must never buy twice.
        """
        with self._access.write("forget tokens") as conn:
            conn.execute(delete(TokenKeyRow).where(TokenKeyRow.epoch < before_epoch))
            conn.execute(delete(TokenSpentRow).where(TokenSpentRow.epoch < before_epoch))
