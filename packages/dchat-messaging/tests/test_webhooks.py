"""The webhook engine: schedule, order per chat, dead letters, restart; settings and signature."""

from __future__ import annotations

import contextlib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dchat_messaging.bots import BotApiError
from dchat_messaging.webhooks import (
    DeliveryPolicy,
    Webhook,
    WebhookQueue,
    WebhookSettings,
    WebhookUrlError,
    check_webhook_url,
    drop_pending,
    parse_set_webhook,
    sign_webhook,
    update_lane,
)

SECRET = "x" * 43
# The example of docs/protocol.md, "Bot webhooks" (checked with openssl dgst -sha256 -hmac).
VECTOR_SECRET = "dchat-example-signing-secret-0123456789abcdef"
VECTOR_BODY = b'{"update_id":7,"message":{"text":"hi"}}'
VECTOR = "t=1765000000,v1=5e7bb2b4d0906c3ad7408c602930b12b42e02f27bd5eb45a55d4637785ddb975"


def _ids(sends: list) -> list[int]:  # type: ignore[type-arg]
    return [d.update_id for d in sends]


# -- schedule ------------------------------------------------------------------------------


@given(attempts=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_a_retry_waits_between_half_and_all_of_the_doubled_delay_up_to_the_cap(
    attempts: int, seed: int
) -> None:
    policy = DeliveryPolicy(first_delay=1.0, max_delay=600.0)
    ceiling = min(600.0, 2.0 ** (attempts - 1))
    assert ceiling / 2 <= policy.delay(attempts, random.Random(seed)) <= ceiling


def test_retries_back_off_then_dead_letter_after_the_last_attempt() -> None:
    queue = WebhookQueue(cursor=0, policy=DeliveryPolicy(first_delay=2.0, max_attempts=4))
    rng = random.Random(5)
    queue.offer(1, "a", now=100.0)
    now, waits = 100.0, []
    for _ in range(3):
        assert _ids(queue.due(now)) == [1]
        assert queue.failed(1, now, "Connection failed", rng) is False
        wake = queue.next_wake()
        assert wake is not None
        assert queue.due(wake - 0.01) == []  # not before its time
        waits.append(wake - now)
        now = wake
    assert [2 / 2, 4 / 2, 8 / 2] <= waits <= [2, 4, 8]
    assert _ids(queue.due(now)) == [1]
    assert queue.failed(1, now, "Wrong response from the webhook: 500", rng) is True
    assert queue.pending == 0
    [letter] = queue.dead
    assert (letter.update_id, letter.attempts, letter.reason) == (
        1,
        4,
        "Wrong response from the webhook: 500",
    )
    assert queue.last_error_message == "Wrong response from the webhook: 500"
    assert queue.last_error_date == int(now)


def test_an_update_older_than_the_max_age_is_dead_lettered_at_its_next_failure() -> None:
    queue = WebhookQueue(policy=DeliveryPolicy(max_age=60.0, max_attempts=100))
    queue.offer(1, "a", now=0.0)
    queue.due(0.0)
    assert queue.failed(1, 59.0, "Timeout", random.Random(1)) is False
    queue.due(1000.0)
    assert queue.failed(1, 61.0, "Timeout", random.Random(1)) is True
    assert queue.dead[0].reason == "Timeout"


# -- order per chat --------------------------------------------------------------------------


def test_a_chat_waits_for_its_earlier_update_while_other_chats_go_ahead() -> None:
    queue = WebhookQueue(cursor=10)
    for update_id, chat in ((11, "a"), (12, "a"), (13, "b"), (14, "a")):
        queue.offer(update_id, chat, now=0.0)
    assert _ids(queue.due(0.0)) == [11, 13]  # one per chat on the wire
    assert queue.due(0.0) == []
    queue.failed(11, 0.0, "Connection failed", random.Random(1))
    assert queue.acknowledged(13) is True
    assert queue.due(0.5) == []  # 12 is behind 11, whose retry is not due yet
    assert _ids(queue.due(10.0)) == [11]
    queue.acknowledged(11)
    assert _ids(queue.due(10.0)) == [12]
    queue.acknowledged(12)
    assert _ids(queue.due(10.0)) == [14]
    assert queue.acknowledged(14) is True
    assert queue.delivered == 4
    assert queue.pending == 0


def test_a_dead_letter_unblocks_its_chat() -> None:
    queue = WebhookQueue(policy=DeliveryPolicy(max_attempts=1))
    queue.offer(1, "a", 0.0)
    queue.offer(2, "a", 0.0)
    queue.due(0.0)
    assert queue.failed(1, 0.0, "Connection failed", random.Random(1)) is True
    assert _ids(queue.due(0.0)) == [2]


def test_at_most_max_connections_are_on_the_wire() -> None:
    queue = WebhookQueue(max_connections=3)
    for update_id in range(1, 11):
        queue.offer(update_id, f"chat{update_id}", 0.0)
    assert _ids(queue.due(0.0)) == [1, 2, 3]
    assert queue.next_wake() is None  # full: an answer makes room, not the clock
    queue.acknowledged(2)
    assert queue.next_wake() == 0.0
    assert _ids(queue.due(0.0)) == [4]


def test_offers_only_grow_and_stop_at_the_capacity() -> None:
    queue = WebhookQueue(cursor=5, capacity=2)
    with pytest.raises(BotApiError):
        queue.offer(5, "a", 0.0)
    queue.offer(6, "a", 0.0)
    queue.offer(9, "b", 0.0)
    assert queue.room() == 0
    with pytest.raises(BotApiError):
        queue.offer(10, "a", 0.0)
    assert queue.cursor == 9
    assert queue.resume_offset() == 6


def test_a_stale_answer_changes_nothing() -> None:
    queue = WebhookQueue()
    queue.offer(1, "a", 0.0)
    assert queue.acknowledged(1) is False  # not on the wire yet
    queue.due(0.0)
    queue.drop_pending(1)
    assert queue.acknowledged(1) is False
    assert queue.failed(1, 0.0, "x", random.Random(1)) is False
    assert queue.delivered == 0


def test_dead_letters_are_retried_in_update_order_behind_the_update_on_the_wire() -> None:
    queue = WebhookQueue(policy=DeliveryPolicy(max_attempts=1))
    for update_id in (1, 2, 3, 4):
        queue.offer(update_id, "a", 0.0)
    for update_id in (1, 2):
        queue.due(0.0)
        queue.failed(update_id, 0.0, "Connection failed", random.Random(1))
    assert _ids(queue.due(0.0)) == [3]
    assert queue.retry_dead([2, 99], now=1.0) == [2]
    assert queue.retry_dead(None, now=1.0) == [1]
    assert queue.dead == []
    queue.acknowledged(3)
    order = []
    while queue.pending:
        [delivery] = queue.due(5.0)
        order.append(delivery.update_id)
        queue.acknowledged(delivery.update_id)
    assert order == [1, 2, 4]


# -- restart -------------------------------------------------------------------------------


def test_a_restart_resends_what_was_on_the_wire_and_keeps_the_order() -> None:
    queue = WebhookQueue(cursor=0, policy=DeliveryPolicy(max_attempts=1))
    for update_id, chat in ((1, "a"), (2, "a"), (3, "b"), (4, "c")):
        queue.offer(update_id, chat, 0.0)
    assert _ids(queue.due(0.0)) == [1, 3, 4]
    queue.acknowledged(3)
    queue.failed(4, 0.0, "Connection failed", random.Random(1))  # a dead letter
    saved = json.dumps(queue.to_json())
    again = WebhookQueue.from_json(json.loads(saved))
    assert (again.cursor, again.delivered, again.pending) == (4, 1, 2)
    assert [d.update_id for d in again.dead] == [4]
    assert _ids(again.due(0.0)) == [1]  # on the wire at the stop: sent again, same id
    again.acknowledged(1)
    assert _ids(again.due(0.0)) == [2]


def test_damaged_state_is_a_typed_error() -> None:
    with pytest.raises(BotApiError) as caught:
        WebhookQueue.from_json({"cursor": "x"})
    assert caught.value.error_code == 500
    with pytest.raises(BotApiError):
        Webhook.from_json(b"{not json")


@settings(max_examples=60, deadline=None)
@given(
    chats=st.lists(st.sampled_from("abc"), min_size=1, max_size=25),
    outcomes=st.lists(st.booleans(), max_size=200),
    restart_at=st.integers(0, 60),
)
def test_every_update_ends_delivered_or_dead_and_each_chat_in_order(
    chats: list[str], outcomes: list[bool], restart_at: int
) -> None:
    """Random receiver failures and one restart: nothing lost, per-chat order kept."""
    queue = WebhookQueue(max_connections=2, policy=DeliveryPolicy(max_attempts=3))
    rng, now, failures = random.Random(3), 0.0, iter(outcomes)
    for update_id, chat in enumerate(chats, start=1):
        queue.offer(update_id, chat, now)
    delivered: dict[str, list[int]] = {}
    for step in range(2000):
        if step == restart_at:
            queue = WebhookQueue.from_json(json.loads(json.dumps(queue.to_json())), queue.policy)
        sends = queue.due(now)
        if not sends and not queue.pending:
            break
        for delivery in sends:
            if next(failures, True):
                queue.acknowledged(delivery.update_id)
                delivered.setdefault(delivery.chat, []).append(delivery.update_id)
            else:
                queue.failed(delivery.update_id, now, "Connection failed", rng)
        now = max(now, queue.next_wake() or now)
    dead = {d.update_id for d in queue.dead}
    done = [i for ids in delivered.values() for i in ids]
    assert sorted(done + list(dead)) == list(range(1, len(chats) + 1))
    for ids in delivered.values():
        assert ids == sorted(ids)


# -- settings, URL, signature ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://bot.example/hook",
        "http://127.0.0.1:8443/dchat?x=1",
        "https://[::1]:9000/",
        "http://localhost/a/b",
    ],
)
def test_good_webhook_urls_are_kept(url: str) -> None:
    assert check_webhook_url(url) == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://bot.example/", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("bot.example/hook", "http or https"),
        ("https://", "no valid host"),
        ("https://user:pw@bot.example/", "user name or password"),
        ("https://bot.example/#frag", "fragment"),
        ("https://bot.example:99999/", "port"),
        ("https://bot.example/a b", "spaces"),
        ("https://bót.example/", "non-ASCII"),
        ("http://0.0.0.0/", "cannot be posted to"),
        ("http://224.0.0.1/", "cannot be posted to"),
        ("https://bot.example/" + "a" * 2048, "longer than"),
    ],
)
def test_obviously_bad_webhook_urls_are_refused_with_the_reason(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlError) as caught:
        check_webhook_url(url)
    assert caught.value.error_code == 400
    assert why in caught.value.description


