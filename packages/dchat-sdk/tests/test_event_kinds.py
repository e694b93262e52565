"""``EVENT_KINDS`` lists every kind a node logs, and ``Event`` reads each kind's data typed.

Two sources name the node's kinds: the table of docs/protocol.md §19, and the
node's own code (the calls that append to the event log, found by their
shape). A kind added to either without the SDK learning it fails here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dchat_sdk import EVENT_KINDS, DchatSdkError, Event

ROOT = Path(__file__).resolve().parents[3]
LOGGING = re.compile(
    r'(?:_event|_log|log_event|\.event|ConversationUpdate)\(\s*"([a-z][a-z_]*)"'
    r'|events\.append,\s*"([a-z_]+)"'
    r'|\(log, change, "([a-z_]+)"'
    r'|[A-Z_]*EVENT: Final = "([a-z_]+)"'
)
ANCHOR_FINDING = re.compile(r'Finding\("([a-z]+)"')  # logged as group_<kind> (_group_anchors)
PROPERTIES = {
    *("request", "relay", "payment", "expired", "conversation", "group", "channel", "bot"),
    "burner",
}


def _logged_by_the_node() -> set[str]:
    kinds: set[str] = set()
    for package in ("dchat-messaging", "dchat-node", "dchat-storage"):
        for path in (ROOT / "packages" / package / "src").rglob("*.py"):
            text = path.read_text()
            for match in LOGGING.finditer(text):
                kinds.add(next(group for group in match.groups() if group))
            kinds |= {f"group_{kind}" for kind in ANCHOR_FINDING.findall(text)}
    return kinds


def _documented() -> set[str]:
    text = (ROOT / "docs" / "protocol.md").read_text()
    section = text[text.index("## 19.") : text.index("## 20.")]
    table = section[section.index("| kind | data |") : section.index("New kinds will be added")]
    return {
        kind
        for row in table.splitlines()[2:]
        if row.startswith("|")
        for kind in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    }


def test_every_kind_the_node_logs_is_typed() -> None:
    logged = _logged_by_the_node()
    assert {"message", "request", "status", "payment", "stealth_received"} <= logged
    assert logged - EVENT_KINDS.keys() == set()


def test_the_protocol_table_lists_the_same_kinds() -> None:
    assert _documented() == set(EVENT_KINDS)


PAYMENT = {
    "message_id": "dcmsg1a", "peer_id": "dcid1b", "amount": 40, "chain": "c", "from": "aa",
    "to": "bb", "tx": "cc", "height": 9, "note": "", "state": "verified", "code": None,
}  # fmt: skip
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "request": ("request", {"identity_id": "dcid1b", "state": "open"}),
    "status": ("relay", {"relay": "connected"}),
    "payment": ("payment", PAYMENT),
    "expired": ("expired", {"peer": "dcid1b", "ids": ["m1"]}),
    "reaction": ("conversation", {"peer": "dcid1b", "by": "dcid1b", "ids": ["m1"], "emoji": "+"}),
    "group_gap": ("group", {"group": "ab", "by": "dcid1b", "peer": "group:ab", "missing": [3]}),
    "channel_post": ("channel", {"channel": "cd", "text": "hi"}),
    "bot_answer": ("bot", {"peer_id": "dcid1b", "text": "ok"}),
    "burner_held": ("burner", {"burner_id": "dcid1c", "reason": "expired"}),
    "burner_released": ("burner", {"burner_id": "dcid1c", "reason": "empty"}),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_each_kind_reads_through_its_property_only(kind: str) -> None:
    reader, data = SAMPLES[kind]
    event = Event(7, kind, data)
    assert getattr(event, reader) == data
    assert EVENT_KINDS[kind][0] == reader
    for other in PROPERTIES - {reader}:
        assert getattr(event, other) is None, other


def test_an_unknown_kind_reads_as_none_everywhere() -> None:
    event = Event(1, "from_a_newer_node", {"x": 1})
    assert all(getattr(event, name) is None for name in PROPERTIES)
    assert event.message is None
    assert event.stealth is None


@given(
    kind=st.sampled_from(sorted(SAMPLES)),
    drop=st.integers(min_value=0, max_value=20),
)
def test_an_event_missing_a_required_field_is_a_typed_error(kind: str, drop: int) -> None:
    reader, data = SAMPLES[kind]
    model = EVENT_KINDS[kind][1]
    required = sorted(model.__required_keys__)
    broken = {k: v for k, v in data.items() if k != required[drop % len(required)]}
    with pytest.raises(DchatSdkError, match="lacks"):
        getattr(Event(1, kind, broken), reader)
