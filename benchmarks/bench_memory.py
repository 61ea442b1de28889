"""Memory: streaming a large body, buffering a large body, and the resting footprint.

Every case runs in its own fresh process and reads its own RSS from
`/proc/self/status`:
- streaming `GET /big?mb=200` chunk by chunk: peak RSS growth over the RSS just
  before the request (the peak is reset first, with Linux `clear_refs`), which should
  not depend on the body size at all;
- a buffered read of `GET /big?mb=100`: peak growth divided by the body size (1.0 is
  one copy of the body, 2.0 is a second copy made somewhere on the way);
- RSS after importing the library, building one client and warming it up with a few
  requests: what an application pays to have the client at all.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from clients import label, open_client
from harness import (
    Result,
    Spread,
    markdown_table,
    memory_kib,
    reset_peak_rss,
    run_worker,
    status_of,
    verdict,
    worker_main,
)
from payloads import MIB

STREAM_CLIENTS = ("stackwire", "aiohttp")
BUFFER_CLIENTS = ("stackwire", "aiohttp")
IDLE_CLIENTS = ("python", "stackwire", "aiohttp", "httpx", "anthropic")
STREAM_GROWTH_TARGET_MIB = 8.0
BUFFER_RATIO_TARGET = 1.1
IDLE_TARGET_BYTES = 45_000_000
WARMUP_REQUESTS = 20


async def _body_case(params: dict[str, Any]) -> Result:
    client = open_client(params["client"], params["base_url"])
    mebibytes: int = params["mb"]
    try:
        await client.get_user()
        if params["mode"] == "stream":
            await client.stream_body("/big?mb=1")
        else:
            await client.read_body("/big?mb=1")
        gc.collect()
        before = memory_kib()["VmRSS"]
        peak_reset = reset_peak_rss()
        if params["mode"] == "stream":
            size = await client.stream_body(f"/big?mb={mebibytes}")
        else:
            size = len(await client.read_body(f"/big?mb={mebibytes}"))
        peak = memory_kib()["VmHWM"]
    finally:
        await client.aclose()
    if size != mebibytes * MIB:
        raise AssertionError(f"expected {mebibytes * MIB} bytes, got {size}")
    growth_mib = (peak - before) / 1024
    return {
        "growth_mib": growth_mib,
        "ratio": growth_mib / mebibytes,
        "before_mib": before / 1024,
        "peak_reset": peak_reset,
    }


async def _idle_case(params: dict[str, Any]) -> Result:
    if params["client"] != "python":
        client = open_client(params["client"], params["base_url"])
        try:
            for _ in range(WARMUP_REQUESTS):
                await client.get_user()
            gc.collect()
            memory = memory_kib()
        finally:
            await client.aclose()
    else:
        await asyncio.sleep(0)
        gc.collect()
        memory = memory_kib()
    return {"rss_mib": memory["VmRSS"] / 1024, "peak_mib": memory["VmHWM"] / 1024}


def _body_worker(params: dict[str, Any]) -> Result:
    return asyncio.run(_body_case(params))


def _idle_worker(params: dict[str, Any]) -> Result:
    return asyncio.run(_idle_case(params))


def _collect(
    case: str, clients: tuple[str, ...], repetitions: int, extra: dict[str, Any]
) -> dict[str, list[Result]]:
    samples: dict[str, list[Result]] = {}
    for _ in range(repetitions):
        for name in clients:
            if any("unavailable" in r for r in samples.get(name, [])):
                continue
            result = run_worker("bench_memory.py", {"case": case, "client": name, **extra})
            samples.setdefault(name, []).append(result)
            print(f"  memory {case} {extra.get('mode', '')} {name}: {status_of(result) or 'ok'}")
    return samples


def _spread(results: list[Result], key: str) -> Spread:
    return Spread(r[key] for r in results if status_of(r) is None)


def _first_problem(results: list[Result]) -> str:
    return next((p for r in results if (p := status_of(r))), "not run")


def run(
    base_url: str, *, repetitions: int, stream_mb: int, buffer_mb: int
) -> tuple[str, list[list[str]]]:
    common = {"base_url": base_url}
    streamed = _collect(
        "body", STREAM_CLIENTS, repetitions, {**common, "mode": "stream", "mb": stream_mb}
    )
    buffered = _collect(
        "body", BUFFER_CLIENTS, repetitions, {**common, "mode": "buffer", "mb": buffer_mb}
    )
    idle = _collect("idle", IDLE_CLIENTS, repetitions, common)

    def name_of(client: str) -> str:
        return "Python + asyncio, no client" if client == "python" else label(client)

    stream_rows, buffer_rows, idle_rows = [], [], []
    for client in STREAM_CLIENTS:
        growth = _spread(streamed.get(client, []), "growth_mib")
        shown = growth.format(1) if growth.values else _first_problem(streamed.get(client, []))
        stream_rows.append([name_of(client), shown])
    for client in BUFFER_CLIENTS:
        results = buffered.get(client, [])
        growth, ratio = _spread(results, "growth_mib"), _spread(results, "ratio")
        if growth.values:
            buffer_rows.append([name_of(client), growth.format(1), ratio.format(2) + "x"])
        else:
            buffer_rows.append([name_of(client), _first_problem(results), ""])
    for client in IDLE_CLIENTS:
        results = idle.get(client, [])
        rss, peak = _spread(results, "rss_mib"), _spread(results, "peak_mib")
        if rss.values:
            idle_rows.append([name_of(client), rss.format(1), peak.format(1)])
        else:
            idle_rows.append([name_of(client), _first_problem(results), ""])

    stackwire_stream = _spread(streamed.get("stackwire", []), "growth_mib")
    stackwire_buffer = _spread(buffered.get("stackwire", []), "ratio")
    stackwire_idle = _spread(idle.get("stackwire", []), "rss_mib")
    idle_target_mib = IDLE_TARGET_BYTES / MIB
    targets = [
        [
            f"stackwire peak RSS growth streaming {stream_mb} MiB",
            f"< {STREAM_GROWTH_TARGET_MIB:g} MiB",
            _shown(stackwire_stream, streamed, " MiB", 1),
            verdict(stackwire_stream.median, STREAM_GROWTH_TARGET_MIB, at_most=True),
        ],
        [
            f"stackwire peak RSS growth / body size, buffered {buffer_mb} MiB read",
            f"<= {BUFFER_RATIO_TARGET:g}x",
            _shown(stackwire_buffer, buffered, "x", 2),
            verdict(stackwire_buffer.median, BUFFER_RATIO_TARGET, at_most=True),
        ],
        [
            "stackwire RSS after import + one client + warm-up",
            f"<= 45 MB ({idle_target_mib:.1f} MiB)",
            _shown(stackwire_idle, idle, " MiB", 1),
            verdict(stackwire_idle.median, idle_target_mib, at_most=True),
        ],
    ]
    resets = [r.get("peak_reset") for rs in (*streamed.values(), *buffered.values()) for r in rs]
    reset_note = (
        ""
        if all(x is not False for x in resets)
        else "\n**Note:** the peak could not be reset here, so growth includes start-up.\n"
    )
    section = (
        "## Memory\n\n"
        f"Each case in a fresh process, {repetitions} repetitions, median (min–max). "
        "Growth is `VmHWM` (peak reset with `clear_refs` just before the request) minus "
        "`VmRSS` just before it, after one warm-up request of the same kind. stackwire "
        "streams with `with_streaming_response.get(...)` and the Response's `iter_bytes()` "
        "(`iter_raw()` where it has no `iter_bytes`), and buffers with "
        "`get(..., max_response_bytes=None)` then `read()`; aiohttp with "
        "`content.iter_chunked(64 KiB)` and `read()`.\n\n"
        f"### Streaming `GET /big?mb={stream_mb}` chunk by chunk\n\n"
        + markdown_table(["client", "peak RSS growth MiB"], stream_rows)
        + f"\n\n### Buffered read of `GET /big?mb={buffer_mb}`\n\n"
        + markdown_table(["client", "peak RSS growth MiB", "growth / body size"], buffer_rows)
        + f"\n\n### RSS after import + one client + {WARMUP_REQUESTS} requests\n\n"
        + markdown_table(["client", "RSS MiB", "peak RSS MiB"], idle_rows)
        + "\n"
        + reset_note
        + "\n"
        + markdown_table(["target", "target value", "measured", "verdict"], targets)
        + "\n"
    )
    return section, targets


def _shown(spread: Spread, samples: dict[str, list[Result]], unit: str, digits: int) -> str:
    if spread.values:
        return spread.format(digits) + unit
    return _first_problem(samples.get("stackwire", []))


if __name__ == "__main__":
    worker_main({"body": _body_worker, "idle": _idle_worker})
