"""`RedisStateStore` on a Redis Cluster (three masters on 127.0.0.1, built from the
same ``redis-server`` binary): every operation's keys hash to one slot, so the
``redis.asyncio`` cluster client runs each of them without a ``CROSSSLOT`` error, and
the parts' state spreads over the nodes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
import redis.asyncio
from aiohttp import web
from redis.asyncio.cluster import RedisCluster as ClusterClient
from redis.crc import key_slot

from stackwire import CircuitBreaker, ConcurrencyLimit, RateLimit, RedisStateStore, RetryBudget
from stackwire.resilience import redis_store
from tests.conftest import Serve, routes
from tests.redis.server import RedisCluster, RedisServer
from tests.redis.test_redis_store import BREAKER
from tests.redis.test_round_trips import counted

ORIGIN = "https://api.example.com:443"
ANNOUNCED = {
    "x-ratelimit-limit-requests": "1000",
    "x-ratelimit-remaining-requests": "999",
    "x-ratelimit-reset-requests": "1s",
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[RedisCluster]:
    with RedisCluster(3) as nodes:
        yield nodes


async def every_operation(store: RedisStateStore) -> None:
    """Each operation of the protocol once, and each deferred write."""
    bucket, quota = f"rate_limit:5.0:5.0:bucket:{ORIGIN}", f"rate_limit:server:{ORIGIN}"
    breaker = f"circuit_breaker:{ORIGIN}"
    assert (await store.take_tokens(bucket, rate=5.0, burst=5.0, max_wait=1.0))[0]
    granted, _, ticket = await store.take_quota(quota)
    assert granted
    await store.announce_quota(quota, limit=9, remaining=8, reset_in=20, window=None, ticket=ticket)
    store.announce_quota_later(quota, limit=9, remaining=7, reset_in=20, window=None, ticket=ticket)
    await store.pause_quota(quota, seconds=0.01)
    lease = await store.acquire_slot("concurrency_limit:4", limit=4)
    assert lease is not None
    await store.release_slot("concurrency_limit:4", lease)
    lease = await store.acquire_slot("concurrency_limit:4", limit=4)
    assert lease is not None
    store.release_slot_later("concurrency_limit:4", lease)
    assert await store.breaker_acquire(breaker, open_for=30.0) == ("closed", 0.0)
    assert (
        await store.breaker_record(breaker, outcome="failure", probe=False, **BREAKER) == "closed"
    )
    store.breaker_record_later(breaker, outcome="success", probe=False, **BREAKER)
    await store.budget_deposit("retry_budget", window=10.0)
    store.budget_deposit_later("retry_budget", window=10.0)
    assert await store.budget_withdraw("retry_budget", ratio=1.0, min_per_second=0.0, window=10.0)


async def test_every_operation_and_every_part_runs_on_a_cluster(
    cluster: RedisCluster,
    serve: Serve,
    make_client: Any,
    prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = ClusterClient.from_url(cluster.url)
    # raise: an operation refused by the cluster (CROSSSLOT, MOVED gone wrong) fails here
    store = RedisStateStore(client, prefix=prefix, on_error="raise", timeout=5.0)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({}, headers=ANNOUNCED)

    base = await serve(routes(("GET", "/r", ok)))
    api = (
        make_client(base, retry_budget=RetryBudget(store=store))
        .with_middleware(CircuitBreaker(store=store))
        .with_middleware(RateLimit(1e6, store=store))
        .with_middleware(ConcurrencyLimit(8, store=store))
    )
    try:
        with caplog.at_level(logging.INFO, logger="stackwire"):
            await every_operation(store)
            for _ in range(10):
                assert await api.get("/r", cast_to=dict) == {}
            await store.aclose()  # the deferred writes, sent each to its node
        assert store.reachable
        assert not [r for r in caplog.records if r.name == "stackwire"]  # no outage
        holders = 0
        for node in cluster.nodes:
            raw = redis.asyncio.Redis.from_url(node.url, decode_responses=True)
            try:
                keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
                holders += bool(keys)
                for key in keys:
                    if key.endswith("}:slots"):
                        assert await raw.zcard(key) == 0  # every slot given back
                    if key.startswith(f"{prefix}{{retry_budget:"):  # the parts' budget
                        counts = await raw.hgetall(key)
                        calls = counted(counts)
                        assert calls == 10
            finally:
                await raw.aclose()
        assert holders >= 2  # the keys are spread over the nodes: slots were exercised
    finally:
        await client.aclose()


async def test_the_keys_of_every_round_trip_step_share_one_slot(
    redis_server: RedisServer, prefix: str, serve: Serve, make_client: Any, monkeypatch: Any
) -> None:
    # On a plain Redis one round trip may carry several steps; each step alone is
    # what a cluster client sends: its keys must hash to one slot.
    steps: list[redis_store.Step] = []
    trip = redis_store._trip

    async def recording(client: Any, batch: Any) -> Any:
        steps.extend(batch)
        return await trip(client, batch)

    monkeypatch.setattr(redis_store, "_trip", recording)
    store = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({}, headers=ANNOUNCED)

    base = await serve(routes(("GET", "/r", ok)))
    api = (
        make_client(base, retry_budget=RetryBudget(store=store))
        .with_middleware(CircuitBreaker(store=store))
        .with_middleware(RateLimit(1e6, store=store))
        .with_middleware(ConcurrencyLimit(8, store=store))
    )
    await every_operation(store)
    for _ in range(5):
        await api.get("/r")
    await store.take_tokens("t", rate=1.0, burst=1.0, max_wait=0.0)  # unclaimed guesses
    await store.aclose()
    names = {name for name, *_ in steps}
    assert names >= {
        "take_tokens",
        "take_quota",
        "announce_quota",
        "pause_quota",
        "acquire_slot",
        "release_slot",
        "breaker_acquire",
        "breaker_record",
        "budget_deposit",
        "budget_withdraw",
    }
    assert {mode for _, mode, *_ in steps} == {"w", "d", "g"}
    for name, _, keys, _ in steps:
        assert keys
        assert len({key_slot(key.encode()) for key in keys}) == 1, (name, keys)
