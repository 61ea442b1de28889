"""How fast the local server answers, so the client numbers can be trusted.

A raw `asyncio.Protocol` client (no HTTP library) opens keep-alive connections to
`GET /users/1` and keeps a fixed number of requests in flight on each, counting
complete responses by their (known, fixed) length. With one request in flight per
connection it is the same traffic shape the client benchmarks send; with pipelining
it shows the server's ceiling. The server's capacity must sit well above the fastest
client's requests/s, or the client rows would be measuring the server.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness import (
    Result,
    markdown_table,
    process_cpu_seconds,
    run_worker,
    status_of,
    worker_main,
)

REQUEST = b"GET /users/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: hammer\r\n\r\n"

SHAPES = [
    {"connections": 1, "depth": 1},
    {"connections": 64, "depth": 1},
    {"connections": 64, "depth": 16},
]


class Hammer(asyncio.Protocol):
    """One connection that keeps `depth` requests in flight until told to stop."""

    def __init__(self, depth: int, response_length: int, counts: list[int]) -> None:
        self._depth = depth
        self._response_length = response_length
        self._counts = counts
        self._pending_bytes = 0
        self._transport: asyncio.Transport | None = None
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(REQUEST * self._depth)

    def data_received(self, data: bytes) -> None:
        self._pending_bytes += len(data)
        done, self._pending_bytes = divmod(self._pending_bytes, self._response_length)
        self._counts[0] += done
        if done and not self.stopping and self._transport is not None:
            self._transport.write(REQUEST * done)


async def _hammer(
    port: int, server_pid: int, connections: int, depth: int, seconds: float
) -> Result:
    from server import Routes

    answer = Routes().answer(b"/users/1")
    assert isinstance(answer, bytes)
    loop = asyncio.get_running_loop()
    counts = [0]
    protocols: list[Hammer] = []
    transports: list[asyncio.BaseTransport] = []
    for _ in range(connections):
        transport, protocol = await loop.create_connection(
            lambda: Hammer(depth, len(answer), counts), "127.0.0.1", port
        )
        protocols.append(protocol)
        transports.append(transport)
    await asyncio.sleep(min(0.3, seconds / 4))
    start_count, start = counts[0], time.perf_counter()
    server_start = process_cpu_seconds(server_pid)
    await asyncio.sleep(seconds)
    served, elapsed = counts[0] - start_count, time.perf_counter() - start
    server_cpu = process_cpu_seconds(server_pid) - server_start
    for protocol in protocols:
        protocol.stopping = True
    for open_transport in transports:
        open_transport.close()
    return {"requests_per_s": served / elapsed, "server_cpu_share": server_cpu / elapsed}


def _worker_capacity(params: dict[str, Any]) -> Result:
    return asyncio.run(
        _hammer(
            params["port"],
            params["server_pid"],
            params["connections"],
            params["depth"],
            params["seconds"],
        )
    )


def run(port: int, server_pid: int, *, seconds: float) -> tuple[str, float]:
    """Measure each traffic shape in a fresh process.

    Returns the Markdown section and the keep-alive (depth 1, 64 connections) rate.
    """
    rows = []
    keep_alive_rate = 0.0
    for shape in SHAPES:
        params = {"case": "capacity", "port": port, "server_pid": server_pid, "seconds": seconds}
        result = run_worker("bench_server.py", {**params, **shape})
        status = status_of(result)
        rate = status or f"{result['requests_per_s']:,.0f}"
        share = status or f"{result['server_cpu_share']:.0%}"
        if status is None and shape == {"connections": 64, "depth": 1}:
            keep_alive_rate = result["requests_per_s"]
        rows.append([shape["connections"], shape["depth"], rate, share])
        print(f"  server capacity {shape}: {rate} req/s", flush=True)
    table = markdown_table(
        ["connections", "requests in flight per connection", "requests/s", "server CPU"], rows
    )
    return (
        "## Local server capacity\n\n"
        "A raw asyncio-protocol client (no HTTP library, responses counted by length) "
        "against `GET /users/1` on the same machine; the server process runs on its own, "
        "so both share the 2 cores. Server CPU is the server process's CPU time over "
        "the measured window (100% = one core busy).\n\n" + table + "\n",
        keep_alive_rate,
    )


if __name__ == "__main__":
    worker_main({"capacity": _worker_capacity})
