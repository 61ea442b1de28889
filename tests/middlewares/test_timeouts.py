"""Per-attempt timeouts and the call deadline, against real (misbehaving) servers.

The waits here are real but short (0.15-0.4 s); backoff sleeps are recorded, never
slept.
"""

from __future__ import annotations

import asyncio
import math
import time as _time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import APITimeoutError, ServerSentEvent, Timeout
from stackwire.middlewares.timeout import resolve_timeout
from stackwire.testing import MockResponse, MockTransport, VirtualTime
from tests.conftest import RawHandler, RawServer, Serve, SleepRecorder, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]
StartRaw = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(n: int) -> bytes:
    return chunk(b"data: %d\n\n" % n)


async def stall_before_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.sleep(30)


# -- per-attempt limits -----------------------------------------------------------------


async def test_stall_before_headers_times_out_and_is_retried(
    raw_server: StartRaw, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, server = await raw_server(stall_before_headers)
    client = make_client(base, timeout=Timeout(total=0.2), max_retries=1, random=lambda: 0.0)
    with pytest.raises(APITimeoutError) as info:
        await client.get("/slow")
    assert info.value.retries_taken == 1
    assert server.connections == 2
    assert client_sleeps.delays == [0.5]
    assert client.pool_stats().in_use == 0


async def test_read_timeout_bounds_the_gap_between_reads(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def stall_mid_body(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b'Content-Length: 20\r\n\r\n{"partial": ')
        await writer.drain()
        await asyncio.sleep(30)

    base, _ = await raw_server(stall_mid_body)
    client = make_client(base, timeout=Timeout(total=60, read=0.2), max_retries=0)
    # A float per request sets only ``total``: the client's ``read`` still applies.
    with pytest.raises(APITimeoutError):
        await client.get("/body", timeout=30.0)
    assert client.pool_stats().in_use == 0


async def test_total_bounds_the_body_read_of_a_buffered_call(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 100\r\n\r\n")
        await writer.drain()
        for _ in range(100):  # one byte every 20 ms: never idle for long, 2 s in all
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(0.02)

    base, _ = await raw_server(drip)
    client = make_client(base, timeout=Timeout(total=0.3, read=1.0), max_retries=0)
    with pytest.raises(APITimeoutError):
        await client.get("/drip")
    assert client.pool_stats().in_use == 0


async def test_total_bounds_only_the_headers_of_a_stream(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def lively(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD)
        for n in range(8):  # 0.4 s in all, well past total=0.15
            writer.write(event(n))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    base, _ = await raw_server(lively)
    client = make_client(base, timeout=Timeout(total=0.15, read=1.0))
    stream = await client.get("/events", cast_to=ServerSentEvent, stream=True)
    async with stream:
        got = [item.data async for item in stream]
    assert got == [str(n) for n in range(8)]
    assert client.pool_stats().in_use == 0


async def test_read_bounds_the_gap_between_stream_chunks(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def one_then_silence(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD + event(1))
        await writer.drain()
        await asyncio.sleep(30)

    base, _ = await raw_server(one_then_silence)
    client = make_client(base, timeout=Timeout(total=60, read=0.2))
    stream = await client.get("/events", cast_to=ServerSentEvent, stream=True)
    got: list[str] = []

    async def read_all() -> None:
        async with stream:
            async for item in stream:
                got.append(item.data)

    with pytest.raises(APITimeoutError):
        await read_all()
    assert got == ["1"]
    assert client.pool_stats().in_use == 0


async def test_total_bounds_the_wait_for_stream_headers(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, server = await raw_server(stall_before_headers)
    client = make_client(base, timeout=Timeout(total=0.2), max_retries=0)
    with pytest.raises(APITimeoutError):
        await client.get("/events", cast_to=ServerSentEvent, stream=True)
    assert server.connections == 1
    assert client.pool_stats().in_use == 0


async def test_connect_includes_waiting_for_a_pooled_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(SSE_HEAD + event(1))
        await writer.drain()
        await asyncio.sleep(30)

    base, server = await raw_server(hold)
    client = make_client(base, max_connections=1, max_retries=0)
    async with client.with_streaming_response.get("/events") as held:
        assert held.status_code == 200
        assert client.pool_stats().in_use == 1
        with pytest.raises(APITimeoutError):
            await client.get("/other", timeout=Timeout(total=60, connect=0.2))
    assert server.connections == 1  # the second call never got a connection
    assert client.pool_stats().in_use == 0


async def test_per_request_none_lifts_the_clients_timeout(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(0.3)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()

    base, server = await raw_server(late)
    client = make_client(base, timeout=0.15, max_retries=0)
    response = await client.get("/late", timeout=None)
    assert response.status_code == 200
    with pytest.raises(APITimeoutError):
        await client.get("/late")
    assert server.connections == 2


def test_per_request_timeout_resolution() -> None:
    client = Timeout(total=30, connect=1, read=10)
    assert resolve_timeout(stackwire.NOT_GIVEN, client) is client
    assert resolve_timeout(2.0, client) == Timeout(total=2.0, connect=1, read=10)
    assert resolve_timeout(None, client) is None
    assert resolve_timeout(Timeout(total=5), client) == Timeout(total=5, connect=5, read=None)
    assert resolve_timeout(2.0, None) == Timeout(total=2.0, connect=None, read=None)
    assert stackwire.AsyncClient("http://127.0.0.1:1/").timeout == Timeout(total=600, connect=5)


async def test_infinity_is_no_limit_on_the_client_as_per_request(
    serve: Serve, make_client: MakeClient
) -> None:
    # ``Timeout(total=math.inf)`` and a call's ``timeout=math.inf`` were accepted; the
    # same number on the client was refused as "not finite".
    base = await serve(routes(("GET", "/r", ok_response)))
    client = make_client(base, timeout=math.inf)
    assert client.timeout == Timeout(total=math.inf, connect=5)
    assert (await client.get("/r")).status_code == 200
    assert (await make_client(base).get("/r", timeout=math.inf)).status_code == 200


async def ok_response(request: web.Request) -> web.Response:
    return web.json_response({})


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "5", True])
async def test_bad_timeouts_are_rejected_before_io(
    serve: Serve, make_client: MakeClient, bad: Any
) -> None:
    hits: list[int] = []

    async def ok(request: web.Request) -> web.Response:
        hits.append(1)
        return web.json_response({})

    base = await serve(routes(("GET", "/r", ok)))
    with pytest.raises(stackwire.InvalidRequestError, match=r"(?i)timeout"):
        stackwire.AsyncClient(base, timeout=bad)
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError, match=r"(?i)timeout"):
        await client.get("/r", timeout=bad)
    assert hits == []


# -- the deadline of the whole call ---------------------------------------------------------


async def always_500(serve: Serve) -> tuple[str, list[int]]:
    hits: list[int] = []

    async def fail(request: web.Request) -> web.Response:
        hits.append(1)
        return web.json_response({"error": "boom"}, status=500)

    return await serve(routes(("GET", "/r", fail))), hits


async def test_deadline_shorter_than_the_backoff_ends_the_call_without_sleeping(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, hits = await always_500(serve)
    client = make_client(base, deadline=0.3)
    with pytest.raises(APITimeoutError, match=r"Deadline of 0\.3 s") as info:
        await client.get("/r")
    assert client_sleeps.delays == []
    assert len(hits) == 1
    assert info.value.retries_taken == 0
    assert isinstance(info.value.__cause__, stackwire.InternalServerError)
    assert client.pool_stats().in_use == 0


async def test_deadline_per_request_overrides_the_client(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, hits = await always_500(serve)
    client = make_client(base)
    with pytest.raises(APITimeoutError, match=r"Deadline of 0\.25 s"):
        await client.get("/r", deadline=0.25)
    assert (len(hits), client_sleeps.delays) == (1, [])

    limited = make_client(base, deadline=0.3)
    with pytest.raises(stackwire.InternalServerError) as info:
        await limited.get("/r", deadline=None)  # None: no deadline for this call
    assert info.value.retries_taken == 2
    assert len(hits) == 1 + 3


async def test_deadline_bounds_a_slow_attempt(
    raw_server: StartRaw, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(3)  # then hang up: without the deadline, a connection error

    base, server = await raw_server(stall)
    client = make_client(base, deadline=0.3)  # the default 600 s timeout would wait on
    with pytest.raises(APITimeoutError, match=r"Deadline of 0\.3 s") as info:
        await client.get("/slow")
    # The attempt itself was cut at the deadline; then no retry could fit, and the
    # message says the deadline passed (not that a wait "would pass" it).
    assert "Deadline of 0.3 s passed during the last attempt" in str(info.value)
    cause = info.value.__cause__
    assert isinstance(cause, APITimeoutError)
    assert "Deadline of 0.3 s passed" in str(cause)
    assert (server.connections, client_sleeps.delays) == (1, [])
    assert client.pool_stats().in_use == 0


async def test_deadline_bounds_the_error_body_of_a_stream(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # A stream call reads an error status's body inside its attempt: the deadline
    # bounds that read as a whole, not only each gap (none of which is long here).
    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 X\r\nContent-Length: 100\r\n\r\n")
        for _ in range(60):  # a byte every 0.05 s: 3 s in all
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.05)

    base, server = await raw_server(dribble)
    client = make_client(base, deadline=0.2)
    with pytest.raises(APITimeoutError, match=r"Deadline of 0\.2 s") as info:
        await client.get("/events", cast_to=ServerSentEvent, stream=True)
    # The attempt itself timed out (it did not end with its body, 3 s later).
    assert isinstance(info.value.__cause__, APITimeoutError)
    assert server.connections == 1
    assert client.pool_stats().in_use == 0


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "1", True, 10**400])
async def test_bad_deadlines_are_rejected_before_io(
    serve: Serve, make_client: MakeClient, bad: Any
) -> None:
    base, hits = await always_500(serve)
    with pytest.raises(stackwire.InvalidRequestError, match="deadline must be"):
        stackwire.AsyncClient(base, deadline=bad)
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError, match="deadline must be"):
        await client.get("/r", deadline=bad)
    assert hits == []


async def test_a_virtual_clocks_deadline_counts_the_time_attempts_take(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # With VirtualTime, sleeps are fake but an attempt against a server takes real
    # time, which the virtual clock does not see. The attempt was cut at the deadline
    # all the same; then, the virtual clock saying time was left, it was retried.
    base, server = await raw_server(stall_before_headers)
    time = VirtualTime()
    client = make_client(base, deadline=0.5, sleep=time.sleep, clock=time.clock, random=time.random)
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(APITimeoutError, match=r"Deadline of 0\.5 s passed during the last attempt"):
        await client.get("/slow")
    assert loop.time() - started < 1.0  # (0.5 s, with room for a busy machine)
    assert (server.connections, time.slept) == (1, [])
    assert client.pool_stats().in_use == 0


async def test_a_virtual_clocks_deadline_counts_a_slow_failed_attempt() -> None:
    async def slow_503(request: stackwire.Request) -> MockResponse:
        await asyncio.sleep(0.3)  # real time: a slow upstream
        return MockResponse(503)

    transport = MockTransport(slow_503)
    time = VirtualTime()
    client = stackwire.AsyncClient(
        "http://api.test/",
        transport=transport,
        deadline=0.5,
        sleep=time.sleep,
        clock=time.clock,
        random=time.random,
    )
    async with client:
        # 0.3 s spent, and the first backoff (0.39 s with this seed) would pass 0.5 s.
        with pytest.raises(APITimeoutError, match=r"would pass during the 0\.394 s wait"):
            await client.get("/r")
    assert (len(transport.requests), time.slept) == (1, [])


async def test_a_deadline_that_cuts_a_body_read_is_named_without_retries_left(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # Cut while waiting for the headers, the error named the deadline; cut while
    # reading the body, it said only "Request timed out" when no retry was left to
    # say it instead.
    async def headers_then_stall(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 100\r\n\r\n{")
        await writer.drain()
        await asyncio.sleep(30)

    base, server = await raw_server(headers_then_stall)
    client = make_client(base, deadline=0.2, max_retries=0)
    with pytest.raises(APITimeoutError, match=r"Deadline of 0\.2 s passed for GET .* body") as info:
        await client.get("/body")
    assert isinstance(info.value.__cause__, TimeoutError)
    assert server.connections == 1
    assert client.pool_stats().in_use == 0
    # A time limit of the attempt's own is not the deadline's.
    with pytest.raises(APITimeoutError, match=r"^Request timed out") as own:
        await client.get("/body", timeout=Timeout(total=0.1), deadline=5)
    assert "Deadline" not in str(own.value)


async def test_an_injected_clock_that_keeps_real_time_counts_attempts_once(
    client_sleeps: SleepRecorder,
) -> None:
    async def slow_503(request: stackwire.Request) -> MockResponse:
        await asyncio.sleep(0.3)
        return MockResponse(503)

    transport = MockTransport(slow_503)
    client = stackwire.AsyncClient(
        "http://api.test/",
        transport=transport,
        deadline=1.05,
        clock=lambda: _time.time(),  # a wall clock of one's own: it sees the attempts
        sleep=client_sleeps,
        random=lambda: 0.0,
    )
    async with client:
        with pytest.raises(APITimeoutError, match=r"would pass during the 1 s wait"):
            await client.get("/r")
    # 0.3 s, then the 0.5 s backoff (not slept) fits; after 0.6 s, 1 s does not.
    # (Counted twice, 0.6 s and the 0.5 s backoff would not have fit.)
    assert (len(transport.requests), client_sleeps.delays) == (2, [0.5])
