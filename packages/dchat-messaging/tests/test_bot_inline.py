"""Bot controls: keyboards, presses, answers and inline results, and who may send which."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_core import canonical_encode
from dchat_messaging.bots import (
    ANSWER_KIND,
    BOT_KINDS,
    COMMANDS_KIND,
    INLINE_ASK_KIND,
    INLINE_RESULTS_KIND,
    KEYBOARD_KIND,
    PRESS_KIND,
    BotApiError,
    BotControlError,
    Button,
    Keyboard,
    QueryBook,
    ReceivedKeyboards,
    SentKeyboard,
    SentKeyboards,
    bot_user,
    callback_update,
    decode_control,
    encode_control,
    inline_update,
    parse_answer_callback,
    parse_answer_inline,
    parse_reply_markup,
)
from dchat_messaging.testing import MemoryMessageStore

Q = bytes(range(16))
MID = bytes(range(16, 32))
BOT, ALICE, MALLORY = "dcid1bot", "dcid1alice", "dcid1mallory"
MARKUP = {
    "inline_keyboard": [
        [{"text": "Yes", "callback_data": "vote:yes"}, {"text": "No", "callback_data": "vote:no"}],
        [{"text": "Site", "url": "https://example.org/a"}],
    ]
}


def _keyboard() -> Keyboard:
    keyboard = parse_reply_markup({"reply_markup": json.dumps(MARKUP)})  # form: JSON text
    assert keyboard is not None
    return keyboard


def test_an_inline_keyboard_round_trips_from_the_bot_api_through_the_wire() -> None:
    keyboard = _keyboard()
    assert parse_reply_markup({"reply_markup": MARKUP}) == keyboard  # JSON body: an object
    assert keyboard.to_telegram() == MARKUP
    data = encode_control(KEYBOARD_KIND, {"id": MID, "kb": keyboard.to_wire()})
    assert decode_control(KEYBOARD_KIND, data) == {"id": MID, "kb": keyboard}
    assert keyboard.find("2").data == "vote:no"  # by number, text or data
    assert keyboard.find("Yes").data == keyboard.find("vote:yes").data == "vote:yes"
    assert keyboard.find("Site").url == "https://example.org/a"
    with pytest.raises(BotControlError, match="no such button") as refused:
        keyboard.find("vote:maybe")
    assert refused.value.code == "forged"
    assert parse_reply_markup({}) is None


@pytest.mark.parametrize(
    "markup",
    [
        {"keyboard": [[{"text": "a"}]]},  # a reply keyboard: not served
        {"inline_keyboard": []},
        {"inline_keyboard": [[]]},
        {"inline_keyboard": [[{"text": "a"}]]},  # neither data nor url
        {"inline_keyboard": [[{"text": "a", "callback_data": "x", "url": "https://a"}]]},
        {"inline_keyboard": [[{"text": "a", "callback_data": "x" * 65}]]},
        {"inline_keyboard": [[{"text": "a", "callback_data": "\ud800"}]]},  # not UTF-8
        {"inline_keyboard": [[{"text": "a", "url": "javascript:alert(1)"}]]},
        {"inline_keyboard": [[{"text": "a", "switch_inline_query": ""}]]},
        {"inline_keyboard": [[{"text": "", "callback_data": "x"}]]},
        {"inline_keyboard": [[{"text": "a", "callback_data": "x"}] * 13]},
        {"inline_keyboard": [[{"text": "a", "callback_data": "x"}] * 10] * 11},
        "{not json",
        [1, 2],
    ],
)
def test_a_markup_the_bot_api_does_not_serve_is_a_400(markup: object) -> None:
    raw = markup if isinstance(markup, str) else json.dumps(markup)
    with pytest.raises(BotApiError) as refused:
        parse_reply_markup({"reply_markup": raw})
    assert refused.value.error_code == 400


def test_the_bot_checks_a_press_against_the_keyboards_it_sent() -> None:
    sent = SentKeyboards(MemoryMessageStore())
    sent.record(MID, SentKeyboard(ALICE, 7, "Vote?", 100, _keyboard()))
    assert sent.check(ALICE, MID, "vote:no").number == 7
    for sender, mid, data in (
        (ALICE, MID, "vote:maybe"),  # forged callback data
        (MALLORY, MID, "vote:yes"),  # the keyboard went to alice, not mallory
        (ALICE, Q, "vote:yes"),  # no keyboard on that message
    ):
        with pytest.raises(BotControlError) as refused:
            sent.check(sender, mid, data)
        assert refused.value.code == "forged"


def test_a_keyboard_shows_only_under_its_senders_message() -> None:
    store = MemoryMessageStore()
    store.add_message(MID, "in", BOT, "Vote?", 1.0, 1.0)
    store.add_message(Q, "out", BOT, "mine", 1.0, 1.0)
    received = ReceivedKeyboards(store)
    received.accept(BOT, MID, _keyboard())
    assert received.row(BOT, "in", MID) == {"reply_markup": MARKUP}
    assert received.row(MALLORY, "in", MID) == {}  # the message is not mallory's
    assert received.row(BOT, "out", MID) == {}
    for sender, mid in ((MALLORY, MID), (BOT, Q), (BOT, bytes(16))):  # not a text from them
        with pytest.raises(BotControlError) as refused:
            received.accept(sender, mid, _keyboard())
        assert refused.value.code == "forged"
    replaced = Keyboard(((Button("Again", data="again"),),))
    received.accept(BOT, MID, replaced)  # its sender may replace it
    assert received.get(BOT, MID) == replaced


def test_a_query_takes_one_answer_from_the_peer_asked_in_time() -> None:
    book = QueryBook(limit=2)
    book.open(Q, BOT, ANSWER_KIND, now=0.0, ttl=30)
    assert book.answered(Q, BOT) == (False, None)
    for peer, kind, code in (
        (MALLORY, ANSWER_KIND, "unknown_query"),  # another node answers
        (BOT, COMMANDS_KIND, "unknown_query"),  # another kind of answer
    ):
        with pytest.raises(BotControlError) as refused:
            book.answer(Q, peer, kind, "x", now=1.0)
        assert refused.value.code == code
    assert book.answer(Q, BOT, ANSWER_KIND, {"text": "ok"}, now=1.0) == BOT
    assert book.answered(Q, BOT) == (True, {"text": "ok"})
    assert book.answered(Q, MALLORY) == (False, None)
    with pytest.raises(BotControlError) as replayed:
        book.answer(Q, BOT, ANSWER_KIND, "again", now=2.0)
    assert replayed.value.code == "replayed"
    late = bytes(16)
    book.open(late, BOT, ANSWER_KIND, now=0.0, ttl=30)
    with pytest.raises(BotControlError) as expired:
        book.answer(late, BOT, ANSWER_KIND, "late", now=31.0)
    assert expired.value.code == "expired"
    with pytest.raises(BotControlError) as busy:
        book.open(b"\x01" * 16, BOT, ANSWER_KIND, now=1.0, ttl=30)
    assert busy.value.code == "busy"
    with pytest.raises(BotControlError) as again:
        book.open(Q, BOT, ANSWER_KIND, now=1.0, ttl=30)
    assert again.value.code == "replayed"
    with pytest.raises(BotControlError) as forgotten:  # kept twice its time, then unknown
        book.answer(late, BOT, ANSWER_KIND, "late", now=61.0)
    assert forgotten.value.code == "unknown_query"


def test_answer_callback_query_takes_telegrams_parameters() -> None:
    call = parse_answer_callback(
        {"callback_query_id": Q.hex(), "text": "Voted", "show_alert": "true"}
    )
    assert (call.query, call.text, call.show_alert, call.url) == (Q, "Voted", True, None)
    data = encode_control(ANSWER_KIND, call.to_wire())
    assert decode_control(ANSWER_KIND, data) == {"q": Q, "text": "Voted", "alert": True}
    for params in (
        {"callback_query_id": "nope"},
        {"callback_query_id": Q.hex(), "text": "x" * 201},
        {"callback_query_id": Q.hex(), "show_alert": "maybe"},
        {"callback_query_id": Q.hex(), "url": "ftp://x"},
    ):
        with pytest.raises(BotApiError) as refused:
            parse_answer_callback(params)
        assert refused.value.error_code == 400


def _article(n: int, text: str = "hello") -> dict[str, Any]:
    content = {"message_text": text}
    return {"type": "article", "id": str(n), "title": f"T{n}", "input_message_content": content}


def test_answer_inline_query_sends_articles_within_one_control() -> None:
    call = parse_answer_inline(
        {"inline_query_id": Q.hex(), "results": json.dumps([_article(1)]), "next_offset": "2"}
    )
    fields = decode_control(INLINE_RESULTS_KIND, call.data)
    assert [a.to_json() for a in fields["r"]] == [
        {"id": "1", "title": "T1", "description": "", "text": "hello"}
    ]
    assert fields["next"] == "2"
    for results, problem in (
        ([_article(n) for n in range(51)], "RESULTS_TOO_MUCH"),
        ([_article(n, "x" * 4000) for n in range(20)], "too large"),  # over one control
        ([_article(1), _article(1)], "share an id"),
        ([{"type": "photo", "id": "1"}], "article"),
        ([_article(1, "")], "message text"),
        ("not a list", "JSON"),
        ({"a": 1}, "array"),
    ):
        with pytest.raises(BotApiError, match=problem) as refused:
            parse_answer_inline({"inline_query_id": Q.hex(), "results": results})
        assert refused.value.error_code == 400


def test_the_updates_are_telegrams_callback_query_and_inline_query() -> None:
    data = {
        "query_id": Q.hex(),
        "peer_id": ALICE,
        "peer_name": "alice",
        "message_number": 7,
        "text": "Vote?",
        "sent_at": 100,
        "reply_markup": json.dumps(MARKUP),
        "data": "vote:yes",
        "bot_id": BOT,
        "bot_name": "poll",
    }
    update = callback_update(12, data)
    query = update["callback_query"]
    assert update["update_id"] == 12
    assert (query["id"], query["data"], query["from"]["first_name"]) == (
        Q.hex(),
        "vote:yes",
        "alice",
    )
    assert query["message"]["message_id"] == 7
    assert query["message"]["from"] == bot_user(BOT, "poll")
    assert query["message"]["reply_markup"] == MARKUP
    asked = {
        "query_id": Q.hex(),
        "peer_id": ALICE,
        "peer_name": None,
        "query": "cats",
        "offset": "",
    }
    inline = inline_update(13, asked)["inline_query"]
    assert (inline["id"], inline["query"], inline["from"]["first_name"]) == (Q.hex(), "cats", ALICE)


# -- hostile controls --------------------------------------------------------------------

_VALID: dict[str, dict[str, Any]] = {
    KEYBOARD_KIND: {"id": MID, "kb": [[{"t": "a", "d": "x"}]]},
    PRESS_KIND: {"q": Q, "id": MID, "d": "x"},
    ANSWER_KIND: {"q": Q, "text": "", "alert": False},
    COMMANDS_KIND: {"q": Q, "c": [["start", "Begin"]]},
    INLINE_ASK_KIND: {"q": Q, "query": "", "off": ""},
    INLINE_RESULTS_KIND: {"q": Q, "r": [{"id": "1", "title": "t", "text": "x"}], "next": ""},
}


@pytest.mark.parametrize("kind", sorted(_VALID))
def test_each_control_refuses_a_missing_extra_or_mistyped_field(kind: str) -> None:
    fields = _VALID[kind]
    assert decode_control(kind, canonical_encode({"v": 1, **fields}))
    for name in fields:
        missing = {k: v for k, v in fields.items() if k != name}
        mistyped = fields | {name: b"\x00"}
        for bad in (missing, mistyped, fields | {"zz": 1}):
            with pytest.raises(BotControlError) as refused:
                decode_control(kind, canonical_encode({"v": 1, **bad}))
            assert refused.value.code == "malformed"
    with pytest.raises(BotControlError):
        decode_control(kind, canonical_encode({"v": 2, **fields}))


@given(kind=st.sampled_from(sorted(BOT_KINDS)), data=st.binary(max_size=300))
def test_any_bytes_decode_or_give_a_typed_error(kind: str, data: bytes) -> None:
    code = "malformed"
    try:
        decode_control(kind, data)
    except BotControlError as exc:
        code = exc.code
    assert code == "malformed"


@given(
    rows=st.lists(
        st.lists(
            st.tuples(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=16)),
            min_size=1,
            max_size=4,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_any_keyboard_round_trips(rows: list[list[tuple[str, str]]]) -> None:
    markup = {"inline_keyboard": [[{"text": t, "callback_data": d} for t, d in r] for r in rows]}
    try:
        keyboard = parse_reply_markup({"reply_markup": markup})
    except BotApiError as exc:  # text that is not UTF-8 (a lone surrogate)
        keyboard, code = None, exc.error_code
    if keyboard is None:
        assert code == 400
        return
    assert keyboard.to_telegram() == markup
    data = encode_control(KEYBOARD_KIND, {"id": MID, "kb": keyboard.to_wire()})
    assert decode_control(KEYBOARD_KIND, data)["kb"] == keyboard
