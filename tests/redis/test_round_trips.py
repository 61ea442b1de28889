"""Round trips per successful call, counted on a real redis-server (``INFO
commandstats``: every round trip of the store is one ``EVALSHA``, or ``EVAL`` the
first time): one per call, whatever parts share the store; the deferred writes reach
Redis by themselves and at ``aclose``; a guessed check nobody claims is given back; a
breaker opened by another process still refuses at once."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
import redis.asyncio
from aiohttp import web

import stackwire
from stackwire import CircuitBreaker, ConcurrencyLimit, RateLimit, RedisStateStore, RetryBudget
from tests.conftest import RawServer, Serve, routes
from tests.redis.server import RedisServer

MakeClient = Callable[..., stackwire.AsyncClient]

ANNOUNCED = {
    "x-ratelimit-limit-requests": "1000",
    "x-ratelimit-remaining-requests": "999",
    "x-ratelimit-reset-requests": "1s",
}


async def scripts_run(url: str) -> int:
    """How many scripts the server ran so far (one a round trip of the store)."""
    raw = redis.asyncio.Redis.from_url(url)
    try:
        stats = await raw.info("commandstats")
    finally:
        await raw.aclose()
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


def counted(ring: Mapping[Any, Any]) -> int:
    """The first counts of a sliding-window ring (calls, successes) in Redis."""
    return sum(int(v) for k, v in ring.items() if str(k).startswith("a"))


async def api(serve: Serve) -> tuple[str, Counter[str]]:
    """``/r`` answers 200 (``/announce`` with a budget in OpenAI's headers), ``/down``
    503; every arrival is counted by path."""
    seen: Counter[str] = Counter()

    async def ok(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return web.json_response({})

    async def announce(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return web.json_response({}, headers=ANNOUNCED)

    async def down(request: web.Request) -> web.Response:
        seen[request.path] += 1
        return web.json_response({}, status=503)

    app = routes(("GET", "/r", ok), ("GET", "/announce", announce), ("GET", "/down", down))
    return await serve(app), seen


def stack(
    client: stackwire.AsyncClient, parts: str, store: RedisStateStore
) -> stackwire.AsyncClient:
    for part in parts.split("+"):
        if part == "breaker":
            client = client.with_middleware(CircuitBreaker(store=store))
        elif part == "rate":
            client = client.with_middleware(RateLimit(1e6, store=store))
        elif part == "rate-no-headers":
            client = client.with_middleware(RateLimit(1e6, from_headers=False, store=store))
        elif part == "slots":
            client = client.with_middleware(ConcurrencyLimit(100, store=store))
    return client


def counting_store(url: str, prefix: str) -> RedisStateStore:
    """A store whose deferred writes wait for the next round trip (or `aclose`), and
    whose guessed answers stay good as long as needed: only round trips that a call
    itself needs are counted, however slow the machine."""
    store = RedisStateStore(url, prefix=prefix, timeout=5.0)
    store._flush_after = 60.0
    store._fresh = 60.0
    return store


@pytest.mark.parametrize(
    ("parts", "path"),
    [
        ("breaker", "/r"),
        ("rate", "/r"),
        ("rate", "/announce"),
        ("slots+budget", "/r"),
        ("breaker+rate-no-headers", "/r"),
        ("breaker+rate+slots", "/announce"),
        ("breaker+rate+slots+budget", "/r"),
        ("breaker+rate+slots+budget", "/announce"),
        ("rate+breaker+slots+budget", "/r"),
    ],
)
async def test_a_successful_call_makes_one_round_trip_whatever_parts_share_the_store(
    serve: Serve,
    make_client: MakeClient,
    own_redis: RedisServer,
    prefix: str,
    parts: str,
    path: str,
) -> None:
    base, seen = await api(serve)
    store = counting_store(own_redis.url, prefix)
    options = {"retry_budget": RetryBudget(store=store)} if "budget" in parts else {}
    client = stack(make_client(base, **options), parts, store)
    for _ in range(3):  # connected; the store has seen which check follows which
        await client.get(path)
    before = await scripts_run(own_redis.url)
    for _ in range(20):
        await client.get(path)
    assert await scripts_run(own_redis.url) - before == 20  # before: 2 to 8 a call
    await store.aclose()
    # the last call's writes (an outcome, a slot, a deposit, an announced budget)
    writes = path == "/announce" or any(p in parts for p in ("breaker", "slots", "budget"))
    assert await scripts_run(own_redis.url) - before == 20 + writes
    assert seen[path] == 23
    assert store.reachable


async def test_deferred_writes_reach_redis_by_themselves(
    serve: Serve, make_client: MakeClient, redis_server: RedisServer, prefix: str
) -> None:
    base, _ = await api(serve)
    store = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)  # the defaults
    client = make_client(base, retry_budget=RetryBudget(store=store)).with_middleware(
        ConcurrencyLimit(1, store=store)
    )
    await client.get("/r")
    # Nothing else is asked of `store`: its slot's release and the budget's deposit
    # are sent by themselves, and another process (another store) sees both.
    other = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)
    raw = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        lease = None
        for _ in range(200):
            lease = await other.acquire_slot("concurrency_limit:1", limit=1)
            if lease is not None:
                break
            await asyncio.sleep(0.01)
        assert lease is not None
        budget = await raw.hgetall(f"{prefix}{{retry_budget:0.2:10.0:10.0}}:budget")
        assert counted(budget) == 1
    finally:
        await raw.aclose()
        await other.aclose()
        await store.aclose()


async def test_nothing_deferred_is_lost_at_aclose(
    serve: Serve, make_client: MakeClient, redis_server: RedisServer, prefix: str
) -> None:
    base, _ = await api(serve)
    store = counting_store(redis_server.url, prefix)
    client = stack(make_client(base, retry_budget=RetryBudget(store=store)), "breaker+slots", store)
    for _ in range(10):
        await client.get("/r")
    raw = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    slots = f"{prefix}{{concurrency_limit:100}}:slots"
    try:
        assert await raw.zcard(slots) == 1  # the last call's slot: not given back yet
        await store.aclose()
        assert await raw.zcard(slots) == 0
        budget = await raw.hgetall(f"{prefix}{{retry_budget:0.2:10.0:10.0}}:budget")
        assert counted(budget) == 10
        breakers = [key async for key in raw.scan_iter(match=f"{prefix}{{circuit_breaker:*")]
        assert len(breakers) == 1
        ring = await raw.hgetall(breakers[0])
        assert counted(ring) == 10  # successes
    finally:
        await raw.aclose()


async def test_a_shared_breaker_counts_a_body_broken_after_good_headers(
    raw_server: Callable[..., Awaitable[tuple[str, RawServer]]],
    make_client: MakeClient,
    redis_server: RedisServer,
    prefix: str,
) -> None:
    # The failure is known only when decode's read of the body breaks, after the
    # breaker has handed the response up: it is recorded from there, in Redis too,
    # so that another process's breaker (another store) opens.
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b"Content-Length: 50\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b'{"ok": ')
        await writer.drain()

    base, server = await raw_server(hang_up)
    store = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)
    other = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)
    try:
        client = make_client(base, max_retries=2).with_middleware(
            CircuitBreaker(min_calls=3, store=store)
        )
        with pytest.raises(stackwire.APIConnectionError):
            await client.get("/r")
        assert server.connections == 3
        elsewhere = make_client(base).with_middleware(CircuitBreaker(min_calls=3, store=other))
        opened = False
        for _ in range(20):  # the last outcome is recorded by a task of its own
            try:
                await elsewhere.get("/r", max_retries=0)
            except stackwire.CircuitOpenError:
                opened = True
                break
            except stackwire.APIConnectionError:
                await asyncio.sleep(0.01)
        assert opened
        assert server.connections <= 4  # at most one more, sent before that task ran
    finally:
        await other.aclose()
        await store.aclose()


async def learn_tokens_then_slot(store: RedisStateStore) -> None:
    """Two attempts that take a token, then a slot, then give it back: after them,
    the store guesses the slot along with the token."""
    for _ in range(2):
        assert (await store.take_tokens("t", rate=1e6, burst=1e6, max_wait=0.0))[0]
        lease = await store.acquire_slot("s", limit=1)
        assert lease is not None
        await store.release_slot("s", lease)


async def test_a_guessed_slot_nobody_claims_is_given_back(
    redis_server: RedisServer, prefix: str
) -> None:
    store = counting_store(redis_server.url, prefix)
    other = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    slots = f"{prefix}{{s}}:slots"
    try:
        await learn_tokens_then_slot(store)
        before = await scripts_run(redis_server.url)
        assert (await store.take_tokens("t", rate=1e6, burst=1e6, max_wait=0.0))[0]
        assert await raw.zcard(slots) == 1  # taken with the token, in the same trip
        assert await other.acquire_slot("s", limit=1) is None
        # This attempt goes another way: the guess is given back with the next trip.
        await store.budget_deposit("b", window=10.0)
        assert await raw.zcard(slots) == 0
        assert await scripts_run(redis_server.url) - before == 3  # other's try included
        # ... and a guess claimed later than it stays good is given back too
        store._fresh = 0.01
        assert (await store.take_tokens("t", rate=1e6, burst=1e6, max_wait=0.0))[0]
        assert await raw.zcard(slots) == 1
        await asyncio.sleep(0.05)
        lease = await store.acquire_slot("s", limit=1)  # asked again, for real
        assert lease is not None
        assert await raw.zcard(slots) == 1  # one slot, not two
        await store.release_slot("s", lease)
    finally:
        await raw.aclose()
        await other.aclose()
        await store.aclose()
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        assert await raw.zcard(slots) == 0
    finally:
        await raw.aclose()


async def test_a_guessed_token_nobody_claims_is_given_back(
    redis_server: RedisServer, prefix: str
) -> None:
    store = counting_store(redis_server.url, prefix)
    try:
        for _ in range(2):  # a slot, then a token: learned
            lease = await store.acquire_slot("s", limit=5)
            assert lease is not None
            assert (await store.take_tokens("t", rate=0.001, burst=3.0, max_wait=0.0))[0]
            await store.release_slot("s", lease)
        lease = await store.acquire_slot("s", limit=5)  # the third token, guessed
        assert lease is not None
        await store.release_slot("s", lease)  # unclaimed: given back
        # one token is left, not none
        assert (await store.take_tokens("t", rate=0.001, burst=3.0, max_wait=0.0))[0]
        assert not (await store.take_tokens("t", rate=0.001, burst=3.0, max_wait=0.0))[0]
    finally:
        await store.aclose()


async def test_a_breaker_opened_elsewhere_refuses_even_where_it_is_guessed(
    serve: Serve, make_client: MakeClient, redis_server: RedisServer, prefix: str
) -> None:
    base, seen = await api(serve)
    here = counting_store(redis_server.url, prefix)
    there = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)
    # The rate limit's check comes first here: the breaker's is guessed along with it.
    client = (
        make_client(base, max_retries=0)
        .with_middleware(RateLimit(1e6, store=here))
        .with_middleware(CircuitBreaker(min_calls=2, store=here))
    )
    elsewhere = make_client(base, max_retries=0).with_middleware(
        CircuitBreaker(min_calls=2, store=there)
    )
    try:
        for _ in range(3):
            await client.get("/r")
        for _ in range(2):
            with pytest.raises(stackwire.ServiceUnavailableError):
                await elsewhere.get("/down")
        before = await scripts_run(redis_server.url)
        with pytest.raises(stackwire.CircuitOpenError):
            await client.get("/r")
        # the guess saw an open breaker and did not run: the breaker asked for itself
        assert await scripts_run(redis_server.url) - before == 2
        assert seen["/r"] == 3
    finally:
        await here.aclose()
        await there.aclose()


async def test_a_changed_order_of_checks_is_learned_again(
    redis_server: RedisServer, prefix: str
) -> None:
    store = counting_store(redis_server.url, prefix)
    raw = redis.asyncio.Redis.from_url(redis_server.url)

    async def attempt() -> int:
        """A token, then the announced budget (no longer a slot): the trips it took."""
        before = await scripts_run(redis_server.url)
        assert (await store.take_tokens("t", rate=1e6, burst=1e6, max_wait=0.0))[0]
        assert (await store.take_quota("q"))[0]
        trips = await scripts_run(redis_server.url) - before
        await store.budget_deposit("b", window=10.0)  # the attempt is over
        return trips

    try:
        await learn_tokens_then_slot(store)
        assert [await attempt() for _ in range(3)] == [2, 2, 1]
        assert await raw.zcard(f"{prefix}{{s}}:slots") == 0  # the wrong guess, given back
    finally:
        await raw.aclose()
        await store.aclose()
