"""The ``retry`` middleware: its decisions over the testing kit's `MockTransport` with
virtual time, what it does on the wire over real sockets (sleeps recorded, never slept)."""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

import stackwire
from stackwire import APIError, APIStatusError, RetryEvent
from stackwire.middlewares.retry import default_should_retry
from stackwire.pipeline import ExtensionKey, Pipeline
from stackwire.testing import MockResponse, MockTransport, Router, VirtualTime
from tests.conftest import RawHandler, RawServer, Serve, SleepRecorder, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]
StartRaw = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]

NOW = 1_700_000_000.0
PINNED = {"random": lambda: 0.0}  # jitter factor exactly 1.0


class Script:
    """A handler answering from a script of ``(status, headers)`` replies (the last
    one repeats), recording each request's method and headers."""

    def __init__(self, *replies: tuple[int, Mapping[str, str]] | int) -> None:
        self.replies = [r if isinstance(r, tuple) else (r, {}) for r in replies]
        self.seen: list[dict[str, str]] = []

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.seen.append({k.lower(): v for k, v in request.headers.items()})
        status, headers = self.replies[min(len(self.seen), len(self.replies)) - 1]
        return web.json_response({"status": status}, status=status, headers=headers)

    @property
    def count(self) -> int:
        return len(self.seen)


async def scripted(
    serve: Serve, *replies: tuple[int, Mapping[str, str]] | int
) -> tuple[str, Script]:
    script = Script(*replies)
    app = routes(
        *(
            (method, "/r", script.handle)
            for method in ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
        )
    )
    return await serve(app), script


def free_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Retry *decisions* (what is retried, how often, how long it waits) need no socket:
# these tests run over the testing kit's MockTransport, with virtual time. The tests
# of what retries do on the wire (released connections, bodies, keys after a dropped
# connection) stay on real sockets below.


class Mocked:
    """A client over a `MockTransport` answering ``/r`` from a script of replies (the
    last one repeats), with the attempts seen and the virtual sleeps."""

    def __init__(self, *replies: tuple[int, Mapping[str, str]] | int, **options: Any) -> None:
        script = [r if isinstance(r, tuple) else (r, {}) for r in replies]
        self.answers = [MockResponse(s, json={"status": s}, headers=h) for s, h in script]
        self.router = Router("http://api.test/")
        self.route = self.router.get("/r").respond_with(self._answer)
        self.time = VirtualTime()
        options.setdefault("random", self.time.random)
        self.client = stackwire.AsyncClient(
            "http://api.test/",
            transport=MockTransport(self.router),
            sleep=self.time.sleep,
            clock=self.time.clock,
            **options,
        )

    def _answer(self, request: stackwire.Request) -> MockResponse:
        return self.answers[min(self.route.call_count, len(self.answers)) - 1]

    @property
    def count(self) -> int:
        return self.route.call_count

    async def __aenter__(self) -> Mocked:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.client.close()


# -- the budget and the schedule ---------------------------------------------------------


