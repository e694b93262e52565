"""A private group across real processes: three users over one relay.

Alice creates a group and invites bob and carol (bob and carol are not each
other's contacts); they join through the API and the SDK; everyone reads
everyone; alice removes carol; what alice and bob post afterwards reaches bob
and alice and never carol, whose node shows her out of the group. The event
stream carries ``group_update`` and ``group_message``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dchat_sdk import ApiError

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_node import NodeProcess
    from dchat_sdk import RemoteClient

pytestmark = pytest.mark.slow


def _texts(client: RemoteClient, gid: str) -> list[str]:
    return [m["text"] for m in client.group_messages(gid)]


def _status(client: RemoteClient, gid: str) -> str | None:
    return next((g["status"] for g in client.groups() if g["group_id"] == gid), None)


def test_a_group_of_three_with_a_removal(
    make_user: Callable[[str], NodeProcess], wait_until: Callable[..., None]
) -> None:
    a, b, c = clients = [make_user(n).client() for n in ("alice", "bob", "carol")]
    try:
        for client, name in zip(clients, ("alice", "bob", "carol"), strict=True):
            client.create_identity(name)
        for client, name in ((b, "bob"), (c, "carol")):
            a.add_contact(name, client.card())
            client.add_contact("alice", a.card())
        gid = a.create_group("team")
        a.invite_to_group(gid, "bob")
        a.invite_to_group(gid, "carol")
        for client in (b, c):
            wait_until(lambda client=client: _status(client, gid) == "invited", timeout=30)
            client.join_group(gid)
        a.send_to_group(gid, "hello team")
        b.send_to_group(gid, "hi from bob")
        c.send_to_group(gid, "hi from carol")
        want = ["hello team", "hi from bob", "hi from carol"]
        for client in clients:
            wait_until(lambda client=client: sorted(_texts(client, gid)) == want, timeout=30)
        assert len(c.group(gid)["members"]) == 3

        a.remove_from_group(gid, "carol")
        wait_until(lambda: _status(c, gid) == "left", timeout=30)
        wait_until(lambda: len(b.group(gid)["members"]) == 2, timeout=30)
        a.send_to_group(gid, "after carol")
        b.send_to_group(gid, "bob after carol")
        for client in (a, b):
            wait_until(lambda client=client: len(_texts(client, gid)) == 5, timeout=30)
        assert sorted(_texts(c, gid)) == want  # nothing after her removal
        with pytest.raises(ApiError) as refused:  # her node knows she is out
            c.send_to_group(gid, "still here?")
        assert (refused.value.status, refused.value.code) == (403, "not_allowed")
        with pytest.raises(ApiError) as unknown:
            b.group("no such group")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_group")
        kinds = {e.kind for e in b.event_page(after=0, limit=200)[0]}
        assert {"group_update", "group_message"} <= kinds
    finally:
        for client in clients:
            client.close()
