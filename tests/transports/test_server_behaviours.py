"""What real servers do that a scripted happy path does not: answering before the
upload is read, refusing a proxy tunnel, and the like. Each case is reproduced with a
raw server on 127.0.0.1, as uvicorn, hypercorn or a forward proxy were seen to do it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

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