@given(st.text(max_size=300))
def test_any_text_is_a_url_or_a_typed_refusal(text: str) -> None:
    with contextlib.suppress(WebhookUrlError):
        assert check_webhook_url(text) == text


def test_set_webhook_makes_a_random_secret_unless_one_is_named() -> None:
    made = parse_set_webhook({"url": "https://b.example/"}, SECRET, None)
    assert made is not None
    assert (made.signing_secret, made.secret_shown, made.secret_token) == (SECRET, False, None)
    named = "n" * 40
    own = parse_set_webhook(
        {"url": "https://b.example/", "signing_secret": named, "secret_token": "tg_1"}, SECRET, None
    )
    assert own is not None
    assert (own.signing_secret, own.secret_shown, own.secret_token) == (named, True, "tg_1")
    assert parse_set_webhook({"url": ""}, SECRET, None) is None  # Telegram: removes it


def test_set_webhook_reads_form_values_and_keeps_allowed_updates() -> None:
    form = {
        "url": "https://b.example/",
        "max_connections": "7",
        "allowed_updates": '["message", "callback_query"]',
    }
    first = parse_set_webhook(form, SECRET, None)
    assert first is not None
    assert first.max_connections == 7
    assert first.allowed_updates == ("callback_query", "message")
    later = parse_set_webhook({"url": "https://c.example/"}, SECRET, first)
    assert later is not None
    assert later.allowed_updates == first.allowed_updates
    assert later.allows({"update_id": 1, "message": {}})
    assert not later.allows({"update_id": 1, "inline_query": {}})


