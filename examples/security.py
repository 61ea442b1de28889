"""Secrets stay secret: redaction, credentials kept on their origin, size caps.

Run with ``python examples/security.py``: it starts two small servers on 127.0.0.1.
The docs include the parts between the ``--8<--`` markers.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire


def create_api() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        # A careless API: its 401 echoes the credential it was sent.
        sent = request.headers.get("Authorization", "")
        return web.json_response({"error": f"bad credential {sent}"}, status=401)

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 4096, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/v1/echo", echo)
    app.router.add_get("/v1/big", big)
    return app


def create_elsewhere(seen: list[dict[str, str | None]]) -> web.Application:
    async def landing(request: web.Request) -> web.Response:
        seen.append({name: request.headers.get(name) for name in ("Authorization", "X-Session")})
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/landing", landing)
    return app


# --8<-- [start:logging]
async def log_headers(
    request: stackwire.Request, call_next: stackwire.CallNext
) -> stackwire.Response[Any]:
    print("sending", request.redacted_headers())  # sensitive values as ***abcd
    return await call_next(request)


# --8<-- [end:logging]


async def main() -> None:
    seen: list[dict[str, str | None]] = []
    api = TestServer(create_api(), host="127.0.0.1")
    elsewhere = TestServer(create_elsewhere(seen), host="127.0.0.1")
    await api.start_server()
    await elsewhere.start_server()
    base_url = str(api.make_url("/v1"))
    try:
        # --8<-- [start:redaction]
        async with stackwire.AsyncClient(
            base_url,
            api_key="sk-live-0123456789abcdef",
            sensitive_headers=["X-Session"],  # redacted and kept on the origin too
            headers={"X-Session": "session-0123456789"},
            middlewares=[log_headers],
            max_retries=0,
        ) as client:
            print(repr(client))  # the key shows as ***cdef
            try:
                await client.get("/echo")
            except stackwire.AuthenticationError as error:
                print(error)  # the echoed key is redacted in the message too
            # --8<-- [end:redaction]

            # --8<-- [start:origin]
            # an absolute URL on another origin: no Authorization, no X-Session
            await client.get(str(elsewhere.make_url("/landing")))
            print(seen)  # [{'Authorization': None, 'X-Session': None}]
            # --8<-- [end:origin]

            # --8<-- [start:caps]
            try:
                await client.get("/big", max_response_bytes=1024)
            except stackwire.ResponseTooLargeError as error:  # never retried
                print("too large:", str(error).split(";")[0])
            # --8<-- [end:caps]
    finally:
        await api.close()
        await elsewhere.close()


if __name__ == "__main__":
    asyncio.run(main())
