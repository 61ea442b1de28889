"""`MockTransport` and `MockResponse`: the whole stack runs over them as over a socket,
and their faults are the default transport's own errors (checked against real sockets)."""

from __future__ import annotations

import asyncio
import gzip
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import msgspec
import pytest
from aiohttp import web

import stackwire
from stackwire import Request, ServerSentEvent
from stackwire.testing import MockResponse, MockTransport, Router, VirtualTime
from tests.conftest import RawHandler, RawServer, Serve, read_request

StartRaw = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]
BASE = "https://api.test/v1/"


class User(stackwire.Model):
    id: int
    name: str


class Delta(stackwire.Model):
    text: str


def mock_client(
    handler: Callable[[Request], MockResponse | Awaitable[MockResponse]],
    time: VirtualTime | None = None,
    **options: object,
) -> stackwire.AsyncClient:
    time = time or VirtualTime()
    return stackwire.AsyncClient(
        BASE,
        transport=MockTransport(handler),
        sleep=time.sleep,
        clock=time.clock,
        random=time.random,
        **options,  # type: ignore[arg-type]
    )


# -- what the handler sees ---------------------------------------------------------------


async def test_the_handler_sees_the_final_request_of_each_attempt() -> None:
    seen: list[Request] = []
    answers = [MockResponse(503), MockResponse(201, json={"id": 7, "name": "Ada"})]

    def handler(request: Request) -> MockResponse:
        seen.append(request)
        return answers[len(seen) - 1]

    async with mock_client(handler, api_key="sk-test-0123456789") as client:
        user = await client.post(
            "/users", query={"tags": ["a", "b"], "dry": False}, json={"name": "Ada"}, cast_to=User
        )
    assert user == User(id=7, name="Ada")
    first, second = seen
    assert str(first.url) == "https://api.test/v1/users?tags=a&tags=b&dry=false"
    assert first.body == b'{"name":"Ada"}'
    assert first.headers["Authorization"] == "Bearer sk-test-0123456789"
    assert [r.headers["X-Retry-Count"] for r in seen] == ["0", "1"]
    key = first.headers["Idempotency-Key"]
    assert key.startswith("stackwire-retry-")
    assert second.headers["Idempotency-Key"] == key  # the same key on every attempt


async def test_a_streamed_request_body_reaches_the_handler_as_bytes() -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b"world"

    def size(request: Request) -> MockResponse:
        assert isinstance(request.body, bytes)
        return MockResponse(json={"size": len(request.body)})

    transport = MockTransport(size)
    async with stackwire.AsyncClient(BASE, transport=transport) as client:
        assert await client.put("/blob", content=upload(), cast_to=dict) == {"size": 11}
    assert transport.requests[0].body == b"hello world"


async def test_a_failing_streamed_request_body_is_the_callers_error_as_over_a_socket() -> None:
    async def gives_text() -> AsyncIterator[bytes]:
        yield b"a"
        yield "b"  # type: ignore[misc]

    async def breaks() -> AsyncIterator[bytes]:
        yield b"a"
        raise OSError("disk gone")

    async def breaks_not() -> AsyncIterator[bytes]:
        yield b"a"

    transport = MockTransport(lambda request: MockResponse(json={}))
    async with stackwire.AsyncClient(BASE, transport=transport) as client:
        with pytest.raises(stackwire.InvalidRequestError, match="must yield bytes, got str"):
            await client.put("/blob", content=gives_text())
        with pytest.raises(stackwire.InvalidRequestError, match="raised OSError: disk gone") as e:
            await client.put("/blob", content=breaks())
        with pytest.raises(stackwire.InvalidRequestError, match="gave 1 bytes but its header"):
            await client.put("/blob", content=breaks_not(), headers={"Content-Length": "2"})
    assert isinstance(e.value.__cause__, OSError)
    assert transport.requests == []  # never retried, never answered


async def test_an_async_handler_works_too() -> None:
    async def handler(request: Request) -> MockResponse:
        await asyncio.sleep(0)
        return MockResponse(json={"id": 1, "name": request.url.path})

    async with mock_client(handler) as client:
        assert await client.get("/u", cast_to=User) == User(id=1, name="/v1/u")


async def test_a_handler_returning_something_else_is_a_type_error() -> None:
    async with mock_client(lambda request: {"id": 1}) as client:  # type: ignore[arg-type,return-value]
        with pytest.raises(TypeError, match="must return a MockResponse"):
            await client.get("/u")


