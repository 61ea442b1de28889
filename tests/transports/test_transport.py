"""The aiohttp transport: its session (owned or borrowed), the pool, keep-alive on
real sockets, and connections that fail or are cancelled mid-body."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

import stackwire
from stackwire import CallNext, Request, Response
from stackwire.transports.aiohttp_transport import AiohttpTransport
from tests.conftest import EchoServer, RawHandler, RawServer, Serve, read_request, routes
from tests.sync.test_sync_client import ServerThread

MakeClient = Callable[..., stackwire.AsyncClient]
EchoStart = Callable[[], Awaitable[tuple[str, EchoServer]]]
RawStart = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]


# -- the session ----------------------------------------------------------------------


async def test_owned_session_is_created_on_first_use_and_closed(
    echo_server: EchoStart,
) -> None:
    base, _ = await echo_server()
    client = stackwire.AsyncClient(base)
    transport = client.transport
    assert isinstance(transport, AiohttpTransport)
    assert transport.owns_session
    assert not transport.session_created  # nothing happens before the first call
    await client.get("/a")
    session = transport._session
    assert session is not None
    connector = session.connector
    assert isinstance(connector, aiohttp.TCPConnector)
    assert connector.limit == 1000
    await client.close()
    assert session.closed


def test_a_client_used_after_its_event_loop_closed_says_so() -> None:
    # One asyncio.run() per call: the second finds the session on a closed loop, which
    # aiohttp reports as a bare RuntimeError("Event loop is closed") from its pool.
    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"n": 1}, headers={"Connection": "close"})  # none pooled

    servers = ServerThread()
    try:
        client = stackwire.AsyncClient(servers.app(routes(("GET", "/x", answer))))

        async def call() -> object:
            return await client.get("/x", cast_to=dict)

        assert asyncio.run(call()) == {"n": 1}
        with pytest.raises(stackwire.ClientClosedError, match="event loop that has closed"):
            asyncio.run(call())
        asyncio.run(client.close())
    finally:
        servers.close()


async def test_borrowed_session_is_used_and_never_closed(echo_server: EchoStart) -> None:
    base, server = await echo_server()
    session = aiohttp.ClientSession()
    try:
        client = stackwire.AsyncClient(base, session=session)
        assert isinstance(client.transport, AiohttpTransport)
        assert not client.transport.owns_session
        await client.get("/a")
        await client.get("/b")
        assert server.connections == 1
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
        derived = client.with_options(max_retries=0)
        await derived.get("/c")
        await derived.close()
        await client.close()
        assert not session.closed
        with pytest.raises(stackwire.ClientClosedError):
            await client.get("/d")
        # The session still works for its owner.
        async with session.get(base + "e") as response:
            assert response.status == 200
    finally:
        await session.close()
    assert [r.target for r in server.requests] == ["/a", "/b", "/c", "/e"]


async def test_a_borrowed_session_that_raises_for_status_still_gives_status_errors(
    serve: Serve, make_client: MakeClient
) -> None:
    # aiohttp's own ClientResponseError for the 404 passed for malformed HTTP: an
    # APIConnectionError, retried twice.
    hits: list[str] = []

    async def missing(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"error": "no such user"}, status=404)

    base = await serve(routes(("GET", "/users/1", missing)))
    async with aiohttp.ClientSession(raise_for_status=True) as session:
        client = make_client(base, session=session, max_retries=2)
        with pytest.raises(stackwire.NotFoundError) as info:
            await client.get("/users/1")
        assert info.value.body == {"error": "no such user"}
        assert hits == ["/users/1"]
        assert client.pool_stats().in_use == 0
        await client.close()


async def test_unclosed_client_with_borrowed_session_does_not_warn(
    echo_server: EchoStart,
) -> None:
    base, _ = await echo_server()
    session = aiohttp.ClientSession()
    client = stackwire.AsyncClient(base, session=session)
    await client.get("/a")
    del client  # the session is the caller's to close: no ResourceWarning
    await session.close()


async def test_the_pool_limit_reaches_the_connector(
    raw_server: Callable[[RawHandler], Awaitable[tuple[str, RawServer]]],
) -> None:
    # Each connection answers only once `release` is set: with max_connections=2,
    # the third of three concurrent calls waits for a free connection.
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            await release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    base, server = await raw_server(slow)
    async with stackwire.AsyncClient(base, max_connections=2) as client:
        calls = [asyncio.ensure_future(client.get("/a")) for _ in range(3)]
        for _ in range(50):
            await asyncio.sleep(0.01)
            # (The server counts a connection a loop turn or so after the client has it.)
            if client.pool_stats().in_use == 2 and server.connections == 2:
                break
        assert client.pool_stats().in_use == 2
        assert server.connections == 2
        release.set()
        await asyncio.gather(*calls)
    assert server.connections == 2  # the third call reused a released connection


# -- real sockets ----------------------------------------------------------------------


class SocketProbe:
    """Reads the options of the socket the attempt's connection uses."""

    name = "socket_probe"

    def __init__(self) -> None:
        self.options: dict[str, int] = {}
        self.looked = asyncio.Event()

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        response = await call_next(request)
        connection = response.raw.connection  # held: the body is still being sent
        assert connection is not None
        assert connection.transport is not None
        sock: socket.socket = connection.transport.get_extra_info("socket")
        self.options["SO_KEEPALIVE"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)
        for option in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT"):
            if hasattr(socket, option):
                self.options[option] = sock.getsockopt(socket.IPPROTO_TCP, getattr(socket, option))
        self.looked.set()
        return response


