"""Test and benchmark helpers: a real PostgreSQL server and throwaway databases.

:func:`postgres_server` yields the URL of a server's maintenance database:

1. ``DCHAT_TEST_POSTGRES_URL`` if set (CI starts a server and sets it, see
   ``.ci/run``). The role must be allowed to create databases.
2. Otherwise a throwaway server: ``initdb`` into a fresh temporary directory,
   ``pg_ctl start`` on a free 127.0.0.1 port with Unix sockets off, stopped and
   deleted on exit. PostgreSQL refuses to run as root, so as root both run as
   the ``postgres`` system user (via ``runuser``) and the directory is handed
   to that user. Binaries are found on ``PATH`` or in Debian's
   ``/usr/lib/postgresql/<version>/bin``.
3. Otherwise :class:`PostgresUnavailableError`, whose message says why (tests
   turn it into a skip).

:func:`postgres_database` creates a uniquely named database on such a server
and drops it afterwards.

:func:`media_samples` and :func:`jpeg_with_gps` make small, real files of each
media type the upload checks recognise.
"""

from __future__ import annotations

import glob
import io
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import psycopg
from PIL import Image
from psycopg import sql
from sqlalchemy.engine import make_url

from ._errors import StorageUnavailableError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = (
    "ENV_URL",
    "GPS_SAMPLE",
    "PostgresUnavailableError",
    "image_bytes",
    "jpeg_with_gps",
    "media_samples",
    "postgres_database",
    "postgres_server",
)

ENV_URL: Final = "DCHAT_TEST_POSTGRES_URL"
_USER: Final = "dchat"
_START_TIMEOUT: Final = 60


class PostgresUnavailableError(StorageUnavailableError):
    """No PostgreSQL server can be used or started here; the message says why."""


def _bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found is not None and shutil.which("initdb") is not None:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    return Path(candidates[0]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_server_user() -> list[str]:
    """Command prefix that drops root to the ``postgres`` user (nothing if not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresUnavailableError(
            "running as root and there is no 'postgres' user to run the server as"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailableError("running as root and 'runuser' is not installed")
    return [runuser, "-u", "postgres", "--"]


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=_START_TIMEOUT)
    if done.returncode != 0:
        raise PostgresUnavailableError(f"{what} failed: {done.stderr.strip()[-500:]}")


@contextmanager
def _throwaway_server(durable: bool) -> Iterator[str]:
    bin_dir = _bin_dir()
    if bin_dir is None:
        raise PostgresUnavailableError(
            f"{ENV_URL} is unset and no initdb/pg_ctl was found (install Debian's 'postgresql')"
        )
    prefix = _as_server_user()
    root = Path(tempfile.mkdtemp(prefix="dchat-pg-"))
    if prefix:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, port = root / "data", _free_port()
    # Non-durable settings make throwaway test servers fast; benchmarks ask for durable.
    fast = "" if durable else " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories=''{fast}"
    ctl = [*prefix, str(bin_dir / "pg_ctl"), "-D", str(data)]
    try:
        initdb = [*prefix, str(bin_dir / "initdb"), "-D", str(data), "-U", _USER]
        _run([*initdb, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"], "initdb")
        log = str(root / "server.log")
        _run([*ctl, "-l", log, "-w", "-t", str(_START_TIMEOUT), "-o", options, "start"], "pg_ctl")
        try:
            yield f"postgresql://{_USER}@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run(
                [*ctl, "-m", "immediate", "-w", "stop"], capture_output=True, check=False
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def postgres_server(*, durable: bool = False) -> Iterator[str]:
    """Yield a PostgreSQL maintenance-database URL (see the module docstring).

    Args:
        durable: For a throwaway server, keep fsync on (benchmarks); tests
            leave it off for speed. A server from the environment is used as is.

    Raises:
        PostgresUnavailableError: No server is configured and none can be started.
    """
    url = os.environ.get(ENV_URL)
    if url:
        yield url
        return
    with _throwaway_server(durable) as started:
        yield started


@contextmanager
def postgres_database(server_url: str, *, template: str | None = None) -> Iterator[str]:
    """Create a fresh database on the server, yield its SQLAlchemy URL, then drop it.

    Args:
        server_url: A URL of any database on the server (``postgresql://...``).
        template: Copy this database instead of starting empty.

    Raises:
        PostgresUnavailableError: The server cannot be reached or refuses.
    """
    name = f"dchat_{uuid.uuid4().hex[:16]}"
    create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template is not None:
        create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(name), sql.Identifier(template)
        )
    _admin(server_url, create)
    try:
        url = make_url(server_url).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        _admin(server_url, drop)


def _admin(server_url: str, statement: sql.Composed) -> None:
    url = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)
    except psycopg.Error as exc:
        where = make_url(url).render_as_string(hide_password=True)
        raise PostgresUnavailableError(f"PostgreSQL at {where!r} refused: {exc}") from exc


GPS_SAMPLE: Final = {1: "N", 2: (48.0, 51.0, 29.5), 3: "E", 4: (2.0, 17.0, 40.2)}
"""An EXIF GPS IFD (a point in Paris) for location-stripping tests."""


def image_bytes(fmt: str, size: tuple[int, int] = (64, 48), **save: object) -> bytes:
    """A real image in Pillow format ``fmt`` (``"JPEG"``, ``"PNG"``...), with some structure."""
    img = Image.new("RGB", size, (200, 30, 30))
    for x in range(0, size[0], 7):
        img.putpixel((x, x % size[1]), (0, 0, 255))
    out = io.BytesIO()
    img.save(out, fmt, **save)
    return out.getvalue()


def jpeg_with_gps(size: tuple[int, int] = (640, 480), orientation: int = 1) -> bytes:
    """A JPEG whose EXIF holds a camera make, an orientation and :data:`GPS_SAMPLE`."""
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = orientation
    exif[0x8825] = GPS_SAMPLE
    return image_bytes("JPEG", size, exif=exif.tobytes(), quality=90)


def media_samples() -> dict[str, bytes]:
    """One small sample per recognised media type, keyed by the type."""
    return {
        "image/jpeg": image_bytes("JPEG"),
        "image/png": image_bytes("PNG"),
        "image/gif": image_bytes("GIF"),
        "image/webp": image_bytes("WEBP"),
        "video/mp4": b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(200),
        "video/quicktime": b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00qt  " + bytes(200),
        "audio/mp4": b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom" + bytes(200),
        "video/webm": b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\xf2\x81\x04"
        b"\x42\xf3\x81\x08\x42\x82\x84webm\x42\x87\x81\x04" + bytes(100),
        "video/x-matroska": b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska"
        + bytes(100),
        "audio/ogg": b"OggS\x00\x02" + bytes(20) + b"\x01\x13OpusHead\x01\x02" + bytes(100),
        "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00" + bytes(400),
        "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + bytes(100),
        "audio/flac": b"fLaC\x00\x00\x00\x22" + bytes(100),
        "application/pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n",
        "application/zip": b"PK\x03\x04\x14\x00\x00\x00" + bytes(60),
        "text/plain": "a plain note, \u00fcn\u00efc\u00f6d\u00e9 included\n".encode(),
    }
