"""``client.with_streaming_response``: a `Response` with its body unread, and the
ways to read it as it arrives: ``iter_bytes``, ``iter_text``, ``iter_lines``.

A scripted raw server sends each body in the pieces a test chooses (with a short
pause between them, so they reach the client apart); the results never depend on
how the pieces are actually split on the way.
"""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import stackwire
from stackwire import Model, PoolStats, ResponseConsumedError, ServerSentEvent
from stackwire.testing import MockResponse, MockTransport
from tests.conftest import RawServer, read_request

MakeClient = Callable[..., stackwire.AsyncClient]
StartRaw = Callable[..., Awaitable[tuple[str, RawServer]]]
Answer = Callable[[asyncio.StreamWriter], Awaitable[None]]


class Item(Model):
    id: int
    name: str


def chunked(*pieces: bytes, content_type: str = "application/octet-stream") -> Answer:
    """A complete chunked body, one HTTP chunk per piece."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for piece in pieces:
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.003)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return write


def stalled(first: bytes) -> Answer:
    """Sends ``first``, then nothing: the body never ends."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%s\r\n" % (len(first), first)
        )
        await writer.drain()
        await asyncio.sleep(30)  # the server is cancelled at teardown

    return write


def sized(status: int, payload: bytes, content_type: str = "application/json") -> Answer:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    return write


