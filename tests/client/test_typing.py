"""What a type checker sees: every call below is checked by ``mypy --strict`` in the
suite (``typing.assert_type`` fails it on a wrong type) and run against a real server.

Covers the verbs, ``request()``, ``head()``/``options()`` and their raw and streaming
views; the blocking face's twins are in ``test_sync_client.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, assert_type

import pytest
from aiohttp import web

import stackwire
from tests.conftest import Serve, routes


class User(stackwire.Model):
    id: int
    name: str


class Delta(stackwire.Model):
    text: str


def api() -> web.Application:
    async def user(request: web.Request) -> web.Response:
        return web.json_response({"id": 1, "name": "Ada"}, headers={"X-Seen": request.method})

    async def allow(request: web.Request) -> web.Response:
        return web.json_response({"id": 2, "name": "Options"}, headers={"Allow": "GET, HEAD"})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"text": "a"}\n\ndata: 7\n\n')
        await response.write_eof()
        return response

    return routes(
        ("GET", "/users/1", user),
        ("HEAD", "/users/1", user),
        ("POST", "/users/1", user),
        ("OPTIONS", "/users", allow),
        ("GET", "/events", events),
    )


async def test_request_is_typed_like_the_verbs(serve: Serve) -> None:
    async with stackwire.AsyncClient(await serve(api())) as client:
        user = await client.request("get", "/users/1", cast_to=User)
        assert_type(user, User)
        assert user == User(id=1, name="Ada")
        response = await client.request("POST", "/users/1", json={})
        assert_type(response, stackwire.Response[Any])
        assert response.headers["X-Seen"] == "POST"
        raw = await client.with_raw_response.request("GET", "/users/1", cast_to=User)
        assert_type(raw, stackwire.Response[User])
        assert await raw.parse() == user
        streaming = client.with_streaming_response.request("GET", "/users/1", cast_to=User)
        assert_type(streaming, AbstractAsyncContextManager[stackwire.Response[User]])
        async with streaming as unread:
            assert await unread.parse() == user
        assert client.pool_stats().in_use == 0


async def test_union_and_bare_streams_are_typed(serve: Serve) -> None:
    async with stackwire.AsyncClient(await serve(api())) as client:
        union = await client.get("/events", cast_to=Delta | int, stream=True)
        assert_type(union, stackwire.AsyncStream[Delta | int])
        assert [item async for item in union] == [Delta(text="a"), 7]
        bare = await client.get("/events", stream=True)
        assert_type(bare, stackwire.AsyncStream[Any])
        assert [event.data async for event in bare] == ['{"text": "a"}', "7"]
        listed = await client.request("GET", "/users/1", cast_to=dict[str, int | str])
        assert_type(listed, dict[str, int | str])
        assert listed == {"id": 1, "name": "Ada"}
        assert client.pool_stats().in_use == 0


async def test_request_of_the_views_is_typed_as_a_stream_with_stream_true(serve: Serve) -> None:
    async with stackwire.AsyncClient(await serve(api())) as client:
        raw = await client.with_raw_response.request(
            "GET", "/events", cast_to=Delta | int, stream=True
        )
        assert_type(raw, stackwire.Response[stackwire.AsyncStream[Delta | int]])
        assert [item async for item in await raw.parse()] == [Delta(text="a"), 7]
        unread = client.with_streaming_response.request("GET", "/events", cast_to=int, stream=True)
        assert_type(
            unread, AbstractAsyncContextManager[stackwire.Response[stackwire.AsyncStream[int]]]
        )
        async with unread as response:
            with pytest.raises(stackwire.APIResponseValidationError):
                [item async for item in await response.parse()]
        assert client.pool_stats().in_use == 0


async def test_head_and_options_verbs(serve: Serve) -> None:
    async with stackwire.AsyncClient(await serve(api())) as client:
        head = await client.head("/users/1")
        assert_type(head, stackwire.Response[Any])
        assert (head.status_code, head.headers["X-Seen"], head.content) == (200, "HEAD", b"")
        allowed = await client.options("/users")
        assert_type(allowed, stackwire.Response[Any])
        assert allowed.headers["Allow"] == "GET, HEAD"
        assert_type(await client.options("/users", cast_to=User), User)
        raw = await client.with_raw_response.options("/users", cast_to=User)
        assert_type(raw, stackwire.Response[User])
        assert await raw.parse() == User(id=2, name="Options")
        raw_head = await client.with_raw_response.head("/users/1")
        assert raw_head.headers["X-Seen"] == "HEAD"
        async with client.with_streaming_response.head("/users/1") as unread:
            assert_type(unread, stackwire.Response[Any])
            assert await unread.read() == b""
        async with client.with_streaming_response.options("/users") as unread:
            assert unread.headers["Allow"] == "GET, HEAD"
        assert client.pool_stats().in_use == 0


async def test_request_with_a_method_that_is_not_a_str_is_a_typed_error() -> None:
    async with stackwire.AsyncClient("http://127.0.0.1:1/") as client:
        with pytest.raises(stackwire.InvalidRequestError, match="invalid HTTP method 1"):
            await client.request(1, "/x")  # type: ignore[call-overload]
    with (
        stackwire.Client("http://127.0.0.1:1/") as blocking,
        pytest.raises(stackwire.InvalidRequestError, match="invalid HTTP method 1"),
    ):
        blocking.request(1, "/x")  # type: ignore[call-overload]


def test_mypy_finds_the_installed_package_from_another_folder(tmp_path: Path) -> None:
    """An SDK outside this repository, checked with the mypy of this environment:
    the install (``make``) must be visible to type checkers, not only to imports."""
    sdk = tmp_path / "acme_sdk.py"
    sdk.write_text(
        textwrap.dedent(
            """
            from typing import assert_type

            import stackwire


            class User(stackwire.Model):
                id: int


            async def fetch(client: stackwire.AsyncClient) -> User:
                user = await client.get("/users/1", cast_to=User)
                assert_type(user, User)
                return user
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k not in ("MYPYPATH", "PYTHONPATH")}
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "acme_sdk.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert "Success: no issues found in 1 source file" in result.stdout, result.stdout
