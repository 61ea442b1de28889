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
from ..errors import APIConnectionError, ResponseTooLargeError, StackwireError
from ._aiohttp_errors import map_transport_error
from ._content_encoding import BrokenContentEncodingError, ContentDecoder, content_decoder
from .request import ExtensionKey, Request

if TYPE_CHECKING:
    from ..models.decoding import Decode

__all__ = ["REQUEST_ID_HEADERS", "REQUEST_ID_HEADERS_KEY", "Response"]

_T = TypeVar("_T")

REQUEST_ID_HEADERS: tuple[str, ...] = ("request-id", "x-request-id")
"""The headers ``request_id`` reads by default, first match wins."""

REQUEST_ID_HEADERS_KEY: ExtensionKey[tuple[str, ...]] = ExtensionKey("request_id_headers")
"""A request extension naming other headers for ``request_id`` (the client's
``request_id_headers=`` option sets it)."""


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
        "_decompress",
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
        decompress: bool = False,
    ) -> None:
        # ``decompress``: the body arrives as sent (aiohttp's auto_decompress off) and
        # gzip/deflate are decoded here, checked for truncation (see _content_encoding).
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
        self._decompress = decompress

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
        """The URL this response came from (the final one, query included)."""
        return self.request.url

    @property
    def http_version(self) -> str:
        """The protocol version of the response, e.g. ``"HTTP/1.1"``."""
        version = self.raw.version
        return f"HTTP/{version.major}.{version.minor}" if version else "HTTP/1.1"

    @property
    def request_id(self) -> str | None:
        """The first of the request-id headers present (``request-id``, then
        ``x-request-id``, unless the client's ``request_id_headers=`` names others)."""
        headers = self.raw.headers
        for name in self.request.extension(REQUEST_ID_HEADERS_KEY) or REQUEST_ID_HEADERS:
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
        the cap fails before reading. A connection lost mid-body, or a gzip/deflate
        body that is corrupt or ends before its compressed stream does, raises
        `APIConnectionError`. Either way the connection is closed, not reused (unless
        the whole response had already arrived, in which case aiohttp has already put
        the connection, clean, back in the pool).
        """
        if self._content is not None:
            return self._content
        if self._consumed:
            raise ResponseConsumedError(
                "the body was already consumed by iterating the stream; it cannot be read again"
            )
        raw = self.raw
        decoder = self._content_decoder()
        try:
            if decoder is None and "Content-Encoding" not in raw.headers:
                length = raw.content_length
                if max_bytes is not None and length is not None and length > max_bytes:
                    raise self._too_large(max_bytes)
                if max_bytes is None or length is not None:
                    content = await raw.read()
                else:
                    content = await self._read_capped(max_bytes, None)
            else:
                content = await self._read_capped(max_bytes, decoder)
        except StackwireError:
            raw.close()
            raise
        except BrokenContentEncodingError as exc:
            raw.close()
            raise self._broken_encoding(exc) from exc
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

    async def _read_capped(self, max_bytes: int | None, decoder: ContentDecoder | None) -> bytes:
        chunks: list[bytes] = []
        size = 0
        stream = self.raw.content
        while True:
            chunk = await stream.readany()
            if not chunk:
                break
            for piece in decoder.feed(chunk) if decoder is not None else (chunk,):
                size += len(piece)
                if max_bytes is not None and size > max_bytes:
                    raise self._too_large(max_bytes)
                chunks.append(piece)
        if decoder is not None:
            decoder.finish()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def _content_decoder(self) -> ContentDecoder | None:
        if not self._decompress:
            return None
        return content_decoder(self.raw.headers.get("Content-Encoding"))

    def _broken_encoding(self, exc: BrokenContentEncodingError) -> APIConnectionError:
        request = self.request
        where = f"{request.method} {request.url.with_query(None).with_user(None)}"
        return APIConnectionError(f"Connection error: {where}: {exc}", request=request)

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
        decoder = self._content_decoder()
        try:
            while True:
                chunk = await stream.readany()
                if not chunk:
                    break
                if decoder is None:
                    yield chunk
                else:
                    for piece in decoder.feed(chunk):
                        yield piece
            if decoder is not None:
                decoder.finish()
        except BrokenContentEncodingError as exc:
            raw.close()
            raise self._broken_encoding(exc) from exc
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