async def test_sockets_have_tcp_keepalive(serve: Serve, make_client: MakeClient) -> None:
    probe = SocketProbe()

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"a")
        # Finish the body once the client has looked (or, if it failed, soon).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await probe.looked.wait()
        await response.write_eof()
        return response

    client = make_client(await serve(routes(("GET", "/a", slow_body))), middlewares=[probe])
    assert await client.get("/a", cast_to=bytes) == b"a"
    assert probe.options["SO_KEEPALIVE"] != 0
    if sys.platform.startswith("linux"):
        assert probe.options["TCP_KEEPIDLE"] == 60
        assert probe.options["TCP_KEEPINTVL"] == 60
        assert probe.options["TCP_KEEPCNT"] == 5


async def test_connections_are_reused(echo_server: EchoStart, make_client: MakeClient) -> None:
    base, server = await echo_server()
    client = make_client(base)
    await asyncio.gather(*(client.get("/a") for _ in range(5)))
    opened = server.connections
    assert 1 <= opened <= 5
    for _ in range(5):
        await client.get("/b")
    assert server.connections == opened
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=opened)


# -- one attempt is one request ------------------------------------------------------


async def test_a_dropped_pooled_connection_is_not_resent_behind_max_retries(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    # The first request is answered (keep-alive); the second is read and dropped.
    requests: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, _, _ = await read_request(reader)
        requests.append(line)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        line, _, _ = await read_request(reader)
        requests.append(line)
        writer.close()

    base, server = await raw_server(handler)
    client = make_client(base, max_retries=0)
    await client.get("/first")
    with pytest.raises(stackwire.APIConnectionError):
        await client.get("/second")
    assert requests == ["GET /first HTTP/1.1", "GET /second HTTP/1.1"]
    assert server.connections == 1
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


# -- failures mid-body ---------------------------------------------------------------


def _partial_body(stall: asyncio.Event | None = None) -> RawHandler:
    """Headers promising 100 bytes, 10 of them, then (optionally) a stall, then close."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            await writer.drain()
            if stall is None:
                writer.close()
                return
            await stall.wait()

    return handler


async def test_connection_failing_mid_body_is_not_pooled(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    base, server = await raw_server(_partial_body())
    client = make_client(base, max_retries=1)
    with pytest.raises(stackwire.APIConnectionError) as caught:
        await client.get("/x", cast_to=bytes)
    assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)
    assert caught.value.retries_taken == 1  # a dropped body is retryable
    assert server.connections == 2
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_too_large_body_closes_a_live_connection(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    stall = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # Chunked (no Content-Length to refuse early), and the body is not over yet.
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"3e8\r\n" + b"x" * 1000 + b"\r\n" + b"3e8\r\n" + b"y" * 1000 + b"\r\n")
        await writer.drain()
        await stall.wait()

    base, server = await raw_server(handler)
    client = make_client(base)
    with pytest.raises(stackwire.ResponseTooLargeError) as caught:
        await client.get("/big", cast_to=bytes, max_response_bytes=1500)
    assert caught.value.limit == 1500
    assert server.connections == 1  # never retried
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    stall.set()


async def test_too_large_content_length_fails_before_reading(
    serve: Serve, make_client: MakeClient
) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"z" * 5000)

    client = make_client(await serve(routes(("GET", "/big", big))))
    with pytest.raises(stackwire.ResponseTooLargeError):
        await client.get("/big", cast_to=bytes, max_response_bytes=100)
    assert client.pool_stats().in_use == 0
    assert len(await client.get("/big", cast_to=bytes)) == 5000
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_cancelling_mid_body_leaves_nothing_in_use(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    stall = asyncio.Event()
    base, _ = await raw_server(_partial_body(stall))
    headers_in = asyncio.Event()

    async def mark(request: Request, call_next: CallNext) -> Response[Any]:
        response = await call_next(request)
        headers_in.set()  # decode reads the body after this returns
        return response

    client = make_client(base, middlewares=[mark])

    async def fetch() -> bytes:
        return await client.get("/x", cast_to=bytes)

    task = asyncio.create_task(fetch())
    await headers_in.wait()
    for _ in range(5):
        await asyncio.sleep(0)
    assert not task.done()
    assert client.pool_stats().in_use == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    stall.set()


async def test_cancelling_while_waiting_for_headers_leaves_nothing_in_use(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    got_request = asyncio.Event()
    never = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await never.wait()

    base, _ = await raw_server(handler)
    client = make_client(base)

    async def fetch() -> Any:
        return await client.get("/x")

    task = asyncio.create_task(fetch())
    await got_request.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_read_timeout_mid_body_closes_the_connection(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    stall = asyncio.Event()
    base, _ = await raw_server(_partial_body(stall))
    client = make_client(base, max_retries=0, timeout=stackwire.Timeout(read=0.05))
    with pytest.raises(stackwire.APITimeoutError):
        await client.get("/x", cast_to=bytes)
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    stall.set()


# -- the lean per-request path ---------------------------------------------------------


async def test_socket_reads_ask_for_at_most_max_read(raw_server: RawStart) -> None:
    from stackwire.transports.aiohttp_transport import MAX_READ, keepalive_socket

    async def flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * 4 * MAX_READ)
        await writer.drain()
        await reader.read()  # until the client hangs up

    def buffered(sock: socket.socket) -> int:
        try:  # a peek through the base class: past the cap
            return len(socket.socket.recv(sock, 2 * MAX_READ, socket.MSG_PEEK))
        except BlockingIOError:
            return 0

    base, _ = await raw_server(flood)
    port = int(base.rstrip("/").rsplit(":", 1)[1])
    info = socket.getaddrinfo("127.0.0.1", port, type=socket.SOCK_STREAM)[0]
    sock = keepalive_socket(info)
    try:
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, info[4])
        async with asyncio.timeout(5):
            # Polling the kernel's buffer: there is no event to wait on.
            while buffered(sock) <= MAX_READ:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
        chunk = sock.recv(256 * 1024)  # what asyncio asks for
        assert len(chunk) == MAX_READ
    finally:
        sock.close()


async def test_headers_reach_the_socket_once_each_after_host(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base, headers={"X-One": "1"})
    await client.get("/a", headers={"X-Two": "2"})
    await client.get("/b", headers={"Host": "api.example.test"})
    first, second = server.requests
    names = [name.lower() for name, _ in first.headers]
    assert names[0] == "host"
    assert len(names) == len(set(names))  # one line per header
    assert first.header_values("X-One") == ["1"]
    assert first.header_values("X-Two") == ["2"]
    assert first.header_values("X-Retry-Count") == ["0"]
    # A Host of the caller's own replaces the URL's (aiohttp's own path).
    assert second.header_values("Host") == ["api.example.test"]


@pytest.mark.parametrize(
    "given",
    [
        [],
        [("Accept", "application/json"), ("User-Agent", "stackwire/test")],
        [("X-Twice", "1"), ("x-twice", "2"), ("Authorization", "Bearer k")],
        [("host", "other.test"), ("X-One", "1")],
        [("X-One", "1"), ("HOST", "other.test:81")],
    ],
)
async def test_the_request_class_takes_headers_as_aiohttp_does(
    given: list[tuple[str, str]],
) -> None:
    from multidict import CIMultiDict
    from yarl import URL

    from stackwire.transports.aiohttp_transport import _ApiRequest

    loop = asyncio.get_running_loop()
    url = URL("http://api.test:8080/v1/users")
    ours = _ApiRequest("GET", url, headers=CIMultiDict(given), loop=loop)
    theirs = aiohttp.ClientRequest("GET", url, headers=CIMultiDict(given), loop=loop)
    assert list(ours.headers.items()) == list(theirs.headers.items())


async def test_a_body_that_arrived_with_the_headers_is_taken_without_a_wait(
    echo_server: EchoStart,
) -> None:
    base, _ = await echo_server()
    client = stackwire.AsyncClient(base)
    try:
        async with client.with_streaming_response.get("/a") as response:
            # The echo server writes status, headers and body in one piece.
            assert response.raw.content.is_eof()
            assert response.read_now() == b"{}"
            assert response.content == b"{}"
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    finally:
        await client.close()


async def test_a_body_that_arrived_whole_still_meets_the_cap_and_the_timer(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, _ = await echo_server()
    client = make_client(base)
    assert await client.get("/a", cast_to=dict) == {}
    with pytest.raises(stackwire.ResponseTooLargeError):
        await client.get("/a", max_response_bytes=1)
    # Every attempt's share of the coarse timer was given back.
    assert isinstance(client.transport, AiohttpTransport)
    wheel = client.transport._expiries
    assert wheel is not None
    assert all(not bucket for bucket in wheel._buckets.values())


async def test_an_unencoded_query_is_refused_not_guessed(echo_server: EchoStart) -> None:
    # A stack without the ``query`` middleware would otherwise send the query encoded
    # with formats the client was never asked for.
    base, server = await echo_server()
    transport = AiohttpTransport()
    handler = stackwire.Pipeline([]).compose(transport.send)
    request = Request(method="GET", url=URL(base + "a"), query={"ids": [1, 2]})
    try:
        with pytest.raises(stackwire.InvalidRequestError, match="no `query` middleware"):
            await handler(request)
    finally:
        await transport.close()
    assert server.connections == 0


async def test_a_host_the_resolver_refuses_is_an_invalid_request() -> None:
    # A URL a middleware built (the client and ``redirects`` check their own): the
    # lookup's IDNA encoding refuses an empty label with a bare UnicodeError.
    transport = AiohttpTransport()
    request = Request(method="GET", url=URL("http://api..test/a"))
    try:
        with pytest.raises(stackwire.InvalidRequestError, match="cannot send to") as info:
            await transport.send(request)
    finally:
        await transport.close()
    assert isinstance(info.value.__cause__, UnicodeError)


@pytest.mark.parametrize("option", ["max_response_bytes", "max_event_bytes"])
def test_decode_checks_its_own_caps(option: str) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match=option):
        stackwire.DecodeMiddleware(**{option: -1})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "cause"),
    [("a\r\nX-Injected: 1", ValueError), ("a\x00b", ValueError), (5, TypeError)],
)
async def test_a_header_aiohttp_cannot_write_is_an_invalid_request_error(
    echo_server: EchoStart, make_client: MakeClient, value: object, cause: type[Exception]
) -> None:
    # A middleware below ``headers`` (an auth, a signer, your own) may set a header the
    # ``headers`` middleware never saw: aiohttp refused it with a bare ValueError or
    # TypeError, which is no stackwire error.
    async def bad_header(request: Request, call_next: CallNext) -> Response[Any]:
        return await call_next(request.with_headers({"X-Signed": value}))  # type: ignore[arg-type]

    base, server = await echo_server()
    client = make_client(base).with_middleware(bad_header)
    with pytest.raises(stackwire.InvalidRequestError, match="cannot send GET") as caught:
        await client.get("/x")
    assert isinstance(caught.value.__cause__, cause)
    assert server.requests == []
    assert client.pool_stats().in_use == 0
