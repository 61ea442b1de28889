"""The stackwire demo: a typed client for the local demo API, call by call.

Run with ``make demo`` (or ``python examples/quickstart.py``). It starts the demo
API on a free port on 127.0.0.1, prints the client's stack, then makes calls and
shows for each: the status, how many attempts it took and how long (and, for a
retried call, its attempt history: ``response.attempts``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire


class User(stackwire.Model):
    id: int
    name: str
    email: str | None = None


class Status(stackwire.Model):
    ok: bool
    attempts: int


class Received(stackwire.Model):
    received: dict[str, object]


class Delta(stackwire.Model):
    index: int
    text: str


class AttemptLog:
    """A per-attempt middleware: it sits below ``retry``, so it sees every attempt."""

    name = "attempt_log"

    def __init__(self) -> None:
        self.statuses: list[int] = []

    async def __call__(
        self, request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        response = await call_next(request)
        self.statuses.append(response.status_code)
        return response


def report(what: str, log: AttemptLog, started: float, outcome: str) -> None:
    attempts = " -> ".join(map(str, log.statuses))
    elapsed = (time.perf_counter() - started) * 1000
    print(f"  {what:<34} attempts: {attempts:<16} {elapsed:7.1f} ms  {outcome}")
    log.statuses.clear()


def describe(attempt: stackwire.Attempt) -> str:
    timings = attempt.timings
    connection = "reused connection" if timings.reused_connection else "new connection"
    first_byte = (timings.first_byte or 0.0) * 1000
    slept = "" if attempt.delay_after is None else f", then slept {attempt.delay_after:.2f} s"
    return (
        f"attempt {attempt.number}: {attempt.status_code} {attempt.error or 'ok'} in "
        f"{attempt.duration * 1000:.1f} ms ({connection}, first byte {first_byte:.1f} ms){slept}"
    )


async def main(sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> int:
    """Run the demo; ``sleep`` is what retries wait with (tests pass a fake one)."""
    runner, base_url = await start()
    log = AttemptLog()
    try:
        async with stackwire.AsyncClient(
            base_url, api_key="sk-demo-0123456789", middlewares=[log], sleep=sleep
        ) as client:
            print(f"stackwire {stackwire.__version__} against the demo API at {base_url}")
            print("The stack, outermost first:")
            for line in str(client.pipeline).splitlines():
                print(f"  {line}")
            print("Calls:")

            started = time.perf_counter()
            ada = await client.post("/users", json={"name": "Ada"}, cast_to=User)
            report("POST /users", log, started, repr(ada))
            for name in ("Grace", "Edsger", "Barbara"):
                await client.post("/users", json={"name": name}, cast_to=User)
            log.statuses.clear()

            started = time.perf_counter()
            raw = await client.with_raw_response.get(
                "/users/{id}", path_params={"id": ada.id}, cast_to=User
            )
            user = await raw.parse()
            report(
                "GET /users/{id} (raw response)",
                log,
                started,
                f"{user.name}, retries_taken={raw.retries_taken}",
            )

            started = time.perf_counter()
            try:
                await client.get("/users/{id}", path_params={"id": 999}, cast_to=User)
            except stackwire.NotFoundError as exc:
                report("GET /users/999", log, started, f"NotFoundError: {exc.body}")

            started = time.perf_counter()
            flaky = await client.get("/flaky", query={"key": "demo"}, cast_to=Status)
            report("GET /flaky (429, retry-after-ms)", log, started, repr(flaky))

            started = time.perf_counter()
            retried = await client.with_raw_response.get(
                "/unstable", query={"key": "demo"}, cast_to=Status
            )
            unstable = await retried.parse()
            report("GET /unstable (500, 500, 200)", log, started, repr(unstable))
            for attempt in retried.attempts:  # the call's attempt history
                print(f"    {describe(attempt)}")

            started = time.perf_counter()
            users = client.paginate("/users", page=stackwire.CursorPage[User], query={"limit": 2})
            names = [user.name async for user in users]
            report("paginate /users (2 a page)", log, started, repr(names))

            started = time.perf_counter()
            upload = await client.post(
                "/files",
                data={"purpose": "demo"},
                files={"file": ("notes.txt", b"hello from stackwire\n", "text/plain")},
                cast_to=Received,
            )
            report("POST /files (multipart)", log, started, repr(upload.received))

            started = time.perf_counter()
            stream = await client.get(
                "/events", query={"n": 3}, cast_to=Delta, stream=True, stream_end_event="done"
            )
            texts = [delta.text async for delta in stream if delta.index >= 0]
            report("GET /events (stream=True)", log, started, repr(texts))

            print(f"Connections: {client.pool_stats()}")
    finally:
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
