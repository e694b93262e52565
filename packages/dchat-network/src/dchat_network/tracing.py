"""OpenTelemetry spans of a message's way through the relay: off by default, near free when off.

Theory of operation. The spans are made by the trio shells that perform each
step (the sans-IO engines know nothing of tracing):

* ``dchat.send``: a user node's API call that encrypts and queues a message
  (made in dchat-node's API, which calls :meth:`Tracing.sent` with it);
* ``dchat.deposit``: :class:`~dchat_network.RelayPool` handing a batch of
  queued envelopes to a relay; it *links* to the send spans queued since the
  previous deposit, so "sent, queued, handed to the relay" reads as one
  story without a trace crossing the outbox;
* ``dchat.relay.request`` and ``dchat.relay.push``: :class:`RelayHost`
  serving a request (put, pull, prekeys) in the database worker, and
  answering a parked pull when mail arrived;
* ``dchat.receive``: a :class:`MailboxLink` handing a pushed batch to the
  receiving node, which opens and stores it.

No trace context crosses a process boundary (docs/rationale.md says why):
each process's spans form their own traces, lined up by time.
Attributes are counts, sizes, reply kinds and error class names only: never
message content, an identity, a mailbox, a key or an address.

Tracing is per process, like OpenTelemetry's own global tracer provider:
:data:`active` is what the shells use, :func:`install` sets it (the node's
command line does, from its ``tracing_endpoint``/``tracing_file`` settings,
through :func:`configure`; tests install a provider with an in-memory
exporter). *Off* (:data:`TRACING_OFF`, the default) :meth:`Tracing.span`
returns one shared do-nothing context manager whose ``__enter__`` gives
``None``; call sites write ``with tracing.active.span(NAME) as span:`` and
set attributes only under ``if span is not None``, so the message path
allocates nothing for tracing. *On*, spans go through an SDK
``TracerProvider`` to an OTLP collector (when the optional
``opentelemetry-exporter-otlp-proto-http`` package is installed) or, as JSON
lines, to a file (also the fallback when that exporter is missing).
"""

from __future__ import annotations

import logging
from typing import IO, TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager
    from pathlib import Path

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Span, Tracer

__all__ = ("TRACING_OFF", "Tracing", "active", "configure", "install")

_log = logging.getLogger("dchat.tracing")
_MAX_LINKS: Final = 32
"""Send spans a deposit span links to at most (later ones are not remembered)."""


class _NoSpan:
    """The shared do-nothing context manager of tracing off."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN: Final = _NoSpan()


class Tracing:
    """A process's tracer (``provider=None``: off); ``files`` are closed at shutdown."""

    def __init__(
        self, provider: TracerProvider | None = None, files: Sequence[IO[str]] = ()
    ) -> None:
        self.provider = provider
        self.tracer: Tracer | None = None
        if provider is not None:
            self.tracer = provider.get_tracer("dchat")
        self._files = list(files)
        self._sends: list[Any] = []  # span contexts of sends not yet deposited

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def span(self, name: str) -> AbstractContextManager[Span | None]:
        """A span around a step (``None`` inside when off)."""
        if self.tracer is None:
            return _NO_SPAN
        return self.tracer.start_as_current_span(name)

    def sent(self, span: Span) -> None:
        """Remember a send span for the next deposit span's links (bounded)."""
        if len(self._sends) < _MAX_LINKS:
            self._sends.append(span.get_span_context())

    def deposit_span(self) -> AbstractContextManager[Span | None]:
        """A ``dchat.deposit`` span linked to the sends queued since the last one."""
        if self.tracer is None:
            return _NO_SPAN
        from opentelemetry.trace import Link

        links, self._sends = [Link(context) for context in self._sends], []
        return self.tracer.start_as_current_span("dchat.deposit", links=links)

    def shutdown(self) -> None:
        """Flush and stop the exporters, close their files (at process exit)."""
        if self.provider is not None:
            self.provider.shutdown()
        for file in self._files:
            file.close()
        self._files.clear()


TRACING_OFF: Final = Tracing()
"""Tracing off (shared: it keeps no state while off)."""

active: Tracing = TRACING_OFF
"""This process's tracing (read at each step; set by :func:`install`)."""


def install(tracing: Tracing) -> Tracing:
    """Make ``tracing`` the process's tracing; returns the one it replaces."""
    global active
    previous, active = active, tracing
    return previous


def _json_line(span: ReadableSpan) -> str:
    line: str = span.to_json(indent=None)
    return line + "\n"


def _exporters(
    endpoint: str | None, file: Path | None, fallback: Path, files: list[IO[str]]
) -> Iterator[Any]:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if endpoint is not None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            file = file or fallback
            _log.warning(
                "tracing: opentelemetry-exporter-otlp-proto-http is not installed; "
                "writing spans to %s instead of sending them to %s",
                file,
                endpoint,
            )
        else:
            yield OTLPSpanExporter(endpoint=endpoint)
    if file is not None:
        out = file.open("a", encoding="utf-8")
        files.append(out)
        yield ConsoleSpanExporter(out=out, formatter=_json_line)


def configure(service: str, *, endpoint: str | None, file: Path | None, fallback: Path) -> Tracing:
    """Tracing for a process named ``service`` (off when neither target is given).

    Args:
        service: The ``service.name`` resource of every span (``dchat-relay``).
        endpoint: An OTLP/HTTP traces URL.
        file: A file to append spans to, as JSON lines.
        fallback: The file used when ``endpoint`` is given but the OTLP
            exporter package is not installed.
    """
    if endpoint is None and file is None:
        return TRACING_OFF
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    files: list[IO[str]] = []
    for exporter in _exporters(endpoint, file, fallback, files):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, files)
