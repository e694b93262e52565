"""``dchat guardian ...``: choose guardians, act as one, and recover an identity.

Every command talks to the running node's API (``/v1/guardians``,
``/v1/recovery``) and prints JSON, so scripts and tests can read it.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from dchat_sdk import RemoteClient

from ._common import fail, guard

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ("api_call", "guardian_app", "parse_duration")

_out = Console()
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")

guardian_app = typer.Typer(help="Guardians: who can give your identity back.", no_args_is_help=True)
recover_app = typer.Typer(help="Recover an identity through its guardians.", no_args_is_help=True)
guardian_app.add_typer(recover_app, name="recover")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit s, m, h, d or w (``"1d"``)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise fail(f"not a duration: {text!r} (try 30s, 10m, 2h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def api_call(
    ctx: typer.Context, method: str, path: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Call the node found through the ``--data-dir`` of the ``dchat`` command."""
    data_dir: Path = ctx.find_root().obj
    with guard(lambda: RemoteClient.from_data_dir(data_dir)) as client:
        return guard(lambda: client.request(method, path, body))


def _show(reply: dict[str, Any]) -> None:
    _out.print_json(json.dumps(reply))


@guardian_app.command("add")
def add(
    ctx: typer.Context,
    names: Annotated[list[str], typer.Argument(help="Contacts who become guardians.")],
    threshold: Annotated[int, typer.Option(min=2, max=16, help="Guardians needed to recover.")],
) -> None:
    """Make contacts your guardians: each gets a share, your document names the set."""
    _show(api_call(ctx, "POST", "/v1/guardians", {"names": names, "threshold": threshold}))


@guardian_app.command("list")
def list_guardians(ctx: typer.Context) -> None:
    """Your guardians, and recovery requests for your identity (alerts)."""
    _show(api_call(ctx, "GET", "/v1/guardians"))


@guardian_app.command("held")
def held(ctx: typer.Context) -> None:
    """The identities you are a guardian of."""
    _show(api_call(ctx, "GET", "/v1/guardians/held"))


@guardian_app.command("requests")
def requests(ctx: typer.Context) -> None:
    """Recovery requests waiting for your approval as a guardian."""
    _show(api_call(ctx, "GET", "/v1/guardians/requests"))


@guardian_app.command("approve")
def approve(ctx: typer.Context, request_id: str) -> None:
    """Approve a request (check with the person first!) and release your share."""
    _show(api_call(ctx, "POST", f"/v1/guardians/requests/{request_id}/approve"))


@guardian_app.command("veto")
def veto(ctx: typer.Context, request_id: str) -> None:
    """Refuse a recovery of your identity (from a device you still have)."""
    _show(api_call(ctx, "POST", f"/v1/guardians/alerts/{request_id}/veto"))


@recover_app.command("start")
def recover_start(
    ctx: typer.Context,
    subject: Annotated[str, typer.Option(help="The identity id to recover.")],
    guardians: Annotated[
        list[str], typer.Option("--guardian", help="A guardian's contact name (repeat).")
    ],
    lock: Annotated[str, typer.Option(help="Time lock, e.g. 7d.")] = "7d",
    name: Annotated[str | None, typer.Option(help="Card name for the new keys.")] = None,
) -> None:
    """Ask the guardians for the identity back (new keys, time-locked request)."""
    body: dict[str, Any] = {
        "subject": subject,
        "guardians": guardians,
        "lock": parse_duration(lock),
    }
    if name is not None:
        body["name"] = name
    _show(api_call(ctx, "POST", "/v1/recovery", body))


@recover_app.command("status")
def recover_status(ctx: typer.Context) -> None:
    """Where the recovery stands: approvals, time lock, veto."""
    _show(api_call(ctx, "GET", "/v1/recovery"))


@recover_app.command("finish")
def recover_finish(ctx: typer.Context) -> None:
    """After the time lock, with enough approvals: become the recovered identity."""
    _show(api_call(ctx, "POST", "/v1/recovery/finish"))
