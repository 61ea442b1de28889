"""The `Transport` seam: a transport written from its docstring alone runs the full
stack (typed calls, status errors, retries, streams); ``transport=`` is checked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec
import pytest
from yarl import URL

import stackwire
from stackwire import PoolStats, Request, Response
from stackwire.pipeline.response import Response as BaseResponse
from stackwire.transports._aiohttp_response import AiohttpResponse
from tests.conftest import SleepRecorder


# -- a third-party transport: under 40 lines, no aiohttp -------------------------------
class InMemoryTransport:
    """Answers from a routing function ``(method, path, body) -> (status, headers, body)``;
    a body that is a list is streamed chunk by chunk."""

    def __init__(self, route: Callable[[str, str, bytes], tuple[int, dict[str, str], Any]]):
        self.route = route
        self.seen: list[Request] = []
        self.closed = False

    async def send(self, request: Request) -> Response[Any]:
        if self.closed:
            raise stackwire.ClientClosedError("closed")
        self.seen.append(request)
        body = request.body if isinstance(request.body, bytes) else b""
        status, headers, content = self.route(request.method, request.url.path, body)
        if isinstance(content, Exception):
            raise stackwire.APIConnectionError(str(content), request=request) from content
        if isinstance(content, list):
            return Response(request, status, headers=headers, stream=_chunks(content))
        return Response(request, status, headers=headers, content=content)

    async def close(self) -> None:
        self.closed = True

    def pool_stats(self) -> PoolStats:
        return PoolStats(in_use=0, idle=0)


async def _chunks(pieces: list[bytes]) -> AsyncIterator[bytes]:
    for piece in pieces:
        await asyncio.sleep(0)
        yield piece


# -- the stack over it -----------------------------------------------------------------


class User(msgspec.Struct):
    id: int
    name: str


class Delta(msgspec.Struct):
    text: str


JSON = {"Content-Type": "application/json"}


def _api(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
    if path == "/users/1":
        return 200, JSON, b'{"id": 1, "name": "Ada"}'
    if path == "/echo":
        return 200, JSON, json.dumps({"got": json.loads(body)}).encode()
    if path == "/missing":
        return 404, JSON, b'{"error": {"message": "no such thing"}}'
    if path == "/events":
        events = [
            b'data: {"text": "Hel',
            b'lo"}\n\ndata: {"text": " world"}\n\n',
            b"data: [DONE]\n\n",
        ]
        return 200, {"Content-Type": "text/event-stream"}, events
    raise AssertionError(path)


def _flaky(failures: int) -> Callable[[str, str, bytes], tuple[int, dict[str, str], Any]]:
    calls = 0

    def route(method: str, path: str, body: bytes) -> tuple[int, dict[str, str], Any]:
        nonlocal calls
        calls += 1
        if calls <= failures:
            return (503, JSON, b"{}") if calls % 2 else (0, {}, ConnectionResetError("reset"))
        return _api(method, path, body)

    return route


async def test_typed_calls_and_json_bodies_go_through_the_full_stack() -> None:
    transport = InMemoryTransport(_api)
    async with stackwire.AsyncClient("https://api.test/", transport=transport) as client:
        user = await client.get("/users/1", cast_to=User)
        echoed = await client.post("/echo", json={"a": 1}, cast_to=dict)
    assert user == User(id=1, name="Ada")
    assert echoed == {"got": {"a": 1}}
    assert transport.closed  # closing the client closes the transport it was given
    sent = transport.seen[1]
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["User-Agent"].startswith("stackwire/")


async def test_status_errors_are_typed() -> None:
    async with stackwire.AsyncClient(
        "https://api.test/", transport=InMemoryTransport(_api)
    ) as client:
        with pytest.raises(stackwire.NotFoundError, match="no such thing") as caught:
            await client.get("/missing")
    assert caught.value.status_code == 404


async def test_retries_cover_statuses_and_transport_failures(client_sleeps: SleepRecorder) -> None:
    transport = InMemoryTransport(_flaky(2))
    async with stackwire.AsyncClient(
        "https://api.test/", transport=transport, sleep=client_sleeps
    ) as client:
        response = await client.with_raw_response.get("/users/1", cast_to=User)
        assert await response.parse() == User(id=1, name="Ada")
    assert response.retries_taken == 2
    assert [r.headers.get("X-Retry-Count") for r in transport.seen] == ["0", "1", "2"]
    assert len(client_sleeps.delays) == 2


async def test_an_sse_stream_is_typed_and_ends_at_done() -> None:
    async with stackwire.AsyncClient(
        "https://api.test/", transport=InMemoryTransport(_api)
    ) as client:
        async with await client.get("/events", cast_to=Delta, stream=True) as stream:
            texts = [delta.text async for delta in stream]
        assert texts == ["Hello", " world"]
        assert stream.response.is_closed


async def test_derived_clients_share_the_transport() -> None:
    transport = InMemoryTransport(_api)
    client = stackwire.AsyncClient("https://api.test/", transport=transport)
    derived = client.with_options(max_retries=0)
    assert derived.transport is transport
    assert await derived.get("/users/1", cast_to=User) == User(id=1, name="Ada")
    # A pool option means nothing to a given transport: still shared, never closed
    # by the derived client.
    pooled = client.with_options(max_connections=10, trust_env=False)
    assert pooled.transport is transport
    await pooled.close()
    assert not transport.closed
    assert await client.get("/users/1", cast_to=User) == User(id=1, name="Ada")
    await client.close()
    assert transport.closed
    with pytest.raises(stackwire.ClientClosedError):
        await derived.get("/users/1")


def test_the_blocking_client_takes_a_transport_too() -> None:
    transport = InMemoryTransport(_api)
    with stackwire.Client("https://api.test/", transport=transport) as client:
        assert client.get("/users/1", cast_to=User) == User(id=1, name="Ada")
    assert transport.closed


# -- transport= is checked -------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"proxy": "http://127.0.0.1:3128"},
        {"verify": False},
    ],
)
def test_transport_excludes_options_of_the_default_transport(options: dict[str, Any]) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="transport= cannot be combined"):
        stackwire.AsyncClient("https://api.test/", transport=InMemoryTransport(_api), **options)
    client = stackwire.AsyncClient("https://api.test/", transport=InMemoryTransport(_api))
    with pytest.raises(stackwire.InvalidRequestError, match="transport= cannot be combined"):
        client.with_options(**options)


async def test_transport_excludes_a_session() -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(stackwire.InvalidRequestError, match="session="):
            stackwire.AsyncClient(
                "https://api.test/", transport=InMemoryTransport(_api), session=session
            )


def test_something_that_is_not_a_transport_is_refused() -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="must be a Transport"):
        stackwire.AsyncClient("https://api.test/", transport=object())  # type: ignore[arg-type]


# -- Response, built by anyone ---------------------------------------------------------


def _request() -> Request:
    return Request(method="GET", url=URL("https://api.test/x"))


async def test_a_streamed_response_is_capped_and_decoded_like_a_socket_one() -> None:
    import gzip

    packed = gzip.compress(b'{"text": "zipped"}')
    response: Response[Any] = Response(
        _request(),
        headers={"Content-Encoding": "gzip"},
        stream=_chunks([packed[:5], packed[5:]]),
    )
    assert response.read_now() is None  # it needs decoding: read() waits for it
    assert await response.read() == b'{"text": "zipped"}'
    big: Response[Any] = Response(_request(), content=b"x" * 100)
    with pytest.raises(stackwire.ResponseTooLargeError):
        await big.read(max_bytes=10)


async def test_a_failing_stream_is_a_connection_error() -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"{"
        raise ConnectionResetError("peer reset")

    response: Response[Any] = Response(_request(), stream=broken())
    with pytest.raises(stackwire.APIConnectionError, match="peer reset"):
        await response.read()
    assert response.is_closed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status_code": 99}, "status_code"),
        ({"content": "text"}, "content must be bytes"),
        ({"content": b"", "stream": _chunks([])}, "not both"),
        ({"stream": [b"a"]}, "async iterable"),
    ],
)
def test_bad_response_arguments_are_typed_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match=message):
        Response(_request(), **kwargs)
    for value in kwargs.values():
        if hasattr(value, "aclose"):
            asyncio.run(value.aclose())


def test_the_aiohttp_response_fills_every_slot_of_response() -> None:
    # AiohttpResponse sets the slots itself (no base __init__ on the hot path): none
    # may be missed when Response gains one.
    class Raw:
        status = 200
        headers: Any = ()
        reason = "OK"
        version = None
        closed = False

    class Sender:
        closed_under_call = False

    response = AiohttpResponse(Raw(), _request(), 0.0, None, Sender())  # type: ignore[arg-type]
    read_from_raw = {"_reason", "_http_version", "_source", "_closed"}
    missing = [
        name
        for name in BaseResponse.__slots__
        if name not in read_from_raw and not hasattr(response, name)
    ]
    assert missing == []
    # ... and those it leaves unset are read through raw by every method that needs them
    assert (response.reason, response.http_version, response.is_closed) == ("OK", "HTTP/1.1", False)
