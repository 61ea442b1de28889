"""A credential the server echoes back in a retried error never reaches ``on_retry``
(DESIGN §2: no secret in any message), whether the client's ``api_key`` or the token
an ``auth=`` added below ``retry``; over a real server on 127.0.0.1."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import BearerToken, RetryEvent, Token
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]

TOKEN = "bearer-token-canary-0123456789"


async def echo_503(request: web.Request) -> web.Response:
    return web.json_response(
        {"error": f"overloaded, you sent {request.headers.get('Authorization')}"}, status=503
    )


@pytest.mark.parametrize(
    "options",
    [
        {"auth": BearerToken(lambda: Token(TOKEN))},
        {"api_key": TOKEN},
    ],
)
async def test_on_retry_never_sees_an_echoed_credential(
    serve: Serve, make_client: MakeClient, options: dict[str, Any]
) -> None:
    events: list[RetryEvent] = []
    client = make_client(
        await serve(routes(("GET", "/x", echo_503))), on_retry=events.append, **options
    )
    with pytest.raises(stackwire.ServiceUnavailableError) as info:
        await client.get("/x")
    assert len(events) == 2
    for event in events:
        shown = (
            str(event.error)
            + repr(event)
            + repr(event.error.body)
            + "".join(traceback.format_exception(event.error))
        )
        assert "overloaded, you sent ***" in shown
        assert TOKEN not in shown
    assert TOKEN not in str(info.value)
