"""`Response`: one HTTP response, wrapping aiohttp's.

The transport hands back a `Response` as soon as the headers are in; the body is
still on the socket. Whoever receives a response owns it: read it (which releases
the connection to the pool), or close it. ``decode`` reads it inside the attempt, so
that a connection dropped mid-body is an attempt failure the retry middleware sees.
"""

from __future__ import annotations

import asyncio
import codecs
import io
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any, Generic, TypeVar, cast, get_origin

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from .._http.content_encoding import BrokenContentEncodingError, ContentDecoder, content_decoder
from .._types import NOT_GIVEN
from ..errors import (
    APIConnectionError,
    InvalidRequestError,
    ResponseConsumedError,
    ResponseTooLargeError,
    StackwireError,
)
from ._aiohttp_errors import map_transport_error
from ._expiry import Expiry
from .attempts import NO_TIMINGS, Attempt, AttemptLog, TimingRecord, Timings
from .request import ExtensionKey, Request

__all__ = ["REQUEST_ID_HEADERS", "REQUEST_ID_HEADERS_KEY", "Response"]

_T = TypeVar("_T")

REQUEST_ID_HEADERS: tuple[str, ...] = ("request-id", "x-request-id")
"""The headers ``request_id`` reads by default, first match wins."""

REQUEST_ID_HEADERS_KEY: ExtensionKey[tuple[str, ...]] = ExtensionKey("request_id_headers")
"""A request extension naming other headers for ``request_id`` (the client's
``request_id_headers=`` option sets it)."""


