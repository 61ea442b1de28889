"""The figures of the resilience parts (issue 15), each against a local scripted server.

Run with ``make resilience`` (or ``python benchmarks/resilience.py``); it
needs only stackwire and aiohttp, takes about 20 s, and prints four figures:

1. header-driven throttling: a server announcing R requests per window (OpenAI-style
   headers) and answering 429 beyond it; `RateLimit()` with 8 calls in parallel:
   429s after the first window, and the share of R used in each later window;
2. amplification: an always-503 upstream, ``max_retries=2``: attempts per call
   without a budget, with `RetryBudget()` (defaults) and with ``min_per_second=0``;
3. breaker: after the upstream dies, the time each refused call takes once the breaker
   is open (median and p99 of its CPU time and of its wall time, each call timed
   alone), that no request reached the server, and when it closed again after the
   upstream came back (against ``open_for``) and with how many requests;
4. overhead: the time each part adds to a call on the success path, measured on the
   part alone around a canned response (no network), per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import statistics
import time
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import stackwire
from stackwire import CircuitBreaker, ConcurrencyLimit, Hedge, RateLimit, RetryBudget
from stackwire.pipeline.response import Response


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = cast("asyncio.Server", site._server)
    return runner, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


# -- 1. header-driven throttling --------------------------------------------------------


async def throttling(limit: int, window: float, windows: int, parallel: int) -> dict[str, Any]:
    start = time.monotonic()
    served: dict[int, int] = {}
    refused: dict[int, int] = {}

    async def handle(request: web.Request) -> web.Response:
        now = time.monotonic() - start
        index = math.floor(now / window)
        reset_ms = math.ceil(((index + 1) * window - now) * 1000)
        headers = {
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-reset-requests": f"{max(reset_ms, 1)}ms",
        }
        used = served.get(index, 0)
        if used >= limit:
            refused[index] = refused.get(index, 0) + 1
            headers["x-ratelimit-remaining-requests"] = "0"
            return web.json_response({}, status=429, headers=headers)
        served[index] = used + 1
        headers["x-ratelimit-remaining-requests"] = str(limit - used - 1)
        return web.json_response({}, headers=headers)

    app = web.Application()
    app.router.add_get("/r", handle)
    runner, base = await _serve(app)
    end = start + window * windows
    try:
        async with stackwire.AsyncClient(base, max_retries=0) as plain:
            client = plain.with_middleware(RateLimit())

            async def worker() -> None:
                while time.monotonic() < end:
                    with contextlib.suppress(stackwire.RateLimitError):
                        await client.get("/r")

            await asyncio.gather(*(worker() for _ in range(parallel)))
    finally:
        await runner.cleanup()
    later = range(1, windows)
    return {
        "429s in the first window": refused.get(0, 0),
        "429s after the first window": sum(refused.get(i, 0) for i in later),
        "share of R used per later window": [
            round(served.get(i, 0) / limit, 3) for i in later if i in served
        ],
        "lowest share": min(served.get(i, 0) / limit for i in later),
    }


# -- 2. amplification ---------------------------------------------------------------------


async def amplification(calls: int, parallel: int) -> dict[str, float]:
    attempts = 0

    async def dead(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        return web.json_response({"error": "down"}, status=503)

    app = web.Application()
    app.router.add_get("/r", dead)
    runner, base = await _serve(app)
    results: dict[str, float] = {}
    try:
        for label, budget in (
            ("without a budget", None),
            ("RetryBudget()", RetryBudget()),
            ("RetryBudget(min_per_second=0)", RetryBudget(min_per_second=0.0)),
        ):
            attempts = 0
            async with stackwire.AsyncClient(
                base, max_retries=2, retry_budget=budget, sleep=_no_sleep
            ) as client:
                queue = iter(range(calls))

                async def worker(
                    client: stackwire.AsyncClient = client, queue: Any = queue
                ) -> None:
                    for _ in queue:
                        with contextlib.suppress(stackwire.ServiceUnavailableError):
                            await client.get("/r")

                await asyncio.gather(*(worker() for _ in range(parallel)))
            results[label] = round(attempts / calls, 3)
    finally:
        await runner.cleanup()
    return results


# -- 3. breaker ---------------------------------------------------------------------------


async def breaker(open_for: float, calls: int = 2000) -> dict[str, Any]:
    state = {"status": 200, "hits": 0}

    async def handle(request: web.Request) -> web.Response:
        state["hits"] += 1
        return web.json_response({}, status=state["status"])

    app = web.Application()
    app.router.add_get("/r", handle)
    runner, base = await _serve(app)
    try:
        async with stackwire.AsyncClient(base, max_retries=0) as plain:
            client = plain.with_middleware(
                CircuitBreaker(min_calls=20, window=10.0, open_for=open_for)
            )
            for _ in range(20):
                await client.get("/r")
            state["status"] = 503  # the upstream dies
            failed = 0
            while True:
                try:
                    await client.get("/r")
                except stackwire.CircuitOpenError:
                    break
                except stackwire.ServiceUnavailableError:
                    failed += 1
                    opened = time.monotonic()  # the last failure opened it
            hits = state["hits"]
            # Each refused call timed alone, on the CPU time of this process (what the
            # refusal costs: a loaded machine's time slices given to others stay out)
            # and on the wall clock (what the caller waits, those slices included).
            # Stopped well before open_for, so no probe falls in the sample.
            cpu: list[float] = []
            wall: list[float] = []
            while len(cpu) < calls and time.monotonic() - opened < 0.5 * open_for:
                began, began_cpu = time.perf_counter(), time.process_time()
                with contextlib.suppress(stackwire.CircuitOpenError):
                    await client.get("/r")
                cpu.append(time.process_time() - began_cpu)
                wall.append(time.perf_counter() - began)
            no_io = state["hits"] == hits
            state["status"] = 200  # it is back
            while True:
                try:
                    await client.get("/r")
                    break
                except stackwire.CircuitOpenError:
                    await asyncio.sleep(0.005)
            closed = time.monotonic() - opened
            probes = state["hits"] - hits
    finally:
        await runner.cleanup()

    def ms(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100)[q - 1] * 1000, 4)

    return {
        "failed attempts before it opened": failed,
        "refused calls timed": len(cpu),
        "refused call, CPU per call, median / p99 (ms)": (
            round(statistics.median(cpu) * 1000, 4),
            ms(cpu, 99),
        ),
        "refused call, wall per call, median / p99 / max (ms)": (
            round(statistics.median(wall) * 1000, 4),
            ms(wall, 99),
            round(max(wall) * 1000, 4),
        ),
        "refused calls under 1 ms (CPU; wall)": (
            f"{sum(t < 0.001 for t in cpu)} of {len(cpu)}; "
            f"{sum(t < 0.001 for t in wall)} of {len(wall)}"
        ),
        "requests sent while open": 0 if no_io else "some",
        f"closed again after it opened (s; open_for={open_for:g}, polled every 5 ms)": round(
            closed, 3
        ),
        "requests to recover (the probe)": probes,
    }


# -- 4. overhead ----------------------------------------------------------------------------


async def overhead(rounds: int, repeats: int = 20) -> dict[str, float]:
    request = stackwire.Request(method="GET", url=URL("http://127.0.0.1:1/v1/r"))
    plain = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
    announcing = CIMultiDictProxy(
        CIMultiDict(
            {
                "Content-Type": "application/json",
                "x-ratelimit-limit-requests": "1000000000",
                "x-ratelimit-remaining-requests": "999999999",
                "x-ratelimit-reset-requests": "1m0s",
            }
        )
    )

    def terminal(headers: CIMultiDictProxy[str]) -> Callable[[stackwire.Request], Any]:
        response: Response[Any] = Response(request, 200, headers=headers)

        async def call_next(_: stackwire.Request) -> Response[Any]:
            return response

        return call_next

    async def empty(request: stackwire.Request, call_next: Any) -> Any:
        return await call_next(request)

    post = request.replace(method="POST")

    def as_post(part: Any) -> Any:
        async def hedged(_: stackwire.Request, call_next: Any) -> Any:
            return await part(post, call_next)

        return hedged

    async def timed(part: Any, call_next: Callable[[stackwire.Request], Any]) -> float:
        # CPU time of this process: a loaded machine's time slices given to others
        # do not count (the wall clock would add them to whichever side ran then).
        began = time.process_time()
        if part is None:
            for _ in range(rounds):
                await call_next(request)
        else:
            for _ in range(rounds):
                await part(request, call_next)
        return (time.process_time() - began) / rounds

    async def added(part: Any, call_next: Callable[[stackwire.Request], Any]) -> float:
        # Interleaved and the best of many, so a busy machine skews both sides alike.
        base = cost = math.inf
        for _ in range(repeats):
            base = min(base, await timed(None, call_next))
            cost = min(cost, await timed(part, call_next))
        return cost - base

    results: dict[str, float] = {}
    for label, part, headers in (
        ("reference: an empty middleware layer", empty, plain),
        ("RateLimit() (no rate-limit headers)", RateLimit(), plain),
        ("RateLimit() (OpenAI headers on every response)", RateLimit(), announcing),
        ("RateLimit(1e9) (a bucket, no headers)", RateLimit(1e9, from_headers=False), plain),
        ("ConcurrencyLimit(1000)", ConcurrencyLimit(1000), plain),
        ("CircuitBreaker()", CircuitBreaker(), plain),
        ("Hedge(1.0) (a POST: passes through)", as_post(Hedge(1.0)), plain),
    ):
        results[label] = round(await added(part, terminal(headers)) * 1e6, 3)
    budget = RetryBudget()
    best = math.inf
    for _ in range(repeats):
        began = time.process_time()
        for _ in range(rounds):
            await budget.deposit(request)
        best = min(best, (time.process_time() - began) / rounds)
    results["RetryBudget() (one deposit a call)"] = round(best * 1e6, 3)
    return results


async def main(quick: bool) -> None:
    scale = 0.2 if quick else 1.0
    print("1. header-driven throttling (R=50 per 1 s window, 8 calls in parallel)")
    figures = await throttling(limit=50, window=1.0, windows=3 if quick else 6, parallel=8)
    for name, value in figures.items():
        print(f"   {name}: {value}")
    print("2. amplification (always-503 upstream, max_retries=2): attempts per call")
    for name, value in (await amplification(int(20000 * scale), parallel=16)).items():
        print(f"   {name}: {value}")
    print("3. breaker (min_calls=20, failure_ratio=0.5, open_for=2)")
    for name, value in (await breaker(open_for=2.0)).items():
        print(f"   {name}: {value}")
    print(
        "4. overhead on the success path, per call (µs of CPU added, best of 20 interleaved runs)"
    )
    for name, value in (await overhead(int(5000 * scale))).items():
        print(f"   {name}: {value}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    asyncio.run(main(parser.parse_args().quick))
