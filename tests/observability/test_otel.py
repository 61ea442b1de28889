"""`OpenTelemetry`, against the real SDK (in-memory span exporter and metric reader)
and real 127.0.0.1 servers; sleeps are recorded, never slept."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import baggage, context, propagate, trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.propagators.textmap import TextMapPropagator, default_setter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import stackwire
from stackwire.observability import DURATION_BUCKETS, OpenTelemetry
from tests.conftest import Serve, SleepRecorder, routes
from tests.sync.test_sync_client import ServerThread

MakeClient = Callable[..., stackwire.AsyncClient]


class HeaderPropagator(TextMapPropagator):
    """A propagator of an application's that writes one header (``inject`` is the
    test's); it never extracts."""

    header = "x-own-trace"

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        raise NotImplementedError

    @property
    def fields(self) -> set[str]:
        return {self.header}


@contextlib.contextmanager
def global_propagator(propagator: TextMapPropagator) -> Iterator[None]:
    """``propagator`` as the global textmap, the one before it restored after."""
    default = propagate.get_global_textmap()
    propagate.set_global_textmap(propagator)
    try:
        yield
    finally:
        propagate.set_global_textmap(default)


class Telemetry:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.otel = OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        """stackwire's spans (of ``kind``), in the order they started."""
        spans = sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)
        return [
            s
            for s in spans
            if (kind is None or s.kind == kind)
            and (s.instrumentation_scope is None or s.instrumentation_scope.name != "app")
        ]

    def durations(self) -> list[HistogramDataPoint]:
        data = self.reader.get_metrics_data()
        assert data is not None
        points: list[HistogramDataPoint] = []
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == "http.client.request.duration":
                        assert metric.unit == "s"
                        points += list(metric.data.data_points)  # type: ignore[arg-type]
        return points


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


class Seen:
    def __init__(self) -> None:
        self.traceparents: list[str | None] = []


def redirect_then_flaky(seen: Seen) -> web.Application:
    """``/start`` redirects to ``/flaky``, which fails with 503 the first time."""
    flaky_calls = 0

    async def start(request: web.Request) -> web.Response:
        seen.traceparents.append(request.headers.get("traceparent"))
        raise web.HTTPFound("/flaky?key=secret-key-value")

    async def flaky(request: web.Request) -> web.Response:
        nonlocal flaky_calls
        seen.traceparents.append(request.headers.get("traceparent"))
        flaky_calls += 1
        if flaky_calls == 1:
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"ok": True})

    return routes(("GET", "/start", start), ("GET", "/flaky", flaky))


def point_attributes(point: HistogramDataPoint) -> Mapping[str, Any]:
    return point.attributes or {}


def span_id_of(traceparent: str | None) -> int:
    assert traceparent is not None
    return int(traceparent.split("-")[2], 16)


