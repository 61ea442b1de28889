"""`AsyncStream[T]`: typed events from a streamed response.

A stream is made by the ``decode`` middleware for ``stream=True`` calls, after it has
checked the status (an error status raises the usual `APIStatusError`, and is
retried like any call, before there is a stream). It reads the body as it arrives,
in one of two formats, chosen by ``stream_format="sse" | "jsonl"`` (a keyword of the
verbs) or else by the ``Content-Type``; any other content type raises
`APIResponseValidationError` naming it (never an empty stream):

- ``text/event-stream``: Server-Sent Events parsed by
  `SSEDecoder`. With ``cast_to=ServerSentEvent`` (or no ``cast_to``) it yields the
  raw events, otherwise
  each event's ``data`` decoded (JSON) into ``T``; an event without data is skipped.
  An event named ``error`` raises `StreamError` with its decoded data as ``body``.
  An event whose data is ``[DONE]`` (the OpenAI convention), or the event named by
  ``stream_end_event``, ends the stream cleanly and is not decoded into ``T`` (a
  terminal event has a shape of its own); raw events show it, then end.
- ``application/x-ndjson``, ``application/jsonl``, ``application/json-lines``
  (JSON Lines): one JSON value a line, decoded into ``T`` (plain JSON values without
  ``cast_to``); blank lines are skipped, CRLF line ends are fine, a last line
  without a line end counts and a byte order mark at the start is dropped.
  ``stream_end_event`` does not apply (no events).

An event (or a JSON line) longer than ``max_event_bytes`` raises
`ResponseTooLargeError`; an item that does not match ``T`` raises
`APIResponseValidationError`. With ``stream_end_event="message_stop"`` (a keyword
of the verbs), a stream that ends before an event of that name raises `StreamError`:
the connection was cut short, the answer is incomplete (when the connection visibly
broke, an `IncompleteStreamError`, also an `APIConnectionError`).

Timeouts: ``Timeout.read`` bounds each gap between two chunks, not the stream as a
whole; ``Timeout.total`` bounds the wait for the headers, and each gap too when
``read`` is ``None``. A longer gap raises `APITimeoutError` mid-iteration (never
retried: items were already handed out).

The connection goes back to the pool when the stream is read to the end. It is
closed (not reused) on an error, on ``close()``, on leaving ``async with`` and when
the consuming task is cancelled, unless the whole body had already arrived. A stream
dropped while still open warns with ``ResourceWarning`` and is closed on its own
event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

import msgspec

from .._http.urls import shown_url
from .._types import NotGiven
from ..errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    IncompleteStreamError,
    ResponseTooLargeError,
    StreamError,
)
from ..models.decoding import decoder_for
from ..models.sse import DEFAULT_MAX_EVENT_BYTES, ServerSentEvent, SSEDecoder
from .response import BodyReader, carry_call_history

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

__all__ = ["JSON_LINES_TYPES", "SSE_TYPE", "AsyncStream", "make_stream"]

_T = TypeVar("_T")

JSON_LINES_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/json-lines"}
)
"""Content types read as JSON Lines."""

SSE_TYPE = "text/event-stream"
"""The content type read as Server-Sent Events; any other type, without
``stream_format=``, raises `APIResponseValidationError`."""

_DONE = "[DONE]"
REST_OF_BODY_WAIT = 0.05
"""Seconds a stream that ended at its terminal event (``[DONE]``, ``stream_end_event``)
waits for the rest of its body, so that its connection can be reused. The rest is
usually only the end of the chunked framing, sent a moment later (an ASGI server sends
it once the app returns: micro- to milliseconds); a server that keeps the connection
open after the event costs the caller this wait, once, and the connection."""

_SKIP: Any = object()
_PREVIEW_BYTES = 1024


class AsyncStream(Generic[_T]):
    """Typed items of one streamed response; see the module docstring.

    ``async for`` it (once), ``async with`` it, or ``await close()`` it; ``response``
    is the `Response` being streamed (status, headers, request id).

    >>> async def show(client):  # doctest: +SKIP
    ...     async with await client.get("/events", cast_to=Delta, stream=True) as stream:
    ...         async for delta in stream:
    ...             print(delta.text)
    """

    __slots__ = (
        "__weakref__",
        "_batched",
        "_cast_to",
        "_convert",
        "_decode",
        "_end_event",
        "_ended",
        "_finished",
        "_index",
        "_items",
        "_lines",
        "_loop",
        "_reader",
        "_ready",
        "_seen_end",
        "_sse",
        "_stop_names",
        "response",
    )

    def __init__(
        self,
        response: Response[Any],
        *,
        cast_to: Any,
        strict: bool = False,
        max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES,
        end_event: str | None = None,
        stream_format: str | None = None,
    ) -> None:
        response.check_decodable()  # a body in an unknown coding: an error naming it
        self.response = response
        self._finished = False
        self._ended = False
        self._items: list[Any] = []
        self._index = 0
        # Items decoded a chunk at a time by `_parse_typed`, last first: handed out
        # before anything else.
        self._ready: list[Any] = []
        self._batched = False  # `_ready` was filled from the last chunk
        self._cast_to = cast_to
        self._end_event = end_event
        self._seen_end = end_event is None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._reader = BodyReader(response)  # the stream owns the body from now on
        content_type = response.headers.get("Content-Type", "").partition(";")[0]
        self._sse: SSEDecoder | None = None
        self._lines: _LineBuffer | None = None
        self._decode: Callable[[bytes], Any] | None = None
        self._convert: Callable[[Any], Any]
        given = not isinstance(cast_to, NotGiven)
        content_type = content_type.strip().lower()
        if stream_format is None:
            if content_type == SSE_TYPE:
                stream_format = "sse"
            elif content_type in JSON_LINES_TYPES:
                stream_format = "jsonl"
            else:
                raise APIResponseValidationError(
                    f"cannot stream a body of Content-Type {content_type or '(none)'!r}: "
                    f"expected {SSE_TYPE!r} or one of {sorted(JSON_LINES_TYPES)}; pass "
                    'stream_format="sse" or "jsonl" if the API mislabels its stream',
                    request=response.request,
                    status_code=response.status_code,
                )
        if stream_format == "jsonl":
            self._seen_end = True  # JSON Lines has no events, so no terminal one
            self._lines = _LineBuffer(max_event_bytes, response.request)
            self._decode = decoder_for(cast_to if given else Any, strict=strict)
            self._convert = self._convert_line
        else:
            self._sse = SSEDecoder(max_event_bytes=max_event_bytes)
            if cast_to is ServerSentEvent or not given:
                self._convert = self._convert_raw_event
            else:
                self._decode = decoder_for(cast_to, strict=strict)
                self._convert = self._convert_event
                # Event types that `_convert_event` treats apart (not decoded into T).
                self._stop_names = (b"error", (end_event or "error").encode())

    # -- iteration -----------------------------------------------------------------

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        ready = self._ready
        if ready:
            return ready.pop()  # type: ignore[no-any-return]
        if self._finished:
            raise StopAsyncIteration
        try:
            while True:
                items = self._items
                while self._index < len(items):
                    item = items[self._index]
                    self._index += 1
                    value = self._convert(item)
                    if value is not _SKIP:
                        return value  # type: ignore[no-any-return]
                if self._ended:
                    break
                if items or self._batched:
                    # A chunk can complete some items and then pass a size cap: the
                    # parser hands out the items first and raises on its next call.
                    # Raise now, rather than after waiting for more of the body.
                    self._items = []
                    self._batched = False
                    self._parse(b"")
                chunk = await self._reader.next_chunk()
                if self._finished:  # closed by another task while this one waited
                    raise StopAsyncIteration
                self._index = 0
                if chunk:
                    self._items = self._parse(chunk)
                    if self._ready:
                        return self._ready.pop()  # type: ignore[no-any-return]
                else:
                    self._ended = True
                    self._items = self._flush()
            if not self._reader.done:
                await self._after_terminal_event()
            if not self._seen_end:
                raise StreamError(
                    f"the stream ended before its {self._end_event!r} event; the connection "
                    "was probably cut short and the answer is incomplete",
                    request=self.response.request,
                )
        except BaseException as error:
            if self._finished and isinstance(error, Exception):
                # `close()` from another task, while this one waited for the body: the
                # caller stopped the stream, its connection did not break.
                raise StopAsyncIteration from None
            self._stop()
            if (
                not self._seen_end
                and isinstance(error, APIConnectionError)
                and not isinstance(error, APITimeoutError | StreamError)
            ):
                incomplete = self._incomplete(error)
                carry_call_history(incomplete, self.response)
                raise incomplete from error
            carry_call_history(error, self.response)
            raise
        self._finished = True
        raise StopAsyncIteration

    def _incomplete(self, error: APIConnectionError) -> IncompleteStreamError:
        """The error for a connection that broke before the terminal event (a
        timeout stays an `APITimeoutError`)."""
        return IncompleteStreamError(
            f"the connection broke before the stream's {self._end_event!r} event; the "
            f"answer is incomplete ({error})",
            request=error.request or self.response.request,
        )

    async def _after_terminal_event(self) -> None:
        """The stream ended at a terminal event before its body did: read the rest of
        the body so the connection goes back to the pool, if it has arrived or arrives
        within `REST_OF_BODY_WAIT`; else close the connection (waiting longer could
        hang on a server that keeps it open). The answer is complete either way, so a
        rest that breaks only closes the connection."""
        reader = self._reader
        try:
            if reader.rest_arrived():
                while await reader.next_chunk():
                    pass
                return
            async with asyncio.timeout(REST_OF_BODY_WAIT):
                while await reader.next_chunk():
                    pass
        except Exception:  # (TimeoutError included; never a CancelledError)
            self._stop()

    def _parse(self, chunk: bytes) -> list[Any]:
        if self._sse is not None:
            if self._decode is not None:
                return self._parse_typed(chunk)
            return self._sse.feed(chunk)
        assert self._lines is not None
        return self._lines.feed(chunk)

    def _parse_typed(self, chunk: bytes) -> list[Any]:
        """Typed events: a chunk of nothing but events of T is decoded in one go into
        `_ready` (no event objects, no text: msgspec reads the data's bytes). Any
        other chunk (an error or terminal event, ``[DONE]``, an event without data,
        an item that does not decode) gives its events, one by one, to
        `_convert_event`, which raises at the item it should."""
        assert self._sse is not None
        assert self._decode is not None
        names, datas = self._sse.feed_data(chunk)
        if not datas:
            return []
        stop = self._stop_names
        if (
            stop[0] not in names
            and stop[1] not in names
            and b"[DONE]" not in datas
            and b"" not in datas
        ):
            try:
                values = [*map(self._decode, datas)]
            except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
                pass
            else:
                values.reverse()
                self._ready = values
                self._batched = True
                return []
        return [
            ServerSentEvent("message" if name is None else name.decode(), data.decode())
            for name, data in zip(names, datas, strict=True)
        ]

    def _flush(self) -> list[Any]:
        if self._sse is not None:
            return self._sse.flush()
        assert self._lines is not None
        return self._lines.flush()

    def _convert_raw_event(self, event: ServerSentEvent) -> Any:
        name = event.event
        if name == "error":
            self._check_event(event)
        if name == self._end_event or event.data == _DONE:
            # A raw stream shows its terminal event, then ends there: nothing after it
            # is handed out, and a server that keeps the connection open after it is
            # waited for only `REST_OF_BODY_WAIT`.
            self._seen_end = True
            self._end_stream()
        return event

    def _convert_event(self, event: ServerSentEvent) -> Any:
        name = event.event
        if name == "error":
            self._check_event(event)
        data = event.data
        if name == self._end_event or data == _DONE:
            # A terminal event has a shape of its own (or is `[DONE]`): not a `T`.
            self._seen_end = True
            self._end_stream()
            return _SKIP
        if not data:
            return _SKIP
        return self._decode_item(data.encode())

    def _end_stream(self) -> None:
        """Stop at a terminal event: nothing after it is handed out."""
        self._index = len(self._items)
        self._ended = True

    def _check_event(self, event: ServerSentEvent) -> None:
        name = event.event
        if name == "error":
            raise StreamError(
                f"the stream sent an error event: {event.data[:_PREVIEW_BYTES]}",
                request=self.response.request,
                body=_json_or_text(event.data),
            )
        if name == self._end_event:
            self._seen_end = True

    def _convert_line(self, line: bytes) -> Any:
        if not line or line.isspace():
            return _SKIP
        return self._decode_item(line)

    def _decode_item(self, data: bytes) -> Any:
        assert self._decode is not None
        try:
            return self._decode(data)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            cast_to = self._cast_to
            if isinstance(cast_to, NotGiven):
                problem = "is not valid JSON"
            else:
                problem = f"does not match {getattr(cast_to, '__name__', repr(cast_to))}"
            raise APIResponseValidationError(
                f"a streamed item {problem}: {exc}",
                request=self.response.request,
                body=bytes(data[:_PREVIEW_BYTES]),
                status_code=self.response.status_code,
            ) from exc

    # -- closing -------------------------------------------------------------------

    def _stop(self) -> None:
        self._finished = True
        self._items = []
        self._ready = []
        self._reader.close()
        self.response.close()

    async def close(self) -> None:
        """Stop reading and close the connection (unless the whole body had already
        arrived, when it goes back to the pool). Safe to call more than once. A task
        waiting for the next item in another task's ``async for`` then stops cleanly."""
        self._stop()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def __del__(self) -> None:
        if getattr(self, "_finished", True) or self.response.is_closed:
            return
        request = self.response.request
        try:
            warnings.warn(
                f"unclosed stream for {request.method} {shown_url(request.url)}: "
                "iterate it to the end, "
                "use `async with`, or `await stream.close()`",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )
        finally:  # closed even where the warning is an error (``-W error``)
            self._close_unclosed()

    def _close_unclosed(self) -> None:
        self._finished = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # a closed loop has closed its connections
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._stop()
        else:  # never closed from another loop or thread: on its own loop, soon
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._stop)

    def __repr__(self) -> str:
        request = self.response.request
        return f"<AsyncStream {request.method} {shown_url(request.url)}>"


