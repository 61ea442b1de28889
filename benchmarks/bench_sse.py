"""Parse-only throughput of stackwire's SSE decoder against two baselines.

Each decoder parses the same body: ``--events`` events of a streamed chat completion
in the style of the Anthropic API (``event: content_block_delta`` and about 150 bytes
of JSON data each, plus the start, ping and stop events), already in memory and cut
into 1 KiB and 16 KiB chunks. No network and no JSON decoding of the data: only
bytes -> event objects.

Two workloads, because how much of the text is ASCII changes the cost of decoding
UTF-8 and of every string operation after it:

- ``english``: ASCII text, with a non-ASCII character (an accent, a dash, curly
  quotes) in one event in 20;
- ``multilingual``: accented and CJK words throughout (about 70% of the events hold
  a non-ASCII character, 30% a CJK one).

Baselines, measured in the same run:

- ``anthropic``: ``anthropic._streaming.SSEDecoder().iter_bytes(chunks)``, the
  decoder of the official Anthropic SDK;
- ``httpx-sse``: the pipeline behind ``EventSource.iter_sse``: an incremental UTF-8
  decoder (what ``httpx.Response.iter_text`` does), ``SSELineDecoder`` and
  ``SSEDecoder``.

Runs are interleaved (stackwire, anthropic, httpx-sse, stackwire, ...) after one
warm-up run each, so that a busy moment of the machine hits every decoder alike, and
timed by the process's CPU time (``time.process_time``), not the wall clock. The
table shows the median events/s with the min-max over ``--repeat`` runs, MB/s, and
the ratio against ``anthropic`` of the medians (and of the best runs).

Setup (a separate virtualenv, so the baselines never enter the project's one)::

    python3 -m venv benchmarks/.venv
    benchmarks/.venv/bin/pip install -r benchmarks/requirements-sse.txt
    benchmarks/.venv/bin/python benchmarks/bench_sse.py

stackwire is imported from this checkout when it is not installed. A baseline that
is not installed is left out of the table.
"""

from __future__ import annotations

import argparse
import codecs
import gc
import importlib
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

try:
    from stackwire.models.sse import SSEDecoder
except ImportError:  # run from a checkout without installing stackwire
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from stackwire.models.sse import SSEDecoder

CHUNK_SIZES = (1024, 16 * 1024)
WORKLOADS = ("english", "multilingual")

Parser = Callable[[list[bytes]], int]

_SENTENCE = (
    "the quick brown fox jumps over a lazy dog while the model streams its answer "
    "token by token and the parser keeps up with every line of the response"
)
_ENGLISH = tuple(_SENTENCE.split())
_ENGLISH_EXTRA = ("café", "—", "“quoted”", "naïve", "it’s")
_MULTILINGUAL = (*_ENGLISH[:20], "café", "naïve", "señor", "東京", "データ", "—")


def _text(rng: random.Random, workload: str) -> str:
    if workload == "english":
        words = rng.choices(_ENGLISH, k=rng.randint(8, 12))
        if rng.random() < 0.05:
            words[rng.randrange(len(words))] = rng.choice(_ENGLISH_EXTRA)
    else:
        words = rng.choices(_MULTILINGUAL, k=rng.randint(7, 11))
    return " ".join(words)


