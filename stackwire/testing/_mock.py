"""`MockResponse` and `MockTransport`: answer attempts from a function, with no socket.

A `MockTransport` is a `Transport` (``pipeline/transport.py``): the whole stack above
it (headers, query, timeout, retry, decode, redirects, auth, the client's middlewares)
runs as over a socket. Its responses are real `Response` objects built with
``content=`` or ``stream=``, so size caps, ``Content-Encoding`` decoding, streams and
their limits apply to them exactly as to a socket's. Its faults are the very errors the
default transport raises for the same failure (built by `map_transport_error` from the
aiohttp exception that failure raises), so they are retried the same way.
"""

from __future__ import annotations

import asyncio
import errno
import http
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, TypeAlias

import aiohttp
import msgspec
from aiohttp.http_exceptions import BadStatusLine
from multidict import CIMultiDict, CIMultiDictProxy

from .._http.query import encode_params
from .._types import NOT_GIVEN, NotGiven
from ..errors import ClientClosedError, InvalidRequestError
from ..middlewares.headers import check_header
from ..models.sse import ServerSentEvent
from ..pipeline.body import StreamingBody, body_error
from ..pipeline.clocks import Clocks
from ..pipeline.options import DEFAULT_TIMEOUT, Timeout
from ..pipeline.request import Request
from ..pipeline.response import Response
from ..pipeline.transport import PoolStats
from ..transports import map_transport_error, userinfo_as_basic_auth

__all__ = ["Handler", "MockHeaders", "MockResponse", "MockTransport", "final_request"]

FaultKind = Literal["connection_reset", "timeout", "malformed"]

MockHeaders: TypeAlias = Mapping[str, str | float] | Iterable[tuple[str, str | float]] | None
"""The headers of a `MockResponse`: a mapping or pairs; a number is sent as its text."""

_Answer: TypeAlias = "MockResponse | Response[Any]"

Handler: TypeAlias = Callable[
    [Request],
    "MockResponse | Response[Any] | Awaitable[MockResponse | Response[Any]]",
]
"""What `MockTransport` calls for each attempt: a `MockResponse` (or a `Response`),
or an awaitable of one."""


def _checked_headers(headers: MockHeaders) -> CIMultiDict[str]:
    """``headers`` as a server could send them: names that are tokens, values without
    CR, LF or NUL; a number is written as its decimal text (``{"Retry-After": 2}``)."""
    merged: CIMultiDict[str] = CIMultiDict()
    if headers is None:
        return merged
    if isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise InvalidRequestError(
            f"headers must be a mapping or (name, value) pairs, not {type(headers).__name__}"
        )
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise InvalidRequestError(f"headers must be (name, value) pairs, got {pair!r}"[:200])
        name, value = pair
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        elif not isinstance(value, str):
            raise InvalidRequestError(
                f"response header {name!r} must be a str, not {type(value).__name__}"
            )
        check_header(name, value)
        merged.add(name, value)
    return merged


def _items(keyword: str, items: Iterable[Any], kind: str) -> list[Any]:
    """The items of ``sse=``, ``jsonl=`` or ``chunks=``: an iterable, not one str or
    bytes (whose characters or byte values would each become an item)."""
    if isinstance(items, (str, bytes, bytearray, memoryview)) or not isinstance(items, Iterable):
        raise InvalidRequestError(
            f"{keyword}= takes an iterable of {kind} (a list), not {type(items).__name__}"
        )
    return list(items)


