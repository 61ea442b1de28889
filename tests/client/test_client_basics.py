"""End-to-end basics of `AsyncClient` over a real socket."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import stackwire
from tests.conftest import (
    EchoServer,
    RawHandler,
    RawServer,
    Serve,
    SleepRecorder,
    read_request,
    routes,
)

EchoStart = Callable[[], Awaitable[tuple[str, EchoServer]]]


class User(stackwire.Model):
    id: int
    name: str


async def test_get_decodes_into_model_and_releases_connection(
    serve: Serve, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    async def user(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]), "name": "Ada", "new": 1})

    base = await serve(routes(("GET", "/v1/users/{id}", user)))
    client = make_client(base + "v1")
    got = await client.get("/users/{id}", path_params={"id": 3}, cast_to=User)
    assert got == User(id=3, name="Ada")
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_response_without_cast_to(serve: Serve, make_client: Callable[..., Any]) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi", headers={"x-request-id": "req_1"})

    client = make_client(await serve(routes(("GET", "/hello", hello))))
    response = await client.get("/hello")
    assert isinstance(response, stackwire.Response)
    assert response.status_code == 200
    assert response.content == b"hi"
    assert response.request_id == "req_1"
    assert response.retries_taken == 0


# -- lifecycle -----------------------------------------------------------------------


async def test_async_with_closes_and_use_after_close_fails_before_io(
    echo_server: EchoStart,
) -> None:
    base, server = await echo_server()
    async with stackwire.AsyncClient(base) as client:
        assert not client.is_closed
        await client.get("/a")
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    assert client.is_closed
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    with pytest.raises(stackwire.ClientClosedError):
        await client.get("/a")
    with pytest.raises(RuntimeError):  # ClientClosedError is a RuntimeError too
        await client.post("/a", json={})
    assert server.connections == 1
    assert len(server.requests) == 1
    await client.close()  # closing twice is harmless


async def test_await_close(echo_server: EchoStart) -> None:
    base, server = await echo_server()
    client = stackwire.AsyncClient(base)
    await client.get("/a")
    await client.close()
    with pytest.raises(stackwire.ClientClosedError):
        await client.get("/a")
    assert len(server.requests) == 1


async def test_closing_a_client_that_never_sent_anything(echo_server: EchoStart) -> None:
    base, server = await echo_server()
    client = stackwire.AsyncClient(base)
    await client.close()
    with pytest.raises(stackwire.ClientClosedError):
        await client.get("/a")
    assert server.connections == 0


async def test_a_closed_client_cannot_be_entered_again(echo_server: EchoStart) -> None:
    base, server = await echo_server()
    client = stackwire.AsyncClient(base)
    async with client:
        await client.get("/a")
    with pytest.raises(stackwire.ClientClosedError, match="closed"):
        async with client:
            pass  # pragma: no cover - not entered
    assert server.connections == 1


async def test_a_call_in_flight_when_the_client_closes_fails_as_closed(
    raw_server: Callable[[RawHandler], Awaitable[tuple[str, RawServer]]],
    client_sleeps: SleepRecorder,
) -> None:
    # It was an APIConnectionError saying "the server closed the connection", and
    # with retries left, a retry (a backoff sleep, then a ClientClosedError with no
    # cause): the server had done nothing wrong.
    got_request = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()

    base, server = await raw_server(silent)
    client = stackwire.AsyncClient(base, sleep=client_sleeps)
    call = asyncio.ensure_future(client.get("/slow"))
    await got_request.wait()
    await client.close()
    with pytest.raises(stackwire.ClientClosedError, match="closed while") as info:
        await call
    assert "GET " in str(info.value)
    assert isinstance(info.value.__cause__, aiohttp.ClientError)
    assert (server.connections, client_sleeps.delays) == (1, [])


async def test_a_call_waiting_for_a_pooled_connection_when_the_client_closes_fails_as_closed(
    raw_server: Callable[[RawHandler], Awaitable[tuple[str, RawServer]]],
) -> None:
    # aiohttp cancels the pool's waiters when its session closes: the call that waited
    # for the one connection failed with a bare CancelledError nobody had asked for.
    got_request = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()

    base, server = await raw_server(silent)
    client = stackwire.AsyncClient(base, max_connections=1, max_retries=0)
    holding = asyncio.ensure_future(client.get("/first"))
    await got_request.wait()
    waiting = asyncio.ensure_future(client.get("/second"))
    await asyncio.sleep(0.05)  # (it is queued for the connection, in aiohttp's pool)
    await client.close()
    for call in (holding, waiting):
        with pytest.raises(stackwire.ClientClosedError, match="closed while"):
            await call
    assert server.connections == 1


async def test_a_stream_read_after_its_client_closed_fails_as_closed(serve: Serve) -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: 1\n\n")
        await asyncio.sleep(30)  # pragma: no cover - the client hangs up first
        return response  # pragma: no cover

    client = stackwire.AsyncClient(await serve(routes(("GET", "/events", events))))
    stream = await client.get("/events", cast_to=int, stream=True)
    assert await stream.__anext__() == 1
    await client.close()
    with pytest.raises(stackwire.ClientClosedError, match="closed while"):
        await stream.__anext__()
    assert stream.response.is_closed
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_unclosed_client_warns(echo_server: EchoStart) -> None:
    base, _ = await echo_server()
    client = stackwire.AsyncClient(base)
    await client.get("/a")
    transport = client.transport
    holder = [client]
    del client
    with pytest.warns(ResourceWarning, match="unclosed AsyncClient"):
        _drop_and_collect(holder)
    await transport.close()  # what the user should have done; nothing leaks


def _drop_and_collect(holder: list[Any]) -> None:
    holder.clear()
    gc.collect()


async def test_unused_unclosed_client_does_not_warn(echo_server: EchoStart) -> None:
    base, _ = await echo_server()
    client = stackwire.AsyncClient(base)
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    del client
    gc.collect()  # filterwarnings=error: a ResourceWarning here fails the test


async def test_with_options_shares_the_session_and_survives_its_close(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    parent = make_client(base)
    await parent.get("/a")
    derived = parent.with_options(max_retries=0, headers={"X-Derived": "1"})
    assert derived.max_retries == 0
    assert parent.max_retries == 2
    await derived.get("/b")
    # One connection, used by both clients: the pool is shared.
    assert server.connections == 1
    assert parent.pool_stats() == derived.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    assert server.requests[1].header_values("X-Derived") == ["1"]
    await derived.close()
    with pytest.raises(stackwire.ClientClosedError):
        await derived.get("/c")
    await parent.get("/c")
    assert parent.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    assert server.connections == 1
    assert [r.target for r in server.requests] == ["/a", "/b", "/c"]


async def test_closing_the_parent_closes_clients_sharing_its_session(
    echo_server: EchoStart,
) -> None:
    base, _ = await echo_server()
    parent = stackwire.AsyncClient(base)
    derived = parent.with_options(timeout=5.0)
    await derived.get("/a")
    await parent.close()
    with pytest.raises(stackwire.ClientClosedError):
        await derived.get("/a")


async def test_with_options_changing_the_pool_gets_its_own_session(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    parent = make_client(base)
    await parent.get("/a")
    own = parent.with_options(max_connections=5)
    await own.get("/b")
    assert server.connections == 2
    await own.close()
    await parent.get("/c")
    assert parent.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_pool_stats_count_connections_in_use(
    serve: Serve, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"part")
        started.set()
        await release.wait()
        await response.write_eof()
        return response

    client = make_client(await serve(routes(("GET", "/slow", slow))))

    async def fetch() -> bytes:
        return await client.get("/slow", cast_to=bytes)

    task = asyncio.create_task(fetch())
    await started.wait()
    assert client.pool_stats() == stackwire.PoolStats(in_use=1, idle=0)
    release.set()
    assert await task == b"part"
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


def test_client_repr_hides_the_key() -> None:
    client = stackwire.AsyncClient("http://api.test/v1", api_key="sk-secret-0123456789abcd")
    assert repr(client) == "AsyncClient('http://api.test/v1/', api_key='***abcd')"


async def test_with_options_repeating_a_pool_option_shares_the_session(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    parent = make_client(base)
    await parent.get("/a")
    # Equal values (not the same objects) change nothing about the session.
    same = parent.with_options(max_connections=int("1000"), proxy=None, trust_env=True)
    await same.get("/b")
    assert server.connections == 1
    assert same.pool_stats() == parent.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


@pytest.mark.parametrize("method", ["GE T", "", "G\r\nX", "GET\x00"])
async def test_invalid_method_fails_before_any_connection(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient], method: str
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError, match="method"):
        await client.request(method, "/x")
    with pytest.raises(stackwire.InvalidRequestError, match="method"):
        await client.with_raw_response.request(method, "/x")
    assert server.connections == 0


async def test_custom_methods_are_sent(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    await client.request("purge", "/x")
    await client.request("OPTIONS", "/x")
    assert [r.method for r in server.requests] == ["PURGE", "OPTIONS"]


async def test_a_client_is_freed_without_the_cycle_collector(echo_server: EchoStart) -> None:
    # Nothing the client keeps refers back to it, so dropping the last reference
    # frees it at once (and an unclosed one is warned about then, not at some later GC).
    base, _ = await echo_server()
    client = stackwire.AsyncClient(base)
    await client.get("/a")
    await client.with_raw_response.get("/a")
    await client.close()
    ref = weakref.ref(client)
    gc.disable()
    try:
        del client
        assert ref() is None
    finally:
        gc.enable()


# -- the plain call's shortcut ----------------------------------------------------------
# A call with no options but cast_to/stream reuses the URL the client joined for its
# path the first time; everything else must be checked as for a new call.


async def test_a_plain_call_sends_what_a_general_call_sends(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    client = make_client(base + "v1", api_key="sk-test-123456789")
    await client.get("/users/1", cast_to=dict)  # the shortcut: no option but cast_to
    await client.get("/users/1", cast_to=dict, query=None)  # the general path
    await client.get("/users/1", cast_to=dict)  # the shortcut again, its URL reused
    async with client.with_streaming_response.get("/users/1", cast_to=dict) as response:
        await response.read()
    async with client.with_streaming_response.get(
        "/users/1", cast_to=dict, max_retries=2
    ) as response:
        await response.read()
    sent = [(r.method, r.target, r.headers) for r in server.requests]
    assert sent[0][1] == "/v1/users/1"
    assert ("Authorization", "Bearer sk-test-123456789") in sent[0][2]
    assert sent[0] == sent[1] == sent[2] == sent[3] == sent[4]


async def test_a_path_with_placeholders_is_filled_on_every_call(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    client = make_client(base + "v1")
    for i in range(3):
        await client.get("/users/{id}", path_params={"id": i})
    for i in range(3):
        await client.get(f"/items/{i}")
    assert [r.target for r in server.requests] == [
        "/v1/users/0",
        "/v1/users/1",
        "/v1/users/2",
        "/v1/items/0",
        "/v1/items/1",
        "/v1/items/2",
    ]


async def test_a_repeated_path_is_checked_like_a_new_one(
    echo_server: EchoStart, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    await client.get("/x")
    await client.get("/users/{id}", path_params={"id": 1})
    for method in ["GE T", "", "G\r\nX"]:
        with pytest.raises(stackwire.InvalidRequestError, match="method"):
            await client.request(method, "/x")
    with pytest.raises(stackwire.InvalidRequestError, match="path"):
        await client.get(["/x"])  # type: ignore[call-overload]
    with pytest.raises(stackwire.InvalidRequestError, match="path_params"):
        await client.get("/users/{id}")
    assert [r.target for r in server.requests] == ["/x", "/users/1"]
    await client.close()
    with pytest.raises(stackwire.ClientClosedError):
        await client.get("/x")
    assert len(server.requests) == 2
