"""Size caps on buffered bodies (after decompression) and checked decompression,
over real sockets: past a cap a `ResponseTooLargeError` and a closed connection; a
compressed body cut short is a connection error, never a short success."""

from __future__ import annotations

import asyncio
import functools
import gzip
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire._http.content_encoding import PIECE_BYTES
from tests.conftest import Serve, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]
RawServe = Callable[..., Any]

MIB = 2**20


@functools.cache
def zeros_bomb() -> bytes:
    """gzip of 50 MiB of zeros: about 50 KiB on the wire."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(MIB)
    return b"".join(compressor.compress(block) for _ in range(50)) + compressor.flush()


class Peers:
    """The client ports a server saw, one per request (a new port = a new connection)."""

    def __init__(self) -> None:
        self.ports: list[int] = []

    def add(self, request: web.Request) -> None:
        assert request.transport is not None
        self.ports.append(request.transport.get_extra_info("peername")[1])


def compressed(
    body: bytes, peers: Peers, *, encoding: str = "gzip", status: int = 200
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        peers.add(request)
        return web.Response(body=body, status=status, headers={"Content-Encoding": encoding})

    return handler


def plain(size: int, peers: Peers, *, status: int = 200, chunked: bool = False) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        peers.add(request)
        if not chunked:
            return web.Response(body=b"a" * size, status=status)
        response = web.StreamResponse(status=status)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, size, 64 * 1024):
            await response.write(b"a" * min(64 * 1024, size - start))
        await response.write_eof()
        return response

    return handler


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def assert_closed_not_reused(client: stackwire.AsyncClient) -> None:
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_content_length_above_cap_fails_before_reading(
    raw_server: RawServe, make_client: MakeClient
) -> None:
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        # Declares 10 MB and sends none of it: a client that started reading would wait.
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
        await writer.drain()
        await reader.read()  # returns when the client closes the connection
        closed.set()

    base, _server = await raw_server(handler)
    client = make_client(base, max_response_bytes=MIB, timeout=stackwire.Timeout(total=5))
    with pytest.raises(stackwire.ResponseTooLargeError, match="max_response_bytes=1048576") as info:
        await client.get("/big")
    assert info.value.limit == MIB
    assert info.value.request is not None
    await asyncio.wait_for(closed.wait(), 5)
    assert_closed_not_reused(client)


async def test_default_cap_is_64_mib(raw_server: RawServe, make_client: MakeClient) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (64 * MIB + 1))
        await writer.drain()
        await reader.read()

    base, _server = await raw_server(handler)
    client = make_client(base, timeout=stackwire.Timeout(total=5))
    with pytest.raises(stackwire.ResponseTooLargeError) as info:
        await client.get("/big")
    assert info.value.limit == 64 * MIB


async def test_chunked_body_growing_past_cap_fails_and_connection_is_closed(
    serve: Serve, make_client: MakeClient
) -> None:
    peers = Peers()
    app = routes(
        ("GET", "/big", plain(2 * MIB, peers, chunked=True)), ("GET", "/small", plain(10, peers))
    )
    client = make_client(await serve(app), max_response_bytes=MIB)
    with pytest.raises(stackwire.ResponseTooLargeError):
        await client.get("/big")
    assert_closed_not_reused(client)
    # Never retried, and the next call comes on a new connection.
    assert len(peers.ports) == 1
    assert (await client.get("/small")).content == b"a" * 10
    assert peers.ports[0] != peers.ports[1]


async def test_decompression_bomb_stops_at_the_cap(
    raw_server: RawServe, make_client: MakeClient
) -> None:
    bomb = zeros_bomb()
    assert len(bomb) < MIB // 10
    closed = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n")
        writer.write(b"Content-Length: %d\r\n\r\n" % len(bomb))
        # A quarter of the bomb (12.5 MiB of zeros once inflated), then nothing more
        # until the client hangs up: the cap must trip on what came.
        writer.write(bomb[: len(bomb) // 4])
        await writer.drain()
        await reader.read()
        closed.set()

    base, server = await raw_server(handler)
    client = make_client(base, max_response_bytes=MIB, timeout=stackwire.Timeout(total=5))
    with pytest.raises(stackwire.ResponseTooLargeError, match="max_response_bytes"):
        await client.get("/bomb")
    await asyncio.wait_for(closed.wait(), 5)
    assert_closed_not_reused(client)
    assert server.connections == 1


async def test_cap_is_per_request_too(serve: Serve, make_client: MakeClient) -> None:
    peers = Peers()
    bomb = zeros_bomb()
    app = routes(("GET", "/bomb", compressed(bomb, peers)), ("GET", "/body", plain(5000, peers)))
    client = make_client(await serve(app), max_response_bytes=MIB)
    # None lifts the cap for one call: 50 MiB after decompression.
    response = await client.get("/bomb", max_response_bytes=None)
    assert len(response.content) == 50 * MIB
    assert response.content.count(0) == 50 * MIB
    # A smaller cap for one call.
    with pytest.raises(stackwire.ResponseTooLargeError) as info:
        await client.get("/body", max_response_bytes=4999)
    assert info.value.limit == 4999
    assert len((await client.get("/body", max_response_bytes=5000)).content) == 5000


async def test_error_status_bodies_use_the_same_cap(serve: Serve, make_client: MakeClient) -> None:
    peers = Peers()
    app = routes(("GET", "/fail", plain(2 * MIB, peers, status=500, chunked=True)))
    client = make_client(await serve(app), max_response_bytes=MIB)
    with pytest.raises(stackwire.ResponseTooLargeError):
        await client.get("/fail")
    assert len(peers.ports) == 1  # a size-cap failure is never retried
    assert_closed_not_reused(client)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
async def test_bad_cap_is_rejected_before_io(bad: Any, make_client: MakeClient) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="max_response_bytes"):
        make_client("http://127.0.0.1:9/", max_response_bytes=bad)
    client = make_client("http://127.0.0.1:9/")
    with pytest.raises(stackwire.InvalidRequestError, match="max_response_bytes"):
        await client.get("/x", max_response_bytes=bad)


# -- compressed bodies ---------------------------------------------------------------

DATA = b"".join(b"line %d of a compressible JSON-ish body\n" % i for i in range(20000))


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(DATA)),
        ("x-gzip", gzip.compress(DATA)),
        ("gzip", gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:])),  # two members
        # A member longer than one decoded piece (PIECE_BYTES), then another.
        ("gzip", gzip.compress(DATA[:400_000]) + gzip.compress(DATA[400_000:])),
        ("deflate", zlib.compress(DATA)),
        ("deflate", zlib.compress(DATA)[2:-4]),  # raw deflate, as some servers send
    ],
)
async def test_compressed_bodies_decode_exactly(
    serve: Serve, make_client: MakeClient, encoding: str, body: bytes
) -> None:
    peers = Peers()
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Accept-Encoding", ""))
        return await compressed(body, peers, encoding=encoding)(request)

    client = make_client(await serve(routes(("GET", "/data", handler))))
    response = await client.get("/data")
    assert response.content == DATA
    assert seen == ["gzip, deflate, br, zstd"]  # both optional packages are in the dev extra
    async with client.with_streaming_response.get("/data") as streamed:
        chunks = [chunk async for chunk in streamed.iter_raw()]
    assert b"".join(chunks) == DATA
    assert max(len(chunk) for chunk in chunks) <= PIECE_BYTES
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", gzip.compress(DATA)[: len(gzip.compress(DATA)) // 2]),
        ("gzip", gzip.compress(DATA)[:-8]),  # only the CRC and size trailer missing
        ("deflate", zlib.compress(DATA)[:-100]),
    ],
)
async def test_truncated_compressed_body_is_a_connection_error(
    serve: Serve, make_client: MakeClient, encoding: str, body: bytes
) -> None:
    peers = Peers()
    # Content-Length matches the truncated bytes: the framing is fine, only the
    # compressed stream inside ended early.
    client = make_client(
        await serve(routes(("GET", "/data", compressed(body, peers, encoding=encoding)))),
        max_retries=1,
    )
    with pytest.raises(stackwire.APIConnectionError, match="ended before") as info:
        await client.get("/data")
    assert not isinstance(info.value, stackwire.APITimeoutError)
    assert isinstance(info.value.__cause__, ValueError)
    assert len(peers.ports) == 2  # a connection error: retried like one
    assert client.pool_stats().in_use == 0

    async with client.with_streaming_response.get("/data", max_retries=0) as streamed:
        with pytest.raises(stackwire.APIConnectionError, match="ended before"):
            async for _ in streamed.iter_raw():
                pass
    assert client.pool_stats().in_use == 0


@pytest.mark.parametrize("after", [b"\r\n", b"garbage", b"\x1f", b"\x1f\x8bXX", b"\0\0\n"])
async def test_bytes_after_a_whole_gzip_member_are_ignored(
    serve: Serve, make_client: MakeClient, after: bytes
) -> None:
    # Some servers end a gzip body with a newline; browsers, curl and aiohttp's own
    # decoder ignore what follows a complete, checked member. Was: "the gzip body is
    # corrupt (incorrect header check)".
    peers = Peers()
    client = make_client(
        await serve(routes(("GET", "/data", compressed(gzip.compress(DATA) + after, peers)))),
        max_retries=0,
    )
    assert (await client.get("/data")).content == DATA
    async with client.with_streaming_response.get("/data") as streamed:
        assert b"".join([chunk async for chunk in streamed.iter_raw()]) == DATA
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_a_later_gzip_member_cut_short_is_still_a_connection_error(
    serve: Serve, make_client: MakeClient
) -> None:
    peers = Peers()
    body = gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:])[:-8]
    client = make_client(
        await serve(routes(("GET", "/data", compressed(body, peers)))), max_retries=0
    )
    with pytest.raises(stackwire.APIConnectionError, match="ended before"):
        await client.get("/data")
    assert client.pool_stats().in_use == 0


async def test_corrupt_gzip_body_is_a_connection_error(
    serve: Serve, make_client: MakeClient
) -> None:
    peers = Peers()
    body = bytearray(gzip.compress(DATA))
    body[len(body) // 2 : len(body) // 2 + 64] = bytes(64)
    client = make_client(
        await serve(routes(("GET", "/data", compressed(bytes(body), peers)))), max_retries=0
    )
    with pytest.raises(stackwire.APIConnectionError, match="gzip body"):
        await client.get("/data")
    assert client.pool_stats().in_use == 0


async def test_unrequested_encoding_is_passed_through(
    serve: Serve, make_client: MakeClient
) -> None:
    peers = Peers()
    body = b"\x8b\x02\x80hi\x03"
    app = routes(("GET", "/made-up", compressed(body, peers, encoding="x-made-up")))
    client = make_client(await serve(app))
    response = await client.get("/made-up", headers={"Accept-Encoding": "x-made-up"})
    assert response.content == body  # a coding the caller asked for: the bytes as sent
