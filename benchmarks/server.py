"""A canned-response HTTP/1.1 server that is never the bottleneck.

It runs in its own process (`running_server()` starts it), on 127.0.0.1 and a free
port, on uvloop's event loop when uvloop is installed (`make bench` installs it; the
server's share of every round trip is then smaller, the same for every client), as a
bare `asyncio.Protocol`: requests are parsed by hand (request line, a
`Content-Length` body skipped, `Connection: close` honoured), keep-alive and pipelining
work, and every answer is precomputed bytes. Nothing here allocates per request beyond
the parse, so the clients under test get the CPU and the numbers measure them.

Endpoints:
- `GET /users/1`: one ~300-byte JSON user.
- `GET /payload/small|2k|1m`: the decode payloads (~300 B, ~2 KB, ~1 MiB of JSON).
- `GET /sse?n=N`: N Server-Sent Events (`event: message`, ~150 bytes of JSON data),
  `text/event-stream`, chunked, several events per chunk.
- `GET /sse-union?n=N`: N events of a tagged union (`event: delta|usage|done`, the
  JSON `data` tagged by its `type` field; see `payloads.union_event_data`), the same
  framing as `/sse`.
- `GET /big?mb=N`: N MiB of body with a `Content-Length`, written under flow control
  so the server never holds the whole body.

Run directly (`python server.py`) it prints the port on its first line and serves
until SIGTERM, SIGINT or `--max-seconds` passes, whichever comes first.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import cast
from urllib.parse import parse_qs

from harness import SERVER_CORE, pin_to
from payloads import MIB, PAYLOAD_NAMES, USER_BODY, payload, sse_event, sse_union_event

try:  # the server's own loop only: the clients under test all run on asyncio's
    import uvloop
except ImportError:  # pragma: no cover - the bench's Makefile installs it
    uvloop = None

HERE = Path(__file__).resolve().parent
SSE_EVENTS_PER_CHUNK = 16
MAX_HEAD_BYTES = 64 * 1024
_BIG_BLOCK = b"x" * MIB


def _response(status: str, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status.encode() + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"request-id: req_bench\r\n"
        b"\r\n" + body
    )


def _sse_response(count: int, union: bool = False) -> bytes:
    parts = [
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"request-id: req_bench\r\n"
        b"\r\n"
    ]
    for start in range(0, count, SSE_EVENTS_PER_CHUNK):
        chunk = b"".join(
            sse_union_event(i, count) if union else sse_event(i)
            for i in range(start, min(count, start + SSE_EVENTS_PER_CHUNK))
        )
        parts.append(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    parts.append(b"0\r\n\r\n")
    return b"".join(parts)


NOT_FOUND = _response("404 Not Found", b"application/json", b'{"error":"not found"}')
BAD_REQUEST = _response("400 Bad Request", b"application/json", b'{"error":"bad request"}')


class Routes:
    """Maps a request target to the bytes that answer it, cached per target."""

    def __init__(self) -> None:
        self._cache: dict[bytes, bytes] = {
            b"/users/1": _response("200 OK", b"application/json", USER_BODY),
        }
        for name in PAYLOAD_NAMES:
            key = b"/payload/" + name.encode()
            self._cache[key] = _response("200 OK", b"application/json", payload(name))

    def answer(self, target: bytes) -> bytes | Iterator[bytes]:
        cached = self._cache.get(target)
        if cached is not None:
            return cached
        path, _, raw_query = target.partition(b"?")
        query = parse_qs(raw_query.decode("latin-1"))
        if path in (b"/sse", b"/sse-union"):
            response = _sse_response(int(query.get("n", ["100"])[0]), path == b"/sse-union")
            if len(self._cache) < 256:
                self._cache[target] = response
            return response
        if path == b"/big":
            return _big_response(int(query.get("mb", ["1"])[0]))
        return NOT_FOUND


def _big_response(mebibytes: int) -> Iterator[bytes]:
    yield (
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Length: " + str(mebibytes * MIB).encode() + b"\r\n"
        b"\r\n"
    )
    for _ in range(mebibytes):
        yield _BIG_BLOCK


class Responder(asyncio.Protocol):
    """One connection: parse requests in order, answer each with canned bytes."""

    def __init__(self, routes: Routes) -> None:
        self._routes = routes
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._paused = False
        self._streaming: Iterator[bytes] | None = None
        self._close_after_stream = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports do not derive from asyncio.Transport; same methods.)
        self._transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._serve_buffered()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._pump()
        self._serve_buffered()

    def _serve_buffered(self) -> None:
        transport = self._transport
        assert transport is not None
        while self._streaming is None and not transport.is_closing():
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEAD_BYTES:
                    transport.write(BAD_REQUEST)
                    transport.close()
                return
            head = bytes(self._buffer[:end])
            line, _, header_block = head.partition(b"\r\n")
            headers = header_block.lower()
            body_length = 0
            marker = headers.find(b"content-length:")
            if marker >= 0:
                value_end = headers.find(b"\r\n", marker)
                value = headers[marker + 15 : value_end if value_end >= 0 else None]
                body_length = int(value.strip() or b"0")
            if len(self._buffer) < end + 4 + body_length:
                return
            del self._buffer[: end + 4 + body_length]
            parts = line.split(b" ")
            if len(parts) != 3:
                transport.write(BAD_REQUEST)
                transport.close()
                return
            close = b"connection: close" in headers or parts[2] == b"HTTP/1.0"
            answer = self._routes.answer(parts[1])
            if isinstance(answer, bytes):
                transport.write(answer)
                if close:
                    transport.close()
            else:
                self._streaming = answer
                self._close_after_stream = close
                self._pump()

    def _pump(self) -> None:
        transport = self._transport
        while self._streaming is not None and not self._paused and transport is not None:
            block = next(self._streaming, None)
            if block is None:
                self._streaming = None
                if self._close_after_stream:
                    transport.close()
                return
            transport.write(block)

    def connection_lost(self, exc: Exception | None) -> None:
        self._streaming = None
        self._transport = None


async def serve(port: int, max_seconds: float) -> None:
    loop = asyncio.get_running_loop()
    routes = Routes()
    server = await loop.create_server(
        lambda: Responder(routes), "127.0.0.1", port, backlog=1024, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    print(bound, flush=True)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max_seconds)


class RunningServer:
    """A server process started by `running_server()`: its URL and pid."""

    def __init__(self, process: subprocess.Popen[str], port: int) -> None:
        self.process = process
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def running_server(max_seconds: float = 1800.0) -> Iterator[RunningServer]:
    """Start the server in a separate process and stop it (by its pid) on exit."""
    process = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "--max-seconds", str(max_seconds)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.strip().isdigit():
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        yield RunningServer(process, int(line))
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    pin_to(SERVER_CORE)
    if uvloop is not None:
        uvloop.install()
    asyncio.run(serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()
