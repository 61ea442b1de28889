"""A long ``total`` kept on the transport's shared, whole-second timer (`_expiry`).

By default only limits of 5 s or more go there (the default is 600 s); these tests
lower that threshold so that a 0.3 s limit takes the same path, and the waits stay
short (the due time is rounded up to the next second of the loop clock, so < 1.3 s).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

import stackwire
from stackwire import APITimeoutError, Timeout
from stackwire.pipeline._expiry import ExpiryWheel
from stackwire.transports import aiohttp_transport as transport
from tests.conftest import RawHandler, RawServer, Serve, read_request

MakeClient = Callable[..., stackwire.AsyncClient]
StartRaw = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]


@pytest.fixture(autouse=True)
def coarse_from_a_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transport, "COARSE_AFTER", 0.1)


async def stall_before_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(30)


async def drip_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    writer.write(b"Content-Length: 100\r\n\r\n")
    await writer.drain()
    for _ in range(100):  # one byte every 30 ms: never idle for long, 3 s in all
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.03)


@pytest.mark.parametrize("handler", [stall_before_headers, drip_body], ids=["headers", "body"])
async def test_total_on_the_shared_timer_ends_a_stalled_attempt(
    raw_server: StartRaw, make_client: MakeClient, handler: RawHandler
) -> None:
    base, server = await raw_server(handler)
    client = make_client(base, timeout=Timeout(total=0.3, read=5.0), max_retries=0)
    with pytest.raises(APITimeoutError):
        await client.get("/slow")
    assert server.connections == 1
    assert client.pool_stats().in_use == 0


async def test_a_finished_call_is_not_cancelled_when_its_second_passes(
    serve: Serve, make_client: MakeClient
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ok", ok)
    base = await serve(app)
    client = make_client(base, timeout=Timeout(total=0.2))
    response = await client.get("/ok")
    assert response.json() == {"ok": True}
    # The shared timer of that call fires within this wait; the task goes on unharmed.
    await asyncio.sleep(1.3)
    assert (await client.get("/ok")).json() == {"ok": True}


async def test_cancelling_the_caller_is_a_cancellation_not_a_timeout(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await raw_server(stall_before_headers)
    client = make_client(base, timeout=Timeout(total=0.5), max_retries=0)
    task = asyncio.ensure_future(client.get("/slow"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pool_stats().in_use == 0


async def test_an_expiry_asks_for_its_task_on_its_own_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Without the loop, current_task() looks the running loop up, which on Python
    # 3.11 costs a getpid() system call on every request.
    asked: list[object] = []
    real = asyncio.current_task

    def current_task(loop: asyncio.AbstractEventLoop | None = None) -> object:
        asked.append(loop)
        return real(loop)

    loop = asyncio.get_running_loop()
    expiry = ExpiryWheel(loop).start(30)
    monkeypatch.setattr(asyncio, "current_task", current_task)
    expiry.enter()
    expiry.leave()
    expiry.done()
    assert asked == [loop]
