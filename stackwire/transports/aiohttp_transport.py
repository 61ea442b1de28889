"""`AiohttpTransport`: the default transport, sending one attempt with aiohttp.

It keeps the `Transport` contract (``pipeline/transport.py``); beyond it, it scrubs
the request headers out of the aiohttp exceptions it chains as ``__cause__``, and
hands back an `AiohttpResponse`, whose body is read from aiohttp's connection.

Its session is created on first use (inside the running loop) and owned, or borrowed
from the caller and then never closed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import math
import socket
import ssl
import time
from typing import Any

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.content_encoding import accept_encoding
from .._types import NotGiven
from ..errors import (
    APIError,
    ClientClosedError,
    InvalidRequestError,
    StackwireError,
)
from ..pipeline._expiry import COARSE_AFTER, Expiry, ExpiryWheel
from ..pipeline._memo import MISSING, IdentityMemo
from ..pipeline.attempts import TimingRecord, attach_timing_record
from ..pipeline.body import StreamingBody, body_error
from ..pipeline.clocks import Clocks
from ..pipeline.deadline import deadline_error, deadline_passed
from ..pipeline.options import DEFAULT_TIMEOUT, Timeout
from ..pipeline.request import (
    CREDENTIAL_HEADERS,
    CREDENTIALS_DROPPED,
    Request,
    SecretValue,
    request_line,
)
from ..pipeline.response import Response
from ..pipeline.transport import PoolStats
from ._aiohttp_errors import closed_mid_call, map_transport_error
from ._aiohttp_response import AiohttpResponse
from ._protocol import ApiResponseHandler, fail_bodies_in_flight
from ._timings import CURRENT_RECORD, TimedConnector

__all__ = ["AiohttpTransport", "userinfo_as_basic_auth"]

DEFAULT_MAX_CONNECTIONS = 1000
"""The default size of the connection pool."""

_NO_LIMITS = Timeout(total=None, connect=None, read=None)

# TCP keep-alive probes on every socket: first probe after 60 s idle, then every
# 60 s, the connection is dropped after 5 unanswered probes.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 60
KEEPALIVE_PROBES = 5


# aiohttp's timeout, the limit on a stream's headers, the total on the coarse timer.
_AttemptLimits = tuple[aiohttp.ClientTimeout, float | None, float | None]
_LimitsMemo = IdentityMemo[_AttemptLimits]


# The most one read from the socket asks for. asyncio reads with ``recv(256 KiB)``: a
# fresh 256 KiB buffer per read, shrunk to the few hundred bytes an API response
# takes. Whether glibc serves that from the heap or maps and trims it depends on the
# process's allocation history; in about one process in three it costs ~13 µs per
# response (measured at 64 in flight: recv() 15 µs instead of 2). 64 KiB stays on
# the heap every time and is still a large read for a big body.
MAX_READ = 64 * 1024

# aiohttp warns (a ResourceWarning, an error under ``-W error`` and in most test
# suites) for a ``bytes`` body above 1 MiB; the same bytes in a ``BytesIO`` (which
# shares the buffer, no copy) are sent as one ``Content-Length`` body in chunks,
# letting the loop run between them, as the warning asks. Smaller bodies stay bytes:
# aiohttp's fastest path.
LARGE_BODY = 2**20

# The methods aiohttp gives a ``Content-Type: application/octet-stream`` of its own when
# the request has none (with or without a body).
_CONTENT_TYPE_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_CONTENT_TYPE = frozenset({"content-type"})


class _ApiSocket(socket.socket):
    """A TCP socket whose ``recv`` asks for at most `MAX_READ` bytes (see above)."""

    __slots__ = ()

    def recv(self, bufsize: int, flags: int = 0, /) -> bytes:
        return super().recv(bufsize if bufsize < MAX_READ else MAX_READ, flags)


class _ApiRequest(aiohttp.ClientRequest):
    """aiohttp's request, taking its headers in one copy.

    aiohttp copies the headers of every request into a new multidict one header at a
    time, in Python: a few µs per request for the handful an API call carries.
    stackwire's headers are validated already (``headers`` middleware), so they are
    copied whole, after ``Host``, as aiohttp puts them; a request that sets ``Host``
    itself goes through aiohttp's own code.
    """

    def update_headers(self, headers: Any) -> None:
        if not isinstance(headers, CIMultiDict) or hdrs.HOST in headers:
            super().update_headers(headers)
            return
        copied: CIMultiDict[str] = CIMultiDict()
        copied[hdrs.HOST] = self.url.host_port_subcomponent or ""
        copied.extend(headers)
        self.headers = copied


def keepalive_socket(addr_info: Any) -> socket.socket:
    """A socket with TCP keep-alive probes on, where the platform has them, and reads
    of at most `MAX_READ` bytes."""
    family, type_, proto, _, _ = addr_info
    sock = _ApiSocket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_PROBES),
    ):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)
    return sock


class AiohttpTransport:
    """Sends one request attempt over an ``aiohttp.ClientSession``.

    ``session``: borrow this session (never closed here). Otherwise one is created on
    first use with a pool of ``max_connections`` (1000) connections, keep-alive probes
    on each socket, TLS verification per ``verify``, proxies from the environment
    when ``trust_env`` (``.netrc`` is never read), no cookie jar (an API client
    should not carry cookies from one call to the next) and no redirect following.
    aiohttp's decompression is off: `Response` decodes gzip and deflate (and br and
    zstd when their package is installed) itself, checked for truncation and bounded
    by the size cap. The ``headers`` middleware asks for those codings
    (``Accept-Encoding``); a request without that header (a stack without
    ``headers``) gets the same value here, and one that omits it gets none.
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        verify: bool | ssl.SSLContext = True,
        trust_env: bool = True,
        proxy: str | URL | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._verify = _check_verify(verify)
        self._trust_env = trust_env
        self._proxy = _check_proxy(proxy)
        self._closed = False
        # Only codings `Response` can decode (aiohttp's own default may name others).
        self._accept_encoding = accept_encoding()
        self._client_timeouts: dict[tuple[Timeout, bool], _AttemptLimits] = {}
        # The limits of a Timeout, by the Timeout object (most calls carry the
        # client's), one memo for buffered attempts and one for streams.
        self._limits_by_timeout: tuple[
            IdentityMemo[_AttemptLimits], IdentityMemo[_AttemptLimits]
        ] = (
            IdentityMemo(),
            IdentityMemo(),
        )
        self._expiries: ExpiryWheel | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Proxy per (scheme, host, port), read from the environment once per origin.
        self._env_proxies: dict[tuple[str, str | None, int | None], URL | None] = {}

    # -- session -------------------------------------------------------------------

    @property
    def owns_session(self) -> bool:
        return self._owns_session

    @property
    def session_created(self) -> bool:
        return self._session is not None

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            if self._closed:
                raise ClientClosedError("the client is closed; create a new one")
            # Pool wait, DNS and connect times go into each request's TimingRecord.
            connector = TimedConnector(
                limit=self._max_connections,
                ssl=self._verify,
                socket_factory=keepalive_socket,
            )
            # A body whose framing breaks after its headers fails its reader instead
            # of leaving it waiting (`_protocol`); one protocol per connection.
            connector._factory = functools.partial(  # type: ignore[assignment]
                ApiResponseHandler, loop=connector._loop
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                request_class=_ApiRequest,
                trust_env=False,  # proxies from the environment are resolved below
                timeout=aiohttp.ClientTimeout(total=None),
                # Bodies are decoded by `Response` (checked for truncation, bounded).
                auto_decompress=False,
                # No session default headers: each would reach every request past Omit.
            )
            # aiohttp re-sends an idempotent request once, on its own, when a pooled
            # connection drops; one call of the transport is one attempt (retries are
            # the ``retry`` middleware's, counted against max_retries).
            session._retry_connection = False
            self._session = session
            self._loop = asyncio.get_running_loop()
        elif self._loop is not None and self._loop.is_closed():
            # (aiohttp would fail with a bare RuntimeError deep in its pool.)
            raise ClientClosedError(
                "the client's connections belong to an event loop that has closed (one "
                "asyncio.run() per call?); create the client inside the event loop that "
                "uses it, e.g. with `async with AsyncClient(...)` in your main coroutine"
            )
        return session

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the owned session lives on (``None`` before first use)."""
        return self._loop

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    @property
    def closed_under_call(self) -> bool:
        """Whether ``close()`` closed the session this transport made: a call still in
        flight then fails because of the client, not the server."""
        return self._closed and self._owns_session

    async def close(self) -> None:
        """Close the owned session (a borrowed one is left alone); idempotent."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
            fail_bodies_in_flight(session)  # a stream still open: ClientClosedError
            await session.close()

    def pool_stats(self) -> PoolStats:
        """How many connections are in use and idle right now."""
        session = self._session
        if session is None or session.closed:
            return PoolStats(in_use=0, idle=0)
        connector: Any = session.connector
        acquired = getattr(connector, "_acquired", ())
        conns = getattr(connector, "_conns", {})
        return PoolStats(in_use=len(acquired), idle=sum(len(c) for c in conns.values()))

    # -- sending -------------------------------------------------------------------

    def _client_timeout(self, request: Request) -> _AttemptLimits:
        """aiohttp's timeout for one attempt, the limit on waiting for the headers of
        a stream, and the ``total`` kept on the shared coarse timer (`_expiry`).

        aiohttp's ``total`` runs from the start of the request until the connection is
        released, so it bounds reading the body too: right for a buffered call (whose
        body ``decode`` reads inside the attempt), wrong for a stream, which it would
        cut off after ``total`` however lively. A stream attempt therefore gets no
        aiohttp ``total``: ``total`` bounds only the wait for its headers, and
        ``sock_read`` each gap between chunks: ``Timeout.read``, or without one
        ``total`` (so that a stream that goes silent is never waited for longer than
        the attempt's own limit; a lively one still outlasts it). A stream answered
        with an error or a redirect has its body read inside the attempt, so what is
        left of that ``total`` bounds the read (`send`). ``connect`` is
        aiohttp's ``connect``, which includes waiting for a free pooled connection.
        With a deadline, ``total`` is cut to what is left of it. A buffered attempt's
        ``total`` of `COARSE_AFTER` seconds or more (the default 600 s), which aiohttp
        would round up to the second, goes on the shared timer instead of aiohttp's
        per-request one: the same limit, without a timer per request.
        """
        timeout = request.options.timeout
        stream = request.options.stream
        memo = self._limits_by_timeout[stream]
        if request.deadline_at is None:
            remembered = memo.last_value if timeout is memo.last_key else memo.get(timeout)
            if remembered is not MISSING:
                return remembered
        given = timeout
        if isinstance(timeout, NotGiven):
            timeout = DEFAULT_TIMEOUT
        elif not isinstance(timeout, Timeout):
            timeout = Timeout.coerce(timeout) or _NO_LIMITS
        total = _finite(timeout.total)
        if request.deadline_at is None:
            key = (timeout, stream)
            limits = self._client_timeouts.get(key)
            if limits is None:
                coarse = (
                    total if not stream and total is not None and total >= COARSE_AFTER else None
                )
                limits = (
                    aiohttp.ClientTimeout(
                        total=None if stream or coarse is not None else total,
                        connect=_finite(timeout.connect),
                        sock_read=_gap_limit(timeout, stream),
                    ),
                    total if stream else None,
                    coarse,
                )
                if len(self._client_timeouts) < 256:
                    self._client_timeouts[key] = limits
            memo.put(given, limits)
            return limits
        remaining = request.deadline_at - Clocks.of(request).monotonic()
        if remaining <= 0:
            raise deadline_error(request, "before it was sent")
        total = remaining if total is None else min(total, remaining)
        client_timeout = aiohttp.ClientTimeout(
            total=None if stream else total,
            connect=_finite(timeout.connect),
            sock_read=_gap_limit(timeout, stream),
            ceil_threshold=math.inf,  # no rounding up past the deadline
        )
        return client_timeout, total if stream else None, None

    def _proxy_for(self, url: URL) -> URL | None:
        if self._proxy is not None or not self._trust_env:
            return self._proxy
        key = (url.scheme, url.host, url.port)
        try:
            return self._env_proxies[key]
        except KeyError:
            proxy = self._env_proxies[key] = _env_proxy(url)
            return proxy

    def _request_options(self, request: Request, url: URL) -> dict[str, Any]:
        """The keywords of ``session.request()`` beyond the ones every call passes,
        only where they differ from the session's defaults (each keyword costs aiohttp
        a little on every request; for most calls there are none)."""
        options: dict[str, Any] = {}
        body = request.body
        if body is not None:
            if isinstance(body, bytes):
                options["data"] = io.BytesIO(body) if len(body) > LARGE_BODY else body
            elif (
                isinstance(body, StreamingBody)
                and (length := request.headers.get("Content-Length")) is not None
            ):
                options["data"] = body.sized(int(length))  # (the caller's own, unchunked)
            else:
                options["data"] = body
        proxy = self._proxy_for(url)
        if proxy is not None:
            options["proxy"] = proxy
        skipped = request.omit_headers
        if (body is not None or request.method in _CONTENT_TYPE_METHODS) and (
            "Content-Type" not in request.headers
        ):
            # No Content-Type of aiohttp's own either (``application/octet-stream`` for
            # ``content=`` bytes or a bodiless POST): the headers on the wire are the
            # request's, as a `Signer` signed them and a `MockTransport` sees them.
            skipped = skipped | _NO_CONTENT_TYPE
        if skipped:
            # A header the caller removed with Omit (User-Agent, Accept, Accept-Encoding)
            # must not come back as one of aiohttp's defaults.
            options["skip_auto_headers"] = skipped
        if not self._owns_session:
            options["auto_decompress"] = False  # an owned session has it off already
            # A borrowed session may raise for 4xx/5xx itself: its ClientResponseError
            # would pass for malformed HTTP, a connection error (and be retried).
            options["raise_for_status"] = False
        return options

    async def send(self, request: Request) -> Response[Any]:
        """Send one attempt; its `Response` as soon as the headers are in."""
        session = self._get_session()
        url = request.url
        if request.query:
            # Encoded in one place, with the client's formats: never guessed here.
            raise InvalidRequestError(
                "request.query reached the transport unencoded: the stack has no `query` "
                "middleware (add stackwire.QueryMiddleware() above the transport)"
            )
        client_timeout, headers_limit, coarse = self._client_timeout(request)
        started = time.monotonic()
        record = TimingRecord(started)
        CURRENT_RECORD.set(record)  # for the pool's hooks (`_timings`)
        expiry: Expiry | None = None
        try:
            headers = request.headers
            if url.raw_user is not None or url.raw_password is not None:
                url, headers = userinfo_as_basic_auth(url, headers, request.omit_headers)
            if "Accept-Encoding" not in headers and "accept-encoding" not in request.omit_headers:
                # Not from ``headers`` (which sends it): only codings `Response` decodes.
                headers = request.with_headers({"Accept-Encoding": self._accept_encoding}).headers
            options = self._request_options(request, url)
            if not self._owns_session:
                headers = _guard_borrowed_session(session, request, headers, options)
            sending = session.request(
                request.method,
                url,
                headers=headers,
                allow_redirects=False,
                timeout=client_timeout,
                **options,
            )
            if coarse is not None:  # ``total`` on the shared timer, until the body is read
                expiry = self._expiry_wheel().start(coarse)
                with expiry:
                    raw = await sending
            elif headers_limit is None:
                raw = await sending
            else:  # a stream: ``total`` bounds the wait for the headers only
                async with asyncio.timeout(headers_limit):
                    raw = await sending
        except (aiohttp.InvalidURL, UnicodeError) as exc:
            # (UnicodeError: a host the lookup's IDNA encoding refuses, ``a..b``.)
            if expiry is not None:
                expiry.done()
            raise InvalidRequestError(
                f"cannot send to {url.with_query(None).with_user(None)}: {exc}"
            ) from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            if expiry is not None:
                expiry.done()
            if self.closed_under_call:
                raise closed_mid_call(request) from exc
            mistake = body_error(request.body)
            if mistake is not None:  # the caller's content= failed, not the connection
                raise mistake from (mistake.__cause__ or exc)
            if isinstance(exc, TimeoutError) and deadline_passed(request):
                error: APIError = deadline_error(request, "before its response came")
            else:
                error = map_transport_error(exc, request)
            attach_timing_record(error, record)
            raise error from exc
        except (ValueError, TypeError) as exc:
            # (After the ClientError branch: a certificate error is a ValueError too.)
            # aiohttp refuses a header it cannot write (CR, LF or NUL in a value, a value
            # that is not a str) with a bare ValueError or TypeError; the ``headers``
            # middleware checks the call's own, so this is one a middleware below it set.
            if expiry is not None:
                expiry.done()
            if isinstance(exc, StackwireError):
                raise
            mistake = body_error(request.body)
            if mistake is not None:
                raise mistake from (mistake.__cause__ or exc)
            raise InvalidRequestError(
                f"cannot send {request_line(request)}: {exc} (a header set by a middleware "
                "must be a str without CR, LF or NUL)"
            ) from exc
        except RuntimeError as exc:
            if expiry is not None:
                expiry.done()
            if session.closed:  # (aiohttp: a bare "Session is closed")
                raise ClientClosedError(
                    "the aiohttp session passed as session= is closed; keep it open "
                    "while the client uses it"
                ) from exc
            raise
        except BaseException as exc:
            if expiry is not None:
                expiry.done()
            if isinstance(exc, asyncio.CancelledError) and self.closed_under_call:
                task = asyncio.current_task()
                if task is not None and not task.cancelling():
                    # Not the caller's cancellation: closing the session cancels the
                    # calls waiting in its pool for a connection.
                    raise closed_mid_call(request) from exc
            raise
        record.headers_at = time.monotonic()
        if not 200 <= raw.status <= 599:
            raise _not_a_final_status(raw, request, record, expiry)
        if headers_limit is not None and raw.status >= 300:
            # A stream's error or redirect body is read inside the attempt (``decode``,
            # ``redirects``), like a buffered body: what is left of ``total`` (cut to
            # the deadline) bounds it, not only each gap.
            left = headers_limit - (record.headers_at - started)
            expiry = self._expiry_wheel().start_exact(max(left, 0.0))
        if record.reused is None and self._owns_session:
            record.reused = True  # our pool opened no connection for it
        response = AiohttpResponse(raw, request, started, expiry, self)
        response.timing_record = record
        return response

    def _expiry_wheel(self) -> ExpiryWheel:
        wheel = self._expiries
        if wheel is None:
            wheel = self._expiries = ExpiryWheel(asyncio.get_running_loop())
        return wheel


