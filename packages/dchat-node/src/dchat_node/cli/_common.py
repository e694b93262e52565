"""What every dchat command line shares: one-line errors, passphrase and database URL input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console

from dchat_core import DchatError

from .._errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = (
    "DEFAULT_DIR",
    "check_database_url_option",
    "err_console",
    "fail",
    "guard",
    "read_passphrase",
)

T = TypeVar("T")
DEFAULT_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "dchat"
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


def check_database_url_option(url: str | None) -> None:
    """Refuse a password in a ``--database-url`` flag (any user can read a process's arguments).

    Raises:
        ConfigError: the URL holds a password.
    """
    if url and urlsplit(url).password is not None:
        raise ConfigError(
            "--database-url holds a password, which other users can read from the process "
            "list: put the URL in dchat.toml or DCHAT_DATABASE_URL, or the password in ~/.pgpass"
        )
