"""``dchat id``, ``dchat device ...`` and ``dchat profile ...``: thin clients of the node API.

Linking is interactive by default: ``dchat device link`` prints the pairing
code and QR payload, waits for the new device, prints the SAS and asks whether
the other screen shows the same digits (``--yes`` skips the question, for
scripts that compare the SAS themselves). ``dchat device join CODE`` does the
same on the new device. The node runs the protocol; these commands only poll.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path  # noqa: TC003  (typer reads annotations at run time)
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ._common import fail

if TYPE_CHECKING:
    from collections.abc import Callable

    from dchat_sdk import RemoteClient

__all__ = ("register_identity_commands",)

_out = Console(highlight=False)
_POLL = 0.3


def register_identity_commands(
    app: typer.Typer, with_client: Callable[[typer.Context, Callable[[RemoteClient], Any]], Any]
) -> None:
    """Add ``id``, ``device`` and ``profile`` to the ``dchat`` app."""
    device_app = typer.Typer(
        help="Link, list and revoke this identity's devices.", no_args_is_help=True
    )
    profile_app = typer.Typer(help="Your profile and the profiles of others.", no_args_is_help=True)
    app.add_typer(device_app, name="device")
    app.add_typer(profile_app, name="profile")

    def call(ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return with_client(ctx, lambda c: c.request(method, path, body))

    @app.command("id")
    def show_id(ctx: typer.Context) -> None:
        """Show this identity: id, name, role of this device, document version, devices."""
        info = call(ctx, "GET", "/v1/identity")
        _out.print(f"identity  {info['identity_id']}")
        _out.print(f"name      {info['name']}")
        _out.print(f"account   {info['account']} (currency: payments to you)", highlight=False)
        if info.get("restoring"):
            _out.print("restored from its phrase: waiting for a contact's copy of the document")
            _out.print("(run `dchat resync CONTACT...`)")
        else:
            version = info["document_seq"]
            _out.print(f"this node {info['role']} device; document version {version}")
        _device_table(info["devices"])

    @device_app.command("list")
    def device_list(ctx: typer.Context) -> None:
        """List the identity's devices (active and revoked)."""
        info = call(ctx, "GET", "/v1/devices")
        _out.print(f"document version {info['document_seq']}")
        _device_table(info["devices"])

    @device_app.command("link")
    def device_link(
        ctx: typer.Context,
        ttl: Annotated[
            float, typer.Option(min=1, max=600, help="seconds the code stays valid")
        ] = 120.0,
        yes: Annotated[bool, typer.Option("--yes", help="confirm the SAS without asking")] = False,
    ) -> None:
        """Link a new device: show a code, then compare the SAS on both screens."""
        session = call(ctx, "POST", "/v1/devices/link", {"ttl": ttl})
        _out.print(f"pairing code  [bold]{session['code']}[/bold]  (valid {ttl:.0f} s)")
        _out.print(f"QR payload    {session['qr']}", soft_wrap=True)
        _out.print("on the new device run: dchat device join CODE --name NAME")
        _finish(ctx, call, yes)

    @device_app.command("join")
    def device_join(
        ctx: typer.Context,
        code: str,
        name: Annotated[str, typer.Option(help="a name for this device")] = "device",
        timeout: Annotated[float, typer.Option(min=1, max=600)] = 120.0,
        yes: Annotated[bool, typer.Option("--yes", help="confirm the SAS without asking")] = False,
    ) -> None:
        """Join the identity whose primary device shows CODE (this node must be fresh)."""
        call(ctx, "POST", "/v1/devices/join", {"code": code, "name": name, "timeout": timeout})
        _finish(ctx, call, yes)

    @device_app.command("status")
    def device_status(ctx: typer.Context) -> None:
        """Show the current pairing session."""
        _print_session(call(ctx, "GET", "/v1/devices/pairing"))

    @device_app.command("confirm")
    def device_confirm(ctx: typer.Context) -> None:
        """Confirm that both screens show the same SAS."""
        _print_session(call(ctx, "POST", "/v1/devices/pairing/confirm"))

    @device_app.command("abort")
    def device_abort(
        ctx: typer.Context,
        mismatch: Annotated[bool, typer.Option("--mismatch", help="the SAS differed")] = False,
    ) -> None:
        """Abort the pairing on both devices."""
        reason = "sas_mismatch" if mismatch else "cancelled"
        _print_session(call(ctx, "POST", "/v1/devices/pairing/abort", {"reason": reason}))

    @device_app.command("revoke")
    def device_revoke(ctx: typer.Context, device: str) -> None:
        """Revoke DEVICE (its name, or at least 8 hex digits of its key)."""
        info = call(ctx, "POST", "/v1/devices/revoke", {"device": device})
        _out.print(f"revoked {info['revoked'][:16]}; document version {info['document_seq']}")

    @profile_app.command("set")
    def profile_set(
        ctx: typer.Context,
        visibility: Annotated[str, typer.Option(help="public, contacts or nobody")],
        name: Annotated[str | None, typer.Option("--name")] = None,
        bio: Annotated[str | None, typer.Option("--bio")] = None,
        status: Annotated[str | None, typer.Option("--status")] = None,
        avatar: Annotated[Path | None, typer.Option("--avatar", help="an image file")] = None,
    ) -> None:
        """Set profile fields, all with the given visibility."""
        body: dict[str, Any] = {"visibility": visibility}
        for key, value in (("display_name", name), ("bio", bio), ("status", status)):
            if value is not None:
                body[key] = value
        if avatar is not None:
            body["avatar"] = _avatar_reference(avatar)
        _print_profile(call(ctx, "PUT", "/v1/profile", body))

    @profile_app.command("show")
    def profile_show(
        ctx: typer.Context, contact: Annotated[str | None, typer.Argument()] = None
    ) -> None:
        """Show your profile, or the one CONTACT last served you (see `profile fetch`)."""
        if contact is None:
            _print_profile(call(ctx, "GET", "/v1/profile"))
            return
        info = call(ctx, "GET", f"/v1/profiles/{contact}")
        for key, value in sorted(info["fields"].items()):
            _out.print(f"{key:<13} {value}")
        if info["hidden"]:
            _out.print(f"hidden from you: {', '.join(info['hidden'])}")

    @profile_app.command("fetch")
    def profile_fetch(ctx: typer.Context, who: str) -> None:
        """Ask WHO (a contact name or a card) for their profile; `profile show` it later."""
        info = call(ctx, "POST", "/v1/profiles/request", {"who": who})
        _out.print(f"asked {info['identity_id']} for their profile")


