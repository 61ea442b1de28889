"""Streaming: typed Server-Sent Events, JSON Lines, and raw bytes.

Run with ``python examples/streaming.py``. It starts the demo API on a free port on
127.0.0.1 and reads three kinds of streamed body from it, as they arrive.
"""

from __future__ import annotations

import asyncio
import sys

from demo_server import start  # examples/ is on sys.path when this file runs

import stackwire


class Delta(stackwire.Model):
    index: int
    text: str


class LogRecord(stackwire.Model):
    seq: int
    level: str
    message: str


async def main() -> int:
    runner, base_url = await start()
    try:
        async with stackwire.AsyncClient(base_url) as client:
            # --8<-- [start:sse]
            # 1. Server-Sent Events, each event's JSON data decoded into a Delta.
            #    The "done" event ends the stream; it has its own shape, so it is not
            #    decoded into a Delta. `stream_end_event` also makes a stream cut short
            #    before "done" an error.
            async with await client.get(
                "/events", query={"n": 3}, cast_to=Delta, stream=True, stream_end_event="done"
            ) as events:
                async for delta in events:
                    print(f"delta {delta.index}: {delta.text!r}")
            # --8<-- [end:sse]

            # --8<-- [start:raw_events]
            # 2. The raw events, name and id included.
            raw = await client.get(
                "/events", query={"n": 1}, cast_to=stackwire.ServerSentEvent, stream=True
            )
            async with raw:
                print("events:", [(event.event, event.id) async for event in raw])
            # --8<-- [end:raw_events]

            # --8<-- [start:jsonl]
            # 3. JSON Lines (application/x-ndjson): the same API, one record a line.
            async with await client.get(
                "/logs", query={"n": 4}, cast_to=LogRecord, stream=True
            ) as records:
                async for record in records:
                    print(f"log {record.seq} [{record.level}] {record.message}")
            # --8<-- [end:jsonl]

            # --8<-- [start:early]
            # 4. Stopping early: leaving `async with` closes the connection.
            async with await client.get(
                "/logs", query={"n": 1000}, cast_to=LogRecord, stream=True
            ) as records:
                async for record in records:
                    if record.seq == 2:
                        break
            print("in use after stopping early:", client.pool_stats().in_use)
            # --8<-- [end:early]

            # --8<-- [start:raw_bytes]
            # 5. Raw bytes: the Response with its body unread, read line by line.
            async with client.with_streaming_response.get("/logs", query={"n": 2}) as response:
                print("status", response.status_code, response.headers["Content-Type"])
                async for line in response.iter_lines():
                    print("line:", line)
            # --8<-- [end:raw_bytes]

            print("at the end:", client.pool_stats())
    finally:
        await runner.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