def _guard_borrowed_session(
    session: aiohttp.ClientSession,
    request: Request,
    headers: CIMultiDictProxy[str],
    options: dict[str, Any],
) -> CIMultiDictProxy[str]:
    """The headers to hand a borrowed session, and in ``options`` an aiohttp middleware
    when the session would otherwise add what the stack ruled out.

    aiohttp adds a session's own credentials to every request after the stack: its
    default headers (``headers=`` of the session), the cookies of its jar, its
    ``auth=`` and, with ``trust_env``, ``.netrc``. Here they are held to the stack's
    rules: a request marked `CREDENTIALS_DROPPED` (another origin than the base URL's,
    a token grant) gets none of them, only the credentials in its own headers; a header
    the caller removed with `Omit` is removed from the session's defaults too (``Omit``
    of ``Cookie``: no jar cookies; of ``Authorization``: no session ``auth=``). A
    request's own ``Authorization`` wins over the session's ``auth=`` or ``.netrc``
    (aiohttp would refuse the pair with a bare ``ValueError``).

    Cost: for a session without default headers, ``auth=`` or ``trust_env`` and a
    request to the base URL's origin, two attribute reads and one lookup; the
    middleware is built only for the requests that need it.
    """
    defaults = session.headers
    omitted = request.omit_headers
    suppress: set[str] = set()
    if request.extension(CREDENTIALS_DROPPED):
        suppress.update(
            name
            for name in CREDENTIAL_HEADERS | request.sensitive_headers
            if name not in headers and (name != "proxy-authorization" or name in defaults)
        )
    if omitted:
        suppress.update(
            name for name in omitted if name in defaults or name in ("authorization", "cookie")
        )
    authorization: str | None = None
    if (session.auth is not None or session.trust_env) and "Authorization" in headers:
        # Sent past aiohttp's check instead, and set again on the request it builds.
        authorization = headers["Authorization"]
        trimmed = CIMultiDict(headers)
        del trimmed["Authorization"]
        headers = CIMultiDictProxy(trimmed)
    if not suppress and authorization is None:
        return headers

    async def guard(
        built: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
    ) -> aiohttp.ClientResponse:
        for name in suppress:
            built.headers.popall(name, None)
        if authorization is not None:
            built.headers[hdrs.AUTHORIZATION] = authorization
        return await handler(built)

    # Innermost, after the session's own middlewares (per-request ones replace them).
    options["middlewares"] = (*getattr(session, "_middlewares", ()), guard)
    return headers


