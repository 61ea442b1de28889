"""Several OS processes share one Redis: a rate limit, a concurrency limit, a retry
budget and a breaker hold across all of them, as they would across a fleet."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.conftest import Serve, routes
from tests.redis.server import RedisServer
from tests.redis.workers import Workers


@pytest.fixture(scope="session")
def workers() -> Iterator[Workers]:
    """Four warm worker processes, shared by the tests of this module."""
    with Workers(4) as pool:
        yield pool


async def run_workers(workers: Workers, **spec: Any) -> list[dict[str, Any]]:
    # A sharing test, not a fault test: a generous store timeout on a loaded machine.
    spec.setdefault("timeout", 5.0)
    answers = await asyncio.to_thread(workers.run, **spec)
    assert all(answer["warnings"] == 0 for answer in answers)  # Redis answered throughout
    return answers


class Counting:
    """A server that records when each call arrived and how many were in flight."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.arrivals: list[float] = []
        self.ids: list[str] = []
        self.in_flight = 0
        self.peak = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        self.ids.append(request.query["id"])
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.json_response({}, status=self.status)
        finally:
            self.in_flight -= 1


async def test_four_processes_share_one_rate_limit(
    serve: Serve, redis_server: RedisServer, prefix: str, workers: Workers
) -> None:
    server = Counting()
    base = await serve(routes(("GET", "/r", server.handle)))
    rate = 40.0
    results = await run_workers(
        workers,
        redis=redis_server.url,
        prefix=prefix,
        base=base,
        calls=15,
        parallel=8,
        parts={"rate": rate, "burst": 1.0},
    )
    assert sum(r["ok"] for r in results) == 60
    assert len(server.ids) == len(set(server.ids)) == 60
    arrivals = sorted(server.arrivals)
    # 60 calls at 40/s from a bucket of 1: about 1.5 s, whatever the number of processes
    # (each alone would take a quarter of it)
    assert arrivals[-1] - arrivals[0] >= 0.9 * 59 / rate
    for index, start in enumerate(arrivals):  # no half second holds more than its share
        within = sum(1 for t in arrivals[index:] if t < start + 0.5)
        assert within <= 0.5 * rate + 3


async def test_four_processes_share_one_concurrency_limit(
    serve: Serve, redis_server: RedisServer, prefix: str, workers: Workers
) -> None:
    server = Counting(delay=0.03)
    base = await serve(routes(("GET", "/r", server.handle)))
    results = await run_workers(
        workers,
        redis=redis_server.url,
        prefix=prefix,
        base=base,
        calls=10,
        parallel=4,
        parts={"concurrency": 3},
    )
    assert sum(r["ok"] for r in results) == 40
    assert server.peak == 3  # across all processes, never more than the limit


async def test_a_shared_retry_budget_and_breaker_hold_across_processes(
    serve: Serve, redis_server: RedisServer, prefix: str, workers: Workers
) -> None:
    server = Counting(status=503)
    base = await serve(routes(("GET", "/r", server.handle)))
    results = await run_workers(
        workers,
        redis=redis_server.url,
        prefix=prefix,
        base=base,
        calls=25,
        parallel=2,
        no_backoff=True,
        parts={"budget": 0.2},
    )
    calls = 100
    assert all(r["errors"] == {"ServiceUnavailableError": 25} for r in results)
    assert len(server.arrivals) <= 1.2 * calls + 1  # 3 attempts a call without it
    # A breaker: the failures of any process open it for all of them.
    server.arrivals.clear()
    results = await run_workers(
        workers,
        redis=redis_server.url,
        prefix=prefix + "b:",
        base=base,
        calls=20,
        parallel=1,
        max_retries=0,
        parts={"breaker": 8},
    )
    refused = sum(r["errors"].get("CircuitOpenError", 0) for r in results)
    assert len(server.arrivals) + refused == 80
    assert len(server.arrivals) <= 8 + 3  # min_calls, and those in flight as it opened
