"""``dchat open``: log in to the chat app in the browser with a one-time link."""

from __future__ import annotations

import webbrowser
from typing import Annotated

import typer

from ._guardians import api_call

__all__ = ("register_open_command",)


def register_open_command(app: typer.Typer) -> None:
    """Add ``open`` to ``app``."""

    @app.command("open")
    def open_app(
        ctx: typer.Context,
        no_browser: Annotated[
            bool, typer.Option("--no-browser", help="Only print the link.")
        ] = False,
    ) -> None:
        """Open the chat app in the browser (a login link that works once, for 60 s)."""
        link = str(api_call(ctx, "POST", "/v1/app/login")["url"])
        typer.echo(link)
        if not no_browser:
            webbrowser.open(link)