async def test_500_always_makes_three_requests_then_raises(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, script = await scripted(serve, 500)
    client = make_client(base)
    with pytest.raises(stackwire.InternalServerError) as info:
        await client.get("/r")
    assert script.count == 3
    assert info.value.retries_taken == 2
    assert len(client_sleeps.delays) == 2
    assert client.pool_stats().in_use == 0


async def test_exact_backoff_with_jitter_pinned() -> None:
    async with Mocked(500, 500, 500, 500, 200, max_retries=4, **PINNED) as api:
        response = await api.client.with_raw_response.get("/r")
    assert response.status_code == 200
    assert api.time.slept == [0.5, 1.0, 2.0, 4.0]
    assert response.retries_taken == 4
    assert api.count == 5


async def test_backoff_is_configurable_on_the_client() -> None:
    async with Mocked(503, max_retries=4, initial_delay=0.1, max_delay=0.3, jitter=0.0) as api:
        with pytest.raises(stackwire.ServiceUnavailableError):
            await api.client.get("/r")
    assert api.time.slept == [0.1, 0.2, 0.3, 0.3]


async def test_max_retries_per_request_never_changes_the_client() -> None:
    async with Mocked(500) as api:
        client = api.client
        with pytest.raises(stackwire.InternalServerError) as info:
            await client.get("/r", max_retries=0)
        assert (api.count, info.value.retries_taken) == (1, 0)
        with pytest.raises(stackwire.InternalServerError):
            await client.get("/r", max_retries=4)
        assert api.count == 1 + 5
        assert client.max_retries == 2
        with pytest.raises(stackwire.InternalServerError):
            await client.get("/r")
        assert api.count == 6 + 3


async def test_max_retries_zero_on_the_client_disables() -> None:
    async with Mocked(503, max_retries=0) as api:
        with pytest.raises(stackwire.ServiceUnavailableError):
            await api.client.get("/r")
    assert (api.count, api.time.slept) == (1, [])


async def test_none_turns_retries_and_the_key_off_for_one_call() -> None:
    # DESIGN §2: for a per-request option, None means "off".
    router = Router("http://api.test/")
    route = router.post("/r").respond(503, json={})
    time = VirtualTime()
    client = stackwire.AsyncClient(
        "http://api.test/", transport=MockTransport(router), sleep=time.sleep, clock=time.clock
    )
    async with client:
        with pytest.raises(stackwire.ServiceUnavailableError) as info:
            await client.post("/r", max_retries=None)
        assert (route.call_count, info.value.retries_taken, time.slept) == (1, 0, [])
        assert "Idempotency-Key" in router.calls[0].request.headers
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.post("/r", idempotency_key=None)
        assert route.call_count == 1 + 3  # the client's retries, without a key
        assert all("Idempotency-Key" not in call.request.headers for call in router.calls[1:])


@pytest.mark.parametrize("bad", [-1, 1.5, True, "2"])
async def test_bad_max_retries_is_rejected_before_io(
    serve: Serve, make_client: MakeClient, bad: Any
) -> None:
    base, script = await scripted(serve, 200)
    with pytest.raises(stackwire.InvalidRequestError, match="max_retries must be an int >= 0"):
        stackwire.AsyncClient(base, max_retries=bad)
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError, match="max_retries"):
        await client.get("/r", max_retries=bad)
    assert script.count == 0
    with pytest.raises(stackwire.InvalidRequestError, match="max_retries must be an int >= 0"):
        stackwire.AsyncClient(base, max_retries=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("jitter", 1.0),
        ("jitter", -0.1),
        ("initial_delay", 0),
        ("max_delay", float("nan")),
        ("initial_delay", 10.0),  # above max_delay=8
        ("max_retry_after", -1),
        ("idempotency_header", "Bad Header"),
        ("retry_count_header", "X-Count\r\n"),
        ("should_retry", "yes"),
    ],
)
def test_bad_retry_options_are_rejected_at_construction(option: str, value: Any) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match=option):
        stackwire.AsyncClient("http://127.0.0.1:1/", **{option: value})


# -- what is retried ----------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
async def test_retryable_status_is_retried_once_then_succeeds(status: int) -> None:
    async with Mocked(status, 200, **PINNED) as api:
        response = await api.client.with_raw_response.get("/r")
    assert (response.status_code, response.retries_taken, api.count) == (200, 1, 2)
    assert api.time.slept == [0.5]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 422])
async def test_other_4xx_is_not_retried(status: int) -> None:
    async with Mocked(status, 200) as api:
        with pytest.raises(APIStatusError) as info:
            await api.client.get("/r")
    assert (info.value.status_code, info.value.retries_taken, api.count) == (status, 0, 1)
    assert api.time.slept == []


@pytest.mark.parametrize(
    ("status", "value", "requests"),
    [
        (400, "true", 2),  # makes a final status retryable
        (503, "false", 1),  # makes a retryable status final
        (400, "TRUE", 1),  # anything but the exact values is ignored
        (400, "1", 1),
        (503, "TRUE", 2),
        (503, "1", 2),
    ],
)
async def test_x_should_retry_overrides_the_status_rule(
    status: int, value: str, requests: int
) -> None:
    async with Mocked((status, {"x-should-retry": value}), 200) as api:
        if requests == 2:
            assert (await api.client.get("/r")).status_code == 200
        else:
            with pytest.raises(APIStatusError):
                await api.client.get("/r")
    assert api.count == requests