class _LineBuffer:
    """Splits a JSON Lines body, fed in chunks, into its lines (bytes, LF removed;
    a CR before it stays: it is JSON whitespace). A byte order mark starting the
    body is dropped, as a JSON body's is.

    A line longer than the cap raises `ResponseTooLargeError`, once the lines before
    it have been handed out (the next `feed` or `flush` raises).
    """

    __slots__ = ("_at_start", "_cap", "_failure", "_pending", "_pending_size", "_request")

    def __init__(self, cap: int | None, request: Request) -> None:
        self._cap = cap
        self._request = request
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._failure: ResponseTooLargeError | None = None
        self._at_start = True  # no line has ended yet: the first may start with a BOM

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        lines = chunk.split(b"\n")
        rest = lines.pop()
        pending = self._pending
        if lines and pending:
            pending.append(lines[0])
            lines[0] = b"".join(pending)
            pending.clear()
            self._pending_size = 0
        if lines and self._at_start:
            self._at_start = False
            lines[0] = _without_bom(lines[0])
        cap = self._cap
        if cap is None:
            if rest:
                pending.append(rest)
            return lines
        if lines and max(map(len, lines)) > cap:
            first_long = next(i for i, line in enumerate(lines) if len(line) > cap)
            return self._fail(lines[:first_long], cap)
        if rest:
            pending.append(rest)
            self._pending_size += len(rest)
            if self._pending_size > cap:
                return self._fail(lines, cap)
        return lines

    def flush(self) -> list[bytes]:
        if self._failure is not None:
            raise self._failure
        if not self._pending:
            return []
        last = b"".join(self._pending)
        self._pending.clear()
        self._pending_size = 0
        if self._at_start:
            self._at_start = False
            last = _without_bom(last)
        return [last]

    def _fail(self, complete: list[bytes], cap: int) -> list[bytes]:
        self._pending.clear()
        self._failure = ResponseTooLargeError(
            f"a JSON line passed max_event_bytes={cap} before it ended; raise "
            "max_event_bytes (or pass None) if such lines are expected",
            limit=cap,
            request=self._request,
        )
        if not complete:
            raise self._failure
        return complete


def _without_bom(line: bytes) -> bytes:
    return line[3:] if line.startswith(b"\xef\xbb\xbf") else line


def _json_or_text(data: str) -> object:
    try:
        return msgspec.json.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return data


def make_stream(
    response: Response[Any],
    *,
    cast_to: Any,
    strict: bool = False,
    max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES,
    end_event: str | None = None,
    stream_format: str | None = None,
) -> AsyncStream[Any]:
    """The stream for a ``stream=True`` call whose status was fine."""
    return AsyncStream(
        response,
        cast_to=cast_to,
        strict=strict,
        max_event_bytes=max_event_bytes,
        end_event=end_event,
        stream_format=stream_format,
    )