def _finish(ctx: typer.Context, call: Any, yes: bool) -> None:
    session = _wait(ctx, call, {"waiting"})
    if session["state"] == "sas":
        _out.print(f"SAS  [bold]{session['sas']}[/bold]  (must match the other device)")
        same = yes or typer.confirm("Does the other device show the same SAS?", default=False)
        if not same:
            _print_session(
                call(ctx, "POST", "/v1/devices/pairing/abort", {"reason": "sas_mismatch"})
            )
            raise typer.Exit(1)
        call(ctx, "POST", "/v1/devices/pairing/confirm")
        session = _wait(ctx, call, {"sas", "confirmed"})
    _print_session(session)
    if session["state"] != "done":
        raise typer.Exit(1)


def _wait(ctx: typer.Context, call: Any, states: set[str]) -> dict[str, Any]:
    while True:
        session: dict[str, Any] = call(ctx, "GET", "/v1/devices/pairing")
        if session["state"] not in states:
            return session
        time.sleep(_POLL)


def _print_session(session: dict[str, Any]) -> None:
    if session["state"] == "failed":
        error = session["error"] or {}
        raise fail(f"pairing failed: {error.get('message')} ({error.get('code')})")
    who = f" ({session['device']})" if session.get("device") else ""
    _out.print(f"pairing {session['state']}{who}")


def _device_table(devices: list[dict[str, Any]]) -> None:
    table = Table("", "name", "key", "status", "attested")
    for d in devices:
        facts = d.get("attested")
        attested = ", ".join(f"{k}={v}" for k, v in sorted(facts.items())) if facts else ""
        mark = "*" if d.get("this_device") else ""
        table.add_row(mark, d.get("name") or "", d["key"][:16], d["status"], attested)
    _out.print(table)


def _print_profile(info: dict[str, Any]) -> None:
    for key, entry in sorted(info["fields"].items()):
        _out.print(f"{key:<13} {entry['value']}  [{entry['visibility']}]")


def _avatar_reference(path: Path) -> str:
    """A content reference to the image (the image itself is not published yet)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror}") from None
    return "blake2b-256:" + hashlib.blake2b(data, digest_size=32).hexdigest()
