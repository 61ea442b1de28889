"""The ``redirects`` middleware: follows 301, 302, 303, 307 and 308 itself.

What it does: when an attempt answers with a redirect status and a ``Location``, it
releases that response and sends the next hop, up to ``max_redirects`` hops; the
``Location`` may be relative (it is resolved against the URL of the hop that
answered). 302 and 303 turn any method but GET and HEAD into a GET without a body
(and without the headers describing one), and 301 does so for a POST only; 307, 308
and a 301 after any other method keep the method and the body byte for byte. That is
what httpx (under the reference SDKs), requests, aiohttp and browsers do with a 301: a
DELETE or PUT answered "moved permanently" is sent to the new URL, never turned into
a GET that succeeds without deleting or storing anything.

It raises `RedirectError` for a hop past ``max_redirects``, a loop (the same method
and URL twice), a ``Location`` that is not an http(s) URL or whose host no lookup could
find (``a..b``, ``a b``), and a hop that keeps the method (307, 308, a 301 not after a
POST) whose body was a stream already sent. A ``Location`` is sent as browsers send
it: relative ones resolved, the fragment dropped, raw bytes and spaces
percent-encoded. The final response's ``request`` is the last hop's request.

Credentials belong to the origin (scheme, host, port) of ``base_url``: a hop to any
other origin, and a first request whose absolute URL is on another origin, is sent
without ``Authorization``, ``Proxy-Authorization``, ``Cookie`` or any header the
client marks sensitive (``request.sensitive_headers``, e.g. ``X-Api-Key``). Once
dropped they stay dropped for the rest of the chain, even on a hop back to the
original origin. Such a request is marked `CREDENTIALS_DROPPED`, so that the stages
below (``auth``) add none, nor the transport from a borrowed session (its default
headers, cookie jar, ``auth=``).

Where it sits: last, just above the transport and below ``decode``, ``retry`` and the
client's ``middlewares=``: a redirect chain is one attempt, so the stages above see
(and decode, and retry) only the final response, and the origin rule applies to
every request that reaches the network, whatever a middleware above added.

Defaults: redirects followed, at most 10 hops. With ``follow_redirects=False`` (on
the client, or per request) the 3xx is handed up unread, and ``decode`` raises it
as an `APIStatusError`.

Retries and timeouts: the chain is one attempt, so the attempt's ``total`` bounds
it whole: each hop is sent with what the hops before it left of ``total`` (for a
stream, until the final headers; its gaps keep their own limit), and ``connect`` and
``read`` apply to every hop. A failure on any hop fails the attempt, and ``retry``
starts the call again from the first URL. `RedirectError` is never retried.
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any

from msgspec.structs import replace
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.urls import check_host
from .._types import NotGiven, Omit
from ..errors import APIError, APITimeoutError, InvalidRequestError, RedirectError
from ..pipeline._memo import MISSING, IdentityMemo
from ..pipeline.body import is_replayable
from ..pipeline.middleware import CallNext
from ..pipeline.options import DEFAULT_TIMEOUT, Timeout
from ..pipeline.request import CREDENTIAL_HEADERS, CREDENTIALS_DROPPED, Request, request_line
from ..pipeline.response import Response

__all__ = [
    "CREDENTIALS_DROPPED",
    "REDIRECT_STATUSES",
    "RedirectMiddleware",
    "origin_of",
    "strip_credentials",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

# Headers that describe a request body: dropped when a redirect turns it into a GET.
BODY_HEADERS = ("Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding")

# A redirect's own body is read (so its connection goes back to the pool) up to this
# size; a longer one is not worth the wait: its connection is closed instead.
DISCARD_LIMIT = 64 * 1024

Origin = tuple[str, str | None, int | None]

# What no host name holds: the WHATWG URL standard's forbidden domain code points,
# less the delimiters a URL is split on (``#/:?@[]``). A Location with one in its host
# is not followed (yarl takes "a b" as a host, which a DNS lookup then fails on).
_FORBIDDEN_IN_HOST = frozenset(" %<>\\^|" + "".join(map(chr, range(32))) + "\x7f")

# (`CREDENTIALS_DROPPED`, set on a request sent without credentials, lives in
# ``pipeline/``: the stages below (``auth``) and the transport read it.)


def origin_of(url: URL) -> Origin:
    """The origin of ``url``: scheme, host and port (the default port when implicit).

    >>> origin_of(URL("https://API.example.com/v1")) == origin_of(URL("https://api.example.com:443/"))
    True
    >>> origin_of(URL("http://api.example.com/")) == origin_of(URL("https://api.example.com/"))
    False
    """
    return (url.scheme.lower(), url.host, url.port)


def strip_credentials(request: Request) -> Request:
    """``request`` without ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and
    every header in ``request.sensitive_headers``."""
    drop = request.sensitive_headers | CREDENTIAL_HEADERS
    headers = request.headers
    if not any(name.lower() in drop for name in headers):
        return request
    kept: CIMultiDict[str] = CIMultiDict(
        (name, value) for name, value in headers.items() if name.lower() not in drop
    )
    return request.replace(headers=CIMultiDictProxy(kept))


class RedirectMiddleware:
    """Follows redirects with the origin rule for credentials; see the module docs.

    ``base_url``: the origin credentials belong to; without it, the origin of each
    call's first URL.
    """

    name = "redirects"

    def __init__(
        self,
        *,
        follow_redirects: bool = True,
        max_redirects: int = 10,
        base_url: URL | str | None = None,
    ) -> None:
        if isinstance(max_redirects, bool) or not isinstance(max_redirects, int):
            raise InvalidRequestError(f"max_redirects must be an int >= 0, got {max_redirects!r}")
        if max_redirects < 0:
            raise InvalidRequestError(f"max_redirects must be an int >= 0, got {max_redirects!r}")
        if not isinstance(follow_redirects, bool):
            raise InvalidRequestError(
                f"follow_redirects must be True or False, got {follow_redirects!r}"
            )
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self.base_url = URL(base_url) if isinstance(base_url, str) else base_url
        self._origin = origin_of(self.base_url) if self.base_url is not None else None
        # Whether a URL is foreign, by URL: most calls of a client go to a handful of
        # paths, whose joined URLs are shared objects.
        self._foreign_urls: IdentityMemo[bool] = IdentityMemo()

    def _foreign(self, url: URL) -> bool:
        """Whether ``url`` is outside the base URL's origin."""
        memo = self._foreign_urls
        foreign = memo.last_value if url is memo.last_key else memo.get(url)
        if foreign is MISSING:
            foreign = origin_of(url) != self._origin
            self._foreign_urls.put(url, foreign)
        return foreign

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        follow = request.options.follow_redirects
        if isinstance(follow, NotGiven):
            follow = self.follow_redirects
        elif follow is None:  # off for this call
            follow = False
        elif not isinstance(follow, bool):
            raise InvalidRequestError(f"follow_redirects must be True or False, got {follow!r}")
        url = request.url
        # Credentials belong to the base URL's origin, else to the first URL's (known
        # once the first redirect comes).
        trusted = self._origin
        memo = self._foreign_urls  # (its last pair tested in line: the usual call)
        stripped = trusted is not None and (
            memo.last_value if url is memo.last_key else self._foreign(url)
        )
        if stripped:
            # (Marked too: a borrowed session would add its own credentials.)
            request = strip_credentials(request).with_extension(CREDENTIALS_DROPPED, True)
        if not follow:
            return await call_next(request)

        seen: set[tuple[str, URL]] | None = None
        hops = 0
        while True:
            response = await call_next(request)
            if response.status_code not in REDIRECT_STATUSES:
                return response
            location = response.headers.get("Location")
            if location is None:
                return response
            if seen is None:
                seen = {(request.method, url)}
                if trusted is None:
                    trusted = origin_of(url)
                # The attempt's ``total`` and when the chain started (on the transport's
                # clock: the response's time so far is the first hop's), set here, at
                # the first redirect, for the hops after it.
                total = _total_of(request)
                chain_started = time.monotonic() - response.elapsed.total_seconds()
            await _discard(response)
            if hops >= self.max_redirects:
                raise RedirectError(
                    f"More than max_redirects={self.max_redirects} redirects, the last from "
                    f"{request_line(request.replace(url=url))}; "
                    "raise max_redirects to follow longer chains",
                    response=response,
                    location=location,
                )
            next_url, own_userinfo = _resolve_location(url, location, response)
            request = _next_hop(request, response, next_url, location)
            if "Host" in request.headers and origin_of(next_url) != origin_of(url):
                request = request.with_headers({"Host": Omit()})
            if stripped or origin_of(next_url) != trusted:
                stripped = True
                request = strip_credentials(request).with_extension(CREDENTIALS_DROPPED, True)
                if not own_userinfo and (next_url.user or next_url.password):
                    # URL credentials are not inherited past a credential drop.
                    next_url = next_url.with_user(None)
                    request = request.replace(url=next_url)
            key = (request.method, next_url)
            if key in seen:
                shown = next_url.with_query(None).with_user(None)
                raise RedirectError(
                    f"Redirect loop: {request.method} {shown} was "
                    f"already requested in this chain (status {response.status_code})",
                    response=response,
                    location=location,
                )
            seen.add(key)
            if total is not None:
                request = _within_total(request, total, time.monotonic() - chain_started)
            url = next_url
            hops += 1

    def __repr__(self) -> str:
        return (
            f"RedirectMiddleware(follow_redirects={self.follow_redirects}, "
            f"max_redirects={self.max_redirects})"
        )


