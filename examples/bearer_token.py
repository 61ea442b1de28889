"""`BearerToken`: a token from your own fetch function, refreshed before it expires.

Run with ``python examples/bearer_token.py``: it starts a small API on 127.0.0.1.
The docs include the part between the ``--8<--`` markers.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire

issued: list[str] = []


# --8<-- [start:bearer]
async def get_token() -> stackwire.Token:
    """Ask your identity provider; here, a new token valid for an hour."""
    issued.append(f"token-{len(issued) + 1}")
    return stackwire.Token(issued[-1], expires_at=time.time() + 3600)


# --8<-- [end:bearer]


async def main() -> None:
    async def me(request: web.Request) -> web.Response:
        return web.json_response({"auth": request.headers.get("Authorization")})

    app = web.Application()
    app.router.add_get("/v1/me", me)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base_url = str(server.make_url("/v1"))
    try:
        # --8<-- [start:client]
        client = stackwire.AsyncClient(base_url, auth=stackwire.BearerToken(get_token))
        async with client:
            print(await client.get("/me", cast_to=dict))  # {'auth': 'Bearer token-1'}
            print(await client.get("/me", cast_to=dict))  # the same token, still fresh
            print(client.pipeline.names)  # [..., 'redirects', 'auth']: the innermost stage
        # --8<-- [end:client]
        print("tokens issued:", len(issued))
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
