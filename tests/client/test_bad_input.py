"""Bad input is an `InvalidRequestError` before any byte is sent (issue 11 item 5)."""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

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
    [
        123,
        b"http://api.test/",
        "http://[::1",
        "http://api.test:99999/",
        "http://xn--a.test/",
        # Host names the resolver's IDNA encoding refuses (yarl takes them).
        "http://api..test/",
        f"http://{'a' * 64}.test/",
    ],
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
        # A framing header of the caller's own would desynchronise the connection
        # (a Content-Length shorter than the body leaves the rest as a "next request").
        {"headers": {"Content-Length": "1"}, "content": b"abcdef", "method": "POST"},
        {"headers": {"content-length": "5"}},
        {"headers": {"Transfer-Encoding": "chunked"}},
        {"headers": [("Transfer-Encoding", "chunked")], "content": b"x", "method": "POST"},
        # Two values for one header name (names are case-insensitive): which one wins
        # would be an accident of order.
        {"headers": {"X-A": "1", "x-a": "2"}},
        {"headers": [("X-A", "1"), ("X-A", "2")]},
        {"headers": CIMultiDict([("X-A", "1"), ("x-a", "2")])},
        {"headers": {"X-A": stackwire.Omit(), "x-a": "2"}},
        # NaN and the infinities have no value on the wire (json= refuses them too).
        {"query": {"q": float("nan")}},
        {"query": {"q": float("inf")}},
        {"query": {"q": [1.0, float("-inf")]}},
        {"query": {"q": {"r": float("nan")}}},
        {"data": {"q": float("nan")}, "method": "POST"},
        {"path": "/u/{id}", "path_params": {"id": float("nan")}},
        {"path": "/u/{id}", "path_params": {"id": float("inf")}},
        # A query key is a str (or an int); the repr of anything else is no key.
        {"query": {b"q": "1"}},
        {"query": {None: "1"}},
        {"query": {("a", "b"): "1"}},
        {"query": {True: "1"}},
        {"query": {"q": {b"r": "1"}}},
        {"data": {b"q": "1"}, "method": "POST"},
        # stream= is True or False, like every other flag.
        {"stream": "yes"},
        {"stream": 1},
        {"stream": None},
        # An absolute URL whose host the resolver refuses: a bare UnicodeError came
        # out of the DNS lookup.
        {"path": "http://api..test/x"},
        {"path": f"http://{'a' * 64}.test/x"},
        # An empty idempotency key would make unrelated calls look like one.
        {"idempotency_key": "", "method": "POST"},
        {"idempotency_key": ""},
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


class _NotAMiddleware:
    pass


# One wrong value of every client option: (option, value, what the message names).
BAD_OPTIONS: list[tuple[str, Any]] = [
    ("api_key", 5),
    ("api_key", "sk\r\nInjected: 1"),
    ("api_key_header", 1.5),
    ("api_key_header", "X Key"),
    ("headers", 5),
    ("headers", "Accept: */*"),
    ("headers", [("X-A", "1")]),
    ("headers", {"X-A": 5}),
    ("headers", {"X\nA": "1"}),
    ("headers", {"Content-Length": "0"}),
    ("headers", {"transfer-encoding": "chunked"}),
    ("headers", {"X-A": "1", "x-a": "2"}),
    ("query", 5),
    ("query", "a=1"),
    ("query", {"a": object()}),
    ("query", {"a": "\ud800"}),
    ("query", {"a": float("nan")}),
    ("query", {b"a": "1"}),
    ("timeout", "10"),
    ("timeout", -1),
    ("timeout", 10**400),
    ("timeout", float("nan")),
    ("deadline", "10"),
    ("deadline", -1),
    ("max_retries", -1),
    ("max_retries", 1.5),
    ("max_retries", True),
    ("max_retry_after", -1),
    ("max_retry_after", "60"),
    ("idempotency_header", 5),
    ("idempotency_header", "Idempotency Key"),
    ("retry_count_header", b"X-Retry-Count"),
    ("initial_delay", -0.5),
    ("max_delay", float("inf")),
    ("jitter", "0.25"),
    ("should_retry", True),
    ("query_array_format", "csv"),
    ("query_nested_format", None),
    ("follow_redirects", 1),
    ("max_redirects", -1),
    ("sensitive_headers", None),
    ("sensitive_headers", "X-Token"),
    ("sensitive_headers", ["X Token"]),
    ("max_response_bytes", 0),
    ("max_response_bytes", "64M"),
    ("max_event_bytes", -1),
    ("trust_env", "yes"),
    ("proxy", 5),
    ("proxy", b"http://proxy.test:3128"),
    ("proxy", "ftp://proxy.test"),
    ("proxy", "proxy.test:3128"),
    ("verify", 1),
    ("verify", "/etc/ssl/certs/ca.pem"),
    ("verify", None),
    ("strict", "true"),
    ("platform_headers", 0),
    ("request_id_headers", "x-request-id"),
    ("request_id_headers", [5]),
    ("request_id_headers", ["x request id"]),
    ("user_agent", 12345),
    ("user_agent", "sdk/1\r\n"),
    ("middlewares", None),
    ("middlewares", 5),
    ("middlewares", [_NotAMiddleware()]),
    ("auth", "Bearer sk-123"),
    ("session", "session"),
    ("session", 5),
    ("max_connections", 0),
    ("max_connections", -1),
    ("max_connections", None),
    ("on_retry", 5),
    ("sleep", None),
    ("clock", 5),
    ("random", 0.5),
]


