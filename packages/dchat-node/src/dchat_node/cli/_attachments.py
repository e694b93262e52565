"""``dchat send PEER --file/--image/--voice/--location`` and ``dchat attachment ...``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._common import fail, guard

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("attachment_app", "send_attachment")

_out = Console()
attachment_app = typer.Typer(help="Attachments of received and sent messages.")


def _client(ctx: typer.Context) -> RemoteClient:
    data_dir: Path = ctx.find_root().obj
    return guard(lambda: RemoteClient.from_data_dir(data_dir))


def _call(ctx: typer.Context, action: Callable[[RemoteClient], Any]) -> Any:
    with _client(ctx) as client:
        return guard(lambda: action(client))


def _location(text: str) -> tuple[float, float, str]:
    parts = text.split(",", 2)
    try:
        return float(parts[0]), float(parts[1]), parts[2] if len(parts) == 3 else ""
    except (ValueError, IndexError):
        raise fail("--location takes LAT,LON[,label] in degrees") from None


def send_attachment(
    ctx: typer.Context,
    to: str,
    caption: str,
    files: dict[str, Path | None],
    location: str | None,
    media_type: str | None,
    duration: float,
) -> None:
    """Send one file (``files``: kind -> path, one given) or a location to ``to``."""
    given = [(kind, path) for kind, path in files.items() if path is not None]
    if len(given) + (location is not None) != 1:
        raise fail("give one of --file, --image, --voice, --location")
    if location is not None:
        lat, lon, label = _location(location)
        reply = _call(ctx, lambda c: c.send_location(to, lat, lon, label or caption))
    else:
        kind, path = given[0]
        assert path is not None
        duration_ms = round(duration * 1000)
        reply = _call(
            ctx,
            lambda c: c.send_file(
                to, path, kind=kind, media_type=media_type, caption=caption, duration_ms=duration_ms
            ),
        )
    _out.print(f"sent {reply['message_id']} ({reply['kind']})", highlight=False)


@attachment_app.command("show")
def show(ctx: typer.Context, message_id: str) -> None:
    """Describe the attachment of MESSAGE_ID (kind, type, size, state...)."""
    _out.print_json(json.dumps(_call(ctx, lambda c: c.attachment(message_id))))


@attachment_app.command("get")
def get(
    ctx: typer.Context,
    message_id: str,
    out: Annotated[Path | None, typer.Option("--out", help="Where to write the file.")] = None,
) -> None:
    """Fetch the attachment of MESSAGE_ID (from the relay if needed) and save it.

    The file is checked against what its message declared; a lie is refused.
    Without ``--out`` it is saved in the current directory under its name.
    """
    info = _call(ctx, lambda c: c.attachment(message_id))
    if info["kind"] == "location":
        _out.print(f"location {info['lat']},{info['lon']} {info['label']}", highlight=False)
        return
    target = out or Path(Path(info.get("name") or message_id).name or message_id)
    count = _call(ctx, lambda c: c.save_attachment(message_id, target))
    _out.print(f"saved {count} bytes to {target}", highlight=False)
