"""Profiles served by relation between three real nodes: owner, contact, stranger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient


def _served(client: RemoteClient, who: str) -> dict[str, Any] | None:
    try:
        return client.request("GET", f"/v1/profiles/{who}")
    except ApiError:
        return None


@pytest.mark.slow
def test_a_stranger_sees_public_fields_and_a_contact_sees_more(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    owner, friend, stranger = make_user("owner"), make_user("friend"), make_user("stranger")
    with owner.client() as o, friend.client() as f, stranger.client() as s:
        o.create_identity("alice")
        f.create_identity("bob")
        s.create_identity("mallory")
        o.add_contact("bob", f.card())
        f.add_contact("alice", o.card())
        s.add_contact("alice", o.card())  # Mallory knows Alice; Alice does not know Mallory
        seq = o.document()["seq"]
        o.request("PUT", "/v1/profile", {"display_name": "Alice", "visibility": "public"})
        o.request("PUT", "/v1/profile", {"bio": "for friends", "visibility": "contacts"})
        mine = o.request("PUT", "/v1/profile", {"status": "away", "visibility": "nobody"})
        assert o.document()["profile"] == mine["commitment"]
        assert o.document()["seq"] == seq + 3
        with pytest.raises(ApiError) as empty:
            o.request("PUT", "/v1/profile", {"visibility": "public"})
        assert empty.value.status == 422

        f.request("POST", "/v1/profiles/request", {"who": "alice"})
        s.request("POST", "/v1/profiles/request", {"who": "alice"})
        wait_until(lambda: _served(f, "alice") is not None and _served(s, "alice") is not None)
        as_friend, as_stranger = _served(f, "alice"), _served(s, "alice")
        assert as_friend is not None
        assert as_stranger is not None
        assert as_friend["fields"] == {"display_name": "Alice", "bio": "for friends"}
        assert as_friend["hidden"] == ["status"]
        assert as_stranger["fields"] == {"display_name": "Alice"}
        assert as_stranger["hidden"] == ["bio", "status"]
        with pytest.raises(ApiError) as unknown:
            s.request("GET", "/v1/profiles/nobody-here")
        assert unknown.value.status == 404
