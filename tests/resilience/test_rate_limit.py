"""`RateLimit`: calls wait (on the client's virtual clock) before the server would refuse."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

import stackwire
from stackwire import MemoryStateStore, RateLimit
from stackwire.testing import MockResponse, MockTransport
from tests.conftest import Serve, routes
from tests.resilience.conftest import VirtualTime

MakeClient = Callable[..., stackwire.AsyncClient]


class Announcing:
    """A server with a budget of ``limit`` requests per ``window`` virtual seconds,
    announced in the headers ``family`` sends; beyond it, a 429."""

    def __init__(self, vt: VirtualTime, *, limit: int, window: float, family: str) -> None:
        self.vt = vt
        self.limit = limit
        self.window = window
        self.family = family
        self.window_start = vt.now
        self.used = 0
        self.statuses: list[int] = []
        self.sent_at: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        now = self.vt.now
        if now >= self.window_start + self.window:
            self.window_start = now - (now - self.window_start) % self.window
            self.used = 0
        reset_in = self.window_start + self.window - now
        self.sent_at.append(now)
        if self.used >= self.limit:
            self.statuses.append(429)
            return web.json_response({}, status=429, headers=self.headers(0, reset_in))
        self.used += 1
        self.statuses.append(200)
        return web.json_response({}, headers=self.headers(self.limit - self.used, reset_in))

    def headers(self, remaining: int, reset_in: float) -> dict[str, str]:
        if self.family == "openai":
            return {
                "x-ratelimit-limit-requests": str(self.limit),
                "x-ratelimit-remaining-requests": str(remaining),
                "x-ratelimit-reset-requests": f"{reset_in * 1000:.0f}ms",
            }
        if self.family == "ietf":
            return {
                "RateLimit-Policy": f'"default";q={self.limit};w={self.window:g}',
                "RateLimit": f'"default";r={remaining};t={max(1, round(reset_in))}',
            }
        if self.family == "github":
            return {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": str(remaining),
                "X-RateLimit-Reset": f"{self.vt.now + reset_in:.3f}",
            }
        if self.family == "anthropic":
            from datetime import UTC, datetime

            reset = datetime.fromtimestamp(self.vt.now + reset_in, UTC)
            return {
                "anthropic-ratelimit-requests-limit": str(self.limit),
                "anthropic-ratelimit-requests-remaining": str(remaining),
                "anthropic-ratelimit-requests-reset": reset.isoformat(timespec="milliseconds"),
            }
        return {}


async def announcing(serve: Serve, vt: VirtualTime, **kwargs: Any) -> tuple[str, Announcing]:
    server = Announcing(vt, **kwargs)
    return await serve(routes(("GET", "/r", server.handle))), server


@pytest.mark.parametrize("family", ["openai", "ietf", "github", "anthropic"])
async def test_calls_wait_for_the_announced_reset_instead_of_getting_429(
    family: str, serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await announcing(serve, vt, limit=5, window=10.0, family=family)
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit())
    for _ in range(12):
        await client.get("/r")
    assert 429 not in server.statuses
    assert len(server.statuses) == 12
    # five in each window: the sixth and the eleventh waited for a reset
    assert len(vt.slept) == 2
    assert sum(vt.slept) == pytest.approx(20.0, abs=1.0)


async def test_a_wait_past_max_wait_is_refused_at_once_without_io(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await announcing(serve, vt, limit=2, window=120.0, family="openai")
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(
        RateLimit(max_wait=60.0)
    )
    await client.get("/r")
    await client.get("/r")
    with pytest.raises(stackwire.RateLimitExceededError) as caught:
        await client.get("/r")
    assert len(server.statuses) == 2  # the third never reached the server
    assert vt.slept == []
    assert caught.value.retries_taken == 0  # and was not retried
    assert caught.value.retry_after == pytest.approx(120.0, abs=0.5)
    assert "max_wait=60" in str(caught.value)


async def test_a_429_with_retry_after_pauses_the_whole_origin(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        if request.path == "/busy" and hits.count("/busy") == 1:
            return web.json_response({}, status=429, headers={"Retry-After": "3"})
        return web.json_response({})

    base = await serve(routes(("GET", "/busy", handle), ("GET", "/other", handle)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(RateLimit())
    with pytest.raises(stackwire.RateLimitError):
        await client.get("/busy")
    await client.get("/other")  # another path, the same origin: it waits too
    assert vt.slept == [3.0]
    assert hits == ["/busy", "/other"]


async def test_a_retried_429_is_not_waited_for_twice(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    statuses = iter([429, 200])

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({}, status=next(statuses), headers={"Retry-After": "2"})

    base = await serve(routes(("GET", "/r", handle)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit())
    response = await client.get("/r")
    assert response.retries_taken == 1
    assert vt.slept == [2.0]  # retry slept the Retry-After; the rate limit had nothing left


async def test_token_bucket_paces_per_origin(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({})

    first = await serve(routes(("GET", "/r", ok)))
    second = await serve(routes(("GET", "/r", ok)))
    client = make_client(first, sleep=vt.sleep, clock=vt.clock).with_middleware(
        RateLimit(2.0, burst=1)
    )
    for _ in range(3):
        await client.get("/r")
    assert vt.slept == [0.5, 0.5]
    await client.get(second + "r")  # another origin has a bucket of its own
    assert vt.slept == [0.5, 0.5]


async def test_parts_sharing_a_store_share_the_server_budget(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await announcing(serve, vt, limit=3, window=10.0, family="openai")
    store = MemoryStateStore(monotonic=vt.clock)
    a = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit(store=store))
    b = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit(store=store))
    await a.get("/r")
    await b.get("/r")
    await a.get("/r")  # the budget is spent now, as both clients know
    await b.get("/r")
    assert 429 not in server.statuses
    assert vt.slept == [pytest.approx(10.0, abs=0.01)]


async def test_malformed_headers_are_ignored(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    async def junk(request: web.Request) -> web.Response:
        return web.json_response(
            {},
            headers={
                "x-ratelimit-remaining-requests": "zero",
                "x-ratelimit-reset-requests": "-5s",
                "RateLimit": "!!!",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": "never",
                "anthropic-ratelimit-requests-remaining": "0",
                "anthropic-ratelimit-requests-reset": "2999-99-99",
            },
        )

    base = await serve(routes(("GET", "/r", junk)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit())
    for _ in range(3):
        await client.get("/r")
    assert vt.slept == []


async def test_visible_in_the_pipeline_and_absent_by_default(make_client: MakeClient) -> None:
    plain = make_client("http://127.0.0.1:9/")
    assert "rate_limit" not in plain.pipeline
    limited = plain.with_middleware(RateLimit(10))
    assert limited.pipeline.names == [
        "headers",
        "query",
        "timeout",
        "retry",
        "decode",
        "rate_limit",
        "redirects",
    ]
    assert repr(limited.pipeline["rate_limit"]).startswith("RateLimit(rate=10.0, burst=10.0")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate": 0},
        {"rate": -1},
        {"rate": "5"},
        {"rate": 1, "burst": 0.5},
        {"max_wait": -1},
        {"from_headers": "yes"},
        {"store": object()},
        {"store": MemoryStateStore},  # the class: each call raised a bare TypeError
    ],
)
def test_bad_settings_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        RateLimit(**kwargs)


async def test_a_call_outpaced_for_several_windows_is_refused_past_max_wait(
    make_client: MakeClient, vt: VirtualTime
) -> None:
    store = MemoryStateStore(monotonic=vt.clock)
    part = RateLimit(max_wait=15.0, store=store)
    key = part._quota_keys(URL("http://127.0.0.1:9/"))
    # The server said: 1 request per 10 s window, spent for the next 10 s.
    await store.announce_quota(key, limit=1, remaining=0, reset_in=10.0, window=10.0, ticket=0)

    async def others_are_quicker(seconds: float) -> None:
        await vt.sleep(seconds)
        await store.take_quota(key)  # someone else takes each new window first

    client = make_client("http://127.0.0.1:9/", sleep=others_are_quicker, clock=vt.clock)
    with pytest.raises(stackwire.RateLimitExceededError) as caught:
        await client.with_middleware(part).get("/r")
    assert vt.slept == [10.0]  # waited one window, then 10 + 10 > 15: refused, never sent
    assert caught.value.retry_after == pytest.approx(10.0)


async def test_a_bucket_and_the_server_budget_together(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, server = await announcing(serve, vt, limit=4, window=10.0, family="openai")
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(
        RateLimit(1.0, burst=2)
    )
    for _ in range(5):
        await client.get("/r")
    assert 429 not in server.statuses
    # the bucket paced calls 3 and 4 by a second each; the fifth waited for the window
    assert vt.slept[:2] == [1.0, 1.0]
    assert sum(vt.slept) == pytest.approx(10.0, abs=0.01)


@pytest.mark.parametrize(
    "spent",
    [
        {"X-RateLimit-Limit": "0", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"},
        {"RateLimit-Policy": '"p";q=0;w=5', "RateLimit": '"p";r=0;t=5'},
    ],
)
async def test_an_announced_limit_of_0_waits_for_the_reset_only_once(
    spent: dict[str, str], serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    # A window that "releases 0" would hold every later call until max_wait and refuse
    # it, for ever: no request would go out to learn otherwise.
    hits: list[float] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(vt.now)
        return web.json_response({}, headers=spent if len(hits) == 1 else None)

    base = await serve(routes(("GET", "/r", handle)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit())
    for _ in range(3):
        await client.get("/r")
    assert len(hits) == 3
    assert vt.slept == [5.0]


async def test_an_absurd_retry_after_on_a_429_does_not_pause_the_origin(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    hits: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(request.path)
        status = 429 if len(hits) == 1 else 200
        return web.json_response({}, status=status, headers={"Retry-After": "9" * 12})

    base = await serve(routes(("GET", "/r", handle)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock, max_retries=0)
    client = client.with_middleware(RateLimit())
    with pytest.raises(stackwire.RateLimitError):
        await client.get("/r")
    await client.get("/r")  # not refused for 31,000 years
    assert len(hits) == 2


async def test_callers_cancelled_while_paced_give_their_tokens_back(
    make_client: MakeClient, vt: VirtualTime
) -> None:
    waits: list[float] = []

    async def sleep_until_cancelled(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.Event().wait()

    part = RateLimit(1.0, burst=1)
    client = make_client(
        "http://api.test/",
        transport=MockTransport(lambda request: MockResponse(200)),
        sleep=sleep_until_cancelled,
        clock=vt.clock,
    ).with_middleware(part)
    await client.get("/r")  # the burst: the bucket is empty
    calls = [asyncio.ensure_future(client.get("/r")) for _ in range(10)]
    await asyncio.sleep(0)
    assert waits == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]  # paced in order
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    # None of them was sent: the next call waits for one token, not for eleven.
    late = asyncio.ensure_future(client.get("/r"))
    await asyncio.sleep(0)
    late.cancel()
    await asyncio.gather(late, return_exceptions=True)
    assert waits[-1] == 1.0


async def test_a_wait_longer_than_the_deadline_left_is_refused_at_once(
    make_client: MakeClient, vt: VirtualTime
) -> None:
    sent: list[str] = []

    def handle(request: stackwire.Request) -> MockResponse:
        sent.append(request.url.path)
        return MockResponse(200)

    client = make_client(
        "http://api.test/", transport=MockTransport(handle), sleep=vt.sleep, clock=vt.clock
    ).with_middleware(RateLimit(1.0, burst=1))  # max_wait=60
    await client.get("/r", deadline=1e-9)  # no wait: not refused (the transport decides)
    with pytest.raises(stackwire.RateLimitExceededError, match="deadline") as caught:
        await client.get("/r", deadline=0.5)  # (it slept 1 s, then was sent too late)
    assert vt.slept == []
    assert sent == ["/r"]
    assert caught.value.retry_after == pytest.approx(1.0)


async def test_a_call_refused_by_the_bucket_leaves_the_server_budget_unspent(
    make_client: MakeClient, vt: VirtualTime
) -> None:
    sent: list[float] = []
    five_left = {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "5",
        "x-ratelimit-reset-requests": "60s",
    }

    def handle(request: stackwire.Request) -> MockResponse:
        sent.append(vt.now)
        return MockResponse(200, headers=five_left)

    client = make_client(
        "http://api.test/", transport=MockTransport(handle), sleep=vt.sleep, clock=vt.clock
    ).with_middleware(RateLimit(1.0, burst=1, max_wait=0.0))
    await client.get("/r")  # the server has 5 left for 60 s; the bucket is empty
    for _ in range(5):
        with pytest.raises(stackwire.RateLimitExceededError):
            await client.get("/r")
    vt.advance(1.0)  # a token again, and the server's 5 are still there
    await client.get("/r")  # (the five refusals had used them up: refused for 59 s)
    assert len(sent) == 2


async def test_a_call_refused_below_leaves_its_token_and_budget_unspent(
    make_client: MakeClient, vt: VirtualTime
) -> None:
    sent: list[str] = []
    one_left = {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "1",
        "x-ratelimit-reset-requests": "60s",
    }

    def handle(request: stackwire.Request) -> MockResponse:
        sent.append(request.url.path)
        return MockResponse(200, headers=one_left)

    async def refuse_once(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        if request.url.path == "/refused":  # as a ConcurrencyLimit below would
            raise stackwire.ConcurrencyLimitError("no slot", request=request)
        return await call_next(request)

    client = make_client(
        "http://api.test/", transport=MockTransport(handle), sleep=vt.sleep, clock=vt.clock
    )
    client = client.with_middleware(RateLimit(0.001, burst=2, max_wait=0.0))
    client = client.with_middleware(refuse_once)
    await client.get("/r")  # the server: 1 left for 60 s; the bucket: 1 token
    with pytest.raises(stackwire.ConcurrencyLimitError):
        await client.get("/refused")
    await client.get("/r")  # the unit and the token it took are back
    assert sent == ["/r", "/r"]


async def test_policies_sent_in_several_ratelimit_field_lines_are_all_read(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    # RFC 9110 §5.3: several field lines of a list field are one list. The spent
    # policy comes in the second RateLimit line.
    async def two_lines(request: web.Request) -> web.Response:
        headers = CIMultiDict[str]()
        headers.add("RateLimit-Policy", '"hour";q=1000;w=3600')
        headers.add("RateLimit-Policy", '"minute";q=5;w=60')
        headers.add("RateLimit", '"hour";r=900;t=1800')
        headers.add("RateLimit", '"minute";r=0;t=40')
        return web.json_response({}, headers=headers)

    base = await serve(routes(("GET", "/r", two_lines)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(
        RateLimit(max_wait=10.0)
    )
    await client.get("/r")
    with pytest.raises(stackwire.RateLimitExceededError) as caught:
        await client.get("/r")
    assert caught.value.retry_after == pytest.approx(40.0, abs=0.5)
    assert vt.slept == []


async def test_an_ietf_policy_counting_bytes_is_not_a_request_budget(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    async def bytes_spent(request: web.Request) -> web.Response:
        headers = {
            "RateLimit-Policy": '"bytes";q=65536;qu="content-bytes";w=60, "calls";q=100;w=60',
            "RateLimit": '"bytes";r=0;t=30, "calls";r=99;t=30',
        }
        return web.json_response({}, headers=headers)

    base = await serve(routes(("GET", "/r", bytes_spent)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit())
    for _ in range(3):
        await client.get("/r")
    assert vt.slept == []


class WallClock:
    """What `Announcing` reads as ``vt.now``, on the real clock."""

    @property
    def now(self) -> float:
        return time.time()


@pytest.mark.parametrize("family", ["ietf-without-policy", "openai-without-limit"])
async def test_a_reset_does_not_release_every_waiter_when_no_limit_is_announced(
    family: str, serve: Serve, make_client: MakeClient
) -> None:
    # On the real clock, with windows of 0.25 s: a virtual clock that each waiter
    # advances runs ahead of the real I/O of the calls it lets go.
    server = Announcing(WallClock(), limit=5, window=0.25, family="")  # type: ignore[arg-type]

    def without_limit(remaining: int, reset_in: float) -> dict[str, str]:
        if family == "ietf-without-policy":
            return {"RateLimit": f'"default";r={remaining};t={reset_in:.3f}'}
        return {
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": f"{reset_in * 1000:.0f}ms",
        }

    server.headers = without_limit  # type: ignore[method-assign]
    base = await serve(routes(("GET", "/r", server.handle)))
    client = make_client(base, sleep=asyncio.sleep, max_retries=0).with_middleware(RateLimit())
    await client.get("/r")  # 4 remain, of a limit nobody names
    await asyncio.gather(*(client.get("/r") for _ in range(14)))
    # After the reset, five went (what the window was seen to hold), not all nine
    # waiters (four of them into 429s).
    assert server.statuses.count(429) == 0
    assert len(server.statuses) == 15


@pytest.mark.parametrize("family", ["openai", "ietf", "github", "anthropic"])
async def test_a_server_that_keeps_announcing_budget_is_never_waited_for(
    family: str, serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    # A server that does not count every call (GitHub does not count a 304) says
    # "3 remain" each time: each call goes, none waits for an hour's reset.
    server = Announcing(vt, limit=100, window=3600.0, family=family)
    server.headers = lambda remaining, reset_in: Announcing.headers(server, 3, 3600.0)  # type: ignore[method-assign]
    base = await serve(routes(("GET", "/r", server.handle)))
    client = make_client(base, sleep=vt.sleep, clock=vt.clock).with_middleware(RateLimit())
    for _ in range(10):
        await client.get("/r")
    assert server.statuses == [200] * 10
    assert vt.slept == []