# -- bodies and content types ------------------------------------------------------------


async def test_a_handler_slower_than_the_timeout_is_a_retried_timeout() -> None:
    async def handler(request: Request) -> MockResponse:
        if request.headers["X-Retry-Count"] == "0":
            await asyncio.sleep(1)  # a server far slower than the timeout
        return MockResponse(json={"id": 1, "name": "Ada"})

    async with mock_client(handler, timeout=0.02) as client:
        with pytest.raises(stackwire.APITimeoutError, match="timed out"):
            await client.get("/u", max_retries=0)
        assert await client.get("/u", cast_to=User) == User(id=1, name="Ada")


def test_content_types_follow_the_body_unless_headers_give_one() -> None:
    assert MockResponse(json={}).headers["Content-Type"] == "application/json"
    assert MockResponse(sse=["x"]).headers["Content-Type"] == "text/event-stream"
    assert MockResponse(jsonl=[1]).headers["Content-Type"] == "application/x-ndjson"
    assert "Content-Type" not in MockResponse(content=b"raw").headers
    custom = MockResponse(json={}, headers={"content-type": "application/problem+json"})
    assert custom.headers["Content-Type"] == "application/problem+json"
    with pytest.raises(stackwire.InvalidRequestError, match="one body"):
        MockResponse(json={}, content=b"x")
    with pytest.raises(stackwire.InvalidRequestError, match="status"):
        MockResponse(700)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"headers": {"X-Split": "a\r\nInjected: 1"}}, "CR, LF or NUL"),
        ({"headers": {"X-When": object()}}, "must be a str"),
        ({"headers": 5}, "mapping or"),
        ({"sse": "one event"}, "iterable of ServerSentEvent"),  # not nine one-letter events
        ({"sse": [ServerSentEvent(data="x", event="a\ndata: injected")]}, "CR or LF"),
        ({"chunks": b"body"}, "iterable of bytes"),  # not 4 chunks of NUL bytes
        ({"chunks": ["text"]}, "bytes items"),
        ({"json": {1j}}, "JSON-encodable"),
    ],
)
def test_a_mock_response_a_server_could_not_send_is_refused(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match=message):
        MockResponse(**options)  # type: ignore[arg-type]


async def test_a_number_in_mock_headers_is_sent_as_its_text() -> None:
    answers = [MockResponse(429, headers={"Retry-After": 2}), MockResponse(json={})]
    time = VirtualTime()
    async with mock_client(lambda request: answers.pop(0), time) as client:
        assert await client.get("/u", cast_to=dict) == {}
    assert time.slept == [2.0]


async def test_sse_jsonl_and_chunks_stream_chunk_by_chunk() -> None:
    router = Router(BASE)
    router.get("/sse").respond(
        sse=[
            '{"text": "a"}',
            ServerSentEvent(event="delta", data='{"text": "b"}', id="2"),
            "[DONE]",
        ]
    )
    router.get("/jsonl").respond(jsonl=[{"text": "x"}, {"text": "y"}])
    router.get("/raw").respond(chunks=[b"ab", b"cd", b"e"])
    async with mock_client(router) as client:
        async with await client.get("/sse", cast_to=ServerSentEvent, stream=True) as events:
            got = [event async for event in events]
        assert [(e.event, e.data, e.id) for e in got] == [
            ("message", '{"text": "a"}', None),
            ("delta", '{"text": "b"}', "2"),
            ("message", "[DONE]", "2"),  # raw events: the id persists, [DONE] is shown
        ]
        lines = await client.get("/jsonl", cast_to=Delta, stream=True)
        assert [delta.text async for delta in lines] == ["x", "y"]
        async with client.with_streaming_response.get("/raw") as response:
            assert [chunk async for chunk in response.iter_raw()] == [b"ab", b"cd", b"e"]


async def test_a_stream_read_after_its_client_closed_raises_client_closed() -> None:
    # As over a socket (tests/pipeline/test_streams.py); the stream went on to its end.
    client = mock_client(lambda request: MockResponse(sse=["1", "2", "3"]))
    stream = await client.get("/sse", cast_to=ServerSentEvent, stream=True)
    assert (await anext(stream)).data == "1"
    await client.close()
    with pytest.raises(stackwire.ClientClosedError, match="closed"):
        await anext(stream)
    assert stream.response.is_closed


