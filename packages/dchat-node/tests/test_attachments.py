"""Real processes: attachments from alice to bob through the relay's blob store.

An image, a large file, a location and a voice note go from alice to bob;
bob gets the same bytes, the thumbnail, the duration and waveform; no file of
the relay holds any plaintext; a download killed half way (bob's node killed)
resumes from what it had; a file whose bytes disagree with its declared type
is refused by the sender's node and, sent by a lying client, by the
recipient's. One test, one set of processes (the suite's time budget).

The large file is ``DCHAT_TEST_ATTACH_MIB`` MiB (default 24, the suite's
budget; the benchmark moves 100 MiB).
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
from typer.testing import CliRunner

from dchat_core import NodeId, RelayAddress
from dchat_crypto import SigningKey
from dchat_identity import ContactCard, Identity
from dchat_messaging import Attachment, Content, SealedEnvelope
from dchat_messaging.attachments import seal_stored, sealed_from
from dchat_network.lowlevel import push_blob
from dchat_node import NodeProcess
from dchat_node.cli import app
from dchat_sdk import ApiError
from dchat_storage.testing import image_bytes, media_samples

pytestmark = pytest.mark.slow

BIG_MIB = int(os.environ.get("DCHAT_TEST_ATTACH_MIB", "24"))
MARKER = b"PLAINTEXT-MARKER-7f3a9c"


def _sha(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _big_file(path: Path, mib: int) -> None:
    """A text file of ``mib`` MiB, the marker on every line (the relay must never see it)."""
    line = MARKER + b" " + os.urandom(24).hex().encode() + b"\n"
    with path.open("wb") as out:
        for _ in range(mib * 1024 * 1024 // len(line)):
            out.write(line)


def _files_hold(root: Path, needle: bytes) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            with path.open("rb") as file:
                tail = b""
                while chunk := file.read(1 << 20):
                    if needle in tail + chunk:
                        found.append(path)
                        break
                    tail = chunk[-len(needle) :]
    return found


def _inbound_ids(node: NodeProcess, count: int, wait_until: Callable[..., None]) -> list[str]:
    with node.client() as client:
        wait_until(
            lambda: len([m for m in client.messages() if m.direction == "in"]) >= count,
            timeout=120,
            what=f"{count} messages at {node.data_dir.name}",
        )
        return [m.message_id for m in client.messages() if m.direction == "in"]


def test_image_file_and_location_arrive_identical_and_the_relay_sees_no_plaintext(
    tmp_path: Path,
    relay: NodeProcess,
    user_pair: tuple[NodeProcess, NodeProcess],
    deposit: Callable[[SealedEnvelope], None],
    crafted_message: Callable[[Identity, ContactCard, Content], SealedEnvelope],
    wait_until: Callable[..., None],
) -> None:
    alice, bob = user_pair
    image = tmp_path / "photo.png"
    image.write_bytes(image_bytes("PNG", (640, 480)))
    big = tmp_path / "notes.txt"
    started = time.monotonic()
    _big_file(big, BIG_MIB)
    voice = tmp_path / "note.ogg"
    voice.write_bytes(media_samples()["audio/ogg"])
    assert "(image)" in _dchat(alice, "send", "bob", "the view", "--image", str(image))
    with alice.client() as a:
        sent = a.send_file("bob", big, kind="document", media_type="text/plain")
        _dchat(alice, "send", "bob", "--location", "48.858222,2.2945,Tour Eiffel")
        a.send_file("bob", voice, kind="voice", duration_ms=4200, waveform=bytes(range(0, 250, 5)))
        # The sender's node refuses a file whose bytes are not its declared type.
        pdf = tmp_path / "scan.png"
        pdf.write_bytes(media_samples()["application/pdf"] + bytes(3 * 1024 * 1024))
        with pytest.raises(ApiError) as lie:
            a.send_file("bob", pdf, kind="image", media_type="image/png")
        assert lie.value.code == "ContentTypeMismatchError"
    uploaded = time.monotonic() - started
    assert sent["size"] == big.stat().st_size

    first, second, third, fourth = _inbound_ids(bob, 4, wait_until)
    with bob.client() as b:
        note = b.attachment(fourth)
        assert (note["kind"], note["duration_ms"], note["type"]) == ("voice", 4200, "audio/ogg")
        assert base64.b64decode(note["waveform"]) == bytes(range(0, 250, 5))
        assert b.save_attachment(fourth, tmp_path / "got.ogg") == voice.stat().st_size
        assert _sha(tmp_path / "got.ogg") == _sha(voice)
        photo = b.attachment(first)
        assert (photo["kind"], photo["width"], photo["height"]) == ("image", 640, 480)
        assert photo["thumbnail"]
        saved = _dchat(bob, "attachment", "get", first, "--out", str(tmp_path / "got.png"))
        assert f"saved {image.stat().st_size} bytes" in saved
        assert _sha(tmp_path / "got.png") == _sha(image)
        assert "Tour Eiffel" in _dchat(bob, "attachment", "get", third)
        located = b.attachment(third)
        assert (located["lat"], located["lon"], located["label"]) == (
            48.858222,
            2.2945,
            "Tour Eiffel",
        )

        # Bob's node is killed half way through the big download, then resumes.
        partial = bob.data_dir / "attachments" / (b.attachment(second)["blob_id"] + ".part")
        thread = threading.Thread(
            target=lambda: _quietly(lambda: b.save_attachment(second, tmp_path / "x")),
            daemon=True,
        )
        thread.start()
        wait_until(
            lambda: partial.exists() and partial.stat().st_size > 1024 * 1024,
            timeout=120,
            what="the download under way",
        )
        # Freeze the relay so the download is surely cut half way, then kill bob's node.
        os.kill(relay.pid or 0, signal.SIGSTOP)
    try:
        bob.kill()
    finally:
        os.kill(relay.pid or 0, signal.SIGCONT)
    thread.join(timeout=30)
    held = partial.stat().st_size
    assert 0 < held < sent["sealed_size"]
    bob.start()
    started = time.monotonic()
    with bob.client() as b:
        assert b.save_attachment(second, tmp_path / "got.txt") == big.stat().st_size
        assert b.attachment(second)["state"] == "stored"
    downloaded = time.monotonic() - started
    assert _sha(tmp_path / "got.txt") == _sha(big)
    assert not partial.exists()
    # The relay's files (blob store, database) never held a plaintext byte run.
    for needle in (MARKER, image.read_bytes()[16:80], voice.read_bytes()[:64]):
        assert _files_hold(relay.data_dir, needle) == []
    assert list((relay.data_dir / "blobs").glob("*.blob"))
    print(f"{BIG_MIB} MiB: alice sent in {uploaded:.1f} s, bob resumed in {downloaded:.1f} s")
    _recipient_refuses_a_lie(relay, bob, deposit, crafted_message, wait_until)


def _dchat(node: NodeProcess, *args: str) -> str:
    """Run the ``dchat`` CLI against ``node``; its output (it must succeed)."""
    result = CliRunner().invoke(app, ["--data-dir", str(node.data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def _quietly(action: Callable[[], object]) -> None:
    try:
        action()
    except Exception:  # the node is killed under it on purpose
        return


def _recipient_refuses_a_lie(
    relay: NodeProcess,
    bob: NodeProcess,
    deposit: Callable[[SealedEnvelope], None],
    crafted_message: Callable[[Identity, ContactCard, Content], SealedEnvelope],
    wait_until: Callable[..., None],
) -> None:
    """A file whose bytes lie about their type, sent by a lying client, is refused by bob."""
    pdf = media_samples()["application/pdf"]
    # A lying client: seals a PDF, uploads it, and says "PNG image" in the message.
    key, blob_id, sealed = seal_stored(len(pdf), [pdf])
    address = RelayAddress.parse(relay.info["link"])
    address = RelayAddress(address.host, address.port, NodeId.parse(relay.info["node_id"]))

    async def source(offset: int):  # type: ignore[no-untyped-def]
        for piece in sealed_from(key.to_bytes(), len(pdf), [pdf], offset):
            yield piece

    trio.run(push_blob, address, SigningKey.generate(), blob_id, sealed, source)
    lie = Attachment(
        "image",
        blob_id=blob_id,
        key=key.to_bytes(),
        size=len(pdf),
        sealed_size=sealed,
        media_type="image/png",
        relay=str(address),
        width=10,
        height=10,
    )
    with bob.client() as b:
        card = ContactCard.from_text(b.card())
    mallory = Identity.generate()
    content = Content.attachment_message(lie, now_ms=int(time.time() * 1000))
    deposit(crafted_message(mallory, card, content))
    with bob.client() as b:
        wait_until(lambda: _has_attachment(b, str(content.message_id)), timeout=60, what="the lie")
        with pytest.raises(ApiError) as refused:
            b.save_attachment(str(content.message_id), bob.data_dir / "lie.png")
        assert refused.value.code == "attachment_refused"
        shown = b.attachment(str(content.message_id))
        assert (shown["state"], shown["refused"]) == ("refused", "type_mismatch")


def _has_attachment(client: object, message_id: str) -> bool:
    try:
        client.attachment(message_id)  # type: ignore[attr-defined]
    except ApiError:
        return False
    return True