async def test_retried_and_redirected_call_gives_the_span_tree(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry, client_sleeps: SleepRecorder
) -> None:
    seen = Seen()
    base = await serve(redirect_then_flaky(seen))
    client = telemetry.otel.instrument(make_client(base, random=lambda: 0.0))
    assert client.pipeline.names == [
        "headers",
        "query",
        "timeout",
        "otel.call",
        "retry",
        "decode",
        "redirects",
        "otel.request",
    ]
    assert (await client.get("/start")).json() == {"ok": True}

    (call,) = telemetry.spans(SpanKind.INTERNAL)
    requests = telemetry.spans(SpanKind.CLIENT)
    assert call.name == "stackwire GET"
    assert call.attributes is not None
    assert call.attributes["http.response.status_code"] == 200
    assert call.attributes["stackwire.attempts"] == 2
    assert call.attributes["stackwire.timings.reused_connection"] is True
    assert "stackwire.timings.body" in call.attributes
    (retry,) = call.events
    assert retry.name == "stackwire.retry"
    assert dict(retry.attributes or {}) == {
        "stackwire.retry.attempt": 0,
        "stackwire.retry.reason": "status 503",
        "stackwire.retry.delay": 0.5,
        "stackwire.retry.delay_source": "backoff",
        "http.response.status_code": 503,
    }
    assert client_sleeps.delays == [0.5]

    # Four physical requests: two attempts, each a redirect hop and its target.
    assert [s.name for s in requests] == ["GET"] * 4
    port = int(base.rsplit(":", 1)[1].rstrip("/"))
    shown = [
        (
            (s.attributes or {}).get("url.full"),
            (s.attributes or {}).get("http.response.status_code"),
            (s.attributes or {}).get("http.request.resend_count"),
            (s.attributes or {}).get("error.type"),
        )
        for s in requests
    ]
    flaky_url = f"{base}flaky?key=REDACTED"  # (the conventions' marker)
    assert shown == [
        (f"{base}start", 302, None, None),
        (flaky_url, 503, 1, "503"),
        (f"{base}start", 302, 2, None),
        (flaky_url, 200, 3, None),
    ]
    for span in requests:
        assert span.parent is not None
        assert span.parent.span_id == call.context.span_id
        assert span.context.trace_id == call.context.trace_id
        attributes = span.attributes or {}
        assert attributes["http.request.method"] == "GET"
        assert attributes["server.address"] == "127.0.0.1"
        assert attributes["server.port"] == port
        assert attributes["network.protocol.version"] == "1.1"
    assert requests[1].status.status_code == StatusCode.ERROR
    assert requests[0].attributes is not None
    assert requests[0].attributes["stackwire.timings.reused_connection"] is False
    assert "stackwire.timings.connect" in requests[0].attributes

    # Each physical request carried its own CLIENT span's id in traceparent.
    assert [span_id_of(t) for t in seen.traceparents] == [s.context.span_id for s in requests]
    assert all(t is not None and f"{call.context.trace_id:032x}" in t for t in seen.traceparents)

    # One duration per physical request, semconv buckets and attributes, no URL.
    points = telemetry.durations()
    assert sum(p.count for p in points) == 4
    assert all(tuple(p.explicit_bounds) == DURATION_BUCKETS for p in points)
    statuses = sorted((point_attributes(p)["http.response.status_code"], p.count) for p in points)
    assert statuses == [(200, 1), (302, 2), (503, 1)]
    for point in points:
        assert "url.full" not in point_attributes(point)
        assert point_attributes(point)["http.request.method"] == "GET"
        assert point_attributes(point)["server.port"] == port
    (failed,) = [p for p in points if point_attributes(p)["http.response.status_code"] == 503]
    assert point_attributes(failed)["error.type"] == "503"


async def test_url_full_shows_userinfo_and_secret_values_as_the_conventions_redact_them(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry
) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(headers_app(seen))
    client = telemetry.otel.instrument(make_client(base))
    url = base.replace("http://", "http://me:canary-password@") + "h"
    await client.get(url, query={"sig": "canary-signature", "limit": 2})

    assert seen  # the request went, with its userinfo (aiohttp sends it as Basic auth)
    (span,) = telemetry.spans(SpanKind.CLIENT)
    shown = (span.attributes or {})["url.full"]
    assert shown == (
        base.replace("http://", "http://REDACTED:REDACTED@") + "h?sig=REDACTED&limit=2"
    )


async def test_aiohttp_instrumentation_adds_no_second_client_span(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry
) -> None:
    seen = Seen()
    base = await serve(redirect_then_flaky(seen))
    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider)
    try:
        # Without stackwire's marker, aiohttp's instrumentation does trace requests.
        async with aiohttp.ClientSession() as session, session.get(f"{base}flaky") as raw:
            await raw.read()
        assert len(telemetry.spans(SpanKind.CLIENT)) == 1
        telemetry.exporter.clear()

        client = telemetry.otel.instrument(make_client(base))
        await client.get("/start")
    finally:
        instrumentor.uninstrument()
    requests = telemetry.spans(SpanKind.CLIENT)
    assert len(requests) == len(seen.traceparents) - 1 == 2  # a redirect hop and its target
    assert {s.instrumentation_scope.name for s in requests if s.instrumentation_scope} == {
        "stackwire"
    }
    assert [span_id_of(t) for t in seen.traceparents[1:]] == [s.context.span_id for s in requests]


