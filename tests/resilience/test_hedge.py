"""`Hedge`: a slow GET gets a twin; the first response wins, the loser is released."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiohttp import web

import stackwire
from stackwire import Hedge
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]


class Slow:
    """Request ``n`` (0-based) waits ``delays[n]`` seconds before its headers."""

    def __init__(self, *delays: float, status: int = 200) -> None:
        self.delays = list(delays)
        self.status = status
        self.started: list[str] = []
        self.cancelled = 0
        self.two_started = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        number = len(self.started)
        self.started.append(request.method)
        if len(self.started) >= 2:
            self.two_started.set()
        try:
            await asyncio.sleep(self.delays[number] if number < len(self.delays) else 0)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return web.json_response({"n": number}, status=self.status)


async def slow(serve: Serve, *delays: float, status: int = 200) -> tuple[str, Slow]:
    server = Slow(*delays, status=status)
    app = routes(
        ("GET", "/r", server.handle), ("POST", "/r", server.handle), ("HEAD", "/r", server.handle)
    )
    return await serve(app), server


def hedged(make_client: MakeClient, base: str, part: Hedge) -> stackwire.AsyncClient:
    # Hedge waits with the client's sleep: a real one here, for a few milliseconds.
    return make_client(base, sleep=asyncio.sleep, max_retries=0).with_middleware(part)


async def test_a_slow_first_attempt_gets_a_twin_and_the_first_response_wins(
    serve: Serve, make_client: MakeClient
) -> None:
    base, server = await slow(serve, 5.0, 0.0)
    client = hedged(make_client, base, Hedge(0.02))
    started = asyncio.get_running_loop().time()
    assert await client.get("/r", cast_to=dict) == {"n": 1}
    assert asyncio.get_running_loop().time() - started < 2.0
    assert server.started == ["GET", "GET"]
    await asyncio.sleep(0.05)
    assert server.cancelled == 1  # the loser's connection was closed
    assert client.pool_stats().in_use == 0


async def test_a_fast_answer_sends_no_twin(serve: Serve, make_client: MakeClient) -> None:
    base, server = await slow(serve, 0.0)
    client = hedged(make_client, base, Hedge(1.0))
    await client.get("/r")
    assert server.started == ["GET"]


async def test_up_to_max_extra_twins_one_each_delay(serve: Serve, make_client: MakeClient) -> None:
    base, server = await slow(serve, 5.0, 5.0, 0.0, 0.0)
    client = hedged(make_client, base, Hedge(0.02, max_extra=2))
    assert await client.get("/r", cast_to=dict) == {"n": 2}
    assert len(server.started) == 3


async def test_only_safe_methods_are_hedged(serve: Serve, make_client: MakeClient) -> None:
    base, server = await slow(serve, 0.1, 0.0)
    client = hedged(make_client, base, Hedge(0.01))
    await client.post("/r")
    assert server.started == ["POST"]
    await client.head("/r")
    assert server.started == ["POST", "HEAD"]  # the HEAD answered within the delay


async def test_the_first_response_wins_whatever_its_status(
    serve: Serve, make_client: MakeClient
) -> None:
    base, server = await slow(serve, 5.0, 0.0, status=503)
    client = hedged(make_client, base, Hedge(0.02))
    with pytest.raises(stackwire.ServiceUnavailableError):
        await client.get("/r")
    assert len(server.started) == 2


async def test_when_every_attempt_fails_the_first_failure_is_raised(
    make_client: MakeClient,
) -> None:
    client = hedged(make_client, "http://127.0.0.1:9/", Hedge(0.001))
    with pytest.raises(stackwire.APIConnectionError):
        await client.get("/r")


async def test_cancelling_the_call_cancels_every_attempt(
    serve: Serve, make_client: MakeClient
) -> None:
    base, server = await slow(serve, 5.0, 5.0)
    client = hedged(make_client, base, Hedge(0.01))
    call = asyncio.ensure_future(client.get("/r"))
    await server.two_started.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.05)
    assert server.cancelled == 2
    assert client.pool_stats().in_use == 0


async def test_both_answer_at_once_the_loser_is_closed(
    serve: Serve, make_client: MakeClient
) -> None:
    base, server = await slow(serve, 0.03, 0.0)
    client = hedged(make_client, base, Hedge(0.03))
    for _ in range(5):
        server.started.clear()
        await client.get("/r")
    assert client.pool_stats().in_use == 0


def test_bad_settings() -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        Hedge(-1)
    with pytest.raises(stackwire.InvalidRequestError):
        Hedge(0.1, max_extra=-1)
