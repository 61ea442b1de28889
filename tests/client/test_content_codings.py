"""``br`` and ``zstd`` bodies, decoded when their optional package is installed, with
the same caps as gzip; a coding the client cannot decode is an error naming it
(issue 11 item 7), over real sockets on 127.0.0.1."""

from __future__ import annotations

import functools
import gzip
import sys
import tracemalloc
import types
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import brotli
import msgspec
import pytest
import zstandard
from aiohttp import web
from multidict import CIMultiDict

import stackwire
from stackwire._http.content_encoding import PIECE_BYTES, accept_encoding
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]

MIB = 2**20
DATA = msgspec.json.encode({"items": [{"id": i, "name": f"item-{i}"} for i in range(20_000)]})


def br(data: bytes) -> bytes:
    return bytes(brotli.compress(data, quality=5))


def zstd(data: bytes) -> bytes:
    return bytes(zstandard.ZstdCompressor(level=3).compress(data))


COMPRESS = {"br": br, "zstd": zstd}


@functools.cache
def bomb(coding: str) -> bytes:
    """200 MiB of zeros, a few KiB on the wire."""
    block = bytes(MIB)
    if coding == "br":
        compressor = brotli.Compressor(quality=5)
        out: bytes = b"".join(compressor.process(block) for _ in range(200)) + compressor.finish()
        return out
    stream = zstandard.ZstdCompressor(level=3).compressobj()
    return b"".join(stream.compress(block) for _ in range(200)) + stream.flush()