def userinfo_as_basic_auth(
    url: URL, headers: CIMultiDictProxy[str], omitted: frozenset[str]
) -> tuple[URL, CIMultiDictProxy[str]]:
    """The URL without its ``user:password@`` and the headers with them as ``Authorization:
    Basic``, as aiohttp would send them, but without its failures: aiohttp refuses
    credentials in the URL next to an ``Authorization`` header (a ``ValueError``; here the
    header, the more explicit credential, wins) and cannot encode a name or password
    outside Latin-1 (encoded here as UTF-8, RFC 7617). ``Omit`` of ``Authorization``
    sends neither."""
    bare = url.with_user(None)
    if "Authorization" in headers or "authorization" in omitted:
        return bare, headers
    pair = f"{url.user or ''}:{url.password or ''}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode("utf-8")
    merged = CIMultiDict(headers)
    merged["Authorization"] = SecretValue("Basic " + base64.b64encode(raw).decode("ascii"))
    return bare, CIMultiDictProxy(merged)


def _not_a_final_status(
    raw: aiohttp.ClientResponse, request: Request, record: TimingRecord, expiry: Expiry | None
) -> APIError:
    """The error for a status line whose code is no final HTTP status: outside 100-599
    (RFC 9110 section 15), or a 1xx that aiohttp hands on (an unasked-for ``101``). It
    is malformed HTTP, as aiohttp's parser reports a bad status line (the same
    ``ClientResponseError`` as ``__cause__``), not an API's answer: never a success, nor
    a fake 5xx. The connection is closed, unless its body had already arrived: aiohttp
    has put it back in the pool by then (its framing was sound)."""
    if expiry is not None:
        expiry.done()
    raw.close()
    cause = aiohttp.ClientResponseError(
        raw.request_info,
        (),
        status=raw.status,
        message=f"status {raw.status} is not a final HTTP status, 200 to 599",
    )
    error = map_transport_error(cause, request)
    error.__cause__ = cause
    attach_timing_record(error, record)
    return error


