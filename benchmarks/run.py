"""Run the whole benchmark suite and write `benchmarks/RESULTS.md`.

    python run.py            full run (a few minutes on 2 cores), writes RESULTS.md
    python run.py --smoke    tiny counts (seconds), prints the report, writes nothing
    python run.py --only requests,stream   a subset (with --output to keep it)

One local server process serves every benchmark; every measured case runs in a fresh
worker process (see `harness.py`). The report starts with the targets from the
performance issue and whether each is met, then the machine, the package versions and
one section per benchmark.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bench_decode
import bench_memory
import bench_requests
import bench_server
import bench_stream
from harness import (
    NOT_AVAILABLE,
    Result,
    Unavailable,
    markdown_table,
    run_worker,
    stackwire_status,
    status_of,
    verdict,
    worker_main,
)
from server import running_server

HERE = Path(__file__).resolve().parent
SECTIONS = ("server", "requests", "stream", "union", "sse", "decode", "memory")
SSE_PARSE_TARGET = 3.5
PACKAGES = (
    "stackwire",
    "aiohttp",
    "msgspec",
    "yarl",
    "multidict",
    "httpx",
    "pydantic",
    "pydantic-core",
    "anthropic",
    "httpx2",
    "httpx-sse",
)


@dataclass(frozen=True)
class Settings:
    """How long and how often each benchmark measures."""

    server_seconds: float
    request_repetitions: int
    request_seconds: float
    request_warmup: int
    request_concurrencies: tuple[int, ...]
    stream_repetitions: int
    stream_seconds: float
    stream_events: int
    sse_events: int
    sse_repeat: int
    decode_repetitions: int
    decode_batch_seconds: float
    memory_repetitions: int
    memory_stream_mb: int
    memory_buffer_mb: int


FULL = Settings(
    server_seconds=2.0,
    request_repetitions=5,
    request_seconds=2.0,
    request_warmup=200,
    request_concurrencies=(1, 64),
    stream_repetitions=5,
    stream_seconds=2.0,
    stream_events=10_000,
    sse_events=100_000,
    sse_repeat=7,
    decode_repetitions=7,
    decode_batch_seconds=0.1,
    memory_repetitions=3,
    memory_stream_mb=200,
    memory_buffer_mb=100,
)

SMOKE = Settings(
    server_seconds=0.2,
    request_repetitions=1,
    request_seconds=0.2,
    request_warmup=10,
    request_concurrencies=(64,),
    stream_repetitions=1,
    stream_seconds=0.1,
    stream_events=300,
    sse_events=2_000,
    sse_repeat=1,
    decode_repetitions=1,
    decode_batch_seconds=0.005,
    memory_repetitions=1,
    memory_stream_mb=16,
    memory_buffer_mb=8,
)


# --- SSE parse-only (bench_sse.py, owned separately) ----------------------------------


def _sse_worker(params: dict[str, Any]) -> Result:
    try:
        import bench_sse
    except ImportError as error:
        raise Unavailable(f"{type(error).__name__}: {error}") from error
    rows = bench_sse.run(params["events"], params["repeat"])
    formatter = getattr(bench_sse, "format_table", None)
    return {"rows": rows, "table": formatter(rows) if callable(formatter) else None}


def run_sse_parse(settings: Settings) -> tuple[str, list[list[str]]]:
    heading = "## SSE decoders, parse only (`bench_sse.py`)\n\n"
    what = "stackwire SSEDecoder / anthropic decoder, parse-only events/s"
    wanted = f">= {SSE_PARSE_TARGET:g}x"
    if not (HERE / "bench_sse.py").exists():
        print("  sse parse-only: bench_sse.py not present")
        return heading + "`bench_sse.py` is not present yet.\n", [
            [what, wanted, "not present yet", "not measured"]
        ]
    params = {"case": "sse_parse", "events": settings.sse_events, "repeat": settings.sse_repeat}
    result = run_worker("run.py", params, timeout=600)
    status = status_of(result)
    if status is not None:
        print(f"  sse parse-only: {status}")
        return heading + f"{status}\n", [[what, wanted, status, "not measured"]]
    rows: list[dict[str, Any]] = result["rows"]
    table = result["table"] or _generic_table(rows)
    targets = []
    for row in rows:
        if row.get("decoder") == "stackwire":
            ratio = row.get("ratio_vs_anthropic")
            chunk = row.get("chunk_size", 0) // 1024
            workload = row.get("workload", "")
            targets.append(
                [
                    f"stackwire SSEDecoder / anthropic decoder parse-only, {workload} text, "
                    f"{chunk} KiB chunks",
                    wanted,
                    "anthropic not installed" if ratio is None else f"{ratio:.2f}x",
                    "not measured" if ratio is None else verdict(ratio, SSE_PARSE_TARGET),
                ]
            )
            print(f"  sse parse-only {workload} {chunk} KiB: {targets[-1][2]}")
    section = (
        heading + f"{settings.sse_events:,} events in memory, {settings.sse_repeat} interleaved "
        "runs per decoder, timed by the process's CPU time; no socket, no JSON. Ratio is of "
        "medians, same run.\n\n" + table + "\n"
    )
    return section, targets


def _generic_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    header = list(rows[0])
    return markdown_table(header, ([row.get(key, "") for key in header] for row in rows))


# --- facts about this run ---------------------------------------------------------------


def load_average() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def machine_facts(load_at_start: str) -> list[list[str]]:
    cpu_model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory = "unknown"
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    return [
        ["CPU", cpu_model],
        ["cores (usable)", f"{os.cpu_count()} ({len(os.sched_getaffinity(0))})"],
        ["memory", memory],
        ["Python", f"{platform.python_implementation()} {platform.python_version()}"],
        ["kernel", f"{platform.system()} {platform.release()}"],
        ["event loop, clients", "asyncio default (no uvloop)"],
        ["event loop, local server", _server_loop()],
        ["load average 1/5/15 min, at start", load_at_start],
        ["load average 1/5/15 min, at end", load_average()],
        ["source", _source_revision()],
    ]


def _server_loop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio default (uvloop not installed)"
    return f"uvloop {uvloop.__version__}"


def _source_revision() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=HERE.parent, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "no commit yet"
    dirty = " (uncommitted changes)" if git("status", "--porcelain") else ""
    return commit + dirty


def package_versions() -> list[list[str]]:
    rows = []
    for name in PACKAGES:
        try:
            rows.append([name, importlib.metadata.version(name)])
        except importlib.metadata.PackageNotFoundError:
            rows.append([name, "not installed"])
    return rows


# --- the run ------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny counts; print, write nothing")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--output", type=Path, help="where to write the report")
    parser.add_argument(
        "--clients", help="comma-separated clients of the request and stream rows (default all)"
    )
    args = parser.parse_args()
    if args.clients:
        os.environ["BENCH_CLIENTS"] = args.clients
    settings = SMOKE if args.smoke else FULL
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    # Only a full run of every section replaces RESULTS.md unless --output says where.
    partial = args.smoke or args.only != parser.get_default("only") or bool(args.clients)
    output = args.output or (None if partial else HERE / "RESULTS.md")

    started = time.perf_counter()
    load_at_start = load_average()
    missing = stackwire_status()
    if missing is not None:
        print(f"stackwire: {NOT_AVAILABLE} ({missing}); its rows are skipped", flush=True)
    sections: list[str] = []
    targets: list[list[str]] = []

    def step(name: str, produce: Callable[[], tuple[str, list[list[str]]]]) -> None:
        if name not in only:
            return
        print(f"== {name}", flush=True)
        began = time.perf_counter()
        section, found = produce()
        print(f"== {name} done in {time.perf_counter() - began:.1f} s", flush=True)
        sections.append(section)
        targets.extend(found)

    with running_server() as server:
        capacity = 0.0

        def server_step() -> tuple[str, list[list[str]]]:
            nonlocal capacity
            section, capacity = bench_server.run(
                server.port, server.pid, seconds=settings.server_seconds
            )
            return section, []

        step("server", server_step)
        step(
            "requests",
            lambda: bench_requests.run(
                server.base_url,
                server.pid,
                repetitions=settings.request_repetitions,
                seconds=settings.request_seconds,
                warmup=settings.request_warmup,
                concurrencies=settings.request_concurrencies,
            ),
        )
        step(
            "stream",
            lambda: bench_stream.run(
                server.base_url,
                repetitions=settings.stream_repetitions,
                seconds=settings.stream_seconds,
                events=settings.stream_events,
            ),
        )
        step(
            "union",
            lambda: bench_stream.run_union(
                server.base_url,
                repetitions=settings.stream_repetitions,
                seconds=settings.stream_seconds,
                events=settings.stream_events,
            ),
        )
        step("sse", lambda: run_sse_parse(settings))
        step(
            "decode",
            lambda: bench_decode.run(
                repetitions=settings.decode_repetitions,
                batch_seconds=settings.decode_batch_seconds,
            ),
        )
        step(
            "memory",
            lambda: bench_memory.run(
                server.base_url,
                repetitions=settings.memory_repetitions,
                stream_mb=settings.memory_stream_mb,
                buffer_mb=settings.memory_buffer_mb,
            ),
        )

    elapsed = time.perf_counter() - started
    report = render(settings, args.smoke, sections, targets, elapsed, missing, load_at_start)
    if output is None:
        print(report)
    else:
        output.write_text(report)
        print(f"wrote {output} in {elapsed:.0f} s")


def render(
    settings: Settings,
    smoke: bool,
    sections: list[str],
    targets: list[list[str]],
    elapsed: float,
    missing: str | None,
    load_at_start: str,
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    mode = "smoke run (tiny counts; numbers are not meaningful)" if smoke else "full run"
    lines = [
        "# stackwire benchmark results\n",
        f"Generated {now} by `make -C benchmarks bench` (`python run.py`), {mode}, "
        f"in {elapsed:.0f} s. See `benchmarks/README.md` for the method.\n",
    ]
    if missing is not None:
        lines.append(
            f"**stackwire's client was {NOT_AVAILABLE}** when this ran (`{missing}`): its rows "
            "are skipped and its targets are not measured.\n"
        )
    lines += [
        "## Targets\n",
        markdown_table(["target", "wanted", "measured", "verdict"], targets) + "\n",
        "## Machine\n",
        markdown_table(["", ""], machine_facts(load_at_start)) + "\n",
        "A load average well above 1 at the start means other work shared the 2 cores; "
        "the min–max ranges show how much it moved the numbers.\n",
        "## Settings\n",
        markdown_table(
            ["setting", "value"], ([k, str(v)] for k, v in dataclasses.asdict(settings).items())
        )
        + "\n",
        "## Package versions\n",
        markdown_table(["package", "version"], package_versions()) + "\n",
    ]
    lines.extend(sections)
    return "\n".join(lines)


if __name__ == "__main__" and not worker_main({"sse_parse": _sse_worker}):
    main()
