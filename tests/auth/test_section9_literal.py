"""DESIGN §9 read literally, over real sockets: a 401 repeat after a retry, and each
way a token endpoint can fail (a thousand waiters on a failing fetch: test_auth.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import BearerToken, OAuth2ClientCredentials, Token
from stackwire.testing import VirtualTime
from tests.auth.test_auth import Fetcher, Seen, start
from tests.conftest import Serve

MakeClient = Callable[..., stackwire.AsyncClient]


async def test_a_401_after_a_retry_repeats_that_attempt_with_its_retry_count(
    serve: Serve, make_client: MakeClient
) -> None:
    statuses = [503, 401, 200]
    sent: list[tuple[str | None, str | None]] = []

    async def api(request: web.Request) -> web.Response:
        sent.append((request.headers.get("Authorization"), request.headers.get("X-Retry-Count")))
        return web.json_response({}, status=statuses.pop(0))

    app = web.Application()
    app.router.add_get("/x", api)
    base = await serve(app)
    fetch = Fetcher(Token("t1"), Token("t2"))
    client = make_client(base, auth=BearerToken(fetch), max_retries=1)
    response = await client.with_raw_response.get("/x")
    assert response.retries_taken == 1  # (the 401's repeat is not a retry)
    assert sent == [("Bearer t1", "0"), ("Bearer t1", "1"), ("Bearer t2", "1")]


@pytest.mark.parametrize(
    ("status", "answer", "cause"),
    [
        (500, {"error": "server_error"}, stackwire.InternalServerError),
        (401, {"error": "invalid_client"}, stackwire.AuthenticationError),
        (200, "<html>sign in</html>", stackwire.APIResponseValidationError),
        (200, {"token_type": "bearer"}, stackwire.APIResponseValidationError),
        (200, {"access_token": 5}, stackwire.APIResponseValidationError),
        (200, {"access_token": "a", "expires_in": "soon"}, stackwire.APIResponseValidationError),
        (200, [1, 2], stackwire.APIResponseValidationError),
    ],
)
async def test_a_failing_token_endpoint_is_an_auth_error_with_its_cause_and_no_api_call(
    serve: Serve, make_client: MakeClient, status: int, answer: Any, cause: type[Exception]
) -> None:
    grants = 0

    async def token(request: web.Request) -> web.Response:
        nonlocal grants
        await request.read()
        grants += 1
        if isinstance(answer, str):
            return web.Response(text=answer, status=status, content_type="text/html")
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    token_base = await serve(app)  # (another origin than the API's)
    seen = Seen(200)
    base = await start(serve, seen)
    time = VirtualTime()
    auth = OAuth2ClientCredentials(token_base + "oauth/token", "app", "secret-canary")
    client = make_client(base, auth=auth, clock=time.clock, sleep=time.sleep)
    with pytest.raises(stackwire.AuthError) as info:
        await client.get("/x")
    assert isinstance(info.value.__cause__, cause)
    assert "secret-canary" not in str(info.value)
    assert seen.auth == []
    per_call = grants
    with pytest.raises(stackwire.AuthError):
        await client.get("/x")  # not cached: asked again, once per call
    assert grants == 2 * per_call
