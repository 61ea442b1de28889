"""Typed Server-Sent Events end to end: events/s over a real socket.

Each client requests `GET /sse?n=N` and decodes every event's JSON `data` into its
`Event` model (stackwire: `stream=True` with a `stackwire.Model`; the anthropic SDK:
`stream=True, stream_cls=AsyncStream[Event]`; httpx: httpx-sse + pydantic; aiohttp:
a naive hand-written split + msgspec as a floor). One stream at a time, repeated for a
fixed time, in a fresh process per sample, interleaved across clients.

A second section, `run_union`, streams `GET /sse-union?n=N`: events whose data is a
tagged union of three msgspec types (`Delta | Usage | Done`, tagged by `type`), for
stackwire's typed `AsyncStream` (`cast_to=Delta | Usage | Done`) against the
hand-written aiohttp loop (a fast blank-line split of the bytes and a prebuilt
`msgspec.json.Decoder` of the union), both pinned to the client core.

The parse-only comparison of SSE decoders (no socket, no JSON) is `bench_sse.py`.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from clients import label, open_client, selected
from harness import (
    Result,
    Spread,
    markdown_table,
    paired_ratios,
    peak_rss_mib,
    run_worker,
    status_of,
    verdict,
    worker_main,
)

TARGET = 10.0  # stackwire events/s over the anthropic SDK's AsyncStream (default transport)
UNION_TARGET = 0.95  # stackwire over the hand-written aiohttp loop, tagged-union events
UNION_CLIENTS = ("stackwire", "aiohttp")


async def _measure(params: dict[str, Any]) -> Result:
    client = open_client(params["client"], params["base_url"])
    events: int = params["events"]
    union = params.get("kind") == "union"
    count = client.count_union_events if union else client.count_events
    route = "/sse-union" if union else "/sse"
    path = f"{route}?n={events}"
    try:
        warm = await count(f"{route}?n=100")
        if warm != 100:
            raise AssertionError(f"expected 100 events, got {warm}")
        await count(path)
        gc.collect()
        total = streams = 0
        cpu_before, started = time.process_time(), time.perf_counter()
        deadline = started + params["seconds"]
        while streams == 0 or time.perf_counter() < deadline:
            total += await count(path)
            streams += 1
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_before
    finally:
        await client.aclose()
    if total != events * streams:
        raise AssertionError(f"expected {events * streams} events, got {total}")
    return {
        "events_per_s": total / elapsed,
        "cpu_us_per_event": cpu / total * 1e6,
        "streams": streams,
        "peak_rss_mib": peak_rss_mib(),
    }


def _worker(params: dict[str, Any]) -> Result:
    return asyncio.run(_measure(params))


def run(
    base_url: str, *, repetitions: int, seconds: float, events: int
) -> tuple[str, list[list[str]]]:
    samples: dict[str, list[Result]] = {}
    unavailable: set[str] = set()
    for repetition in range(repetitions):
        for name in selected():
            if name in unavailable:
                continue
            params = {
                "case": "stream",
                "client": name,
                "base_url": base_url,
                "events": events,
                "seconds": seconds,
            }
            result = run_worker("bench_stream.py", params)
            samples.setdefault(name, []).append(result)
            if "unavailable" in result:
                unavailable.add(name)
            shown = status_of(result) or f"{result['events_per_s']:,.0f} events/s"
            print(f"  [{repetition + 1}/{repetitions}] sse {name}: {shown}")

    rows = []
    for name in selected():
        results = samples.get(name, [])
        good = [r for r in results if status_of(r) is None]
        if not good:
            rows.append([label(name), status_of(results[0]) if results else "not run", "", ""])
            continue
        rows.append(
            [
                label(name),
                Spread(r["events_per_s"] for r in good).format(),
                Spread(r["cpu_us_per_event"] for r in good).format(2),
                Spread(r["peak_rss_mib"] for r in good).format(1),
            ]
        )

    def metric(name: str, key: str) -> list[float]:
        return [r[key] if status_of(r) is None else float("nan") for r in samples.get(name, [])]

    ratio = paired_ratios(metric("stackwire", "events_per_s"), metric("anthropic", "events_per_s"))
    cpu = paired_ratios(
        metric("anthropic", "cpu_us_per_event"), metric("stackwire", "cpu_us_per_event")
    )
    mine = samples.get("stackwire", [])
    measured = (
        ratio.format(2) + "x"
        if ratio.values
        else ((status_of(mine[0]) if mine else None) or "not measured")
    )
    target = [
        f"stackwire / {label('anthropic')} typed SSE events/s",
        f">= {TARGET:g}x",
        measured,
        verdict(ratio.median, TARGET),
    ]
    section = (
        "## Streaming: typed SSE events end to end\n\n"
        f"`GET /sse?n={events}` (~150-byte JSON per event, chunked), each event decoded "
        f"into a typed `Event`; streams repeated for {seconds:g} s per sample, "
        f"{repetitions} interleaved repetitions, fresh process each; median (min–max). "
        "The aiohttp row is a naive blank-line split, not a conforming SSE parser: "
        "a floor, not a competitor.\n\n"
        + markdown_table(
            ["client", "events/s", "client CPU µs/event", "peak RSS MiB"],
            rows,
        )
        + "\n\n"
        + markdown_table(["ratio", "target", "measured", "verdict"], [target])
        + "\n\nBy client CPU time per event instead (informational; robust to a busy "
        f"machine): {label('anthropic')} / stackwire = "
        + (cpu.format(2) + "x" if cpu.values else measured)
        + ".\n"
    )
    return section, [target]


def run_union(
    base_url: str, *, repetitions: int, seconds: float, events: int
) -> tuple[str, list[list[str]]]:
    """Typed SSE of a tagged union: stackwire against the hand-written aiohttp loop."""
    samples: dict[str, list[Result]] = {}
    names = [name for name in selected() if name in UNION_CLIENTS]
    for repetition in range(repetitions):
        for name in names:
            params = {
                "case": "stream",
                "kind": "union",
                "client": name,
                "base_url": base_url,
                "events": events,
                "seconds": seconds,
            }
            result = run_worker("bench_stream.py", params)
            samples.setdefault(name, []).append(result)
            shown = status_of(result) or (
                f"{result['events_per_s']:,.0f} events/s, "
                f"{result['cpu_us_per_event']:.2f} µs CPU/event"
            )
            print(f"  [{repetition + 1}/{repetitions}] sse-union {name}: {shown}")
    rows = []
    for name in names:
        results = samples.get(name, [])
        good = [r for r in results if status_of(r) is None]
        if not good:
            rows.append([label(name), status_of(results[0]) if results else "not run", "", ""])
            continue
        rows.append(
            [
                label(name),
                Spread(r["events_per_s"] for r in good).format(),
                Spread(r["cpu_us_per_event"] for r in good).format(2),
                Spread(r["peak_rss_mib"] for r in good).format(1),
            ]
        )

    def metric(name: str, key: str) -> list[float]:
        return [r[key] if status_of(r) is None else float("nan") for r in samples.get(name, [])]

    cpu = paired_ratios(
        metric("aiohttp", "cpu_us_per_event"), metric("stackwire", "cpu_us_per_event")
    )
    rate = paired_ratios(metric("stackwire", "events_per_s"), metric("aiohttp", "events_per_s"))
    targets = [
        [
            f"stackwire / {label('aiohttp')} typed tagged-union SSE, CPU time per event",
            f">= {UNION_TARGET:g}x",
            cpu.format(2) + "x" if cpu.values else "not measured",
            verdict(cpu.median, UNION_TARGET),
        ],
        [
            f"stackwire / {label('aiohttp')} typed tagged-union SSE, events/s",
            f">= {UNION_TARGET:g}x",
            rate.format(2) + "x" if rate.values else "not measured",
            verdict(rate.median, UNION_TARGET),
        ],
    ]
    section = (
        "## Streaming: typed SSE of a tagged union\n\n"
        f"`GET /sse-union?n={events}`: `event: delta|usage|done` blocks whose data is a "
        "tagged union of three msgspec types (`Delta | Usage | Done`, tag field `type`; "
        "~125-byte deltas, a usage event every tenth, `done` last), 16 events per chunk. "
        "stackwire: `client.get(path, cast_to=Delta | Usage | Done, stream=True)`; "
        "aiohttp: a fast blank-line split of the bytes (not a conforming parser) and a "
        "prebuilt `msgspec.json.Decoder` of the union. Client pinned to one core, server "
        f"to the other; {seconds:g} s per sample, {repetitions} interleaved repetitions, "
        "fresh process each; median (min–max). The ratio of CPU time per event "
        "(baseline's / stackwire's) is the target: it does not move with other work on "
        "the machine.\n\n"
        + markdown_table(["client", "events/s", "client CPU µs/event", "peak RSS MiB"], rows)
        + "\n\n"
        + markdown_table(["ratio", "target", "measured", "verdict"], targets)
        + "\n"
    )
    return section, targets


if __name__ == "__main__":
    worker_main({"stream": _worker})