def test_drop_pending_updates_reads_json_and_form_values() -> None:
    assert [drop_pending({"drop_pending_updates": v}) for v in (True, "true", "1", None)] == [
        True,
        True,
        True,
        False,
    ]
    assert drop_pending({}) is False
    with pytest.raises(BotApiError):
        drop_pending({"drop_pending_updates": "maybe"})


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({}, "url is required"),
        ({"url": "https://b.example/", "secret_token": "has space"}, "secret_token"),
        ({"url": "https://b.example/", "signing_secret": "short"}, "signing_secret"),
        ({"url": "https://b.example/", "max_connections": 101}, "between 1 and 100"),
        ({"url": "https://b.example/", "max_connections": True}, "integer"),
        ({"url": "https://b.example/", "allowed_updates": '["nope"]'}, "unknown update types"),
        ({"url": "https://b.example/", "allowed_updates": "{"}, "JSON array"),
        ({"url": "https://b.example/", "certificate": "x"}, "not supported"),
        ({"url": "gopher://b.example/"}, "bad webhook"),
    ],
)
def test_bad_set_webhook_calls_are_refused(params: dict[str, object], why: str) -> None:
    with pytest.raises(BotApiError) as caught:
        parse_set_webhook(params, SECRET, None)
    assert caught.value.error_code == 400
    assert why in caught.value.description


