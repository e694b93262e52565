"""The chat app in the browser (``/app/``): its login, its session and two users chatting.

The unit tests hold :class:`AppSessions` to its rules (a code works once and for
60 s; a session cookie reaches only the app's routes, from the app's origin).
The browser test drives Debian's Chromium with Playwright through two user nodes
and a relay, and saves a screenshot of each step under the folder it prints
(``$DCHAT_ARTIFACTS/webapp``, else ``artifacts/webapp`` in the repository).
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dchat_node import NodeProcess
from dchat_node._errors import NodeStateError
from dchat_node.api._webapp import CODE_TTL, CSP, AppSessions, cookie_name
from dchat_node.cli import app as cli_app

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HOSTILE = '<script>window.pwned=1</script><img src=x onerror="window.pwned=1"> hi & bye'


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _headers(session: str | None, port: int = 8000, **extra: str) -> dict[bytes, bytes]:
    out = {k.replace("_", "-").encode(): v.encode() for k, v in extra.items()}
    if session is not None:
        out[b"cookie"] = f"other=1; {cookie_name(port)}={session}".encode()
    return out


def test_a_login_code_works_once_and_for_sixty_seconds() -> None:
    clock = _Clock()
    sessions = AppSessions(clock)
    code = sessions.issue_code()
    session = sessions.redeem(code)
    assert sessions.valid(session)
    with pytest.raises(NodeStateError):
        sessions.redeem(code)  # spent
    late = sessions.issue_code()
    clock.now += CODE_TTL + 0.1
    with pytest.raises(NodeStateError):
        sessions.redeem(late)  # expired
    with pytest.raises(NodeStateError):
        sessions.redeem(late)  # and gone
    sessions.end(session)
    assert not sessions.valid(session)


@given(st.text(max_size=80))
def test_made_up_codes_and_sessions_are_refused(guess: str) -> None:
    sessions = AppSessions()
    sessions.issue_code()
    with pytest.raises(NodeStateError):
        sessions.redeem(guess)
    assert not sessions.admits("GET", "/v1/conversations", 8000, _headers(guess))


def test_a_session_reaches_only_the_apps_routes_from_its_own_origin() -> None:
    sessions = AppSessions()
    secret = sessions.redeem(sessions.issue_code())
    same = {"sec_fetch_site": "same-origin"}
    assert sessions.admits("GET", "/v1/conversations", 8000, _headers(secret, **same))
    assert sessions.admits("GET", "/v1/identity", 8000, _headers(secret, **same))
    post = _headers(secret, x_dchat_app="1", **same)
    assert sessions.admits("POST", "/v1/messages", 8000, post)
    # the bearer-token-only routes
    for path in ("/status", "/metrics", "/openapi.json", "/v1/app/login", "/v1/socket"):
        assert not sessions.admits("GET", path, 8000, _headers(secret, **same)), path
    assert not sessions.admits("POST", "/v1/identity", 8000, post)
    assert not sessions.admits("POST", "/v1/identity/resync", 8000, post)
    # CSRF: no app header, or another site or origin, or another node's port
    assert not sessions.admits("POST", "/v1/messages", 8000, _headers(secret, **same))
    for site in ("same-site", "cross-site", "none"):
        cross = _headers(secret, x_dchat_app="1", sec_fetch_site=site)
        assert not sessions.admits("POST", "/v1/messages", 8000, cross)
    assert not sessions.admits("GET", "/v1/conversations", 8001, _headers(secret))


def _chromium() -> str | None:
    for candidate in (os.environ.get("DCHAT_CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _artifacts() -> Path:
    root = os.environ.get("DCHAT_ARTIFACTS")
    base = Path(root) if root else Path(__file__).resolve().parents[3] / "artifacts"
    folder = base / "webapp"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _png(width: int = 24, height: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xd0\x20\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _login_link(node: NodeProcess) -> str:
    """``dchat open --no-browser``: the link is the one line it prints."""
    result = CliRunner().invoke(cli_app, ["--data-dir", str(node.data_dir), "open", "--no-browser"])
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith(node.info["url"] + "/app/#code=")
    return link


@pytest.mark.slow
def test_two_users_chat_in_the_browser(
    make_user: Callable[[str], NodeProcess], tmp_path: Path
) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium found (apt-get install chromium, or set DCHAT_CHROMIUM)")
    from playwright.sync_api import expect, sync_playwright

    shots = _artifacts()
    print(f"browser test screenshots: {shots}")
    began = time.monotonic()
    with ThreadPoolExecutor(2) as pool:  # the two starts overlap
        alice, bob = pool.map(make_user, ("alice", "bob"))
    with alice.client() as a, bob.client() as b:
        a.create_identity("alice")
        b.create_identity("bob")
        bob_card = b.card()
    image = tmp_path / "dot.png"
    image.write_bytes(_png())

    print(f"  two nodes with identities: {time.monotonic() - began:.1f} s")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS, timeout=30_000
        )
        try:
            _chat(browser, alice, bob, bob_card, image, shots, expect)
        finally:
            browser.close()


def _chat(
    browser: Any,
    alice: NodeProcess,
    bob: NodeProcess,
    bob_card: str,
    image: Path,
    shots: Path,
    expect: Any,
) -> None:
    expect.set_options(timeout=15_000)
    started = time.monotonic()
    contexts = [browser.new_context(viewport={"width": 1000, "height": 760}) for _ in range(2)]
    pa, pb = (ctx.new_page() for ctx in contexts)
    errors: list[str] = []
    for page in (pa, pb):
        page.on("pageerror", lambda exc: errors.append(str(exc)))

    link = _login_link(alice)
    answer = pa.goto(link)
    assert answer is not None
    assert answer.headers["content-security-policy"] == CSP
    expect(pa.locator("#me")).to_have_text("Signed in as alice")
    assert "#" not in pa.url
    assert alice.info["token"] not in pa.url
    # the link worked once (bob's browser tries it: no session, and so no cookie)
    pb.goto(link)
    expect(pb.locator("#login-error")).to_contain_text("used or expired")
    pb.screenshot(path=shots / "00-link-used-twice.png")
    print(f"  alice logged in, the link refused twice: {time.monotonic() - started:.1f} s")

    # alice adds bob by his card and sees her own card as a QR code
    pa.get_by_role("button", name="Contacts").click()
    pa.get_by_label("Name", exact=True).fill("bob")
    pa.get_by_label("Their card").fill(bob_card)
    pa.get_by_role("button", name="Add contact").click()
    expect(pa.locator("#contacts")).to_contain_text("bob")
    expect(pa.locator("#own-qr svg path")).to_have_count(1)
    pa.screenshot(path=shots / "01-alice-contacts.png")

    # alice writes hostile-looking text: it must arrive as text
    pa.get_by_role("button", name="Write to bob").click()
    pa.get_by_label("Message", exact=True).fill(HOSTILE)
    pa.get_by_label("Message", exact=True).press("Enter")
    expect(pa.locator("#messages li.out .text")).to_have_text(HOSTILE)

    # bob logs in, sees a message request live, accepts it
    with bob.client() as b:  # bob's link through the SDK
        pb.goto(b.app_login_link())
    expect(pb.locator("#live")).to_have_text("live")
    expect(pb.locator("#requests-count")).to_have_text("1")
    pb.get_by_role("button", name="Requests").click()
    expect(pb.locator("#requests")).to_contain_text("hi & bye")
    pb.screenshot(path=shots / "02-bob-request.png")
    pb.get_by_label("Save as").fill("alice")
    pb.get_by_role("button", name="Accept").click()
    pb.get_by_role("button", name="Chats").click()
    expect(pb.get_by_label("1 unread")).to_be_visible()
    pb.screenshot(path=shots / "03-bob-unread.png")
    pb.locator("#conversations button[data-peer=alice]").click()
    expect(pb.locator("#messages li.in .text")).to_have_text(HOSTILE)
    assert pb.evaluate("window.pwned") is None
    assert pa.evaluate("window.pwned") is None
    expect(pb.locator("#messages img")).to_have_count(0)

    # bob replies; alice's open conversation updates from the event stream
    pb.get_by_label("Message", exact=True).fill("hello alice")
    pb.get_by_role("button", name="Send", exact=True).click()
    expect(pa.locator("#messages li.in .text")).to_have_text("hello alice")
    expect(pa.locator("#messages li.out .meta")).to_contain_text("read")
    pa.screenshot(path=shots / "04-alice-reply-live.png")

    # alice sends an image, previewed before it goes; bob sees it
    pa.get_by_label("Attachment").set_input_files(str(image))
    expect(pa.locator("#attach-preview")).to_be_visible()
    pa.get_by_role("button", name="Send attachment").click()
    expect(pb.locator("#messages img")).to_have_count(1)
    loaded = "() => document.querySelector('#messages img')?.naturalWidth === 24"
    pb.wait_for_function(loaded)
    pb.screenshot(path=shots / "05-bob-image.png")

    # groups: alice creates one, invites bob and writes to it
    pa.get_by_role("button", name="Groups").click()
    pa.get_by_label("New group title").fill("Friends")
    pa.get_by_role("button", name="Create group").click()
    expect(pa.locator("#group-name")).to_have_text("Friends")
    pa.get_by_label("Invite a contact").select_option("bob")
    pa.get_by_role("button", name="Invite").click()
    pa.get_by_label("Message to the group").fill("hello friends")
    pa.get_by_role("button", name="Send", exact=True).click()
    expect(pa.locator("#group-messages")).to_contain_text("hello friends")
    pa.screenshot(path=shots / "06-alice-group.png")
    pb.get_by_role("button", name="Groups").click()
    expect(pb.locator("#groups")).to_contain_text("Friends")
    pb.locator("#groups button").click()
    pb.get_by_role("button", name="Join this group").click()
    pb.get_by_label("Message to the group").fill("hi all")
    pb.get_by_role("button", name="Send", exact=True).click()
    expect(pa.locator("#group-messages li.in .text")).to_have_text("hi all")
    expect(pa.locator("#group-messages li.in .meta")).to_contain_text("bob")
    pb.screenshot(path=shots / "07-bob-groups.png")

    # device linking shows the code and its QR code
    pa.get_by_role("button", name="Devices").click()
    pa.get_by_role("button", name="Link a new device").click()
    expect(pa.locator("#pairing-qr svg")).to_have_count(1)
    pa.screenshot(path=shots / "08-alice-link-device.png")
    pa.get_by_role("button", name="Cancel").click()

    print(f"  the chat, image, group and device steps: {time.monotonic() - started:.1f} s")
    _session_stays_in_its_lane(alice, contexts[0])
    assert errors == []
    for ctx in contexts:
        ctx.close()


def _session_stays_in_its_lane(node: NodeProcess, context: Any) -> None:
    """The browser's cookie reaches the app's routes and nothing else."""
    port = int(node.info["url"].rsplit(":", 1)[1])
    (cookie,) = [c for c in context.cookies() if c["name"] == cookie_name(port)]
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"
    jar = {cookie["name"]: cookie["value"]}
    with httpx.Client(base_url=node.info["url"], cookies=jar, timeout=10) as http:
        assert http.get("/v1/conversations").status_code == 200
        assert http.get("/status").status_code == 401
        assert http.get("/metrics").status_code == 401
        assert http.post("/v1/app/login").status_code == 401
        sent = {"to": "bob", "text": "forged"}
        assert http.post("/v1/messages", json=sent).status_code == 401  # no app header
        cross = {"x-dchat-app": "1", "sec-fetch-site": "same-site"}
        assert http.post("/v1/messages", json=sent, headers=cross).status_code == 401
        assert http.get("/app/nothing.js").status_code == 404
    # the exchange itself: the app's header and a loopback name, and once only
    with node.client() as api, httpx.Client(base_url=node.info["url"], timeout=10) as http:
        code = api.app_login_link().split("#code=", 1)[1]
        app = {"x-dchat-app": "1"}
        assert http.post("/app/session", json={"code": code}).status_code == 401
        rebound = {**app, "host": f"evil.example:{port}"}
        assert http.post("/app/session", json={"code": code}, headers=rebound).status_code == 401
        # the refusals did not spend the code; this use does
        assert http.post("/app/session", json={"code": code}, headers=app).status_code == 204
        assert http.post("/app/session", json={"code": code}, headers=app).status_code == 401


def test_the_apps_files_have_no_inline_script_and_the_policy_forbids_it() -> None:
    assert "'unsafe-inline'" not in CSP
    assert "'unsafe-eval'" not in CSP
    assert "script-src 'self';" in CSP
    web = resources.files("dchat_node.web")
    html = web.joinpath("index.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts == [""]  # one script, by src
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline handlers
    script = web.joinpath("app.js").read_text()
    assert "innerHTML" not in script
    assert "insertAdjacentHTML" not in script
    assert "eval(" not in script
