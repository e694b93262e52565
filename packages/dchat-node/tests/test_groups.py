"""A private group across real processes: three users over one relay, bob on two devices.

Alice creates a group and invites bob and carol (all contacts, so that each
knows bob's laptop; the engine tests cover members who are strangers); they
join through the API and the SDK (bob on his phone: his laptop follows);
everyone reads everyone, bob's laptop too, and it posts; alice removes
carol; what alice and bob post afterwards reaches alice and both of bob's
devices and never carol, whose node shows her out of the group. Then alice
makes an invite link and carol comes back by it (the join by link, its use
counted, its revocation). The event stream carries ``group_update``,
``group_message`` and ``group_link``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dchat_sdk import ApiError
from dchat_testing import link_device, peer_devices

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
    names = ("alice", "bob", "carol", "bob-laptop")
    a, b, c, b2 = clients = [make_user(n).client() for n in names]
    try:
        ids = [
            client.create_identity(name) for client, name in zip(clients, names[:3], strict=False)
        ]
        for x, y in ((0, 1), (0, 2), (1, 2)):  # contacts, so they learn bob's laptop
            clients[x].add_contact(names[y], clients[y].card())
            clients[y].add_contact(names[x], clients[x].card())
        link_device(b, b2, wait_until)
        for client in (a, c):
            wait_until(lambda client=client: peer_devices(client, ids[1]) == 2, timeout=40)
        gid = a.create_group("team")
        assert a.invite_many_to_group(gid, ["bob", "carol"]) == ids[1:]  # one `adds` update
        for client in (b, c):
            wait_until(lambda client=client: _status(client, gid) == "invited", timeout=30)
            client.join_group(gid)
        wait_until(lambda: _status(b2, gid) == "active", timeout=30)  # his phone joined
        a.send_to_group(gid, "hello team")
        b.send_to_group(gid, "hi from bob")
        c.send_to_group(gid, "hi from carol")
        b2.send_to_group(gid, "bob on his laptop")
        want = ["bob on his laptop", "hello team", "hi from bob", "hi from carol"]
        for client in clients:
            wait_until(lambda client=client: sorted(_texts(client, gid)) == want, timeout=30)
        assert len(c.group(gid)["members"]) == 3

        a.remove_from_group(gid, "carol")
        wait_until(lambda: _status(c, gid) == "left", timeout=30)
        wait_until(lambda: len(b.group(gid)["members"]) == 2, timeout=30)
        a.send_to_group(gid, "after carol")
        b.send_to_group(gid, "bob after carol")
        for client in (a, b, b2):
            wait_until(lambda client=client: len(_texts(client, gid)) == 6, timeout=30)
        assert sorted(_texts(c, gid)) == want  # nothing after her removal
        with pytest.raises(ApiError) as refused:  # her node knows she is out
            c.send_to_group(gid, "still here?")
        assert (refused.value.status, refused.value.code) == (403, "not_allowed")
        # Carol comes back by an invite link (one use), as a stranger would.
        made = a.create_group_link(gid, uses=1, expires_in=600)
        assert made["link"].startswith("dchat-group:")
        assert made["state"] == "live"
        with pytest.raises(ApiError) as bad:
            c.join_group_by_link(made["link"][:-6])
        assert (bad.value.status, bad.value.code) == (400, "bad_link")
        assert c.join_group_by_link(made["link"]) == gid
        wait_until(lambda: _status(c, gid) == "active", timeout=30)  # she asked: no join step
        wait_until(lambda: len(b.group(gid)["members"]) == 3, timeout=30)
        c.send_to_group(gid, "carol is back")
        for client in (a, b, b2):
            wait_until(lambda client=client: "carol is back" in _texts(client, gid), timeout=30)
        assert [(x["state"], x["used"]) for x in a.group_links(gid)] == [("used", 1)]
        assert a.revoke_group_link(gid, made["id"])["state"] == "revoked"
        with pytest.raises(ApiError) as unknown:
            b.group("no such group")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_group")
        kinds = {e.kind for e in b.event_page(after=0, limit=200)[0]}
        assert {"group_update", "group_message"} <= kinds
        assert "group_link" in {e.kind for e in a.event_page(after=0, limit=500)[0]}
    finally:
        for client in clients:
            client.close()
