"""`AsyncStream[T]`: typed events from a streamed response.

A stream is made by the ``decode`` middleware for ``stream=True`` calls, after it has
checked the status. It reads the body as it arrives:

- ``text/event-stream``: Server-Sent Events parsed by `SSEDecoder`; with
  ``cast_to=ServerSentEvent`` it yields the raw events, otherwise each event's
  ``data`` decoded (JSON) into ``T``. An event named ``error`` raises `StreamError`
  with its decoded data as ``body``.
- ``application/x-ndjson``, ``application/jsonl`` (JSON Lines): one JSON value a
  line, decoded into ``T``; a last line without a newline counts.

With ``stream_end_event="message_stop"`` (a keyword of the verbs), a stream that
ends before an event of that name raises `StreamError`.

The connection goes back to the pool when the stream is read to the end, and is
closed on an error, on ``close()``, on leaving ``async with`` and when the consuming
task is cancelled. A stream dropped unclosed warns with ``ResourceWarning``.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

import msgspec

from ..errors import APIResponseValidationError, StreamError
from .decoding import decoder_for
from .sse import ServerSentEvent, SSEDecoder

if TYPE_CHECKING:
    from ..pipeline.response import Response

__all__ = ["AsyncStream", "make_stream"]

_T = TypeVar("_T")

JSON_LINES_TYPES = frozenset(
    {"application/x-ndjson", "application/jsonl", "application/json-lines"}
)


class AsyncStream(Generic[_T]):
    """Typed events of one streamed response; see the module docstring.

    >>> async def show(client):  # doctest: +SKIP
    ...     async with await client.get("/events", cast_to=Delta, stream=True) as stream:
    ...         async for delta in stream:
    ...             print(delta.text)
    """

    __slots__ = ("__weakref__", "_events", "_finished", "_iterating", "response")

    def __init__(
        self,
        response: Response[Any],
        *,
        cast_to: Any,
        strict: bool = False,
        max_event_bytes: int | None = 16 * 2**20,
        end_event: str | None = None,
    ) -> None:
        self.response = response
        self._finished = False
        self._iterating = False
        content_type = response.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type in JSON_LINES_TYPES:
            self._events = self._json_lines(cast_to, strict, max_event_bytes)
        else:
            self._events = self._sse(cast_to, strict, max_event_bytes, end_event)

    async def _sse(
        self, cast_to: Any, strict: bool, max_event_bytes: int | None, end_event: str | None
    ) -> AsyncGenerator[_T, None]:
        decoder = SSEDecoder(max_event_bytes=max_event_bytes)
        raw_events = cast_to is ServerSentEvent
        decode = None if raw_events else decoder_for(cast_to, strict=strict)
        seen_end = end_event is None
        request = self.response.request
        async for chunk in self.response.iter_raw():
            for event in decoder.feed(chunk):
                if event.event == "error":
                    raise StreamError(
                        f"the stream sent an error event: {event.data[:1000]}",
                        request=request,
                        body=_json_or_text(event.data),
                    )
                if event.event == end_event:
                    seen_end = True
                if raw_events:
                    yield cast("_T", event)
                    continue
                assert decode is not None
                if not event.data:
                    continue
                yield _decode_item(decode, event.data.encode(), cast_to, request)
        if not seen_end:
            raise StreamError(
                f"the stream ended before its {end_event!r} event (connection cut short?)",
                request=request,
            )

    async def _json_lines(
        self, cast_to: Any, strict: bool, max_line_bytes: int | None
    ) -> AsyncGenerator[_T, None]:
        decode = decoder_for(cast_to, strict=strict)
        request = self.response.request
        pending: list[bytes] = []
        pending_size = 0
        async for chunk in self.response.iter_raw():
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                if end < 0:
                    break
                line = chunk[start:end]
                if pending:
                    line = b"".join((*pending, line))
                    pending.clear()
                    pending_size = 0
                start = end + 1
                if line.strip():
                    yield _decode_item(decode, line, cast_to, request)
            if start < len(chunk):
                pending.append(chunk[start:])
                pending_size += len(chunk) - start
                if max_line_bytes is not None and pending_size > max_line_bytes:
                    from ..errors import ResponseTooLargeError

                    raise ResponseTooLargeError(
                        f"a JSON line passed max_event_bytes={max_line_bytes} before it ended",
                        limit=max_line_bytes,
                        request=request,
                    )
        last = b"".join(pending)
        if last.strip():
            yield _decode_item(decode, last, cast_to, request)

    async def __anext__(self) -> _T:
        self._iterating = True
        try:
            return await self._events.__anext__()
        except StopAsyncIteration:
            self._finished = True
            raise
        except BaseException:
            self._finished = True
            self.response.close()
            raise

    def __aiter__(self) -> Self:
        return self

    async def close(self) -> None:
        """Stop reading and close the connection (a no-op once finished)."""
        self._finished = True
        await self._events.aclose()
        self.response.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __del__(self) -> None:
        if not getattr(self, "_finished", True) and not self.response.is_closed:
            warnings.warn(
                f"unclosed stream for {self.response.request.method} {self.response.request.url}: "
                "iterate it to the end, use `async with`, or `await stream.close()`",
                ResourceWarning,
                stacklevel=2,
                source=self,
            )

    def __repr__(self) -> str:
        return f"<AsyncStream {self.response.request.method} {self.response.request.url}>"


def _json_or_text(data: str) -> object:
    try:
        return msgspec.json.decode(data)
    except msgspec.DecodeError:
        return data


def _decode_item(decode: Any, data: bytes, cast_to: Any, request: Any) -> Any:
    try:
        return decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        name = getattr(cast_to, "__name__", repr(cast_to))
        raise APIResponseValidationError(
            f"a streamed item does not match {name}: {exc}", request=request, body=data[:1024]
        ) from exc


def make_stream(
    response: Response[Any],
    *,
    cast_to: Any,
    strict: bool = False,
    max_event_bytes: int | None = 16 * 2**20,
    end_event: str | None = None,
) -> AsyncStream[Any]:
    """The stream for a ``stream=True`` call whose status was fine."""
    return AsyncStream(
        response,
        cast_to=cast_to,
        strict=strict,
        max_event_bytes=max_event_bytes,
        end_event=end_event,
    )
