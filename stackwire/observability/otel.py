"""`OpenTelemetry`: traces and metrics of every call, by the HTTP semantic conventions.

``OpenTelemetry(tracer_provider=None, meter_provider=None).instrument(client)``
returns a client of the same type (`AsyncClient` or `Client`, same session) with two
more middlewares:

- ``otel.call``, just above ``retry``: one INTERNAL span for the logical call
  (``stackwire {method}``), a child of the caller's current span. It carries what
  only the call knows: the number of attempts, the final status or ``error.type``,
  the last attempt's `Timings` (``stackwire.timings.*``, the body's time included),
  and one ``stackwire.retry`` event per retry decision (attempt, reason, delay and
  its source, ``retry-after`` or ``backoff``). The method, server and URL are on its
  CLIENT children.
- ``otel.request``, innermost (below ``redirects`` and ``auth``): one CLIENT span per
  physical request, so every retry and every redirect hop has its own, named
  ``{method}`` (``HTTP`` for a method the conventions do not know: `KNOWN_METHODS`)
  with ``http.request.method``, ``server.address``, ``server.port``,
  ``url.full`` (userinfo and secret query values shown as ``REDACTED``, as the
  conventions ask),
  ``http.response.status_code``, ``error.type`` (the status for >= 400, else the
  error's class), ``network.protocol.version``, and ``http.request.resend_count`` on
  every physical request of the call but the first; the connection `Timings` known
  at the headers (``stackwire.timings.*``). W3C trace context (``traceparent``, with
  this span's id) goes into each request through the global propagator, and the
  ``http.client.request.duration`` histogram (seconds, the semconv buckets and
  attributes, never ``url.full``) gets one value per physical request. Its context
  is marked with OpenTelemetry's "suppress HTTP instrumentation" key, so aiohttp's
  own instrumentation (``opentelemetry-instrumentation-aiohttp-client``), if active,
  adds no second CLIENT span.

Where they sit and why: the call span must see the whole call, retries and sleeps
included, so it is above ``retry``; the request spans must see what goes on the
wire, after redirects and auth chose the URL and the headers, so they are last.

Defaults: the global tracer and meter providers; ``opentelemetry`` (the
``stackwire[otel]`` extra, ``opentelemetry-api``) is imported by `instrument`, never
by ``import stackwire``.

What it costs: the SDK's own work dominates (CPU time with a no-op exporter, on the
2-core machine: about 26 µs a span without attributes, 2 µs an attribute, 8 µs a
histogram point plus 2 µs an attribute). So the attributes of a span go in one
mapping when it starts and one when it ends, none is repeated on the call span,
and with OpenTelemetry's default propagators (W3C trace context and baggage, not
replaced) ``traceparent`` is written from the span's context directly instead of
through the composite propagator (7 µs; the same header, and a global propagator
set by the application is used as configured). `benchmarks/observability.py`
compares the whole with ``opentelemetry-instrumentation-aiohttp-client``.

Retries and timeouts: a timed-out attempt ends its CLIENT span with ``error.type``
``stackwire.APITimeoutError``; the call span covers backoff sleeps and the deadline.
The spans end when the response headers are in (CLIENT) and when the call returns
(INTERNAL; for a stream, when it is handed back). A cancelled call ends both with
``error.type`` ``asyncio.exceptions.CancelledError``. Exception messages are not
recorded: a server's error text may echo what it was sent. A propagator that raises
never fails the call: that request goes without trace headers (one that writes a
header with CR/LF is an `InvalidRequestError`, as any bad header is).
"""

from __future__ import annotations

import os
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

from msgspec.structs import astuple, replace
from yarl import URL

from .._http.redaction import redact_url
from .._version import __version__
from ..errors import APIError, APIStatusError, InvalidRequestError
from ..middlewares.headers import check_header
from ..middlewares.retry import RETRY_LISTENER, RetryEvent
from ..pipeline.attempts import Timings
from ..pipeline.middleware import CallNext, Middleware
from ..pipeline.request import ExtensionKey, Request
from ..pipeline.response import Response

if TYPE_CHECKING:
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

__all__ = ["DURATION_BUCKETS", "OpenTelemetry"]

DURATION_BUCKETS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
)
"""The explicit bucket boundaries the semantic conventions advise for
``http.client.request.duration`` (seconds)."""

