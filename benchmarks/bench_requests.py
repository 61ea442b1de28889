"""Typed GET requests: requests/s, client CPU per request, latency, peak RSS.

Each client calls `GET /users/1` and decodes the ~300-byte body into its `User`
model, from `concurrency` tasks that each loop one request at a time for a fixed
time. Every (client, concurrency) sample runs in a fresh process; the samples are
interleaved (A B C D E, A B C D E, ...) so that drift on the machine (thermal, noisy
neighbours) hits every client alike, and the tables give medians with min–max.
Ratios are taken per repetition (stackwire_i / baseline_i, the two runs a few seconds
apart) and summarised the same way.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from clients import label, open_client, run_concurrently, selected
from harness import (
    Result,
    Spread,
    markdown_table,
    paired_ratios,
    peak_rss_mib,
    process_cpu_seconds,
    run_worker,
    status_of,
    verdict,
    worker_main,
)

CONCURRENCY = (1, 64)
TARGETS = {
    # (concurrency, baseline): minimum ratio of stackwire's requests/s
    (64, "aiohttp"): 1.0,
    (1, "aiohttp"): 1.0,
    (64, "anthropic"): 10.0,
    (1, "anthropic"): 4.0,
}


async def _measure(params: dict[str, Any]) -> Result:
    client = open_client(params["client"], params["base_url"])
    try:
        first = await client.get_user()
        if first.id != 1:
            raise AssertionError(f"decoded the wrong user: {first!r}")
        concurrency: int = params["concurrency"]
        await run_concurrently(client.get_user, concurrency, params["warmup"])
        gc.collect()

        latencies: list[int] = []
        deadline = time.perf_counter() + params["seconds"]

        async def loop() -> None:
            get_user, clock, record = client.get_user, time.perf_counter_ns, latencies.append
            while time.perf_counter() < deadline:
                started = clock()
                await get_user()
                record(clock() - started)

        server_before = process_cpu_seconds(params["server_pid"])
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(concurrency)))
        cpu = time.process_time() - cpu_before
        elapsed = time.perf_counter() - wall_before
        server_cpu = process_cpu_seconds(params["server_pid"]) - server_before
    finally:
        await client.aclose()
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "requests_per_s": count / elapsed,
        "cpu_us_per_request": cpu / count * 1e6,
        "p50_ms": latencies[count // 2] / 1e6,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] / 1e6,
        "peak_rss_mib": peak_rss_mib(),
        "server_cpu_share": server_cpu / elapsed,
    }


def _worker(params: dict[str, Any]) -> Result:
    return asyncio.run(_measure(params))


def run(
    base_url: str,
    server_pid: int,
    *,
    repetitions: int,
    seconds: float,
    warmup: int,
    concurrencies: tuple[int, ...] = CONCURRENCY,
) -> tuple[str, list[list[str]]]:
    """Run every sample; return the Markdown section and the target rows."""
    samples: dict[tuple[str, int], list[Result]] = {}
    unavailable: set[str] = set()
    for repetition in range(repetitions):
        for concurrency in concurrencies:
            for name in selected():
                if name in unavailable:
                    continue
                params = {
                    "case": "requests",
                    "client": name,
                    "base_url": base_url,
                    "server_pid": server_pid,
                    "concurrency": concurrency,
                    "seconds": seconds,
                    "warmup": max(warmup, concurrency * 4),
                }
                result = run_worker("bench_requests.py", params)
                samples.setdefault((name, concurrency), []).append(result)
                status = status_of(result)
                if "unavailable" in result:
                    unavailable.add(name)
                shown = status or f"{result['requests_per_s']:,.0f} req/s"
                print(f"  [{repetition + 1}/{repetitions}] c={concurrency} {name}: {shown}")
    return _report(samples, repetitions, seconds, concurrencies)


def _ok(results: list[Result]) -> list[Result]:
    return [r for r in results if status_of(r) is None]


def _report(
    samples: dict[tuple[str, int], list[Result]],
    repetitions: int,
    seconds: float,
    concurrencies: tuple[int, ...],
) -> tuple[str, list[list[str]]]:
    parts = [
        "## Requests: typed `GET /users/1`\n",
        f"{repetitions} interleaved repetitions of {seconds:g} s per client and concurrency, "
        "each in a fresh process; median (min–max). CPU is the client process's "
        "`time.process_time()` per request; server CPU is the server process's share "
        "of one core over the same window.\n",
    ]
    for concurrency in concurrencies:
        rows = []
        for name in selected():
            results = samples.get((name, concurrency), [])
            good = _ok(results)
            if not good:
                problem = status_of(results[0]) if results else "not run"
                rows.append([label(name), problem, "", "", "", "", ""])
                continue

            def spread(key: str, good: list[Result] = good) -> Spread:
                return Spread(r[key] for r in good)

            rows.append(
                [
                    label(name),
                    spread("requests_per_s").format(),
                    spread("cpu_us_per_request").format(1),
                    spread("p50_ms").format(3),
                    spread("p99_ms").format(3),
                    spread("peak_rss_mib").format(1),
                    f"{spread('server_cpu_share').median:.0%}",
                ]
            )
        header = [
            "client",
            "requests/s",
            "client CPU µs/request",
            "p50 ms",
            "p99 ms",
            "peak RSS MiB",
            "server CPU",
        ]
        parts.append(f"### Concurrency {concurrency}\n\n" + markdown_table(header, rows) + "\n")

    targets: list[list[str]] = []
    ratio_rows, cpu_rows = [], []
    for (concurrency, baseline), minimum in TARGETS.items():
        mine = samples.get(("stackwire", concurrency), [])
        theirs = samples.get((baseline, concurrency), [])
        ratio = paired_ratios(_metric(mine, "requests_per_s"), _metric(theirs, "requests_per_s"))
        what = f"stackwire / {label(baseline)} requests/s, concurrency {concurrency}"
        shown = ratio.format(2) + "x" if ratio.values else _missing(samples, concurrency)
        ratio_rows.append([what, f">= {minimum:g}x", shown, verdict(ratio.median, minimum)])
        targets.append(ratio_rows[-1])
        # CPU per request is far less sensitive to other work on the machine than
        # requests/s: the same ratio from CPU time is the cross-check on a busy box.
        cpu = paired_ratios(
            _metric(theirs, "cpu_us_per_request"), _metric(mine, "cpu_us_per_request")
        )
        cpu_what = f"{label(baseline)} CPU µs/request / stackwire's, concurrency {concurrency}"
        cpu_shown = cpu.format(2) + "x" if cpu.values else _missing(samples, concurrency)
        cpu_rows.append([cpu_what, cpu_shown])
    parts.append(
        "### Ratios (paired per repetition)\n\n"
        + markdown_table(["ratio", "target", "measured", "verdict"], ratio_rows)
        + "\n\nThe same comparison by client CPU time per request (higher is better for "
        "stackwire). It needs no idle machine: when the load average in *Machine* is high, "
        "trust these more than requests/s.\n\n"
        + markdown_table(["CPU-time ratio (informational)", "measured"], cpu_rows)
        + "\n"
    )
    return "\n".join(parts), targets


def _metric(results: list[Result], key: str) -> list[float]:
    """`key` per repetition, NaN where that repetition failed (keeps the pairing)."""
    return [r[key] if status_of(r) is None else float("nan") for r in results]


def _missing(samples: dict[tuple[str, int], list[Result]], concurrency: int) -> str:
    results = samples.get(("stackwire", concurrency), [])
    return (status_of(results[0]) if results else "not run") or "not measured"


if __name__ == "__main__":
    worker_main({"requests": _worker})
