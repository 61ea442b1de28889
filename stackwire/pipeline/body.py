"""Request bodies: bytes, or a one-shot async iterable of bytes.

Bytes can be sent any number of times. An async iterable can be read once; wrapped in
a `StreamingBody`, it remembers whether sending has started, so that the retry and
redirect middlewares never re-send it empty: once ``started`` is true, a failed
attempt is final.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

__all__ = ["Body", "StreamingBody", "is_replayable"]


class StreamingBody:
    """An async iterable of bytes sent as a chunked request body, at most once.

    >>> async def chunks():
    ...     yield b"hello "
    ...     yield b"world"
    >>> body = StreamingBody(chunks())
    >>> body.started
    False
    """

    __slots__ = ("_source", "started")

    def __init__(self, source: AsyncIterable[bytes]) -> None:
        self._source = source
        self.started = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.started:
            raise RuntimeError("a streaming request body can be sent only once")
        self.started = True
        async for chunk in self._source:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"a streaming body must yield bytes, got {type(chunk).__name__}")
            yield bytes(chunk)

    def __repr__(self) -> str:
        return f"StreamingBody(started={self.started})"


Body = bytes | StreamingBody


def is_replayable(body: Body | None) -> bool:
    """Whether ``body`` can be sent again by a retry or a redirect."""
    return not (isinstance(body, StreamingBody) and body.started)
