"""How the parts meet clients: the injected clocks, both client faces, the stack."""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire
from stackwire import CircuitBreaker, Clocks, ConcurrencyLimit, Hedge, RateLimit, RetryBudget
from tests.conftest import Serve, routes
from tests.resilience.conftest import VirtualTime

MakeClient = Callable[..., stackwire.AsyncClient]


async def test_a_client_hands_its_injected_clocks_to_the_middlewares(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    base = await serve(routes(("GET", "/r", ok)))
    seen: list[Clocks] = []

    async def look(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        seen.append(Clocks.of(request))
        return await call_next(request)

    await make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(look).get("/r")
    await make_client(base, sleep=asyncio.sleep).with_middleware(look).get("/r")
    virtual, real = seen
    assert (virtual.sleep, virtual.clock, virtual.monotonic) == (vt.sleep, vt.clock, vt.clock)
    assert real.sleep is asyncio.sleep
    assert real.clock is time.time
    assert real.monotonic is time.monotonic


def test_the_blocking_client_runs_the_parts() -> None:
    hits: list[int] = []

    async def ok(request: web.Request) -> web.Response:
        hits.append(1)
        return web.json_response(
            {},
            headers={
                "x-ratelimit-remaining-requests": "100",
                "x-ratelimit-reset-requests": "1m",
            },
        )

    # The server runs on a loop in a thread of its own; the blocking client on its own.
    loop = asyncio.new_event_loop()
    app = routes(("GET", "/r", ok))
    server = TestServer(app, host="127.0.0.1")
    loop.run_until_complete(server.start_server())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with stackwire.Client(str(server.make_url("/")), retry_budget=RetryBudget()) as client:
            resilient = (
                client.with_middleware(CircuitBreaker())
                .with_middleware(RateLimit(100))
                .with_middleware(ConcurrencyLimit(4))
            )
            for _ in range(3):
                assert resilient.get("/r", cast_to=dict) == {}
            assert resilient.pipeline.names[5:8] == [
                "circuit_breaker",
                "rate_limit",
                "concurrency_limit",
            ]
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()
    assert len(hits) == 3


async def test_hedged_twins_each_take_a_concurrency_slot(
    serve: Serve, make_client: MakeClient
) -> None:
    in_flight = 0
    peak = 0
    number = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal in_flight, peak, number
        number += 1
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.2 if number == 1 else 0.0)
        finally:
            in_flight -= 1
        return web.json_response({})

    base = await serve(routes(("GET", "/r", handle)))
    limit = ConcurrencyLimit(1, max_wait=5.0)
    client = make_client(base, sleep=asyncio.sleep, max_retries=0)
    client = client.with_middleware(Hedge(0.01)).with_middleware(limit)
    await client.get("/r")
    assert peak == 1  # the twin queued behind the first attempt's slot
    assert limit.in_flight() == 0


@pytest.mark.parametrize(
    ("part", "module"),
    [
        (RateLimit(), "rate_limit"),
        (ConcurrencyLimit(2), "concurrency"),
        (CircuitBreaker(), "breaker"),
        (Hedge(0.1), "hedge"),
        (RetryBudget(), "budget"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_part_has_a_repr_and_the_four_part_docstring(part: Any, module: str) -> None:
    doc = (importlib.import_module(f"stackwire.resilience.{module}").__doc__ or "").lower()
    for heading in ("what it does", "where it sits", "defaults", "retries and timeouts"):
        assert heading in doc, (type(part).__name__, heading)
    assert repr(part).startswith(type(part).__name__ + "(")
