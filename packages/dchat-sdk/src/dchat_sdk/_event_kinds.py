"""Every kind of event a user node logs, and the typed data of each.

:data:`EVENT_KINDS` names each kind the node writes to its event log
(docs/protocol.md §19 has the same table) and the model of its data; an
:class:`~dchat_sdk.Event` reads its data as that model through the property
the table names (``event.payment``, ``event.group``, ...). The models are
:class:`~typing.TypedDict`: the JSON object as the node sent it, with its
required keys checked. Kinds not listed here may appear from a newer node:
skip what you do not know.
"""

from __future__ import annotations

from typing import Any, Final, Literal, TypedDict

__all__ = (
    "EVENT_KINDS",
    "BotUpdate",
    "BurnerSeed",
    "ChannelUpdate",
    "ConversationChange",
    "Expired",
    "GroupUpdate",
    "PaymentVerdict",
    "RelayStatus",
    "RequestChange",
)


class RequestChange(TypedDict):
    """``request``: a stranger's message request opened, accepted, ignored or blocked."""

    identity_id: str
    state: Literal["open", "accepted", "ignored", "blocked"]


class RelayStatus(TypedDict):
    """``status``: the home relay became reachable or not."""

    relay: Literal["connected", "unreachable"]


PaymentVerdict = TypedDict(
    "PaymentVerdict",
    {
        "message_id": str,
        "peer_id": str,
        "amount": int,
        "chain": str,
        "from": str,
        "to": str,
        "tx": str,
        "height": int,
        "note": str,
        "state": Literal["verified", "refused"],
        "code": str | None,
    },
)
"""``payment``: a received payment proven (``verified``) or ``refused`` with ``code``
(docs/protocol.md §25)."""


class Expired(TypedDict):
    """``expired``: disappearing messages of ``peer`` deleted (their ids)."""

    peer: str
    ids: list[str]


class ConversationChange(TypedDict):
    """``receipt``, ``edit``, ``delete``, ``reaction``, ``typing``, ``timer``: a peer's
    control applied to the conversation ``peer``, by ``by``, on the messages ``ids``.

    The rest of the data depends on the kind (``text`` of an edit, ``emoji`` and
    ``on`` of a reaction, ``seconds`` of a timer; docs/protocol.md §23).
    """

    peer: str
    by: str
    ids: list[str]


class GroupUpdate(TypedDict):
    """``group_*``: something in the private group ``group`` (hex), done by ``by``.

    ``group_message`` adds ``message_id``, ``text``, ``seq``; ``group_update``
    adds ``op`` and ``version``; anchored groups' ``group_anchored``,
    ``group_gap``, ``group_equivocation`` add what the chain showed.
    """

    group: str
    by: str
    peer: str


class ChannelUpdate(TypedDict):
    """``channel_update`` (``op``: create, subscribe, unsubscribe) or ``channel_post``
    in the channel ``channel`` (hex)."""

    channel: str


class BurnerSeed(TypedDict):
    """``burner_held`` (``reason``: ``expired``): an expired burner's seed is kept for
    its stealth funds (sweep them: ``stealth_sweep(..., identity=burner_id)``);
    ``burner_released``: it is gone (``reason``: ``empty``, its accounts hold
    nothing; ``discarded``)."""

    burner_id: str
    reason: str


class BotUpdate(TypedDict):
    """``bot_*``: a bot conversation's button press, inline query, keyboard, answer,
    command list or inline results, with the peer it concerns (docs/protocol.md §35)."""

    peer_id: str


_CONVERSATION = ("receipt", "edit", "delete", "reaction", "typing", "timer")
_GROUP = (
    "group_message",
    "group_update",
    "group_link",
    "group_join_refused",
    "group_anchored",
    "group_gap",
    "group_equivocation",
)
_BOT = ("bot_callback", "bot_inline", "bot_keyboard", "bot_answer", "bot_commands", "bot_results")

EVENT_KINDS: Final[dict[str, tuple[str, type[Any]]]] = {
    "message": ("message", dict),
    "request": ("request", RequestChange),
    "status": ("relay", RelayStatus),
    "payment": ("payment", PaymentVerdict),
    "expired": ("expired", Expired),
    "stealth_received": ("stealth", dict),
    **{kind: ("conversation", ConversationChange) for kind in _CONVERSATION},
    **{kind: ("group", GroupUpdate) for kind in _GROUP},
    "channel_update": ("channel", ChannelUpdate),
    "channel_post": ("channel", ChannelUpdate),
    **{kind: ("bot", BotUpdate) for kind in _BOT},
    "burner_held": ("burner", BurnerSeed),
    "burner_released": ("burner", BurnerSeed),
}
"""Each kind the node logs -> (the :class:`~dchat_sdk.Event` property that reads it,
the model of its data). ``message`` reads as :class:`~dchat_sdk.MessageInfo` and
``stealth_received`` as :class:`~dchat_sdk.StealthReceived` (dataclasses)."""
