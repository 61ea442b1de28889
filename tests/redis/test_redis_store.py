"""Each `StateStore` operation on a real Redis: shared by two stores (as two processes
would), atomic, keys under the prefix with one hash tag and a TTL, scripts reloaded."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import TypedDict

import pytest
import redis
import redis.asyncio

from stackwire import InvalidRequestError, MemoryStateStore, RedisStateStore, StateStore
from tests.redis.conftest import MakeStore
from tests.redis.server import RedisServer


class BreakerSettings(TypedDict):
    failure_ratio: float
    min_calls: int
    window: float
    open_for: float


BREAKER = BreakerSettings(failure_ratio=0.5, min_calls=4, window=10.0, open_for=0.3)


async def test_two_stores_share_one_token_bucket(make_store: MakeStore) -> None:
    a, b = make_store(), make_store()
    assert isinstance(a, StateStore)
    took = [
        await store.take_tokens("rl:https://api:443", rate=10.0, burst=3.0, max_wait=5.0)
        for store in (a, b, a)
    ]
    assert took == [(True, 0.0)] * 3  # the burst, shared
    granted, wait = await b.take_tokens("rl:https://api:443", rate=10.0, burst=3.0, max_wait=5.0)
    assert granted
    assert 0.05 < wait <= 0.1  # in debt: the fourth waits about 1/rate
    # longer than max_wait: refused, and nothing is taken
    assert (await a.take_tokens("rl:https://api:443", rate=10.0, burst=3.0, max_wait=0.01))[
        0
    ] is False
    granted, again = await a.take_tokens("rl:https://api:443", rate=10.0, burst=3.0, max_wait=5.0)
    assert granted
    assert again < 0.21


async def test_concurrent_takes_are_atomic(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(4)]
    results = await asyncio.gather(
        *(
            store.take_tokens("rl:x", rate=0.001, burst=25.0, max_wait=0.0)
            for store in stores
            for _ in range(25)
        )
    )
    assert sum(granted for granted, _ in results) == 25  # exactly the burst, no more


async def test_the_announced_budget_and_pauses_are_shared(make_store: MakeStore) -> None:
    a, b = make_store(), make_store()
    granted, _, ticket = await a.take_quota("q")
    assert granted  # nothing announced: go
    await a.announce_quota("q", limit=3, remaining=2, reset_in=0.4, window=None, ticket=ticket)
    assert (await b.take_quota("q"))[0]
    assert (await a.take_quota("q"))[0]
    granted, wait, _ = await b.take_quota("q")
    assert not granted
    assert 0.2 < wait <= 0.4
    await asyncio.sleep(wait + 0.02)
    assert [(await a.take_quota("q"))[0] for _ in range(4)] == [True, True, True, False]
    await b.pause_quota("q", seconds=5.0)
    granted, wait, _ = await a.take_quota("q")
    assert not granted
    assert 4.5 < wait <= 5.0
    await a.pause_quota("q", seconds=1.0)  # a later pause never shortens an earlier one
    assert (await b.take_quota("q"))[1] > 4.0


async def test_slots_are_counted_across_stores_and_a_dead_holders_lease_expires(
    make_store: MakeStore,
) -> None:
    a, b = make_store(lease=0.4), make_store(lease=0.4)
    first = await a.acquire_slot("c", limit=2)
    second = await b.acquire_slot("c", limit=2)
    assert first
    assert second
    assert first != second
    assert await a.acquire_slot("c", limit=2) is None
    await a.release_slot("c", first)
    await a.release_slot("c", first)  # twice: ignored
    third = await a.acquire_slot("c", limit=2)
    assert third is not None
    assert await b.acquire_slot("c", limit=2) is None
    # b "dies" holding `second`; a keeps renewing `third` as it uses the limit
    for _ in range(5):
        await asyncio.sleep(0.1)
        await a.acquire_slot("c", limit=1)
    assert await b.acquire_slot("c", limit=2) is not None  # second expired, third did not
    assert await b.acquire_slot("c", limit=2) is None


async def test_a_breaker_opened_by_one_store_is_open_for_the_other(make_store: MakeStore) -> None:
    a, b = make_store(), make_store()
    states = [
        await a.breaker_record("cb", outcome="failure", probe=False, **BREAKER) for _ in range(4)
    ]
    assert states == ["closed", "closed", "closed", "open"]
    state, retry_after = await b.breaker_acquire("cb", open_for=0.3)
    assert state == "open"
    assert 0.2 < retry_after <= 0.3
    await asyncio.sleep(0.32)
    assert (await b.breaker_acquire("cb", open_for=0.3))[0] == "probe"
    assert (await a.breaker_acquire("cb", open_for=0.3))[0] == "open"  # one probe at a time
    assert await b.breaker_record("cb", outcome="failure", probe=True, **BREAKER) == "open"
    await asyncio.sleep(0.32)
    assert (await a.breaker_acquire("cb", open_for=0.3))[0] == "probe"
    assert await a.breaker_record("cb", outcome="success", probe=True, **BREAKER) == "closed"
    assert await b.breaker_acquire("cb", open_for=0.3) == ("closed", 0.0)
    # closed with an empty window: three more failures do not open it
    for _ in range(3):
        assert await b.breaker_record("cb", outcome="failure", probe=False, **BREAKER) == "closed"


async def test_a_probe_whose_holder_died_is_given_again_after_the_lease(
    make_store: MakeStore,
) -> None:
    a = make_store(lease=0.3)
    for _ in range(4):
        await a.breaker_record("cb", outcome="failure", probe=False, **BREAKER)
    await asyncio.sleep(0.32)
    assert (await a.breaker_acquire("cb", open_for=0.3))[0] == "probe"  # never recorded
    assert (await a.breaker_acquire("cb", open_for=0.3))[0] == "open"
    await asyncio.sleep(0.32)
    assert (await a.breaker_acquire("cb", open_for=0.3))[0] == "probe"


async def test_the_retry_budget_is_shared(make_store: MakeStore) -> None:
    a, b = make_store(), make_store()
    for store in (a, b) * 5:
        await store.budget_deposit("rb", window=10.0)
    allowed = [
        await store.budget_withdraw("rb", ratio=0.2, min_per_second=0.1, window=10.0)
        for store in (a, b) * 3
    ]
    # max(0.2 * 10, 0.1 a second for the 1 or 2 s covered, rounded up): the larger, not
    # the sum
    assert allowed == [True, True, False, False, False, False]


async def test_the_store_gives_the_same_answers_as_the_memory_store(
    make_store: MakeStore,
) -> None:
    # Both on real time, fast enough that no refill or window end falls in between.
    shared, memory = make_store(), MemoryStateStore()
    stores: tuple[StateStore, StateStore] = (shared, memory)
    answers: list[list[object]] = [[], []]
    for index, store in enumerate(stores):
        seen = answers[index]
        seen.append(await store.take_tokens("t", rate=1.0, burst=2.0, max_wait=0.0))
        seen.append(await store.take_tokens("t", rate=1.0, burst=2.0, max_wait=0.0))
        seen.append((await store.take_tokens("t", rate=1.0, burst=2.0, max_wait=0.0))[0])
        _, _, ticket = await store.take_quota("q")
        await store.take_quota("q")
        await store.announce_quota(
            "q", limit=5, remaining=3, reset_in=60.0, window=None, ticket=ticket
        )
        seen.append([(await store.take_quota("q"))[0] for _ in range(3)])
        await store.announce_quota(
            "q", limit=5, remaining=0, reset_in=60.5, window=None, ticket=ticket
        )
        seen.append((await store.take_quota("q"))[0])
        seen.append([await store.acquire_slot("s", limit=1) is not None for _ in range(2)])
        for outcome in ("success", "failure", "failure", "success", "failure"):
            seen.append(
                await store.breaker_record(
                    "b", outcome=outcome, probe=False, failure_ratio=0.6, min_calls=3,
                    window=10.0, open_for=30.0,
                )
            )  # fmt: skip
        seen.append((await store.breaker_acquire("b", open_for=30.0))[0])
        await store.budget_deposit("r", window=10.0)
        seen.append(
            [
                await store.budget_withdraw("r", ratio=1.0, min_per_second=0.0, window=10.0)
                for _ in range(2)
            ]
        )
        for _ in range(5):
            await store.budget_deposit("f", window=1000.0)  # slices of 100 s
        seen.append(
            [  # the floor (0.05 a second for one slice: 5) over the ratio (0.2 * 5 = 1)
                await store.budget_withdraw("f", ratio=0.2, min_per_second=0.05, window=1000.0)
                for _ in range(7)
            ]
        )
        seen.append(  # the ratio over the floor
            [
                await store.budget_withdraw("f", ratio=1.4, min_per_second=0.05, window=1000.0)
                for _ in range(3)
            ]
        )
    assert answers[0] == answers[1]
    assert answers[0][-2:] == [[True] * 5 + [False] * 2, [True, True, False]]


async def test_every_key_has_the_prefix_one_hash_tag_and_a_ttl(
    make_store: MakeStore, redis_server: RedisServer, prefix: str
) -> None:
    store = make_store()
    origin = "https://api.example.com:443"
    await store.take_tokens(f"rate_limit:5.0:5.0:bucket:{origin}", rate=5.0, burst=5.0, max_wait=1)
    _, _, ticket = await store.take_quota(f"rate_limit:server:{origin}")
    await store.announce_quota(
        f"rate_limit:server:{origin}", limit=9, remaining=8, reset_in=20, window=None, ticket=ticket
    )
    await store.acquire_slot("concurrency_limit:4", limit=4)
    await store.breaker_record(
        f"circuit_breaker:{origin}", outcome="failure", probe=False, **BREAKER
    )
    await store.budget_deposit("retry_budget", window=10.0)
    raw = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        keys = sorted([key async for key in raw.scan_iter(match=f"{prefix}*")])
        ttls = {key: await raw.pttl(key) for key in keys}
    finally:
        await raw.aclose()
    assert keys == sorted(
        [
            f"{prefix}{{rate_limit:5.0:5.0:bucket:{origin}}}:bucket",
            f"{prefix}{{rate_limit:server:{origin}}}:quota",
            f"{prefix}{{concurrency_limit:4}}:slots",
            f"{prefix}{{concurrency_limit:4}}:leases",
            f"{prefix}{{circuit_breaker:{origin}}}:breaker",
            f"{prefix}{{retry_budget}}:budget",
        ]
    )
    # a little longer than the longest duration involved, never for ever
    assert 1000 < ttls[f"{prefix}{{rate_limit:5.0:5.0:bucket:{origin}}}:bucket"] <= 1300
    assert 20_000 < ttls[f"{prefix}{{rate_limit:server:{origin}}}:quota"] <= 23_000
    assert 60_000 < ttls[f"{prefix}{{concurrency_limit:4}}:slots"] <= 67_000
    assert 60_000 < ttls[f"{prefix}{{circuit_breaker:{origin}}}:breaker"] <= 67_000
    assert 10_000 < ttls[f"{prefix}{{retry_budget}}:budget"] <= 11_000


async def test_durations_past_what_pexpire_takes_are_not_a_redis_failure(
    make_store: MakeStore,
) -> None:
    # A key's TTL follows burst/rate, window, open_for or a pause: PEXPIRE refuses one
    # of ~3,000 years and more, which failed the whole round trip, so Redis counted as
    # unreachable (with on_error="raise", the next calls raised StateStoreError).
    store = make_store(on_error="raise")
    assert (await store.take_tokens("slow", rate=1e-12, burst=1.0, max_wait=1e300))[0]
    await store.pause_quota("q", seconds=1e15)
    await store.breaker_record(
        "b",
        outcome="failure",
        probe=False,
        failure_ratio=0.5,
        min_calls=4,
        window=1e300,
        open_for=1,
    )
    assert store.reachable
    assert (await store.take_quota("q"))[0] is False


class SlowReplies:
    """A TCP proxy to Redis that passes commands on at once and every reply
    ``delay`` seconds late: a command has run when its caller is cancelled."""

    def __init__(self, port: int, delay: float = 0.02) -> None:
        self.port = port
        self.delay = delay
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.port)
        for source, sink, delay in ((reader, up_writer, 0.0), (up_reader, writer, self.delay)):
            task = asyncio.ensure_future(self.pump(source, sink, delay))
            self.tasks.add(task)

    async def pump(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float
    ) -> None:
        try:
            while data := await source.read(65536):
                await asyncio.sleep(delay)
                sink.write(data)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            sink.close()

    async def close(self) -> None:
        self.server.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks)


@pytest.mark.parametrize("path", ["alone", "batched"])
async def test_a_slot_or_probe_whose_caller_is_cancelled_mid_trip_is_given_back(
    path: str, make_store: MakeStore, redis_server: RedisServer
) -> None:
    # The command ran, but its caller was cancelled (or timed out) before the answer
    # came: what it took was held until its lease ended (60 s), the only slot there is.
    proxy = SlowReplies(int(redis_server.url.rsplit(":", 1)[1].split("/")[0]))
    store = make_store(await proxy.start())
    try:
        breaker = BreakerSettings(failure_ratio=0.5, min_calls=1, window=10.0, open_for=0.01)
        await store.breaker_record("b", outcome="failure", probe=False, **breaker)
        await asyncio.sleep(0.01)  # open_for is over: the next attempt is the probe
        checks: list[Callable[[], Awaitable[object]]] = [
            lambda: store.acquire_slot("s", limit=1),
            lambda: store.breaker_acquire("b", open_for=0.01),
        ]
        if path == "alone":  # nothing else out: each check goes in a trip of its own
            for check in checks:
                task = asyncio.ensure_future(check())
                await asyncio.sleep(0.01)
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        else:  # another trip out: they wait, together, for the batcher's next one
            first = asyncio.ensure_future(store.take_quota("q"))
            await asyncio.sleep(0)
            tasks = [asyncio.ensure_future(check()) for check in checks]
            await asyncio.sleep(0.03)  # the first answer is in, the batched trip is out
            for task in tasks:
                task.cancel()
            await asyncio.gather(first, *tasks, return_exceptions=True)
        # The answers come in, and what they took is given back: within a few round
        # trips (polled, not slept for: a loaded machine is slower), not after the
        # 60 s lease. Neither check takes anything while it fails.
        give_back_by = asyncio.get_running_loop().time() + 2.0
        while (slot := await store.acquire_slot("s", limit=1)) is None:
            assert asyncio.get_running_loop().time() < give_back_by, "the slot was kept"
            await asyncio.sleep(0.01)
        assert slot is not None
        while (state := (await store.breaker_acquire("b", open_for=0.01))[0]) != "probe":
            assert asyncio.get_running_loop().time() < give_back_by, f"the probe was kept: {state}"
            await asyncio.sleep(0.01)
        assert store.reachable
    finally:
        await store.aclose()
        await proxy.close()


async def test_a_server_that_forgot_the_scripts_is_sent_them_again(
    make_store: MakeStore, redis_server: RedisServer
) -> None:
    store = make_store()
    assert (await store.take_tokens("k", rate=1.0, burst=1.0, max_wait=0.0))[0]
    raw = redis.asyncio.Redis.from_url(redis_server.url)
    try:
        await raw.script_flush()
    finally:
        await raw.aclose()
    assert (await store.take_tokens("k", rate=1.0, burst=1.0, max_wait=0.0))[0] is False
    assert store.reachable


async def test_a_client_passed_in_is_used_and_never_closed(
    redis_server: RedisServer, prefix: str
) -> None:
    raw = redis.asyncio.Redis.from_url(redis_server.url, decode_responses=True)
    try:
        store = RedisStateStore(raw, prefix=prefix)
        assert await store.acquire_slot("c", limit=1) == 1
        await store.aclose()
        assert await raw.exists(f"{prefix}{{c}}:slots") == 1  # still usable
    finally:
        await raw.aclose()


def test_bad_arguments_are_refused_at_construction() -> None:
    with pytest.raises(InvalidRequestError, match="redis must be"):
        RedisStateStore("localhost:6379")
    with pytest.raises(InvalidRequestError, match="not the blocking Redis"):
        RedisStateStore(redis.Redis())  # type: ignore[arg-type]  # (it failed every operation)
    with pytest.raises(InvalidRequestError, match="on_error"):
        RedisStateStore("redis://localhost", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="timeout"):
        RedisStateStore("redis://localhost", timeout=0)
    assert "secret" not in repr(RedisStateStore("redis://:secret@localhost:6379/0"))


async def test_a_burst_of_operations_shares_round_trips_within_the_default_timeout(
    redis_server: RedisServer, prefix: str
) -> None:
    # 256 operations at once from one loop go out as a few pipelines: none waits for
    # 255 others, so the default 0.25 s timeout holds and nothing falls back.
    store = RedisStateStore(redis_server.url, prefix=prefix)
    try:
        await store.take_tokens("warm", rate=1.0, burst=1.0, max_wait=0.0)  # connected
        results = await asyncio.gather(
            *(store.take_tokens("b", rate=0.001, burst=100.0, max_wait=0.0) for _ in range(256))
        )
    finally:
        await store.aclose()
    assert store.reachable
    assert sum(granted for granted, _ in results) == 100


def test_import_stackwire_does_not_import_redis() -> None:
    code = (
        "import sys, stackwire\n"
        "assert 'redis' not in sys.modules\n"
        "stackwire.RedisStateStore('redis://localhost:6379/0')\n"  # the extra, when used
        "assert 'redis.asyncio' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_a_breaker_opens_at_a_failure_ratio_met_exactly(make_store: MakeStore) -> None:
    store = make_store()
    settings = BreakerSettings(failure_ratio=0.07, min_calls=100, window=10.0, open_for=30.0)
    for _ in range(93):
        await store.breaker_record("cb", outcome="success", probe=False, **settings)
    states = [
        await store.breaker_record("cb", outcome="failure", probe=False, **settings)
        for _ in range(7)
    ]
    assert states == ["closed"] * 6 + ["open"]  # 7 of 100 is a ratio of 0.07


async def test_a_reset_releases_what_a_window_held_when_no_limit_was_announced(
    make_store: MakeStore,
) -> None:
    store = make_store()
    _, _, ticket = await store.take_quota("q")
    await store.announce_quota(
        "q", limit=None, remaining=4, reset_in=0.2, window=None, ticket=ticket
    )
    assert [(await store.take_quota("q"))[0] for _ in range(5)] == [True] * 4 + [False]
    await asyncio.sleep(0.25)
    granted = [(await store.take_quota("q"))[0] for _ in range(20)]
    assert granted.count(True) == 5
    # The next announcement replaces the estimate: the answer to the first take of
    # the new window says 8 remain, less the 4 taken after it.
    await store.announce_quota(
        "q", limit=None, remaining=8, reset_in=0.2, window=None, ticket=ticket + 5
    )
    assert [(await store.take_quota("q"))[0] for _ in range(5)] == [True, True, True, True, False]


async def test_the_servers_count_is_taken_when_nothing_was_taken_since(
    make_store: MakeStore,
) -> None:
    a, b = make_store(), make_store()
    for _ in range(5):  # the server keeps saying 3 (it did not count these calls)
        granted, _, ticket = await a.take_quota("q")
        assert granted
        await a.announce_quota(
            "q", limit=10, remaining=3, reset_in=60.0, window=None, ticket=ticket
        )
    # another store took since: that answer never raises the count
    _, _, ticket = await a.take_quota("q")
    await b.take_quota("q")
    await a.announce_quota("q", limit=10, remaining=3, reset_in=60.0, window=None, ticket=ticket)
    assert [(await b.take_quota("q"))[0] for _ in range(2)] == [True, False]