async def test_a_method_the_conventions_do_not_know_is_other_unless_listed(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def purge(request: web.Request) -> web.Response:
        return web.json_response({})

    base = await serve(routes(("PURGE", "/cache", purge), ("GET", "/cache", purge)))
    client = telemetry.otel.instrument(make_client(base))
    await client.request("PURGE", "/cache")
    await client.get("/cache")
    (purged, got) = telemetry.spans(SpanKind.CLIENT)
    assert (purged.name, got.name) == ("HTTP", "GET")
    assert purged.attributes is not None
    assert purged.attributes["http.request.method"] == "_OTHER"
    assert purged.attributes["http.request.method_original"] == "PURGE"
    assert got.attributes is not None
    assert "http.request.method_original" not in got.attributes
    assert [s.name for s in telemetry.spans(SpanKind.INTERNAL)] == [
        "stackwire HTTP",
        "stackwire GET",
    ]
    assert sorted(point_attributes(p)["http.request.method"] for p in telemetry.durations()) == [
        "GET",
        "_OTHER",
    ]

    # The conventions' override: the variable's list replaces the known methods.
    monkeypatch.setenv("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS", "GET, PURGE")
    telemetry.exporter.clear()
    await telemetry.otel.instrument(make_client(base)).request("PURGE", "/cache")
    (listed,) = telemetry.spans(SpanKind.CLIENT)
    assert listed.name == "PURGE"
    assert listed.attributes is not None
    assert listed.attributes["http.request.method"] == "PURGE"
    assert "http.request.method_original" not in listed.attributes


async def test_connection_error_span_and_caller_parent(
    make_client: MakeClient, telemetry: Telemetry
) -> None:
    client = telemetry.otel.instrument(make_client("http://127.0.0.1:1/", max_retries=1))
    tracer = telemetry.tracer_provider.get_tracer("app")
    with (
        tracer.start_as_current_span("handler") as parent,
        pytest.raises(stackwire.APIConnectionError),
    ):
        await client.get("/x")
    (call,) = telemetry.spans(SpanKind.INTERNAL)
    assert call.parent is not None
    assert call.parent.span_id == parent.get_span_context().span_id
    assert call.attributes is not None
    assert call.attributes["error.type"] == "stackwire.APIConnectionError"
    assert call.status.status_code == StatusCode.ERROR
    requests = telemetry.spans(SpanKind.CLIENT)
    assert [(s.attributes or {}).get("error.type") for s in requests] == [
        "stackwire.APIConnectionError"
    ] * 2
    assert [(s.attributes or {}).get("http.request.resend_count") for s in requests] == [None, 1]
    points = telemetry.durations()
    assert [point_attributes(p).get("error.type") for p in points] == [
        "stackwire.APIConnectionError"
    ]


def headers_app(seen: list[dict[str, str]]) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({})

    return routes(("GET", "/h", echo))


async def test_baggage_and_a_replaced_global_propagator_are_honoured(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry
) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(headers_app(seen))
    client = telemetry.otel.instrument(make_client(base))
    # The default propagators: traceparent, and the caller's baggage.
    token = context.attach(baggage.set_baggage("tenant", "acme"))
    try:
        await client.get("/h")
    finally:
        context.detach(token)
    (request,) = telemetry.spans(SpanKind.CLIENT)
    assert span_id_of(seen[0]["traceparent"]) == request.context.span_id
    assert seen[0]["baggage"] == "tenant=acme"
    assert "tracestate" not in seen[0]

    class OwnHeader(HeaderPropagator):
        def inject(self, carrier: Any, context: Any = None, setter: Any = default_setter) -> None:
            span = trace.get_current_span(context)
            setter.set(carrier, self.header, f"{span.get_span_context().span_id:x}")

    with global_propagator(OwnHeader()):
        await client.get("/h")  # the client was instrumented before the change
    own = telemetry.spans(SpanKind.CLIENT)[-1]
    assert seen[1]["x-own-trace"] == f"{own.context.span_id:x}"
    assert "traceparent" not in seen[1]


async def test_a_propagator_that_writes_a_bad_header_fails_the_call_before_any_io(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry
) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(headers_app(seen))
    client = telemetry.otel.instrument(make_client(base))

    class Splitting(HeaderPropagator):
        def inject(self, carrier: Any, context: Any = None, setter: Any = default_setter) -> None:
            setter.set(carrier, self.header, "1\r\nX-Injected: yes")

    with (
        global_propagator(Splitting()),
        pytest.raises(stackwire.InvalidRequestError, match="x-own-trace"),
    ):
        await client.get("/h")
    assert seen == []
    # Both spans ended, and say why.
    (request,) = telemetry.spans(SpanKind.CLIENT)
    assert (request.attributes or {})["error.type"] == "stackwire.InvalidRequestError"
    assert len(telemetry.spans(SpanKind.INTERNAL)) == 1


async def test_a_propagator_that_raises_never_fails_the_call(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry
) -> None:
    seen: list[dict[str, str]] = []
    base = await serve(headers_app(seen))
    client = telemetry.otel.instrument(make_client(base))

    class Broken(HeaderPropagator):
        def inject(self, carrier: Any, context: Any = None, setter: Any = default_setter) -> None:
            raise RuntimeError("the propagator is broken")

    with global_propagator(Broken()):
        assert (await client.get("/h")).status_code == 200
    assert "traceparent" not in seen[0]
    (request,) = telemetry.spans(SpanKind.CLIENT)
    assert (request.attributes or {})["http.response.status_code"] == 200
    assert request.status.status_code == StatusCode.UNSET
    assert len(telemetry.spans(SpanKind.INTERNAL)) == 1
    assert not trace.get_current_span().get_span_context().is_valid


async def test_a_cancelled_call_ends_both_spans_and_leaves_no_current_span(
    serve: Serve, make_client: MakeClient, telemetry: Telemetry
) -> None:
    arrived = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        arrived.set()
        await asyncio.sleep(30)
        return web.json_response({})

    client = telemetry.otel.instrument(make_client(await serve(routes(("GET", "/hang", hang)))))
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handler") as handler:
        call = asyncio.ensure_future(client.get("/hang"))
        await arrived.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert trace.get_current_span() is handler
    assert not trace.get_current_span().get_span_context().is_valid
    spans = [*telemetry.spans(SpanKind.INTERNAL), *telemetry.spans(SpanKind.CLIENT)]
    assert [s.kind for s in spans] == [SpanKind.INTERNAL, SpanKind.CLIENT]
    for span in spans:
        assert span.end_time is not None
        assert (span.attributes or {})["error.type"] == "asyncio.exceptions.CancelledError"
        assert span.status.status_code == StatusCode.ERROR


def test_instrumenting_twice_is_refused_clearly(telemetry: Telemetry) -> None:
    traced = telemetry.otel.instrument(stackwire.AsyncClient("http://127.0.0.1:1/"))
    with pytest.raises(stackwire.InvalidRequestError, match="instrumented already"):
        telemetry.otel.instrument(traced)


def test_blocking_client_is_instrumented_too(
    telemetry: Telemetry, client_sleeps: SleepRecorder
) -> None:
    servers = ServerThread()
    try:
        seen = Seen()
        base = servers.app(redirect_then_flaky(seen))
        with stackwire.Client(base, sleep=client_sleeps) as plain:
            client = telemetry.otel.instrument(plain)
            assert isinstance(client, stackwire.Client)
            tracer = telemetry.tracer_provider.get_tracer("app")
            with tracer.start_as_current_span("job") as job:
                assert client.get("/start").json() == {"ok": True}
    finally:
        servers.close()
    (call,) = telemetry.spans(SpanKind.INTERNAL)
    assert call.parent is not None
    assert call.parent.span_id == job.get_span_context().span_id
    assert len(telemetry.spans(SpanKind.CLIENT)) == 4


def test_the_original_client_is_unchanged(telemetry: Telemetry) -> None:
    client = stackwire.AsyncClient("http://127.0.0.1:1/")
    traced = telemetry.otel.instrument(client)
    assert "otel.call" not in client.pipeline
    assert "otel.call" in traced.pipeline


def test_opentelemetry_is_not_imported_by_stackwire() -> None:
    code = (
        "import sys, stackwire\n"
        "stackwire.OpenTelemetry()\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')], 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
