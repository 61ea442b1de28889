"""What real servers do that a scripted happy path does not: answering before the
upload is read, refusing a proxy tunnel, and the like. Each case is reproduced with a
raw server on 127.0.0.1, as uvicorn, hypercorn or a forward proxy were seen to do it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import stackwire
from tests.conftest import RawHandler, RawServer, read_request

MakeClient = Callable[..., stackwire.AsyncClient]
RawStart = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]


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