class Response(Generic[_T]):
    """A response from the API.

    - ``status_code``, ``headers``, ``request`` (the final request), ``url``,
      ``http_version``, ``elapsed`` (to the last body byte, or to now while reading);
    - ``retries_taken``: how many retries the call made before this response;
    - ``attempts``: every attempt of the call (`Attempt`), this one last; ``timings``:
      where this response's time went (`Timings`);
    - ``request_id``: the ``request-id`` / ``x-request-id`` header;
    - ``content`` (after ``await read()``), ``text``, ``json()``, ``await parse()``.
    """

    __slots__ = (
        "_attempts",
        "_cast_to",
        "_consumed",
        "_content",
        "_decompress",
        "_expiry",
        "_finished_at",
        "_parsed",
        "_started_at",
        "_strict",
        "raw",
        "request",
        "retries_taken",
        "timing_record",
    )

    raw: aiohttp.ClientResponse
    request: Request
    retries_taken: int
    # What the transport measured of this physical request, if anything.
    timing_record: TimingRecord | None

    def __init__(
        self,
        raw: aiohttp.ClientResponse,
        request: Request,
        started_at: float,
        decompress: bool = False,
        expiry: Expiry | None = None,
        *,
        cast_to: Any = NOT_GIVEN,
        strict: bool = False,
    ) -> None:
        # ``decompress``: the body arrives as sent (aiohttp's auto_decompress off) and
        # gzip/deflate are decoded here, checked for truncation (see _content_encoding).
        # ``expiry``: the attempt's ``total`` limit, when the transport keeps it on its
        # shared timer instead of aiohttp's: it bounds ``read()`` too.
        self.raw = raw
        self.request = request
        self.retries_taken = 0
        self._attempts: tuple[Attempt, ...] | AttemptLog = ()
        self.timing_record = None
        self._started_at = started_at
        self._finished_at: float | None = None
        self._content: bytes | None = None
        self._consumed = False
        self._parsed: Any = _UNPARSED
        self._cast_to = cast_to
        self._strict = strict
        self._decompress = decompress
        self._expiry = expiry

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

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """The call's attempts (`Attempt`), this one last; set by ``retry``."""
        attempts = self._attempts
        if isinstance(attempts, AttemptLog):  # made on first read (see `AttemptLog`)
            attempts = self._attempts = attempts.attempts(self.status_code, self.timings)
        return attempts

    @attempts.setter
    def attempts(self, attempts: tuple[Attempt, ...] | AttemptLog) -> None:
        self._attempts = attempts

    @property
    def timings(self) -> Timings:
        """Where this physical request's time went (`Timings`; all ``None`` when the
        transport measured nothing); ``body`` once the body has been read."""
        record = self.timing_record
        return NO_TIMINGS if record is None else record.timings(self._finished_at)

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
        content = self._read_arrived(max_bytes)
        if content is not None:
            return content
        if self._consumed:
            raise ResponseConsumedError(
                "the body was already consumed by iterating the stream; it cannot be read again"
            )
        content = await self._receive(max_bytes)
        self._done_reading(content)
        return content

    def _read_arrived(self, max_bytes: int | None) -> bytes | None:
        """``read()`` without awaiting: the body when it was read already, or when all
        of it came in with the headers, is small, needs no decoding and is within
        ``max_bytes``; else ``None`` (``read()`` then waits for it in `_receive`)."""
        if self._content is not None:
            return self._content
        raw = self.raw
        stream = raw.content
        expiry = self._expiry
        size = stream.total_bytes
        if (
            size > _JOIN_BYTES
            or (max_bytes is not None and size > max_bytes)
            or self._consumed
            or not stream.is_eof()
            or stream.exception() is not None
            or (expiry is not None and expiry.expired)
            or self.request.body is not None  # its writer may still be running
            or "Content-Encoding" in raw.headers
        ):
            return None
        content = stream.read_nowait()
        if expiry is not None:
            expiry.done()
        self._done_reading(content)
        return content

    def _done_reading(self, content: bytes) -> None:
        self._content = content
        self._finished_at = time.monotonic()
        self.raw.release()

    async def _receive(self, max_bytes: int | None) -> bytes:
        """Read the body as it comes: capped, decoded, bounded by the attempt's limit."""
        raw = self.raw
        coding = raw.headers.get("Content-Encoding")
        expiry = self._expiry
        try:
            if expiry is not None:
                expiry.enter()
            if coding is None:
                length = raw.content_length
                if max_bytes is not None and length is not None and length > max_bytes:
                    raise self._too_large(max_bytes)
                if length is not None and length <= _JOIN_BYTES:
                    # A small body (an API's JSON) in one piece: aiohttp's own read.
                    content = await raw.read()
                else:
                    content = await self._read_capped(max_bytes, None)
            else:
                decoder = content_decoder(coding) if self._decompress else None
                content = await self._read_capped(max_bytes, decoder)
        except BaseException as exc:
            raw.close()
            if (
                isinstance(exc, asyncio.CancelledError)
                and expiry is not None
                and expiry.timed_out()
            ):
                raise map_transport_error(TimeoutError(), self.request) from exc
            mapped = self._body_failure(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if expiry is not None:
                expiry.leave()
                expiry.done()
        return content

    def _body_failure(self, exc: BaseException) -> StackwireError | None:
        """The stackwire error for a failure while reading the body, or ``None`` when
        ``exc`` is to be raised as it is (a stackwire error already, a cancellation)."""
        if isinstance(exc, BrokenContentEncodingError):
            return self._broken_encoding(exc)
        if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
            return map_transport_error(exc, self.request)
        return None

    async def _read_capped(self, max_bytes: int | None, decoder: ContentDecoder | None) -> bytes:
        # Pieces are appended to a BytesIO, whose buffer grows in place and becomes
        # the returned bytes without a copy: a large body peaks at about its own size
        # (joining a list of chunks peaks at twice that). One piece is returned as is.
        first = b""
        buffer: io.BytesIO | None = None
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
                if buffer is not None:
                    buffer.write(piece)
                elif not first:
                    first = piece
                else:
                    buffer = io.BytesIO()
                    buffer.write(first)
                    buffer.write(piece)
                    first = b""
        if decoder is not None:
            decoder.finish()
        return first if buffer is None else buffer.getvalue()

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
            if self._consumed:
                raise ResponseConsumedError(
                    "the body was consumed by iterating it, so it was not kept; "
                    "call `await response.read()` instead of iterating to keep it"
                )
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
        cast_to = self._cast_to
        if (
            cast_to is NOT_GIVEN
            or cast_to is Response
            or (not isinstance(cast_to, type) and get_origin(cast_to) is Response)
        ):
            return self
        decode = _decode_typed or _load_decoder()
        try:
            return decode(content, cast_to, self._strict, self.raw.status)
        except StackwireError as exc:
            if getattr(exc, "request", None) is None:
                exc.request = self.request  # type: ignore[attr-defined]
            raise

    async def iter_raw(self) -> AsyncIterator[bytes]:
        """The body as it arrives (decompressed), in chunks of any size.

        The connection is released at the end of the body and closed if iteration
        stops early or fails.
        """
        reader = BodyReader(self)
        try:
            while chunk := await reader.next_chunk():
                yield chunk
        finally:
            reader.close()

    def iter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """The body as it arrives (decompressed): chunks of any size, or, with
        ``chunk_size``, chunks of exactly that many bytes but for the last.

        Only one chunk is held at a time, so memory stays flat however long the
        body. The connection is released at the end of the body and closed if the
        iteration stops early or fails. Once iterated, the body is gone: a later
        ``read()`` or iteration raises `ResponseConsumedError`.
        """
        if chunk_size is not None and (
            not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1
        ):
            raise InvalidRequestError(
                f"chunk_size must be a positive int or None, not {chunk_size!r}"
            )
        if chunk_size is None:
            return self.iter_raw()
        return self._iter_sized(chunk_size)

    async def _iter_sized(self, size: int) -> AsyncIterator[bytes]:
        reader = BodyReader(self)
        pending = bytearray()
        try:
            while chunk := await reader.next_chunk():
                if not pending and len(chunk) == size:
                    yield chunk
                    continue
                pending += chunk
                if len(pending) < size:
                    continue
                view = memoryview(pending)
                whole = len(pending) - len(pending) % size
                try:
                    pieces = [bytes(view[i : i + size]) for i in range(0, whole, size)]
                finally:
                    view.release()
                del pending[:whole]
                for piece in pieces:
                    yield piece
            if pending:
                yield bytes(pending)
        finally:
            reader.close()

    def iter_text(self) -> AsyncIterator[str]:
        """The body as text, decoded as it arrives with the declared charset (else
        UTF-8; undecodable bytes become U+FFFD). A character split across network
        chunks comes out whole."""
        return self._text_pieces()

    async def _text_pieces(self) -> AsyncGenerator[str, None]:
        reader = BodyReader(self)
        decoder = self._text_decoder()
        try:
            while chunk := await reader.next_chunk():
                if text := decoder.decode(chunk):
                    yield text
            if tail := decoder.decode(b"", final=True):
                yield tail
        finally:
            reader.close()

    async def iter_lines(self) -> AsyncIterator[str]:
        """The body as lines of text, without their line ends.

        A line ends at CRLF, LF or CR, and nowhere else (not at U+2028 and friends,
        unlike ``str.splitlines``); a CRLF split across chunks is one line end. A
        last line without a line end counts.
        """
        splitter = LineSplitter()
        chunks = self._text_pieces()
        try:
            async for text in chunks:
                for line in splitter.feed(text):
                    yield line
            if (tail := splitter.flush()) is not None:
                yield tail
        finally:
            await chunks.aclose()

    def _text_decoder(self) -> codecs.IncrementalDecoder:
        try:
            return codecs.getincrementaldecoder(self.raw.charset or "utf-8")(errors="replace")
        except LookupError:
            return codecs.getincrementaldecoder("utf-8")(errors="replace")

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

# Bodies up to this size are read with aiohttp's ``read()`` (fastest for the small
# JSON of an API); larger ones, or of unknown length, are gathered by `_read_capped`.
_JOIN_BYTES = 256 * 1024

# ``models.decoding`` imports this module's neighbours; it is looked up on first use.
_decode_typed: Callable[[bytes, Any, bool, int | None], Any] | None = None


def _load_decoder() -> Callable[[bytes, Any, bool, int | None], Any]:
    global _decode_typed
    from ..models.decoding import decode_typed

    _decode_typed = decode_typed
    return decode_typed


class BodyReader:
    """Reads one response's body piece by piece (decompressed), for the streaming
    methods of `Response` and for `AsyncStream`.

    ``await next_chunk()`` returns the next piece, ``b""`` at the end of the body,
    when the connection goes back to the pool. A transport failure is mapped to a
    stackwire error, and any failure (cancellation included) closes the connection.
    ``close()`` stops early: the connection is closed, not reused, unless the whole
    body had arrived. A body already read with ``read()`` is served as one piece.

    Making a reader takes the body: a second one, or a later ``read()``, raises
    `ResponseConsumedError`.
    """

    __slots__ = ("_buffered", "_decoder", "_done", "_pieces", "_response")

    def __init__(self, response: Response[Any]) -> None:
        self._response = response
        self._buffered = response._content
        self._done = False
        self._pieces: Iterator[bytes] | None = None
        self._decoder: ContentDecoder | None = None
        if self._buffered is None:
            if response._consumed:
                raise ResponseConsumedError(
                    "the body of this response was already iterated; a streamed body is "
                    "not kept, so it cannot be read or iterated again"
                )
            response._consumed = True
            self._decoder = response._content_decoder()

    @property
    def done(self) -> bool:
        """Whether the body has ended (or the reader was closed or failed)."""
        return self._done

    async def next_chunk(self) -> bytes:
        """The next piece of the body (never empty), or ``b""`` once it has ended."""
        if self._done:
            return b""
        if self._buffered is not None:
            self._done = True
            return self._buffered
        response = self._response
        raw = response.raw
        try:
            while True:
                if self._pieces is not None:
                    piece = next(self._pieces, None)
                    if piece is not None:
                        return piece
                    self._pieces = None
                chunk = await raw.content.readany()
                if not chunk:
                    break
                if self._decoder is None:
                    return chunk
                self._pieces = self._decoder.feed(chunk)
            if self._decoder is not None:
                self._decoder.finish()
        except BaseException as exc:
            self._fail()
            mapped = response._body_failure(exc)
            if mapped is None:
                raise
            raise mapped from exc
        self._done = True
        response._finished_at = time.monotonic()
        raw.release()
        return b""

    def _fail(self) -> None:
        self._done = True
        self._pieces = None
        self._response.raw.close()

    def close(self) -> None:
        """Stop reading: close the connection unless the body was read to its end."""
        if not self._done:
            self._fail()


class LineSplitter:
    r"""Splits text fed in pieces into lines ending at CRLF, LF or CR (only these),
    endings dropped; a CRLF split between two pieces is one line end.

    >>> splitter = LineSplitter()
    >>> splitter.feed("a\r") + splitter.feed("\nb\rc\u2028d")
    ['a', 'b']
    >>> splitter.flush()
    'c\u2028d'
    """

    __slots__ = ("_after_cr", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._after_cr = False

    def feed(self, text: str) -> list[str]:
        """The lines that ``text`` completes, in order."""
        if not text:
            return []
        if self._after_cr and text[0] == "\n":
            text = text[1:]
        self._after_cr = text.endswith("\r")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        rest = lines.pop()
        if lines and self._parts:
            self._parts.append(lines[0])
            lines[0] = "".join(self._parts)
            self._parts.clear()
        if rest:
            self._parts.append(rest)
        return lines

    def flush(self) -> str | None:
        """The last line, if the text did not end with a line end."""
        if not self._parts:
            return None
        line = "".join(self._parts)
        self._parts.clear()
        return line
