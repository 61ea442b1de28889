"""Redis down at start, killed and restarted mid-run, slow: calls go on with
per-process state (one WARNING an outage, one INFO when it answers again) and rejoin
the shared state; with ``on_error="raise"`` a typed error, never retried. No call is
lost or sent twice because of the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import redis.asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire
from stackwire import CircuitBreaker, ConcurrencyLimit, RateLimit, RedisStateStore, RetryBudget
from tests.conftest import Serve, SleepRecorder, routes
from tests.redis.server import RedisServer, free_port

MakeClient = Callable[..., stackwire.AsyncClient]


def store_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "stackwire"]


async def counting(serve: Serve) -> tuple[str, Counter[str]]:
    """A server that counts each call's ``?id=``: a lost call is missing, a duplicate
    counted twice."""
    seen: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.Response:
        seen[request.query["id"]] += 1
        return web.json_response({})

    return await serve(routes(("GET", "/r", handle))), seen


def resilient(client: stackwire.AsyncClient, store: RedisStateStore) -> stackwire.AsyncClient:
    return (
        client.with_middleware(CircuitBreaker(store=store))
        .with_middleware(RateLimit(500, store=store))
        .with_middleware(ConcurrencyLimit(8, store=store))
    )


async def test_redis_down_at_start_calls_go_on_with_one_warning(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture, prefix: str
) -> None:
    base, seen = await counting(serve)
    store = RedisStateStore(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix, timeout=0.2)
    client = resilient(make_client(base, retry_budget=RetryBudget(store=store)), store)
    with caplog.at_level(logging.INFO, logger="stackwire"):
        began = time.monotonic()
        await asyncio.gather(*(client.get("/r", query={"id": str(i)}) for i in range(40)))
        took = time.monotonic() - began
    await store.aclose()
    assert seen == Counter({str(i): 1 for i in range(40)})
    logs = store_logs(caplog)
    assert len(logs) == 1
    assert logs[0][0] == logging.WARNING
    assert "unreachable" in logs[0][1]
    assert "per-process" in logs[0][1]
    assert not store.reachable
    assert took < 2.0  # Redis is not asked again on every call


async def test_with_raise_a_dead_redis_is_a_state_store_error_never_retried(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder, prefix: str
) -> None:
    base, seen = await counting(serve)
    store = RedisStateStore(
        f"redis://127.0.0.1:{free_port()}/0", prefix=prefix, timeout=0.2, on_error="raise"
    )
    client = make_client(base, max_retries=2).with_middleware(RateLimit(5, store=store))
    causes = []
    for _ in range(2):  # the first tries Redis; the second, within 1 s, raises at once
        with pytest.raises(stackwire.StateStoreError) as caught:
            await client.get("/r", query={"id": "1"})
        error = caught.value
        causes.append(type(error.__cause__).__name__)
        assert isinstance(error, stackwire.APIConnectionError)
        assert error.request is not None
        assert error.request.url.path == "/r"
        assert error.retries_taken == 0
        assert "not sent" in str(error)
    # redis-py's both times: the second call does not try Redis again, and its cause
    # is the failure that made Redis count as unreachable.
    assert causes == ["ConnectionError", "ConnectionError"]
    assert not stackwire.default_should_retry(error)
    assert client_sleeps.delays == []
    assert not seen  # the API was never contacted
    await store.aclose()


async def test_with_raise_what_is_recorded_after_a_call_never_fails_it(
    serve: Serve,
    make_client: MakeClient,
    own_redis: RedisServer,
    prefix: str,
) -> None:
    base, seen = await counting(serve)
    store = RedisStateStore(own_redis.url, prefix=prefix, timeout=0.2, on_error="raise")

    async def kill_redis_mid_call(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[object]:
        response = await call_next(request)
        own_redis.kill()  # the response arrived; the slot and outcome are recorded next
        return response

    client = (
        make_client(base)
        .with_middleware(CircuitBreaker(store=store))
        .with_middleware(ConcurrencyLimit(2, store=store))
        .with_middleware(kill_redis_mid_call)
    )
    assert await client.get("/r", query={"id": "1"}, cast_to=dict) == {}
    assert seen == Counter({"1": 1})
    with pytest.raises(stackwire.StateStoreError):  # the next call cannot be decided
        await client.get("/r", query={"id": "2"})
    assert seen == Counter({"1": 1})
    await store.aclose()


async def test_with_raise_only_the_operations_that_decide_raise() -> None:
    store = RedisStateStore(f"redis://127.0.0.1:{free_port()}/0", on_error="raise")
    await store.budget_deposit("b", window=10.0)  # the count of a call: never raises
    await store.release_slot("s", 1)
    with pytest.raises(stackwire.StateStoreError):
        await store.budget_withdraw("b", ratio=0.2, min_per_second=10.0, window=10.0)
    await store.aclose()


async def test_redis_killed_mid_run_and_restarted_loses_no_call_and_rejoins(
    serve: Serve,
    make_client: MakeClient,
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
    prefix: str,
) -> None:
    base, seen = await counting(serve)
    store = RedisStateStore(own_redis.url, prefix=prefix, timeout=0.25)
    client = resilient(make_client(base, retry_budget=RetryBudget(store=store)), store)
    made: list[str] = []

    async def caller(worker: int) -> None:
        for n in range(10_000):
            if stop.is_set():
                return
            call_id = f"{worker}-{n}"
            made.append(call_id)
            await client.get("/r", query={"id": call_id})
            await asyncio.sleep(0.005)

    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="stackwire"):
        callers = [asyncio.create_task(caller(w)) for w in range(4)]
        await asyncio.sleep(0.4)
        own_redis.kill()
        await asyncio.sleep(0.8)
        assert not store.reachable
        during = len(made)
        own_redis.start()
        await asyncio.sleep(1.6)  # tried again at most 1 s after the last failure
        stop.set()
        await asyncio.gather(*callers)
    assert len(made) > during > 0  # calls went on during the outage and after it
    assert seen == Counter(dict.fromkeys(made, 1))  # none lost, none sent twice
    assert store.reachable
    levels = [level for level, _ in store_logs(caplog)]
    assert levels == [logging.WARNING, logging.INFO]
    raw = redis.asyncio.Redis.from_url(own_redis.url)
    try:
        assert await raw.exists(f"{prefix}{{concurrency_limit:8}}:leases")  # shared again
    finally:
        await raw.aclose()
    await store.aclose()


async def test_a_slow_redis_counts_as_unreachable_within_the_timeout(
    serve: Serve,
    make_client: MakeClient,
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
    prefix: str,
) -> None:
    base, seen = await counting(serve)
    store = RedisStateStore(own_redis.url, prefix=prefix, timeout=0.15)
    client = resilient(make_client(base), store)
    await client.get("/r", query={"id": "warm"})  # connected, scripts loaded
    raw = redis.asyncio.Redis.from_url(own_redis.url)
    try:
        with caplog.at_level(logging.INFO, logger="stackwire"):
            await raw.client_pause(1200)
            began = time.monotonic()
            await client.get("/r", query={"id": "slow"})
            took = time.monotonic() - began
            assert took < 0.6  # one timeout, then per-process state; not the pause
            assert not store.reachable
            await asyncio.sleep(1.3)  # the pause is over, and 1 s since the failure
            await client.get("/r", query={"id": "after"})
    finally:
        await raw.aclose()
    assert store.reachable
    assert [level for level, _ in store_logs(caplog)] == [logging.WARNING, logging.INFO]
    assert "no answer in time" in store_logs(caplog)[0][1]
    assert seen == Counter({"warm": 1, "slow": 1, "after": 1})
    await store.aclose()


@contextlib.contextmanager
def serve_in_thread(app: web.Application) -> Iterator[str]:
    """An aiohttp server on a loop in a thread of its own (for the blocking client)."""
    loop = asyncio.new_event_loop()
    server = TestServer(app, host="127.0.0.1")
    loop.run_until_complete(server.start_server())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield str(server.make_url("/"))
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_the_blocking_client_uses_a_store_made_from_a_url(
    redis_server: RedisServer, prefix: str
) -> None:
    seen: list[int] = []

    async def ok(request: web.Request) -> web.Response:
        seen.append(1)
        return web.json_response({})

    store = RedisStateStore(redis_server.url, prefix=prefix, timeout=5.0)
    store._flush_after = 60.0  # the deferred writes wait for the loop's end
    with serve_in_thread(routes(("GET", "/r", ok))) as base:
        client = stackwire.Client(base, retry_budget=RetryBudget(store=store))
        with client:
            shared = (
                client.with_middleware(CircuitBreaker(store=store))
                .with_middleware(RateLimit(100, store=store))
                .with_middleware(ConcurrencyLimit(2, store=store))
            )
            for _ in range(3):
                assert shared.get("/r", cast_to=dict) == {}
        # the Client's loop is gone; the store's connection on it was closed with it
        # (else a ResourceWarning, an error in this suite, would say so), and closing
        # it was no outage (redis-py's async generators, started as the loop shut them
        # down, made the loop warn: an error here, which failed the last trip)
        assert store.reachable

    async def look() -> tuple[int, int]:
        raw = redis.asyncio.Redis.from_url(redis_server.url)
        try:
            return (
                int(await raw.exists(f"{prefix}{{concurrency_limit:2}}:leases")),
                int(await raw.zcard(f"{prefix}{{concurrency_limit:2}}:slots")),
            )
        finally:
            await raw.aclose()
            await store.aclose()

    assert asyncio.run(look()) == (1, 0)  # every slot given back, at the loop's end
    assert len(seen) == 3


async def test_a_slot_taken_during_an_outage_is_given_back_to_the_store_that_lent_it(
    own_redis: RedisServer, prefix: str
) -> None:
    store = RedisStateStore(own_redis.url, prefix=prefix, timeout=0.2)
    shared = await store.acquire_slot("c", limit=1)
    assert shared is not None
    assert shared > 0
    own_redis.kill()
    local = await store.acquire_slot("c", limit=1)  # per-process state: a slot of its own
    assert local is not None
    assert local < 0
    assert store.local().slots_in_use("c") == 1
    own_redis.start()  # empty again: the shared slot is gone with the old server
    await asyncio.sleep(1.05)
    other = RedisStateStore(own_redis.url, prefix=prefix, timeout=0.2)
    held = await other.acquire_slot("c", limit=1)  # Redis answers again, for everyone
    assert held is not None
    await store.release_slot("c", local)  # to the local store, not to Redis
    assert store.local().slots_in_use("c") == 0
    assert await store.acquire_slot("c", limit=1) is None  # `held` still counts
    await other.release_slot("c", held)
    assert await store.acquire_slot("c", limit=1) is not None
    assert store.reachable
    await store.aclose()
    await other.aclose()
