"""What observability costs: the attempt history, LoggingMiddleware, OpenTelemetry.

Run from ``benchmarks/`` with the project's environment (OpenTelemetry rows need the
``dev`` extra: ``opentelemetry-sdk`` and ``opentelemetry-instrumentation-aiohttp-client``)::

    python observability.py                  # all three sections
    python observability.py --baseline-rev c037dcc   # instructions against that commit

1. **Attempt history** (on by default, ``Response.attempts`` and `Timings`):
   instructions per call, counted by ``valgrind --tool=callgrind`` over N sequential
   ``GET /users/1`` calls to the local server (another process: only the client is
   counted), for this checkout and for ``--baseline-rev`` (a commit before the
   history, exported with ``git archive``). Per call = (count at N2 - count at N1) /
   (N2 - N1), so start-up cancels out. Target: within 3 %.
Times are CPU seconds of the benchmark's process (`time.process_time`): the server's
share, in its own process, and other load on the machine stay out.

2. **LoggingMiddleware with logging off**: seconds per call of a composed pipeline
   ending in a do-nothing terminal, with and without the middleware; the median of
   interleaved rounds. Target: < 0.5 µs.
3. **OpenTelemetry** with the SDK and a no-op exporter: the time it adds per call to
   stackwire, against the time ``opentelemetry-instrumentation-aiohttp-client`` adds to
   a plain aiohttp loop, both against the local server in the same run, interleaved
   rounds, medians. Target: at most half.
   **3b** (``otel-instructions``) is the same comparison in instructions under
   callgrind (N1 vs N2 sequential calls per variant, as in section 1), with the SDK's
   own cost of a span and of a histogram point (measured alone), so that what each
   instrumentation adds beyond the SDK shows, and the lowest ratio two spans and a
   point allow (no work of stackwire's own at all).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from server import running_server

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_CALLS_SCRIPT = """
import asyncio, sys
import stackwire
async def main(port, n):
    async with stackwire.AsyncClient(f"http://127.0.0.1:{port}/") as client:
        for _ in range(n):
            await client.get("/users/1")
asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
"""


_OTEL_SCRIPT = """
import asyncio, sys
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class NoopExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(NoopExporter()))
meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
variant, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
url = f"http://127.0.0.1:{port}/users/1"

async def main():
    if variant.startswith("aiohttp"):
        import aiohttp
        if variant == "aiohttp+otel":
            from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
            AioHttpClientInstrumentor().instrument(
                tracer_provider=tracer_provider, meter_provider=meter_provider
            )
        async with aiohttp.ClientSession() as session:
            for _ in range(n):
                async with session.get(url) as response:
                    await response.read()
    else:
        import stackwire
        owner = stackwire.AsyncClient(f"http://127.0.0.1:{port}/")
        client = owner
        if variant == "stackwire+otel":
            client = stackwire.OpenTelemetry(tracer_provider, meter_provider).instrument(owner)
        async with owner:
            for _ in range(n):
                await client.get("/users/1")

asyncio.run(main())
"""

_SDK_SCRIPT = """
import sys
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

class NoopExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS

tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(NoopExporter()))
tracer = tracer_provider.get_tracer("bench")
meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
histogram = meter_provider.get_meter("bench").create_histogram("d", unit="s")
what, _port, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
start = {"http.request.method": "GET", "server.address": "127.0.0.1", "server.port": 8080,
         "url.full": "http://127.0.0.1:8080/users/1"}
end = {"http.response.status_code": 200, "network.protocol.version": "1.1"}
for _ in range(n):
    if what == "span":
        span = tracer.start_span("GET", kind=trace.SpanKind.CLIENT, attributes=start)
        span.set_attributes(end)
        span.end()
    else:
        histogram.record(0.01, {**start, **end})
