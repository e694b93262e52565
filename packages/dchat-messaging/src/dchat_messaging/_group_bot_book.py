"""The bots of a user node's groups: adding one with a grant, changing it, commands to us.

A group admin adds a bot (a contact: the user talked to it first, and saw
what it asks for with ``dchat bot info``) with a signed ``bot`` update, and
changes what it may do with ``grant`` (:mod:`._group_bots` says what each
grant lets it read, post and administer, and how members enforce it).

On a bot's own node, :meth:`GroupBots.receive_command` takes a ``group.cmd``:
a command a member sent it pairwise, because the bot reads commands only and
holds no sender chain. It is refused unless we are a commands-only bot of
that group, its sender may post there, and the text is a command to us; an
accepted one is logged like any group message (``group_message``, with
``command``), so the Bot API hands it to the bot's program.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dchat_core import IdentityId, MessageId

from ._errors import GroupError, RequestError
from ._group_bots import BotGrant, addressed, decode_command
from ._group_store import read_plaintext

if TYPE_CHECKING:
    from ._contacts import ContactBook
    from ._conversations import ConversationUpdate
    from ._devices import DeviceAddress
    from ._group_book import Groups

__all__ = ("GroupBots",)


class GroupBots:
    """Bots in the groups of one user node (see the module docstring)."""

    def __init__(self, groups: Groups, contacts: ContactBook) -> None:
        self._groups = groups
        self._contacts = contacts

    def add(
        self, ref: str, contact: str, grant: BotGrant, *, now: float
    ) -> tuple[str, list[DeviceAddress]]:
        """Add the bot ``contact`` (a contact name or identity id) with ``grant``.

        Raises:
            RequestError: ``unknown_contact``, ``not_allowed`` (not an admin, already in).
        """
        with self._groups.store.transaction():
            card = self._contacts.find(contact)
            _, waiting = self._groups.change(
                ref, "bot", [card.to_bytes(), grant.to_wire()], now=now, invite=card
            )
        return str(card.identity_id), waiting

    def set_grant(
        self, ref: str, bot: str, grant: BotGrant, *, now: float
    ) -> tuple[int, list[DeviceAddress]]:
        """Change what the bot ``bot`` may do; the group's new version.

        Raises:
            RequestError: ``not_found`` (no such member), ``not_allowed`` (not an
                admin, or ``bot`` is no bot).
        """
        with self._groups.store.transaction():
            record = self._groups.find(ref)
            target = self._groups.member_id(record.state, bot)
            if record.state.members[target].bot is None:
                raise RequestError("not_allowed", f"{bot!r} is a person, not a bot, in that group")
            record, waiting = self._groups.change(ref, "grant", [target, grant.to_wire()], now=now)
        return record.state.version, waiting

    def receive_command(self, sender: bytes, data: bytes, now: float) -> list[ConversationUpdate]:
        """A command a member sent us, a bot that reads commands only (raises GroupError)."""
        gid, plain = decode_command(data)
        record = self._groups.in_group(gid, "a command")
        state, me = record.state, self._groups.identity()
        if sender not in state.members:  # its add may not have reached us yet: wait
            raise GroupError("not_member", "a command from someone outside the group")
        ours = state.members.get(me)
        if ours is None or ours.bot is None or ours.bot.read_all:
            raise GroupError("not_allowed", "a command to a node that is no commands-only bot")
        if not state.may(sender, "post"):
            raise GroupError("not_allowed", "the group's settings do not let this member post")
        mid, ts, text = read_plaintext(plain)
        if not addressed(text, ours.card.name):
            raise GroupError("not_allowed", "a text that is no command to this bot")
        row: list[object] = [mid.hex(), str(IdentityId(sender)), ts, text, "in", 0, ""]
        self._groups.db.log(gid, row)
        return [
            self._groups.event(
                "group_message", gid, sender, now, message_id=str(MessageId(mid)), text=text,
                seq=0, title=state.title, sent_at_ms=ts, command=True,
                sender_name=state.members[sender].card.name,
            )
        ]  # fmt: skip
