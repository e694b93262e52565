"""The event route's pure parts, without a process: the Last-Event-ID parser and SSE frames."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_node._errors import NodeStateError
from dchat_node.api._events import _last_event_id, sse_frame
from dchat_sdk._sse import SseDecoder, SseFrame

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(st.text(max_size=30))
def test_last_event_id_is_a_cursor_or_a_typed_refusal(header: str) -> None:
    text = header.strip()
    valid = text.isascii() and text.isdigit() and int(text) < 2**63
    if not text:
        assert _last_event_id(header) is None
    elif valid:
        assert _last_event_id(header) == int(text)
    else:
        with pytest.raises(NodeStateError) as refused:
            _last_event_id(header)
        assert refused.value.code == "invalid_request"


def test_last_event_id_edges() -> None:
    assert _last_event_id(None) is None
    assert _last_event_id(" 42 ") == 42
    assert _last_event_id("0" * 30 + "7") == 7
    for bad in ("-1", "+1", "4 2", "١٢", str(2**63), "9" * 20):
        with pytest.raises(NodeStateError):
            _last_event_id(bad)


@given(
    cursor=st.integers(0, 2**63 - 1),
    kind=st.from_regex(r"[a-z][a-z0-9_]{0,31}", fullmatch=True),
    data=st.dictionaries(st.text(), json_values, max_size=4),
)
def test_frames_decode_to_what_was_sent(cursor: int, kind: str, data: dict[str, Any]) -> None:
    frame = sse_frame(cursor, kind, data)
    [decoded] = SseDecoder().feed(frame)
    assert decoded == SseFrame(kind, decoded.data, str(cursor))
    assert json.loads(decoded.data) == data
