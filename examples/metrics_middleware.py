"""A metrics layer in two middlewares: attempts and status classes, counted into a dict.

Run with ``python examples/metrics_middleware.py``: it starts the demo API on
127.0.0.1 and makes a call that succeeds at once (a POST), one retried after a 429 and one
after two 500s, then prints the counts and the attempt history of the last call.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from demo_server import start

import stackwire
from stackwire import CallNext, Request, Response


# --8<-- [start:metrics]
class AttemptMetrics:
    """Below ``retry`` (given with ``middlewares=``): runs once per attempt, and sees
    every attempt's raw response, a 500 as much as a 200, before ``decode``."""

    name = "attempt_metrics"

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        self.counts["attempts"] += 1
        try:
            response = await call_next(request)
        except stackwire.APIError as error:  # no response at all: refused, reset, timeout
            self.counts[type(error).__name__] += 1
            raise
        self.counts[f"{response.status_code // 100}xx"] += 1
        self.counts["reused connections"] += bool(response.timings.reused_connection)
        return response


class CallMetrics:
    """Above ``retry`` (``before="retry"``): runs once per call, and reads the whole
    story from ``attempts`` once it is over, whether the call succeeded or not."""

    name = "call_metrics"

    def __init__(self, counts: Counter[str]) -> None:
        self.counts = counts

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        self.counts["calls"] += 1
        try:
            response = await call_next(request)
        except stackwire.APIError as error:
            self.counts["retries"] += len(error.attempts) - 1
            raise
        self.counts["retries"] += len(response.attempts) - 1
        return response


# --8<-- [end:metrics]


async def main() -> None:
    runner, base_url = await start()
    counts: Counter[str] = Counter()
    # A short backoff, so the demo does not wait for the default 0.5 s, 1 s, ...
    options: dict[str, Any] = {"initial_delay": 0.01, "max_delay": 0.05}
    base = stackwire.AsyncClient(base_url, middlewares=[AttemptMetrics(counts)], **options)
    # The derived client borrows the session of ``base``, which is the one to close.
    client = base.with_middleware(CallMetrics(counts), before="retry")
    try:
        async with base:
            print(client.pipeline)
            await client.post("/users", json={"name": "Ada", "email": "ada@example.com"})
            await client.get("/flaky", query={"key": "metrics"})  # 429 (200 ms), then 200
            response = await client.with_raw_response.get("/unstable", query={"key": "m"})
    finally:
        await runner.cleanup()
    print(dict(sorted(counts.items())))
    for attempt in response.attempts:
        slept = "" if attempt.delay_after is None else f", then slept {attempt.delay_after:.3f} s"
        print(
            f"attempt {attempt.number}: {attempt.status_code} {attempt.error or 'ok'} in "
            f"{attempt.duration * 1000:.1f} ms (reused: {attempt.timings.reused_connection}){slept}"
        )


if __name__ == "__main__":
    asyncio.run(main())
