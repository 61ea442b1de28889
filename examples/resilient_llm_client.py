"""A resilient client for an LLM API: the server's rate limit, a retry budget, a breaker.

Run with ``python examples/resilient_llm_client.py``. It starts the demo API on a free
port on 127.0.0.1: ``/chat`` allows 3 requests per 0.5 s and says so in OpenAI-style
``x-ratelimit-*`` headers; ``/down`` is an upstream that answers 503 to everything.
"""

from __future__ import annotations

import asyncio
import sys

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire
from stackwire import CircuitBreaker, RateLimit, RetryBudget


class Reply(stackwire.Model):
    reply: str
    n: int


def with_resilience(client: stackwire.AsyncClient) -> stackwire.AsyncClient:
    """The recommended parts for an LLM API, on a client made with ``retry_budget=``."""
    return (
        # Fail fast while the provider is down (checked first: no waiting for a rate
        # limit only to be refused), then probe it after open_for.
        client.with_middleware(CircuitBreaker(min_calls=5, open_for=30.0))
        # Wait for the server's announced budget instead of collecting 429s.
        .with_middleware(RateLimit(from_headers=True, max_wait=60.0))
    )


async def main() -> int:
    runner, base_url = await start()
    rate_limited: list[stackwire.RetryEvent] = []
    try:
        async with stackwire.AsyncClient(
            base_url,
            # Retries across all calls stay within 20% of the calls (plus 10 a second):
            # a dead upstream sees about one attempt per call, not three.
            retry_budget=RetryBudget(),
            on_retry=rate_limited.append,
            initial_delay=0.05,  # short backoff, for the demo
            max_delay=0.2,
        ) as plain:
            client = with_resilience(plain)  # same session; closed with `plain`
            print(client.pipeline)

            # 1. The first answer announces the budget; the next 11 calls, sent at once,
            #    are paced into the following windows instead of being refused.
            loop = asyncio.get_running_loop()
            started = loop.time()
            first = await client.get("/chat", query={"key": "demo"}, cast_to=Reply)
            rest = await asyncio.gather(
                *(client.get("/chat", query={"key": "demo"}, cast_to=Reply) for _ in range(11))
            )
            elapsed = loop.time() - started
            print(f"replies: {len([first, *rest])}, 429s: {len(rate_limited)}")
            print(f"paced over {elapsed:.1f} s: 4 windows of 3 requests")

            # 2. A dead upstream: the breaker opens after 5 failed attempts, then every
            #    call fails at once, without a request.
            kinds: list[str] = []
            for _ in range(30):
                try:
                    await client.get("/down")
                except stackwire.APIError as error:
                    kinds.append(type(error).__name__)
            hits = await plain.get("/hits", query={"key": "down"}, cast_to=dict)
            print(f"/down: 30 calls, {hits['hits']} requests reached it")
            print(
                f"failed fast: {kinds.count('CircuitOpenError')}, "
                f"503s: {kinds.count('ServiceUnavailableError')}"
            )
            print("connections in use:", client.pool_stats().in_use)
    finally:
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
