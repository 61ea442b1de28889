"""No secret in a repr a user or a logging middleware would print (issue 11 item 4):
a password in the base URL, and credentials in ``request.headers``."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]

PASSWORD = "hunter2-password-canary"
KEY = "sk-live-key-canary-0123456789wxyz"
TOKEN = "per-call-token-canary-98765abcd"


class Wire:
    """The credentials each request carried on the wire."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []

    async def handler(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(dict(request.headers))
        if request.path == "/events":
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b'data: {"n": 1}\n\n')
            await response.write_eof()
            return response
        return web.json_response({})


def _app(wire: Wire) -> web.Application:
    return routes(("GET", "/x", wire.handler), ("GET", "/events", wire.handler))


class Keep:
    """A middleware keeping every request it sees, as a logging middleware would."""

    def __init__(self) -> None:
        self.requests: list[stackwire.Request] = []

    async def __call__(self, request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        self.requests.append(request)
        return await call_next(request)


async def test_a_password_in_the_base_url_shows_in_no_repr(
    serve: Serve, make_client: MakeClient
) -> None:
    base = await serve(_app(Wire()))
    with_password = base.replace("http://", f"http://user:{PASSWORD}@")
    keep = Keep()
    client = make_client(with_password, middlewares=[keep])
    response = await client.with_raw_response.get("/x")
    stream = await client.get("/events", stream=True)
    try:
        shown = [
            repr(client),
            repr(client.with_options(max_retries=1)),
            repr(response),
            repr(response.request),
            repr(keep.requests[0]),
            repr(stream),
        ]
    finally:
        await stream.close()
    for text in shown:
        assert PASSWORD not in text, text
        assert "user:***@127.0.0.1" in text, text
    # The password is still the client's (and the request's) to use.
    assert client.base_url.password == PASSWORD


async def test_a_secret_query_value_shows_in_no_repr(serve: Serve, make_client: MakeClient) -> None:
    base = await serve(_app(Wire()))
    client = make_client(base)
    query = {"api_key": KEY, "limit": 5}
    response = await client.with_raw_response.get("/x", query=query)
    stream = await client.get("/events", stream=True, query={"token": TOKEN})
    try:
        shown = [repr(response), repr(response.request), repr(stream)]
    finally:
        await stream.close()
    for text in shown:
        assert KEY not in text, text
        assert TOKEN not in text, text
    assert shown[0].endswith("/x?api_key=[redacted]&limit=5>")
    assert response.request.url.query["api_key"] == KEY  # still the request's to send


def test_a_password_in_the_base_url_shows_not_in_the_blocking_clients_repr() -> None:
    with stackwire.Client(f"http://user:{PASSWORD}@127.0.0.1:9/") as client:
        assert PASSWORD not in repr(client)
        assert repr(client) == "Client('http://user:***@127.0.0.1:9/')"


@pytest.mark.parametrize(
    ("options", "headers", "name", "sent"),
    [
        pytest.param({"api_key": KEY}, {}, "Authorization", f"Bearer {KEY}", id="api_key"),
        pytest.param(
            {"api_key": KEY, "api_key_header": "X-Api-Key"}, {}, "X-Api-Key", KEY, id="key-header"
        ),
        pytest.param(
            {}, {"Authorization": f"Bearer {TOKEN}"}, "Authorization", f"Bearer {TOKEN}", id="call"
        ),
        pytest.param({}, {"Cookie": f"session={TOKEN}"}, "Cookie", f"session={TOKEN}", id="cookie"),
        pytest.param(
            {"sensitive_headers": ["X-Session"]}, {"X-Session": TOKEN}, "X-Session", TOKEN, id="own"
        ),
        pytest.param(
            {"headers": {"Authorization": f"Bearer {TOKEN}"}},
            {},
            "Authorization",
            f"Bearer {TOKEN}",
            id="client-headers",
        ),
        pytest.param(
            {"auth": stackwire.BearerToken(lambda: stackwire.Token(TOKEN))},
            {},
            "Authorization",
            f"Bearer {TOKEN}",
            id="bearer-auth",
        ),
        pytest.param(
            {"auth": stackwire.BasicAuth("user", PASSWORD)},
            {},
            "Authorization",
            "Basic " + base64.b64encode(f"user:{PASSWORD}".encode()).decode(),
            id="basic-auth",
        ),
    ],
)
async def test_request_headers_repr_redacts_every_credential(
    serve: Serve,
    make_client: MakeClient,
    options: dict[str, Any],
    headers: dict[str, str],
    name: str,
    sent: str,
) -> None:
    wire = Wire()
    keep = Keep()
    client = make_client(await serve(_app(wire)), middlewares=[keep], **options)
    response = await client.with_raw_response.get("/x", headers=headers)
    # What a middleware saw, and what the transport sent (auth signs below middlewares=).
    request = response.request
    secret = sent.partition(" ")[2] if sent.startswith(("Bearer ", "Basic ")) else sent
    shown = [repr(request.headers), repr(dict(request.headers)), repr(keep.requests[0].headers)]
    for text in shown if "auth" not in options else shown[:2]:
        assert secret not in text, text
        if sent.startswith("Basic "):
            # base64 of user:password ends with the password's end: no tail is shown.
            assert secret[-4:] not in text, text
            assert "'Basic ***'" in text, text
        else:
            assert secret[-4:] in text  # redacted to its last 4 characters, as X-Api-Key is
    if sent.startswith("Bearer "):
        assert f"'Bearer ***{secret[-4:]}'" in repr(request.headers)
    # The whole value went out.
    assert request.headers[name] == sent
    assert wire.seen[0][name] == sent


async def test_a_password_in_the_base_url_shows_in_no_error_message(
    raw_server: Callable[..., Any],
) -> None:
    # A server that takes the request and never answers: the deadline ends the call.
    async def silent(reader: Any, writer: Any) -> None:
        await reader.read(65536)
        await asyncio.sleep(10)

    base, _ = await raw_server(silent)
    with_password = base.replace("http://", f"http://ada:{PASSWORD}@")
    async with stackwire.AsyncClient(with_password, deadline=0.05, max_retries=0) as client:
        with pytest.raises(stackwire.APITimeoutError) as info:
            await client.get("/slow")
    shown = [str(info.value), repr(info.value), info.value.message]
    assert "Deadline" in shown[0]
    assert not [text for text in shown if PASSWORD in text]
