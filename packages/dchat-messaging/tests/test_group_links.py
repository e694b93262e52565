"""Invite links between user agents that are not each other's contacts, driven without a network.

A stranger joins by link (the inviter's node adds it with a signed update that
every member checks); expired, used, revoked and forged links are refused
with their reason; a replayed or repeated request adds nobody twice; a member
removed since cannot come back by the link it joined with; the link decoder
refuses anything malformed (hypothesis).
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_messaging import RequestError
from dchat_messaging._group_links import LINK_PREFIX, GroupLink
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0


def pump(nodes: list[AgentNode], now: float = T0 + 1) -> dict[str, list[object]]:
    """Deliver all mail between ``nodes`` until none is left; each node's updates by name."""
    by_box = {bytes(n.card.mailbox): n for n in nodes}
    updates: dict[str, list[object]] = {n.card.name: [] for n in nodes}
    for _ in range(20):
        mail: dict[bytes, list[bytes]] = {}
        for node in nodes:
            for box, envelope in node.outgoing():
                mail.setdefault(box, []).append(envelope)
        if not mail:
            return updates
        for box, envelopes in mail.items():
            node = by_box.get(box)
            if node is not None:
                accepted = node.agent.accept_many(node.engine, envelopes, now=now)
                updates[node.card.name].extend(accepted.updates)
    raise AssertionError("mail kept flowing")


def kinds(updates: list[object]) -> list[tuple[str, object]]:
    return [(u.kind, u.detail.get("op") or u.detail.get("why")) for u in updates]  # type: ignore[attr-defined]


@pytest.fixture
def world() -> tuple[list[AgentNode], str]:
    """alice (admin) and bob in a group; carol and dave know nobody."""
    bundles: dict[bytes, bytes] = {}
    alice, bob, carol, dave = (AgentNode(n, bundles) for n in ("alice", "bob", "carol", "dave"))
    alice.agent.contacts.add("bob", bob.card.to_text(), now=T0)
    gid, _ = alice.agent.groups.create("book club", now=T0)
    alice.agent.groups.invite(gid, "bob", now=T0)
    pump([alice, bob])
    bob.agent.groups.join(gid, now=T0)
    pump([alice, bob])
    return [alice, bob, carol, dave], gid


def test_a_stranger_joins_by_link_and_reads_from_then_on(
    world: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, carol, _), gid = world
    made = alice.agent.groups.links.create(gid, uses=2, ttl=3600, now=T0)
    assert made["state"] == "live"
    assert str(made["link"]).startswith(LINK_PREFIX)
    alice.agent.groups.send_text(gid, "before carol", now=T0)
    pump([alice, bob])
    joined_gid, _ = carol.agent.groups.links.join(str(made["link"]), now=T0)
    assert joined_gid == gid
    updates = pump([alice, bob, carol])
    assert ("group_link", "joined") in kinds(updates["alice"])
    assert ("group_update", "joined") in kinds(updates["carol"])
    shown = carol.agent.groups.show(gid)
    assert shown["status"] == "active"  # she asked: no separate acceptance
    assert len(shown["members"]) == 3  # type: ignore[arg-type]
    assert len(bob.agent.groups.show(gid)["members"]) == 3  # type: ignore[arg-type]
    bob.agent.groups.send_text(gid, "hello carol", now=T0)
    carol.agent.groups.send_text(gid, "hi all", now=T0)
    pump([alice, bob, carol])
    assert sorted(r["text"] for r in carol.agent.groups.history(gid)) == ["hello carol", "hi all"]
    assert [r["text"] for r in alice.agent.groups.history(gid)][-1] == "hi all"
    [row] = alice.agent.groups.links.listing(gid, now=T0)
    assert row["used"] == 1
    assert row["state"] == "live"
    assert "link" not in row


def test_a_repeated_request_adds_nobody_twice(world: tuple[list[AgentNode], str]) -> None:
    (alice, bob, carol, _), gid = world
    link = str(alice.agent.groups.links.create(gid, now=T0)["link"])
    carol.agent.groups.links.join(link, now=T0)
    pump([alice, bob, carol])
    version = alice.agent.groups.show(gid)["version"]
    for _ in range(2):  # she asks again (her node forgot): no second add, no use counted
        data = canonical_encode({
            "v": 1, "g": bytes.fromhex(gid), "k": GroupLink.from_text(link).secret,
            "c": carol.card.to_bytes(),
        })  # fmt: skip
        carol.agent.groups.send("group.join", data, [alice.card], now=T0)
        pump([alice, bob, carol])
    assert alice.agent.groups.show(gid)["version"] == version
    assert alice.agent.groups.links.listing(gid, now=T0)[0]["used"] == 1


def test_a_removed_member_cannot_come_back_by_its_link(
    world: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, carol, _), gid = world
    link = str(alice.agent.groups.links.create(gid, uses=0, now=T0)["link"])
    carol.agent.groups.links.join(link, now=T0)
    pump([alice, bob, carol])
    alice.agent.groups.remove(gid, str(carol.card.identity_id), now=T0)
    pump([alice, bob, carol])
    assert carol.agent.groups.show(gid)["status"] == "left"
    carol.agent.groups.links.join(link, now=T0)
    updates = pump([alice, bob, carol])
    assert ("group_join_refused", "link_used") in kinds(updates["carol"])
    assert carol.agent.groups.show(gid)["status"] == "left"