class Server:
    """Serves one body with a Content-Encoding; records each Accept-Encoding."""

    def __init__(self, body: bytes, coding: str, content_type: str = "application/json") -> None:
        self.body = body
        self.coding = coding
        self.content_type = content_type
        self.accept_encodings: list[str | None] = []

    async def handler(self, request: web.Request) -> web.Response:
        self.accept_encodings.append(request.headers.get("Accept-Encoding"))
        return web.Response(
            body=self.body,
            headers={"Content-Encoding": self.coding, "Content-Type": self.content_type},
        )

    async def start(self, serve: Serve) -> str:
        return await serve(routes(("GET", "/data", self.handler)))


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_br_and_zstd_bodies_decode_and_are_asked_for(
    serve: Serve, make_client: MakeClient, coding: str
) -> None:
    server = Server(COMPRESS[coding](DATA), coding)
    client = make_client(await server.start(serve))
    assert await client.get("/data", cast_to=dict[str, Any]) == msgspec.json.decode(DATA)
    response = await client.get("/data")
    assert response.content == DATA
    async with client.with_streaming_response.get("/data") as streamed:
        chunks = [chunk async for chunk in streamed.iter_raw()]
    assert b"".join(chunks) == DATA
    assert max(len(chunk) for chunk in chunks) <= PIECE_BYTES
    assert server.accept_encodings == ["gzip, deflate, br, zstd"] * 3
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_several_zstd_frames_in_one_body_decode(
    serve: Serve, make_client: MakeClient
) -> None:
    server = Server(zstd(DATA[:1000]) + zstd(DATA[1000:]), "zstd")
    client = make_client(await server.start(serve))
    assert (await client.get("/data")).content == DATA


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_a_compressed_event_stream_decodes(
    serve: Serve, make_client: MakeClient, coding: str
) -> None:
    events = b"".join(b'data: {"n": %d}\n\n' % n for n in range(100))
    server = Server(COMPRESS[coding](events), coding, "text/event-stream")
    client = make_client(await server.start(serve))
    stream = await client.get("/data", cast_to=dict[str, int], stream=True)
    assert [event async for event in stream] == [{"n": n} for n in range(100)]


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_truncated_br_and_zstd_bodies_are_connection_errors(
    serve: Serve, make_client: MakeClient, coding: str
) -> None:
    body = COMPRESS[coding](DATA)
    server = Server(body[: len(body) // 2], coding)
    client = make_client(await server.start(serve), max_retries=0)
    with pytest.raises(stackwire.APIConnectionError, match=f"the {coding} body ended before"):
        await client.get("/data")
    corrupt = bytearray(body)
    corrupt[10:60] = bytes(50)
    server.body = bytes(corrupt)
    with pytest.raises(stackwire.APIConnectionError, match=f"the {coding} body is corrupt"):
        await client.get("/data")
    assert client.pool_stats().in_use == 0


@pytest.mark.parametrize("coding", ["br", "zstd"])
async def test_a_br_or_zstd_bomb_stops_at_the_cap(
    serve: Serve, make_client: MakeClient, coding: str
) -> None:
    server = Server(bomb(coding), coding)
    assert len(server.body) < 10_000
    client = make_client(await server.start(serve))
    with pytest.raises(stackwire.ResponseTooLargeError, match="max_response_bytes=67108864"):
        await client.get("/data")  # the default cap, 64 MiB
    assert client.pool_stats().in_use == 0

    tracemalloc.start()
    try:
        with pytest.raises(stackwire.ResponseTooLargeError):
            await client.get("/data", max_response_bytes=4 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB  # the cap and a few pieces, never the 200 MiB


@pytest.mark.parametrize("coding", ["x-made-up", "gzip, x-made-up", "compress"])
async def test_a_coding_the_client_cannot_decode_is_an_error_naming_it(
    serve: Serve, make_client: MakeClient, coding: str
) -> None:
    server = Server(b"\x8b\x02\x80not json\x03", coding, "application/json")
    client = make_client(await server.start(serve))
    message = f"Content-Encoding '{coding}' is not supported"
    with pytest.raises(stackwire.APIResponseValidationError, match=message) as info:
        await client.get("/data", cast_to=dict[str, Any])
    assert "malformed" not in str(info.value)
    response = await client.get("/data")
    with pytest.raises(stackwire.APIResponseValidationError, match=message):
        response.json()
    server.content_type = "text/event-stream"
    with pytest.raises(stackwire.APIResponseValidationError, match=message):
        await client.get("/data", cast_to=dict[str, Any], stream=True)
    assert client.pool_stats().in_use == 0


async def test_two_content_encoding_headers_are_one_list_of_codings(
    serve: Serve, make_client: MakeClient
) -> None:
    # gzip, then br: two headers say what one "gzip, br" says (RFC 9110 section 8.4);
    # reading it as a gzip body alone would undo only one of the codings.
    body = br(gzip.compress(b'{"a": 1}'))

    async def handler(request: web.Request) -> web.Response:
        headers = CIMultiDict([("Content-Encoding", "gzip"), ("Content-Encoding", "br")])
        return web.Response(body=body, headers=headers, content_type="application/json")

    client = make_client(await serve(routes(("GET", "/data", handler))))
    assert await client.get("/data", cast_to=dict[str, Any]) == {"a": 1}
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip, br", br(gzip.compress(DATA))),
        ("br, gzip", gzip.compress(br(DATA))),
        ("gzip, gzip", gzip.compress(gzip.compress(DATA))),
        ("deflate, zstd", zstd(zlib.compress(DATA))),
        ("GZIP , identity", gzip.compress(DATA)),
        ("gzip,", gzip.compress(DATA)),
        ("identity, identity", DATA),
    ],
)
async def test_a_list_of_codings_is_undone_in_reverse_order(
    serve: Serve, make_client: MakeClient, coding: str, body: bytes
) -> None:
    # Was: "Content-Encoding 'gzip, br' is not supported", for codings it decodes one
    # by one.
    server = Server(body, coding)
    client = make_client(await server.start(serve))
    assert (await client.get("/data")).content == DATA
    assert await client.get("/data", cast_to=dict[str, Any]) == msgspec.json.decode(DATA)
    async with client.with_streaming_response.get("/data") as streamed:
        chunks = [chunk async for chunk in streamed.iter_raw()]
    assert b"".join(chunks) == DATA
    assert max(len(chunk) for chunk in chunks) <= PIECE_BYTES
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_a_bomb_under_two_codings_stops_at_the_cap(
    serve: Serve, make_client: MakeClient
) -> None:
    # 200 MiB of zeros, br'd then gzipped: each stage is fed one piece at a time.
    server = Server(gzip.compress(bomb("br")), "br, gzip")
    client = make_client(await server.start(serve))
    tracemalloc.start()
    try:
        with pytest.raises(stackwire.ResponseTooLargeError):
            await client.get("/data", max_response_bytes=4 * MIB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * MIB
    assert client.pool_stats().in_use == 0


async def test_a_corrupt_stage_in_a_list_of_codings_is_a_connection_error(
    serve: Serve, make_client: MakeClient
) -> None:
    server = Server(br(b"this is not gzip data at all"), "gzip, br")
    client = make_client(await server.start(serve), max_retries=0)
    with pytest.raises(stackwire.APIConnectionError, match="the gzip body is corrupt"):
        await client.get("/data")
    assert client.pool_stats().in_use == 0


@pytest.fixture(autouse=True)
def _look_for_packages_again() -> Iterator[None]:
    """What is installed is looked up once per process; these tests change it."""
    accept_encoding.cache_clear()
    yield
    accept_encoding.cache_clear()


def _without(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make importing these modules fail, as if they were not installed."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    accept_encoding.cache_clear()


@pytest.mark.parametrize(
    ("coding", "modules", "package", "extra"),
    [
        ("br", ("brotli", "brotlicffi"), "'brotli' (1.2 or newer)", "brotli"),
        ("zstd", ("zstandard",), "'zstandard'", "zstd"),
    ],
)
async def test_without_the_package_a_coding_is_not_asked_for_and_names_what_to_install(
    serve: Serve,
    make_client: MakeClient,
    monkeypatch: pytest.MonkeyPatch,
    coding: str,
    modules: tuple[str, ...],
    package: str,
    extra: str,
) -> None:
    body = COMPRESS[coding](DATA)
    _without(monkeypatch, *modules)
    other = "zstd" if coding == "br" else "br"
    assert accept_encoding() == f"gzip, deflate, {other}"
    server = Server(body, coding)
    client = make_client(await server.start(serve))
    with pytest.raises(stackwire.APIResponseValidationError) as info:
        await client.get("/data", cast_to=dict[str, Any])
    assert str(info.value) == (
        f"the response's Content-Encoding '{coding}' cannot be decoded: install the "
        f"{package} package (pip install 'stackwire[{extra}]')"
    )
    assert server.accept_encodings == [f"gzip, deflate, {other}"]
    assert (await client.get("/data")).content == body  # read() hands it on as sent

    _without(monkeypatch, "brotli", "brotlicffi", "zstandard")
    server.accept_encodings.clear()
    await make_client(await server.start(serve)).get("/data")
    assert server.accept_encodings == ["gzip, deflate"]


async def test_a_brotli_without_bounded_output_is_not_used(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    class OldDecompressor:  # brotli before 1.2: no output limit, so no bomb cap
        def process(self, data: bytes) -> bytes:
            raise AssertionError("an unbounded decoder was used")

    monkeypatch.setitem(sys.modules, "brotli", types.SimpleNamespace(Decompressor=OldDecompressor))
    _without(monkeypatch, "brotlicffi")
    assert accept_encoding() == "gzip, deflate, zstd"
    server = Server(br(DATA), "br")
    client = make_client(await server.start(serve))
    with pytest.raises(stackwire.APIResponseValidationError, match=r"'brotli' \(1.2 or newer\)"):
        await client.get("/data", cast_to=dict[str, Any])