async def test_should_retry_is_replaceable_on_the_client() -> None:
    def retry_424_too(error: APIError) -> bool:
        if isinstance(error, APIStatusError) and error.status_code == 424:
            return True
        return default_should_retry(error)

    async with Mocked(424, 424, 200, should_retry=retry_424_too) as api:
        assert (await api.client.get("/r")).retries_taken == 2
    assert api.count == 3

    async with Mocked(424, 200) as plain:  # the default rule: a 424 is final
        with pytest.raises(APIStatusError) as info:
            await plain.client.get("/r")
    assert (info.value.status_code, plain.count) == (424, 1)


async def test_a_predicate_cannot_make_validation_or_size_errors_retryable(
    serve: Serve, make_client: MakeClient
) -> None:
    class Item(stackwire.Model):
        id: int

    async def wrong_shape(request: web.Request) -> web.Response:
        return web.json_response({"id": "not a number", "pad": "x" * 100})

    hits = Script(200)

    async def counted(request: web.Request) -> web.Response:
        await hits.handle(request)
        return await wrong_shape(request)

    base = await serve(routes(("GET", "/item", counted)))
    client = make_client(base, should_retry=lambda error: True)
    with pytest.raises(stackwire.APIResponseValidationError) as validation:
        await client.get("/item", cast_to=Item)
    assert (hits.count, validation.value.retries_taken) == (1, 0)
    with pytest.raises(stackwire.ResponseTooLargeError):
        await client.get("/item", max_response_bytes=10)
    assert hits.count == 2
    assert client.pool_stats().in_use == 0


