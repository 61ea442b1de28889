"""`AiohttpTransport`: the terminal stage, sending one attempt with aiohttp.

Obligations (the transport contract):

- send exactly one HTTP request per call; never follow redirects (stackwire's
  ``redirects`` middleware does), never retry;
- return as soon as the headers are in, the body unread: the `Response` owns the
  connection from then on;
- map every aiohttp or OS failure to `APIConnectionError` / `APITimeoutError` with the
  original as ``__cause__`` (a malformed response is a connection error, never an HTTP
  status) and scrub request headers out of that original;
- never catch ``CancelledError``; release or close the connection on every path.

Its session is created on first use (inside the running loop) and owned, or borrowed
from the caller and then never closed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import Any

import aiohttp
import msgspec
from yarl import URL

from .._query import encode_params
from .._types import NotGiven
from ..errors import APITimeoutError, ClientClosedError, InvalidRequestError
from ._aiohttp_errors import map_transport_error
from .options import DEFAULT_TIMEOUT, Timeout
from .request import Request
from .response import Response

__all__ = ["AiohttpTransport", "PoolStats"]

# TCP keep-alive probes on every socket: first probe after 60 s idle, then every
# 60 s, the connection is dropped after 5 unanswered probes.
KEEPALIVE_IDLE = 60
KEEPALIVE_INTERVAL = 60
KEEPALIVE_PROBES = 5


class PoolStats(msgspec.Struct, frozen=True):
    """Connections of the transport's pool: checked out by a request, and idle."""

    in_use: int
    idle: int


def keepalive_socket(addr_info: Any) -> socket.socket:
    """A socket with TCP keep-alive probes on, where the platform has them."""
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
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
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = 1000,
        verify: bool | ssl.SSLContext = True,
        trust_env: bool = True,
        proxy: str | URL | None = None,
    ) -> None:
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._verify = verify
        self._trust_env = trust_env
        self._proxy = URL(proxy) if isinstance(proxy, str) else proxy
        self._closed = False
        self._client_timeouts: dict[tuple[Timeout, float | None], aiohttp.ClientTimeout] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        # Proxy per (scheme, host), read from the environment once per origin.
        self._env_proxies: dict[tuple[str, str | None], URL | None] = {}

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
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ssl=self._verify,
                socket_factory=keepalive_socket,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,  # proxies from the environment are resolved below
                timeout=aiohttp.ClientTimeout(total=None),
                auto_decompress=True,
            )
            self._session = session
            self._loop = asyncio.get_running_loop()
        return session

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the owned session lives on (``None`` before first use)."""
        return self._loop

    async def aclose(self) -> None:
        """Close the owned session (a borrowed one is left alone)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session and not session.closed:
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

    def _client_timeout(self, request: Request) -> aiohttp.ClientTimeout:
        timeout = request.options.timeout
        if isinstance(timeout, NotGiven):
            timeout = DEFAULT_TIMEOUT
        elif not isinstance(timeout, Timeout):
            timeout = Timeout.coerce(timeout) or Timeout(total=None, connect=None)
        total = timeout.total
        remaining: float | None = None
        if request.deadline_at is not None:
            remaining = request.deadline_at - time.monotonic()
            if remaining <= 0:
                raise APITimeoutError(
                    f"Deadline passed before {request.method} {request.url.with_query(None)} "
                    "was sent",
                    request=request,
                )
            total = remaining if total is None else min(total, remaining)
            # Rounded so that the cache of ClientTimeout objects stays small.
            remaining = round(total, 3)
        key = (timeout, remaining)
        cached = self._client_timeouts.get(key)
        if cached is None:
            cached = aiohttp.ClientTimeout(
                total=remaining if remaining is not None else total,
                connect=timeout.connect,
                sock_read=timeout.read,
            )
            if len(self._client_timeouts) < 256:
                self._client_timeouts[key] = cached
        return cached

    def _proxy_for(self, url: URL) -> URL | None:
        if self._proxy is not None or not self._trust_env:
            return self._proxy
        key = (url.scheme, url.host)
        try:
            return self._env_proxies[key]
        except KeyError:
            proxy = self._env_proxies[key] = _env_proxy(url)
            return proxy

    async def __call__(self, request: Request) -> Response[Any]:
        session = self._get_session()
        url = request.url
        if request.query:
            url = url.extend_query(encode_params(request.query))
        client_timeout = self._client_timeout(request)
        body = request.body
        started = time.monotonic()
        try:
            raw = await session.request(
                request.method,
                url,
                headers=request.headers,
                data=body,
                allow_redirects=False,
                timeout=client_timeout,
                proxy=self._proxy_for(url),
            )
        except aiohttp.InvalidURL as exc:
            raise InvalidRequestError(f"cannot send to {url.with_query(None)}: {exc}") from exc
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise map_transport_error(exc, request) from exc
        return Response(raw, request, started_at=started)


def _env_proxy(url: URL) -> URL | None:
    """The proxy for ``url`` from ``HTTP(S)_PROXY`` / ``ALL_PROXY`` / ``NO_PROXY``."""
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if not proxies or url.host is None:
        return None
    if bypass(url.host, proxies):
        return None
    proxy = proxies.get(url.scheme) or proxies.get("all")
    return URL(proxy) if proxy else None