async def _discard(response: Response[Any]) -> None:
    """Read a redirect's body so its connection can be reused (closed on failure)."""
    # On failure read() has closed the connection; the redirect itself is complete.
    with contextlib.suppress(APIError):
        await response.read(max_bytes=DISCARD_LIMIT)


def _resolve_location(current: URL, location: str, response: Response[Any]) -> tuple[URL, bool]:
    """The URL a ``Location`` points to, and whether it names its own userinfo."""
    try:
        target = URL(_as_browsers_send(location.strip()))
        next_url = current.join(target)
        check_host(next_url)  # a host the resolver refuses (``a..b``): a bad Location
        host = next_url.raw_host or ""
        if ":" not in host and not _FORBIDDEN_IN_HOST.isdisjoint(host):  # (":": IPv6)
            raise ValueError("a character that no host name has")  # (yarl takes "a b")
    except (ValueError, TypeError) as exc:  # (UnicodeError is a ValueError)
        raise RedirectError(
            f"Redirect (status {response.status_code}) to an invalid Location",
            response=response,
            location=location,
        ) from exc
    if next_url.scheme not in ("http", "https") or not next_url.host:
        # Only the scheme is shown: a ``javascript:`` or ``data:`` target is not a URL
        # with userinfo to strip, and its text is the server's, not something to echo.
        shown = f"a {next_url.scheme}: URL" if next_url.scheme else "a URL without a host"
        raise RedirectError(
            f"Redirect (status {response.status_code}) to a Location that is not an "
            f"http(s) URL ({shown}); only http and https redirects are followed",
            response=response,
            location=location,
        )
    return next_url.with_fragment(None), target.user is not None


