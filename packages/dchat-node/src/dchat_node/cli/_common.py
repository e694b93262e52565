"""What every dchat command line shares: one-line errors and passphrase input."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console

from dchat_core import DchatError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

__all__ = ("err_console", "fail", "guard", "read_passphrase")

T = TypeVar("T")
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the caller raises the returned exit (status 1)."""
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def guard(action: Callable[[], T]) -> T:
    """Run ``action``, turning any dchat error into a one-line failure."""
    try:
        return action()
    except DchatError as exc:
        raise fail(str(exc)) from None


def read_passphrase(passphrase_file: Path | None, env_var: str, purpose: str) -> bytes:
    """The passphrase from ``passphrase_file`` (trailing newline dropped) or ``env_var``."""
    if passphrase_file is not None:
        try:
            return passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise fail(f"cannot read the passphrase file: {exc.strerror}") from None
    value = os.environ.get(env_var)
    if not value:
        raise fail(f"set {env_var} or pass --passphrase-file to {purpose}")
    return value.encode()
