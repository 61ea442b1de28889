"""End-to-end basics of `AsyncClient` over a real socket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

import stackwire
from tests.conftest import Serve, routes


class User(stackwire.Model):
    id: int
    name: str


async def test_get_decodes_into_model_and_releases_connection(
    serve: Serve, make_client: Callable[..., stackwire.AsyncClient]
) -> None:
    async def user(request: web.Request) -> web.Response:
        return web.json_response({"id": int(request.match_info["id"]), "name": "Ada", "new": 1})

    base = await serve(routes(("GET", "/v1/users/{id}", user)))
    client = make_client(base + "v1")
    got = await client.get("/users/{id}", path_params={"id": 3}, cast_to=User)
    assert got == User(id=3, name="Ada")
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_response_without_cast_to(serve: Serve, make_client: Callable[..., Any]) -> None:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hi", headers={"x-request-id": "req_1"})

    client = make_client(await serve(routes(("GET", "/hello", hello))))
    response = await client.get("/hello")
    assert isinstance(response, stackwire.Response)
    assert response.status_code == 200
    assert response.content == b"hi"
    assert response.request_id == "req_1"
    assert response.retries_taken == 0