def _total_of(request: Request) -> float | None:
    """The attempt's finite ``total`` timeout, if it has one."""
    timeout = request.options.timeout
    if isinstance(timeout, NotGiven):
        timeout = DEFAULT_TIMEOUT
    elif not isinstance(timeout, Timeout):
        timeout = Timeout.coerce(timeout)
    if timeout is None or timeout.total is None or not math.isfinite(timeout.total):
        return None
    return float(timeout.total)


def _within_total(request: Request, total: float, spent: float) -> Request:
    """The next hop with what the chain so far left of the attempt's ``total``."""
    left = total - spent
    if left <= 0:
        cause = TimeoutError(f"the redirects took {spent:.3g} s")
        raise APITimeoutError(
            f"Request timed out: {request_line(request)}: the redirects before it took "
            f"the attempt's whole total timeout of {total:g} s",
            request=request,
        ) from cause
    options = request.options
    timeout = options.timeout
    if not isinstance(timeout, Timeout):  # (a float, or the default: resolved as above)
        timeout = DEFAULT_TIMEOUT if isinstance(timeout, NotGiven) else Timeout.coerce(timeout)
        assert timeout is not None
    # A stream's gaps fall back to ``total`` when ``read`` is unset: the full one.
    read = total if options.stream and timeout.read is None else timeout.read
    timeout = replace(timeout, total=left, read=read)
    return request.replace(options=replace(options, timeout=timeout))


def _as_browsers_send(location: str) -> str:
    """``location`` with its raw bytes and spaces percent-encoded, as browsers send them.

    A header byte that is not UTF-8 arrives as a surrogate escape (aiohttp decodes
    headers with ``surrogateescape``), which yarl would drop ("/caf\\xe9" to "/caf",
    another resource); a space in a query would become "+", which a server cannot
    tell from a literal plus.

    >>> _as_browsers_send("/caf\\udce9?q=a b")
    '/caf%E9?q=a%20b'
    """
    if location.isascii() and " " not in location:
        return location  # (the usual Location: nothing to encode)
    encoded = []
    for char in location:
        if "\udc80" <= char <= "\udcff":  # the raw byte ord(char) - 0xDC00
            char = f"%{ord(char) - 0xDC00:02X}"
        elif char == " ":
            char = "%20"
        encoded.append(char)
    return "".join(encoded)


def _next_hop(request: Request, response: Response[Any], url: URL, location: str) -> Request:
    status = response.status_code
    if status in (307, 308) or (status == 301 and request.method != "POST"):
        if not is_replayable(request.body):
            raise RedirectError(
                f"Redirect (status {status}) asks to send the request body again, but it "
                "was a stream that is already sent; pass bytes to allow redirects",
                response=response,
                location=location,
            )
        return request.replace(url=url, query=None)
    if request.method in ("GET", "HEAD"):
        return request.replace(url=url, query=None)
    changed = request.replace(method="GET", url=url, query=None, body=None)
    headers = request.headers
    if any(name in headers for name in BODY_HEADERS):
        changed = changed.with_headers({name: Omit() for name in BODY_HEADERS})
    return changed
