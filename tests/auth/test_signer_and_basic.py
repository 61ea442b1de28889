"""`Signer` sees what goes on the wire (DESIGN §9: every header but Host,
Content-Length/Transfer-Encoding and Accept-Encoding, and the body bytes), and
`BasicAuth` keeps to RFC 7617; over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import BasicAuth, Signer
from tests.conftest import Serve

MakeClient = Callable[..., stackwire.AsyncClient]

# What the transport adds, which a signer cannot see (DESIGN §9).
TRANSPORT_HEADERS = {"host", "content-length", "transfer-encoding", "accept-encoding"}


class Recorder(Signer):
    """Records the headers and body each signing saw, and adds a signature header."""

    def __init__(self) -> None:
        self.signed: list[tuple[dict[str, str], bytes | None]] = []

    def sign(self, request: stackwire.Request) -> stackwire.Request:
        body = request.body if isinstance(request.body, bytes) or request.body is None else b"?"
        self.signed.append(({k.lower(): v for k, v in request.headers.items()}, body))
        return request.with_headers({"X-Signature": "sig"})


async def echo_server(serve: Serve) -> tuple[str, list[tuple[dict[str, str], bytes]]]:
    received: list[tuple[dict[str, str], bytes]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return await serve(app), received


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("POST", {"content": b"raw bytes"}),
        ("PUT", {"content": b""}),
        ("POST", {}),  # no body at all
        ("PATCH", {}),
        ("POST", {"json": {"a": 1}}),
        ("POST", {"data": {"q": "x y"}}),
        ("POST", {"files": {"f": ("a.txt", b"hello")}}),
    ],
)
async def test_signer_sees_every_header_the_server_gets_but_the_transports(
    serve: Serve, make_client: MakeClient, method: str, body: dict[str, Any]
) -> None:
    base, received = await echo_server(serve)
    signer = Recorder()
    client = make_client(base, auth=signer)
    await client.request(method, "/x", **body)
    ((signed, signed_body),) = signer.signed
    ((got, got_body),) = received
    # aiohttp added a Content-Type (application/octet-stream) the signer never saw.
    assert set(got) - TRANSPORT_HEADERS == (set(signed) - TRANSPORT_HEADERS) | {"x-signature"}
    for name, value in signed.items():
        assert got[name] == value
    assert (signed_body or b"") == got_body


async def test_an_async_sign_is_awaited(serve: Serve, make_client: MakeClient) -> None:
    base, received = await echo_server(serve)

    class FetchesItsKey(Signer):
        async def sign(self, request: stackwire.Request) -> stackwire.Request:
            await asyncio.sleep(0)  # (a key from a vault)
            return request.with_headers({"X-Signature": "async-sig"})

    client = make_client(base, auth=FetchesItsKey())
    await client.get("/x")
    assert received[0][0]["x-signature"] == "async-sig"


@pytest.mark.parametrize(
    ("username", "password", "field"),
    [
        ("a\r\nX-Injected", "pw", "username"),
        ("alice", "pw\x00", "password"),
        ("al\tice", "pw", "username"),
        ("alice", "new\nline-secret", "password"),
    ],
)
def test_basic_auth_refuses_control_characters_without_quoting_them(
    username: str, password: str, field: str
) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match=f"{field} must not contain") as info:
        BasicAuth(username, password)
    assert password not in str(info.value)


async def test_basic_auth_encodes_non_ascii_as_utf8_and_allows_an_empty_password(
    serve: Serve, make_client: MakeClient
) -> None:
    base, received = await echo_server(serve)
    client = make_client(base)
    await client.get("/x", auth=BasicAuth("jöe", "pä"))
    await client.get("/x", auth=BasicAuth("bob", ""))
    utf8 = base64.b64encode("jöe:pä".encode()).decode()
    assert received[0][0]["authorization"] == f"Basic {utf8}"
    assert received[1][0]["authorization"] == "Basic Ym9iOg=="  # base64 of b"bob:"


async def test_a_401_to_a_streamed_body_is_not_repeated_but_the_token_is_refreshed(
    serve: Serve, make_client: MakeClient
) -> None:
    sent: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        sent.append(request.headers.get("Authorization"))
        ok = request.headers.get("Authorization") == "Bearer t2"
        return web.json_response({}, status=200 if ok else 401)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    base = await serve(app)
    tokens = iter(["t1", "t2"])
    client = make_client(base, auth=stackwire.BearerToken(lambda: stackwire.Token(next(tokens))))

    async def chunks() -> Any:
        yield b"spent once sent"

    with pytest.raises(stackwire.AuthenticationError):
        await client.post("/upload", content=chunks())  # cannot be sent twice
    assert sent == ["Bearer t1"]
    await client.get("/next")  # the refused token is not offered again
    assert sent == ["Bearer t1", "Bearer t2"]
