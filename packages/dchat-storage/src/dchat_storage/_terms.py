"""Search terms: the normaliser, query bounds and the index rows of one message.

See ``_search.py`` for the theory of operation. Split from it so the message
store (``_messages.py``) can index a message in its own transaction without
an import cycle.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete

from ._errors import InvalidArgumentError
from ._prepared import Prepared
from ._rowcodec import index_value
from ._schema import Meta, SearchPending, SearchTerm

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from ._sealing import Sealer

__all__ = (
    "MAX_MESSAGE_TERMS",
    "MAX_QUERY_CHARS",
    "MAX_QUERY_TERMS",
    "MAX_TERM_CHARS",
    "READY_KEY",
    "drop_search_index",
    "index_message",
    "query_terms",
    "search_terms",
    "term_token",
)

PURPOSE: Final = "search-term"
"""The blind-index purpose of search terms (its own HKDF subkey)."""
TOKEN_SIZE: Final = 16
"""Bytes of a stored token on a sealed database."""
MAX_TERM_CHARS: Final = 64
"""A longer word is indexed (and searched) by its first 64 characters."""
MAX_MESSAGE_TERMS: Final = 1024
"""Distinct terms indexed per message (the first ones); a longer text's later words are not."""
MAX_QUERY_CHARS: Final = 1024
MAX_QUERY_TERMS: Final = 16
READY_KEY: Final = "search_index"
_WORD: Final = re.compile(r"\w+")
_INSERT: Final = Prepared(
    "INSERT INTO search_pending (message_seq, term_ix) VALUES (:message_seq, :term_ix)"
)


def search_terms(text: str) -> list[str]:
    """The distinct terms of ``text``, in order of first appearance.

    NFKC (so compatibility forms such as full-width letters and ligatures
    match their plain forms), case-folded, NFKC again (case folding can
    leave a string un-normalised), split into runs of word characters.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return list(dict.fromkeys(word[:MAX_TERM_CHARS] for word in _WORD.findall(folded)))


def query_terms(query: str) -> list[str]:
    """The terms of a search query (all must match).

    Raises:
        InvalidArgumentError: The query is longer than :data:`MAX_QUERY_CHARS`,
            has no word, or more than :data:`MAX_QUERY_TERMS` distinct words.
    """
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgumentError(f"a search query is at most {MAX_QUERY_CHARS} characters")
    terms = search_terms(query)
    if not terms:
        raise InvalidArgumentError("a search query needs at least one word")
    if len(terms) > MAX_QUERY_TERMS:
        raise InvalidArgumentError(f"a search query has at most {MAX_QUERY_TERMS} words")
    return terms


def term_token(sealer: Sealer, term: str) -> bytes:
    """The blind token stored for ``term``: its keyed hash cut to :data:`TOKEN_SIZE` bytes.

    128 bits keep tokens of distinct terms apart (and a search checks every
    candidate's real text anyway) at half the size of a full blind index,
    with two copies per row (the table and its by-message index).
    """
    token = index_value(sealer, PURPOSE, term)
    return token[:TOKEN_SIZE] if sealer.encrypted else token


def index_message(conn: Connection, sealer: Sealer, seq: int, text: str) -> None:
    """Write the index rows of message ``seq`` (in the caller's transaction).

    They go to ``search_pending`` (appended in storage order, a page or two
    per message); the next search merges them into ``search_terms``.
    """
    terms = search_terms(text)[:MAX_MESSAGE_TERMS]
    if terms:
        _INSERT.many(conn, [{"term_ix": term_token(sealer, t), "message_seq": seq} for t in terms])


def drop_search_index(conn: Connection) -> None:
    """Delete every index row and mark the index unbuilt (the keys changed)."""
    conn.execute(delete(SearchTerm))
    conn.execute(delete(SearchPending))
    conn.execute(delete(Meta).where(Meta.name == READY_KEY))
