"""Conversations: per-conversation retention and disappearing-message timers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from ._access import insert_ignore
from ._errors import InvalidArgumentError, NotFoundError
from ._records import ConversationRecord
from ._rowcodec import SealedTable
from ._schema import Conversation

if TYPE_CHECKING:
    import builtins
    from collections.abc import Mapping

    from ._access import Access

__all__ = ("CONVERSATIONS", "ConversationRepo")

CONVERSATIONS = SealedTable(
    Conversation,
    key="conv_ix",
    indexes={"conv_ix": ("conversation", "conversation_id")},
    ad=("conv_ix",),
)
_COLUMNS = (
    Conversation.conv_ix,
    Conversation.payload,
    Conversation.retention_s,
    Conversation.disappear_s,
    Conversation.created_at,
)


def _check_period(name: str, seconds: float | None) -> None:
    if seconds is not None and not seconds > 0:
        raise InvalidArgumentError(f"{name} must be positive seconds or None, got {seconds!r}")


class ConversationRepo:
    """Conversation settings. Obtain it as :attr:`Database.conversations`.

    A direct conversation's id is the peer's identity id, which is what
    :meth:`MessageRepo.add` files a message under by default.
    """

    def __init__(self, access: Access) -> None:
        self._access = access

    def create(
        self,
        conversation_id: str,
        now: float,
        *,
        title: str = "",
        retention: float | None = None,
        disappear_after: float | None = None,
    ) -> bool:
        """Create a conversation's settings; a no-op (False) if it exists.

        Args:
            conversation_id: The conversation's id.
            now: Creation time.
            title: A local title.
            retention: Keep messages this many seconds; None keeps them forever.
            disappear_after: Disappearing-message timer in seconds, or None.

        Raises:
            InvalidArgumentError: A period is zero or negative.
        """
        _check_period("retention", retention)
        _check_period("disappear_after", disappear_after)
        fields = {"conversation_id": conversation_id, "title": title}
        clear = {"retention_s": retention, "disappear_s": disappear_after, "created_at": now}
        row = CONVERSATIONS.row(self._access.sealer, fields, clear)
        with self._access.write("create conversation") as conn:
            return insert_ignore(conn, Conversation, row)

    def set_retention(self, conversation_id: str, seconds: float | None) -> None:
        """Keep messages ``seconds`` after storing them (None: forever).

        Raises:
            NotFoundError: The conversation does not exist.
            InvalidArgumentError: ``seconds`` is zero or negative.
        """
        _check_period("retention", seconds)
        self._update(conversation_id, retention_s=seconds)

    def set_disappearing(self, conversation_id: str, seconds: float | None) -> None:
        """Set the disappearing-message timer (None: off); applies to messages read later.

        Raises:
            NotFoundError: The conversation does not exist.
            InvalidArgumentError: ``seconds`` is zero or negative.
        """
        _check_period("disappear_after", seconds)
        self._update(conversation_id, disappear_s=seconds)

    def set_timer(self, conversation_id: str, seconds: float | None, now: float) -> None:
        """Set the disappearing timer, creating the conversation's settings if it has none.

        Raises:
            InvalidArgumentError: ``seconds`` is zero or negative.
        """
        _check_period("disappear_after", seconds)
        self.create(conversation_id, now)
        self._update(conversation_id, disappear_s=seconds)

    def get(self, conversation_id: str) -> ConversationRecord | None:
        """Return a conversation's settings, or None."""
        ix = CONVERSATIONS.index(self._access.sealer, "conv_ix", conversation_id)
        with self._access.read("get conversation") as conn:
            row = conn.execute(select(*_COLUMNS).where(Conversation.conv_ix == ix)).one_or_none()
        return None if row is None else self._record(row._mapping)

    def list(self) -> builtins.list[ConversationRecord]:
        """Return every conversation, oldest first."""
        query = select(*_COLUMNS).order_by(Conversation.created_at)
        with self._access.read("list conversations") as conn:
            rows = conn.execute(query).all()
        return [self._record(row._mapping) for row in rows]

    def _update(self, conversation_id: str, **values: float | None) -> None:
        ix = CONVERSATIONS.index(self._access.sealer, "conv_ix", conversation_id)
        statement = update(Conversation).where(Conversation.conv_ix == ix).values(**values)
        with self._access.write("update conversation") as conn:
            if conn.execute(statement).rowcount == 0:
                raise NotFoundError(f"no conversation {conversation_id!r}")

    def _record(self, row: Mapping[Any, Any]) -> ConversationRecord:
        f = CONVERSATIONS.fields(self._access.sealer, row)
        return ConversationRecord(
            f["conversation_id"],
            f["title"],
            row["retention_s"],
            row["disappear_s"],
            row["created_at"],
        )
