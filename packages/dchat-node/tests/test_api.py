"""The local HTTP API of a real user node: auth, validation, state errors, one error shape."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from dchat_identity import ContactCard, Identity
from dchat_node import NodeProcess
from dchat_sdk import ApiError, RemoteClient
from dchat_testing.pytest_plugin import start_user

pytestmark = pytest.mark.slow


@pytest.fixture
def user(make_user: Callable[[str], NodeProcess]) -> NodeProcess:
    """A fresh user node without an identity, for tests that change its state."""
    return make_user("carol")


@pytest.fixture(scope="module")
def pristine(
    tmp_path_factory: pytest.TempPathFactory, module_relay: NodeProcess
) -> Iterator[NodeProcess]:
    """A user node without an identity shared by the tests that only get refusals.

    Each of them asserts its own refusal, so one that changed the node would
    fail itself rather than pass on a node another test changed.
    """
    node = start_user(tmp_path_factory.mktemp("pristine") / "carol", module_relay)
    yield node
    node.kill()


def _raw(
    node: NodeProcess, method: str, path: str, token: str | None, **kw: object
) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=node.info["url"], timeout=10) as http:
        return http.request(method, path, headers=headers, **kw)  # type: ignore[arg-type]


def test_health_is_open_everything_else_needs_the_token(pristine: NodeProcess) -> None:
    assert _raw(pristine, "GET", "/health", None).json() == {"status": "ok", "role": "user"}
    for token in (None, "wrong", pristine.info["token"] + "x", pristine.info["token"][:-1]):
        response = _raw(pristine, "GET", "/status", token)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    assert _raw(pristine, "GET", "/status", pristine.info["token"]).status_code == 200


def test_state_errors_have_codes(user: NodeProcess) -> None:
    with user.client() as client:
        with pytest.raises(ApiError) as no_identity:
            client.card()
        assert (no_identity.value.status, no_identity.value.code) == (409, "no_identity")
        client.create_identity("carol")
        with pytest.raises(ApiError) as twice:
            client.create_identity("carol")
        assert twice.value.code == "identity_exists"
        with pytest.raises(ApiError) as unknown:
            client.send("nobody", "hello")
        assert (unknown.value.status, unknown.value.code) == (404, "unknown_contact")
        for query in ("?! ...", "x" * 1025, " ".join("abcdefghijklmnopq")):  # no word; long; 17
            with pytest.raises(ApiError) as bad:
                client.search(query)
            assert (bad.value.status, bad.value.code) == (422, "invalid_request")


def test_bad_cards_are_rejected_and_nothing_is_stored(user: NodeProcess) -> None:
    with user.client() as client:
        client.create_identity("carol")
        good = ContactCard.issue(Identity.generate(), name="dave", relay="127.0.0.1:1")
        tampered = ContactCard.from_bytes(good.to_bytes())
        forged = (
            good.to_text()[:-6] + ("A" if good.to_text()[-6] != "A" else "B") + good.to_text()[-5:]
        )
        for card in ("", "dchat-card:", "dchat-card:!!!", forged, "x" * 5000, client.card()):
            with pytest.raises(ApiError) as bad:
                client.add_contact("dave", card)
            assert bad.value.status in (400, 422)
        assert client.contacts() == []
        client.add_contact("dave", tampered.to_text())
        with pytest.raises(ApiError) as duplicate:
            client.add_contact("dave", good.to_text())
        assert duplicate.value.code == "duplicate"
        assert [c.name for c in client.contacts()] == ["dave"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/identity", {}),
        ("/v1/identity", {"name": ""}),
        ("/v1/identity", {"name": "x" * 65}),
        ("/v1/identity", {"name": "ok", "extra": 1}),
        ("/v1/messages", {"to": "dave", "text": ""}),
        ("/v1/messages", {"to": "dave", "text": "x" * 16001}),
        ("/v1/contacts", {"name": 5, "card": []}),
    ],
)
def test_invalid_bodies_get_422_with_the_error_shape(
    pristine: NodeProcess, path: str, body: dict[str, object]
) -> None:
    response = _raw(pristine, "POST", path, pristine.info["token"], json=body)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_a_cursor_past_sqlites_integers_is_a_422_not_a_500(pristine: NodeProcess) -> None:
    # Schemathesis found it (CI run 13): ``before`` went to SQLite unbounded.
    token = pristine.info["token"]
    for path in ("/v1/search?q=x&before=9223372036854775808", "/v1/messages?before=" + "9" * 30):
        response = _raw(pristine, "GET", path, token)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "invalid_request"


def test_non_json_body_is_rejected(pristine: NodeProcess) -> None:
    response = _raw(pristine, "POST", "/v1/identity", pristine.info["token"], content=b"\xff\x00{")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_send_and_list_round_trip(
    make_user: Callable[[str], NodeProcess], user: NodeProcess
) -> None:
    erin = make_user("erin")
    with user.client() as carol_api, RemoteClient(erin.info["url"], erin.info["token"]) as erin_api:
        carol_api.create_identity("carol")
        erin_api.create_identity("erin")
        carol_api.add_contact("erin", erin_api.card())
        mid = carol_api.send("erin", "hello erin")
        sent = carol_api.messages(peer="erin")
        assert [(m.message_id, m.direction, m.text, m.peer_name) for m in sent] == [
            (mid, "out", "hello erin", "erin")
        ]
