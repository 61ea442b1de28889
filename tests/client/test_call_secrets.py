"""Every credential a call sent is hidden in that call's errors (issue 11 item 4)."""

from __future__ import annotations

import traceback
from collections.abc import Callable

import pytest
from aiohttp import web

import stackwire
from tests.conftest import Serve, routes

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
