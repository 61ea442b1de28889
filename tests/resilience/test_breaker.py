"""`CircuitBreaker`: fail fast without I/O while an origin keeps failing, then probe it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import CircuitBreaker, MemoryStateStore
from stackwire.testing import MockResponse, MockTransport
from tests.conftest import RawServer, Serve, routes
from tests.resilience.conftest import VirtualTime

MakeClient = Callable[..., stackwire.AsyncClient]


class Switchable:
    def __init__(self, status: int = 503) -> None:
        self.status = status
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response({}, status=self.status)


async def switchable(serve: Serve, status: int = 503) -> tuple[str, Switchable]:
    server = Switchable(status)
    return await serve(routes(("GET", "/r", server.handle))), server


def breaker(**kwargs: Any) -> CircuitBreaker:
    kwargs.setdefault("min_calls", 4)
    kwargs.setdefault("open_for", 30.0)
    return CircuitBreaker(**kwargs)


async def test_opens_then_fails_fast_without_io_or_retries(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await switchable(serve)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(breaker())
    for _ in range(4):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/r")
    retrying = client.with_options(max_retries=2)  # derived: shares the breaker
    with pytest.raises(stackwire.CircuitOpenError) as caught:
        await retrying.get("/r")
    assert server.hits == 4  # nothing reached the server
    assert caught.value.retries_taken == 0  # not retried
    assert caught.value.retry_after == pytest.approx(30.0)
    assert f"Circuit breaker for {base.rstrip('/')} is open" in str(caught.value)


async def test_one_probe_after_open_for_success_closes(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await switchable(serve)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(breaker())
    for _ in range(4):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/r")
    server.status = 200
    vt.advance(29.0)
    with pytest.raises(stackwire.CircuitOpenError):
        await client.get("/r")
    vt.advance(1.0)
    await client.get("/r")  # the probe
    for _ in range(5):
        await client.get("/r")
    assert server.hits == 4 + 1 + 5


async def test_a_failed_probe_reopens_for_open_for(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await switchable(serve)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(breaker())
    for _ in range(4):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/r")
    vt.advance(30.0)
    with pytest.raises(stackwire.ServiceUnavailableError):
        await client.get("/r")  # the probe fails
    with pytest.raises(stackwire.CircuitOpenError) as caught:
        await client.get("/r")
    assert caught.value.retry_after == pytest.approx(30.0)
    assert server.hits == 5


async def test_while_the_probe_is_out_the_others_fail_fast(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    release = asyncio.Event()
    probing = asyncio.Event()
    hits: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(1)
        if len(hits) > 4:
            probing.set()
            await release.wait()
            return web.json_response({})
        return web.json_response({}, status=500)

    base = await serve(routes(("GET", "/r", handle)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(breaker())
    for _ in range(4):
        with pytest.raises(stackwire.InternalServerError):
            await client.get("/r")
    vt.advance(30.0)
    probe = asyncio.ensure_future(client.get("/r"))
    await probing.wait()
    for _ in range(3):
        with pytest.raises(stackwire.CircuitOpenError):
            await client.get("/r")
    release.set()
    await probe
    await client.get("/r")
    assert len(hits) == 6


class Interrupted(BaseException):
    """Not an Exception, nor a cancellation (as KeyboardInterrupt, SystemExit)."""


async def test_a_probe_ended_by_a_base_exception_frees_the_probe(
    make_client: MakeClient, vt: VirtualTime
) -> None:
    failed = MockResponse(503)
    outcomes: list[MockResponse | BaseException] = [failed] * 4
    outcomes += [Interrupted(), MockResponse(200)]

    def handle(request: stackwire.Request) -> MockResponse:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    client = make_client(
        "http://api.test/", transport=MockTransport(handle), sleep=vt.sleep, clock=vt.clock
    )
    client = client.with_options(max_retries=0).with_middleware(breaker())
    for _ in range(4):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/r")
    vt.advance(30.0)
    with pytest.raises(Interrupted):
        await client.get("/r")
    await client.get("/r")  # the next attempt probes: the breaker was stuck half-open
    assert outcomes == []


async def test_4xx_never_counts_as_a_failure(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await switchable(serve, status=404)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(breaker())
    for _ in range(10):
        with pytest.raises(stackwire.NotFoundError):
            await client.get("/r")
    assert server.hits == 10


async def test_connection_errors_count(
    raw_server: Callable[..., Awaitable[tuple[str, RawServer]]],
    make_client: MakeClient,
    vt: VirtualTime,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    base, server = await raw_server(hang_up)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=2)
    client = client.with_middleware(breaker(min_calls=3))
    with pytest.raises(stackwire.APIConnectionError) as first:
        await client.get("/r")  # three attempts, three failures: it opens
    assert not isinstance(first.value, stackwire.CircuitOpenError)
    assert server.connections == 3
    with pytest.raises(stackwire.CircuitOpenError):
        await client.get("/r")
    assert server.connections == 3


async def _good_headers_then_hang_up(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """200 and its headers, then part of the body, then the connection closes."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.01)  # the body comes after the headers were handed up
    writer.write(b'{"ok": ')
    await writer.drain()


