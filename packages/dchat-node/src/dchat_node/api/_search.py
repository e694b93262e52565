"""API routes for local search (user role).

* ``GET /v1/search?q=&peer=&limit=&before=``: the newest stored texts (sent
  and received) holding every word of ``q``, newest first, each with its
  snippet; ``peer`` (a contact's name or an identity id) narrows to one
  conversation; ``next_before`` pages on (``before``).
* ``POST /v1/search/rebuild``: index every stored text again.

The search runs in the messaging agent (``UserMessaging.search``, sans-IO)
over the database's blind word index; these routes only parse, call and shape.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Query

from dchat_messaging.lowlevel import MAX_SEARCH_LIMIT
from dchat_storage.lowlevel import MAX_QUERY_CHARS

from ._messages import Cursor, message_json
from ._roles import user_role

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.params import Depends

    from dchat_messaging.lowlevel import SearchHit

    from .._runtime import Node

__all__ = ("add_search_routes", "hit_json")


def hit_json(hit: SearchHit) -> dict[str, Any]:
    """One search result as the API shows it."""
    return {
        **message_json(hit.entry, hit.peer_name),
        "text": hit.text,
        "snippet": hit.snippet,
        "match": list(hit.match),
        "cursor": hit.entry.cursor,
    }


def add_search_routes(app: FastAPI, node: Node, auth: list[Depends]) -> None:
    """Add the routes above to ``app``."""

    @app.get("/v1/search", dependencies=auth)
    async def search(
        q: Annotated[str, Query(min_length=1, max_length=MAX_QUERY_CHARS)],
        peer: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_LIMIT)] = 20,
        before: Cursor = None,  # at most 2**63 - 1 (SQLite's integers)
    ) -> dict[str, Any]:
        u = user_role(node).user
        find = functools.partial(u.agent.search.page, peer=peer, limit=limit, before=before)
        hits, next_before = await u.run(find, q)
        return {
            "query": q,
            "results": [hit_json(hit) for hit in hits],
            "next_before": next_before,
        }

    @app.post("/v1/search/rebuild", dependencies=auth)
    async def rebuild() -> dict[str, Any]:
        u = user_role(node).user
        return {"indexed": await u.run(u.agent.search.rebuild)}
