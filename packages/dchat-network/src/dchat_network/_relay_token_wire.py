"""Relay protocol messages for paid blind tokens (protocol §40, "Paid tokens at relays").

::

    tk_offer {"t": "tk_offer", "rid": n}
             -> {"t": "tk_offered", "rid": n, "offer": signed offer}
    tk_buy   {"t": "tk_buy", "rid": n, "req": token request}
             -> {"t": "tk_issued", "rid": n, "iss": token issuance}

``offer`` is a :class:`~dchat_network.lowlevel.TokenOffer`, ``req`` a
:class:`~dchat_privacy.lowlevel.TokenRequest` whose payment reference is its
:func:`~dchat_network.lowlevel.purchase_ref`, ``iss`` a
:class:`~dchat_privacy.lowlevel.TokenIssuance`; each is checked by its own
decoder, not here. A refused purchase is an ``error`` with the code
(``unpaid``, ``underpaid``, ``wrong_payee``,
``bad_request``, ``too_many``, ``unknown_key``, ``expired``, ``unsupported``,
``chain_unreachable``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from dchat_core import Fields

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("TOKEN_DECODERS", "TokenBuy", "TokenIssued", "TokenOfferAsk", "TokenOffered")

MAX_TOKEN_BLOB: Final = 40_000
_MAX_RID: Final = 2**63 - 1


@dataclass(frozen=True, slots=True)
class TokenOfferAsk:
    """What does this relay sell tokens for (its signed offer)?"""

    rid: int

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "tk_offer"}


@dataclass(frozen=True, slots=True)
class TokenOffered:
    """The relay's signed offer for this epoch."""

    rid: int
    offer: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "tk_offered", "offer": self.offer}


@dataclass(frozen=True, slots=True)
class TokenBuy:
    """Blind-sign this paid token request."""

    rid: int
    request: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "tk_buy", "req": self.request}


@dataclass(frozen=True, slots=True)
class TokenIssued:
    """The blind signatures of a paid request."""

    rid: int
    issuance: bytes

    def fields(self) -> dict[str, object]:
        """The message's map, without ``rid``."""
        return {"t": "tk_issued", "iss": self.issuance}


def _fields(value: object, *names: str) -> tuple[Fields, int]:
    fields = Fields(value, "relay message", frozenset({"t", "rid", *names}))
    return fields, fields.get_int("rid", hi=_MAX_RID)


def _ask(value: object) -> TokenOfferAsk:
    return TokenOfferAsk(_fields(value)[1])


def _offered(value: object) -> TokenOffered:
    f, rid = _fields(value, "offer")
    return TokenOffered(rid, f.get_bytes("offer", max_size=MAX_TOKEN_BLOB))


def _buy(value: object) -> TokenBuy:
    f, rid = _fields(value, "req")
    return TokenBuy(rid, f.get_bytes("req", max_size=MAX_TOKEN_BLOB))


def _issued(value: object) -> TokenIssued:
    f, rid = _fields(value, "iss")
    return TokenIssued(rid, f.get_bytes("iss", max_size=MAX_TOKEN_BLOB))


TOKEN_DECODERS: Final[dict[str, Callable[[object], object]]] = {
    "tk_offer": _ask,
    "tk_offered": _offered,
    "tk_buy": _buy,
    "tk_issued": _issued,
}