async def test_content_encoding_is_decoded_as_from_a_socket() -> None:
    packed = gzip.compress(b'{"id": 3, "name": "Zip"}')
    answer = MockResponse(
        content=packed, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    async with mock_client(lambda request: answer) as client:
        assert await client.get("/u", cast_to=User) == User(id=3, name="Zip")


async def test_size_caps_and_event_caps_apply_to_mock_bodies() -> None:
    router = Router(BASE)
    router.get("/big").respond(content=b"x" * 1000)
    router.get("/big-chunks").respond(chunks=[b"x" * 600, b"x" * 600])
    router.get("/big-event").respond(sse=["y" * 5000])
    async with mock_client(router, max_response_bytes=1024, max_event_bytes=1024) as client:
        assert len((await client.with_raw_response.get("/big")).content) == 1000
        with pytest.raises(stackwire.ResponseTooLargeError):
            await client.get("/big", max_response_bytes=100)
        with pytest.raises(stackwire.ResponseTooLargeError):
            await client.get("/big-chunks")
        stream = await client.get("/big-event", cast_to=ServerSentEvent, stream=True)
        with pytest.raises(stackwire.ResponseTooLargeError):
            async for _ in stream:
                pass
    assert len(router.calls) == 4  # a size cap is never retried


async def test_status_errors_redirects_and_raw_responses_behave_as_over_a_socket() -> None:
    router = Router(BASE)
    router.get("/old").respond(302, headers={"Location": "/v1/new"})
    router.get("/new").respond(json={"id": 1, "name": "New"}, headers={"x-request-id": "req_9"})
    router.get("/gone").respond(404, json={"error": {"message": "no such user"}})
    async with mock_client(router) as client:
        raw = await client.with_raw_response.get("/old", cast_to=User)
        assert await raw.parse() == User(id=1, name="New")
        assert (raw.status_code, raw.request_id, raw.url.path) == (200, "req_9", "/v1/new")
        with pytest.raises(stackwire.NotFoundError, match="no such user") as caught:
            await client.get("/gone")
    assert caught.value.status_code == 404


# -- faults: the default transport's own errors --------------------------------------------


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _malformed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await reader.read()  # never answers; the client times out


def _shape(message: str) -> str:
    """A message with the origin and the detail in parentheses taken out."""
    message = re.sub(r"https?://[^/]+/", "ORIGIN/", message)
    return re.sub(r"\(.*", "(...)", message, flags=re.S)


@pytest.mark.parametrize(
    ("fault", "server"),
    [
        (MockResponse.connection_reset, _reset),
        (MockResponse.malformed, _malformed),
        (MockResponse.timeout, _silent),
    ],
    ids=["connection_reset", "malformed", "timeout"],
)
async def test_each_fault_is_the_error_a_socket_failure_raises(
    raw_server: StartRaw,
    fault: Callable[[], MockResponse],
    server: RawHandler,
) -> None:
    base, _ = await raw_server(server)
    async with stackwire.AsyncClient(base, max_retries=0, timeout=0.2) as real:
        with pytest.raises(stackwire.APIError) as over_socket:
            await real.get("/x")
    transport = MockTransport(lambda request: fault())
    async with stackwire.AsyncClient(base, max_retries=0, transport=transport) as mocked:
        with pytest.raises(stackwire.APIError) as over_mock:
            await mocked.get("/x")
    assert type(over_mock.value) is type(over_socket.value)
    assert type(over_mock.value.__cause__) is type(over_socket.value.__cause__)
    assert _shape(str(over_mock.value)) == _shape(str(over_socket.value))
    assert over_mock.value.request is not None
    if server is not _silent:  # (a real timeout chains asyncio's internals)
        # Down to the OS or parser error aiohttp chains: ConnectionResetError, a bad
        # status line.
        real_cause, mock_cause = over_socket.value.__cause__, over_mock.value.__cause__
        assert real_cause is not None
        assert mock_cause is not None
        assert isinstance(mock_cause.__cause__, type(real_cause.__cause__))


@pytest.mark.parametrize(
    "fault",
    [MockResponse.connection_reset(), MockResponse.timeout(), MockResponse.malformed()],
    ids=repr,
)
async def test_faults_are_retried_like_socket_failures(fault: MockResponse) -> None:
    router = Router(BASE)
    router.get("/u").respond_seq([fault, fault, MockResponse(json={"id": 1, "name": "Ada"})])
    time = VirtualTime()
    async with mock_client(router, time) as client:
        response = await client.with_raw_response.get("/u", cast_to=User)
    assert await response.parse() == User(id=1, name="Ada")
    assert response.retries_taken == 2
    assert len(time.slept) == 2  # backoff, slept virtually


async def test_a_body_cut_short_is_a_retryable_connection_error() -> None:
    router = Router(BASE)
    cut = MockResponse.connection_reset(after=[b'{"id": 1, '])
    router.get("/u").respond_seq([cut, MockResponse(json={"id": 1, "name": "Ada"})])
    async with mock_client(router) as client:
        assert await client.get("/u", cast_to=User) == User(id=1, name="Ada")
        router.get("/stream").respond_mock(
            MockResponse.connection_reset(
                after=[b'data: {"text": "a"}\n\n'], headers={"Content-Type": "text/event-stream"}
            )
        )
        stream = await client.get("/stream", cast_to=Delta, stream=True)
        assert (await anext(stream)).text == "a"
        with pytest.raises(stackwire.APIConnectionError, match="cut short"):
            await anext(stream)


# -- the transport's own contract ------------------------------------------------------------


async def test_pool_stats_count_the_answers_still_in_use_as_a_socket_pool_does() -> None:
    router = Router(BASE)
    router.get("/u").respond(json={"id": 1, "name": "Ada"})
    router.get("/events").respond(sse=['{"text": "a"}', '{"text": "b"}'])
    router.get("/down").respond(status=503)
    async with mock_client(router) as client:
        assert await client.get("/u", cast_to=User) == User(id=1, name="Ada")
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/down")
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
        stream = await client.get("/events", cast_to=Delta, stream=True)
        unread = client.with_streaming_response.get("/u")
        response = await unread.__aenter__()
        assert client.pool_stats().in_use == 2  # a leak a test over the kit now sees
        assert (await anext(stream)).text == "a"
        await stream.close()
        assert client.pool_stats().in_use == 1
        await unread.__aexit__(None, None, None)
        assert response.is_closed
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_close_is_idempotent_and_send_after_it_fails() -> None:
    transport = MockTransport(lambda request: MockResponse())
    assert transport.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    client = stackwire.AsyncClient(BASE, transport=transport)
    await client.get("/")
    await client.close()
    await transport.close()
    assert transport.closed
    with pytest.raises(stackwire.ClientClosedError):
        await transport.send(Request(method="GET", url=client.base_url))


def test_a_mock_transport_needs_a_handler() -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="handler"):
        MockTransport(42)  # type: ignore[arg-type]


