"""What every dchat command line shares: one-line errors, passphrase and database URL input.

It imports neither rich nor the SDK (``dchat --help`` and ``dchat send`` start
without them): ``err_console`` is a rich console made on first use,
``with_client`` imports the SDK when it runs.
"""

from __future__ import annotations

import errno
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from dchat_core import DchatError
    from dchat_sdk import RemoteClient

__all__ = (
    "DEFAULT_DIR",
    "check_database_url_option",
    "err_console",
    "fail",
    "guard",
    "read_passphrase",
    "with_client",
)

T = TypeVar("T")
DEFAULT_DIR = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "dchat"
err_console: Console  # rich, made on first use by __getattr__ below


def __getattr__(name: str) -> Console:
    if name != "err_console":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from rich.console import Console

    console = globals()["err_console"] = Console(stderr=True)
    return console


def fail(message: str, hint: str | None = None) -> typer.Exit:
    """Print ``error: message (hint)`` on one line of stderr; the caller raises the exit (1)."""
    line = message if hint is None else f"{message} (hint: {hint})"
    typer.echo(f"{typer.style('error:', fg='red')} {line}", err=True)
    return typer.Exit(1)


def key_bytes(text: str, name: str) -> bytes:
    """``text`` as the 32 bytes of a key or account, or a one-line failure naming ``name``."""
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise fail(f"{name} must be 64 hex digits") from None
    if len(value) != 32:
        raise fail(f"{name} must be 64 hex digits")
    return value


def with_client(ctx: typer.Context, action: Callable[[RemoteClient], T]) -> T:
    """``action`` on a client of the node that ``dchat --data-dir`` names; errors in one line."""
    from dchat_sdk import RemoteClient

    data_dir: Path = ctx.find_root().obj
    with guard(lambda: RemoteClient.from_data_dir(data_dir)) as client:
        return guard(lambda: action(client))


def guard(action: Callable[[], T]) -> T:
    """Run ``action``, turning a dchat error or a system error into a one-line failure.

    The error may come wrapped in exception groups (a trio nursery's): its first
    dchat or system error is the one reported. Anything else is a bug and keeps
    its traceback.
    """
    from dchat_core import DchatError

    try:
        return action()
    except (DchatError, OSError, BaseExceptionGroup) as exc:
        known = _known(exc)
        if known is None:
            raise
        raise fail(_message(known), hint_for(known)) from None


def _known(exc: BaseException) -> DchatError | OSError | None:
    from dchat_core import DchatError

    if isinstance(exc, (DchatError, OSError)):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _known(inner)
            if found is not None:
                return found
    return None


def _message(exc: DchatError | OSError) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def hint_for(exc: BaseException) -> str | None:
    """What to try next after ``exc`` (``None`` when the message says it already)."""
    from .._errors import ConfigError

    text = str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "another process (a node already running?) has the port: stop it or pick --listen"
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        return "check the file's owner and mode, or the port (below 1024 needs privileges)"
    if "validator.key" in text:
        return "a validator needs its key in DATA_DIR: `dchat-node chain init-testnet` writes them"
    if "wrong passphrase" in text:
        return "use the passphrase given at init: DCHAT_PASSPHRASE, --passphrase-file or the prompt"
    if "no running node" in text or "unreachable" in text.lower():
        return "start it with `dchat-node run --data-dir DIR`, or point --data-dir at it"
    if isinstance(exc, ConfigError):
        return "check the flags and DATA_DIR/dchat.toml (`dchat-node init` writes a commented one)"
    return None


def read_passphrase(passphrase_file: Path | None, env_var: str, purpose: str) -> bytes:
    """The passphrase from ``passphrase_file`` (trailing newline dropped), ``env_var``, or asked.

    Asked (without echo) only on a terminal; in a script a missing passphrase fails.
    """
    if passphrase_file is not None:
        try:
            return passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise fail(f"cannot read the passphrase file: {exc.strerror}") from None
    value = os.environ.get(env_var)
    if not value and sys.stdin.isatty():
        value = getpass.getpass(f"passphrase to {purpose}: ")
    if not value:
        raise fail(f"no passphrase to {purpose}", f"set {env_var} or pass --passphrase-file")
    return value.encode()


def check_database_url_option(url: str | None) -> None:
    """Refuse a password in a ``--database-url`` flag (any user can read a process's arguments).

    Raises:
        ConfigError: the URL holds a password.
    """
    from .._errors import ConfigError

    if url and urlsplit(url).password is not None:
        raise ConfigError(
            "--database-url holds a password, which other users can read from the process "
            "list: put the URL in dchat.toml or DCHAT_DATABASE_URL, or the password in ~/.pgpass"
        )
