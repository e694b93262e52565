"""Lifecycle rules: disappearing messages, retention, mailbox and event TTL, garbage collection.

:meth:`Lifecycle.sweep` applies every rule as of a given time. Each rule is a
DELETE of rows whose deadline has passed, so a sweep is idempotent: running it
twice at the same ``now`` deletes nothing the second time and leaves the same
state. Quotas are enforced when data is written (uploads, relay ``put``); the
sweep frees space so later writes fit again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import and_, delete, or_, select

from ._events import prune_events
from ._mailbox import delete_entries
from ._schema import (
    AttachmentRow,
    BlobChunk,
    BlobRow,
    Conversation,
    MailboxRow,
    Message,
    MessageAttachment,
)

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, Connection

    from ._access import Access
    from ._event_tail import EventTail

__all__ = ("Lifecycle", "LifecyclePolicy", "SweepReport")

DAY = 86400.0


@dataclass(frozen=True, slots=True)
class LifecyclePolicy:
    """Database-wide lifecycle settings (per-conversation ones live in conversations).

    Attributes:
        mailbox_ttl: Relay mailbox entries older than this many seconds are
            dropped (None: never). Default 30 days.
        attachment_grace: An attachment no message references is collected
            this long after upload (it may be about to be sent). Default 1 day.
        event_ttl: Events older than this many seconds are pruned from the
            event log (None: never); a client further behind must re-list.
            Default 30 days.
        disappearing: Delete messages whose disappearing timer ran out. A user
            node turns it off: its messaging layer expires them itself, with
            what it keeps about them (notes, attachments, relay blobs), on a
            tighter schedule (``AttachmentKeeper.expire``).
    """

    mailbox_ttl: float | None = 30 * DAY
    attachment_grace: float = DAY
    event_ttl: float | None = 30 * DAY
    disappearing: bool = True


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one sweep deleted.

    Attributes:
        disappeared: Messages whose disappearing timer ran out.
        retention: Messages older than their conversation's retention.
        mailbox_entries: Relay mailbox entries past the TTL.
        attachments: Unreferenced attachments past the grace period.
        blobs: Content no attachment references any more (and abandoned uploads).
        events: Events pruned from the event log past its TTL.
    """

    disappeared: int = 0
    retention: int = 0
    mailbox_entries: int = 0
    attachments: int = 0
    blobs: int = 0
    events: int = 0

    def counts(self) -> dict[str, int]:
        """Each rule's count by name (for logs and reports)."""
        return {
            "disappeared": self.disappeared,
            "retention": self.retention,
            "mailbox_entries": self.mailbox_entries,
            "attachments": self.attachments,
            "blobs": self.blobs,
            "events": self.events,
        }

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(self.counts().values())


def _delete_messages(conn: Connection, condition: ColumnElement[bool]) -> int:
    seqs = select(Message.seq).where(condition)
    conn.execute(delete(MessageAttachment).where(MessageAttachment.message_seq.in_(seqs)))
    return conn.execute(delete(Message).where(Message.seq.in_(seqs))).rowcount


class Lifecycle:
    """Runs the lifecycle rules. Obtain it as :attr:`Database.lifecycle`."""

    def __init__(self, access: Access, tail: EventTail) -> None:
        self._access = access
        self._tail = tail  # emptied by each rule that deletes messages or events

    def sweep(self, now: float, policy: LifecyclePolicy | None = None) -> SweepReport:
        """Apply every rule as of ``now``; each rule commits on its own.

        Args:
            now: The current time, seconds since the Unix epoch.
            policy: Database-wide settings; default :class:`LifecyclePolicy`.

        Returns:
            Counts of what was deleted.
        """
        policy = policy or LifecyclePolicy()
        disappeared = 0
        if policy.disappearing:
            with self._access.write("expire disappearing messages") as conn:
                self._tail.changing()
                expired = and_(Message.expires_at.is_not(None), Message.expires_at <= now)
                disappeared = _delete_messages(conn, expired)
        with self._access.write("apply retention") as conn:
            self._tail.changing()
            retention = _delete_messages(conn, _past_retention(now))
        entries = 0
        if policy.mailbox_ttl is not None:
            cutoff = now - policy.mailbox_ttl
            with self._access.write("expire mailbox entries") as conn:
                entries = delete_entries(conn, MailboxRow.received_at < cutoff)
        with self._access.write("collect attachments") as conn:
            attachments, blobs = _collect(conn, now - policy.attachment_grace)
        events = 0
        if policy.event_ttl is not None:
            with self._access.write("prune events") as conn:
                self._tail.changing()
                events = prune_events(conn, now - policy.event_ttl)
        return SweepReport(disappeared, retention, entries, attachments, blobs, events)


def _past_retention(now: float) -> ColumnElement[bool]:
    limited = (
        select(Conversation.conv_ix)
        .where(
            Conversation.conv_ix == Message.conv_ix,
            Conversation.retention_s.is_not(None),
            Message.stored_at < now - Conversation.retention_s,
        )
        .exists()
    )
    return limited


def _collect(conn: Connection, grace_cutoff: float) -> tuple[int, int]:
    referenced = select(MessageAttachment.attachment_id)
    attachments = conn.execute(
        delete(AttachmentRow).where(
            AttachmentRow.created_at < grace_cutoff,
            AttachmentRow.attachment_id.not_in(referenced),
        )
    ).rowcount
    # Published blobs nobody references, and uploads abandoned mid-stream.
    orphans = select(BlobRow.blob_id).where(
        BlobRow.blob_id.not_in(select(AttachmentRow.blob_id)),
        or_(BlobRow.content_ix.is_not(None), BlobRow.created_at < grace_cutoff),
    )
    doomed = [row[0] for row in conn.execute(orphans)]
    for start in range(0, len(doomed), 500):
        batch = doomed[start : start + 500]
        conn.execute(delete(BlobChunk).where(BlobChunk.blob_id.in_(batch)))
        conn.execute(delete(BlobRow).where(BlobRow.blob_id.in_(batch)))
    return attachments, len(doomed)