_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=80),
    st.lists(st.text(max_size=20), max_size=5),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
_NAMES = st.sampled_from(
    ["url", "secret_token", "signing_secret", "max_connections", "allowed_updates",
     "drop_pending_updates", "certificate", "ip_address", "other"]
)  # fmt: skip


@given(params=st.dictionaries(_NAMES, _VALUES, max_size=9))
def test_hostile_set_webhook_parameters_are_settings_or_a_400(params: dict[str, object]) -> None:
    codes = []
    try:
        parsed = parse_set_webhook(params, SECRET, None)
        drop_pending(params)
    except BotApiError as exc:
        codes.append(exc.error_code)
        parsed = None
    assert codes in ([], [400])
    assert parsed is None or check_webhook_url(parsed.url) == parsed.url


def test_the_signature_is_the_documented_hmac() -> None:
    assert sign_webhook(VECTOR_SECRET, VECTOR_BODY, 1765000000) == VECTOR
    assert sign_webhook(VECTOR_SECRET, VECTOR_BODY + b" ", 1765000000) != VECTOR
    assert sign_webhook(VECTOR_SECRET, VECTOR_BODY, 1765000001) != VECTOR


def test_an_update_is_laned_by_its_chat_or_its_sender() -> None:
    assert update_lane({"update_id": 1, "message": {"chat": {"id": 5}}}) == "chat:5"
    callback = {
        "update_id": 2,
        "callback_query": {"from": {"id": 9}, "message": {"chat": {"id": 5}}},
    }
    assert update_lane(callback) == "chat:5"
    assert update_lane({"update_id": 3, "inline_query": {"from": {"id": 9}}}) == "user:9"
    assert update_lane({"update_id": 4, "poll": {"id": "x"}}) == "other"


def test_the_saved_webhook_keeps_its_secret_and_its_queue() -> None:
    hook = Webhook(
        WebhookSettings("https://b.example/", SECRET, "tg", 5, ("message",)), WebhookQueue()
    )
    hook.queue.offer(3, "chat:1", 0.0)
    hook.queue.due(0.0)
    hook.queue.failed(3, 12.0, "Connection failed", random.Random(1))
    again = Webhook.from_json(hook.to_json())
    assert again.settings == hook.settings
    assert again.info() == {
        "url": "https://b.example/",
        "has_custom_certificate": False,
        "pending_update_count": 1,
        "max_connections": 5,
        "allowed_updates": ["message"],
        "last_error_date": 12,
        "last_error_message": "Connection failed",
    }
    assert SECRET not in json.dumps(again.info())
    assert Webhook(None, WebhookQueue()).info()["url"] == ""
