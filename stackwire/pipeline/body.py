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

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.started:
            raise RuntimeError("a streaming request body can be sent only once")
        self.started = True
        chunk: object = None
        source = aiter(self._source)
        try:
            async for chunk in source:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise TypeError(f"content= must yield bytes, got {type(chunk).__name__}")
                yield bytes(chunk)
        except Exception as exc:  # (not a cancellation, nor aiohttp closing it)
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


Body = bytes | StreamingBody


def is_replayable(body: Body | None) -> bool:
    """Whether ``body`` can be sent again by a retry or a redirect."""
    return not (isinstance(body, StreamingBody) and body.started)


def body_error(body: Body | None) -> InvalidRequestError | None:
    """The caller's mistake that made sending ``body`` fail, if that is what did: its
    iterable raised, or gave something other than bytes (never retried: sending it
    again would not help, and it cannot be sent again anyway)."""
    return body.error if isinstance(body, StreamingBody) else None
