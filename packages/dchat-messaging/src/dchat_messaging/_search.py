"""Local full-text search over the user's stored texts (sent and received).

Theory of operation
-------------------
The store keeps a blind word index beside the sealed messages (in the node
database: ``dchat_storage``'s ``search_terms``, keyed tokens, no words on
disk). :meth:`MessageSearch.search` asks it for *candidates*: the newest
messages whose index holds every word of the query. Each candidate is then
checked against the text the user sees (its latest edit, read from the
conversation notes) with the same normaliser in memory: a candidate whose
text does not hold every word is dropped, so the index can narrow the search
but never add a false match. The snippet is cut from that real text around
the first matching word.

The index follows the texts: a stored message is indexed in the transaction
that stores it, an edit re-indexes its text (:class:`Conversations`), a
deleted or expired message takes its rows with it. A store that says its
index is not built (a database from before the index, or one just sealed) is
rebuilt on the first search (:meth:`MessageSearch.rebuild`), with each text's
latest edit.

Calls are synchronous, for the shell's database worker. A bad query
(empty, only punctuation, longer than ``MAX_QUERY_CHARS`` or with more than
``MAX_QUERY_TERMS`` words) raises :class:`RequestError` ``invalid_request``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Protocol

from dchat_core import IdentityId

from ._errors import RequestError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ._contacts import ContactBook, MessageEntry, UserStore
    from ._conversations import Conversations

__all__ = ("MAX_SEARCH_LIMIT", "MessageSearch", "SearchHit", "SearchStore")

MAX_SEARCH_LIMIT: Final = 200
"""The most results one search returns."""
SNIPPET_BEFORE: Final = 30
SNIPPET_AFTER: Final = 60
_WORD: Final = re.compile(r"\w+")
_SPACE: Final = re.compile(r"\s+")


class SearchStore(Protocol):
    """The search index of a message store."""

    def search_candidates(
        self, query: str, peer: str | None, limit: int, *, before: int | None = None
    ) -> Sequence[MessageEntry]:
        """The newest ``limit`` messages (with ``peer`` only, if given; below the cursor
        ``before``) whose index holds every word of ``query``.

        Raises the store's invalid-argument error for a bad query.
        """
        ...

    def search_ready(self) -> bool:
        """Whether every stored message is indexed."""
        ...

    def rebuild_search(self, text_of: Callable[[MessageEntry], str]) -> int:
        """Index every stored message's ``text_of`` again; returns how many."""
        ...

    def reindex_message(self, message_id: bytes, text: str) -> bool:
        """Index ``text`` as a stored message's text (an edit); False if not stored."""
        ...


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One message that matched a search.

    Attributes:
        entry: The stored message.
        peer_name: Its peer's contact name, if a contact.
        text: The text the user sees (its latest edit).
        snippet: Part of ``text`` around the first matching word, whitespace collapsed.
        match: Where that word is in ``snippet`` (``start``, ``end``).
    """

    entry: MessageEntry
    peer_name: str | None
    text: str
    snippet: str
    match: tuple[int, int]


def snippet(text: str, terms: Sequence[str]) -> tuple[str, tuple[int, int]]:
    """Cut ``text`` around its first word among ``terms``; the word's place in the cut."""
    from dchat_storage.lowlevel import search_terms  # here: SQLAlchemy loads only when searching

    wanted = set(terms)
    start, end = 0, 0
    for found in _WORD.finditer(text):
        if wanted.intersection(search_terms(found.group())):
            start, end = found.span()
            break
    lo, hi = max(0, start - SNIPPET_BEFORE), min(len(text), end + SNIPPET_AFTER)
    head = _SPACE.sub(" ", text[lo:start])
    word = _SPACE.sub(" ", text[start:end])
    tail = _SPACE.sub(" ", text[end:hi])
    prefix = "…" if lo > 0 else ""
    cut = prefix + head + word + tail + ("…" if hi < len(text) else "")
    at = len(prefix) + len(head)
    return cut, (at, at + len(word))


class MessageSearch:
    """Search over one user node's stored texts.

    Args:
        store: The node's store (with its search index).
        book: The contacts (a peer given by name; names of results).
        conversations: The texts' notes (latest edits).
    """

    def __init__(self, store: UserStore, book: ContactBook, conversations: Conversations) -> None:
        self._store = store
        self._book = book
        self._conversations = conversations

    def search(
        self, query: str, *, peer: str | None = None, limit: int = 20, before: int | None = None
    ) -> list[SearchHit]:
        """The newest texts holding every word of ``query``, newest first (:meth:`page`'s hits)."""
        return self.page(query, peer=peer, limit=limit, before=before)[0]

    def page(
        self, query: str, *, peer: str | None = None, limit: int = 20, before: int | None = None
    ) -> tuple[list[SearchHit], int | None]:
        """One page of :meth:`search` and the cursor of the next (None: no more).

        The next page starts after the last *candidate* the index gave, not the
        last hit: a candidate whose real text does not match (a stale index) is
        dropped from this page without ending the paging.

        Args:
            query: Words to find (case and Unicode compatibility forms ignored).
            peer: Only texts with this contact (a name or an identity id).
            limit: At most this many (1 to :data:`MAX_SEARCH_LIMIT`).
            before: Only texts stored before the one with this cursor (the next page).

        Raises:
            RequestError: ``invalid_request`` (a bad query, limit or cursor);
                ``unknown_contact``.
        """
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise RequestError("invalid_request", f"limit is 1 to {MAX_SEARCH_LIMIT}")
        if before is not None and before < 0:
            raise RequestError("invalid_request", "a cursor is never negative")
        from dchat_storage import InvalidArgumentError  # here: see snippet()
        from dchat_storage.lowlevel import query_terms, search_terms

        try:
            terms = query_terms(query)
        except InvalidArgumentError as exc:
            raise RequestError("invalid_request", str(exc)) from None
        peer_id = peer
        if peer is not None and not peer.startswith(IdentityId.PREFIX):
            peer_id = str(self._book.find(peer).identity_id)
        if not self._store.search_ready():
            self.rebuild()
        found = self._store.search_candidates(query, peer_id, limit, before=before)
        hits: list[SearchHit] = []
        for entry, name in self._book.with_names(found):
            text = self._conversations.text_of(entry)
            if set(terms) <= set(search_terms(text)):  # the real text decides
                hits.append(SearchHit(entry, name, text, *snippet(text, terms)))
        full = len(found) == limit and found[-1].cursor is not None
        return hits, found[-1].cursor if full else None

    def rebuild(self) -> int:
        """Index every stored text again (with its latest edit); returns how many."""
        return self._store.rebuild_search(self._conversations.text_of)