"""

# -- 1. instructions per call ---------------------------------------------------------


def _instructions(tree: Path, port: int, calls: int, script: Path, *head: str) -> int:
    out = tempfile.mktemp(prefix="callgrind.", dir=tempfile.gettempdir())
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(script),
            *head,
            str(port),
            str(calls),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    os.unlink(out)
    match = re.search(r"Collected : (\d+)", done.stderr)
    assert match is not None, done.stderr[-2000:]
    return int(match.group(1))


def instructions_per_call(
    tree: Path, port: int, script: Path, low: int, high: int, *head: str
) -> float:
    high_count = _instructions(tree, port, high, script, *head)
    return (high_count - _instructions(tree, port, low, script, *head)) / (high - low)


def attempt_history_section(port: int, baseline_rev: str | None, low: int, high: int) -> list[str]:
    if shutil.which("valgrind") is None:
        return ["1. attempt history: skipped (valgrind is not installed)"]
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "calls.py"
        script.write_text(_CALLS_SCRIPT)
        now = instructions_per_call(ROOT, port, script, low, high)
        lines = [f"1. attempt history: {now:,.0f} instructions per call (this checkout)"]
        if baseline_rev is not None:
            base = Path(scratch) / "base"
            base.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", baseline_rev, "stackwire"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
            before = instructions_per_call(base, port, script, low, high)
            change = (now / before - 1) * 100
            verdict = "met" if change <= 3 else "NOT met"
            lines.append(
                f"   before ({baseline_rev}): {before:,.0f} per call; change {change:+.1f} % "
                f"(target within 3 %: {verdict})"
            )
        return lines


# -- 2. LoggingMiddleware with logging off -------------------------------------------


async def _per_call(handler: Any, request: Any, calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        await handler(request)
    return (time.process_time() - started) / calls


async def logging_section(calls: int, rounds: int) -> list[str]:
    import logging

    from yarl import URL

    from stackwire import LoggingMiddleware, Request
    from stackwire.pipeline import Pipeline

    logging.getLogger("stackwire").setLevel(logging.WARNING)
    sentinel: Any = object()

    async def terminal(request: Request) -> Any:
        return sentinel

    async def passthrough(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    request = Request(method="GET", url=URL("http://api.test/x"))
    plain = Pipeline([passthrough]).compose(terminal)
    logged = Pipeline([passthrough, LoggingMiddleware()]).compose(terminal)
    added = []
    for _ in range(rounds):
        without = await _per_call(plain, request, calls)
        with_it = await _per_call(logged, request, calls)
        added.append(with_it - without)
    cost = statistics.median(added) * 1e6
    verdict = "met" if cost < 0.5 else "NOT met"
    return [
        f"2. LoggingMiddleware, logging off: {cost:+.3f} µs per call (target < 0.5 µs: {verdict})"
    ]


# -- 3. OpenTelemetry ----------------------------------------------------------------


async def otel_section(port: int, calls: int, rounds: int) -> list[str]:
    try:
        import aiohttp
        from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            SimpleSpanProcessor,
            SpanExporter,
            SpanExportResult,
        )
    except ImportError as error:
        return [f"3. OpenTelemetry: skipped ({error})"]

    import stackwire

    class NoopExporter(SpanExporter):
        def export(self, spans: Any) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(NoopExporter()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    url = f"http://127.0.0.1:{port}/users/1"

    async def aiohttp_loop(instrumented: bool) -> float:
        instrumentor = AioHttpClientInstrumentor()
        if instrumented:
            instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get(url) as warm:
                    await warm.read()
                started = time.process_time()
                for _ in range(calls):
                    async with session.get(url) as response:
                        await response.read()
                return (time.process_time() - started) / calls
        finally:
            if instrumented:
                instrumentor.uninstrument()

    async def stackwire_loop(traced: bool) -> float:
        owner = stackwire.AsyncClient(f"http://127.0.0.1:{port}/")
        client = owner
        if traced:
            otel = stackwire.OpenTelemetry(
                tracer_provider=tracer_provider, meter_provider=meter_provider
            )
            client = otel.instrument(owner)
        async with owner:  # the instrumented client shares (and never closes) its session
            await client.get("/users/1")
            started = time.process_time()
            for _ in range(calls):
                await client.get("/users/1")
            return (time.process_time() - started) / calls

    aiohttp_added, stackwire_added, plain, sw = [], [], [], []
    for _ in range(rounds):
        base = await aiohttp_loop(False)
        aiohttp_added.append(await aiohttp_loop(True) - base)
        own = await stackwire_loop(False)
        stackwire_added.append(await stackwire_loop(True) - own)
        plain.append(base)
        sw.append(own)
    theirs = statistics.median(aiohttp_added) * 1e6
    ours = statistics.median(stackwire_added) * 1e6
    ratio = ours / theirs if theirs > 0 else float("inf")
    verdict = "met" if ratio <= 0.5 else "NOT met"
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return [
        f"3. OpenTelemetry (SDK, no-op exporter), per call, medians of {rounds} rounds:",
        f"   plain aiohttp loop {statistics.median(plain) * 1e6:.1f} µs; "
        f"aiohttp instrumentation adds {theirs:.1f} µs (1 CLIENT span)",
        f"   stackwire {statistics.median(sw) * 1e6:.1f} µs; OpenTelemetry.instrument adds "
        f"{ours:.1f} µs (INTERNAL + CLIENT span, traceparent, histogram)",
        f"   ratio {ratio:.2f} (target at most 0.5: {verdict})",
    ]


def otel_instructions_section(port: int, low: int, high: int) -> list[str]:
    if shutil.which("valgrind") is None:
        return ["3b. OpenTelemetry instructions: skipped (valgrind is not installed)"]
    import importlib.util

    for needed in ("opentelemetry.sdk", "opentelemetry.instrumentation.aiohttp_client"):
        try:
            found = importlib.util.find_spec(needed) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return [f"3b. OpenTelemetry instructions: skipped ({needed} is not installed)"]
    with tempfile.TemporaryDirectory() as scratch:
        script = Path(scratch) / "otel_calls.py"
        script.write_text(_OTEL_SCRIPT)
        count = {
            variant: instructions_per_call(ROOT, port, script, low, high, variant)
            for variant in ("aiohttp", "aiohttp+otel", "stackwire", "stackwire+otel")
        }
        sdk = Path(scratch) / "sdk.py"
        sdk.write_text(_SDK_SCRIPT)
        span = instructions_per_call(ROOT, port, sdk, low, high, "span")
        point = instructions_per_call(ROOT, port, sdk, low, high, "histogram")
    theirs = count["aiohttp+otel"] - count["aiohttp"]
    ours = count["stackwire+otel"] - count["stackwire"]
    ratio = ours / theirs if theirs > 0 else float("inf")
    verdict = "met" if ratio <= 0.5 else "NOT met"
    glue_theirs = theirs - span - point
    glue_ours = ours - 2 * span - point
    return [
        "3b. OpenTelemetry (SDK, no-op exporter), instructions per call (callgrind):",
        f"   plain aiohttp loop {count['aiohttp']:,.0f}; aiohttp instrumentation adds "
        f"{theirs:,.0f} (1 CLIENT span, its histogram)",
        f"   stackwire {count['stackwire']:,.0f}; OpenTelemetry.instrument adds {ours:,.0f} "
        "(INTERNAL + CLIENT span, traceparent, histogram)",
        f"   ratio {ratio:.2f} (target at most 0.5: {verdict})",
        f"   the SDK's own work: a span {span:,.0f}, a histogram point {point:,.0f}; beyond "
        f"it, stackwire adds {glue_ours:,.0f} (2 spans), the aiohttp instrumentation "
        f"{glue_theirs:,.0f} (1 span): ratio {glue_ours / glue_theirs:.2f}",
        f"   the SDK's work for 2 spans and a point alone, {2 * span + point:,.0f}, is a "
        f"ratio of {(2 * span + point) / theirs:.2f}: the lowest two spans allow",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default=None, help="a commit before the history")
    parser.add_argument("--only", default="history,logging,otel,otel-instructions")
    parser.add_argument("--smoke", action="store_true", help="tiny counts")
    args = parser.parse_args()
    only = set(args.only.split(","))
    low, high = (20, 60) if args.smoke else (200, 1200)
    calls, rounds = (200, 2) if args.smoke else (3000, 7)
    lines: list[str] = []
    with running_server() as server:
        if "history" in only:
            lines += attempt_history_section(server.port, args.baseline_rev, low, high)
        if "logging" in only:
            lines += asyncio.run(logging_section(calls * 30, rounds))
        if "otel" in only:
            lines += asyncio.run(otel_section(server.port, calls, rounds))
        if "otel-instructions" in only:
            lines += otel_instructions_section(server.port, low, high)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
