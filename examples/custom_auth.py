"""Your own `Auth`: a token from an identity library, refreshed on a 401.

Run with ``python examples/custom_auth.py``: it starts a local API on 127.0.0.1.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.test_utils import TestServer

import stackwire


class IdentityAuth(stackwire.Auth):
    """Asks a (stand-in) identity library for a token; forgets it after a 401."""

    def __init__(self) -> None:
        self._token: str | None = None
        self.issued = 0

    async def _get_token(self) -> str:  # e.g. await credential.get_token(scope)
        self.issued += 1
        return f"id-token-{self.issued}"

    async def authenticate(self, request: stackwire.Request, *, now: float) -> stackwire.Request:
        if self._token is None:
            self._token = await self._get_token()
        return request.with_headers({"Authorization": f"Bearer {self._token}"})

    async def on_unauthorized(self, request: stackwire.Request, *, now: float) -> bool:
        self._token = None  # the next authenticate() gets a fresh one
        return True  # repeat the attempt once


async def main() -> None:
    async def whoami(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer id-token-2":
            return web.json_response({"error": "expired"}, status=401)
        return web.json_response({"user": "alice"})

    app = web.Application()
    app.router.add_get("/me", whoami)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        auth = IdentityAuth()
        async with stackwire.AsyncClient(str(server.make_url("/")), auth=auth) as client:
            print(await client.get("/me", cast_to=dict), "tokens issued:", auth.issued)
    finally:
        await server.close()


if __name__ == "__main__":
    asyncio.run(main())
