"""OpenTelemetry spans of a node's message path: off by default, near free when off.

Theory of operation. A node traces three steps of a message's way, each in
the shell that performs it (the engines stay sans-IO and know nothing of
tracing):

* a user node's ``dchat.send`` (the API call: encrypt and queue, one
  database trip) and ``dchat.deposit`` (a batch of queued envelopes handed
  to the relay and settled); a deposit span *links* to the send spans queued
  since the previous deposit, so "sent, queued, handed to the relay" reads as
  one story without a trace crossing the queue;
* a relay's ``dchat.relay.request`` (a request served in the database
  worker: a put, a pull, prekeys) and ``dchat.relay.push`` (a parked pull
  answered when mail arrived);
* a receiving node's ``dchat.receive`` (a pushed batch opened and stored).

No trace context crosses a process boundary (docs/rationale.md says why):
each node's spans form their own traces, to be lined up by time.

Attributes are counts, sizes, kinds and error class names only: never
message content, an identity, a mailbox, a key or an address.

*Off* is :data:`TRACING_OFF`: :meth:`Tracing.span` then returns one shared
do-nothing context manager whose ``__enter__`` gives ``None``; a call site
writes ``with tracing.span(NAME) as span:`` and sets attributes only under
``if span is not None``, so the message path allocates nothing for tracing.
*On*, a :class:`Tracing` wraps an SDK ``TracerProvider`` whose spans go to
an OTLP collector (``[tracing] endpoint``, when the optional
``opentelemetry-exporter-otlp-proto-http`` package is installed) or, as JSON
lines, to a file (``[tracing] file``, or the fallback when the OTLP exporter
is missing). Tests pass a provider with an in-memory exporter.
"""

from __future__ import annotations

import logging
from typing import IO, TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from contextlib import AbstractContextManager

    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.trace import Span, Tracer

    from .config import NodeConfig

__all__ = ("TRACING_OFF", "Tracing", "tracing_from_config")

_log = logging.getLogger("dchat.node.tracing")
_MAX_LINKS: Final = 32
"""Send spans a deposit span links to at most (the rest are dropped, not kept)."""


class _NoSpan:
    """The shared do-nothing context manager of tracing off."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN: Final = _NoSpan()


class Tracing:
    """A node's tracer (``provider=None``: off)."""

    def __init__(
        self, provider: TracerProvider | None = None, files: Sequence[IO[str]] = ()
    ) -> None:
        self.provider = provider
        self._files = list(files)  # the exporters' output files, closed at shutdown
        self.tracer: Tracer | None = None
        if provider is not None:
            self.tracer = provider.get_tracer("dchat_node")
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
        """A deposit span linked to the sends queued since the last one."""
        if self.tracer is None:
            return _NO_SPAN
        from opentelemetry.trace import Link

        links, self._sends = [Link(context) for context in self._sends], []
        return self.tracer.start_as_current_span("dchat.deposit", links=links)

    def shutdown(self) -> None:
        """Flush and stop the exporters (at node exit)."""
        if self.provider is not None:
            self.provider.shutdown()
        for file in self._files:
            file.close()
        self._files.clear()


TRACING_OFF: Final = Tracing()
"""Tracing off (shared: it keeps no state while off)."""


def _json_line(span: ReadableSpan) -> str:
    line: str = span.to_json(indent=None)
    return line + "\n"


def _exporters(config: NodeConfig, files: list[IO[str]]) -> Iterator[Any]:
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    settings = config.tracing
    file = settings.file
    if settings.endpoint is not None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            _log.warning(
                "tracing: opentelemetry-exporter-otlp-proto-http is not installed; "
                "writing spans to %s instead of %s",
                file or "traces.jsonl",
                settings.endpoint,
            )
            file = file or config.data_dir / "traces.jsonl"
        else:
            yield OTLPSpanExporter(endpoint=settings.endpoint)
    if file is not None:
        path = file if file.is_absolute() else config.data_dir / file
        out = path.open("a", encoding="utf-8")
        files.append(out)
        yield ConsoleSpanExporter(out=out, formatter=_json_line)


def tracing_from_config(config: NodeConfig) -> Tracing:
    """The node's tracing as its ``[tracing]`` table says (off when it names no target)."""
    settings = config.tracing
    if settings.endpoint is None and settings.file is None:
        return TRACING_OFF
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"dchat-{config.role}"})
    provider = TracerProvider(resource=resource)
    files: list[IO[str]] = []
    for exporter in _exporters(config, files):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracing(provider, files)
