"""`Response`: one HTTP response, its body and its decoded value.

A transport hands back a `Response` as soon as the headers are in; the body may still
be on the socket. Whoever receives a response owns it: read it (which releases the
connection to the pool), or close it. ``decode`` reads it inside the attempt, so that
a connection dropped mid-body is an attempt failure the retry middleware sees, and
hands the decoded value over through `Response.bind` / `Response.parse_now` /
`Response.set_parsed`, which the client returns as `Response.parsed`.

Any transport can build one (``Response(request, status, headers=..., content=...)``
or ``stream=`` an async iterable of chunks); the default transport's subclass reads
its aiohttp connection instead, through the few private hooks marked below.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from datetime import timedelta
from typing import Any, Final, Generic, Self, TypeVar, get_origin

from msgspec.structs import replace as replaced_struct
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.content_encoding import (
    BrokenContentEncodingError,
    ContentDecoder,
    content_decoder,
    undecodable_coding,
)
from .._http.urls import shown_url
from .._types import NOT_GIVEN, NotGiven
from ..errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APITimeoutError,
    InvalidRequestError,
    ResponseConsumedError,
    ResponseTooLargeError,
    StackwireError,
)
from ..models.decoding import decode_typed, transcoded_json
from ._expiry import Expiry
from .attempts import (
    NO_TIMINGS,
    Attempt,
    AttemptLog,
    TimingRecord,
    Timings,
    attach_timing_record,
)
from .deadline import deadline_error, deadline_passed
from .request import ExtensionKey, Request, request_line

__all__ = [
    "REQUEST_ID_HEADERS",
    "REQUEST_ID_HEADERS_KEY",
    "BodyReader",
    "Response",
    "carry_call_history",
    "is_json_type",
]

_T = TypeVar("_T")

REQUEST_ID_HEADERS: tuple[str, ...] = ("request-id", "x-request-id")
"""The headers ``request_id`` reads by default, first match wins."""

REQUEST_ID_HEADERS_KEY: ExtensionKey[tuple[str, ...]] = ExtensionKey("request_id_headers")
"""A request extension naming other headers for ``request_id`` (the client's
``request_id_headers=`` option sets it)."""


class Response(Generic[_T]):
    """A response from the API.

    - ``status_code``, ``reason``, ``headers``, ``request`` (the final request),
      ``url``, ``http_version``, ``charset``, ``elapsed`` (to the last body byte, or to
      now while reading);
    - ``retries_taken``: how many retries the call made before this response;
    - ``attempts``: every attempt of the call (`Attempt`), this one last; ``timings``:
      where this response's time went (`Timings`);
    - ``request_id``: the ``request-id`` / ``x-request-id`` header;
    - the body: ``await read()`` then ``content``, ``text``, ``json()``; or one of the
      ``iter_*`` methods; bodies are decoded from their ``Content-Encoding`` (gzip,
      deflate, br, zstd, or a list of them) and capped by ``max_bytes``;
    - the decoded value: ``decode`` binds the call's ``cast_to`` (`bind`); ``await
      parse()`` reads and decodes the body into it, ``parse_now()`` decodes a body
      already read, ``parsed`` is the value once decoded (`NOT_GIVEN` before);
    - ``raw``: the transport's own response object, if it has one.

    Anyone may construct one (a transport, a test double, a cache), with the whole
    body as ``content`` or as an async iterable of chunks as ``stream``:

    >>> from stackwire import Request
    >>> from yarl import URL
    >>> request = Request(method="GET", url=URL("https://api.example.com/v1/ping"))
    >>> response = Response(request, 200, headers={"Content-Type": "application/json"},
    ...                     content=b'{"ok": true}')
    >>> response.read_now()
    b'{"ok": true}'
    >>> response.json()
    {'ok': True}

    Whoever receives a response owns it: read it to its end (which releases the
    connection) or ``close()`` it.
    """

    __slots__ = (
        "_attempts",
        "_body_error",
        "_cast_to",
        "_closed",
        "_coded",
        "_consumed",
        "_content",
        "_expiry",
        "_finished_at",
        "_headers",
        "_http_version",
        "_max_bytes",
        "_on_done",
        "_reason",
        "_source",
        "_started_at",
        "_strict",
        "parsed",
        "raw",
        "request",
        "retries_taken",
        "status_code",
        "timing_record",
    )

    raw: Any
    request: Request
    retries_taken: int
    status_code: int
    parsed: _T | NotGiven
    """The decoded value once ``parse()``, ``parse_now()`` or ``set_parsed()`` produced
    it; `NOT_GIVEN` before."""
    # What the transport measured of this physical request, if anything.
    timing_record: TimingRecord | None

    def __init__(
        self,
        request: Request,
        status_code: int = 200,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | None = None,
        stream: AsyncIterable[bytes] | None = None,
        reason: str | None = None,
        http_version: str = "HTTP/1.1",
        raw: Any = None,
    ) -> None:
        if not isinstance(request, Request):
            raise InvalidRequestError(f"request must be a Request, not {type(request).__name__}")
        if (
            not isinstance(status_code, int)
            or isinstance(status_code, bool)
            or not 100 <= status_code <= 599
        ):
            raise InvalidRequestError(
                f"status_code must be an int from 100 to 599, not {status_code!r}"
            )
        if content is not None and stream is not None:
            raise InvalidRequestError("give the body as content= or as stream=, not both")
        if content is not None and not isinstance(content, (bytes, bytearray, memoryview)):
            raise InvalidRequestError(f"content must be bytes, not {type(content).__name__}")
        if stream is not None and not hasattr(stream, "__aiter__"):
            raise InvalidRequestError(
                f"stream must be an async iterable of bytes, not {type(stream).__name__}"
            )
        self.request = request
        self.retries_taken = 0
        self.raw = raw
        self.status_code = status_code
        self._reason = reason
        self._http_version = http_version
        self._headers = CIMultiDictProxy(CIMultiDict(headers or ()))
        self._source: bytes | AsyncIterator[bytes] | None = (
            bytes(content)
            if content is not None
            else stream.__aiter__()
            if stream is not None
            else b""
        )
        self._closed = False
        self._coded = False  # set when a body with a Content-Encoding is read
        self._attempts: tuple[Attempt, ...] | AttemptLog = ()
        self.timing_record: TimingRecord | None = None
        self._started_at = time.monotonic()
        self._finished_at: float | None = None
        self._content: bytes | None = None
        # True once the body is taken (iterated, or given up by close()); while a
        # `BodyReader` is reading it, that reader, which close() tells it is gone.
        self._consumed: bool | BodyReader = False
        self.parsed = NOT_GIVEN
        self._cast_to: Any = NOT_GIVEN
        self._strict = False
        self._max_bytes: int | None = None
        self._expiry: Expiry | None = None
        self._on_done: Callable[[], None] | None = None
        self._body_error: BaseException | None = None

    # -- the status line and headers -------------------------------------------------

    @property
    def reason(self) -> str:
        """The reason phrase of the status line (``""`` when there was none)."""
        return self._reason or ""

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._headers

    @property
    def url(self) -> URL:
        """The URL this response came from (the final one, query included)."""
        return self.request.url

    @property
    def http_version(self) -> str:
        """The protocol version of the response, e.g. ``"HTTP/1.1"``."""
        return self._http_version

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of ``Content-Type``, if any (and ASCII: header bytes
        that are not UTF-8 arrive as surrogates, a name no codec has, which would make
        ``bytes.decode`` raise ``UnicodeEncodeError`` instead of a lookup failure)."""
        content_type = self._headers.get("Content-Type")
        if content_type is None or ";" not in content_type:
            return None
        for param in content_type.split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                charset = value.strip().strip('"')
                return charset if charset.isascii() and charset.isprintable() and charset else None
        return None

    @property
    def request_id(self) -> str | None:
        """The first of the request-id headers present (``request-id``, then
        ``x-request-id``, unless the client's ``request_id_headers=`` names others)."""
        headers = self._headers
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
        """Whether the body's source is closed (read to its end, or closed early)."""
        return self._closed

    # -- where the body comes from: a transport's response overrides these ----------
    #
    # The base class serves ``content=`` bytes or a ``stream=`` iterator; a
    # transport's subclass reads its own connection instead (see
    # ``transports/_aiohttp_response.py``). Everything above them (caps, decoding,
    # timeouts, the streaming methods) is shared.

    def _take_arrived(self, max_bytes: int | None) -> bytes | None:
        """The whole body as it was sent, when it is all here (and small) and within
        ``max_bytes``, without waiting; else ``None``."""
        source = self._source
        if not isinstance(source, bytes) or (max_bytes is not None and len(source) > max_bytes):
            return None
        self._source = b""
        return source

    async def _next_raw(self) -> bytes:
        """The next chunk of the body as it was sent, ``b""`` only at its end."""
        source = self._source
        if isinstance(source, bytes):
            self._source = b""
            return source
        while source is not None:
            chunk = await anext(source, None)
            if chunk is None:
                break
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise TypeError(f"a response stream must yield bytes, got {type(chunk).__name__}")
            if chunk:
                return bytes(chunk)
        self._source = None
        return b""

    async def _read_whole(self, max_bytes: int | None) -> bytes:
        """A body without ``Content-Encoding``, read whole."""
        source = self._source
        if isinstance(source, bytes):
            if max_bytes is not None and len(source) > max_bytes:
                raise self._too_large(max_bytes)
            self._source = b""
            return source
        return await self._read_capped(max_bytes, None)

    def _body_arrived(self) -> bool:
        """Whether the rest of the body is here (reading it will not wait)."""
        return isinstance(self._source, bytes) or self._source is None

    def _arrived_before(self, failure: Exception) -> bytes:
        """What had arrived of the body, unread, when reading it failed with
        ``failure`` (taken: asked again, ``b""``); a source that keeps nothing back
        has nothing."""
        return b""

    def _release(self) -> None:
        """The body was read to its end: the connection may be reused."""
        self._closed = True

    def _abort(self) -> None:
        """Stop before the end of the body: the connection must not be reused."""
        self._closed = True
        self._source = None

    def _timeout_error(self) -> APITimeoutError:
        """The error for a time limit passed while the body was read: the deadline's
        (named) when the deadline cut a read inside the attempt, that is, of a
        buffered body, or of a stream's error or redirect."""
        request = self.request
        if (not request.options.stream or self.status_code >= 300) and deadline_passed(request):
            return deadline_error(request, "before its body came")
        return APITimeoutError(f"Request timed out: {request_line(request)}", request=request)

    def _body_failure(self, exc: BaseException) -> StackwireError | None:
        """The stackwire error for a failure while reading the body, or ``None`` when
        ``exc`` is to be raised as it is (a stackwire error already, a cancellation)."""
        if isinstance(exc, BrokenContentEncodingError):
            return self._broken_encoding(exc)
        if isinstance(exc, StackwireError) or not isinstance(exc, Exception):
            return None
        if isinstance(exc, TimeoutError):
            return self._timeout_error()
        where = request_line(self.request)
        return APIConnectionError(
            f"Connection error: {where}: reading the body failed ({type(exc).__name__}: {exc})",
            request=self.request,
        )

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """The call's attempts (`Attempt`), this one last; set by ``retry``."""
        attempts = self._attempts
        if isinstance(attempts, AttemptLog):  # made on first read (see `AttemptLog`)
            timings = self.timings
            if self.request.options.stream and timings.body is not None:
                # A stream's attempt ended when it was handed back, before its body:
                # the same whenever this is first read (the body's time is in
                # `timings`).
                timings = replaced_struct(timings, body=None)
            attempts = self._attempts = attempts.attempts(self.status_code, timings)
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

    async def read(self, *, max_bytes: int | NotGiven | None = NOT_GIVEN) -> bytes:
        """Read the whole body (once; later calls return the same bytes).

        ``max_bytes`` left out: the call's ``max_response_bytes`` (bound by ``decode``,
        which is what caps a body read from ``with_streaming_response``; no cap for a
        response nobody bound one to); ``None``: no cap.
        A body longer than ``max_bytes`` (after decompression) raises
        `ResponseTooLargeError` and closes the connection; a ``Content-Length`` above
        the cap fails before reading. A connection lost mid-body, or a gzip/deflate
        body that is corrupt or ends before its compressed stream does, raises
        `APIConnectionError`. Either way the connection is closed, not reused (unless
        the whole response had already arrived, in which case it is back in the pool).
        """
        if isinstance(max_bytes, NotGiven):
            max_bytes = self._max_bytes
        content = self.read_now(max_bytes)
        if content is not None:
            return content
        if self._content is not None:  # read before (by a middleware), past this cap
            assert max_bytes is not None
            raise self._too_large(max_bytes)
        if self._consumed:
            raise ResponseConsumedError(_GONE)
        content = await self._receive(max_bytes)
        self._done_reading(content)
        return content

    def read_now(self, max_bytes: int | None = None) -> bytes | None:
        """``read()`` without waiting: the body if it was read already, or if all of
        it has arrived, is small, needs no decoding and is within ``max_bytes``; else
        ``None`` (then ``await read()`` waits for it). The usual JSON response of an
        API arrives with its headers, so ``decode`` tries this first."""
        content = self._content
        if content is not None:
            return content if max_bytes is None or len(content) <= max_bytes else None
        expiry = self._expiry
        if (
            self._consumed
            or (expiry is not None and expiry.expired)
            or "Content-Encoding" in self._headers
        ):
            return None
        content = self._take_arrived(max_bytes)
        if content is None:
            return None
        if expiry is not None:
            expiry.done()
        self._done_reading(content)
        return content

    def _done_reading(self, content: bytes) -> None:
        self._content = content
        self._finished_at = time.monotonic()
        self._release()
        if self._on_done is not None:
            self._body_done()

    @property
    def body_error(self) -> BaseException | None:
        """What reading the body failed with, once it has: the error the reader got
        (an `APIConnectionError` for a connection broken mid-body, `APITimeoutError`,
        `ResponseTooLargeError`, or ``CancelledError``); ``None`` while it has not
        failed. For a `when_done` callback that judges the attempt by its body too
        (`CircuitBreaker` counts a body broken after good headers as a failure)."""
        return self._body_error

    def when_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once, when this response is finished with: its body read
        to the end, failed, or the response closed; at once if that has happened.

        For a middleware below ``decode`` that holds something for as long as a
        response is in use, body included (`ConcurrencyLimit` holds its slot so). A
        callback that raises is not the caller's problem: its error is logged on the
        ``"stackwire"`` logger and dropped.

        >>> from stackwire import Request
        >>> from yarl import URL
        >>> response = Response(Request(method="GET", url=URL("http://api.test/")),
        ...                     content=b"{}")
        >>> response.when_done(lambda: print("done"))
        >>> response.read_now()
        done
        b'{}'
        """
        if self.is_closed and (self._content is not None or self._consumed):
            _run_done_callback(callback)
            return
        previous = self._on_done
        if previous is None:
            self._on_done = callback
        else:

            def both() -> None:
                previous()
                callback()

            self._on_done = both

    def _body_done(self) -> None:
        """Run the `when_done` callback, if any (once)."""
        callback = self._on_done
        if callback is not None:
            self._on_done = None
            _run_done_callback(callback)

    async def _receive(self, max_bytes: int | None) -> bytes:
        """Read the body as it comes: capped, decoded, bounded by the attempt's limit."""
        coding = _content_coding(self._headers)
        expiry = self._expiry
        try:
            with expiry if expiry is not None else _NO_LIMIT:  # the attempt's total
                if coding is None:
                    length = _content_length(self._headers)
                    if max_bytes is not None and length is not None and length > max_bytes:
                        raise self._too_large(max_bytes)
                    content = await self._read_whole(max_bytes)
                else:
                    self._coded = True
                    content = await self._read_capped(max_bytes, content_decoder(coding))
        except BaseException as exc:
            self._abort()
            mapped = self._body_failure(exc)  # the limit's TimeoutError: APITimeoutError
            self._body_error = mapped or exc
            if self._on_done is not None:
                self._body_done()
            record = self.timing_record
            if record is not None and isinstance(mapped or exc, StackwireError):
                # The attempt's timings up to the failure (``attempts`` shows them).
                attach_timing_record(mapped or exc, record)
            carry_call_history(mapped or exc, self)  # a body read after the hand-back
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if expiry is not None:
                expiry.done()
        return content

    async def _read_capped(self, max_bytes: int | None, decoder: ContentDecoder | None) -> bytes:
        # Pieces are appended to a BytesIO, whose buffer grows in place and becomes
        # the returned bytes without a copy: a large body peaks at about its own size
        # (joining a list of chunks peaks at twice that). One piece is returned as is.
        first = b""
        buffer: io.BytesIO | None = None
        size = 0
        next_raw = self._next_raw
        while True:
            chunk = await next_raw()
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
        return content_decoder(_content_coding(self._headers))

    def check_decodable(self) -> None:
        """Raise `APIResponseValidationError` naming the ``Content-Encoding`` when the
        body arrived in a coding stackwire cannot decode (``read()`` hands such a body
        on as received; decoding it as JSON or events would only report garbage)."""
        coding = _content_coding(self._headers)
        if coding is None:
            return
        problem = undecodable_coding(coding)
        if problem is not None:
            raise APIResponseValidationError(
                problem, request=self.request, status_code=self.status_code
            )

    def _broken_encoding(self, exc: BrokenContentEncodingError) -> APIConnectionError:
        return APIConnectionError(
            f"Connection error: {request_line(self.request)}: {exc}", request=self.request
        )

    def _too_large(self, limit: int) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"Response body exceeds max_response_bytes={limit}; "
            "raise max_response_bytes (or pass None) to accept larger bodies",
            limit=limit,
            request=self.request,
            status_code=self.status_code,
        )

    @property
    def content(self) -> bytes:
        """The body; only after ``await read()``."""
        if self._content is None:
            if self._consumed:
                raise ResponseConsumedError(
                    f"{_GONE}; call `await response.read()` instead of iterating to keep it"
                )
            raise ResponseConsumedError("the body has not been read: call `await response.read()`")
        return self._content

    @property
    def text(self) -> str:
        """The body decoded as text (the declared charset, else UTF-8), after ``read()``."""
        charset = self.charset or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON values (dicts, lists, ...), after ``read()``."""
        content = self.content
        self.check_decodable()
        try:
            return decode_typed(content, Any, False, self.status_code)
        except StackwireError as exc:
            utf8 = transcoded_json(content, self.charset)  # a declared charset: see _decode
            if utf8 is not None:
                with contextlib.suppress(StackwireError):  # (then: the body's own error)
                    return decode_typed(utf8, Any, False, self.status_code)
            self._name_content_type(exc)
            raise

    # -- the decoded value -----------------------------------------------------------

    def bind(self, cast_to: Any, *, strict: bool = False, max_bytes: int | None = None) -> Self:
        """Set what ``parse()`` decodes the body into (``decode`` binds the call's
        ``cast_to``); ``strict`` as for the client option; ``max_bytes`` the cap on a
        body that ``read()`` / ``parse()`` reads without one given (``decode`` binds the
        call's ``max_response_bytes``). Returns the response."""
        self._cast_to = cast_to
        self._strict = strict
        self._max_bytes = max_bytes
        return self

    def set_parsed(self, value: _T) -> None:
        """Hand over a value produced another way (``decode`` sets a stream's
        `AsyncStream` here; a cache or an adapter may set its own)."""
        self.parsed = value

    def parse_now(self) -> _T:
        """The body, already read, decoded into the bound ``cast_to`` (decoded once,
        then cached); the response itself when none is bound, or it is `Response`.
        Raises `ResponseConsumedError` when the body has not been read."""
        parsed = self.parsed
        if parsed is NOT_GIVEN:
            content = self._content
            if content is None:
                content = self.content  # raises, saying why
            parsed = self.parsed = self._decode(content)
        return parsed  # type: ignore[return-value]  # (not NOT_GIVEN: decoded or set)

    async def parse(self) -> _T:
        """The body decoded into the bound ``cast_to`` (read first if need be)."""
        if self.parsed is NOT_GIVEN and self._content is None:
            await self.read()
        return self.parse_now()

    def _decode(self, content: bytes) -> Any:
        cast_to = self._cast_to
        if (
            cast_to is NOT_GIVEN
            or cast_to is Response
            or (not isinstance(cast_to, type) and get_origin(cast_to) is Response)
        ):
            return self
        if self._coded:  # (only a body with a Content-Encoding is checked)
            self.check_decodable()
        try:
            return decode_typed(content, cast_to, self._strict, self.status_code)
        except StackwireError as exc:
            if getattr(exc, "request", None) is None:
                exc.request = self.request  # type: ignore[attr-defined]
            if cast_to is not bytes and (charset := self.charset):
                # JSON (or text for ``str``) in a declared charset other than UTF-8: only
                # once UTF-8 failed, so a UTF-8 body costs nothing more.
                utf8 = transcoded_json(content, charset)
                if utf8 is not None:
                    with contextlib.suppress(StackwireError):  # (then: the body's own error)
                        return decode_typed(utf8, cast_to, self._strict, self.status_code)
            if cast_to is not str:
                self._name_content_type(exc)
            raise

    def _name_content_type(self, error: StackwireError) -> None:
        """Add to a decoding ``error`` the ``Content-Type`` of a body that says it is not
        JSON (a proxy's HTML error page): "JSON is malformed" alone sends the reader
        looking at the API's JSON. On the way to raising only; such a body is still
        tried as JSON first, as the OpenAI SDK tries it."""
        content_type = self._headers.get("Content-Type")
        if (
            isinstance(error, APIResponseValidationError)
            and content_type is not None
            and not is_json_type(content_type)
        ):
            error.message += f"; the Content-Type is {content_type!r}, not JSON"
            error.args = (error.message,)

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
            return codecs.getincrementaldecoder(self.charset or "utf-8")(errors="replace")
        except LookupError:
            return codecs.getincrementaldecoder("utf-8")(errors="replace")

    async def aclose(self) -> None:
        """Close the response: release the connection if the body was read, else close it."""
        self.close()

    def close(self) -> None:
        """Close the response: release the connection if the body was read, else close it.

        A body not read by then is gone: reading or iterating it later raises
        `ResponseConsumedError` (even if it had arrived whole), never a connection
        error or an empty body; so does going on with an iteration begun before."""
        if self._content is None:
            reader = self._consumed
            if isinstance(reader, BodyReader):
                reader.give_up()
            self._consumed = True
        if not self.is_closed:
            if self._content is not None:
                self._release()
            else:
                self._abort()
        if self._on_done is not None:
            self._body_done()

    def __repr__(self) -> str:
        request = self.request
        return f"<Response [{self.status_code}] {request.method} {shown_url(request.url)}>"


_GONE: Final = (
    "the body of this response is gone: it was iterated, or the response was closed "
    "before it was read (leaving a `with_streaming_response` block closes it); a "
    "streamed body is not kept, so it cannot be read or iterated again"
)

# Bodies up to this size are taken whole when they arrived with the headers (fastest
# for the small JSON of an API); larger ones are gathered by `_read_capped`.
_JOIN_BYTES = 256 * 1024


_NO_LIMIT = contextlib.nullcontext()


def _run_done_callback(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # (a bug of the callback's: the call itself went fine)
        logging.getLogger("stackwire").exception("a Response.when_done callback failed")


def carry_call_history(error: BaseException, response: Response[Any]) -> None:
    """Give ``error``, raised by ``response``'s body after ``retry`` handed the
    response back (a stream's error event, a connection cut mid-stream), the call's
    attempts and retries, which only the response knows by then. An error that
    already has them (one raised inside an attempt: ``retry`` sets them) is left alone.
    An error made without a request (the SSE decoder's size cap knows no request)
    gets the response's.
    """
    if isinstance(error, APIError) and not error.attempts:
        if error.request is None:
            error.request = response.request
        attempts = response.attempts
        if attempts:
            error.attempts = attempts
            error.retries_taken = response.retries_taken


def is_json_type(content_type: str | None) -> bool:
    """Whether a ``Content-Type`` names JSON: ``application/json``, a ``+json`` type
    (``application/problem+json``), or another ending in ``json`` (``text/json``).

    >>> is_json_type("application/problem+json; charset=utf-8"), is_json_type("text/html")
    (True, False)
    """
    return content_type is not None and (
        content_type.partition(";")[0].strip().lower().endswith("json")
    )


def _content_coding(headers: CIMultiDictProxy[str]) -> str | None:
    """The ``Content-Encoding``, all of it: two such headers are one list of codings
    (RFC 9110 section 5.3), ``gzip`` then ``br``, not a ``gzip`` body."""
    codings = headers.getall("Content-Encoding", ())
    if len(codings) <= 1:
        return codings[0] if codings else None
    return ", ".join(codings)


def _content_length(headers: CIMultiDictProxy[str]) -> int | None:
    value = headers.get("Content-Length")
    if value is None or not value.isdigit():
        return None
    return int(value)


class BodyReader:
    """Reads one response's body piece by piece (decompressed), for the streaming
    methods of `Response` and for `AsyncStream`.

    ``await next_chunk()`` returns the next piece, ``b""`` at the end of the body,
    when the connection goes back to the pool. A transport failure is mapped to a
    stackwire error, and any failure (cancellation included) closes the connection.
    ``close()`` stops early: the connection is closed, not reused, unless the whole
    body had arrived. A body already read with ``read()`` is served as one piece.

    Making a reader takes the body: a second one, or a later ``read()``, raises
    `ResponseConsumedError`. So does the next ``next_chunk()`` once the response has
    been closed under the reader (``response.close()``, the end of a
    ``with_streaming_response`` block): the body was given up, whether or not the
    rest of it had arrived, and whatever the transport.
    """

    __slots__ = ("_buffered", "_decoder", "_done", "_given_up", "_pieces", "_response")

    def __init__(self, response: Response[Any]) -> None:
        self._response = response
        self._buffered = response._content
        self._done = False
        self._given_up = False
        self._pieces: Iterator[bytes] | None = None
        self._decoder: ContentDecoder | None = None
        if self._buffered is None:
            if response._consumed:
                raise ResponseConsumedError(_GONE)
            response._consumed = self  # until the body ends: `Response.close` tells us
            self._decoder = response._content_decoder()

    @property
    def done(self) -> bool:
        """Whether the body has ended (or the reader was closed or failed)."""
        return self._done

    async def next_chunk(self) -> bytes:
        """The next piece of the body (never empty), or ``b""`` once it has ended."""
        if self._done:
            if self._given_up:
                raise ResponseConsumedError(_GONE)
            return b""
        if self._buffered is not None:
            self._done = True
            return self._buffered
        response = self._response
        try:
            while True:
                if self._pieces is not None:
                    piece = next(self._pieces, None)
                    if piece is not None:
                        return piece
                    self._pieces = None
                try:
                    chunk = await response._next_raw()
                except Exception as exc:
                    # The body failed (the connection broke): first what had arrived
                    # before, so that what a stream hands out never depends on how soon
                    # it was read; the next read fails again, with nothing left.
                    chunk = b"" if self._given_up else response._arrived_before(exc)
                    if not chunk:
                        raise
                if not chunk:
                    break
                if self._decoder is None:
                    return chunk
                self._pieces = self._decoder.feed(chunk)
            if self._decoder is not None:
                self._decoder.finish()
        except BaseException as exc:
            if self._given_up and isinstance(exc, Exception):
                # Closed while this read waited: the connection's "closed" is ours.
                raise ResponseConsumedError(_GONE) from exc
            mapped = response._body_failure(exc)
            response._body_error = mapped or exc
            self._fail()
            carry_call_history(mapped or exc, response)  # (read after the hand-back)
            if mapped is None:
                raise
            raise mapped from exc
        self._done = True
        response._consumed = True
        response._finished_at = time.monotonic()
        response._release()
        if response._on_done is not None:
            response._body_done()
        return b""

    def _fail(self) -> None:
        self._done = True
        self._pieces = None
        response = self._response
        response._consumed = True
        response._abort()
        if response._on_done is not None:
            response._body_done()

    def rest_arrived(self) -> bool:
        """Whether the rest of the body is here, so reading it to its end will not wait."""
        return self._done or self._response._body_arrived()

    def close(self) -> None:
        """Stop reading: close the connection unless the body was read to its end."""
        if not self._done:
            self._fail()

    def give_up(self) -> None:
        """The response was closed before the body ended (`Response.close` calls
        this): the next `next_chunk` raises `ResponseConsumedError`."""
        if not self._done:
            self._done = self._given_up = True
            self._pieces = None


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
