"""Shared fixtures: real servers on 127.0.0.1 and clients checked for leaks.

- ``serve(app_or_routes)``: starts an aiohttp test server on 127.0.0.1, returns its
  base URL (``http://127.0.0.1:PORT/``).
- ``raw_server(handler)``: a scripted raw TCP server for faults; ``handler(reader,
  writer)`` speaks (or breaks) HTTP by hand. Returns the base URL; ``.connections``
  counts accepted connections.
- ``make_client(base_url, **options)``: an `AsyncClient` (no real sleeping: retries
  sleep through a recorder, ``client_sleeps``) closed after the test, which fails if
  any connection is still in use.

After every test: no connection in use, no task left running; ``ResourceWarning``
is an error everywhere (pytest's ``filterwarnings = error``) and a garbage collection
runs so unclosed objects are found in the test that made them.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire

RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
Serve = Callable[[web.Application], Awaitable[str]]


class SleepRecorder:
    """An injectable ``sleep`` that records delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
def client_sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    servers: list[TestServer] = []

    async def start(app: web.Application) -> str:
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/"))

    yield start
    for server in servers:
        await server.close()


class RawServer:
    def __init__(self, handler: RawHandler) -> None:
        self.handler = handler
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, host="127.0.0.1", port=0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


async def read_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, str], bytes]:
    """Read one HTTP/1.1 request (headers and a Content-Length body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    length = int(headers.get("content-length", "0"))
    if length:
        body = await reader.readexactly(length)
    return lines[0], headers, body


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]]:
    servers: list[RawServer] = []

    async def start(handler: RawHandler) -> tuple[str, RawServer]:
        server = RawServer(handler)
        servers.append(server)
        return await server.start(), server

    yield start
    for server in servers:
        await server.close()


@pytest.fixture
async def make_client(
    client_sleeps: SleepRecorder,
) -> AsyncIterator[Callable[..., stackwire.AsyncClient]]:
    clients: list[stackwire.AsyncClient] = []

    def make(base_url: str, **options: Any) -> stackwire.AsyncClient:
        options.setdefault("sleep", client_sleeps)
        client = stackwire.AsyncClient(base_url, **options)
        clients.append(client)
        return client

    yield make
    leaks = [(c.base_url, c.pool_stats()) for c in clients if c.pool_stats().in_use]
    for client in clients:
        await client.close()
    assert not leaks, f"connections still in use after the test: {leaks}"


@pytest.fixture(autouse=True)
async def _no_stray_tasks() -> AsyncIterator[None]:
    yield
    gc.collect()
    current = asyncio.current_task()
    # Give callbacks scheduled by closing transports one turn of the loop.
    await asyncio.sleep(0)
    stray = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not stray, f"tasks left running: {stray}"


def routes(
    *pairs: tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]],
) -> web.Application:
    """An aiohttp app from ``(method, path, handler)`` triples."""
    app = web.Application()
    for method, path, handler in pairs:
        app.router.add_route(method, path, handler)
    return app


def names(pipeline: Iterable[Any]) -> list[str]:
    return [entry.name for entry in pipeline]


class SeenRequest:
    """One request as `echo_server` received it: headers in order, as sent."""

    def __init__(
        self, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> None:
        self.method = method
        self.target = target  # the request-target: raw path and query
        self.headers = headers
        self.body = body

    def header_values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]


class EchoServer(RawServer):
    """A raw keep-alive server answering every request ``200 {}``; records each one."""

    def __init__(self) -> None:
        super().__init__(self._answer)
        self.requests: list[SeenRequest] = []

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers: list[tuple[str, str]] = []
            for line in lines[1:]:
                if ":" in line:
                    name, _, value = line.partition(":")
                    headers.append((name, value.strip()))
            length = int({k.lower(): v for k, v in headers}.get("content-length", "0"))
            body = await reader.readexactly(length) if length else b""
            self.requests.append(SeenRequest(method, target, headers, body))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
            )
            await writer.drain()


@pytest.fixture
async def echo_server() -> AsyncIterator[Callable[[], Awaitable[tuple[str, EchoServer]]]]:
    """``base_url, server = await echo_server()``: ``server.requests`` and
    ``server.connections`` show exactly what reached the socket."""
    servers: list[EchoServer] = []

    async def start() -> tuple[str, EchoServer]:
        server = EchoServer()
        servers.append(server)
        return await server.start(), server

    yield start
    for server in servers:
        await server.close()
