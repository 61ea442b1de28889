"""A typed call through the full default stack: over `MockTransport` vs over a socket.

What a thousand-test SDK suite pays per call. Both sides make the same call, ``await
client.get("/users/1", cast_to=User)`` (the ~300-byte user of ``payloads.py``, into
the same `stackwire.Model`), one at a time, through the whole default stack (headers,
query, timeout, retry, decode, redirects):

- **socket**: an `AsyncClient` over the default `AiohttpTransport`, against the
  benchmark server (``server.py``) on 127.0.0.1 in its own process, keep-alive;
- **mock**: an `AsyncClient` over ``MockTransport(Router)`` answering the same bytes.

Each side runs in batches of a fixed number of calls, interleaved and repeated; the
report gives the median µs per call with min–max and the ratio of the medians.

Run: ``python benchmarks/bench_mock.py [--calls N] [--rounds R]`` (from the repository
root with stackwire importable, or from ``benchmarks/.venv``).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from payloads import USER_BODY, models_on
from server import running_server

import stackwire
from stackwire.testing import MockTransport, Router

User: Any = models_on(stackwire.Model).User


async def _batch(client: stackwire.AsyncClient, calls: int) -> float:
    """Seconds per call over ``calls`` sequential typed calls."""
    get = client.get
    started = time.perf_counter()
    for _ in range(calls):
        await get("/users/1", cast_to=User)
    return (time.perf_counter() - started) / calls


async def measure(calls: int, rounds: int) -> dict[str, list[float]]:
    router = Router()
    router.get("/users/1").respond(content=USER_BODY, headers={"Content-Type": "application/json"})
    times: dict[str, list[float]] = {"socket": [], "mock": []}
    with running_server() as server:
        socket_client = stackwire.AsyncClient(f"http://127.0.0.1:{server.port}/")
        mock_client = stackwire.AsyncClient("https://api.test/", transport=MockTransport(router))
        try:
            user = await socket_client.get("/users/1", cast_to=User)
            assert user == await mock_client.get("/users/1", cast_to=User)
            for client in (socket_client, mock_client):  # warm up
                await _batch(client, max(calls // 10, 10))
            for _ in range(rounds):
                times["socket"].append(await _batch(socket_client, calls))
                times["mock"].append(await _batch(mock_client, calls))
        finally:
            await socket_client.close()
            await mock_client.close()
    return times


def report(times: dict[str, list[float]]) -> str:
    rows = ["| transport | µs per typed call (median) | min–max |", "|---|---:|---:|"]
    for name, label in (("socket", "AiohttpTransport, loopback"), ("mock", "MockTransport")):
        values = times[name]
        rows.append(
            f"| {label} | {statistics.median(values) * 1e6:.1f} "
            f"| {min(values) * 1e6:.1f}–{max(values) * 1e6:.1f} |"
        )
    ratio = statistics.median(times["socket"]) / statistics.median(times["mock"])
    rows.append("")
    rows.append(f"MockTransport is {ratio:.1f}x faster than a loopback socket (target >= 10x)")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(report(asyncio.run(measure(args.calls, args.rounds))))


if __name__ == "__main__":
    main()
