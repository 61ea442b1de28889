"""Retries and timeouts: what is retried, how long it waits, and the limits of a call.

Run with ``python examples/retries.py``: it starts a small API on 127.0.0.1. The
client's ``sleep`` is a recorder, so the backoff is shown, not waited for. The docs
include the parts between the ``--8<--`` markers.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire
from stackwire import APIError, APIStatusError, AsyncClient, Timeout, default_should_retry


def create_app() -> web.Application:
    """``/failing?key=&times=``: 500 ``times`` times per key, then 200 with the retry
    headers it got; ``/dependency``: 424 once, then 200; ``/slow``: never answers."""
    hits: Counter[str] = Counter()

    async def failing(request: web.Request) -> web.Response:
        key = request.query["key"]
        hits[key] += 1
        if hits[key] <= int(request.query.get("times", "2")):
            return web.json_response({"error": "try again"}, status=500)
        return web.json_response(
            {
                "retry_count": request.headers.get("X-Retry-Count"),
                "idempotency_key": request.headers.get("Idempotency-Key", "")[:22],
            }
        )

    async def dependency(request: web.Request) -> web.Response:
        hits["dependency"] += 1
        if hits["dependency"] == 1:
            return web.json_response({"error": "upstream not ready"}, status=424)
        return web.json_response({"ready": True})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.Event().wait()  # cancelled when the client gives up
        raise AssertionError("unreachable")

    app = web.Application()
    app.router.add_route("*", "/v1/failing", failing)
    app.router.add_get("/v1/dependency", dependency)
    app.router.add_get("/v1/slow", slow)
    return app


# --8<-- [start:should_retry]
def should_retry(error: APIError) -> bool:
    """Retry a 424 too; everything else as the default rule says."""
    if isinstance(error, APIStatusError) and error.status_code == 424:
        return True
    return default_should_retry(error)


# --8<-- [end:should_retry]


# --8<-- [start:on_retry]
def on_retry(event: stackwire.RetryEvent) -> None:
    print(f"retry after attempt {event.attempt}: {event.reason}, sleeping {event.delay:.2f} s")


# --8<-- [end:on_retry]


async def main() -> None:
    server = TestServer(create_app(), host="127.0.0.1")
    await server.start_server()
    base_url = str(server.make_url("/v1"))
    try:
        # --8<-- [start:sleeps]
        sleeps: list[float] = []

        async def record(delay: float) -> None:  # instead of asyncio.sleep
            sleeps.append(delay)

        async with AsyncClient(
            base_url, sleep=record, random=lambda: 0.0, max_retries=4, on_retry=on_retry
        ) as client:
            await client.get("/failing", query={"key": "a", "times": 4})
            print(sleeps)  # [0.5, 1.0, 2.0, 4.0]: the backoff, no jitter
            # --8<-- [end:sleeps]

            # --8<-- [start:predicate]
            picky = client.with_options(should_retry=should_retry)
            print(await picky.get("/dependency", cast_to=dict))  # a 424, then {'ready': True}
            # --8<-- [end:predicate]

            # --8<-- [start:per_call]
            try:
                await client.get("/failing", query={"key": "b"}, max_retries=0)
            except stackwire.InternalServerError as error:
                print("no retry:", error.status_code, "retries_taken =", error.retries_taken)

            # the same Idempotency-Key on every attempt of a POST; X-Retry-Count counts
            answer = await client.post("/failing", query={"key": "c"}, cast_to=dict)
            print(answer)  # {'retry_count': '2', 'idempotency_key': 'stackwire-retry-...'}
            # --8<-- [end:per_call]

            # --8<-- [start:timeouts]
            try:  # each attempt may wait at most 0.05 s for data; no retry
                await client.get("/slow", timeout=Timeout(total=30, read=0.05), max_retries=0)
            except stackwire.APITimeoutError as error:
                print("timed out:", type(error).__name__)

            try:  # the whole call, sleeps included, within 0.3 s: the 0.5 s backoff won't fit
                await client.get("/failing", query={"key": "d"}, deadline=0.3)
            except stackwire.APITimeoutError as error:
                print("deadline:", str(error).split(";")[0])
            # --8<-- [end:timeouts]
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
