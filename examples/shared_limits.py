"""Limits shared by every worker: one rate limit, one breaker, one retry budget in Redis.

Run with ``REDIS_URL=redis://localhost:6379/0 python examples/shared_limits.py`` (any
Redis 6.2 or later; ``docs/shared-limits.md`` says how to run one). It starts the demo
API on 127.0.0.1 and plays two workers: two clients, each with a `RedisStateStore` of
its own, as two processes or hosts would have, pointing at the same Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire
from stackwire import CircuitBreaker, RateLimit, RedisStateStore, RetryBudget

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")


# --8<-- [start:worker]
def with_shared_limits(
    client: stackwire.AsyncClient, store: RedisStateStore
) -> stackwire.AsyncClient:
    """What every worker runs: the same parts with the same settings, over a store on
    the same Redis with the same prefix. The limits are then for all workers together."""
    return (
        # Failures seen by any worker open it for all of them.
        client.with_middleware(CircuitBreaker(min_calls=5, open_for=30.0, store=store))
        # 20 requests a second across every worker (the API's quota for one key).
        .with_middleware(RateLimit(20, burst=1, store=store))
    )


def make_client(base_url: str, store: RedisStateStore) -> stackwire.AsyncClient:
    # Retries across all workers' calls stay within 20% of the calls (plus 10 a second).
    return stackwire.AsyncClient(
        base_url,
        retry_budget=RetryBudget(store=store),
        initial_delay=0.01,  # short backoff, for the demo
        max_delay=0.05,
    )


# --8<-- [end:worker]


async def main() -> int:
    runner, base_url = await start()
    # A prefix of its own for this run: state left by an earlier run (an open breaker)
    # does not leak into it. In production: one prefix per application and API key.
    prefix = f"example-{os.getpid()}:"
    # --8<-- [start:store]
    first = RedisStateStore(REDIS_URL, prefix=prefix)  # in worker 1
    second = RedisStateStore(REDIS_URL, prefix=prefix)  # in worker 2, elsewhere
    # --8<-- [end:store]
    try:
        async with make_client(base_url, first) as one, make_client(base_url, second) as two:
            workers = [with_shared_limits(one, first), with_shared_limits(two, second)]

            # 1. Twenty calls at once, ten from each worker: paced at 20/s for both.
            loop = asyncio.get_running_loop()
            began = loop.time()
            await asyncio.gather(
                *(w.get("/hits", query={"key": "x"}) for w in workers for _ in range(10))
            )
            elapsed = loop.time() - began
            print(f"20 calls from 2 workers took {elapsed:.1f} s: one limit of 20/s for both")

            # 2. Worker 1 meets a dead upstream until its breaker opens ...
            failed = 0
            while True:
                try:
                    await workers[0].get("/down")
                except stackwire.CircuitOpenError:
                    break
                except stackwire.ServiceUnavailableError:
                    failed += 1
            # ... and worker 2 is refused at once, without sending anything.
            try:
                await workers[1].get("/down")
            except stackwire.CircuitOpenError as error:
                print(f"worker 2 refused, not sent (probe in {error.retry_after:.0f} s)")
            hits = await one.get("/hits", query={"key": "down"}, cast_to=dict)
            # (it opened once failures were half the attempts in its window: the 20
            # successes above count too)
            print(f"worker 1: {failed} calls failed, {hits['hits']} requests reached /down")

            # --8<-- [start:failure]
            # Redis unreachable: "local" (the default) goes on with per-process limits
            # and logs one WARNING; "raise" refuses the call, which is not sent.
            nowhere = "redis://127.0.0.1:1/0"
            local = with_shared_limits(one, RedisStateStore(nowhere, timeout=0.1))
            print("local:", (await local.get("/hits", query={"key": "y"})).status_code)
            strict = RedisStateStore(nowhere, on_error="raise", timeout=0.1)
            try:
                await with_shared_limits(one, strict).get("/hits", query={"key": "y"})
            except stackwire.StateStoreError as error:
                print("raise:", type(error).__name__, "(never retried)")
            # --8<-- [end:failure]
    finally:
        await first.aclose()
        await second.aclose()
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    # The "stackwire" logger prints nothing unless the application configures logging:
    # show its warnings (a store that lost Redis) on stderr.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(asyncio.run(main()))
