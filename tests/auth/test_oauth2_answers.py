"""`OAuth2ClientCredentials` against a real token endpoint on 127.0.0.1: how each
form of ``expires_in`` is honoured on the client's clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import OAuth2ClientCredentials
from tests.conftest import Serve

MakeClient = Callable[..., stackwire.AsyncClient]

SECRET = "client-secret-canary-77"


async def token_endpoint(serve: Serve, answer: dict[str, Any]) -> tuple[str, list[int]]:
    """A token endpoint answering ``answer`` (its token numbered per grant) and an API
    on the same server; returns the base URL and the grant count."""
    grants = [0]

    async def token(request: web.Request) -> web.Response:
        await request.read()
        grants[0] += 1
        return web.json_response({**answer, "access_token": f"at-{grants[0]}"})

    async def api(request: web.Request) -> web.Response:
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/token", token)
    app.router.add_get("/x", api)
    return await serve(app), grants


@pytest.mark.parametrize(
    ("expires_in", "lifetime"),
    [(3600, 3600.0), (90.5, 90.5), ("3600", 3600.0), (None, None), (10**12, 1e12)],
)
async def test_expires_in_is_honoured_on_the_client_clock(
    serve: Serve, make_client: MakeClient, expires_in: object, lifetime: float | None
) -> None:
    answer: dict[str, Any] = {"token_type": "Bearer"}
    if expires_in is not None:
        answer["expires_in"] = expires_in
    base, grants = await token_endpoint(serve, answer)
    now = [1_000_000.0]
    auth = OAuth2ClientCredentials(base + "token", "app", SECRET, refresh_margin=10)
    client = make_client(base, auth=auth, clock=lambda: now[0])
    await client.get("/x")
    if lifetime is not None:
        now[0] += lifetime - 10.5  # just outside the margin: the token is kept
    else:
        now[0] += 10.0**9  # never expires
    await client.get("/x")
    assert grants[0] == 1
    if lifetime is not None:
        now[0] += 1.0  # inside the margin: the next use refreshes it
        await client.get("/x")
        assert grants[0] == 2


@pytest.mark.parametrize("expires_in", [0, -5, -0.5])
async def test_an_expires_in_already_passed_is_an_auth_error_naming_it(
    serve: Serve, make_client: MakeClient, expires_in: float
) -> None:
    base, grants = await token_endpoint(serve, {"token_type": "Bearer", "expires_in": expires_in})
    client = make_client(base, auth=OAuth2ClientCredentials(base + "token", "app", SECRET))
    with pytest.raises(stackwire.AuthError, match="expires_in=") as info:
        await client.get("/x")
    assert SECRET not in str(info.value)
    await client.with_options(auth=None).get("/x")  # (the API itself is reachable)
    with pytest.raises(stackwire.AuthError):
        await client.get("/x")  # a failure is not cached: the next call asks again
    assert grants[0] == 2
