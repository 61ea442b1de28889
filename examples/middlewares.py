"""Writing middlewares: a function, a class with state, a request rewriter, and where
each goes in the stack.

Run with ``python examples/middlewares.py``: it starts the demo API on a free port on
127.0.0.1. The docs include the parts between the ``--8<--`` markers.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire


# --8<-- [start:function]
async def log(request: stackwire.Request, call_next: stackwire.CallNext) -> stackwire.Response[Any]:
    response = await call_next(request)
    print("log:", request.method, request.url.path, response.status_code)
    return response


# --8<-- [end:function]


# --8<-- [start:class]
class Timing:
    """Records how long each attempt took; ``name`` is its name in the pipeline."""

    name = "timing"

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(
        self, request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        started = time.perf_counter()
        try:
            return await call_next(request)
        finally:  # an error (or a cancellation) goes on; the time is still recorded
            self.seconds.append(time.perf_counter() - started)


# --8<-- [end:class]


# --8<-- [start:rewriter]
class Tenant(stackwire.RequestRewriter):
    """Adds a header to every request; a rewriter has no coroutine layer of its own."""

    name = "tenant"

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant

    def rewrite(self, request: stackwire.Request) -> stackwire.Request:
        return request.with_headers({"X-Tenant": self.tenant})


# --8<-- [end:rewriter]


# --8<-- [start:extension]
TRACE_ID: stackwire.ExtensionKey[str] = stackwire.ExtensionKey("trace_id")


async def tag(request: stackwire.Request, call_next: stackwire.CallNext) -> stackwire.Response[Any]:
    """Above ``retry``: one trace id per call, handed to the stages below it."""
    return await call_next(request.with_extension(TRACE_ID, "trace-1"))


async def show_trace(
    request: stackwire.Request, call_next: stackwire.CallNext
) -> stackwire.Response[Any]:
    """Below ``retry``: sees the id on every attempt."""
    print("attempt", request.attempt, "of", request.extension(TRACE_ID))
    return await call_next(request)


# --8<-- [end:extension]


async def main() -> None:
    runner, base_url = await start()
    try:
        # --8<-- [start:placing]
        timing = Timing()
        async with stackwire.AsyncClient(
            base_url,
            middlewares=[log, timing],
            initial_delay=0.01,  # short backoff, for a demo
        ) as client:
            # middlewares= run once per attempt, between decode and redirects
            await client.post("/users", json={"name": "Ada"})

            # with_middleware() derives a client (same session) with one more stage:
            # by default just above redirects; before=/after= name another stage
            tenant = client.with_middleware(Tenant("acme"), before="retry")
            traced = tenant.with_middleware(tag, before="retry").with_middleware(show_trace)
            print(traced.pipeline)
            await traced.get("/unstable", query={"key": "docs"}, max_retries=2)
            print("attempts timed:", len(timing.seconds))
        # --8<-- [end:placing]
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
