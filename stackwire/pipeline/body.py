"""Request bodies: bytes, or a one-shot async iterable of bytes.

Bytes can be sent any number of times. An async iterable can be read once; wrapped in
a `StreamingBody`, it remembers whether sending has started, so that the retry and
redirect middlewares never re-send it empty: once ``started`` is true, a failed
attempt is final.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from ..errors import InvalidRequestError

__all__ = ["Body", "StreamingBody", "body_error", "is_replayable"]


class StreamingBody:
    """An async iterable of bytes sent as a chunked request body, at most once.

    >>> async def chunks():
    ...     yield b"hello "
    ...     yield b"world"
    >>> body = StreamingBody(chunks())
    >>> body.started
    False
    """

    __slots__ = ("_source", "error", "started")

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        self.started = False
        # What went wrong with the caller's iterable while it was sent (it raised, or
        # gave something other than bytes): aiohttp reports it only as a failure to
        # send, so the transport raises this instead (`body_error`).
        self.error: InvalidRequestError | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks(None)

    def sized(self, length: int) -> AsyncIterator[bytes]:
        """The chunks of a body sent with its own ``Content-Length: length`` (unchunked):
        a stream that gives fewer or more bytes fails like one that raises (`error`),
        before the connection is left out of step. Short, the server would wait for
        the rest and then read the next request on the connection as this body's end;
        long, the bytes past ``length`` would be dropped without a word."""
        return self._chunks(length)

    async def _chunks(self, length: int | None) -> AsyncIterator[bytes]:
        if self.started:
            raise RuntimeError("a streaming request body can be sent only once")
        self.started = True
        chunk: object = None
        sent = 0
        source = aiter(self._source)
        try:
            async for chunk in source:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError(f"content= must yield bytes, got {type(chunk).__name__}")
                if length is not None:
                    sent += len(chunk)
                    if sent > length:
                        raise _WrongLength(
                            f"content= gave more than the {length} bytes of its header "
                            f"'Content-Length: {length}'"
                        )
                yield bytes(chunk)
            if length is not None and sent != length:
                raise _WrongLength(
                    f"content= gave {sent} bytes but its header says 'Content-Length: {length}'"
                )
        except Exception as exc:  # (not a cancellation, nor aiohttp closing it)
            if isinstance(exc, _WrongLength):
                self.error = InvalidRequestError(str(exc))
                raise
            if isinstance(chunk, (bytes, bytearray, memoryview, type(None))):
                message = f"the content= iterable raised {type(exc).__name__}: {exc}"
            else:
                message = str(exc)
            self.error = InvalidRequestError(message)
            self.error.__cause__ = exc
            raise
        finally:
            # Stopped early (a bad chunk, the connection lost): close the caller's
            # generator here rather than leave it to the garbage collector's task.
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    def __repr__(self) -> str:
        return f"StreamingBody(started={self.started})"


class _WrongLength(Exception):
    """A stream gave more or fewer bytes than its ``Content-Length`` (`StreamingBody.sized`)."""


Body = bytes | StreamingBody


def is_replayable(body: Body | None) -> bool:
    """Whether ``body`` can be sent again by a retry or a redirect."""
    return not (isinstance(body, StreamingBody) and body.started)


def body_error(body: Body | None) -> InvalidRequestError | None:
    """The caller's mistake that made sending ``body`` fail, if that is what did: its
    iterable raised, or gave something other than bytes (never retried: sending it
    again would not help, and it cannot be sent again anyway)."""
    return body.error if isinstance(body, StreamingBody) else None