async def test_invalid_request_error_from_an_attempt_is_not_retried(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, script = await scripted(serve, 200)
    calls = 0

    async def refuse(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        nonlocal calls
        calls += 1
        raise stackwire.InvalidRequestError("nope")

    client = make_client(base, middlewares=[refuse], should_retry=lambda error: True)
    with pytest.raises(stackwire.InvalidRequestError):
        await client.get("/r")
    assert (calls, script.count, client_sleeps.delays) == (1, 0, [])


async def test_cancellation_is_never_retried(
    raw_server: StartRaw, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    arrived = asyncio.Event()

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        arrived.set()
        await asyncio.sleep(30)

    base, server = await raw_server(stall)
    events: list[RetryEvent] = []
    client = make_client(base, on_retry=events.append, should_retry=lambda error: True)

    async def call() -> object:
        return await client.post("/r", json={"a": 1})

    task = asyncio.create_task(call())
    await arrived.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (server.connections, events, client_sleeps.delays) == (1, [], [])
    assert client.pool_stats().in_use == 0


async def test_connection_refused_is_retried_then_raised(
    make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    events: list[RetryEvent] = []
    client = make_client(f"http://127.0.0.1:{free_port()}/", on_retry=events.append, **PINNED)
    with pytest.raises(stackwire.APIConnectionError) as info:
        await client.get("/r")
    assert not isinstance(info.value, stackwire.APITimeoutError)
    assert info.value.retries_taken == 2
    assert [(e.attempt, e.reason, e.status_code) for e in events] == [
        (0, "APIConnectionError", None),
        (1, "APIConnectionError", None),
    ]
    assert [(e.delay, e.delay_source) for e in events] == [(0.5, "backoff"), (1.0, "backoff")]
    assert client_sleeps.delays == [0.5, 1.0]
    assert client.pool_stats().in_use == 0


# -- Retry-After --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "delay", "source"),
    [
        ({"Retry-After": "2"}, 2.0, "retry-after"),
        ({"retry-after-ms": "1500", "Retry-After": "10"}, 1.5, "retry-after"),
        ({"Retry-After": "0.25"}, 0.25, "retry-after"),
        ({"Retry-After": email.utils.formatdate(NOW + 20, usegmt=True)}, 20.0, "retry-after"),
        ({"Retry-After": "60"}, 60.0, "retry-after"),
        ({"Retry-After": "0"}, 0.5, "backoff"),
        ({"Retry-After": "-10"}, 0.5, "backoff"),
        ({"Retry-After": ""}, 0.5, "backoff"),
        ({"Retry-After": "abc"}, 0.5, "backoff"),
        ({"Retry-After": email.utils.formatdate(NOW - 20, usegmt=True)}, 0.5, "backoff"),
        ({"Retry-After": "Fri, 29 Sep 100000 16:26:57 GMT"}, 0.5, "backoff"),
        ({"Retry-After": "inf"}, 0.5, "backoff"),
        ({"Retry-After": "nan"}, 0.5, "backoff"),
    ],
)
async def test_retry_after_table(
    serve: Serve,
    make_client: MakeClient,
    client_sleeps: SleepRecorder,
    headers: dict[str, str],
    delay: float,
    source: str,
) -> None:
    base, script = await scripted(serve, (429, headers), 200)
    events: list[RetryEvent] = []
    client = make_client(base, clock=lambda: NOW, on_retry=events.append, **PINNED)
    assert (await client.get("/r")).retries_taken == 1
    assert client_sleeps.delays == [delay]
    assert [(e.delay, e.delay_source, e.reason) for e in events] == [(delay, source, "status 429")]
    assert script.count == 2


async def test_hint_above_max_retry_after_fails_at_once_with_the_hint(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, script = await scripted(serve, (429, {"Retry-After": "61"}), 200)
    events: list[RetryEvent] = []
    client = make_client(base, on_retry=events.append)
    with pytest.raises(stackwire.RateLimitError) as info:
        await client.get("/r")
    assert info.value.retry_after == 61.0
    assert "max_retry_after=60" in str(info.value)
    assert (script.count, client_sleeps.delays, events) == (1, [], [])
    assert info.value.retries_taken == 0
    assert client.pool_stats().in_use == 0


async def test_max_retry_after_is_configurable(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, _ = await scripted(serve, (503, {"Retry-After": "90"}), 200)
    client = make_client(base, max_retry_after=120)
    assert (await client.get("/r")).status_code == 200
    assert client_sleeps.delays == [90.0]


async def test_final_error_exposes_the_hint_not_waited_for(
    serve: Serve, make_client: MakeClient
) -> None:
    base, _ = await scripted(serve, (429, {"Retry-After": "3"}))
    client = make_client(base, max_retries=1)
    with pytest.raises(stackwire.RateLimitError) as info:
        await client.get("/r")
    assert (info.value.retry_after, info.value.retries_taken) == (3.0, 1)


async def test_the_hint_is_on_the_error_whatever_ends_the_call() -> None:
    # Retries left, the hint within max_retry_after, and still no wait: the deadline
    # or a spent retry budget ends the call. The caller gets the server's hint either
    # way, to schedule a call of its own.
    hint = {"Retry-After": "5"}
    async with Mocked((429, hint), deadline=3.0) as api:
        with pytest.raises(stackwire.APITimeoutError, match="Deadline of 3 s") as timed_out:
            await api.client.get("/r")
    cause = timed_out.value.__cause__
    assert isinstance(cause, stackwire.RateLimitError)
    assert (cause.retry_after, api.count, api.time.slept) == (5.0, 1, [])

    spent = stackwire.RetryBudget(0.0, min_per_second=0.0)
    async with Mocked((429, hint), retry_budget=spent) as api:
        with pytest.raises(stackwire.RateLimitError, match="retry budget exhausted") as info:
            await api.client.get("/r")
    assert (info.value.retry_after, api.count, api.time.slept) == (5.0, 1, [])


async def test_backoff_counts_retries_even_after_a_hint(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, _ = await scripted(serve, (503, {"Retry-After": "5"}), 503, 503, 200)
    client = make_client(base, max_retries=3, **PINNED)
    await client.get("/r")
    assert client_sleeps.delays == [5.0, 1.0, 2.0]


# -- safety -------------------------------------------------------------------------------


async def test_same_idempotency_key_after_the_server_closed_without_a_byte(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    seen: list[dict[str, str]] = []

    async def flaky(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers, body = await read_request(reader)
        seen.append(headers)
        if len(seen) == 1:
            return  # close the connection without answering
        assert body == b'{"a":1}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
        writer.write(b'Content-Length: 11\r\nConnection: close\r\n\r\n{"ok":true}')
        await writer.drain()

    base, server = await raw_server(flaky)
    client = make_client(base)
    response = await client.post("/r", json={"a": 1})
    assert response.status_code == 200
    assert response.retries_taken == 1
    assert server.connections == 2
    keys = [h["idempotency-key"] for h in seen]
    assert keys[0] == keys[1]
    assert keys[0].startswith("stackwire-retry-")
    assert [h["x-retry-count"] for h in seen] == ["0", "1"]
    assert client.pool_stats().in_use == 0


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])
async def test_every_non_get_call_gets_its_own_key(
    serve: Serve, make_client: MakeClient, method: str
) -> None:
    base, script = await scripted(serve, 200)
    client = make_client(base)
    await client.request(method, "/r")
    await client.request(method, "/r")
    await client.get("/r")
    first, second, get = script.seen
    assert first["idempotency-key"] != second["idempotency-key"]
    assert "idempotency-key" not in get


async def test_idempotency_key_options(serve: Serve, make_client: MakeClient) -> None:
    base, script = await scripted(serve, 500, 200)
    client = make_client(base)
    await client.post("/r", idempotency_key="key-from-caller")
    assert [h["idempotency-key"] for h in script.seen] == ["key-from-caller"] * 2

    script.seen.clear()
    await client.post("/r", headers={"Idempotency-Key": "from-header"})
    assert [h["idempotency-key"] for h in script.seen] == ["from-header"] * 2

    script.seen.clear()
    await client.get("/r", idempotency_key="get-too")  # an explicit key is always sent
    assert [h["idempotency-key"] for h in script.seen] == ["get-too"] * 2

    script.seen.clear()
    await client.post("/r", headers={"Idempotency-Key": stackwire.Omit()})
    assert all("idempotency-key" not in h for h in script.seen)

    renamed = make_client(base, idempotency_header="X-Idem")
    script.seen.clear()
    await renamed.post("/r")
    keys = [h.get("x-idem") for h in script.seen]
    assert keys[0] is not None
    assert keys[0] == keys[1]
    assert all("idempotency-key" not in h for h in script.seen)

    off = make_client(base, idempotency_header=None)
    script.seen.clear()
    await off.post("/r")
    assert all("idempotency-key" not in h for h in script.seen)
    with pytest.raises(stackwire.InvalidRequestError, match="idempotency_header=None"):
        await off.post("/r", idempotency_key="k")


async def test_retry_count_header_options(serve: Serve, make_client: MakeClient) -> None:
    base, script = await scripted(serve, 503, 503, 200)
    client = make_client(base)
    await client.get("/r")
    assert [h["x-retry-count"] for h in script.seen] == ["0", "1", "2"]

    script.seen.clear()
    await client.get("/r", headers={"X-Retry-Count": "custom"})
    assert [h["x-retry-count"] for h in script.seen] == ["custom"] * 3

    script.seen.clear()
    await client.get("/r", headers={"X-Retry-Count": stackwire.Omit()})
    assert all("x-retry-count" not in h for h in script.seen)

    renamed = make_client(base, retry_count_header="X-Attempt")
    script.seen.clear()
    await renamed.get("/r")
    assert [h["x-attempt"] for h in script.seen] == ["0", "1", "2"]
    assert all("x-retry-count" not in h for h in script.seen)

    off = make_client(base, retry_count_header=None)
    script.seen.clear()
    await off.get("/r")
    assert all("x-retry-count" not in h for h in script.seen)


async def test_previous_response_is_released_before_sleeping(
    serve: Serve, make_client: MakeClient
) -> None:
    big = b"x" * (2 * 2**20)  # too big to be buffered whole at the headers

    async def busy_then_ok(request: web.Request) -> web.StreamResponse:
        if request.headers["X-Retry-Count"] != "2":
            response = web.StreamResponse(status=503)
            await response.prepare(request)
            await response.write(big)
            return response
        return web.json_response({"ok": True})

    in_use_at_sleep: list[int] = []
    clients: list[stackwire.AsyncClient] = []

    async def sleep(delay: float) -> None:
        in_use_at_sleep.append(clients[0].pool_stats().in_use)

    async def lazy_status_check(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        # A user middleware that raises on a 503 without reading (or releasing)
        # the body: retry must release it before it sleeps.
        response = await call_next(request)
        if response.status_code == 503 and request.attempt == 1:
            raise stackwire.ServiceUnavailableError("busy", response=response, body=None)
        return response

    base = await serve(routes(("GET", "/r", busy_then_ok)))
    clients.append(make_client(base, sleep=sleep, middlewares=[lazy_status_check]))
    response = await clients[0].get("/r")
    assert response.retries_taken == 2
    assert in_use_at_sleep == [0, 0]
    assert clients[0].pool_stats().in_use == 0


async def test_a_consumed_streaming_body_is_never_resent(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    bodies: list[bytes] = []

    async def fail(request: web.Request) -> web.Response:
        bodies.append(await request.read())
        return web.json_response({}, status=503)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    base = await serve(routes(("POST", "/upload", fail)))
    client = make_client(base)
    with pytest.raises(stackwire.ServiceUnavailableError) as info:
        await client.post("/upload", content=chunks())
    assert bodies == [b"part one, part two"]
    assert (info.value.retries_taken, client_sleeps.delays) == (0, [])
    assert client.pool_stats().in_use == 0


async def test_a_call_not_retried_for_its_spent_body_says_so(
    serve: Serve, make_client: MakeClient
) -> None:
    async def fail(request: web.Request) -> web.Response:
        await request.read()
        status = int(request.query["status"])
        return web.json_response({}, status=status)

    async def chunks() -> AsyncIterator[bytes]:
        yield b"data"

    base = await serve(routes(("POST", "/upload", fail)))
    client = make_client(base)
    with pytest.raises(stackwire.ServiceUnavailableError) as info:
        await client.post("/upload", query={"status": 503}, content=chunks())
    assert "not retried: the request body was an async iterable" in str(info.value)
    assert "pass bytes" in info.value.message
    # A failure that is not retried anyway says nothing of the body.
    with pytest.raises(stackwire.BadRequestError) as other:
        await client.post("/upload", query={"status": 400}, content=chunks())
    assert "not retried" not in str(other.value)
    # Nor one with no retries left.
    with pytest.raises(stackwire.ServiceUnavailableError) as last:
        await client.post("/upload", query={"status": 503}, content=chunks(), max_retries=0)
    assert "not retried" not in str(last.value)


async def test_no_change_made_by_an_attempt_leaks_into_the_next(
    serve: Serve, make_client: MakeClient
) -> None:
    base, script = await scripted(serve, 500, 200)
    note: ExtensionKey[str] = ExtensionKey("note")
    seen: list[tuple[int, dict[str, str], dict[Any, Any]]] = []

    async def meddle(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        seen.append((request.attempt, dict(request.headers), dict(request.extensions)))
        if request.attempt == 0:
            extensions: Any = request.extensions
            extensions[note] = "written in place by attempt 0"
            changes: dict[str, str | stackwire.Omit] = {
                "X-Debug": "attempt-0",
                "Idempotency-Key": "tampered",
                "Accept": stackwire.Omit(),
            }
            request = request.with_headers(changes)
        return await call_next(request)

    client = make_client(base, middlewares=[meddle])
    await client.post("/r")
    (a0, headers0, _), (a1, headers1, ext1) = seen
    assert (a0, a1) == (0, 1)
    assert "X-Debug" not in headers1
    assert headers1["Accept"] == "application/json"
    assert headers1["Idempotency-Key"] == headers0["Idempotency-Key"] != "tampered"
    assert note not in ext1  # (the client's injected clocks are there: Clocks.KEY)
    sent0, sent1 = script.seen
    assert (sent0["x-debug"], sent0["idempotency-key"]) == ("attempt-0", "tampered")
    assert "x-debug" not in sent1
    assert sent1["idempotency-key"] == headers0["Idempotency-Key"]
    # A later call is not affected either (the default extension map was not touched).
    seen.clear()
    await client.get("/r")
    assert note not in seen[0][2]


# -- events -------------------------------------------------------------------------------


async def test_on_retry_reports_each_retry_and_may_be_async(
    serve: Serve, make_client: MakeClient
) -> None:
    base, _ = await scripted(serve, (503, {"Retry-After": "2"}), 500, 200)
    events: list[RetryEvent] = []

    async def record(event: RetryEvent) -> None:
        await asyncio.sleep(0)
        events.append(event)

    client = make_client(base, on_retry=record, **PINNED)
    response = await client.get("/r")
    assert [(e.attempt, e.reason, e.status_code, e.delay, e.delay_source) for e in events] == [
        (0, "status 503", 503, 2.0, "retry-after"),
        (1, "status 500", 500, 1.0, "backoff"),
    ]
    assert isinstance(events[0].error, stackwire.ServiceUnavailableError)
    assert events[0].request.method == "GET"
    assert response.retries_taken == 2


# -- the middleware on its own: exact schedules without a server ------------------------


def failing_terminal(
    calls: list[stackwire.Request],
) -> Callable[[stackwire.Request], Awaitable[stackwire.Response[Any]]]:
    async def terminal(request: stackwire.Request) -> stackwire.Response[Any]:
        calls.append(request)
        raise stackwire.APIConnectionError("refused", request=request)

    return terminal


def request() -> stackwire.Request:
    from yarl import URL

    return stackwire.Request(method="GET", url=URL("http://api.test/r"))


async def test_jitter_bounds_per_attempt_and_cap_at_attempt_1100() -> None:
    sleeps = SleepRecorder()
    draws = itertools.cycle([0.0, 0.5, 0.999_999_999, 1 - 2**-53])
    retry = stackwire.RetryMiddleware(max_retries=1100, sleep=sleeps, random=lambda: next(draws))
    calls: list[stackwire.Request] = []
    handler = Pipeline([retry]).compose(failing_terminal(calls))
    with pytest.raises(stackwire.APIConnectionError) as info:
        await handler(request())
    assert len(calls) == 1101
    assert info.value.retries_taken == 1100
    assert len(sleeps.delays) == 1100
    for n, delay in enumerate(sleeps.delays):
        base = min(0.5 * 2.0 ** min(n, 10), 8.0)
        assert 0.75 * base < delay <= base, (n, delay)
    assert sleeps.delays[:2] == [0.5, 0.875]  # draws 0.0 and 0.5
    assert 6.0 < sleeps.delays[1100 - 1] <= 8.0
    assert [c.attempt for c in calls[:3]] == [0, 1, 2]


async def test_deadline_stops_retrying_before_a_sleep_would_pass_it() -> None:
    now = [100.0]

    def monotonic() -> float:
        return now[0]

    sleeps: list[float] = []

    async def sleep(delay: float) -> None:  # time passes only while "sleeping"
        sleeps.append(delay)
        now[0] += delay

    timeout = stackwire.TimeoutMiddleware(deadline=2.0, monotonic=monotonic)
    retry = stackwire.RetryMiddleware(
        max_retries=10, sleep=sleep, random=lambda: 0.0, monotonic=monotonic
    )
    calls: list[stackwire.Request] = []
    handler = Pipeline([timeout, retry]).compose(failing_terminal(calls))
    with pytest.raises(stackwire.APITimeoutError, match="Deadline of 2 s") as info:
        await handler(request())
    assert sleeps == [0.5, 1.0]  # 1.5 s used; the next 2 s sleep would pass the deadline
    assert len(calls) == 3
    assert info.value.retries_taken == 2
    assert isinstance(info.value.__cause__, stackwire.APIConnectionError)


async def test_calls_sharing_headers_share_the_counted_ones_but_not_omissions() -> None:
    # Calls without headers of their own hand retry the same headers object; their
    # first attempts then share one counted copy, unless a call removed the count.
    retry = stackwire.RetryMiddleware()
    shared = CIMultiDictProxy(CIMultiDict({"Accept": "application/json"}))
    sent: list[stackwire.Request] = []

    class Sent(Exception):
        pass

    async def terminal(request: stackwire.Request) -> stackwire.Response[Any]:
        sent.append(request)
        raise Sent

    plain = stackwire.Request(method="GET", url=URL("http://api.test/"), headers=shared)
    omitting = plain.replace(omit_headers=frozenset({"x-retry-count"}))
    for request in (plain, omitting, plain):
        with pytest.raises(Sent):
            await retry(request, terminal)
    first, second, third = (request.headers for request in sent)
    assert first["X-Retry-Count"] == "0"
    assert "X-Retry-Count" not in second
    assert third is first
    assert "X-Retry-Count" not in shared


async def test_auth_error_is_never_retried_whatever_should_retry_says(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, script = await scripted(serve, 200)
    calls = 0

    async def no_token(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        nonlocal calls
        calls += 1
        raise stackwire.AuthError("token endpoint said no", request=request)

    client = make_client(base, middlewares=[no_token], should_retry=lambda error: True)
    with pytest.raises(stackwire.AuthError):
        await client.get("/r")
    assert (calls, script.count, client_sleeps.delays) == (1, 0, [])
