"""JSON requests to a node's loopback API over the standard library's ``http.client``.

:class:`RemoteClient`'s plain calls (a JSON body or none, a JSON answer) to an
``http://`` API go this way: importing httpx and building its client (httpcore,
anyio, an SSL context with the CA bundle loaded, for a connection that never
uses TLS) costs about 0.15 s of CPU, more than the rest of a ``dchat send``.
Streams, uploads, ``https://`` and a custom transport still use httpx.

Connections are HTTP/1.1 keep-alive, kept in a small idle list (one per thread
at a time, so a client may be shared by threads). An idle connection the node
has closed is seen before reuse (its socket reads as ready) and replaced, so a
request is never sent on a dead connection and never repeated.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ._errors import NodeUnreachableError

__all__ = ("PlainHttp",)

_KEEP_IDLE = 4
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"  # what a path may hold as is (RFC 3986), escapes kept


class PlainHttp:
    """Requests to one ``http://host:port/prefix`` with fixed headers.

    Args:
        base_url: The API's address; must be ``http://``.
        headers: Sent with every request (the bearer token).
        timeout: Seconds allowed to connect and for each read, unless a call says.

    Raises:
        ValueError: not an ``http://`` address, or a header value that is not
            printable ASCII (a token no HTTP client can send).
    """

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"not an http:// address: {base_url!r}")
        for value in headers.values():
            if not value.isascii() or not value.isprintable():
                raise ValueError("a header value must be printable ASCII")
        self._where = (parts.hostname, parts.port or 80)
        self._prefix = parts.path.rstrip("/")
        self._headers = {"User-Agent": "dchat-sdk", "Accept": "application/json", **headers}
        self._timeout = timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str | int] | None = None,
        timeout: float | None = None,
    ) -> tuple[int, bytes]:
        """The status and body of the answer to one request.

        Raises:
            NodeUnreachableError: no connection, a timeout, or a broken answer.
        """
        target = self._prefix + quote(path, safe=_PATH_SAFE)
        if params:
            target += "?" + urlencode(params)
        headers = dict(self._headers)
        data = None
        if body is not None:
            text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            data = text.encode()
            headers["Content-Type"] = "application/json"
        connection = self._connection(self._timeout if timeout is None else timeout)
        try:
            connection.request(method, target, body=data, headers=headers)
            answer = connection.getresponse()
            status, content = answer.status, answer.read()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise NodeUnreachableError(f"node API unreachable: {type(exc).__name__}") from None
        if answer.will_close:
            connection.close()
        else:
            self._put_back(connection)
        return status, content

    def close(self) -> None:
        """Close the idle connections."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        while True:
            with self._lock:
                connection = self._idle.pop() if self._idle else None
            if connection is None:
                host, port = self._where
                return http.client.HTTPConnection(host, port, timeout=timeout)
            if _alive(connection, timeout):
                return connection
            connection.close()  # the node closed it (or sent what nobody asked for)

    def _put_back(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < _KEEP_IDLE:
                self._idle.append(connection)
                return
        connection.close()


def _alive(connection: http.client.HTTPConnection, timeout: float) -> bool:
    """Whether an idle connection is still open with nothing unread (then set to ``timeout``)."""
    sock = connection.sock
    if sock is None:
        return False
    try:
        sock.setblocking(False)
        sock.recv(1, socket.MSG_PEEK)  # b"": closed; bytes: an answer nobody asked for
    except BlockingIOError:
        sock.settimeout(timeout)
        return True
    except OSError:
        pass
    return False