@pytest.mark.parametrize("why", ["link_used", "link_revoked", "link_expired"])
def test_a_dead_link_is_refused_with_its_reason(
    world: tuple[list[AgentNode], str], why: str
) -> None:
    (alice, bob, carol, dave), gid = world
    made = alice.agent.groups.links.create(gid, uses=1, ttl=60, now=T0)
    link, now = str(made["link"]), T0
    if why == "link_used":
        carol.agent.groups.links.join(link, now=T0)
        pump([alice, bob, carol])
    elif why == "link_revoked":
        alice.agent.groups.links.revoke(gid, str(made["id"]), now=T0)
    else:
        now = T0 + 30  # dave's clock still says it lives; alice's says it expired
    dave.agent.groups.links.join(link, now=now)
    updates = pump([alice, bob, carol, dave], now=T0 + 61 if why == "link_expired" else T0 + 1)
    assert ("group_join_refused", why) in kinds(updates["dave"])
    assert ("group_link", "refused") in kinds(updates["alice"])
    assert str(dave.card.identity_id) not in {
        m["identity_id"]  # type: ignore[index]
        for m in alice.agent.groups.show(gid)["members"]  # type: ignore[attr-defined]
    }


def test_a_forged_secret_is_refused_silently(world: tuple[list[AgentNode], str]) -> None:
    (alice, bob, _, dave), gid = world
    real = GroupLink.from_text(str(alice.agent.groups.links.create(gid, now=T0)["link"]))
    forged = GroupLink(real.group_id, bytes(32), real.expires_at, real.title, real.inviter)
    dave.agent.groups.links.join(forged.to_text(), now=T0)
    version = alice.agent.groups.show(gid)["version"]
    updates = pump([alice, bob, dave])
    assert updates["dave"] == []
    assert updates["alice"] == []
    assert alice.agent.stats.refusals["GroupError.bad_link"] == 1
    assert alice.agent.groups.show(gid)["version"] == version


def test_the_joiner_refuses_bad_and_expired_links_itself(
    world: tuple[list[AgentNode], str],
) -> None:
    (alice, _, carol, _), gid = world
    link = str(alice.agent.groups.links.create(gid, ttl=60, now=T0)["link"])
    with pytest.raises(RequestError) as caught:
        carol.agent.groups.links.join(link, now=T0 + 61)
    assert caught.value.code == "link_expired"
    for bad in ("", "dchat-card:abc", link[:-3], link + "A", LINK_PREFIX + "!!!"):
        with pytest.raises(RequestError) as caught:
            carol.agent.groups.links.join(bad, now=T0)
        assert caught.value.code == "bad_link"
    with pytest.raises(RequestError) as caught:  # only who may add makes links
        carol.agent.groups.links.create(gid, now=T0)
    assert caught.value.code == "unknown_group"


def test_a_member_the_settings_do_not_let_add_makes_no_link(
    world: tuple[list[AgentNode], str],
) -> None:
    (_, bob, _, _), gid = world
    with pytest.raises(RequestError) as caught:
        bob.agent.groups.links.create(gid, now=T0)
    assert caught.value.code == "not_allowed"


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=400)))
def test_the_link_decoder_refuses_garbage_with_one_typed_error(raw: str | bytes) -> None:
    text = raw if isinstance(raw, str) else LINK_PREFIX + base64.urlsafe_b64encode(raw).decode()
    with pytest.raises(RequestError) as caught:
        GroupLink.from_text(text)
    assert caught.value.code == "bad_link"


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["v", "g", "k", "x", "t", "c", "z"]),
        st.one_of(st.integers(-5, 2**60), st.binary(max_size=40), st.text(max_size=10)),
    )
)
def test_the_link_decoder_refuses_any_malformed_map(fields: dict[str, object]) -> None:
    body = base64.urlsafe_b64encode(canonical_encode(fields)).decode().rstrip("=")
    with pytest.raises(RequestError) as caught:  # no valid card can be drawn here
        GroupLink.from_text(LINK_PREFIX + body)
    assert caught.value.code == "bad_link"


def test_a_link_round_trips() -> None:
    card = AgentNode("erin", {}).card
    link = GroupLink(bytes(range(32)), bytes(32), 1_800_000_000, "t", card)
    assert GroupLink.from_text(link.to_text()) == link
    assert GroupLink.from_text("  " + link.to_text() + "\n") == link


def test_a_link_to_a_group_we_are_invited_to_accepts_the_invitation(
    world: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, carol, _), gid = world
    alice.agent.contacts.add("carol", carol.card.to_text(), now=T0)
    alice.agent.groups.invite(gid, "carol", now=T0)
    pump([alice, bob, carol])
    assert carol.agent.groups.show(gid)["status"] == "invited"
    link = str(alice.agent.groups.links.create(gid, now=T0)["link"])
    assert carol.agent.groups.links.join(link, now=T0)[0] == gid
    assert carol.agent.groups.show(gid)["status"] == "active"
    pump([alice, bob, carol])
    assert alice.agent.groups.links.listing(gid, now=T0)[0]["used"] == 0  # nothing asked
    with pytest.raises(RequestError) as caught:
        carol.agent.groups.links.join(link, now=T0)
    assert caught.value.code == "not_allowed"
