"""`Response` over an ``aiohttp.ClientResponse``: the default transport's body hooks.

`Response` reads its body through a few private hooks (see ``pipeline/response.py``);
this subclass points them at aiohttp's connection, so that the whole of ``Response``
(caps, decoding, timeouts, streaming, the decoded value) is shared with any other
transport. It adds no per-response cost over wrapping aiohttp directly: the slots
are filled in one place, without the base class's argument checks.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import aiohttp

from .._types import NOT_GIVEN
from ..errors import StackwireError
from ..pipeline._expiry import Expiry
from ..pipeline.body import StreamingBody, body_error
from ..pipeline.request import Request
from ..pipeline.response import _JOIN_BYTES, Response
from ._aiohttp_errors import closed_mid_call, map_transport_error
from ._protocol import ClosedMidBodyError

__all__ = ["AiohttpResponse"]


class _Sender(Protocol):
    """The transport a response came from (`AiohttpTransport`)."""

    @property
    def closed_under_call(self) -> bool: ...


class AiohttpResponse(Response[Any]):
    """A `Response` whose body is read from ``raw``, aiohttp's response."""

    __slots__ = ("_sender",)

    raw: aiohttp.ClientResponse

    def __init__(
        self,
        raw: aiohttp.ClientResponse,
        request: Request,
        started_at: float,
        expiry: Expiry | None,
        sender: _Sender,
    ) -> None:
        # Every slot of `Response` this class reads, as its __init__ sets them (a test
        # checks that none is missed); ``_reason``, ``_http_version``, ``_source`` and
        # ``_closed`` stay unset: the properties and hooks below read ``raw`` instead.
        self.raw = raw
        self.request = request
        self.retries_taken = 0
        self.status_code = raw.status
        self._headers = raw.headers
        self._coded = False
        self._attempts = ()
        self.timing_record = None
        self._started_at = started_at
        self._finished_at = None
        self._content = None
        self._consumed = False
        self.parsed = NOT_GIVEN
        self._cast_to = NOT_GIVEN
        self._strict = False
        self._max_bytes = None
        self._expiry = expiry
        self._on_done = None
        self._body_error = None
        self._sender = sender

    @property
    def reason(self) -> str:
        return self.raw.reason or ""

    @property
    def http_version(self) -> str:
        version = self.raw.version
        return f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1"

    @property
    def is_closed(self) -> bool:
        return self.raw.closed

    def read_now(self, max_bytes: int | None = None) -> bytes | None:
        # `Response.read_now` with this transport's `_take_arrived` in line (so it needs
        # no `_take_arrived` of its own): the path of nearly every call, one method call
        # less (measured: ~300 instructions).
        content = self._content
        if content is not None:
            return content if max_bytes is None or len(content) <= max_bytes else None
        expiry = self._expiry
        raw = self.raw
        stream = raw.content
        size = stream.total_bytes
        if (
            self._consumed
            or size > _JOIN_BYTES
            or (max_bytes is not None and size > max_bytes)
            or (expiry is not None and expiry.expired)
            or "Content-Encoding" in self._headers
            or not stream.is_eof()
            or stream.exception() is not None
            # A streamed body may still be sending (aiohttp defers the release of the
            # connection until its writer is done, so a bytes body is fine).
            or isinstance(self.request.body, StreamingBody)
        ):
            return None
        content = stream.read_nowait()
        if expiry is not None:
            expiry.done()
        self._content = content
        self._finished_at = time.monotonic()
        raw.release()
        if raw._connection is not None:  # held behind a cancelled body writer: `_release`
            raw.close()
        if self._on_done is not None:
            self._body_done()
        return content

    def _next_raw(self) -> Any:  # an awaitable of bytes, without a coroutine of our own
        return self.raw.content.readany()

    async def _read_whole(self, max_bytes: int | None) -> bytes:
        length = self.raw.content_length
        if length is not None and length <= _JOIN_BYTES:
            # A small body (an API's JSON) in one piece: aiohttp's own read.
            return await self.raw.read()
        return await self._read_capped(max_bytes, None)

    def _body_arrived(self) -> bool:
        return self.raw.content.is_eof()

    def _arrived_before(self, failure: Exception) -> bytes:
        # Once its body has failed, aiohttp's reader raises at every read and never
        # hands out the bytes it still holds (they arrived whole before the failure).
        # Not for a client closed meanwhile: its streams stop at once.
        content = self.raw.content
        if isinstance(failure, ClosedMidBodyError) or content.exception() is not failure:
            return b""
        return content._read_nowait(-1)

    def _release(self) -> None:
        """Give the connection of a response whose body was read back to the pool.

        A server may answer before it has read the request body (uvicorn's 413 for a
        large upload, a refusal of ``Expect: 100-continue``). aiohttp then cancels the
        body's writer and keeps the connection until the writer has stopped, loop turns
        later, and closes it (a body half sent leaves it unusable): the call would
        return with the connection still counted in use. It is closed now instead, the
        same outcome without the wait. (`read_now` does the same in line.)
        """
        raw = self.raw
        raw.release()
        if raw._connection is not None:  # the release waits for the cancelled writer
            raw.close()

    def _abort(self) -> None:
        self.raw.close()

    def _body_failure(self, exc: BaseException) -> StackwireError | None:
        if (
            self._sender.closed_under_call
            and isinstance(exc, Exception)
            and not isinstance(exc, StackwireError)
        ):
            # (The transport's `ClosedMidBodyError`, or aiohttp's "Connection closed."
            # as a bare RuntimeError, or a disconnect.)
            return closed_mid_call(self.request)
        if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
            mistake = body_error(self.request.body)  # the caller's content= failed
            if mistake is not None:
                return mistake
            if isinstance(exc, TimeoutError):  # (the deadline's, if it cut the read)
                return self._timeout_error()
            return map_transport_error(exc, self.request)
        return super()._body_failure(exc)