def make_body(events: int, workload: str = "english", seed: int = 1) -> bytes:
    """An Anthropic-style event stream of ``events`` events, deterministic per seed."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; one of {WORKLOADS}")
    rng = random.Random(seed)
    parts = [
        b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_01",'
        b'"type":"message","role":"assistant","content":[],"model":"m","usage":'
        b'{"input_tokens":25,"output_tokens":1}}}\n\n',
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n',
    ]
    for i in range(events - 4):
        if i % 50 == 0:
            parts.append(b'event: ping\ndata: {"type": "ping"}\n\n')
            continue
        parts.append(
            b"event: content_block_delta\ndata: "
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"'
            + _text(rng, workload).encode()
            + b'"}}\n\n'
        )
    parts.append(b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n')
    parts.append(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    return b"".join(parts)


def chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


def parse_stackwire(chunks: list[bytes]) -> int:
    decoder = SSEDecoder()
    count = 0
    for chunk in chunks:
        count += len(decoder.feed(chunk))
    decoder.flush()
    return count


def _anthropic_parser() -> Parser | None:
    try:
        streaming = importlib.import_module("anthropic._streaming")
    except ImportError:
        return None
    decoder_class = streaming.SSEDecoder

    def parse(chunks: list[bytes]) -> int:
        return sum(1 for _ in decoder_class().iter_bytes(iter(chunks)))

    return parse


def _httpx_sse_parser() -> Parser | None:
    try:
        decoders = importlib.import_module("httpx_sse._decoders")
    except ImportError:
        return None
    line_decoder_class = decoders.SSELineDecoder
    event_decoder_class = decoders.SSEDecoder

    def parse(chunks: list[bytes]) -> int:
        text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        lines = line_decoder_class()
        events = event_decoder_class()
        count = 0
        for chunk in chunks:
            for line in lines.decode(text_decoder.decode(chunk)):
                if events.decode(line.rstrip("\n")) is not None:
                    count += 1
        for line in lines.flush():
            if events.decode(line.rstrip("\n")) is not None:
                count += 1
        return count

    return parse


def parsers() -> dict[str, Parser]:
    """The decoders to compare, stackwire first; missing baselines are left out."""
    found: dict[str, Parser] = {"stackwire": parse_stackwire}
    for name, factory in (("anthropic", _anthropic_parser), ("httpx-sse", _httpx_sse_parser)):
        parser = factory()
        if parser is not None:
            found[name] = parser
    return found


def _time(parser: Parser, chunks: list[bytes]) -> tuple[float, int]:
    gc.collect()
    # CPU time of this process: parsing is pure CPU work in one thread, and time the
    # process spends descheduled (other processes, a host taking the CPU away) is
    # not the parser's.
    start = time.process_time()
    count = parser(chunks)
    return time.process_time() - start, count


def run(events: int, repeat: int, workloads: Sequence[str] = WORKLOADS) -> list[dict[str, Any]]:
    """Measure every decoder on every workload and chunk size; one row for each.

    Each row: ``workload``, ``chunk_size``, ``decoder``, ``events``, ``bytes``,
    ``median_s``, ``min_s``, ``max_s``, ``events_per_s`` and ``mb_per_s`` (of the
    median), ``ratio_vs_anthropic`` (median events/s over anthropic's) and
    ``best_ratio_vs_anthropic`` (best run over best run); both ratios are ``None``
    without anthropic.
    """
    found = parsers()
    rows: list[dict[str, Any]] = []
    for workload in workloads:
        body = make_body(events, workload)
        for size in CHUNK_SIZES:
            chunks = chunked(body, size)
            times: dict[str, list[float]] = {name: [] for name in found}
            for name, parser in found.items():  # warm-up; every decoder must agree
                _, count = _time(parser, chunks)
                if count != events:
                    raise AssertionError(f"{name} parsed {count} events, expected {events}")
            for _ in range(repeat):
                for name, parser in found.items():
                    times[name].append(_time(parser, chunks)[0])
            base = times.get("anthropic")
            for name, runs in times.items():
                median = statistics.median(runs)
                rows.append(
                    {
                        "workload": workload,
                        "chunk_size": size,
                        "decoder": name,
                        "events": events,
                        "bytes": len(body),
                        "median_s": median,
                        "min_s": min(runs),
                        "max_s": max(runs),
                        "events_per_s": events / median,
                        "mb_per_s": len(body) / median / 1e6,
                        "ratio_vs_anthropic": (
                            None if base is None else statistics.median(base) / median
                        ),
                        "best_ratio_vs_anthropic": (
                            None if base is None else min(base) / min(runs)
                        ),
                    }
                )
    return rows


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| workload | chunk | decoder | events/s (median) | min-max events/s | MB/s "
        "| vs anthropic (median) | (best) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        events = row["events"]
        lines.append(
            f"| {row['workload']} | {row['chunk_size'] // 1024} KiB | {row['decoder']} "
            f"| {row['events_per_s']:,.0f} "
            f"| {events / row['max_s']:,.0f}-{events / row['min_s']:,.0f} "
            f"| {row['mb_per_s']:.1f} "
            f"| {_ratio(row['ratio_vs_anthropic'])} "
            f"| {_ratio(row['best_ratio_vs_anthropic'])} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Parse-only SSE decoder throughput.")
    parser.add_argument("--events", type=int, default=100_000, help="events per body")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per decoder")
    parser.add_argument(
        "--workload", choices=[*WORKLOADS, "all"], default="all", help="which text to parse"
    )
    parser.add_argument("--smoke", action="store_true", help="a tiny run: 2,000 events, 2 runs")
    args = parser.parse_args(argv)
    events, repeat = (2_000, 2) if args.smoke else (args.events, args.repeat)
    if events < 4 or repeat < 1:
        parser.error("--events must be at least 4 and --repeat at least 1")
    workloads = WORKLOADS if args.workload == "all" else (args.workload,)
    rows = run(events, repeat, workloads)
    print(
        f"SSE parse-only: {events:,} events per body, {repeat} interleaved runs per "
        f"decoder after a warm-up; Python {sys.version.split()[0]}\n"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