def _gap_limit(timeout: Timeout, stream: bool) -> float | None:
    """The longest wait for data: ``read``; for a stream without one, ``total`` (which
    bounds a stream's headers only, so that a silent stream still ends)."""
    if timeout.read is None and stream:
        return _finite(timeout.total)
    return _finite(timeout.read)


def _finite(seconds: float | None) -> float | None:
    """A limit aiohttp can schedule: an infinite one means no limit."""
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _env_proxy(url: URL) -> URL | None:
    """The proxy for ``url`` from ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``."""
    import urllib.request

    # Upper and lower case names; lower case wins; "all" is ALL_PROXY, "no" NO_PROXY.
    proxies = urllib.request.getproxies_environment()
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxies or url.host is None:
        return None
    # With the port, so that a NO_PROXY entry "host:port" matches too.
    host = f"{url.raw_host}:{url.explicit_port}" if url.explicit_port else url.raw_host
    if bypass(host, proxies):
        return None
    proxy = proxies.get(url.scheme) or proxies.get("all")
    if not proxy:
        return None
    if "://" not in proxy:  # "proxy.local:3128", as curl accepts it
        proxy = f"http://{proxy}"
    return _check_proxy(proxy, source="the environment")


def _check_proxy(proxy: str | URL | None, *, source: str = "proxy=") -> URL | None:
    """A usable proxy URL (http or https, with a host), or `InvalidRequestError`."""
    if proxy is None:
        return None
    try:
        url = URL(proxy) if isinstance(proxy, str) else proxy
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"invalid proxy URL from {source}") from exc
    if not isinstance(url, URL) or url.scheme not in ("http", "https") or not url.host:
        if not isinstance(url, URL):
            shown = type(proxy).__name__
        elif url.absolute:
            shown = str(url.with_user(None))
        else:
            shown = "a URL without a scheme and host"
        raise InvalidRequestError(
            f"proxy URL from {source} must be http:// or https:// with a host, got {shown}"
        )
    return url


def _check_verify(verify: object) -> bool | ssl.SSLContext:
    if isinstance(verify, (bool, ssl.SSLContext)):
        return verify
    raise InvalidRequestError(
        f"verify must be True, False or an ssl.SSLContext, got {type(verify).__name__}"
    )
