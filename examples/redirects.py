"""Redirects: followed by stackwire, credentials kept on their origin.

Run with ``python examples/redirects.py``: it starts two local servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire


async def main() -> None:
    seen: list[str | None] = []

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location=str(other.make_url("/landing")))

    async def landing(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"landed": True})

    api = web.Application()
    api.router.add_post("/v1/upload", moved)
    elsewhere = web.Application()
    elsewhere.router.add_post("/landing", landing)
    server, other = TestServer(api, host="127.0.0.1"), TestServer(elsewhere, host="127.0.0.1")
    await server.start_server()
    await other.start_server()
    try:
        # --8<-- [start:redirects]
        async with stackwire.AsyncClient(
            str(server.make_url("/v1/")), api_key="sk-example-1234567890"
        ) as client:
            response = await client.post("/upload", json={"name": "report.pdf"})
            print(response.json(), response.url.path)  # {'landed': True} /landing
            print(seen)  # [None]: the key never reached the other origin

            try:
                await client.post("/upload", json={}, follow_redirects=False)
            except stackwire.APIStatusError as error:
                print(error.status_code, error.response.headers["Location"])  # 307 ...
        # --8<-- [end:redirects]
    finally:
        await server.close()
        await other.close()


asyncio.run(main())
