"""Local full-text search over stored messages, with an index that holds no words.

Theory of operation
-------------------
A message's text is cut into *terms* (:func:`search_terms`: Unicode NFKC,
case-folded, split into runs of word characters, each at most
:data:`MAX_TERM_CHARS`, distinct). Each term is stored as its blind index
(keyed BLAKE2b-256 under the database's ``search-term`` index key, derived
with HKDF from the storage key like every other blind index, so it is
unrelated to the keys of names, ids or payloads; cut to 128 bits) beside the message's
``seq``: one row per distinct term, written with the message in the same
transaction (``index_message``, one ``executemany``). They are written to
``search_pending``, ordered by message, so storing a message appends to one
B-tree instead of dirtying a page per word in a tree ordered by token; the
next search moves them into ``search_terms`` in one pass (:meth:`SearchRepo.merge`).

A query is cut the same way (:func:`query_terms`, bounded); the candidates
are the messages that hold a row for every term (AND), newest first. The
index decides only which sealed rows to open: the caller
(``dchat_messaging``) checks each candidate against its real text in memory,
so a stale or colliding token cannot produce a false match.

Rows go with their message (ON DELETE CASCADE: delete, delete for everyone,
disappearing timers, retention); :meth:`SearchRepo.forget` drops them
explicitly, :meth:`SearchRepo.reindex` replaces them when a text is edited.
Messages stored before the index existed (or before a clear database was
sealed, which drops the clear index) are indexed by :meth:`SearchRepo.rebuild`,
which :attr:`SearchRepo.ready` says is due. docs/rationale.md says what the
index still reveals to someone holding the file without the key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, func, insert, select

from ._access import check_limit
from ._errors import InvalidArgumentError
from ._messages import MESSAGE_COLUMNS, message_record
from ._prepared import Prepared
from ._rowcodec import index_value
from ._schema import Message, Meta, SearchPending, SearchTerm
from ._terms import READY_KEY, index_message, query_terms, term_token

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Connection

    from ._access import Access
    from ._records import MessageRecord

__all__ = ("SearchRepo",)

_READY: Final = b"v1"
_BATCH: Final = 500
# ``WHERE true``: SQLite needs it to parse ON CONFLICT after INSERT ... SELECT. A
# conflict cannot arise (a message's rows are dropped before it is indexed again);
# the clause only keeps a merge from failing the search if one ever did.
_MERGE: Final = Prepared(
    "INSERT INTO search_terms (term_ix, message_seq)"
    " SELECT term_ix, message_seq FROM search_pending WHERE message_seq <= :upto"
    " ON CONFLICT DO NOTHING"
)
_MERGED: Final = Prepared("DELETE FROM search_pending WHERE message_seq <= :upto")
MERGE_BATCH: Final = 2000
"""Messages whose pending rows one merge transaction moves (others write in between)."""


class SearchRepo:
    """The search index of the message store. Obtain it as :attr:`Database.search`."""

    def __init__(self, access: Access) -> None:
        self._access = access

    @property
    def ready(self) -> bool:
        """Whether every stored message is indexed (else :meth:`rebuild` is due)."""
        with self._access.read("read search index state") as conn:
            found = conn.execute(select(Meta.value).where(Meta.name == READY_KEY)).scalar()
        return found is not None and bytes(found) == _READY

    def candidates(
        self,
        query: str,
        *,
        peer_id: str | None = None,
        limit: int = 20,
        before: int | None = None,
    ) -> list[MessageRecord]:
        """The newest ``limit`` messages whose index holds every term of ``query``.

        Candidates only: check each against its text (see the module docstring).

        Args:
            query: The words to find (see :func:`query_terms`).
            peer_id: Only messages with this peer.
            limit: Maximum number of messages.
            before: Only messages whose cursor is below this one (the next page).

        Raises:
            InvalidArgumentError: A bad query (:func:`query_terms`), ``limit``
                below 1 or a negative cursor.
        """
        terms = query_terms(query)
        check_limit(limit)
        if before is not None and before < 0:
            raise InvalidArgumentError(f"a cursor is never negative, got {before}")
        self.merge()
        sealer = self._access.sealer
        tokens = [term_token(sealer, t) for t in terms]
        matching = (
            select(SearchTerm.message_seq)
            .where(SearchTerm.term_ix.in_(tokens))
            .group_by(SearchTerm.message_seq)
            .having(func.count() == len(tokens))
        )
        query_rows = select(*MESSAGE_COLUMNS).where(Message.seq.in_(matching))
        if peer_id is not None:
            peer_ix = index_value(sealer, "identity-id", peer_id)
            query_rows = query_rows.where(Message.peer_ix == peer_ix)
        if before is not None:
            query_rows = query_rows.where(Message.seq < before)
        query_rows = query_rows.order_by(Message.seq.desc()).limit(limit)
        with self._access.read("search messages") as conn:
            rows = conn.execute(query_rows).all()
        return [message_record(sealer, row._mapping) for row in rows]

    def merge(self) -> int:
        """Move the rows of messages stored since the last search into the index proper.

        Returns:
            How many rows moved (none: no write transaction is opened).
        """
        moved = 0
        while True:
            with self._access.read("look for pending search rows") as conn:
                seqs = (
                    select(SearchPending.message_seq)
                    .distinct()
                    .order_by(SearchPending.message_seq)
                    .limit(MERGE_BATCH)
                )
                upto = conn.execute(select(func.max(seqs.subquery().c.message_seq))).scalar()
            if upto is None:
                return moved
            with self._access.write("merge search rows") as conn:  # one bounded batch
                moved += int(_MERGE.run(conn, {"upto": upto}).rowcount)
                _MERGED.run(conn, {"upto": upto})

    def reindex(self, message_id: bytes, text: str) -> bool:
        """Index ``text`` as the text of a stored message (an edit); False if not stored."""
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("reindex message") as conn:
            seq = conn.execute(select(Message.seq).where(Message.message_ix == ix)).scalar()
            if seq is None:
                return False
            _drop_rows(conn, [int(seq)])
            index_message(conn, self._access.sealer, int(seq), text)
            return True

    def forget(self, message_id: bytes) -> int:
        """Drop a message's index rows (the message stays); returns how many went."""
        ix = index_value(self._access.sealer, "message-id", message_id)
        with self._access.write("forget indexed message") as conn:
            seq = conn.execute(select(Message.seq).where(Message.message_ix == ix)).scalar()
            return 0 if seq is None else _drop_rows(conn, [int(seq)])

    def rebuild(self, text_of: Callable[[MessageRecord], str] | None = None) -> int:
        """Index every stored message again, then mark the index built.

        Batches of :data:`_BATCH` messages, each in its own write transaction
        (unless the caller holds one), so messages keep flowing meanwhile;
        messages stored during the rebuild are indexed as they are stored.

        Args:
            text_of: The text to index for a message (its latest edit); default its body.

        Returns:
            How many messages were indexed.
        """
        sealer, done, after = self._access.sealer, 0, -1
        while True:
            with self._access.write("rebuild search index") as conn:
                query = select(*MESSAGE_COLUMNS).where(Message.seq > after)
                rows = conn.execute(query.order_by(Message.seq).limit(_BATCH)).all()
                if not rows:
                    conn.execute(delete(Meta).where(Meta.name == READY_KEY))
                    conn.execute(insert(Meta).values(name=READY_KEY, value=_READY))
                    return done
                seqs = [row.seq for row in rows]
                _drop_rows(conn, seqs)
                for row in rows:
                    record = message_record(sealer, row._mapping)
                    text = record.body if text_of is None else text_of(record)
                    index_message(conn, sealer, int(row.seq), text)
                done, after = done + len(rows), seqs[-1]

    def count(self) -> int:
        """Return the number of index rows (terms of all messages), merged or pending."""
        with self._access.read("count search index rows") as conn:
            return sum(
                int(conn.execute(select(func.count()).select_from(table)).scalar_one())
                for table in (SearchTerm, SearchPending)
            )


def _drop_rows(conn: Connection, seqs: list[int]) -> int:
    """Delete the index rows (merged and pending) of the messages ``seqs``; how many."""
    merged = conn.execute(delete(SearchTerm).where(SearchTerm.message_seq.in_(seqs))).rowcount
    pending = conn.execute(delete(SearchPending).where(SearchPending.message_seq.in_(seqs)))
    return int(merged) + int(pending.rowcount)
