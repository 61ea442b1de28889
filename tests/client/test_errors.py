"""Errors a user sees: status errors with their bodies, and connection errors for
everything that is not a complete HTTP response (with no secret in any of them)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import stackwire
from stackwire import errors
from tests.conftest import RawHandler, RawServer, Serve, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]
RawStart = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]

KEY = "sk-live-SECRETSECRET-0123456789"


STATUSES = [
    (400, errors.BadRequestError),
    (401, errors.AuthenticationError),
    (403, errors.PermissionDeniedError),
    (404, errors.NotFoundError),
    (409, errors.ConflictError),
    (413, errors.RequestTooLargeError),
    (422, errors.UnprocessableEntityError),
    (429, errors.RateLimitError),
    (500, errors.InternalServerError),
    (502, errors.InternalServerError),
    (503, errors.ServiceUnavailableError),
    (418, errors.APIStatusError),
    (451, errors.APIStatusError),
    (599, errors.InternalServerError),
]


class StatusServer:
    def __init__(self) -> None:
        self.hits = 0

    async def json(self, request: web.Request) -> web.Response:
        self.hits += 1
        status = int(request.match_info["status"])
        return web.json_response(
            {"error": {"type": "oops", "status": status}},
            status=status,
            headers={"x-request-id": f"req_{status}"},
        )

    async def text(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(text="plain failure", status=int(request.match_info["status"]))


async def _status_client(
    serve: Serve, make_client: MakeClient, **options: Any
) -> tuple[stackwire.AsyncClient, StatusServer]:
    server = StatusServer()
    base = await serve(
        routes(("GET", "/json/{status}", server.json), ("GET", "/text/{status}", server.text))
    )
    return make_client(base, **options), server


@pytest.mark.parametrize(("status", "error_class"), STATUSES)
async def test_each_status_raises_its_error_class_with_the_json_body(
    serve: Serve, make_client: MakeClient, status: int, error_class: type[Exception]
) -> None:
    client, server = await _status_client(serve, make_client, max_retries=0)
    with pytest.raises(errors.APIStatusError) as caught:
        await client.get("/json/{s}", path_params={"s": status}, cast_to=dict)
    error = caught.value
    assert type(error) is error_class
    assert error.status_code == status
    assert error.body == {"error": {"type": "oops", "status": status}}
    assert error.request_id == f"req_{status}"
    assert error.response.status_code == status
    assert error.response.content.startswith(b"{")
    assert (
        error.message == f'Error code: {status} - {{"error":{{"type":"oops","status":{status}}}}}'
    )
    assert str(error) == error.message
    assert error.request is error.response.request
    assert server.hits == 1
    assert client.pool_stats().in_use == 0


def test_service_unavailable_is_an_internal_server_error() -> None:
    assert issubclass(errors.ServiceUnavailableError, errors.InternalServerError)
    assert issubclass(errors.InternalServerError, errors.APIStatusError)
    assert issubclass(errors.APIStatusError, errors.APIError)
    assert issubclass(errors.APITimeoutError, errors.APIConnectionError)
    assert issubclass(errors.InvalidRequestError, ValueError)
    assert issubclass(errors.ClientClosedError, RuntimeError)
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type):
            assert issubclass(value, errors.StackwireError)
            assert getattr(stackwire, name) is value


@pytest.mark.parametrize("status", [400, 404, 500, 418])
async def test_a_text_body_is_kept_as_text(
    serve: Serve, make_client: MakeClient, status: int
) -> None:
    client, _ = await _status_client(serve, make_client, max_retries=0)
    with pytest.raises(errors.APIStatusError) as caught:
        await client.get("/text/{s}", path_params={"s": status})
    assert caught.value.body == "plain failure"
    assert caught.value.message == f"Error code: {status} - plain failure"
    assert caught.value.request_id is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"broken": ', '{"broken": '),
        (b"[1, 2]", [1, 2]),
        (b"[" * 100_000, "[" * 100_000),
        (b"\xff\xfe{", "\ufffd\ufffd{"),
    ],
)
async def test_error_bodies_that_are_not_json_objects(
    serve: Serve, make_client: MakeClient, body: bytes, expected: object
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=400, content_type="application/json")

    client = make_client(await serve(routes(("GET", "/x", handler))))
    with pytest.raises(errors.BadRequestError) as caught:
        await client.get("/x")
    assert caught.value.body == expected
    assert len(caught.value.message) < 2100  # a large body is cut in the message


@pytest.mark.parametrize(
    ("body", "content_type", "expected", "message"),
    [
        (b'"model not found"', "application/json", "model not found", "model not found"),
        (b" 42\n", "application/problem+json; charset=utf-8", 42, "42"),
        (b"false", "application/json", False, "false"),
        (b'"quoted"', "text/plain", '"quoted"', '"quoted"'),  # JSON only by its type
        (b"404", "text/plain", "404", "404"),
    ],
)
async def test_a_json_error_body_that_is_no_object_is_its_json_value(
    serve: Serve,
    make_client: MakeClient,
    body: bytes,
    content_type: str,
    expected: object,
    message: str,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, status=400, headers={"Content-Type": content_type})

    client = make_client(await serve(routes(("GET", "/x", handler))))
    with pytest.raises(errors.BadRequestError) as caught:
        await client.get("/x")
    assert caught.value.body == expected
    assert type(caught.value.body) is type(expected)
    assert caught.value.message == f"Error code: 400 - {message}"


async def test_empty_error_body(serve: Serve, make_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=404)

    client = make_client(await serve(routes(("GET", "/x", handler))))
    with pytest.raises(errors.NotFoundError) as caught:
        await client.get("/x")
    assert caught.value.body == ""
    assert caught.value.message == "Error code: 404"


async def test_retryable_statuses_are_retried_by_default(
    serve: Serve, make_client: MakeClient
) -> None:
    client, server = await _status_client(serve, make_client)
    with pytest.raises(errors.ServiceUnavailableError) as caught:
        await client.get("/json/503")
    assert server.hits == 3
    assert caught.value.retries_taken == 2


# -- no complete response: APIConnectionError -----------------------------------------

MALFORMED = [
    pytest.param(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", id="bad-status-line"),
    pytest.param(b"\x00\x01\x02 garbage \xff\xfe\r\n\r\n", id="garbage"),
    pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="not-http"),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n"
        b"0123456789",
        id="truncated-body",
    ),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        id="bad-chunk-size",
    ),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        id="truncated-chunk",
    ),
    pytest.param(
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n",
        id="oversized-header",
    ),
    pytest.param(
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n",
        id="too-many-headers",
    ),
    pytest.param(b"HTTP/1.1 200 OK\r\nContent-Len", id="cut-in-headers"),
    pytest.param(b"", id="closed-at-once"),
]


def _reply(payload: bytes) -> RawHandler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(payload)
        await writer.drain()
        writer.close()

    return handler


@pytest.mark.parametrize("payload", MALFORMED)
@pytest.mark.parametrize("api_key_header", [None, "X-Api-Key"])
async def test_malformed_response_is_a_connection_error_without_secrets(
    raw_server: RawStart,
    make_client: MakeClient,
    payload: bytes,
    api_key_header: str | None,
) -> None:
    base, server = await raw_server(_reply(payload))
    client = make_client(base, api_key=KEY, api_key_header=api_key_header, max_retries=0)
    with pytest.raises(errors.APIConnectionError) as caught:
        # aiohttp's error shows the URL too: a key in the query is no better hidden.
        await client.get("/x", cast_to=dict, query={"api_key": KEY})
    error = caught.value
    assert type(error) is errors.APIConnectionError
    assert not isinstance(error, errors.APIStatusError)
    assert isinstance(error.__cause__, aiohttp.ClientError)
    for text in (str(error), repr(error), str(error.__cause__), repr(error.__cause__)):
        assert KEY not in text
        assert KEY[:-4] not in text
    assert error.request is not None
    assert server.connections == 1  # max_retries=0: no retry, not even aiohttp's own
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


@pytest.mark.parametrize("status", [b"999", b"600", b"099", b"101"])
async def test_a_code_that_is_no_final_http_status_is_malformed_http(
    raw_server: RawStart, make_client: MakeClient, status: bytes
) -> None:
    # Three digits, framed correctly, but neither a success (099, an unasked-for 101)
    # nor a server error (600, 999): RFC 9110 allows 100-599, and only 2xx-5xx as final.
    reply = b"HTTP/1.1 " + status + b" Weird\r\nContent-Length: 2\r\n\r\n{}"

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(reply)
            await writer.drain()

    base, _ = await raw_server(keep_alive)
    client = make_client(base, max_retries=1)
    with pytest.raises(errors.APIConnectionError) as caught:
        await client.get("/x", cast_to=dict)
    error = caught.value
    assert not isinstance(error, errors.APIStatusError)
    assert f"status {int(status)} is not a final HTTP status" in str(error)
    assert isinstance(error.__cause__, aiohttp.ClientResponseError)
    assert error.retries_taken == 1  # retried like any malformed response
    assert client.pool_stats().in_use == 0


async def test_malformed_response_is_retried_as_a_connection_error(
    raw_server: RawStart, make_client: MakeClient
) -> None:
    base, server = await raw_server(_reply(b"HTTP/1.1 abc OK\r\n\r\n"))
    client = make_client(base, max_retries=2)
    with pytest.raises(errors.APIConnectionError) as caught:
        await client.get("/x")
    assert caught.value.retries_taken == 2
    assert server.connections == 3


async def test_connection_refused(make_client: MakeClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}/", api_key=KEY, max_retries=0)
    with pytest.raises(errors.APIConnectionError) as caught:
        await client.get("/x")
    assert type(caught.value) is errors.APIConnectionError
    assert isinstance(caught.value.__cause__, (aiohttp.ClientError, OSError))
    assert KEY not in repr(caught.value.__cause__)
    assert KEY not in str(caught.value)
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_a_status_error_keeps_no_secret_in_its_message(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _status_client(serve, make_client, api_key=KEY, max_retries=0)
    with pytest.raises(errors.NotFoundError) as caught:
        await client.get("/json/404")
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert KEY not in repr(caught.value.request)
