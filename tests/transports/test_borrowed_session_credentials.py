"""A borrowed ``aiohttp.ClientSession``'s own credentials (its default headers, cookie
jar, ``auth=``) are scoped like the client's (DESIGN §4): sent to the base URL's
origin, never to another origin on a redirect or an absolute URL, removable with
``Omit``; over real servers on two ports of 127.0.0.1."""

from __future__ import annotations

import warnings
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

import stackwire
from stackwire import Omit
from stackwire.auth import OAuth2ClientCredentials
from tests.conftest import Serve, routes

SECRET = "sk-session-secret-1234567890"
COOKIE = "jar-cookie-secret-0987654321"
CREDENTIALS = ("authorization", "x-api-key", "cookie", "x-signature", "proxy-authorization")


class Seen:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []

    def echo(self) -> Any:
        async def handler(request: web.Request) -> web.Response:
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            return web.json_response({"ok": True})

        return handler


@pytest.fixture
async def servers(serve: Serve) -> tuple[str, str, Seen, Seen]:
    """The API (``/start`` redirects to the other server, ``/echo`` answers) and
    another origin: the same host, another port."""
    mine, theirs = Seen(), Seen()
    other = await serve(routes(("GET", "/landing", theirs.echo())))

    async def start(request: web.Request) -> web.Response:
        mine.headers.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(status=302, headers={"Location": other + "landing"})

    base = await serve(routes(("GET", "/start", start), ("GET", "/echo", mine.echo())))
    return base, other, mine, theirs


def session_with_credentials(base: str) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True)  # (unsafe: cookies for an IP address)
    jar.update_cookies({"sid": COOKIE}, URL(base))
    return aiohttp.ClientSession(
        headers={
            "Authorization": f"Bearer {SECRET}",
            "X-Api-Key": SECRET,
            "Cookie": "pref=dark",
            "X-Signature": SECRET,
            "Proxy-Authorization": f"Basic {SECRET}",
            "X-Trace": "t-1",
        },
        cookie_jar=jar,
    )


def assert_no_credential(headers: dict[str, str]) -> None:
    for name in CREDENTIALS:
        assert name not in headers, name
    assert SECRET not in repr(headers)
    assert COOKIE not in repr(headers)


async def test_session_credentials_reach_the_base_origin_and_no_other(
    servers: tuple[str, str, Seen, Seen],
) -> None:
    base, other, mine, theirs = servers
    session = session_with_credentials(base)
    async with (
        session,
        stackwire.AsyncClient(base, session=session, sensitive_headers=["X-Signature"]) as client,
    ):
        await client.get("/start")  # a redirect to the other port
        await client.get(other + "landing")  # an absolute URL to the other port
        assert client.pool_stats().in_use == 0
    first = mine.headers[0]
    assert first["authorization"] == f"Bearer {SECRET}"
    assert first["x-api-key"] == SECRET
    assert f"sid={COOKIE}" in first["cookie"]
    assert len(theirs.headers) == 2
    for landing in theirs.headers:
        assert_no_credential(landing)
        assert landing["x-trace"] == "t-1"  # not a credential: it goes along


async def test_omit_removes_a_session_default_header_and_the_jar_cookies(
    servers: tuple[str, str, Seen, Seen],
) -> None:
    base, _, mine, _ = servers
    session = session_with_credentials(base)
    async with session, stackwire.AsyncClient(base, session=session) as client:
        await client.get(
            "/echo",
            headers={"Authorization": Omit(), "Cookie": Omit(), "X-Trace": Omit()},
        )
        await client.get("/echo", headers={"Authorization": "Bearer per-call-token"})
    omitted, overridden = mine.headers
    assert "authorization" not in omitted
    assert "cookie" not in omitted
    assert "x-trace" not in omitted
    assert omitted["x-api-key"] == SECRET  # not omitted: the session's default stays
    assert overridden["authorization"] == "Bearer per-call-token"


async def test_the_clients_credential_wins_over_a_session_auth(
    servers: tuple[str, str, Seen, Seen],
) -> None:
    base, _, mine, theirs = servers
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # (aiohttp deprecates auth=)
        session = aiohttp.ClientSession(auth=aiohttp.BasicAuth("user", SECRET))
    async with session:
        async with stackwire.AsyncClient(base, session=session, api_key="k-1") as client:
            # aiohttp alone refuses an Authorization header next to its auth= (ValueError).
            await client.get("/echo")
            await client.get("/start")
        async with stackwire.AsyncClient(base, session=session) as client:
            await client.get("/echo")  # the session's own auth= reaches the base origin
    assert mine.headers[0]["authorization"] == "Bearer k-1"
    assert_no_credential(theirs.headers[0])
    assert mine.headers[-1]["authorization"].startswith("Basic ")


async def test_the_token_grant_gets_no_session_credential(serve: Serve) -> None:
    grants: list[dict[str, str]] = []

    async def token(request: web.Request) -> web.Response:
        grants.append({k.lower(): v for k, v in request.headers.items()})
        return web.json_response({"access_token": "at-1", "expires_in": 3600})

    auth_server = await serve(routes(("POST", "/token", token)))
    seen = Seen()
    base = await serve(routes(("GET", "/echo", seen.echo())))
    session = session_with_credentials(auth_server)
    auth = OAuth2ClientCredentials(auth_server + "token", "app", "client-secret-1")
    async with session, stackwire.AsyncClient(base, session=session, auth=auth) as client:
        await client.get("/echo")
    (grant,) = grants
    assert grant["authorization"].startswith("Basic ")  # its own client authentication
    for name in ("x-api-key", "cookie", "proxy-authorization"):
        assert name not in grant, name
    assert seen.headers[0]["authorization"] == "Bearer at-1"


async def test_a_closed_borrowed_session_is_a_client_closed_error(
    servers: tuple[str, str, Seen, Seen],
) -> None:
    base, _, mine, _ = servers
    session = aiohttp.ClientSession()
    await session.close()
    async with stackwire.AsyncClient(base, session=session) as client:
        with pytest.raises(stackwire.ClientClosedError, match="session= is closed"):
            await client.get("/echo")
    assert mine.headers == []