async def start(raw_server: StartRaw, **paths: Answer) -> str:
    """A keep-alive raw server answering ``GET /<name>`` with ``paths[name]``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                line, _, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            await paths[line.split()[1].lstrip("/")](writer)

    base, _ = await raw_server(handler)
    return base


async def test_the_body_is_unread_until_iterated(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    pieces = [b"alpha ", b"beta ", b"gamma"]
    client = make_client(await start(raw_server, data=chunked(*pieces)))
    async with client.with_streaming_response.get("/data") as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/octet-stream"
        assert client.pool_stats() == PoolStats(in_use=1, idle=0)  # the body is on the wire
        got = [chunk async for chunk in response.iter_bytes()]
        assert b"".join(got) == b"alpha beta gamma"
        assert all(got)  # never an empty chunk
    assert response.is_closed
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_iter_bytes_with_chunk_size_gives_fixed_size_chunks(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    data = bytes(range(256)) * 41  # 10_496 bytes, sent in uneven pieces
    pieces = [data[:1], data[1:2999], data[2999:3000], data[3000:7777], data[7777:]]
    client = make_client(await start(raw_server, data=chunked(*pieces)))
    async with client.with_streaming_response.get("/data") as response:
        got = [chunk async for chunk in response.iter_bytes(chunk_size=1000)]
    assert [len(chunk) for chunk in got] == [1000] * 10 + [496]
    assert b"".join(got) == data
    assert all(type(chunk) is bytes for chunk in got)
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "8"])
async def test_a_bad_chunk_size_is_refused_before_reading(
    raw_server: StartRaw, make_client: MakeClient, bad: object
) -> None:
    client = make_client(await start(raw_server, data=chunked(b"abc")))
    async with client.with_streaming_response.get("/data") as response:
        with pytest.raises(stackwire.InvalidRequestError, match="chunk_size"):
            response.iter_bytes(chunk_size=bad)  # type: ignore[arg-type]
        assert await response.read() == b"abc"  # the body is still there
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_iter_text_joins_a_character_split_across_chunks(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    text = "prix: 12 € – naïve 🙂 fin"
    raw = text.encode()
    euro = raw.index("€".encode())
    smile = raw.index("🙂".encode())
    pieces = [
        raw[: euro + 1],
        raw[euro + 1 : smile + 2],
        raw[smile + 2 : smile + 3],
        raw[smile + 3 :],
    ]
    client = make_client(
        await start(
            raw_server,
            utf8=chunked(*pieces, content_type="text/plain; charset=utf-8"),
            latin=chunked("café".encode("latin-1"), content_type="text/plain; charset=latin-1"),
        )
    )
    async with client.with_streaming_response.get("/utf8") as response:
        got = [piece async for piece in response.iter_text()]
    assert "".join(got) == text
    assert "\ufffd" not in "".join(got)
    async with client.with_streaming_response.get("/latin") as response:
        assert [piece async for piece in response.iter_text()] == ["café"]


async def test_iter_lines_splits_at_crlf_lf_and_cr_only(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    pieces = [b"one\r", b"\ntwo\nthree\rfour\r\n\r", b"\n", "six\u2028still six\nlast".encode()]
    client = make_client(await start(raw_server, lines=chunked(*pieces)))
    async with client.with_streaming_response.get("/lines") as response:
        got = [line async for line in response.iter_lines()]
    # "\r" then "\n" in the next chunk is one CRLF: no empty line between one and two.
    assert got == ["one", "two", "three", "four", "", "six\u2028still six", "last"]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_read_json_and_parse_work_on_an_unread_body(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    payload = b'{"id": 7, "name": "Ada"}'
    client = make_client(await start(raw_server, item=chunked(payload[:9], payload[9:])))
    async with client.with_streaming_response.get("/item", cast_to=Item) as response:
        assert await response.read() == payload
        assert response.json() == {"id": 7, "name": "Ada"}
        assert await response.parse() == Item(id=7, name="Ada")
        # Read already: iterating serves the kept body.
        assert [chunk async for chunk in response.iter_bytes()] == [payload]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_reading_a_streamed_body_whole_keeps_the_calls_cap(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # parse() and read() of with_streaming_response read the whole body into memory:
    # they had no cap at all, whatever max_response_bytes said.
    payload = b'{"id": 7, "name": "' + b"a" * 300_000 + b'"}'
    pieces = [payload[i : i + 65_536] for i in range(0, len(payload), 65_536)]
    base = await start(raw_server, item=chunked(*pieces))
    client = make_client(base, max_response_bytes=100_000)
    async with client.with_streaming_response.get("/item", cast_to=Item) as response:
        with pytest.raises(stackwire.ResponseTooLargeError, match="max_response_bytes=100000"):
            await response.parse()
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)  # closed mid-body
    async with client.with_streaming_response.get("/item", max_response_bytes=200_000) as again:
        with pytest.raises(stackwire.ResponseTooLargeError, match="max_response_bytes=200000"):
            await again.read()
    # Asked for: None per call, or max_bytes=None to read(), takes any size.
    async with client.with_streaming_response.get(
        "/item", cast_to=Item, max_response_bytes=None
    ) as unlimited:
        assert (await unlimited.parse()).id == 7
    async with client.with_streaming_response.get("/item") as explicit:
        assert len(await explicit.read(max_bytes=None)) == len(payload)
    assert client.pool_stats().in_use == 0


async def test_reading_after_iterating_raises_a_clear_error(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    client = make_client(await start(raw_server, data=chunked(b"abc", b"def")))
    async with client.with_streaming_response.get("/data") as response:
        assert [line async for line in response.iter_lines()] == ["abcdef"]
        with pytest.raises(ResponseConsumedError, match="cannot be read") as info:
            await response.read()
        assert isinstance(info.value, RuntimeError)
        assert isinstance(info.value, stackwire.StackwireError)
        with pytest.raises(ResponseConsumedError):
            await anext(response.iter_bytes())
        with pytest.raises(ResponseConsumedError):
            await response.parse()
        with pytest.raises(ResponseConsumedError, match="it was iterated"):
            _ = response.content
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_leaving_the_block_unread_closes_the_response(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    client = make_client(await start(raw_server, data=stalled(b"x" * 100)))
    async with client.with_streaming_response.get("/data") as response:
        assert not response.is_closed
    assert response.is_closed
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)  # closed, not reused


@pytest.mark.parametrize("answer", ["stalled", "whole"])
async def test_reading_after_leaving_the_block_unread_raises_a_clear_error(
    raw_server: StartRaw, make_client: MakeClient, answer: str
) -> None:
    # Whether the body was still coming (the connection is closed) or had arrived
    # whole: leaving the block gives the body up. Reading it later is a mistake of
    # the caller, never a connection error (which a caller might retry) nor the body.
    client = make_client(
        await start(raw_server, stalled=stalled(b"x" * 100), whole=chunked(b"abc"))
    )
    async with client.with_streaming_response.get(f"/{answer}") as response:
        pass
    with pytest.raises(ResponseConsumedError, match="closed before it was read"):
        await response.read()
    with pytest.raises(ResponseConsumedError):
        await anext(response.iter_bytes())
    with pytest.raises(ResponseConsumedError):
        await response.parse()
    assert client.pool_stats().in_use == 0


async def test_stopping_an_iteration_early_closes_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    client = make_client(await start(raw_server, data=stalled(b"x" * 100)))
    async with client.with_streaming_response.get("/data") as response:
        chunks = response.iter_bytes(chunk_size=10)
        assert await anext(chunks) == b"x" * 10
        await chunks.aclose()  # type: ignore[attr-defined]
        assert client.pool_stats() == PoolStats(in_use=0, idle=0)
        with pytest.raises(ResponseConsumedError):
            await response.read()


async def test_cancelling_a_reader_closes_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    client = make_client(
        await start(raw_server, data=stalled(b"first"), ok=sized(200, b'{"id": 1, "name": "B"}'))
    )
    first = asyncio.Event()

    async def read_all() -> None:
        async with client.with_streaming_response.get("/data") as response:
            async for _ in response.iter_bytes():
                first.set()

    task = asyncio.create_task(read_all())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)
    assert await client.get("/ok", cast_to=Item) == Item(id=1, name="B")


async def test_an_error_status_raises_when_entering(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    client = make_client(await start(raw_server, gone=sized(404, b'{"error": "gone"}')))
    with pytest.raises(stackwire.NotFoundError) as info:
        async with client.with_streaming_response.get("/gone"):
            pytest.fail("the block must not run for an error status")
    assert info.value.body == {"error": "gone"}
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_memory_stays_flat_while_streaming_a_large_body(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    total = 64 * 2**20
    block = b"\xab" * 2**16

    async def large(writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {total}\r\n\r\n".encode()
        )
        for _ in range(total // len(block)):
            writer.write(block)
            await writer.drain()

    client = make_client(await start(raw_server, large=large))
    received = 0
    tracemalloc.start()
    try:
        async with client.with_streaming_response.get("/large") as response:
            chunks: AsyncIterator[bytes] = response.iter_bytes(chunk_size=2**20)
            async for chunk in chunks:
                received += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == total
    # The body is 64 MiB; what was held at any one time stays a small fraction of it.
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


@pytest.mark.parametrize("answer", ["stalled", "whole"])
async def test_going_on_with_an_iteration_after_leaving_the_block_raises_a_clear_error(
    raw_server: StartRaw, make_client: MakeClient, answer: str
) -> None:
    # An iteration begun in the block and taken up after it: the body was given up
    # with the response. It went on with the rest of a body that had arrived whole,
    # and raised a retryable-looking "Connection closed" for one still coming.
    client = make_client(
        await start(raw_server, stalled=stalled(b"first"), whole=chunked(b"first", b"second"))
    )
    async with client.with_streaming_response.get(f"/{answer}") as response:
        chunks = response.iter_bytes()
        assert await anext(chunks) == b"first"
        await asyncio.sleep(0.02)  # the rest of the whole body arrives meanwhile
    with pytest.raises(ResponseConsumedError, match="closed before it was read"):
        await anext(chunks)
    assert client.pool_stats().in_use == 0


async def test_going_on_with_a_typed_stream_after_leaving_the_block_raises_a_clear_error() -> None:
    # Without a socket (the testing kit) the same mistake ended the stream cleanly,
    # two events short.
    transport = MockTransport(lambda request: MockResponse(sse=["1", "2", "3"]))
    async with stackwire.AsyncClient("http://api.test/", transport=transport) as client:
        async with client.with_streaming_response.get(
            "/events", stream=True, cast_to=ServerSentEvent
        ) as response:
            stream = await response.parse()
            assert (await anext(stream)).data == "1"
        with pytest.raises(ResponseConsumedError, match="closed before it was read"):
            await anext(stream)
