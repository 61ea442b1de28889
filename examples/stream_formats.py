"""Streams as APIs send them: ``[DONE]``, JSON Lines labelled ``application/json``,
an incomplete stream, an error event.

Run with ``python examples/stream_formats.py``: it starts a small API on 127.0.0.1.
The docs include the parts between the ``--8<--`` markers.
"""

from __future__ import annotations

import asyncio
import json

from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire


class Chunk(stackwire.Model):
    delta: str


class Record(stackwire.Model):
    id: int


def create_app() -> web.Application:
    async def stream(
        request: web.Request, content_type: str, lines: list[str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        for line in lines:
            await response.write(line.encode())
        await response.write_eof()
        return response

    async def completions(request: web.Request) -> web.StreamResponse:
        # The OpenAI convention: JSON chunks, then `data: [DONE]`, which is not JSON.
        chunks = [f"data: {json.dumps({'delta': word})}\n\n" for word in ("Hel", "lo")]
        return await stream(request, "text/event-stream", [*chunks, "data: [DONE]\n\n"])

    async def export(request: web.Request) -> web.StreamResponse:
        # JSON Lines, but labelled application/json (as many APIs do)
        return await stream(request, "application/json", [f'{{"id": {i}}}\n' for i in range(3)])

    async def cut_short(request: web.Request) -> web.StreamResponse:
        # named events, and the connection ends before the `message_stop` event
        lines = ['event: delta\ndata: {"delta": "partial"}\n\n']
        return await stream(request, "text/event-stream", lines)

    async def failing(request: web.Request) -> web.StreamResponse:
        lines = ['data: {"delta": "a"}\n\n', 'event: error\ndata: {"message": "overloaded"}\n\n']
        return await stream(request, "text/event-stream", lines)

    app = web.Application()
    app.router.add_post("/v1/completions", completions)
    app.router.add_get("/v1/export", export)
    app.router.add_get("/v1/cut", cut_short)
    app.router.add_get("/v1/failing", failing)
    return app


async def main() -> None:
    server = TestServer(create_app(), host="127.0.0.1")
    await server.start_server()
    try:
        async with stackwire.AsyncClient(str(server.make_url("/v1"))) as client:
            # --8<-- [start:done]
            # `data: [DONE]` ends a typed stream; it is not decoded into a Chunk
            async with await client.post(
                "/completions", json={"stream": True}, cast_to=Chunk, stream=True
            ) as chunks:
                print("".join([chunk.delta async for chunk in chunks]))  # Hello
            # --8<-- [end:done]

            # --8<-- [start:stream_format]
            # the Content-Type says application/json; stream_format= says how to read it
            async with await client.get(
                "/export", cast_to=Record, stream=True, stream_format="jsonl"
            ) as records:
                print([record.id async for record in records])  # [0, 1, 2]

            try:  # without stream_format=, a type that is neither SSE nor JSON Lines
                await client.get("/export", cast_to=Record, stream=True)
            except stackwire.APIResponseValidationError as error:
                print("refused:", str(error).split(":")[0])
            # --8<-- [end:stream_format]

            # --8<-- [start:incomplete]
            # stream_end_event: a stream that ends before that event is incomplete
            async with await client.get(
                "/cut", cast_to=Chunk, stream=True, stream_end_event="message_stop"
            ) as partial:
                try:
                    async for chunk in partial:
                        print("got:", chunk.delta)
                except stackwire.StreamError as error:
                    print("incomplete:", type(error).__name__)

            # an event named `error` raises StreamError, its data as `body`
            async with await client.get("/failing", cast_to=Chunk, stream=True) as failing:
                try:
                    async for chunk in failing:
                        print("got:", chunk.delta)
                except stackwire.StreamError as error:
                    print("error event:", error.body)  # {'message': 'overloaded'}
            # --8<-- [end:incomplete]
            print("in use at the end:", client.pool_stats().in_use)
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