# -- the blocking client -----------------------------------------------------------------------


def test_the_blocking_client_runs_over_a_mock_transport() -> None:
    router = Router(BASE)
    router.get("/users/{id}").respond(json={"id": 1, "name": "Ada"})
    router.get("/flaky").respond_seq([MockResponse.timeout(), MockResponse(json=[1, 2])])
    router.get("/events").respond(sse=['{"text": "a"}', '{"text": "b"}'])
    router.get("/missing").respond(404, json={"error": "nope"})
    time = VirtualTime()
    with stackwire.Client(BASE, transport=MockTransport(router), sleep=time.sleep) as client:
        assert client.get("/users/1", cast_to=User) == User(id=1, name="Ada")
        assert client.get("/flaky", cast_to=list[int]) == [1, 2]
        with client.get("/events", cast_to=Delta, stream=True) as stream:
            assert [delta.text for delta in stream] == ["a", "b"]
        with pytest.raises(stackwire.NotFoundError):
            client.get("/missing")
    assert len(time.slept) == 1


def test_mock_response_repr_says_what_it_is() -> None:
    assert repr(MockResponse.timeout()) == "MockResponse.timeout()"
    assert repr(MockResponse(json={"a": 1})) == "MockResponse(200, application/json, 7 bytes)"
    assert msgspec.json.decode(b"{}") == {}


# -- as over a socket: what the handler sees, what the client gets ------------------------