async def test_a_body_broken_after_good_headers_counts_as_a_failure(
    raw_server: Callable[..., Awaitable[tuple[str, RawServer]]],
    make_client: MakeClient,
    vt: VirtualTime,
) -> None:
    # The breaker sees the headers (200), decode above it reads the body, which
    # breaks: the attempt failed with an APIConnectionError, a failure by the rule.
    base, server = await raw_server(_good_headers_then_hang_up)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=2)
    client = client.with_middleware(breaker(min_calls=3))
    with pytest.raises(stackwire.APIConnectionError) as first:
        await client.get("/r")
    assert not isinstance(first.value, stackwire.CircuitOpenError)
    assert server.connections == 3
    with pytest.raises(stackwire.CircuitOpenError):
        await client.get("/r")
    assert server.connections == 3


async def test_a_probe_is_out_until_its_body_is_read(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    # A probe whose headers are good but whose body is still coming holds the probe:
    # the breaker closes only when the body has been read.
    release = asyncio.Event()
    body_started = asyncio.Event()
    hits = 0

    async def handler(request: web.Request) -> web.StreamResponse:
        nonlocal hits
        hits += 1
        if hits <= 4:
            return web.json_response({}, status=503)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"ok": ')
        body_started.set()
        await release.wait()
        await response.write(b"true}")
        return response

    base = await serve(routes(("GET", "/r", handler)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(breaker())
    for _ in range(4):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/r")
    vt.advance(30.0)
    probe = asyncio.ensure_future(client.get("/r"))
    await body_started.wait()
    await asyncio.sleep(0.02)  # its headers are in, its body is not
    try:
        with pytest.raises(stackwire.CircuitOpenError):
            # The probe is still out (a second request would wait for the release).
            await asyncio.wait_for(client.get("/r"), 2.0)
    finally:
        release.set()
    assert (await probe).status_code == 200
    assert (await client.get("/r")).status_code == 200  # closed by the probe's success


async def test_breakers_are_per_origin_and_share_through_a_store(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    bad, bad_server = await switchable(serve)
    good, good_server = await switchable(serve, status=200)
    store = MemoryStateStore(monotonic=vt.clock)
    one = make_client(bad, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    one = one.with_middleware(breaker(store=store))
    two = make_client(bad, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    two = two.with_middleware(breaker(store=store))
    for _ in range(4):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await one.get("/r")
    with pytest.raises(stackwire.CircuitOpenError):
        await two.get("/r")  # same kind, settings and store: same breaker
    await one.get(good + "r")  # another origin is closed
    assert (bad_server.hits, good_server.hits) == (4, 1)
    other_settings = make_client(bad, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    other_settings = other_settings.with_middleware(breaker(min_calls=50, store=store))
    with pytest.raises(stackwire.ServiceUnavailableError):
        await other_settings.get("/r")


async def test_a_custom_failure_predicate(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, _ = await switchable(serve, status=429)

    def is_failure(outcome: stackwire.Response[Any] | Exception) -> bool:
        return isinstance(outcome, stackwire.Response) and outcome.status_code == 429

    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(breaker(is_failure=is_failure))
    for _ in range(4):
        with pytest.raises(stackwire.RateLimitError):
            await client.get("/r")
    with pytest.raises(stackwire.CircuitOpenError):
        await client.get("/r")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"failure_ratio": 0},
        {"failure_ratio": 1.5},
        {"min_calls": 0},
        {"window": 0},
        {"window": 1e-300},  # its slices overflowed a slice number
        {"open_for": -1},
        {"is_failure": 3},
    ],
)
def test_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        CircuitBreaker(**kwargs)


@pytest.mark.parametrize(
    ("failure_ratio", "min_calls", "failures"), [(0.07, 100, 7), (0.28, 25, 7)]
)
async def test_opens_when_failures_over_attempts_equals_the_ratio_exactly(
    failure_ratio: float, min_calls: int, failures: int, make_client: MakeClient
) -> None:
    # 7/100 >= 0.07 (the rule), though 7 < 0.07 * 100 in floating point.
    statuses = [200] * (min_calls - failures) + [503] * failures
    replies = iter(statuses)
    client = make_client(
        "http://api.test/",
        transport=MockTransport(lambda request: MockResponse(next(replies), json={})),
        max_retries=0,
    ).with_middleware(CircuitBreaker(failure_ratio=failure_ratio, min_calls=min_calls))
    for status in statuses:
        if status == 200:
            await client.get("/r")
        else:
            with pytest.raises(stackwire.ServiceUnavailableError):
                await client.get("/r")
    with pytest.raises(stackwire.CircuitOpenError):
        await client.get("/r")