@pytest.mark.parametrize(
    ("option", "value"),
    [pytest.param(*bad, id=f"{bad[0]}-{i}") for i, bad in enumerate(BAD_OPTIONS)],
)
@pytest.mark.parametrize("how", ["AsyncClient", "Client", "with_options"])
async def test_every_bad_client_option_is_named_in_an_invalid_request_error(
    how: str, option: str, value: Any
) -> None:
    async def construct() -> None:
        if how == "AsyncClient":
            stackwire.AsyncClient("http://api.test/", **{option: value})
        elif how == "Client":
            stackwire.Client("http://api.test/", **{option: value}).close()
        else:
            async with stackwire.AsyncClient("http://api.test/") as client:
                client.with_options(**{option: value})

    with pytest.raises(stackwire.InvalidRequestError) as info:
        await construct()
    message = str(info.value)
    # The option (or, for a header value, the header) is named.
    assert option in message or "header" in message or "Timeout" in message, message


@pytest.mark.parametrize(
    ("option", "value"),
    [("set_headers", 5), ("set_headers", ["X-A"]), ("set_query", "a=1"), ("env_prefix", 5)],
)
async def test_with_options_checks_its_own_options_too(option: str, value: Any) -> None:
    async with stackwire.AsyncClient("http://api.test/") as client:
        with pytest.raises(stackwire.InvalidRequestError, match=option):
            client.with_options(**{option: value})


@pytest.mark.parametrize(
    ("password", "options", "headers", "expected"),
    [
        ("pä55", {}, {}, "Basic " + base64.b64encode("user:pä55".encode("latin-1")).decode()),
        ("пароль", {}, {}, "Basic " + base64.b64encode("user:пароль".encode()).decode()),
        ("pw", {"api_key": "sk-test-1234567890"}, {}, "Bearer sk-test-1234567890"),
        ("pw", {}, {"Authorization": "Token abc"}, "Token abc"),
        ("pw", {}, {"Authorization": stackwire.Omit()}, None),
    ],
)
async def test_credentials_in_the_base_url_are_sent_as_basic_auth_unless_another_is_given(
    serve: Serve,
    make_client: MakeClient,
    password: str,
    options: dict[str, Any],
    headers: dict[str, Any],
    expected: str | None,
) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({})

    base = await serve(routes(("GET", "/x", handler)))
    quoted = urllib.parse.quote(password)
    client = make_client(base.replace("http://", f"http://user:{quoted}@"), **options)
    await client.get("/x", headers=headers)
    assert seen == [expected]


@pytest.mark.parametrize(
    "call",
    [
        {"path_params": 1},
        {"path_params": ["id"]},
        {"headers": 5},
        {"headers": "X-A: 1"},
        {"headers": [("X-A",)]},
        {"query": 0},
        {"query": "a=1"},
    ],
)
async def test_call_arguments_of_the_wrong_type_fail_before_any_io(
    serve: Serve, make_client: MakeClient, call: dict[str, Any]
) -> None:
    hits: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({})

    client = make_client(await serve(routes(("GET", "/{tail:.*}", handler))))
    with pytest.raises(stackwire.InvalidRequestError):
        await client.get("/u/{id}", **call)
    assert hits == []


def test_a_list_in_a_list_has_no_comma_form() -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="joins scalars only"):
        stackwire.AsyncClient("http://api.test/", query={"a": [[1]]}, query_array_format="comma")
