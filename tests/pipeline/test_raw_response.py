"""``client.with_raw_response``: the `Response` of a call, over real sockets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any, assert_type

import pytest
from aiohttp import web

import stackwire
from stackwire import Response
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]


class User(stackwire.Model):
    id: int
    name: str


def user_app(*, fail_first: int = 0, headers: dict[str, str] | None = None) -> web.Application:
    failures = [fail_first]

    async def user(request: web.Request) -> web.Response:
        if failures[0]:
            failures[0] -= 1
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response(
            {"id": int(request.match_info["id"]), "name": "Ada"},
            headers={"X-Auth-Seen": request.headers.get("Authorization", ""), **(headers or {})},
        )

    async def missing(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": "nope"}, status=404, headers={"x-request-id": "req_missing"}
        )

    async def old(request: web.Request) -> web.Response:
        raise web.HTTPFound("/users/9?from=old")

    return routes(("GET", "/users/{id}", user), ("GET", "/missing", missing), ("GET", "/old", old))


async def test_raw_response_has_everything_and_parses_once(
    serve: Serve, make_client: MakeClient
) -> None:
    base = await serve(user_app(fail_first=1, headers={"request-id": "req_123"}))
    client = make_client(base, max_retries=2)

    response = await client.with_raw_response.get(
        "/users/{id}", path_params={"id": 7}, cast_to=User, query={"expand": "all"}
    )
    assert_type(response, Response[User])

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.request.method == "GET"
    assert str(response.url) == f"{base}users/7?expand=all"
    assert response.request.url == response.url
    assert response.http_version == "HTTP/1.1"
    assert isinstance(response.elapsed, timedelta)
    assert response.elapsed >= timedelta(0)
    assert response.retries_taken == 1
    assert response.request_id == "req_123"

    user = await response.parse()
    assert_type(user, User)
    assert user == User(id=7, name="Ada")
    assert await response.parse() is user  # cached, not decoded again
    assert client.pool_stats().in_use == 0


async def test_x_request_id_is_the_fallback(serve: Serve, make_client: MakeClient) -> None:
    client = make_client(await serve(user_app(headers={"X-Request-Id": "req_x"})))
    response = await client.with_raw_response.get("/users/1", cast_to=User)
    assert response.request_id == "req_x"
    plain = await client.with_raw_response.request("GET", "/users/1")
    assert await plain.parse() is plain  # no cast_to: the response itself


async def test_request_id_header_names_are_configurable(
    serve: Serve, make_client: MakeClient
) -> None:
    base = await serve(user_app(headers={"X-Amzn-RequestId": "amzn-1", "request-id": "std"}))
    client = make_client(base, request_id_headers=["x-amzn-requestid"])
    response = await client.with_raw_response.get("/users/1", cast_to=User)
    assert response.request_id == "amzn-1"

    with pytest.raises(stackwire.NotFoundError) as info:
        await client.with_options(request_id_headers=("x-request-id",)).get("/missing")
    assert info.value.request_id == "req_missing"

    default = client.with_options(request_id_headers=("request-id", "x-request-id"))
    assert (await default.with_raw_response.get("/users/1")).request_id == "std"
    with pytest.raises(stackwire.InvalidRequestError, match="sequence of header names"):
        make_client(base, request_id_headers="x-request-id")


async def test_views_share_the_clients_session_and_options(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(user_app()), api_key="sk-test-0123456789ab")
    value = await client.get("/users/{id}", path_params={"id": 1}, cast_to=User)
    raw = await client.with_raw_response.get("/users/2", cast_to=User)
    async with client.with_streaming_response.get("/users/3", cast_to=User) as streamed:
        assert await streamed.parse() == User(id=3, name="Ada")
        auth_streamed = streamed.headers["X-Auth-Seen"]

    assert value == User(id=1, name="Ada")
    assert raw.headers["X-Auth-Seen"] == auth_streamed == "Bearer sk-test-0123456789ab"
    # One connection, reused by all three calls: the same session and pool.
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_raw_view_raises_the_typed_error_for_an_error_status(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(user_app()))
    with pytest.raises(stackwire.NotFoundError) as info:
        await client.with_raw_response.get("/missing")
    assert info.value.status_code == 404
    assert info.value.request_id == "req_missing"
    assert info.value.response.request_id == "req_missing"


async def test_raw_response_url_is_the_final_url_after_a_redirect(
    serve: Serve, make_client: MakeClient
) -> None:
    base = await serve(user_app())
    client = make_client(base)
    response: Response[Any] = await client.with_raw_response.get("/old", cast_to=User)
    assert str(response.url) == f"{base}users/9?from=old"
    assert (await response.parse()).id == 9
