"""``dchat_network.tracing``: off is free and shared; on, deposits link to the sends before them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dchat_network import tracing
from dchat_network.tracing import TRACING_OFF, Tracing


@pytest.fixture
def traced() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    on = Tracing(provider)
    yield on, exporter
    on.shutdown()


def test_off_hands_out_one_object_and_no_span() -> None:
    assert tracing.active is TRACING_OFF
    steps = {id(TRACING_OFF.span(name)) for name in ("a", "b", "c")}
    steps.add(id(TRACING_OFF.deposit_span()))
    assert len(steps) == 1
    with TRACING_OFF.span("a") as span:
        assert span is None


def test_a_deposit_links_to_the_sends_since_the_last_deposit(
    traced: tuple[Tracing, InMemorySpanExporter],
) -> None:
    on, exporter = traced
    contexts = []
    for _ in range(3):
        with on.span("dchat.send") as span:
            assert span is not None
            on.sent(span)
            contexts.append(span.get_span_context())
    with on.deposit_span():
        pass
    with on.deposit_span():  # nothing sent since: no links
        pass
    first, second = [s for s in exporter.get_finished_spans() if s.name == "dchat.deposit"]
    assert [link.context for link in first.links] == contexts
    assert not second.links


def test_links_are_bounded(traced: tuple[Tracing, InMemorySpanExporter]) -> None:
    on, exporter = traced
    for _ in range(100):
        with on.span("dchat.send") as span:
            assert span is not None
            on.sent(span)
    with on.deposit_span():
        pass
    (deposit,) = [s for s in exporter.get_finished_spans() if s.name == "dchat.deposit"]
    assert len(deposit.links) == 32


def test_install_returns_what_it_replaces(traced: tuple[Tracing, InMemorySpanExporter]) -> None:
    on, _ = traced
    previous = tracing.install(on)
    try:
        assert tracing.active is on
    finally:
        assert tracing.install(previous) is on
    assert tracing.active is TRACING_OFF
