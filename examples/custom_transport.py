"""A transport of your own: answers from an in-process function, no socket.

Anything with ``send``, ``close`` and ``pool_stats`` is a `stackwire.Transport`; the
whole stack (headers, retries, decoding, streams) runs above it unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import stackwire


# --8<-- [start:transport]
class InProcessTransport:
    """Serves ``GET /users/{id}`` and an SSE stream at ``/events`` from memory."""

    def __init__(self) -> None:
        self.sent: list[stackwire.Request] = []

    async def send(self, request: stackwire.Request) -> stackwire.Response[Any]:
        self.sent.append(request)  # the final request: headers, query, body
        if request.url.path.endswith("/events"):
            return stackwire.Response(
                request,
                200,
                headers={"Content-Type": "text/event-stream"},
                stream=_events(),  # any async iterable of byte chunks
            )
        user_id = request.url.path.rsplit("/", 1)[-1]
        body = f'{{"id": {user_id}, "name": "Ada"}}'.encode()
        return stackwire.Response(
            request, 200, headers={"Content-Type": "application/json"}, content=body
        )

    async def close(self) -> None:
        pass

    def pool_stats(self) -> stackwire.PoolStats:
        return stackwire.PoolStats(in_use=0, idle=0)


async def _events() -> AsyncIterator[bytes]:
    for word in ("Hello", "world"):
        yield f'data: {{"text": "{word}"}}\n\n'.encode()
    yield b"data: [DONE]\n\n"


# --8<-- [end:transport]


class User(stackwire.Model):
    id: int
    name: str


class Delta(stackwire.Model):
    text: str


async def main() -> None:
    # --8<-- [start:use]
    transport = InProcessTransport()
    async with stackwire.AsyncClient("https://api.example.com/v1", transport=transport) as client:
        user = await client.get("/users/{id}", path_params={"id": 7}, cast_to=User)
        print(user)
        async with await client.get("/events", cast_to=Delta, stream=True) as stream:
            print([delta.text async for delta in stream])
    print(transport.sent[0].headers["X-Retry-Count"], transport.sent[0].url)
    # --8<-- [end:use]


if __name__ == "__main__":
    asyncio.run(main())