KNOWN_METHODS: frozenset[str] = frozenset(
    {"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}
)
"""The methods the semantic conventions know. Any other (``PURGE``, ``PROPFIND``) is
``_OTHER`` in ``http.request.method`` (the span and the histogram), with the method
itself in the span's ``http.request.method_original``; its spans are named ``HTTP``
(``stackwire HTTP`` for the call span), which keeps span names few. The environment
variable ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` (comma-separated, read by
`OpenTelemetry.instrument`) replaces this list, as the conventions provide."""


def known_methods() -> frozenset[str]:
    """`KNOWN_METHODS`, or the list ``OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS`` gives.

    >>> "GET" in known_methods() and "PURGE" not in known_methods()
    True
    """
    listed = os.environ.get("OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS")
    if not listed or not listed.strip():
        return KNOWN_METHODS
    return frozenset(name.strip() for name in listed.split(",") if name.strip())


# Physical requests of a call so far: set by ``otel.call``, counted by ``otel.request``.
_SENT: ExtensionKey[list[int]] = ExtensionKey("stackwire.otel.sent")


class _Instrumentable(Protocol):
    @property
    def pipeline(self) -> Any: ...

    def with_middleware(
        self,
        middleware: Middleware,
        *,
        name: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Self: ...


_C = TypeVar("_C", bound=_Instrumentable)


class OpenTelemetry:
    """Traces and metrics for a client; see the module docstring.

    ``tracer_provider`` / ``meter_provider``: where spans and measurements go (the
    global providers when ``None``).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider

    def instrument(self, client: _C) -> _C:
        """A client like ``client`` (same type, same session) whose calls are traced
        and measured; ``client`` itself is unchanged, and remains the one to close
        (the derived client borrows its session, like every derived client).

        Raises `InvalidRequestError` for a client whose stack has no ``retry``, and for
        one instrumented already (two call spans per call would nest)."""
        from opentelemetry import metrics, trace

        tracer = trace.get_tracer("stackwire", __version__, tracer_provider=self.tracer_provider)
        meter = metrics.get_meter("stackwire", __version__, meter_provider=self.meter_provider)
        duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS),
        )
        names = list(client.pipeline.names)
        if CallSpan.name in names or RequestSpan.name in names:
            raise InvalidRequestError(
                "this client is instrumented already (its stack has 'otel.call' and "
                "'otel.request'); instrument the client it was derived from instead"
            )
        if "retry" not in names:
            raise InvalidRequestError(
                "OpenTelemetry.instrument() needs a client whose stack has a 'retry' stage "
                "(the call span goes above it)"
            )
        methods = known_methods()
        derived = client.with_middleware(
            CallSpan(tracer, known=methods), name="otel.call", before="retry"
        )
        return derived.with_middleware(
            RequestSpan(tracer, duration, known=methods), name="otel.request", after=names[-1]
        )

    def __repr__(self) -> str:
        return (
            f"OpenTelemetry(tracer_provider={self.tracer_provider!r}, "
            f"meter_provider={self.meter_provider!r})"
        )


def _error_type(error: BaseException) -> str:
    kind = type(error)
    return f"{kind.__module__}.{kind.__qualname__}"


# The last URL shown as ``url.full``, and how: most calls of a client share URL objects.
_last_full: tuple[URL, str] | None = None


def _url_full(url: URL) -> str:
    """``url.full`` as the HTTP conventions have it: userinfo as ``REDACTED:REDACTED``
    and the value of a secret query parameter as ``REDACTED``; no fragment.

    >>> _url_full(URL("https://me:pw@api.test/v1/x?sig=abc&limit=2"))
    'https://REDACTED:REDACTED@api.test/v1/x?sig=REDACTED&limit=2'
    """
    global _last_full
    last = _last_full
    if last is not None and last[0] is url:
        return last[1]
    shown = redact_url(url, marker="REDACTED")
    if url.raw_user is not None or url.raw_password is not None:
        scheme, _, rest = shown.partition("://")
        shown = f"{scheme}://REDACTED:REDACTED@{rest}"
    _last_full = (url, shown)
    return shown


def _with_trace_headers(request: Request, carrier: dict[str, str]) -> Request:
    """``request`` with the propagator's headers set, each checked like a header of
    the caller's (a propagator of the application's may hand back anything): a bad
    one is an `InvalidRequestError` before any I/O."""
    for name, value in carrier.items():
        check_header(name, value)
    return request.with_headers(carrier)


def _known(attributes: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}


# The attribute names of the `Timings` fields, in their order (for `astuple`).
_TIMING_KEYS = tuple(f"stackwire.timings.{name}" for name in Timings.__struct_fields__)


def _add_timings(attributes: dict[str, Any], timings: Timings) -> None:
    """Put the measured `Timings` fields into ``attributes`` (``None`` ones left out)."""
    for key, value in zip(_TIMING_KEYS, astuple(timings), strict=True):
        if value is not None:
            attributes[key] = value


class CallSpan:
    """``otel.call``: the INTERNAL span of a logical call, above ``retry``."""

    name = "otel.call"

    def __init__(self, tracer: Tracer, *, known: frozenset[str] = KNOWN_METHODS) -> None:
        from opentelemetry import context, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.tracer = tracer
        # Looked up once: the spans are started and ended by hand, without the
        # context-manager layers of ``start_as_current_span`` (what this saves: 7-9 µs
        # of 37-41 µs a span with the SDK, measured on the 2-core CI machine).
        self._attach = context.attach
        self._detach = context.detach
        self._in_context = trace.set_span_in_context
        self._internal = SpanKind.INTERNAL
        self._status = Status
        self._error = StatusCode.ERROR
        self._names = {method: f"stackwire {method}" for method in known}

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        name = self._names.get(request.method, "stackwire HTTP")
        span = self.tracer.start_span(name, kind=self._internal)
        token = self._attach(self._in_context(span))

        def on_retry(event: RetryEvent) -> None:
            event_attributes: dict[str, Any] = {
                "stackwire.retry.attempt": event.attempt,
                "stackwire.retry.reason": event.reason,
                "stackwire.retry.delay": event.delay,
                "stackwire.retry.delay_source": event.delay_source,
            }
            if event.status_code is not None:
                event_attributes["http.response.status_code"] = event.status_code
            span.add_event("stackwire.retry", event_attributes)

        extensions = request.extensions
        extensions = (
            {**extensions, RETRY_LISTENER: on_retry, _SENT: [0]}
            if extensions
            else {RETRY_LISTENER: on_retry, _SENT: [0]}  # unpacking an empty view costs 2 µs
        )
        try:
            response = await call_next(replace(request, extensions=extensions))
        except BaseException as error:  # a cancelled call too, as its CLIENT span says
            ended: dict[str, Any] = {}
            if isinstance(error, APIError) and error.attempts:
                ended["stackwire.attempts"] = len(error.attempts)
                _add_timings(ended, error.attempts[-1].timings)
            if isinstance(error, APIStatusError):
                ended["http.response.status_code"] = error.status_code
                ended["error.type"] = str(error.status_code)
            else:
                ended["error.type"] = _error_type(error)
            span.set_attributes(ended)
            span.set_status(self._status(self._error, type(error).__name__))
            raise
        else:
            # The response is its call's last attempt's: its count and timings come
            # without making the attempt history (made only when someone reads it).
            ended = {
                "http.response.status_code": response.status_code,
                "stackwire.attempts": response.retries_taken + 1,
            }
            _add_timings(ended, response.timings)
            span.set_attributes(ended)
            return response
        finally:
            self._detach(token)
            span.end()


class RequestSpan:
    """``otel.request``: one CLIENT span per physical request, innermost."""

    name = "otel.request"

    def __init__(
        self, tracer: Tracer, duration: Histogram, *, known: frozenset[str] = KNOWN_METHODS
    ) -> None:
        from opentelemetry import context, propagate, trace
        from opentelemetry.baggage.propagation import W3CBaggagePropagator
        from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
        from opentelemetry.propagators.composite import CompositePropagator
        from opentelemetry.trace import SpanKind, Status, StatusCode
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.tracer = tracer
        self.duration = duration
        self._known = known
        self._attach = context.attach
        self._detach = context.detach
        self._set_value = context.set_value
        self._get_current = context.get_current
        self._in_context = trace.set_span_in_context
        self._inject = propagate.inject
        self._global_textmap = propagate.get_global_textmap
        self._suppress_key = _SUPPRESS_HTTP_INSTRUMENTATION_KEY
        self._client = SpanKind.CLIENT
        self._status = Status
        self._error = StatusCode.ERROR
        # OpenTelemetry's default propagators (not replaced, OTEL_PROPAGATORS unset or
        # "tracecontext,baggage"): while that object is the global one, traceparent is
        # written here from the span's context, the same header W3C's propagator
        # writes, and baggage goes through its own propagator.
        textmap = propagate.get_global_textmap()
        parts = getattr(textmap, "_propagators", None)
        self._default_textmap: object = None
        self._baggage: Any = None
        if (
            type(textmap) is CompositePropagator
            and isinstance(parts, list | tuple)
            and [type(part) for part in parts]
            == [TraceContextTextMapPropagator, W3CBaggagePropagator]
        ):
            self._default_textmap = textmap
            self._baggage = parts[1]

    def __call__(
        self, request: Request, call_next: CallNext, /
    ) -> Coroutine[Any, Any, Response[Any]]:
        return self._traced(request, call_next)

    def _carrier(self, span: Any, context: Any) -> dict[str, str]:
        """The trace context headers for a request of ``span``."""
        carrier: dict[str, str] = {}
        if self._global_textmap() is not self._default_textmap:
            self._inject(carrier, context)
            return carrier
        found = span.get_span_context()
        if found.is_valid:
            carrier["traceparent"] = (
                f"00-{found.trace_id:032x}-{found.span_id:016x}-{found.trace_flags:02x}"
            )
            if found.trace_state:
                carrier["tracestate"] = found.trace_state.to_header()
        self._baggage.inject(carrier, context)
        return carrier

    async def _traced(self, request: Request, call_next: CallNext) -> Response[Any]:
        method = name = request.method
        url = request.url
        host = url.host
        port = url.port
        other = method not in self._known
        if other:
            method, name = "_OTHER", "HTTP"
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "server.address": host,
            "server.port": port,
            "url.full": _url_full(url),
        }
        if other:
            attributes["http.request.method_original"] = request.method
        whole = host is not None and port is not None  # else: a relative URL, failing
        if not whole:
            attributes = _known(attributes)
        sent = request.extensions.get(_SENT)
        if sent is not None:
            resend_count = sent[0]
            sent[0] += 1
        else:  # no call span above: count the attempts only
            resend_count = request.attempt
        if resend_count:
            attributes["http.request.resend_count"] = resend_count
        started = time.perf_counter()
        current = self._get_current()
        span = self.tracer.start_span(name, current, kind=self._client, attributes=attributes)
        # One context for both: this span is current (for traceparent), and aiohttp's
        # own instrumentation is told to stay out of this request.
        context = self._in_context(span, self._set_value(self._suppress_key, True, current))
        token = self._attach(context)
        try:
            try:
                carrier = self._carrier(span, context)
            except Exception:
                # A propagator of the application's that fails: the request goes
                # without trace headers, as OpenTelemetry has it (telemetry never
                # fails a call), and the span still ends.
                carrier = {}
            if carrier:
                request = _with_trace_headers(request, carrier)
            response = await call_next(request)
        except BaseException as error:
            kind = _error_type(error)
            span.set_attributes({"error.type": kind})
            span.set_status(self._status(self._error, type(error).__name__))
            failed = {
                "http.request.method": method,
                "server.address": host,
                "server.port": port,
                "error.type": kind,
            }
            self.duration.record(time.perf_counter() - started, failed if whole else _known(failed))
            raise
        else:
            status = response.status_code
            protocol = response.http_version.removeprefix("HTTP/")
            ended: dict[str, Any] = {
                "http.response.status_code": status,
                "network.protocol.version": protocol,
            }
            metric_attributes: dict[str, Any] = {
                "http.request.method": method,
                "server.address": host,
                "server.port": port,
                "http.response.status_code": status,
                "network.protocol.version": protocol,
            }
            if status >= 400:
                ended["error.type"] = metric_attributes["error.type"] = str(status)
                span.set_status(self._status(self._error))
            _add_timings(ended, response.timings)
            span.set_attributes(ended)
            if not whole:
                metric_attributes = _known(metric_attributes)
            self.duration.record(time.perf_counter() - started, metric_attributes)
            return response
        finally:
            self._detach(token)
            span.end()
