"""Turning aiohttp and OS failures into stackwire errors, without leaking secrets.

aiohttp's ``ClientResponseError`` carries the request headers and URL in its ``repr()``
(via ``request_info``); since the original exception becomes ``__cause__`` of the error
the user sees, its request info is rewritten first: sensitive header values and secret
query values (``api_key=...``) redacted.
"""

from __future__ import annotations

import asyncio

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.redaction import redact_url
from ..errors import APIConnectionError, APIError, APITimeoutError, ClientClosedError
from ..pipeline.request import Request, redact, request_line
from ._protocol import MalformedBodyError

__all__ = ["closed_mid_call", "map_transport_error"]


def _scrub(exc: BaseException, request: Request) -> None:
    if not isinstance(exc, aiohttp.ClientResponseError):
        return
    info = exc.request_info
    sensitive = request.sensitive_headers
    clean = CIMultiDict(
        (name, redact(value) if name.lower() in sensitive else value)
        for name, value in info.headers.items()
    )
    scrubbed = aiohttp.RequestInfo(
        _shown(info.url), info.method, CIMultiDictProxy(clean), _shown(info.real_url)
    )
    exc.request_info = scrubbed
    exc.args = (scrubbed, exc.history)
    if exc.headers is not None:
        exc.headers = CIMultiDictProxy(
            CIMultiDict(
                (name, redact(value) if name.lower() in sensitive else value)
                for name, value in exc.headers.items()
            )
        )


def _shown(url: URL) -> URL:
    """``url`` without userinfo and with secret query values redacted (aiohttp's
    ``repr()`` of the error shows it)."""
    if not url.raw_query_string and url.raw_user is None and url.raw_password is None:
        return url
    return URL(redact_url(url), encoded=True)


def map_transport_error(exc: BaseException, request: Request) -> APIError:
    """The stackwire error for a failure of one attempt; chain it with ``from exc``.

    Timeouts (``asyncio.TimeoutError``, aiohttp's socket timeouts) become
    `APITimeoutError`; everything else (refused, reset, malformed HTTP, truncated
    body, TLS) becomes `APIConnectionError`. A ``ClientResponseError`` raised by
    aiohttp's parser for malformed HTTP is a connection error, not an HTTP status.
    """
    _scrub(exc, request)
    where = request_line(request)
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return APITimeoutError(f"Request timed out: {where}", request=request)
    detail = type(exc).__name__
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        # The proxy answered the CONNECT with a status: no tunnel, so no request
        # reached the origin (not a malformed response: the proxy's answer is sound).
        detail = f"the proxy refused the tunnel: {exc.status} {exc.message}"
    elif isinstance(exc, aiohttp.ClientResponseError):
        detail = f"malformed response from the server ({exc.message})"
    elif isinstance(exc, MalformedBodyError):
        detail = f"malformed response body from the server ({exc})"
    elif isinstance(exc, aiohttp.ClientPayloadError):
        detail = f"the response body was cut short ({exc})"
    elif isinstance(exc, aiohttp.ServerDisconnectedError):
        detail = "the server closed the connection without a complete response"
    elif isinstance(exc, (aiohttp.ClientError, OSError)) and str(exc):
        detail = f"{type(exc).__name__}: {exc}"
    return APIConnectionError(f"Connection error: {where}: {detail}", request=request)


def closed_mid_call(request: Request) -> ClientClosedError:
    """The error of an attempt whose client closed its session under it (``close()``
    from another task or thread while the call was in flight); chain it with ``from
    exc``. aiohttp reports that as the server hanging up, which it did not; and as a
    connection error it would be retried, on a session that is gone."""
    return ClientClosedError(
        f"{request_line(request)}: the client was closed while the request was in flight"
    )
