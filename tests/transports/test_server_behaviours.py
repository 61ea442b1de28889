"""What real servers do that a scripted happy path does not: answering before the
upload is read, refusing a proxy tunnel, and the like. Each case is reproduced with a
raw server on 127.0.0.1, as uvicorn, hypercorn or a forward proxy were seen to do it."""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

import stackwire
from tests.conftest import RawHandler, RawServer, read_request

MakeClient = Callable[..., stackwire.AsyncClient]
RawStart = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]


# Larger than the socket buffers of both ends: the upload is still being written when
# the answer comes.
BIG_UPLOAD = b"x" * (16 * 2**20)


def _answers_before_reading(status: bytes, body: bytes) -> RawHandler:
    """Reads the request head, answers at once (as uvicorn does when the app returns
    without reading the body), then drains whatever the client still sends."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        while await reader.read(2**16):
            pass

    return handler


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
async def test_an_error_answered_before_the_upload_leaves_nothing_in_use(
    raw_server: RawStart, make_client: MakeClient, expect: bool
) -> None:
    # uvicorn, hypercorn: a 413 for a large POST, sent before reading the body (with
    # ``Expect: 100-continue``, without the 100). aiohttp gives the connection back only
    # once its body writer has stopped, loop turns later: the call had returned with
    # the connection still counted in use.
    base, _ = await raw_server(_answers_before_reading(b"413 Too Large", b'{"error":"big"}'))
    client = make_client(base, max_retries=0)
    headers = {"Expect": "100-continue"} if expect else None
    with pytest.raises(stackwire.RequestTooLargeError) as caught:
        await client.post("/upload", content=BIG_UPLOAD, headers=headers)
    assert caught.value.body == {"error": "big"}
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


class _AnswersAndHangsUp:
    """A server in a thread of its own (as granian runs apart from the client's loop):
    it reads each request's head, answers at once with ``Connection: close`` and closes
    the socket with the upload unread, as granian does for a 413. The kernel resets the
    connection, and the client's next write of the body fails."""

    def __init__(self, *answer: bytes) -> None:
        self.answer = answer
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.connections += 1
            # (Without it, Nagle can hold a small body back until the reset drops it.)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with conn:
                while True:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        chunk = conn.recv(2**16)
                        if not chunk:
                            break
                        head += chunk
                    if not head.startswith(b"GET "):
                        break
                    # A GET is answered and the connection kept for the next request.
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                for index, piece in enumerate(self.answer):
                    if index:
                        time.sleep(0.005)  # (gunicorn writes the head, then the body)
                    conn.sendall(piece)

    def close(self) -> None:
        self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        self._listener.close()
        self._thread.join(timeout=5)


async def _big_chunks() -> AsyncIterator[bytes]:
    for _ in range(16):
        yield b"x" * 2**20


@pytest.mark.parametrize("reused", [False, True], ids=["new-connection", "reused-connection"])
@pytest.mark.parametrize("split", [False, True], ids=["whole", "head-then-body"])
@pytest.mark.parametrize("body", ["bytes", "iterable"])
async def test_an_error_answered_before_a_reset_upload_is_the_error_not_a_broken_pipe(
    make_client: MakeClient, body: str, split: bool, reused: bool
) -> None:
    # granian: a 413 for a 10 MiB POST, then the socket closed with the upload unread
    # (gunicorn's gthread worker: the head and the body in two writes). httpx reads the
    # answer after a failed write; stackwire raised APIConnectionError (a broken pipe,
    # "Can not write request body", or the 413's body cut short) and retried: the
    # upload was sent three times, to be refused three times. On a connection that had
    # served a GET before (granian, gunicorn), 14 uploads in 16 failed so.
    error = b'{"error":"big"}'
    head = (
        b"HTTP/1.1 413 Too Large\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(error)).encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    server = _AnswersAndHangsUp(head, error) if split else _AnswersAndHangsUp(head + error)
    try:
        client = make_client(server.base_url)
        for _ in range(5):
            if reused:
                await client.get("/before")
            with pytest.raises(stackwire.RequestTooLargeError) as caught:
                await client.post(
                    "/upload", content=BIG_UPLOAD if body == "bytes" else _big_chunks()
                )
            assert caught.value.body == {"error": "big"}
        assert server.connections == 5  # one attempt each: a 413 is not retried
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    finally:
        server.close()
    if body == "iterable":
        # aiohttp abandons the body's generator where the write failed (it never
        # closes it); the garbage collector's finalizer tasks close it, given turns.
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)


async def test_a_success_answered_before_the_upload_leaves_nothing_in_use(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    base, _ = await raw_server(_answers_before_reading(b"200 OK", b'{"ok":true}'))
    client = make_client(base, max_retries=0)
    assert await client.post("/upload", content=BIG_UPLOAD, cast_to=dict) == {"ok": True}
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_a_large_bytes_body_is_sent_whole_on_every_attempt_without_a_warning(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    # aiohttp warns (ResourceWarning) for a bytes body above 1 MiB: an error under
    # ``-W error``, as in this suite and in many an SDK's, so a 2 MiB upload failed.
    seen: list[tuple[dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, headers, body = await read_request(reader)
            seen.append((headers, body))
            status = b"503 Busy" if len(seen) == 1 else b"200 OK"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    base, _ = await raw_server(handler)
    client = make_client(base)
    upload = bytes(range(256)) * (8 * 2**12)  # 2 MiB
    assert await client.post("/upload", content=upload, cast_to=dict) == {}
    assert [body == upload for _, body in seen] == [True, True]  # retried, sent again
    assert [headers.get("content-length") for headers, _ in seen] == [str(len(upload))] * 2
    assert "transfer-encoding" not in seen[0][0]


def _chunking_breaks_after_the_headers(bad_size: bytes, content_type: bytes) -> RawHandler:
    """Sends the head of a chunked 200, then (in a later read of the client's) a good
    chunk and a chunk size that is no hex number; then hangs up."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        await writer.drain()
        await asyncio.sleep(0.02)  # the headers are handed on before the body arrives
        writer.write(b"6\r\ndata: \r\n" + bad_size + b"\r\nabc\r\n0\r\n\r\n")
        await writer.drain()

    return handler


async def _read_buffered(client: stackwire.AsyncClient) -> object:
    return await client.get("/x", cast_to=bytes)


async def _read_sse_stream(client: stackwire.AsyncClient) -> object:
    stream = await client.get("/x", stream=True, cast_to=stackwire.ServerSentEvent)
    async with stream:
        return [event async for event in stream]


async def _read_streaming_response(client: stackwire.AsyncClient) -> object:
    async with client.with_streaming_response.get("/x") as response:
        return [chunk async for chunk in response.iter_bytes()]


@pytest.mark.parametrize("bad_size", [b"-3", b"zz", b"3 3"], ids=["negative", "not-hex", "space"])
@pytest.mark.parametrize(
    "read",
    [_read_buffered, _read_sse_stream, _read_streaming_response],
    ids=["buffered", "sse-stream", "streaming-response"],
)
async def test_chunking_broken_after_the_headers_is_a_connection_error_at_once(
    raw_server: RawStart,
    make_client: MakeClient,
    bad_size: bytes,
    read: Callable[[stackwire.AsyncClient], Awaitable[object]],
) -> None:
    # aiohttp's compiled parser drops such a body without failing it: the reader
    # waited, past Timeout.read, for the whole of Timeout.total, and a stream (whose
    # total bounds only its headers) for ever; never the malformed HTTP it met.
    base, server = await raw_server(
        _chunking_breaks_after_the_headers(bad_size, b"text/event-stream")
    )
    client = make_client(base, max_retries=0, timeout=stackwire.Timeout(total=2, read=0.5))
    with pytest.raises(stackwire.APIConnectionError) as caught:
        async with asyncio.timeout(5):  # (a hang fails the test, as a TimeoutError)
            await read(client)
    assert type(caught.value) is stackwire.APIConnectionError  # not APITimeoutError
    assert "malformed response body" in str(caught.value)
    assert isinstance(caught.value.__cause__, aiohttp.ClientPayloadError)
    assert server.connections == 1
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_chunking_broken_after_the_headers_is_retried_like_a_dropped_body(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    base, server = await raw_server(_chunking_breaks_after_the_headers(b"-3", b"application/json"))
    client = make_client(base, max_retries=2, timeout=stackwire.Timeout(total=1))
    with pytest.raises(stackwire.APIConnectionError) as caught:
        await client.get("/x", cast_to=bytes)
    assert type(caught.value) is stackwire.APIConnectionError
    assert caught.value.retries_taken == 2
    assert server.connections == 3  # none of them reused
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