async def test_url_userinfo_reaches_the_handler_as_the_socket_sends_it(serve: Serve) -> None:
    wire: list[tuple[str, str | None]] = []

    async def echo(request: web.Request) -> web.Response:
        wire.append((str(request.url.with_user(None)), request.headers.get("Authorization")))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/{tail:.*}", echo)
    origin = (await serve(app)).removeprefix("http://")
    seen: list[Request] = []

    def handler(request: Request) -> MockResponse:
        seen.append(request)
        return MockResponse(json={})

    base = f"http://ada:pass%20word@{origin}v1/"
    async with stackwire.AsyncClient(base) as real:
        await real.get("/users")
    async with stackwire.AsyncClient(base, transport=MockTransport(handler)) as mocked:
        await mocked.get("/users")
    (url, authorization), request = wire[0], seen[0]
    assert authorization == "Basic YWRhOnBhc3Mgd29yZA=="  # ada:pass word
    assert request.headers["Authorization"] == authorization
    assert str(request.url) == url  # without the userinfo, as sent
    assert request.url.user is None
    assert "pass word" not in repr(request.headers)  # still a secret


async def test_head_204_and_304_answers_carry_no_body_as_over_a_socket(serve: Serve) -> None:
    async def answer(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        return web.Response(status=status, body=b'{"id":1}', content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{status}", answer)
    base = await serve(app)
    mocks = {
        "200": MockResponse(json={"id": 1}),
        "204": MockResponse(204, json={"id": 1}),
        "304": MockResponse(304, content=b'{"id":1}'),
    }

    def handler(request: Request) -> MockResponse:
        return mocks[request.url.path.strip("/")]

    bodies: dict[str, list[bytes]] = {"real": [], "mock": []}
    for name, options in (("real", {}), ("mock", {"transport": MockTransport(handler)})):
        async with stackwire.AsyncClient(base, follow_redirects=False, **options) as client:  # type: ignore[arg-type]
            for method, path in (("HEAD", "/200"), ("GET", "/204")):
                response = await client.request(method, path)
                bodies[name].append(await response.read())
            with pytest.raises(stackwire.APIStatusError) as not_modified:
                await client.get("/304")
            bodies[name].append(not_modified.value.response.content)
    assert bodies["mock"] == bodies["real"] == [b"", b"", b""]


async def test_a_1xx_status_is_a_malformed_response_as_over_a_socket(raw_server: StartRaw) -> None:
    async def switching(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)  # an upgrade nobody asked for: no final status
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
        await writer.drain()
        await reader.read()

    base, _ = await raw_server(switching)
    async with stackwire.AsyncClient(base, max_retries=0, timeout=0.5) as real:
        with pytest.raises(stackwire.APIError) as over_socket:
            await real.get("/x")
    time = VirtualTime()
    router = Router(BASE)
    router.get("/x").respond_seq([MockResponse(101), MockResponse(json={"id": 1, "name": "A"})])
    async with mock_client(router, time) as mocked:
        with pytest.raises(stackwire.APIError) as over_mock:
            await mocked.get("/x", max_retries=0)
        assert await mocked.get("/x", cast_to=User) == User(id=1, name="A")
    assert type(over_mock.value) is type(over_socket.value)
    assert "not a final HTTP status" in str(over_mock.value)
    assert "not a final HTTP status" in str(over_socket.value)


async def test_a_content_length_the_body_does_not_have_is_refused_or_cut_short() -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="Content-Length 10 does not match"):
        MockResponse(content=b"abc", headers={"Content-Length": "10"})
    with pytest.raises(stackwire.InvalidRequestError, match="does not match the 2 bytes"):
        MockResponse(chunks=[b"a", b"b"], headers={"Content-Length": "3"})
    with pytest.raises(stackwire.InvalidRequestError, match="one decimal number"):
        MockResponse(headers={"Content-Length": "-1"})
    assert MockResponse(json=[1], headers={"Content-Length": "3"}).headers["Content-Length"] == "3"
    # An empty body announced longer: right for HEAD, cut short (retried) for a GET.
    announced = MockResponse(headers={"Content-Length": "10"})
    router = Router(BASE)
    router.route("HEAD", "/f").respond_mock(announced)
    router.get("/f").respond_seq([announced, MockResponse(json={"id": 1, "name": "A"})])
    async with mock_client(router) as client:
        head = await client.head("/f")
        assert head.headers["Content-Length"] == "10"
        with pytest.raises(stackwire.APIConnectionError, match="cut short"):
            await client.get("/f", max_retries=0)
        assert await client.get("/f", cast_to=User) == User(id=1, name="A")
    # A body cut short may announce its full length.
    reset = MockResponse.connection_reset(after=[b'{"id":'], headers={"Content-Length": "20"})
    assert reset.headers["Content-Length"] == "20"
