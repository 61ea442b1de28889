"""`ConcurrencyLimit`: at most N attempts on the wire; the count survives cancellation."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import ConcurrencyLimit, MemoryStateStore
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]


class Gauge:
    """A server that counts requests in progress and holds each for ``hold`` seconds."""

    def __init__(self, hold: float = 0.005) -> None:
        self.hold = hold
        self.now = 0
        self.peak = 0
        self.total = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.now += 1
        self.total += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.now -= 1
        return web.json_response({})


async def gauge(serve: Serve, hold: float = 0.005) -> tuple[str, Gauge]:
    server = Gauge(hold)
    return await serve(routes(("GET", "/r", server.handle))), server


async def test_at_most_n_attempts_in_flight(serve: Serve, make_client: MakeClient) -> None:
    base, server = await gauge(serve)
    limit = ConcurrencyLimit(3)
    client = make_client(base).with_middleware(limit)
    await asyncio.gather(*(client.get("/r") for _ in range(20)))
    assert server.total == 20
    assert server.peak == 3
    assert limit.in_flight() == 0


class SlowBody:
    """A server that sends its headers at once and its body ``hold`` seconds later,
    counting the responses whose body is still being sent."""

    def __init__(self, hold: float = 0.02) -> None:
        self.hold = hold
        self.now = 0
        self.peak = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)  # the headers go now
            await asyncio.sleep(self.hold)
            await response.write(b"{}")
            await response.write_eof()
            return response
        finally:
            self.now -= 1


class RoundTripStore(MemoryStateStore):
    """A store the parts must await (not the in-memory one they call in line), as a
    store of the application's over its own service would be."""


@pytest.mark.parametrize("store", [None, RoundTripStore()], ids=["in-memory", "awaited"])
async def test_an_attempt_holds_its_slot_until_its_body_is_in(
    serve: Serve, make_client: MakeClient, store: MemoryStateStore | None
) -> None:
    server = SlowBody()
    base = await serve(routes(("GET", "/slow", server.handle)))
    limit = ConcurrencyLimit(1, store=store)
    client = make_client(base).with_middleware(limit)
    assert await asyncio.gather(*(client.get("/slow", cast_to=dict) for _ in range(4))) == [{}] * 4
    assert server.peak == 1  # one body on the wire at a time, not one set of headers
    for _ in range(3):  # (an awaited store's last release is a task of its own)
        await asyncio.sleep(0)
    assert limit.in_flight() == 0
    # A stream holds its slot until its headers only; its body is the caller's.
    async with (
        client.with_streaming_response.get("/slow") as first,
        client.with_streaming_response.get("/slow") as second,
    ):
        assert limit.in_flight() == 0  # (else the second could not have started)
        await first.read()
        await second.read()
    assert limit.in_flight() == 0


async def test_derived_clients_share_the_limit(serve: Serve, make_client: MakeClient) -> None:
    base, server = await gauge(serve)
    client = make_client(base).with_middleware(ConcurrencyLimit(2))
    other = client.with_options(headers={"X-Other": "1"})
    await asyncio.gather(*(c.get("/r") for c in (client, other) * 5))
    assert server.peak == 2


async def test_a_queue_wait_past_max_wait_is_refused_without_io(
    serve: Serve, make_client: MakeClient
) -> None:
    base, server = await gauge(serve, hold=0.2)
    client = make_client(base).with_middleware(ConcurrencyLimit(1, max_wait=0.02))
    slow = asyncio.ensure_future(client.get("/r"))
    await asyncio.sleep(0.05)  # it holds the one slot
    with pytest.raises(stackwire.ConcurrencyLimitError) as caught:
        await client.get("/r")
    assert caught.value.retries_taken == 0  # never retried
    assert "max_in_flight=1" in str(caught.value)
    await slow
    assert server.total == 1


async def test_a_call_still_queued_at_its_deadline_is_refused_then(
    serve: Serve, make_client: MakeClient
) -> None:
    base, server = await gauge(serve, hold=0.3)
    client = make_client(base).with_middleware(ConcurrencyLimit(1))  # max_wait=None
    slow = asyncio.ensure_future(client.get("/r"))
    await asyncio.sleep(0.02)  # it holds the one slot for 0.3 s
    with pytest.raises(stackwire.ConcurrencyLimitError, match="deadline") as caught:
        await client.get("/r", deadline=0.05)  # (it queued until the slot came back)
    assert caught.value.retries_taken == 0
    assert not slow.done()  # refused at the deadline, not when the slot came back
    await slow
    assert server.total == 1


@pytest.mark.parametrize("seed", [15, 16, 17, 18])
async def test_cancellation_anywhere_keeps_the_count_exact(
    seed: int, serve: Serve, make_client: MakeClient
) -> None:
    base, server = await gauge(serve, hold=0.003)
    store = MemoryStateStore()
    limit = ConcurrencyLimit(3, store=store)
    client = make_client(base).with_middleware(limit)
    rng = random.Random(seed)
    tasks = [asyncio.ensure_future(client.get("/r")) for _ in range(60)]
    for task in rng.sample(tasks, 30):  # queued or in flight, whatever they are doing
        await asyncio.sleep(rng.random() * 0.004)
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
    assert 0 < cancelled <= 30
    assert all(isinstance(r, (stackwire.Response, asyncio.CancelledError)) for r in results)
    assert limit.in_flight() == 0
    assert server.peak <= 3
    # every slot came back: three new attempts run side by side at once
    server.peak = 0
    await asyncio.gather(*(client.get("/r") for _ in range(3)))
    assert server.peak == 3


async def test_parts_with_one_store_share_slots(serve: Serve, make_client: MakeClient) -> None:
    base, server = await gauge(serve)
    store = MemoryStateStore()
    a = make_client(base).with_middleware(ConcurrencyLimit(2, store=store))
    b = make_client(base).with_middleware(ConcurrencyLimit(2, store=store))
    await asyncio.gather(*(c.get("/r") for c in (a, b) * 6))
    assert server.peak == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_bad_max_in_flight(bad: object) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        ConcurrencyLimit(bad)  # type: ignore[arg-type]


async def test_a_middleware_below_that_returns_no_response_gives_the_slot_back(
    serve: Serve, make_client: MakeClient
) -> None:
    base, _ = await gauge(serve)
    limit = ConcurrencyLimit(1)

    async def forgets_to_return(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        await call_next(request)  # (no return)

    client = make_client(base).with_middleware(limit).with_middleware(forgets_to_return)
    with pytest.raises(stackwire.StackwireError, match="a middleware returned None"):
        await client.get("/r")
    assert limit.in_flight() == 0
