"""Where the client's stack puts a stage that comes later (``auth=`` given to
`with_options` or to one call) in a stack that has other parts already."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import stackwire
from stackwire.auth import BearerToken, Token
from stackwire.observability import OpenTelemetry
from tests.conftest import Serve, names, routes

MakeClient = Callable[..., stackwire.AsyncClient]


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter, provider
    provider.shutdown()


def refusing_old_token(seen: list[str | None]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("traceparent"))
        if request.headers.get("Authorization") == "Bearer old":
            return web.json_response({"error": "expired"}, status=401)
        return web.json_response({"ok": True})

    return routes(("GET", "/x", handler))


def old_then_new() -> BearerToken:
    tokens = iter(["old", "new"])
    return BearerToken(lambda: Token(next(tokens), None))


@pytest.mark.parametrize("given", ["with_options", "per_call"])
async def test_auth_added_to_an_instrumented_client_gets_a_client_span_per_request(
    serve: Serve,
    make_client: MakeClient,
    exporter: tuple[InMemorySpanExporter, TracerProvider],
    given: str,
) -> None:
    # A client made without auth=, instrumented, then given an auth: the 401 refresh's
    # repeat is a physical request of its own, so it has its own CLIENT span (with
    # resend_count) and its own traceparent, as on a client made with the auth.
    spans, provider = exporter
    seen: list[str | None] = []
    base_url = await serve(refusing_old_token(seen))
    client = OpenTelemetry(tracer_provider=provider).instrument(make_client(base_url))
    if given == "with_options":
        derived = client.with_options(auth=old_then_new())
        assert names(derived.pipeline)[-2:] == ["auth", "otel.request"]
        response: Any = await derived.get("/x")
    else:
        response = await client.get("/x", auth=old_then_new())
    assert response.status_code == 200
    requests = sorted(
        (s for s in spans.get_finished_spans() if s.kind == SpanKind.CLIENT),
        key=lambda s: s.start_time or 0,
    )
    attributes = [dict(s.attributes or {}) for s in requests]
    assert [a.get("http.response.status_code") for a in attributes] == [401, 200]
    assert [a.get("http.request.resend_count") for a in attributes] == [None, 1]
    assert len(seen) == 2
    span_ids = [f"{s.context.span_id:016x}" for s in requests if s.context is not None]
    assert [tp.split("-")[2] for tp in seen if tp is not None] == span_ids
