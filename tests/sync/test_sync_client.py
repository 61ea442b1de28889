"""`stackwire.Client`, the blocking twin of `AsyncClient`, over real sockets.

The tests are plain functions: the servers run on their own loop in a background
thread (fixture ``server``), the client on its own private loop thread, and the test
body blocks like a user's program would.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import signal
import threading
import warnings
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, assert_type, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given
from hypothesis import strategies as st

import stackwire
from stackwire.sync.stream import split_lines
from tests.conftest import RawHandler, RawServer, SleepRecorder, read_request, routes


class User(stackwire.Model):
    id: int
    name: str


class Delta(stackwire.Model):
    text: str


@contextmanager
def resource_warnings() -> Iterator[list[str]]:
    """The messages of the ``ResourceWarning``s raised in the block (every one, even
    a repeat), in the list it yields, filled when the block ends."""
    messages: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    messages.extend(str(w.message) for w in caught if issubclass(w.category, ResourceWarning))


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("stackwire-loop")]


class ServerThread:
    """aiohttp apps and raw TCP handlers served from one loop in a background thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-server")
        self.thread.start()
        self._servers: list[TestServer] = []
        self._raw: list[RawServer] = []

    def _run(self, coro: Awaitable[Any]) -> Any:
        async def wrapped() -> Any:
            return await coro

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=10)

    def app(self, app: web.Application) -> str:
        async def start() -> str:
            server = TestServer(app, host="127.0.0.1")
            await server.start_server()
            self._servers.append(server)
            return str(server.make_url("/"))

        return self._run(start())  # type: ignore[no-any-return]

    def raw(self, handler: RawHandler) -> tuple[str, RawServer]:
        server = RawServer(handler)
        self._raw.append(server)
        return self._run(server.start()), server

    def close(self) -> None:
        async def stop() -> None:
            for raw in self._raw:
                await raw.close()
            for server in self._servers:
                await server.close()

        self._run(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()
        self.loop.close()


@pytest.fixture
def server() -> Iterator[ServerThread]:
    servers = ServerThread()
    yield servers
    servers.close()


@pytest.fixture
def make_client(client_sleeps: SleepRecorder) -> Iterator[Callable[..., stackwire.Client]]:
    """Clients that sleep through the recorder; checked for leaks, closed, and their
    loop threads gone after the test."""
    clients: list[stackwire.Client] = []
    threads_before = set(threading.enumerate())

    def make(base_url: str, **options: Any) -> stackwire.Client:
        options.setdefault("sleep", client_sleeps)
        client = stackwire.Client(base_url, **options)
        clients.append(client)
        return client

    yield make
    leaks = [(c.base_url, c.pool_stats()) for c in clients if c.pool_stats().in_use]
    for client in clients:
        client.close()
    assert not leaks, f"connections still in use after the test: {leaks}"
    assert not loop_threads(), "a client's loop thread is still running after close()"
    left = set(threading.enumerate()) - threads_before
    assert not left, f"threads left running after close(): {left}"


def user_app() -> web.Application:
    async def user(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": int(request.match_info["id"]), "name": "Ada"},
            headers={"x-request-id": "req_7"},
        )

    return routes(("GET", "/v1/users/{id}", user))


# -- plain calls -----------------------------------------------------------------------


def test_get_returns_typed_model_and_releases_connection(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")
    assert client.loop_thread is None  # nothing started before the first call
    user = client.get("/users/{id}", path_params={"id": 3}, cast_to=User)
    assert user == User(id=3, name="Ada")
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    # A second call reuses the same connection.
    assert client.get("/users/4", cast_to=User).id == 4
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


def test_without_cast_to_returns_a_blocking_response(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")
    response = client.get("/users/5")
    assert isinstance(response, stackwire.SyncResponse)
    assert response.status_code == 200
    assert response.request_id == "req_7"
    assert response.json() == {"id": 5, "name": "Ada"}
    assert response.parse() is response
    assert response.read() == response.content


def test_status_error_is_raised_typed_in_the_calling_thread(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": {"type": "not_found"}}, status=404)

    client = make_client(server.app(routes(("GET", "/missing", missing))))
    with pytest.raises(stackwire.NotFoundError) as caught:
        client.get("/missing", cast_to=User)
    assert caught.value.status_code == 404
    assert caught.value.body == {"error": {"type": "not_found"}}
    assert caught.value.retries_taken == 0


def test_bad_input_fails_before_any_thread_starts(server: ServerThread) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="max_retries"):
        stackwire.Client("http://127.0.0.1:1/", max_retries=-1)
    with pytest.raises(stackwire.InvalidRequestError, match="AsyncClient"):
        stackwire.Client("http://127.0.0.1:1/", session=object())  # type: ignore[arg-type]
    assert not loop_threads()


def test_retries_sleep_through_the_injected_async_sleep(
    server: ServerThread,
    make_client: Callable[..., stackwire.Client],
    client_sleeps: SleepRecorder,
) -> None:
    attempts: list[str | None] = []

    async def flaky(request: web.Request) -> web.Response:
        attempts.append(request.headers.get("X-Retry-Count"))
        if len(attempts) < 3:
            return web.json_response({}, status=503, headers={"retry-after-ms": "250"})
        return web.json_response({"id": 1, "name": "Ada"})

    client = make_client(server.app(routes(("POST", "/users", flaky))))
    response = client.with_raw_response.post("/users", json={"name": "Ada"}, cast_to=User)
    assert response.parse() == User(id=1, name="Ada")
    assert response.retries_taken == 2
    assert attempts == ["0", "1", "2"]
    assert client_sleeps.delays == [0.25, 0.25]


def test_a_plain_function_as_sleep_is_called_not_awaited(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    # A test's recorder, `slept.append`: it was a bare TypeError at the first retry.
    calls = 0

    async def flaky(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls < 2:
            return web.json_response({}, status=503, headers={"retry-after-ms": "250"})
        return web.json_response({"id": 1, "name": "Ada"})

    slept: list[float] = []
    client = make_client(server.app(routes(("GET", "/users/1", flaky))), sleep=slept.append)
    assert client.get("/users/1", cast_to=User) == User(id=1, name="Ada")
    assert slept == [0.25]


def test_retries_exhausted_raise_in_the_calling_thread(
    server: ServerThread,
    make_client: Callable[..., stackwire.Client],
    client_sleeps: SleepRecorder,
) -> None:
    async def down(request: web.Request) -> web.Response:
        return web.Response(text="down", status=500)

    client = make_client(server.app(routes(("GET", "/down", down))))
    with pytest.raises(stackwire.InternalServerError) as caught:
        client.get("/down")
    assert caught.value.retries_taken == 2
    assert len(client_sleeps.delays) == 2


def test_raw_response_parses_typed(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")
    response = client.with_raw_response.get("/users/9", cast_to=User)
    assert isinstance(response, stackwire.SyncResponse)
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "req_7"
    assert str(response.request.url).endswith("/v1/users/9")
    assert response.parse() == User(id=9, name="Ada")


def test_blocking_iterable_is_sent_as_the_body(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    def chunks() -> Iterator[bytes]:
        yield b"hello, "
        yield b"blocking "
        yield b"world"

    client = make_client(server.app(routes(("POST", "/echo", echo))))
    response = client.post("/echo", content=chunks(), max_retries=0)
    assert response.content == b"hello, blocking world"


def test_calls_from_many_threads_share_one_pool(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")
    results: dict[int, User] = {}

    def call(n: int) -> None:
        results[n] = client.get(f"/users/{n}", cast_to=User)

    threads = [threading.Thread(target=call, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {n: User(id=n, name="Ada") for n in range(8)}
    stats = client.pool_stats()
    assert stats.in_use == 0
    assert 1 <= stats.idle <= 8


def test_timeout_raises_and_releases_the_connection(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await reader.read()  # never answers; returns when the client hangs up

    base, _ = server.raw(silent)
    client = make_client(base)
    with pytest.raises(stackwire.APITimeoutError):
        client.get("/slow", timeout=0.05, max_retries=0)
    assert client.pool_stats().in_use == 0


def test_paginate_walks_every_page(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    pages = {
        None: {"data": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], "next_cursor": "p2"},
        "p2": {"data": [{"id": 3, "name": "c"}], "next_cursor": "p3"},
        "p3": {"data": [{"id": 4, "name": "d"}], "has_more": False},
    }
    limits: list[str | None] = []

    async def users(request: web.Request) -> web.Response:
        limits.append(request.query.get("limit"))
        return web.json_response(pages[request.query.get("cursor")])

    client = make_client(server.app(routes(("GET", "/users", users))))
    paginator = client.paginate("/users", page=stackwire.CursorPage[User], query={"limit": 2})
    assert isinstance(paginator, stackwire.SyncPaginator)
    assert limits == []  # nothing sent until used
    first = paginator.first_page()
    assert [user.id for user in first.data] == [1, 2]
    assert [user.id for user in paginator] == [1, 2, 3, 4]
    assert [len(page.data) for page in paginator.iter_pages()] == [2, 1, 1]
    assert limits == ["2"] * 7  # every page keeps the first request's query
    assert client.pool_stats().in_use == 0


def test_a_blocking_clients_page_can_be_awaited_on_another_loop(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    # A notebook cell (or asyncio.run) awaiting get_next_page() of a page from the
    # blocking client: it used the client's session on the caller's loop, and failed
    # with "attached to a different loop", leaving a broken connection behind.
    async def users(request: web.Request) -> web.Response:
        cursor = int(request.query.get("cursor", "1"))
        return web.json_response(
            {
                "data": [{"id": cursor, "name": "x"}],
                "has_more": cursor < 3,
                "next_cursor": str(cursor + 1),
            }
        )

    client = make_client(server.app(routes(("GET", "/users", users))))
    first = client.paginate("/users", page=stackwire.CursorPage[User]).first_page()

    async def walk() -> list[int]:
        second = await first.get_next_page()
        return [user.id for page in [first, second] for user in page.data] + [
            user.id async for page in second.iter_pages() for user in page.data
        ]

    assert asyncio.run(walk()) == [1, 2, 2, 3]
    assert client.pool_stats().in_use == 0
    client.close()
    with pytest.raises(stackwire.ClientClosedError):
        asyncio.run(first.get_next_page())


# -- streams ---------------------------------------------------------------------------


def sse_app(events: list[bytes]) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events:
            await response.write(event)
        await response.write_eof()
        return response

    return routes(("GET", "/events", stream))


def test_sse_stream_yields_typed_items(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    events = [b'data: {"text": "he"}\n\n', b'data: {"text"', b': "llo"}\n\n', b"data: {}\n"]
    events[-1] = b'event: done\ndata: {"text": "!"}\n\n'
    client = make_client(server.app(sse_app(events)))
    with client.get("/events", cast_to=Delta, stream=True) as stream:
        assert isinstance(stream, stackwire.Stream)
        assert stream.response.status_code == 200
        assert [delta.text for delta in stream] == ["he", "llo", "!"]
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


def endless_sse(hung_up: threading.Event) -> RawHandler:
    """A raw server sending one event of a stream that never ends; ``hung_up`` is set
    when the client closes the connection."""

    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        event = b'data: {"text": "0"}\n\n'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n" + b"%x\r\n%s\r\n" % (len(event), event)
        )
        await writer.drain()
        await reader.read()
        hung_up.set()

    return endless


def test_stream_left_early_closes_the_connection(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    hung_up = threading.Event()
    base, _ = server.raw(endless_sse(hung_up))
    client = make_client(base)
    with client.get("/events", cast_to=Delta, stream=True) as stream:
        for delta in stream:
            assert delta.text == "0"
            break
    assert stream.response.is_closed
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    assert hung_up.wait(timeout=10)


def test_stream_error_event_raises_in_the_calling_thread(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    events = [b'data: {"text": "a"}\n\n', b'event: error\ndata: {"type": "overloaded"}\n\n']
    client = make_client(server.app(sse_app(events)))
    seen: list[str] = []
    stream = client.get("/events", cast_to=Delta, stream=True)

    def read_all() -> None:
        for delta in stream:
            seen.append(delta.text)

    with pytest.raises(stackwire.StreamError) as caught:
        read_all()
    assert seen == ["a"]
    assert caught.value.body == {"type": "overloaded"}
    assert stream.response.is_closed


def test_streaming_response_iter_bytes_and_lines(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    parts = [b"first\r", b"\nsecond\n", b"thi", b"rd\rfour", b"th \xe2\x82", b"\xac"]

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        for part in parts:
            await response.write(part)
        await response.write_eof()
        return response

    client = make_client(server.app(routes(("GET", "/file", chunked))))
    with client.with_streaming_response.get("/file") as response:
        assert response.status_code == 200
        assert b"".join(response.iter_bytes()) == b"".join(parts)
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    with client.with_streaming_response.get("/file") as response:
        assert list(response.iter_lines()) == ["first", "second", "third", "fourth €"]
    with client.with_streaming_response.get("/file") as response:
        assert response.read() == b"".join(parts)
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    # The blocking twins of every body iterator of `Response` (``chunk_size=`` and
    # ``iter_text()`` were missing: a TypeError and an AttributeError).
    with client.with_streaming_response.get("/file") as response:
        sized = list(response.iter_bytes(chunk_size=8))
        assert b"".join(sized) == b"".join(parts)
        assert [len(chunk) for chunk in sized[:-1]] == [8] * (len(sized) - 1)
    with client.with_streaming_response.get("/file") as response:
        assert "".join(response.iter_text()) == "first\r\nsecond\nthird\rfourth €"
    with client.with_streaming_response.get("/file") as response:
        with pytest.raises(stackwire.InvalidRequestError, match="chunk_size"):
            response.iter_bytes(chunk_size=0)
        text = cast("Generator[str, None, None]", response.iter_text())
        assert next(text).startswith("first")
        text.close()  # left early: nothing stays checked out
    assert client.pool_stats().in_use == 0


def test_streaming_response_iter_lines_keeps_a_cut_last_character_in_its_line(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    # A body ending inside a UTF-8 character: its U+FFFD ends the last line, as the
    # async iter_lines gives it; it came out as a line of its own.
    async def cut(request: web.Request) -> web.Response:
        return web.Response(body=b"one\ntwo \xe2\x82", content_type="text/plain")

    client = make_client(server.app(routes(("GET", "/file", cut))))
    with client.with_streaming_response.get("/file") as response:
        assert list(response.iter_lines()) == ["one", "two \ufffd"]


def test_streaming_response_iter_bytes_by_size_and_iter_text(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    # The blocking twin of the async methods: it had neither chunk_size nor iter_text.
    parts = [b"abcde", b"fgh\xe2\x82", b"\xac"]

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        for part in parts:
            await response.write(part)
        await response.write_eof()
        return response

    client = make_client(server.app(routes(("GET", "/file", chunked))))
    with client.with_streaming_response.get("/file") as response:
        assert list(response.iter_bytes(chunk_size=4)) == [b"abcd", b"efgh", b"\xe2\x82\xac"]
    with client.with_streaming_response.get("/file") as response:
        assert "".join(response.iter_text()) == "abcdefgh€"
    with (
        client.with_streaming_response.get("/file") as response,
        pytest.raises(stackwire.InvalidRequestError, match="chunk_size"),
    ):
        response.iter_bytes(chunk_size=0)
    # (The last body was left unread: its connection is pooled or closed, as it
    # happened to have arrived whole or not.)
    assert client.pool_stats().in_use == 0


def test_streaming_response_left_unread_closes_the_connection(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(sse_app([b"data: {}\n\n"] * 3)))
    with client.with_streaming_response.get("/events") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
    assert response.is_closed
    assert client.pool_stats().in_use == 0


@given(st.text(alphabet="ab\r\n\u2028", max_size=30), st.lists(st.integers(0, 30), max_size=5))
def test_split_lines_does_not_depend_on_where_the_text_is_cut(text: str, cuts: list[int]) -> None:
    bounds = sorted({0, len(text), *(min(cut, len(text)) for cut in cuts)})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)]
    expected = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if expected[-1] == "":
        expected.pop()
    assert list(split_lines(pieces)) == expected


# -- derived clients, middlewares, lifecycle -------------------------------------------


def test_derived_clients_share_the_loop_and_session(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    seen: list[tuple[str | None, str]] = []

    async def who(request: web.Request) -> web.Response:
        return web.json_response({"id": 1, "name": request.headers.get("X-Tenant", "-")})

    async def note_thread(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        seen.append((request.headers.get("X-Tenant"), threading.current_thread().name))
        return await call_next(request)

    client = make_client(server.app(routes(("GET", "/who", who))))
    tenant = client.with_options(headers={"X-Tenant": "acme"}).with_middleware(note_thread)
    assert tenant.get("/who", cast_to=User).name == "acme"
    assert client.get("/who", cast_to=User).name == "-"
    # One session: the second call reused the connection of the first.
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    assert tenant.loop_thread is client.loop_thread
    assert client.loop_thread is not None
    # Middlewares stay async and run on the client's loop thread.
    assert seen == [("acme", client.loop_thread.name)]
    assert "note_thread" in tenant.pipeline
    assert "note_thread" not in client.pipeline

    tenant.close()
    assert client.get("/who", cast_to=User).name == "-"  # the root still works
    with pytest.raises(stackwire.ClientClosedError):
        tenant.get("/who")


def test_close_stops_the_thread_and_later_calls_fail(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    with make_client(server.app(user_app()) + "v1") as client:
        client.get("/users/1", cast_to=User)
        derived = client.with_options(max_retries=0)
        thread = client.loop_thread
        assert thread is not None
        assert thread.is_alive()
        assert thread.daemon
    assert client.is_closed
    assert not thread.is_alive()
    assert not loop_threads()
    with pytest.raises(stackwire.ClientClosedError):
        client.get("/users/1", cast_to=User)
    with pytest.raises(stackwire.ClientClosedError):
        derived.get("/users/1", cast_to=User)
    client.close()  # a second close is a no-op


def test_a_call_in_flight_when_another_thread_closes_the_client_fails_as_closed(
    server: ServerThread, client_sleeps: SleepRecorder
) -> None:
    # It was an APIConnectionError saying "the server closed the connection" (or,
    # with retries left, a retry first): the client, not the server, had hung up.
    got_request = threading.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()

    base, raw = server.raw(silent)
    client = stackwire.Client(base, sleep=client_sleeps)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.get("/slow")
        except BaseException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert got_request.wait(timeout=10)
    client.close()
    caller.join(timeout=10)
    assert not caller.is_alive()
    assert [type(error) for error in errors] == [stackwire.ClientClosedError]
    assert "closed while" in str(errors[0])
    assert (raw.connections, client_sleeps.delays) == (1, [])
    assert not loop_threads()


def close_during_the_next_hand_over(
    client: stackwire.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Make another thread close ``client`` while the next call is handed to its loop,
    in the moment between the loop's last turn and its close: the hand-over waits for
    that moment (up to 0.5 s), the close for the hand-over."""
    loop = client._runtime._get_loop()
    closing, queued = threading.Event(), threading.Event()
    close_loop, hand_over = loop.close, loop.call_soon_threadsafe

    def close_after_the_hand_over() -> None:
        closing.set()
        queued.wait(timeout=5)
        close_loop()

    def hand_over_as_it_closes(callback: Any, *args: Any, **kwargs: Any) -> Any:
        monkeypatch.setattr(loop, "call_soon_threadsafe", hand_over)
        threading.Thread(target=client.close).start()
        closing.wait(timeout=0.5)
        handle = hand_over(callback, *args, **kwargs)
        queued.set()
        return handle

    monkeypatch.setattr(loop, "close", close_after_the_hand_over)
    monkeypatch.setattr(loop, "call_soon_threadsafe", hand_over_as_it_closes)


def outcome_in_a_thread(call: Callable[[], object]) -> list[object]:
    """What ``call()`` returned or raised (its type), run in a thread; fails the test
    if it is still waiting after 10 s."""
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(call())
        except BaseException as exc:
            outcomes.append(type(exc))

    caller = threading.Thread(target=run, daemon=True)
    caller.start()
    caller.join(timeout=10)
    assert not caller.is_alive(), "the call waited forever"
    return outcomes


def test_a_call_handed_over_as_another_thread_closes_the_client_never_hangs(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Queued on the loop after its last turn, just before `loop.close()`, the call was
    # dropped by that close, and its caller waited forever.
    client = stackwire.Client(server.app(user_app()) + "v1")
    assert client.get("/users/1", cast_to=User).id == 1
    close_during_the_next_hand_over(client, monkeypatch)
    outcome = outcome_in_a_thread(lambda: client.get("/users/2", cast_to=User).id)
    assert outcome in ([2], [stackwire.ClientClosedError])
    assert client.loop_thread is not None
    client.loop_thread.join(timeout=10)
    assert not loop_threads()


def test_a_page_awaited_on_another_loop_as_the_client_closes_never_hangs(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def users(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": 1, "name": "Ada"}], "has_more": False})

    client = stackwire.Client(server.app(routes(("GET", "/users", users))))
    paginator = client.paginate("/users", page=stackwire.CursorPage[User])
    assert [user.id for user in paginator] == [1]
    close_during_the_next_hand_over(client, monkeypatch)

    async def first_page() -> object:
        return (await paginator.async_paginator).data[0].id

    outcome = outcome_in_a_thread(lambda: asyncio.run(first_page()))
    # (Cancelled by the close, it was a bare CancelledError on the caller's loop.)
    assert outcome in ([1], [stackwire.ClientClosedError])
    assert client.loop_thread is not None
    client.loop_thread.join(timeout=10)
    assert not loop_threads()


def test_close_from_two_threads_returns_in_both_once_the_loop_is_gone(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second close() returned at once, while the first was still closing: the
    # loop thread was still running after it.
    client = stackwire.Client(server.app(user_app()) + "v1")
    assert client.get("/users/1", cast_to=User).id == 1
    closing = threading.Event()
    close_session = client.async_client.close

    async def slow_close() -> None:
        closing.set()
        await asyncio.sleep(0.2)
        await close_session()

    monkeypatch.setattr(client.async_client, "close", slow_close)
    thread = client.loop_thread
    assert thread is not None
    first = threading.Thread(target=client.close)
    first.start()
    assert closing.wait(timeout=10)
    client.close()
    assert not thread.is_alive()
    first.join(timeout=10)


def test_a_closed_client_cannot_be_entered_again(server: ServerThread) -> None:
    client = stackwire.Client(server.app(user_app()) + "v1")
    with client:
        assert client.get("/users/1", cast_to=User).id == 1
    with pytest.raises(stackwire.ClientClosedError, match="cannot be reopened"), client:
        pass  # pragma: no cover - not entered
    with stackwire.Client(server.app(user_app())) as root:
        derived = root.with_options(max_retries=0)
        derived.close()
        with pytest.raises(stackwire.ClientClosedError), derived:
            pass  # pragma: no cover - not entered


def test_closing_the_client_closes_a_stream_still_open(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    # The stream's connection outlived the loop: the stream could no longer close
    # it, and aiohttp warned "Unclosed connection" when it was collected.
    hung_up = threading.Event()
    base, _ = server.raw(endless_sse(hung_up))
    client = make_client(base)
    stream = client.get("/events", cast_to=Delta, stream=True)
    streamed = client.with_streaming_response.get("/events")
    response = streamed.__enter__()
    assert next(stream).text == "0"
    with resource_warnings() as messages:
        client.close()
        assert stream.response.is_closed
        assert response.is_closed
        assert hung_up.wait(timeout=10)
        with pytest.raises(stackwire.ClientClosedError):
            next(stream)
        stream.close()
        streamed.__exit__(None, None, None)
        del stream, streamed, response
        gc.collect()
    assert messages == []


def test_derived_client_with_its_own_session_is_closed_with_the_root(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")
    small_pool = client.with_options(max_connections=1)
    assert small_pool.get("/users/2", cast_to=User).id == 2
    assert client.pool_stats().idle == 0  # a separate session
    assert small_pool.pool_stats().idle == 1
    client.close()  # no ResourceWarning for the derived client's session
    assert not loop_threads()


def test_unclosed_client_warns_and_its_thread_ends(server: ServerThread) -> None:
    client = stackwire.Client(server.app(user_app()) + "v1", api_key="sk-secret-123456789")
    assert client.get("/users/1", cast_to=User).id == 1
    thread = client.loop_thread
    assert thread is not None
    with resource_warnings() as messages:
        del client
        gc.collect()
        thread.join(timeout=10)
        gc.collect()
    assert not thread.is_alive()
    assert len(messages) == 1, messages
    assert messages[0].startswith("unclosed Client for http://127.0.0.1:")
    assert "sk-secret" not in messages[0]


def test_unclosed_stream_warns_once_and_is_closed_on_its_loop(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    hung_up = threading.Event()
    base, _ = server.raw(endless_sse(hung_up))
    client = make_client(base)
    stream = client.get("/events", cast_to=Delta, stream=True)
    assert next(stream).text == "0"
    with resource_warnings() as messages:
        del stream
        gc.collect()
        stats = client.pool_stats()  # runs on the loop after the scheduled close
    assert len(messages) == 1, messages
    assert messages[0].startswith("unclosed stream for GET")
    assert stats.in_use == 0
    assert hung_up.wait(timeout=10)


def test_repr_hides_the_api_key() -> None:
    client = stackwire.Client("https://api.example.com/v1", api_key="sk-secret-123456789")
    assert repr(client) == "Client('https://api.example.com/v1/', api_key='***6789')"
    client.close()


# -- blocking in the wrong place, interrupts ------------------------------------------


async def test_blocking_call_works_inside_a_running_loop(server: ServerThread) -> None:
    # This test body runs on pytest's event loop, as a notebook cell runs on IPython's.
    hits: list[str] = []

    async def hit(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"id": 1, "name": "Ada"})

    with stackwire.Client(server.app(routes(("GET", "/hit", hit)))) as client:
        assert client.get("/hit", cast_to=User) == User(id=1, name="Ada")
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    assert hits == ["/hit"]


def test_blocking_client_called_from_asyncio_run(server: ServerThread) -> None:
    """``asyncio.run(main())`` where ``main`` calls the blocking client synchronously:
    plain calls, errors, streams and streamed responses work, and closing one there
    releases its connection before ``close()`` returns."""
    events = [b'data: {"text": "a"}\n\n', b'data: {"text": "b"}\n\n']
    app = sse_app(events)

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"error": "nope"}, status=404)

    app.router.add_get("/missing", missing)
    base = server.app(app)

    def sync_sdk_code(client: stackwire.Client) -> list[object]:
        seen: list[object] = []
        with client.get("/events", cast_to=Delta, stream=True) as stream:
            seen += [delta.text for delta in stream]
        with client.with_streaming_response.get("/events") as response:
            seen.append(response.status_code)
        seen.append(response.is_closed)
        # Nothing is left checked out (whether the unread stream's connection could be
        # kept depends on whether all its body had arrived when it was closed).
        seen.append(client.pool_stats().in_use)
        try:
            client.get("/missing")
        except stackwire.NotFoundError as exc:
            seen.append(exc.status_code)
        return seen

    async def main() -> list[object]:
        with stackwire.Client(base) as client:
            return sync_sdk_code(client)

    assert asyncio.run(main()) == ["a", "b", 200, True, 0, 404]
    assert not loop_threads()


def test_middleware_calling_the_blocking_client_raises(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")

    async def reentrant(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        client.get("/users/1")  # blocks on its own loop: refused
        return await call_next(request)

    with pytest.raises(stackwire.BlockingCallInEventLoopError, match="own event loop"):
        client.with_middleware(reentrant).get("/users/1", max_retries=0)


def test_an_interrupt_inside_the_hand_over_to_the_loop_still_cancels_the_call(
    server: ServerThread,
    make_client: Callable[..., stackwire.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Ctrl-C can land inside call_soon_threadsafe, after the call was queued and
    # while the loop thread already sends it (1 run in 5 of the test below).
    got_request = threading.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()

    base, _ = server.raw(silent)
    client = make_client(base)
    loop = client._runtime._get_loop()
    hand_over = loop.call_soon_threadsafe
    interrupts = [KeyboardInterrupt()]

    def interrupted(callback: Any, *args: Any, **kwargs: Any) -> Any:
        handle = hand_over(callback, *args, **kwargs)
        if interrupts:
            assert got_request.wait(timeout=10)
            raise interrupts.pop()
        return handle

    monkeypatch.setattr(loop, "call_soon_threadsafe", interrupted)
    with pytest.raises(KeyboardInterrupt):
        client.get("/forever", max_retries=0)
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


def test_keyboard_interrupt_cancels_the_call_and_closes_its_connection(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    got_request = threading.Event()
    hung_up = threading.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        got_request.set()
        await reader.read()  # returns when the client closes the connection
        hung_up.set()

    base, raw = server.raw(silent)
    client = make_client(base)

    def press_ctrl_c() -> None:
        if got_request.wait(timeout=10):
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    interrupter = threading.Thread(target=press_ctrl_c)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            client.get("/forever", max_retries=0)
    finally:
        interrupter.join()
        signal.signal(signal.SIGINT, previous)
    # The call was cancelled on the loop and its connection closed before the
    # interrupt reached the caller.
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
    assert hung_up.wait(timeout=10)
    assert raw.connections == 1


def test_every_public_name_of_the_async_client_has_a_blocking_twin() -> None:
    # The verbs were descriptors: `Client.get` on the class was no callable, and on a
    # client its signature said `**kwargs` where AsyncClient's says `**options`.
    def public(kind: type) -> set[str]:
        return {name for name in dir(kind) if not name.startswith("_")}

    async_client = stackwire.AsyncClient("http://127.0.0.1:9/")
    client = stackwire.Client("http://127.0.0.1:9/")
    try:
        assert public(stackwire.AsyncClient) <= public(stackwire.Client)
        pairs: list[tuple[Any, Any]] = [
            (async_client, client),
            (async_client.with_raw_response, client.with_raw_response),
            (async_client.with_streaming_response, client.with_streaming_response),
        ]
        for twin, blocking in pairs:
            assert public(type(twin)) <= public(type(blocking))
            for name in public(type(twin)):
                ours, theirs = getattr(blocking, name), getattr(twin, name)
                if not callable(theirs):
                    continue
                assert callable(getattr(type(blocking), name)), name
                assert inspect.signature(ours).parameters.keys() == (
                    inspect.signature(theirs).parameters.keys()
                ), name
        assert client.transport is client.async_client.transport
        assert client.owns_transport
    finally:
        client.close()
        asyncio.run(async_client.close())


# -- typing of the verbs (checked by mypy --strict over tests/), head and options -----


def test_request_and_streams_are_typed_like_the_async_verbs(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    client = make_client(server.app(user_app()) + "v1")
    user = client.request("get", "/users/{id}", path_params={"id": 2}, cast_to=User)
    assert_type(user, User)
    assert user == User(id=2, name="Ada")
    response = client.request("GET", "/users/3")
    assert_type(response, stackwire.SyncResponse[Any])
    assert response.json() == {"id": 3, "name": "Ada"}
    raw = client.with_raw_response.request("GET", "/users/4", cast_to=User)
    assert_type(raw, stackwire.SyncResponse[User])
    assert raw.parse() == User(id=4, name="Ada")
    streaming = client.with_streaming_response.request("GET", "/users/5", cast_to=User)
    assert_type(streaming, AbstractContextManager[stackwire.SyncResponse[User]])
    with streaming as unread:
        assert unread.parse() == User(id=5, name="Ada")

    events = make_client(server.app(sse_app([b'data: {"text": "a"}\n\ndata: 7\n\n'])))
    with events.get("/events", cast_to=Delta | int, stream=True) as union:
        assert_type(union, stackwire.Stream[Delta | int])
        assert list(union) == [Delta(text="a"), 7]
    with events.request("GET", "/events", stream=True) as bare:
        assert_type(bare, stackwire.Stream[Any])
        assert [event.data for event in bare] == ['{"text": "a"}', "7"]


def test_request_of_the_views_is_typed_as_a_stream_with_stream_true(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    events = make_client(server.app(sse_app([b'data: {"text": "a"}\n\ndata: 7\n\n'])))
    raw = events.with_raw_response.request("GET", "/events", cast_to=Delta | int, stream=True)
    assert_type(raw, stackwire.SyncResponse[stackwire.Stream[Delta | int]])
    with raw.parse() as parsed:
        assert list(parsed) == [Delta(text="a"), 7]
    unread = events.with_streaming_response.request(
        "GET", "/events", cast_to=Delta | int, stream=True
    )
    assert_type(
        unread, AbstractContextManager[stackwire.SyncResponse[stackwire.Stream[Delta | int]]]
    )
    with unread as response, response.parse() as stream:
        assert list(stream) == [Delta(text="a"), 7]
    assert events.pool_stats().in_use == 0


def test_head_and_options_verbs_block_too(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    async def head(request: web.Request) -> web.Response:
        return web.Response(headers={"X-Seen": request.method, "Content-Length": "12"})

    async def allow(request: web.Request) -> web.Response:
        return web.json_response({"id": 1, "name": "Ada"}, headers={"Allow": "GET, HEAD"})

    client = make_client(server.app(routes(("HEAD", "/u", head), ("OPTIONS", "/u", allow))))
    response = client.head("/u")
    assert_type(response, stackwire.SyncResponse[Any])
    assert (response.status_code, response.headers["X-Seen"], response.content) == (
        200,
        "HEAD",
        b"",
    )
    allowed = client.options("/u")
    assert_type(allowed, stackwire.SyncResponse[Any])
    assert allowed.headers["Allow"] == "GET, HEAD"
    assert_type(client.options("/u", cast_to=User), User)
    raw = client.with_raw_response.options("/u", cast_to=User)
    assert_type(raw, stackwire.SyncResponse[User])
    assert raw.parse() == User(id=1, name="Ada")
    assert client.with_raw_response.head("/u").headers["X-Seen"] == "HEAD"
    with client.with_streaming_response.head("/u") as unread:
        assert unread.read() == b""
    with client.with_streaming_response.options("/u") as unread:
        assert unread.headers["Allow"] == "GET, HEAD"
    assert client.pool_stats().in_use == 0


def test_the_blocking_client_takes_auth_on_the_client_and_per_call(
    server: ServerThread,
) -> None:
    seen: list[str | None] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    base = server.app(app)
    auth = stackwire.BearerToken(lambda: stackwire.Token("sync-token"))
    with stackwire.Client(base, auth=auth) as client:
        assert client.get("/x", cast_to=dict) == {"ok": True}
        assert client.get("/y", auth=None, cast_to=dict) == {"ok": True}
        assert client.get("/z", auth=stackwire.BasicAuth("u", "p"), cast_to=dict) == {"ok": True}
    assert seen == ["Bearer sync-token", None, "Basic dTpw"]


def test_stream_true_through_the_raw_views_parses_into_a_stream(
    server: ServerThread, make_client: Callable[..., stackwire.Client]
) -> None:
    # As in the OpenAI SDK: `with_raw_response` / `with_streaming_response` with
    # `stream=True` give the response, and `parse()` the typed stream.
    events = [b'data: {"text": "a"}\n\n', b'data: {"text": "b"}\n\n']
    client = make_client(server.app(sse_app(events)))
    response = client.with_raw_response.get("/events", cast_to=Delta, stream=True)
    stream = response.parse()
    assert isinstance(stream, stackwire.Stream)
    assert [delta.text for delta in stream] == ["a", "b"]
    with client.with_streaming_response.get("/events", cast_to=Delta, stream=True) as response:
        streamed = response.parse()
        assert isinstance(streamed, stackwire.Stream)
        assert next(streamed).text == "a"
    assert client.pool_stats().in_use == 0
    with client.with_streaming_response.get("/events", cast_to=Delta) as unread:
        assert b"".join(unread.iter_bytes()) == b"".join(events)  # unread without it
