"""Every header the client sends by default can be removed with `Omit`, on the client
and per request, and is then absent on the wire (not even sent as aiohttp's own
default), over a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import stackwire
from stackwire._http.content_encoding import accept_encoding
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]

KEY = "sk-test-0123456789abcdef"

# Every header a client with an API key and platform headers sends on a POST, but the
# framing ones (Host, Content-Length, Content-Type of the body).
DEFAULTS = [
    "User-Agent",
    "Accept",
    "Accept-Encoding",
    "Authorization",
    "Idempotency-Key",
    "X-Retry-Count",
    "X-Stackwire-Lang",
    "X-Stackwire-Package-Version",
    "X-Stackwire-OS",
    "X-Stackwire-Arch",
    "X-Stackwire-Runtime",
    "X-Stackwire-Runtime-Version",
]


class Wire:
    """The header names of each request, as the server read them off the socket."""

    def __init__(self) -> None:
        self.requests: list[list[str]] = []

    async def handler(self, request: web.Request) -> web.Response:
        self.requests.append([name.decode("latin-1").lower() for name, _ in request.raw_headers])
        return web.json_response({})

    @property
    def last(self) -> list[str]:
        return self.requests[-1]


async def _client(serve: Serve, make_client: MakeClient, wire: Wire, **options: Any) -> Any:
    base = await serve(routes(("POST", "/echo", wire.handler)))
    return make_client(base, api_key=KEY, platform_headers=True, **options)


async def test_every_default_header_is_sent_without_omit(
    serve: Serve, make_client: MakeClient
) -> None:
    wire = Wire()
    client = await _client(serve, make_client, wire)
    await client.post("/echo", json={})
    assert set(wire.last) >= {name.lower() for name in DEFAULTS}
    assert set(wire.last) - {name.lower() for name in DEFAULTS} == {
        "host",
        "content-length",
        "content-type",
    }


@pytest.mark.parametrize("name", DEFAULTS)
async def test_omit_per_request_removes_each_default_header_from_the_wire(
    serve: Serve, make_client: MakeClient, name: str
) -> None:
    wire = Wire()
    client = await _client(serve, make_client, wire)
    await client.post("/echo", json={}, headers={name: stackwire.Omit()})
    assert name.lower() not in wire.last
    # Only that one is gone.
    assert {n.lower() for n in DEFAULTS} - set(wire.last) == {name.lower()}
    await client.post("/echo", json={})  # the next call has it again
    assert name.lower() in wire.last


@pytest.mark.parametrize("name", DEFAULTS)
async def test_omit_in_client_headers_removes_each_default_header_from_every_call(
    serve: Serve, make_client: MakeClient, name: str
) -> None:
    wire = Wire()
    client = await _client(serve, make_client, wire, headers={name.upper(): stackwire.Omit()})
    await client.post("/echo", json={})
    await client.post("/echo", json={}, headers={"X-Other": "1"})
    derived = client.with_options(max_retries=1)
    await derived.post("/echo", json={})
    for seen in wire.requests:
        assert name.lower() not in seen
        assert {n.lower() for n in DEFAULTS} - set(seen) == {name.lower()}


async def test_accept_encoding_omitted_on_a_borrowed_session_is_absent_too(
    serve: Serve, make_client: MakeClient
) -> None:
    wire = Wire()
    async with aiohttp.ClientSession() as session:
        client = await _client(serve, make_client, wire, session=session)
        await client.post("/echo", json={}, headers={"Accept-Encoding": stackwire.Omit()})
        assert "accept-encoding" not in wire.last
        await client.post("/echo", json={})
        assert "accept-encoding" in wire.last
        await client.close()


async def test_accept_encoding_names_only_codings_the_client_decodes(
    serve: Serve, make_client: MakeClient
) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.getone("Accept-Encoding"))
        return web.json_response({})

    client = make_client(await serve(routes(("GET", "/x", handler))))
    await client.get("/x")
    await client.get("/x", headers={"Accept-Encoding": "identity"})  # the caller's wins
    assert seen == [accept_encoding(), "identity"]
