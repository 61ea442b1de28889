"""The attempt history (`Response.attempts`, `APIError.attempts`) and `Timings`, over
real 127.0.0.1 sockets; sleeps are recorded, never slept."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

import stackwire
from stackwire import Attempt, Timings
from tests.conftest import RawHandler, RawServer, Serve, SleepRecorder, read_request, routes
from tests.sync.test_sync_client import ServerThread

MakeClient = Callable[..., stackwire.AsyncClient]
StartRaw = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]


def flaky(*statuses: int, headers: dict[str, str] | None = None) -> web.Application:
    """An app answering ``statuses`` in turn on ``/x`` (the last one repeats)."""
    seen: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(1)
        status = statuses[min(len(seen), len(statuses)) - 1]
        extra = headers if status >= 400 and headers else {}
        return web.json_response({"n": len(seen)}, status=status, headers=extra)

    return routes(("GET", "/x", handle), ("GET", "/events", _events), ("GET", "/boom", _boom))


async def _boom(request: web.Request) -> web.Response:
    return web.json_response({"error": "boom"}, status=500)


async def _events(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(b'data: {"n": 1}\n\n')
    await response.write_eof()
    return response


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_first_call_connects_and_the_second_reuses_the_connection(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(flaky(200)))
    first = await client.with_raw_response.get("/x")
    second = await client.with_raw_response.get("/x")

    (attempt,) = first.attempts
    assert attempt.number == 0
    assert attempt.error is None
    assert attempt.status_code == 200
    assert attempt.timings.reused_connection is False
    assert attempt.timings.connect is not None
    assert attempt.timings.connect >= 0
    assert attempt.timings.first_byte is not None
    assert attempt.timings.body is not None
    assert attempt.timings.tls is None  # plain HTTP: no handshake
    assert attempt.timings.dns is None  # 127.0.0.1 is not looked up
    assert attempt.timings.pool_wait is None  # the pool was not full
    assert attempt.duration >= attempt.timings.first_byte

    (again,) = second.attempts
    assert again.timings.reused_connection is True
    assert again.timings.connect is None
    assert again.started > attempt.started
    assert second.timings == again.timings


async def test_retried_call_lists_every_attempt_with_the_slept_delay(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base = await serve(flaky(503, 429, 200, headers={"Retry-After": "0.25"}))
    client = make_client(base, random=lambda: 0.0)
    response = await client.with_raw_response.get("/x", query={"limit": 5, "key": "s3cr3t"})

    assert [a.number for a in response.attempts] == [0, 1, 2]
    assert [a.status_code for a in response.attempts] == [503, 429, 200]
    assert [a.error for a in response.attempts] == [
        "ServiceUnavailableError",
        "RateLimitError",
        None,
    ]
    assert [a.delay_after for a in response.attempts] == [0.25, 0.25, None]
    assert client_sleeps.delays == [0.25, 0.25]
    assert all(a.method == "GET" for a in response.attempts)
    assert response.attempts[0].url == f"{base}x?limit=5&key=[redacted]"
    assert "s3cr3t" not in repr(response.attempts)
    starts = [a.started for a in response.attempts]
    assert starts == sorted(starts)
    # The failed attempts' bodies were read: their timings are complete too.
    assert response.attempts[0].timings.body is not None
    assert response.attempts[1].timings.reused_connection is True


async def test_backoff_delay_is_recorded_as_slept(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    client = make_client(await serve(flaky(500, 200)), random=lambda: 0.0)
    response = await client.with_raw_response.get("/x")
    assert response.attempts[0].delay_after == client_sleeps.delays[0] == 0.5


async def test_a_failed_call_carries_its_attempts_on_the_error(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(flaky(503)), max_retries=1)
    with pytest.raises(stackwire.ServiceUnavailableError) as caught:
        await client.get("/x")
    attempts = caught.value.attempts
    assert [(a.number, a.status_code, a.error) for a in attempts] == [
        (0, 503, "ServiceUnavailableError"),
        (1, 503, "ServiceUnavailableError"),
    ]
    assert attempts[0].delay_after is not None
    assert attempts[1].delay_after is None


async def test_refused_connection_is_an_attempt_without_status(make_client: MakeClient) -> None:
    client = make_client(f"http://user:pw@127.0.0.1:{free_port()}/", max_retries=1)
    with pytest.raises(stackwire.APIConnectionError) as caught:
        await client.get("/x")
    attempts = caught.value.attempts
    assert [(a.status_code, a.error) for a in attempts] == [
        (None, "APIConnectionError"),
        (None, "APIConnectionError"),
    ]
    assert all("pw" not in a.url and "user" not in a.url for a in attempts)
    assert attempts[0].timings.first_byte is None


async def test_reset_mid_attempt_then_success(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    calls = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        while True:
            await read_request(reader)
            calls += 1
            if calls == 1:
                writer.transport.abort()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    base, _ = await raw_server(handler)
    response = await make_client(base).with_raw_response.get("/x")
    assert [a.error for a in response.attempts] == ["APIConnectionError", None]
    assert response.attempts[1].timings.reused_connection is False


async def test_a_body_cut_short_keeps_the_timings_of_its_attempt(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}")  # 8 bytes short
        await writer.drain()

    base, _ = await raw_server(handler)
    with pytest.raises(stackwire.APIConnectionError) as caught:
        await make_client(base, max_retries=0).get("/x")
    (attempt,) = caught.value.attempts
    assert attempt.error == "APIConnectionError"
    # The headers came: the attempt's connection and first byte were measured.
    assert attempt.timings.reused_connection is False
    assert attempt.timings.connect is not None
    assert attempt.timings.first_byte is not None


async def test_deadline_error_carries_the_attempts(serve: Serve, make_client: MakeClient) -> None:
    client = make_client(await serve(flaky(503, headers={"Retry-After": "5"})), deadline=1.0)
    with pytest.raises(stackwire.APITimeoutError) as caught:
        await client.get("/x")
    assert [a.status_code for a in caught.value.attempts] == [503]


async def test_stream_attempts_end_when_the_stream_is_handed_back(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(flaky(200)))
    stream = await client.get("/events", stream=True)
    async with stream:
        (attempt,) = stream.response.attempts
        assert attempt.status_code == 200
        assert attempt.timings.body is None
        assert [event.data async for event in stream] == ['{"n": 1}']


def test_blocking_client_has_the_attempt_history(
    client_sleeps: SleepRecorder,
) -> None:
    servers = ServerThread()
    try:
        base = servers.app(flaky(503, 200))
        with stackwire.Client(base, sleep=client_sleeps, random=lambda: 0.0) as client:
            response = client.with_raw_response.get("/x")
            assert [a.status_code for a in response.attempts] == [503, 200]
            assert response.attempts[0].delay_after == 0.5
            assert response.timings.reused_connection is True
            with pytest.raises(stackwire.InternalServerError) as caught:
                client.get("/boom", max_retries=0)
            assert [(a.number, a.status_code) for a in caught.value.attempts] == [(0, 500)]
    finally:
        servers.close()


def test_attempt_and_timings_are_public_values() -> None:
    assert stackwire.Attempt is stackwire.observability.Attempt is Attempt
    assert stackwire.Timings is stackwire.observability.Timings is Timings
    timings = Timings()
    assert timings.reused_connection is None
    assert timings.connect is None
    with pytest.raises(AttributeError):
        timings.dns = 1.0  # type: ignore[misc]


async def test_pool_wait_and_dns_are_measured(serve: Serve, make_client: MakeClient) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        return web.json_response({})

    base = await serve(routes(("GET", "/slow", slow)))
    port = base.rsplit(":", 1)[1]
    client = make_client(f"http://localhost:{port}", max_connections=1)
    first, second = await asyncio.gather(
        client.with_raw_response.get("/slow"), client.with_raw_response.get("/slow")
    )
    opened, queued = sorted((first, second), key=lambda r: r.timings.reused_connection or False)
    # The first opened the one connection (looking "localhost" up); the second
    # waited for it in the pool's queue, then reused it.
    assert opened.timings.dns is not None
    assert opened.timings.connect is not None
    assert opened.timings.pool_wait is None
    assert queued.timings.reused_connection is True
    assert queued.timings.pool_wait is not None
    assert queued.timings.pool_wait >= 0.03
    assert queued.timings.dns is None


async def test_a_borrowed_session_still_times_the_response(
    serve: Serve, make_client: MakeClient
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        client = make_client(await serve(flaky(200)), session=session)
        response = await client.with_raw_response.get("/x")
    timings = response.timings
    assert timings.first_byte is not None
    assert timings.body is not None
    assert timings.reused_connection is None  # not our pool: unknown
    assert timings.connect is None


class Item(stackwire.Model):
    n: int


def stream_app() -> web.Application:
    """``/error-event`` fails once with 503, then streams an item and an ``error``
    event; ``/cut`` streams an item and drops the connection; ``/text`` is a 200
    whose body is not the JSON asked for."""
    calls: list[int] = []

    async def error_event(request: web.Request) -> web.StreamResponse:
        calls.append(1)
        if len(calls) == 1:
            return web.json_response({}, status=503)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\nevent: error\ndata: {"e": 1}\n\n')
        await response.write_eof()
        return response

    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await response.write(b'{"n": 1}\n')
        assert request.transport is not None
        request.transport.abort()
        return response

    async def text(request: web.Request) -> web.Response:
        return web.Response(text="not json", content_type="application/json")

    return routes(
        ("GET", "/error-event", error_event), ("GET", "/cut", cut), ("GET", "/text", text)
    )


async def test_an_error_inside_a_handed_back_stream_carries_the_calls_attempts(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(stream_app()), random=lambda: 0.0)
    items: list[int] = []

    async def consume(path: str) -> None:
        async with await client.get(path, stream=True, cast_to=Item) as stream:
            async for item in stream:
                items.append(item.n)

    with pytest.raises(stackwire.StreamError) as caught:
        await consume("/error-event")
    assert items == [1]
    assert [(a.number, a.status_code) for a in caught.value.attempts] == [(0, 503), (1, 200)]
    assert caught.value.attempts[0].delay_after == 0.5
    assert caught.value.retries_taken == 1

    with pytest.raises(stackwire.APIConnectionError) as cut:
        await consume("/cut")
    assert [(a.number, a.status_code, a.error) for a in cut.value.attempts] == [(0, 200, None)]


async def test_a_body_that_does_not_decode_keeps_its_status_and_timings(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(stream_app()))
    with pytest.raises(stackwire.APIResponseValidationError) as caught:
        await client.get("/text", cast_to=Item)
    (attempt,) = caught.value.attempts
    assert (attempt.status_code, attempt.error) == (200, "APIResponseValidationError")
    assert attempt.timings.reused_connection is False
    assert attempt.timings.first_byte is not None
    assert attempt.timings.body is not None


async def test_a_body_past_the_size_cap_keeps_its_status(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(stream_app()), max_response_bytes=4)
    with pytest.raises(stackwire.ResponseTooLargeError) as caught:
        await client.get("/text")
    assert caught.value.status_code == 200
    (attempt,) = caught.value.attempts
    assert (attempt.status_code, attempt.error) == (200, "ResponseTooLargeError")


def redirect_app() -> web.Application:
    """``/loop`` redirects to itself; ``/far`` to a URL that is not http(s)."""

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    async def far(request: web.Request) -> web.Response:
        raise web.HTTPFound("ftp://127.0.0.1/file")

    return routes(("GET", "/loop", loop), ("GET", "/far", far))


@pytest.mark.parametrize("path", ["/loop", "/far"])
async def test_a_redirect_that_cannot_be_followed_keeps_its_status_and_timings(
    serve: Serve, make_client: MakeClient, path: str
) -> None:
    client = make_client(await serve(redirect_app()))
    with pytest.raises(stackwire.RedirectError) as caught:
        await client.get(path)
    # The attempt ended with a 302 that came over the wire: its status and the
    # timings of that last physical request are known.
    (attempt,) = caught.value.attempts
    assert (attempt.status_code, attempt.error) == (302, "RedirectError")
    assert attempt.timings.first_byte is not None
    assert attempt.timings.reused_connection is not None


@pytest.mark.parametrize("how", ["read", "iter_bytes", "iter_text", "iter_lines", "iter_raw"])
async def test_a_body_cut_after_the_hand_back_carries_the_calls_attempts(
    raw_server: StartRaw, make_client: MakeClient, how: str
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nline one\n")
        await writer.drain()
        writer.transport.abort()

    async def consume(response: stackwire.Response[object]) -> None:
        if how == "read":
            await response.read()
        else:
            async for _ in getattr(response, how)():
                pass

    base, _ = await raw_server(handler)
    client = make_client(base, max_retries=0)
    async with client.with_streaming_response.get("/x") as response:
        with pytest.raises(stackwire.APIConnectionError) as caught:
            await consume(response)
    # The error came after ``retry`` handed the response back: the response's
    # history goes with it, however the body was read.
    (attempt,) = caught.value.attempts
    assert (attempt.number, attempt.status_code) == (0, 200)
    assert caught.value.request is not None


async def test_a_streams_attempt_is_the_same_whenever_it_is_read(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(flaky(200)))
    stream = await client.get("/events", stream=True)
    async with stream:
        assert [event.data async for event in stream] == ['{"n": 1}']
    # Read only after the whole body: the attempt still ended at the hand-back, so
    # its timings hold no body time (which would exceed its duration); the
    # response's own timings have it.
    (attempt,) = stream.response.attempts
    assert attempt.timings.body is None
    assert attempt.timings.first_byte is not None
    assert attempt.timings.first_byte <= attempt.duration
    assert stream.response.timings.body is not None