def _encode_json(value: Any, keyword: str) -> bytes:
    try:
        return msgspec.json.encode(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidRequestError(f"{keyword}= must be JSON-encodable: {exc}") from exc


def _chunk(chunk: object) -> bytes:
    if not isinstance(chunk, (bytes, bytearray, memoryview)):
        raise InvalidRequestError(f"chunks= takes bytes items, not {type(chunk).__name__}")
    return bytes(chunk)


def _encode_sse(event: ServerSentEvent | str) -> bytes:
    if isinstance(event, str):
        event = ServerSentEvent(data=event)
    if not isinstance(event, ServerSentEvent):
        raise InvalidRequestError(
            f"sse= takes ServerSentEvent or str items, not {type(event).__name__}"
        )
    for field, value in (("event", event.event), ("id", event.id)):
        if value is not None and ("\n" in value or "\r" in value):
            # A line end would end the field and start another (an injected one).
            raise InvalidRequestError(f"an SSE {field} cannot hold a CR or LF: {value!r}")
    lines: list[str] = []
    if event.event != "message":
        lines.append(f"event: {event.event}")
    if event.id is not None:
        lines.append(f"id: {event.id}")
    if event.retry is not None:
        lines.append(f"retry: {event.retry}")
    # Every line end of the data (CR and CRLF too) is one line of it, as the stream
    # format splits lines; each arrives as a LF.
    data = event.data.replace("\r\n", "\n").replace("\r", "\n")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()


class _Chunks:
    """An async iterator over prepared chunks (one loop turn between two, as chunks
    arriving on a socket), ending with ``failure`` if there is one, or with
    `ClientClosedError` once ``transport`` has closed (as the default transport's
    bodies do when their client closes). A plain iterator, not a generator: dropping
    it early leaves nothing to finalize."""

    __slots__ = ("_chunks", "_failure", "_index", "_transport")

    def __init__(
        self,
        chunks: list[bytes],
        failure: BaseException | None,
        transport: MockTransport | None = None,
    ) -> None:
        self._chunks = chunks
        self._failure = failure
        self._index = 0
        self._transport = transport

    def __aiter__(self) -> _Chunks:
        return self

    async def __anext__(self) -> bytes:
        index = self._index
        if index:
            await asyncio.sleep(0)
        transport = self._transport
        if transport is not None and transport.closed and index < len(self._chunks):
            raise ClientClosedError("the client was closed while this body was being read")
        if index < len(self._chunks):
            self._index = index + 1
            return self._chunks[index]
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure
        raise StopAsyncIteration


class MockResponse:
    """A canned answer to one attempt (reusable: each use builds a fresh `Response`).

    The body is one of ``json=`` (any value msgspec encodes: dicts, lists, Structs;
    sets ``Content-Type: application/json``), ``content=`` bytes, ``sse=`` (an
    iterable of `ServerSentEvent` or ``str``, one event's data each; sets
    ``text/event-stream``), ``jsonl=`` (an iterable of JSON values, one a line; sets
    ``application/x-ndjson``) or ``chunks=`` (raw byte chunks, sent one by one). A
    content type in ``headers=`` wins. ``sse=``, ``jsonl=`` and ``chunks=`` are streamed
    chunk by chunk (an event or a line a chunk), so a client sees them arrive as from a
    socket.

    The faults `connection_reset`, `timeout` and `malformed` fail the attempt with the
    error the default transport raises for that failure.

    >>> MockResponse(201, json={"id": 1})
    MockResponse(201, application/json, 8 bytes)
    """

    __slots__ = ("_chunks", "_content", "_fault", "_headers", "_missing", "_reason", "status")

    def __init__(
        self,
        status: int = 200,
        *,
        json: Any = NOT_GIVEN,
        content: bytes | None = b"",
        headers: MockHeaders = None,
        sse: Iterable[ServerSentEvent | str] | None = None,
        jsonl: Iterable[Any] | None = None,
        chunks: Iterable[bytes] | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise InvalidRequestError(f"status must be an int from 100 to 599, not {status!r}")
        if content is None:
            content = b""
        elif not isinstance(content, (bytes, bytearray, memoryview)):
            raise InvalidRequestError(f"content must be bytes, not {type(content).__name__}")
        given = [
            name
            for name, value in (
                ("json", json is not NOT_GIVEN),
                ("content", bool(content)),
                ("sse", sse is not None),
                ("jsonl", jsonl is not None),
                ("chunks", chunks is not None),
            )
            if value
        ]
        if len(given) > 1:
            raise InvalidRequestError(
                f"give one body, not {' and '.join(f'{name}=' for name in given)}"
            )
        merged = _checked_headers(headers)
        content_type: str | None = None
        self._content: bytes | None = None
        self._chunks: list[bytes] | None = None
        if not isinstance(json, NotGiven):
            self._content = _encode_json(json, "json")
            content_type = "application/json"
        elif sse is not None:
            events = _items("sse", sse, "ServerSentEvent or str events")
            self._chunks = [_encode_sse(event) for event in events]
            content_type = "text/event-stream"
        elif jsonl is not None:
            values = _items("jsonl", jsonl, "JSON values")
            self._chunks = [_encode_json(value, "jsonl") + b"\n" for value in values]
            content_type = "application/x-ndjson"
        elif chunks is not None:
            self._chunks = [_chunk(chunk) for chunk in _items("chunks", chunks, "bytes")]
        else:
            self._content = bytes(content)
        if content_type is not None and "Content-Type" not in merged:
            merged["Content-Type"] = content_type
        announced = _announced_length(merged)
        size = len(self._content) if self._content is not None else None
        if self._chunks is not None:
            size = sum(len(chunk) for chunk in self._chunks)
        if announced is not None and size and announced != size:
            # A socket would cut the body short (or drop the rest): said here, at once.
            raise InvalidRequestError(
                f"Content-Length {announced} does not match the {size} bytes of the body "
                "(leave it out; a body cut short is MockResponse.connection_reset(after=...))"
            )
        if self._content is not None and announced is None:
            merged["Content-Length"] = str(len(self._content))
        self.status = status
        self._reason = _reason(status)
        self._headers = CIMultiDictProxy(merged)
        self._fault: FaultKind | None = None
        # An empty body announced as longer (a HEAD answer's Content-Length): to any
        # other request, a body that ends too soon, as on a socket.
        self._missing = announced if not size and announced else 0

    # -- faults ----------------------------------------------------------------------

    @classmethod
    def _faulty(cls, kind: FaultKind) -> MockResponse:
        mock = cls()
        mock._fault = kind
        return mock

    @classmethod
    def connection_reset(
        cls,
        *,
        after: Iterable[bytes] | None = None,
        headers: MockHeaders = None,
    ) -> MockResponse:
        """The peer resets the connection: `APIConnectionError`, retried like any
        connection error. With ``after=`` chunks, a ``200`` (with ``headers``) arrives
        and its body is cut short after them: the error comes while reading, inside
        the attempt for a buffered body, from the iteration for a stream."""
        if after is None:
            return cls._faulty("connection_reset")
        given = _checked_headers(headers)
        announced = given.popall("Content-Length", [])  # longer than ``after``: fine here
        mock = cls(chunks=after, headers=given)
        if announced:
            merged = CIMultiDict(mock._headers)
            merged.extend(("Content-Length", value) for value in announced)
            mock._headers = CIMultiDictProxy(merged)
        mock._fault = "connection_reset"
        return mock

    @classmethod
    def timeout(cls) -> MockResponse:
        """The attempt times out, at once (no waiting): `APITimeoutError`."""
        return cls._faulty("timeout")

    @classmethod
    def malformed(cls) -> MockResponse:
        """The server answers with something that is not HTTP: `APIConnectionError`
        (never a fake HTTP status), retried like any connection error."""
        return cls._faulty("malformed")

    @property
    def fault(self) -> FaultKind | None:
        """The fault this answer injects, or ``None`` for a plain response."""
        return self._fault

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._headers

    # -- building --------------------------------------------------------------------

    def build(self, request: Request) -> Response[Any]:
        """A fresh `Response` to ``request`` (or the fault's error, raised).

        As over a socket: a 1xx status is no final answer (the default transport's
        malformed-response error); a ``HEAD`` request and a 204 or 304 get no body."""
        return self._build(request, None)

    def _build(self, request: Request, transport: MockTransport | None) -> Response[Any]:
        """`build`, for ``transport``: a streamed body read after it closed fails."""
        fault = self._fault
        if fault is not None and (fault != "connection_reset" or self._chunks is None):
            cause = fault_exception(fault, request)
            raise map_transport_error(cause, request) from cause
        status = self.status
        reason = self._reason
        if status < 200:
            cause = aiohttp.ClientResponseError(
                _request_info(request),
                (),
                status=status,
                message=f"status {status} is not a final HTTP status, 200 to 599",
            )
            raise map_transport_error(cause, request) from cause
        if request.method == "HEAD" or status in _NO_BODY_STATUSES:
            return Response(request, status, headers=self._headers, content=b"", reason=reason)
        if self._chunks is None and not self._missing:
            return Response(
                request, status, headers=self._headers, content=self._content, reason=reason
            )
        failure: BaseException | None = None
        if fault is not None or self._missing:
            if fault is not None:
                cause = aiohttp.ClientPayloadError(
                    "Response payload is not completed: the connection was reset"
                )
                cause.__cause__ = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
            else:
                cause = aiohttp.ClientPayloadError(
                    "Response payload is not completed: not enough data to satisfy "
                    f"content length header (received 0 of {self._missing} bytes)"
                )
            failure = map_transport_error(cause, request)
            failure.__cause__ = cause
        return Response(
            request,
            self.status,
            headers=self._headers,
            stream=_Chunks(self._chunks or [], failure, transport),
            reason=reason,
        )

    def __repr__(self) -> str:
        if self._fault is not None and self._chunks is None:
            return f"MockResponse.{self._fault}()"
        kind = self._headers.get("Content-Type", "no content type")
        if self._chunks is not None:
            size = f"{len(self._chunks)} chunks"
        else:
            size = f"{len(self._content or b'')} bytes"
        return f"MockResponse({self.status}, {kind}, {size})"


_NO_BODY_STATUSES = frozenset({204, 304})


def _announced_length(headers: CIMultiDict[str]) -> int | None:
    """The ``Content-Length`` of ``headers`` (``None`` without one); a value that is no
    length, or repeated with another value, is refused, as an HTTP parser refuses it."""
    values = set(headers.getall("Content-Length", ()))
    if not values:
        return None
    value = values.pop()
    if values or not (value.isascii() and value.isdigit()):
        raise InvalidRequestError(
            f"Content-Length must be one decimal number of bytes, got "
            f"{headers.getall('Content-Length')!r}"
        )
    return int(value)


def _request_info(request: Request) -> aiohttp.RequestInfo:
    """What aiohttp's errors say about the request (its credentials redacted)."""
    return aiohttp.RequestInfo(
        request.url,
        request.method,
        CIMultiDictProxy(CIMultiDict(request.redacted_headers())),
        request.url,
    )


def _reason(status: int) -> str | None:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return None


def fault_exception(kind: FaultKind, request: Request) -> BaseException:
    """The exception aiohttp (or the OS) raises for this failure of ``request``; the
    default transport maps it with `map_transport_error`."""
    if kind == "timeout":
        return TimeoutError()
    if kind == "connection_reset":
        reset = aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer")
        reset.__cause__ = ConnectionResetError(errno.ECONNRESET, "Connection reset by peer")
        return reset
    if kind == "malformed":
        malformed = aiohttp.ClientResponseError(
            _request_info(request),
            (),
            status=400,
            message="Bad status line: not an HTTP response (injected fault)",
        )
        malformed.__cause__ = BadStatusLine("not an HTTP response (injected fault)")
        return malformed
    raise InvalidRequestError(f"unknown fault kind {kind!r}")


async def final_request(request: Request) -> Request:
    """``request`` as a transport sends it: the query encoded into the URL, URL
    userinfo sent as ``Authorization: Basic`` (as the default transport sends it, the
    URL without it), and a streamed body read into bytes (which marks it started, so
    it is never re-sent). A streamed body that fails (it raises, yields something
    other than bytes, or gives another length than its own ``Content-Length``) is the
    caller's `InvalidRequestError`, as over a socket."""
    if request.query:
        request = request.replace(
            url=request.url.extend_query(encode_params(request.query)), query=None
        )
    url = request.url
    if url.raw_user is not None or url.raw_password is not None:
        url, headers = userinfo_as_basic_auth(url, request.headers, request.omit_headers)
        request = request.replace(url=url, headers=headers)
    body = request.body
    if isinstance(body, StreamingBody):
        length = request.headers.get("Content-Length")  # (the caller's own, unchunked)
        chunks = body if length is None else body.sized(int(length))
        try:
            content = b"".join([chunk async for chunk in chunks])
        except Exception as exc:
            mistake = body_error(body)
            if mistake is None:
                raise
            raise mistake from exc
        request = request.replace(body=content)
    return request


async def _within_limits(answer: Awaitable[_Answer], request: Request) -> _Answer:
    """Await an async handler's answer within the attempt's limits, as a socket
    transport waits for the headers: the ``total`` timeout and what is left of the
    deadline; past them, the `APITimeoutError` the default transport raises."""
    timeout = request.options.timeout
    if isinstance(timeout, NotGiven):
        timeout = DEFAULT_TIMEOUT
    elif not isinstance(timeout, Timeout):
        timeout = Timeout.coerce(timeout)
    limit = None if timeout is None else timeout.total
    if request.deadline_at is not None:
        left = request.deadline_at - Clocks.of(request).monotonic()
        limit = left if limit is None else min(limit, left)
    if limit is None or not math.isfinite(limit):
        return await answer
    timer = asyncio.timeout(max(limit, 0.0))
    try:
        async with timer:
            return await answer
    except TimeoutError as exc:
        if not timer.expired():
            raise  # the handler's own TimeoutError: as it is
        raise map_transport_error(exc, request) from exc


class MockTransport:
    """A `Transport` that answers every attempt with ``handler(request)``; no socket.

    The handler gets the attempt's `Request` as a socket transport would send it (see
    `final_request`): ``url`` with the encoded query, the final ``headers``
    (``X-Retry-Count``, ``Idempotency-Key``, auth ...), ``body`` as bytes. It returns a
    `MockResponse` (or a `Response` of its own), or an awaitable of one; anything it
    raises propagates as it is (an ``AssertionError`` of a `Router` is never retried:
    the retry middleware retries only `APIError`). An awaitable answer is awaited
    within the attempt's ``total`` timeout and what is left of the call's deadline,
    as a socket transport waits for the headers: a handler slower than that fails the
    attempt with `APITimeoutError`, retried like a slow server.

    ``requests`` lists every attempt seen. ``pool_stats().in_use`` counts the responses
    it answered with that are not finished with yet (body unread, stream open), as a
    socket's pool counts their connections, so a test over the kit sees a leak too;
    ``idle`` is always 0 (there is no pool).
    ``close()`` is idempotent, and ``send`` after it raises `ClientClosedError`, as
    does reading on a streamed body it answered with.
    """

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise InvalidRequestError(
                f"MockTransport takes a handler function or a Router, not {type(handler).__name__}"
            )
        self.handler = handler
        self.requests: list[Request] = []
        self._closed = False
        self._in_use = 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, request: Request, /) -> Response[Any]:
        if self._closed:
            raise ClientClosedError("the client is closed; create a new one")
        url = request.url
        if (
            request.query
            or request.body is not None
            or url.raw_user is not None
            or url.raw_password is not None
        ):
            request = await final_request(request)
        self.requests.append(request)
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await _within_limits(answer, request)
        if isinstance(answer, MockResponse):
            response = answer._build(request, self)
        elif isinstance(answer, Response):
            response = answer
        else:
            raise TypeError(
                f"a MockTransport handler must return a MockResponse (or a Response), "
                f"not {type(answer).__name__}"
            )
        # In use until its body is read, fails or it is closed, as a connection is.
        self._in_use += 1
        response.when_done(self._finished_with)
        return response

    def _finished_with(self) -> None:
        self._in_use -= 1

    async def close(self) -> None:
        self._closed = True

    def pool_stats(self) -> PoolStats:
        return PoolStats(in_use=self._in_use, idle=0)

    def __repr__(self) -> str:
        return f"MockTransport({self.handler!r})"
