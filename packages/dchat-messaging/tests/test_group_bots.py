"""Bots in private groups: each grant (read commands or all, post, administer) enforced by members.

The bot here is a user agent like any other (a bot is an identity on its own
node); what makes it a bot in a group is its grant in the signed state. Each
test fails if members' nodes skip the enforcement it names.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_messaging import Content, MessageReceived, RequestError
from dchat_messaging._group_bots import addressed, decode_command, encode_command
from dchat_messaging.lowlevel import BotGrant, GroupError, GroupState, GroupUpdate, apply_update
from dchat_testing import AGENT_T0, AgentNode

T0 = AGENT_T0
COMMANDS = BotGrant(read_all=False, post=True, admin=False)
ALL = BotGrant(read_all=True, post=True, admin=False)


OPENED: dict[str, list[str]] = {}


def _watch(node: AgentNode) -> None:
    """Record the kind of every group control ``node`` opens (in ``OPENED``)."""
    apply = node.agent.groups.apply
    kinds = OPENED[node.card.name] = []

    def watched(event: MessageReceived, *, now: float) -> list[object]:
        kinds.append(event.kind)
        return apply(event, now=now)  # type: ignore[return-value]

    node.agent.groups.apply = watched  # type: ignore[method-assign,assignment]


def pump(nodes: list[AgentNode]) -> dict[str, list[str]]:
    """Deliver all mail until none is left; the group control kinds each node opened."""
    for _ in range(20):
        boxes = {box: n for n in nodes for box in n.mailboxes()}
        mail: dict[bytes, list[bytes]] = {}
        for node in nodes:
            for box, envelope in node.outgoing():
                mail.setdefault(box, []).append(envelope)
        if not mail:
            return OPENED
        for box, envelopes in mail.items():
            node = boxes[box]
            for envelope in envelopes:
                node.agent.accept(node.engine, envelope, now=T0 + 1)
    raise AssertionError("mail kept flowing")


def texts(node: AgentNode, gid: str) -> list[str]:
    return [str(row["text"]) for row in node.agent.groups.history(gid)]


def refusals(node: AgentNode) -> dict[str, int]:
    return dict(node.agent.stats.refusals)


def _me(node: AgentNode) -> bytes:
    return bytes(node.identity.identity_id)


@pytest.fixture
def team() -> tuple[list[AgentNode], str]:
    """alice (admin) and bob in a group; the bot ("helper") a contact of alice, not in it."""
    bundles: dict[bytes, bytes] = {}
    alice, bob, bot = (AgentNode(n, bundles) for n in ("alice", "bob", "helper"))
    for node in (alice, bob, bot):
        _watch(node)
    for other in (bob, bot):
        alice.agent.contacts.add(other.card.name, other.card.to_text(), now=T0)
        other.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    gid, _ = alice.agent.groups.create("team", now=T0)
    alice.agent.groups.invite(gid, "bob", now=T0)
    pump([alice, bob, bot])
    bob.agent.groups.join(gid, now=T0)
    pump([alice, bob, bot])
    return [alice, bob, bot], gid


def _with_bot(team: tuple[list[AgentNode], str], grant: BotGrant) -> list[AgentNode]:
    nodes, gid = team
    nodes[0].agent.groups.bots.add(gid, "helper", grant, now=T0)
    pump(nodes)
    assert nodes[2].agent.groups.show(gid)["status"] == "active"  # a bot is in when added
    return nodes


def test_a_commands_only_bot_gets_its_commands_and_no_key(
    team: tuple[list[AgentNode], str],
) -> None:
    alice, bob, bot = _with_bot(team, COMMANDS)
    gid = team[1]
    alice.agent.groups.send_text(gid, "plain talk", now=T0)
    alice.agent.groups.send_text(gid, "/start", now=T0)
    bob.agent.groups.send_text(gid, "/help@Helper please", now=T0)
    bob.agent.groups.send_text(gid, "/help@otherbot", now=T0)
    opened = pump([alice, bob, bot])
    assert texts(bot, gid) == ["/start", "/help@Helper please"]
    for _, data, _ in bot.store.events:  # a node's event log takes canonical values only
        canonical_encode(data)
    assert set(opened["helper"]) & {"group.msg", "group.kmsg", "group.key"} == set()
    assert bot.agent.groups.db.keys(bytes.fromhex(gid)).peers == set()
    assert sorted(texts(bob, gid)) == [
        "/help@Helper please",
        "/help@otherbot",
        "/start",
        "plain talk",
    ]
    shown = alice.agent.groups.show(gid)["members"]
    assert [m.get("bot") for m in shown if m["role"] == "bot"] == [COMMANDS.to_json()]  # type: ignore[union-attr]


def test_an_all_reading_bot_reads_from_its_grant_on(team: tuple[list[AgentNode], str]) -> None:
    alice, bob, bot = _with_bot(team, COMMANDS)
    gid = team[1]
    alice.agent.groups.send_text(gid, "before", now=T0)
    pump([alice, bob, bot])
    alice.agent.groups.bots.set_grant(gid, "helper", ALL, now=T0)
    pump([alice, bob, bot])
    alice.agent.groups.send_text(gid, "after", now=T0)
    bob.agent.groups.send_text(gid, "/cmd", now=T0)  # once, through the chain
    pump([alice, bob, bot])
    assert texts(bot, gid) == ["after", "/cmd"]
    # Back to commands: members rotate; the bot's chains open nothing new.
    alice.agent.groups.bots.set_grant(gid, "helper", COMMANDS, now=T0)
    pump([alice, bob, bot])
    alice.agent.groups.send_text(gid, "secret again", now=T0)
    bob.agent.groups.send_text(gid, "bob too", now=T0)
    pump([alice, bob, bot])
    assert texts(bot, gid) == ["after", "/cmd"]
    assert refusals(alice) == refusals(bob) == {}


def test_a_bot_posts_only_with_post(team: tuple[list[AgentNode], str]) -> None:
    alice, bob, bot = _with_bot(team, COMMANDS)
    gid = team[1]
    bot.agent.groups.send_text(gid, "hello from the bot", now=T0)
    pump([alice, bob, bot])
    assert texts(bob, gid) == ["hello from the bot"]
    alice.agent.groups.bots.set_grant(gid, "helper", replace(COMMANDS, post=False), now=T0)
    pump([alice, bob, bot])
    with pytest.raises(RequestError) as refused:
        bot.agent.groups.send_text(gid, "may I?", now=T0)
    assert refused.value.code == "not_allowed"
    # The bot's node, modified, believes it may post: members drop what it sends.
    record = bot.agent.groups.db.record(bytes.fromhex(gid))
    assert record is not None
    forged = dict(record.state.members)
    forged[_me(bot)] = replace(forged[_me(bot)], bot=COMMANDS)
    record.state = replace(record.state, members=forged)
    bot.agent.groups.db.save(record)
    bot.agent.groups.send_text(gid, "posting anyway", now=T0)
    pump([alice, bob, bot])
    assert texts(bob, gid) == texts(alice, gid) == ["hello from the bot"]
    assert refusals(bob) == {"GroupError.not_allowed": 1}


def test_a_bot_administers_only_with_admin(team: tuple[list[AgentNode], str]) -> None:
    alice, bob, bot = _with_bot(team, COMMANDS)
    gid = team[1]
    carol = AgentNode("carol", alice.bundles)
    bot.agent.contacts.add("carol", carol.card.to_text(), now=T0)
    with pytest.raises(RequestError):  # its own node refuses
        bot.agent.groups.invite(gid, "carol", now=T0)
    state = _state(alice, gid)
    kick = GroupUpdate.make(state, _me(bot), "remove", _me(bob), bot.identity.signing_key)
    with pytest.raises(GroupError) as caught:  # what every member's node does with it
        apply_update(state, kick)
    assert caught.value.code == "not_allowed"
    alice.agent.groups.bots.set_grant(gid, "helper", replace(COMMANDS, admin=True), now=T0)
    pump([alice, bob, bot, carol])
    bot.agent.groups.invite(gid, "carol", now=T0)
    pump([alice, bob, bot, carol])
    assert len(alice.agent.groups.show(gid)["members"]) == 4  # type: ignore[arg-type]
    state = _state(alice, gid)
    for op, arg in (
        ("remove", _me(alice)),  # an admin
        ("title", "renamed"),
        ("settings", {"post": 1}),
        ("grant", [_me(bot), ALL.to_wire()]),  # its own grant
        ("add", [AgentNode("dave", {}).card.to_bytes(), 1]),  # an admin
    ):
        update = GroupUpdate.make(state, _me(bot), op, arg, bot.identity.signing_key)
        with pytest.raises(GroupError) as caught:
            apply_update(state, update)
        assert caught.value.code == "not_allowed", op
    kick = GroupUpdate.make(state, _me(bot), "remove", _me(carol), bot.identity.signing_key)
    assert _me(carol) not in apply_update(state, kick).members


def _state(node: AgentNode, gid: str) -> GroupState:
    record = node.agent.groups.db.record(bytes.fromhex(gid))
    assert record is not None
    return record.state


def test_only_admins_add_bots_and_grants_are_signed_state(
    team: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, bot), gid = team
    bob.agent.contacts.add("helper", bot.card.to_text(), now=T0)
    with pytest.raises(RequestError):
        bob.agent.groups.bots.add(gid, "helper", ALL, now=T0)
    state = _state(alice, gid)
    sneaky = GroupUpdate.make(
        state, _me(bob), "bot", [bot.card.to_bytes(), ALL.to_wire()], bob.identity.signing_key
    )
    with pytest.raises(GroupError):
        apply_update(state, sneaky)
    with_bot = apply_update(
        state,
        GroupUpdate.make(
            state, _me(alice), "bot", [bot.card.to_bytes(), 1], alice.identity.signing_key
        ),
    )
    regranted = apply_update(
        with_bot,
        GroupUpdate.make(with_bot, _me(alice), "grant", [_me(bot), 3], alice.identity.signing_key),
    )
    assert with_bot.hash() != regranted.hash()  # the grant is in the hash members sign over
    assert GroupState.from_bytes(regranted.to_bytes()) == regranted
    assert regranted.members[_me(bot)].bot == ALL
    role = GroupUpdate.make(with_bot, _me(alice), "role", [_me(bot), 1], alice.identity.signing_key)
    with pytest.raises(GroupError):  # a bot is never an admin by role
        apply_update(with_bot, role)


def _control(node: AgentNode, kind: str, data: bytes) -> MessageReceived:
    return MessageReceived(
        Content.control(kind, data, now_ms=0), node.identity.identity_id,
        node.engine.keys.device_id, True,
    )  # fmt: skip


def test_hostile_commands_are_refused(team: tuple[list[AgentNode], str]) -> None:
    alice, bob, bot = _with_bot(team, COMMANDS)
    gid = bytes.fromhex(team[1])
    plain = canonical_encode({"mid": bytes(16), "ts": 1, "text": "no command"})
    for sender, data, code in (
        (bob, encode_command(gid, plain), "not_allowed"),  # not a command
        (bob, b"\xa0", "malformed"),
        (bob, encode_command(bytes(32), plain), "unknown_group"),
    ):
        with pytest.raises(GroupError) as caught:
            bot.agent.groups._apply("group.cmd", *_sender(sender), data, T0)
        assert caught.value.code == code
    command = canonical_encode({"mid": bytes(16), "ts": 1, "text": "/start"})
    with pytest.raises(GroupError) as caught:  # a person is no bot: nothing to take
        bob.agent.groups._apply("group.cmd", *_sender(alice), encode_command(gid, command), T0)
    assert caught.value.code == "not_allowed"
    assert texts(bot, team[1]) == []


def _sender(node: AgentNode) -> tuple[bytes, bytes]:
    return _me(node), node.engine.keys.device_id


@given(st.integers() | st.booleans() | st.none() | st.binary(max_size=4) | st.text(max_size=4))
def test_grant_decoding_is_total(raw: object) -> None:
    try:
        grant = BotGrant.from_wire(raw)
    except ValueError:
        assert not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= 7
    else:
        assert grant.to_wire() == raw


@given(st.binary(max_size=200))
def test_command_decoding_is_total(data: bytes) -> None:
    with contextlib.suppress(GroupError):  # its only error
        group, plain = decode_command(data)
        assert decode_command(encode_command(group, plain)) == (group, plain)


@pytest.mark.parametrize(
    ("text", "to_helper"),
    [("/start", True), ("/start@helper x", True), ("/start@HELPER", True),
     ("/start@other", False), ("start", False), ("/", False), ("/ start", False),
     ("hi /start", False), ("/st-art", False)],
)  # fmt: skip
def test_which_texts_are_commands_to_a_bot(text: str, to_helper: bool) -> None:
    assert addressed(text, "Helper") is to_helper


def test_an_anchored_groups_order_lists_skip_a_commands_only_bot() -> None:
    """The signed order lists name every message: a bot that reads commands only gets none."""
    bundles: dict[bytes, bytes] = {}
    alice, bob, bot = (AgentNode(n, bundles) for n in ("alice", "bob", "helper"))
    for node in (alice, bob, bot):
        _watch(node)
        if node is not alice:
            alice.agent.contacts.add(node.card.name, node.card.to_text(), now=T0)
            node.agent.contacts.add("alice", alice.card.to_text(), now=T0)
    gid, _ = alice.agent.groups.create("anchored", anchored=True, now=T0)
    alice.agent.groups.invite(gid, "bob", now=T0)
    alice.agent.groups.bots.add(gid, "helper", COMMANDS, now=T0)
    pump([alice, bob, bot])
    bob.agent.groups.join(gid, now=T0)
    pump([alice, bob, bot])
    alice.agent.groups.send_text(gid, "to be anchored", now=T0)
    [job] = alice.agent.groups.anchors.jobs(T0 + 60, count=1, interval=1)
    batch = alice.agent.groups.anchors.propose(job, 0, now=T0 + 60)
    alice.agent.groups.anchors.publish(batch.to_bytes(), now=T0 + 60)
    opened = pump([alice, bob, bot])
    assert "group.ord" in opened["bob"]
    assert "group.ord" not in opened["helper"]


def test_a_bot_added_on_a_losing_branch_is_added_again_and_told(
    team: tuple[list[AgentNode], str],
) -> None:
    (alice, bob, bot), gid = team
    alice.agent.groups._change(gid, "role", [_me(bob), 1], now=T0)  # bob: an admin too
    pump([alice, bob, bot])
    base = _state(bob, gid)
    alice.agent.groups.bots.add(gid, "helper", COMMANDS, now=T0)
    record = alice.agent.groups.db.record(bytes.fromhex(gid))
    assert record is not None
    ours = record.chain[-1]
    title = next(  # bob's concurrent rename, one that wins (the lower hash)
        t
        for t in (f"renamed {n}" for n in range(64))
        if GroupUpdate.make(base, _me(bob), "title", t, bob.identity.signing_key).hash()
        < ours.hash()
    )
    bob.agent.groups.set_title(gid, title, now=T0)
    pump([alice, bob, bot])
    states = [_state(n, gid) for n in (alice, bob, bot)]
    assert len({s.hash() for s in states}) == 1  # all three on one branch
    assert states[0].title == title
    assert states[0].members[_me(bot)].bot == COMMANDS
    bob.agent.groups.send_text(gid, "/ping", now=T0)
    pump([alice, bob, bot])
    assert texts(bot, gid) == ["/ping"]
