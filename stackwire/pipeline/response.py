"""`Response`: one HTTP response, wrapping aiohttp's.

The transport hands back a `Response` as soon as the headers are in; the body is
still on the socket. Whoever receives a response owns it: read it (which releases
the connection to the pool), or close it. ``decode`` reads it inside the attempt, so
that a connection dropped mid-body is an attempt failure the retry middleware sees.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, get_origin

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from .._types import NOT_GIVEN
from ..errors import ResponseTooLargeError, StackwireError
from ._aiohttp_errors import map_transport_error
from .request import Request

if TYPE_CHECKING:
    from ..models.decoding import Decode

__all__ = ["Response"]

_T = TypeVar("_T")

REQUEST_ID_HEADERS = ("request-id", "x-request-id")


class ResponseConsumedError(StackwireError, RuntimeError):
    """The body of a streamed response was already iterated, so it cannot be read."""


class Response(Generic[_T]):
    """A response from the API.

    - ``status_code``, ``headers``, ``request`` (the final request), ``url``,
      ``http_version``, ``elapsed`` (to the last body byte, or to now while reading);
    - ``retries_taken``: how many retries the call made before this response;
    - ``request_id``: the ``request-id`` / ``x-request-id`` header;
    - ``content`` (after ``await read()``), ``text``, ``json()``, ``await parse()``.
    """

    __slots__ = (
        "_cast_to",
        "_consumed",
        "_content",
        "_finished_at",
        "_parsed",
        "_started_at",
        "_strict",
        "raw",
        "request",
        "retries_taken",
    )

    raw: aiohttp.ClientResponse
    request: Request
    retries_taken: int

    def __init__(
        self,
        raw: aiohttp.ClientResponse,
        request: Request,
        *,
        started_at: float,
        cast_to: Any = NOT_GIVEN,
        strict: bool = False,
    ) -> None:
        self.raw = raw
        self.request = request
        self.retries_taken = 0
        self._started_at = started_at
        self._finished_at: float | None = None
        self._content: bytes | None = None
        self._consumed = False
        self._parsed: Any = _UNPARSED
        self._cast_to = cast_to
        self._strict = strict

    # -- the status line and headers -------------------------------------------------

    @property
    def status_code(self) -> int:
        return self.raw.status

    @property
    def reason(self) -> str:
        return self.raw.reason or ""

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self.raw.headers

    @property
    def url(self) -> URL:
        return self.request.url

    @property
    def http_version(self) -> str:
        version = self.raw.version
        return f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1"

    @property
    def request_id(self) -> str | None:
        headers = self.raw.headers
        for name in REQUEST_ID_HEADERS:
            value = headers.get(name)
            if value is not None:
                return value
        return None

    @property
    def elapsed(self) -> timedelta:
        end = self._finished_at if self._finished_at is not None else time.monotonic()
        return timedelta(seconds=end - self._started_at)

    @property
    def is_closed(self) -> bool:
        return self.raw.closed

    # -- the body --------------------------------------------------------------------

    async def read(self, *, max_bytes: int | None = None) -> bytes:
        """Read the whole body (once; later calls return the same bytes).

        A body longer than ``max_bytes`` (after decompression) raises
        `ResponseTooLargeError` and closes the connection; a ``Content-Length`` above
        the cap fails before reading. A connection lost mid-body raises
        `APIConnectionError`. Either way the connection is closed, not reused.
        """
        if self._content is not None:
            return self._content
        if self._consumed:
            raise ResponseConsumedError(
                "the body was already consumed by iterating the stream; it cannot be read again"
            )
        raw = self.raw
        try:
            if max_bytes is not None:
                length = raw.content_length
                encoded = "Content-Encoding" in raw.headers
                if length is not None and length > max_bytes and not encoded:
                    raise self._too_large(max_bytes)
                if length is None or encoded:
                    content = await self._read_capped(max_bytes)
                else:
                    content = await raw.read()
            else:
                content = await raw.read()
        except StackwireError:
            raw.close()
            raise
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raw.close()
            raise map_transport_error(exc, self.request) from exc
        except BaseException:
            raw.close()
            raise
        self._content = content
        self._finished_at = time.monotonic()
        raw.release()
        return content

    async def _read_capped(self, max_bytes: int) -> bytes:
        chunks: list[bytes] = []
        size = 0
        stream = self.raw.content
        while True:
            chunk = await stream.readany()
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise self._too_large(max_bytes)
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _too_large(self, limit: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"Response body exceeds max_response_bytes={limit}; "
            "raise max_response_bytes (or pass None) to accept larger bodies",
            limit=limit,
            request=self.request,
        )

    @property
    def content(self) -> bytes:
        """The body; only after ``await read()``."""
        if self._content is None:
            raise ResponseConsumedError("the body has not been read: call `await response.read()`")
        return self._content

    @property
    def text(self) -> str:
        """The body decoded as text (the declared charset, else UTF-8), after ``read()``."""
        charset = self.raw.charset or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON values (dicts, lists, ...), after ``read()``."""
        from ..models.decoding import decode_body

        return decode_body(self.content, Any, status_code=self.status_code)

    async def parse(self) -> _T:
        """The body decoded into the call's ``cast_to`` (decoded once, then cached)."""
        if self._parsed is _UNPARSED:
            content = await self.read()
            self._parsed = self._decode(content)
        return cast("_T", self._parsed)

    def _decode(self, content: bytes) -> Any:
        from ..models.decoding import decode_body

        cast_to = self._cast_to
        if cast_to is NOT_GIVEN or cast_to is Response or get_origin(cast_to) is Response:
            return self

        try:
            return decode_body(content, cast_to, strict=self._strict, status_code=self.status_code)
        except StackwireError as exc:
            if getattr(exc, "request", None) is None:
                exc.request = self.request  # type: ignore[attr-defined]
            raise

    def _set_parsed(self, value: Any) -> None:
        self._parsed = value

    def _configure(self, cast_to: Any, strict: bool) -> None:
        """Set what ``parse()`` decodes into (done by the ``decode`` middleware)."""
        self._cast_to = cast_to
        self._strict = strict

    async def iter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (decompressed), in chunks of any size.

        The connection is released at the end of the body and closed if iteration
        stops early or fails.
        """
        if self._content is not None:
            yield self._content
            return
        if self._consumed:
            raise ResponseConsumedError("the body of this response was already iterated")
        self._consumed = True
        raw = self.raw
        stream = raw.content
        try:
            while True:
                chunk = await stream.readany()
                if not chunk:
                    break
                yield chunk
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raw.close()
            raise map_transport_error(exc, self.request) from exc
        except BaseException:
            raw.close()
            raise
        self._finished_at = time.monotonic()
        raw.release()

    def decoder(self) -> Decode:
        from ..models.decoding import decoder_for

        return decoder_for(self._cast_to, strict=self._strict)

    async def aclose(self) -> None:
        """Close the response: release the connection if the body was read, else close it."""
        self.close()

    def close(self) -> None:
        raw = self.raw
        if raw.closed:
            return
        if self._content is not None:
            raw.release()
        else:
            raw.close()

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}] {self.request.method} {self.request.url}>"


_UNPARSED: Any = object()
