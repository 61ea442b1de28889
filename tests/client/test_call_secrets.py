"""Every credential a call sent is hidden in that call's errors (issue 11 item 4)."""

from __future__ import annotations

import asyncio
import base64
import traceback
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from tests.conftest import Serve, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]

TOKEN = "per-call-canary-token-0123456789"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("Authorization", f"Bearer {TOKEN}"),
        ("Cookie", f"session={TOKEN}"),
        ("Proxy-Authorization", f"Basic {TOKEN}"),
    ],
)
async def test_a_per_call_credential_echoed_in_an_error_is_hidden(
    serve: Serve, make_client: MakeClient, header: str, value: str
) -> None:
    async def echo_401(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": f"bad credential {request.headers.get(header)}"}, status=401
        )

    client = make_client(await serve(routes(("GET", "/x", echo_401))), max_retries=0)
    with pytest.raises(stackwire.AuthenticationError) as info:
        await client.get("/x", headers={header: value})
    shown = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value))
    assert "bad credential" in shown
    assert TOKEN not in shown


PASSWORD = "url-password-canary-42"
KEY = "query-key-canary-43"


@pytest.mark.parametrize(
    "url",
    [
        f"http://alice:{PASSWORD}@a..b/x?api_key={KEY}",  # a host IDNA refuses
        f"http://alice:{PASSWORD}@[::1/x?token={KEY}",  # a broken IPv6 literal
        f"http://alice:{PASSWORD}@127.0.0.1:99999/x",  # a port out of range
        f"http://alice:{PASSWORD}@exa\u2100mple/x?api_key={KEY}",  # yarl quotes the netloc
        f"http://alice:{PASSWORD}@/x?api_key={KEY}",  # no host
        f"ftp://alice:{PASSWORD}@files.test/x?api_key={KEY}",  # not http(s)
        f"http://alice:{PASSWORD}@api.test/x?api_key={KEY}\n",  # a control character
    ],
)
async def test_a_refused_url_never_shows_its_password_or_secret_query(
    make_client: MakeClient, url: str
) -> None:
    client = make_client("http://127.0.0.1:9/")
    for attempt in range(2):  # (the second call of a kind takes the request cache's path)
        with pytest.raises(stackwire.InvalidRequestError) as info:
            await client.get(url)
        shown = repr(info.value) + "".join(traceback.format_exception(info.value))
        assert "alice" in shown, attempt  # the URL is still named
        assert PASSWORD not in shown
        assert KEY not in shown


@pytest.mark.parametrize(
    "base_url",
    [
        f"http://alice:{PASSWORD}@a..b/",
        f"ftp://alice:{PASSWORD}@files.test/",
        f"http://alice:{PASSWORD}@exa\u2100mple/",
        f"http://alice:{PASSWORD}@api.test/\x00",
    ],
)
def test_a_refused_base_url_never_shows_its_password(base_url: str) -> None:
    with pytest.raises(stackwire.InvalidRequestError) as info:
        stackwire.AsyncClient(base_url)
    shown = repr(info.value) + "".join(traceback.format_exception(info.value))
    assert "alice" in shown
    assert PASSWORD not in shown


BASIC_PASSWORD = "basic-password-canary-44"


@pytest.mark.parametrize("where", ["auth", "userinfo"])
async def test_a_basic_password_echoed_decoded_is_hidden_whole(
    serve: Serve, make_client: MakeClient, where: str
) -> None:
    async def echo_decoded(request: web.Request) -> web.Response:
        _, _, encoded = request.headers["Authorization"].partition(" ")
        pair = base64.b64decode(encoded).decode()
        return web.json_response({"error": f"wrong credentials {pair}"}, status=401)

    base = await serve(routes(("GET", "/x", echo_decoded)))
    if where == "auth":
        client = make_client(base, auth=stackwire.BasicAuth("alice", BASIC_PASSWORD))
    else:
        client = make_client(base.replace("http://", f"http://alice:{BASIC_PASSWORD}@"))
    with pytest.raises(stackwire.AuthenticationError) as info:
        await client.get("/x")
    shown = repr(info.value) + repr(info.value.body)
    shown += "".join(traceback.format_exception(info.value))
    assert "wrong credentials" in shown
    assert BASIC_PASSWORD not in shown
    assert BASIC_PASSWORD[-4:] not in shown  # hidden whole, not down to its end


PROXY_PASSWORD = "proxy-password-canary-45"


async def test_proxy_credentials_quoted_by_a_407_are_hidden(
    raw_server: Any, make_client: MakeClient
) -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers, _ = await read_request(reader)
        encoded = headers["proxy-authorization"]
        decoded = base64.b64decode(encoded.partition(" ")[2]).decode()
        body = f"bad proxy credentials {encoded} ({decoded})".encode()
        writer.write(
            b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()

    proxy, _ = await raw_server(refuse)
    proxy = proxy.replace("http://", f"http://pu:{PROXY_PASSWORD}@").rstrip("/")
    client = make_client("http://api.test/", proxy=proxy, max_retries=0)
    with pytest.raises(stackwire.APIStatusError) as info:
        await client.get("/x")
    shown = repr(info.value) + repr(info.value.body)
    shown += "".join(traceback.format_exception(info.value))
    assert "bad proxy credentials" in shown
    assert PROXY_PASSWORD not in shown
    assert base64.b64encode(f"pu:{PROXY_PASSWORD}".encode()).decode() not in shown


@pytest.mark.parametrize(
    "echo",
    [
        b"X-Echo: Bearer " + TOKEN.encode() + b"\xff\x00",  # a header aiohttp refuses
        b"X-Echo\x01Bearer " + TOKEN.encode() + b": v",  # a name aiohttp refuses
    ],
    ids=["invalid-value", "invalid-name"],
)
async def test_a_credential_quoted_in_a_malformed_head_is_hidden_in_the_chain(
    raw_server: Callable[..., Any], make_client: MakeClient, echo: bytes
) -> None:
    # aiohttp's parser quotes the line it refuses in its exceptions' messages and
    # arguments (bytes); stackwire's own message was redacted, but the chained
    # ClientResponseError and InvalidHeader still showed the key, in every traceback.
    async def quotes_the_key(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n" + echo + b"\r\n\r\n{}")
        await writer.drain()

    base, _ = await raw_server(quotes_the_key)
    client = make_client(base, api_key=TOKEN, max_retries=0)
    with pytest.raises(stackwire.APIConnectionError) as info:
        await client.get("/x")
    shown = "".join(traceback.format_exception(info.value))
    assert "malformed response" in shown
    assert TOKEN not in shown
