"""Blocking views of a response and of a stream, for the synchronous `Client`.

- `SyncResponse[T]` wraps a `Response[T]`: the status line and headers are read
  directly; ``read()``, ``parse()``, ``iter_bytes()``, ``iter_text()``,
  ``iter_lines()`` and ``close()`` run on the client's event loop and block until done.
- `Stream[T]` wraps an `AsyncStream[T]`: ``for item in stream`` fetches each item on
  the loop. The connection goes back to the pool when the stream is read to the end,
  and is closed on an error, on ``close()``, on leaving ``with`` and when the waiting
  thread is interrupted (``KeyboardInterrupt``).

Both keep their client alive while they are. One dropped unclosed warns with
``ResourceWarning`` and is then closed on the client's own loop.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator
from datetime import timedelta
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast

from multidict import CIMultiDictProxy
from yarl import URL

from .._http.urls import shown_url
from .._types import NOT_GIVEN, NotGiven
from ..errors import ClientClosedError
from ..pipeline.attempts import Attempt, Timings
from ..pipeline.request import Request
from ..pipeline.response import Response
from ..pipeline.stream import AsyncStream
from ._loop_thread import LoopThread, in_running_loop

__all__ = ["Stream", "SyncResponse", "split_lines"]

_T = TypeVar("_T")
_V = TypeVar("_V")

_DONE: Any = object()
_LINE_END = re.compile(r"\r\n|\r|\n")


async def _next_or_done(iterator: AsyncIterator[_T]) -> _T:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _DONE  # type: ignore[no-any-return]


def _close_quietly(runtime: LoopThread, what: str, close: Any, *, finalizing: bool = False) -> None:
    """Close on the loop and wait where this thread may block; else close soon.

    On the loop thread itself the close is only scheduled; so it is inside another
    running loop when ``finalizing`` (a generator's cleanup can run anywhere, in the
    middle of that loop's work). A stopped loop has closed everything.
    """
    if runtime.stopped or not runtime.started:
        return
    if runtime.in_loop_thread() or (finalizing and in_running_loop()):
        runtime.schedule_close(_Closer(close))
        return
    with contextlib.suppress(ClientClosedError):  # closed meanwhile: nothing left to do
        runtime.run(close, what=what)


class _Closer:
    """Adapts a coroutine function to what `LoopThread.schedule_close` takes."""

    __slots__ = ("_close",)

    def __init__(self, close: Any) -> None:
        self._close = close

    def close(self) -> Any:
        return self._close()


class SyncResponse(Generic[_T]):
    """A response from the API, with blocking body methods.

    - ``status_code``, ``reason``, ``headers``, ``request`` (the final request), ``url``,
      ``http_version``, ``elapsed``, ``retries_taken``, ``attempts``, ``timings``,
      ``request_id``;
    - ``content`` (after ``read()``, which is done already for a non-streamed call),
      ``text``, ``json()``, ``parse()`` (the body decoded into the call's ``cast_to``);
    - streamed (``with client.with_streaming_response.get(...) as response``):
      ``iter_bytes()``, ``iter_lines()``, or ``read()``; leaving ``with`` closes it.

    ``async_response`` is the wrapped `Response`, as middlewares saw it.
    """

    __slots__ = ("__weakref__", "_keepalive", "_runtime", "async_response")

    def __init__(self, response: Response[_T], runtime: LoopThread, keepalive: object) -> None:
        self.async_response = response
        self._runtime = runtime
        self._keepalive = keepalive

    # -- the status line and headers ---------------------------------------------------

    @property
    def status_code(self) -> int:
        return self.async_response.status_code

    @property
    def reason(self) -> str:
        return self.async_response.reason

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.async_response.headers

    @property
    def request(self) -> Request:
        return self.async_response.request

    @property
    def url(self) -> URL:
        return self.async_response.url

    @property
    def http_version(self) -> str:
        return self.async_response.http_version

    @property
    def elapsed(self) -> timedelta:
        return self.async_response.elapsed

    @property
    def retries_taken(self) -> int:
        return self.async_response.retries_taken

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt of the call (`Attempt`), this one last."""
        return self.async_response.attempts

    @property
    def timings(self) -> Timings:
        """Where this response's time went (`Timings`)."""
        return self.async_response.timings

    @property
    def request_id(self) -> str | None:
        return self.async_response.request_id

    @property
    def is_closed(self) -> bool:
        return self.async_response.is_closed

    # -- the body ----------------------------------------------------------------------

    @property
    def content(self) -> bytes:
        """The body (after ``read()``; a non-streamed call has read it already)."""
        return self.async_response.content

    @property
    def text(self) -> str:
        """The body decoded as text (the declared charset, else UTF-8)."""
        return self.async_response.text

    def json(self) -> Any:
        """The body as JSON values (dicts, lists, ...)."""
        return self.async_response.json()

    def read(self, *, max_bytes: int | NotGiven | None = NOT_GIVEN) -> bytes:
        """Read the whole body (blocks); see `Response.read`."""
        response = self.async_response
        return self._runtime.run(lambda: response.read(max_bytes=max_bytes), what="read()")

    def parse(self) -> _T:
        """The body decoded into the call's ``cast_to`` (blocks; decoded once)."""
        value = self._runtime.run(self.async_response.parse, what="parse()")
        if value is self.async_response:  # no cast_to: the response itself
            return cast("_T", self)
        if isinstance(value, AsyncStream):  # ``stream=True``: its blocking twin
            stream = Stream(value, self._runtime, self._keepalive)
            self._runtime.track(stream)
            return cast("_T", stream)
        return value

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """The body as it arrives (decompressed): chunks of any size, or, with
        ``chunk_size``, chunks of exactly that many bytes but for the last (see
        `Response.iter_bytes`).

        The connection is released at the end of the body and closed if iteration
        stops early or fails.
        """
        return self._drive(self.async_response.iter_bytes(chunk_size), "iter_bytes()")

    def iter_text(self) -> Iterator[str]:
        """The body as text, decoded as it arrives with the declared charset (else
        UTF-8; undecodable bytes become U+FFFD); see `Response.iter_text`."""
        return self._drive(self.async_response.iter_text(), "iter_text()")

    def iter_lines(self) -> Iterator[str]:
        """The body as text lines, without their line endings (CRLF, LF or CR)."""
        texts = cast("Generator[str, None, None]", self.iter_text())
        try:
            yield from split_lines(texts)
        finally:
            texts.close()

    def _drive(self, pieces: AsyncIterator[_V], what: str) -> Iterator[_V]:
        """The items of an async iterator of the response's body, each fetched on the
        loop; one left early is closed there (which closes the connection)."""
        runtime = self._runtime
        finished = False
        try:
            while True:
                piece = runtime.run(lambda: _next_or_done(pieces), what=what)
                if piece is _DONE:
                    finished = True
                    return
                yield piece
        finally:
            if not finished:
                aclose = cast("AsyncGenerator[_V, None]", pieces).aclose
                _close_quietly(runtime, what, aclose, finalizing=True)

    def close(self) -> None:
        """Close the response: release the connection if the body was read, else close it."""
        _close_quietly(self._runtime, "close()", self.async_response.aclose)

    async def close_on_loop(self) -> None:
        """`close`, on the client's loop (when the client closes with this still open)."""
        await self.async_response.aclose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        request = self.async_response.request
        return f"<SyncResponse [{self.status_code}] {request.method} {shown_url(request.url)}>"


class Stream(Generic[_T]):
    """Typed events of one streamed response, read with ``for``; blocking twin of
    `AsyncStream` (same formats, errors and end-of-stream checks).

    >>> with client.get("/events", cast_to=Delta, stream=True) as stream:  # doctest: +SKIP
    ...     for delta in stream:
    ...         print(delta.text)
    """

    __slots__ = ("__weakref__", "_keepalive", "_runtime", "async_stream")

    def __init__(self, stream: AsyncStream[_T], runtime: LoopThread, keepalive: object) -> None:
        self.async_stream = stream
        self._runtime = runtime
        self._keepalive = keepalive

    @property
    def response(self) -> SyncResponse[Any]:
        """The response being streamed (status, headers, request id)."""
        return SyncResponse(self.async_stream.response, self._runtime, self._keepalive)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> _T:
        stream = self.async_stream
        item = self._runtime.run(lambda: _next_or_done(stream), what="iterating a Stream")
        if item is _DONE:
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop reading and close the connection (a no-op once finished)."""
        stream = self.async_stream
        if self._runtime.stopped:
            # The client's loop is gone and its connections with it.
            stream._finished = True
            return
        _close_quietly(self._runtime, "Stream.close()", stream.close)

    async def close_on_loop(self) -> None:
        """`close`, on the client's loop (when the client closes with this still open)."""
        await self.async_stream.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        stream = getattr(self, "async_stream", None)
        if stream is None or stream._finished or stream.response.is_closed:
            return
        if self._runtime.stopped:
            stream._finished = True  # the client closed its connections with its loop
            return
        request = stream.response.request
        try:
            warnings.warn(
                f"unclosed stream for {request.method} {shown_url(request.url)}: "
                "iterate it to the end, "
                "use `with`, or call `stream.close()`",
                ResourceWarning,
                stacklevel=2,
                # No source=: a recorded warning would keep the client and its loop alive.
            )
        finally:
            # Closed on the loop it belongs to, without waiting (even where the warning
            # is an error, ``-W error``); this also keeps the async stream from warning
            # a second time.
            self._runtime.schedule_close(stream)

    def __repr__(self) -> str:
        request = self.async_stream.response.request
        return f"<Stream {request.method} {shown_url(request.url)}>"


def split_lines(texts: Iterable[str]) -> Iterator[str]:
    """Lines of the concatenated ``texts``, split at CRLF, LF or CR, endings dropped.

    Only these three end a line (not U+2028 and friends, unlike ``str.splitlines``);
    a CR at the end of one piece ends its line at once, and an LF starting the next
    piece is then the rest of that CRLF. A last line without an ending counts.

    >>> list(split_lines(["a\\r", "\\nb\\rc", "\\n", "d\\u2028e"]))
    ['a', 'b', 'c', 'd\\u2028e']
    """
    parts: list[str] = []  # the line not finished yet
    after_cr = False
    for text in texts:
        if not text:
            continue
        if after_cr and text.startswith("\n"):
            text = text[1:]
        after_cr = text.endswith("\r")
        start = 0
        for match in _LINE_END.finditer(text):
            parts.append(text[start : match.start()])
            yield "".join(parts)
            parts.clear()
            start = match.end()
        if start < len(text):
            parts.append(text[start:])
    if parts:
        yield "".join(parts)
