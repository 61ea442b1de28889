"""Bad input is an `InvalidRequestError` before any byte is sent (issue 11 item 5)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "base_url",
    [123, b"http://api.test/", "http://[::1", "http://api.test:99999/", "http://xn--a.test/"],
)
def test_a_bad_base_url_is_an_invalid_request_error(base_url: Any) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        stackwire.AsyncClient(base_url)


@pytest.mark.parametrize(
    "call",
    [
        {"path": "/x\ud800"},
        {"path": "/u/{id}", "path_params": {"id": "\ud800"}},
        {"query": {"q": "\ud800"}},
        {"query": {"\ud800": "1"}},
        {"query": _nested(10_000)},
        {"json": _nested(10_000), "method": "POST"},
        {"json": {"a": "\ud800"}, "method": "POST"},
        {"data": _nested(10_000), "method": "POST"},
    ],
)
async def test_bad_call_input_fails_before_any_io(
    serve: Serve, make_client: MakeClient, call: dict[str, Any]
) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({})

    app = routes(("GET", "/{tail:.*}", handler), ("POST", "/{tail:.*}", handler))
    client = make_client(await serve(app))
    method = call.pop("method", "GET")
    path = call.pop("path", "/x")
    with pytest.raises(stackwire.InvalidRequestError):
        await client.request(method, path, **call)
    assert hits == []
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


@pytest.mark.parametrize(
    "options",
    [
        {"user_agent": 12345},
        {"max_connections": -1},
        {"sensitive_headers": None},
        {"api_key_header": 1.5},
        {"timeout": 10**400},
    ],
)
def test_bad_client_options_fail_at_construction(options: dict[str, Any]) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        stackwire.AsyncClient("http://api.test/", **options)
