"""Redirects: followed by stackwire's own ``redirects`` middleware, credentials scoped
to the origin of ``base_url``, loops and long chains stopped, over real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire.middlewares.redirects import RedirectMiddleware, origin_of
from stackwire.testing import MockTransport, Router
from tests.conftest import Serve, names, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]

SECRET = "sk-test-secret-1234567890"


class Seen:
    """What a server received: one entry per request."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def record(self, request: web.Request) -> dict[str, Any]:
        entry = {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": await request.read(),
            "peer": request.transport.get_extra_info("peername") if request.transport else None,
        }
        self.requests.append(entry)
        return entry


def redirect(status: int, location: str, seen: Seen) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        await seen.record(request)
        return web.Response(status=status, headers={"Location": location}, text="moved")

    return handler


def echo(seen: Seen) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        entry = await seen.record(request)
        return web.json_response({"method": entry["method"], "path": entry["path"]})

    return handler


async def test_redirect_followed_by_default_and_connection_reused(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(
        ("GET", "/v1/a/b", redirect(302, "../c?x=1", seen)),
        ("GET", "/v1/c", echo(seen)),
    )
    client = make_client(await serve(app) + "v1")
    response = await client.get("/a/b")
    assert response.status_code == 200
    assert response.json() == {"method": "GET", "path": "/v1/c?x=1"}
    # The final response's request is the last hop's.
    assert response.request.url.path_qs == "/v1/c?x=1"
    # The redirect's body was read and its connection went back to the pool: the
    # second hop came on the same connection.
    assert [r["path"] for r in seen.requests] == ["/v1/a/b", "/v1/c?x=1"]
    assert seen.requests[0]["peer"] == seen.requests[1]["peer"]
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_redirects_is_last_and_with_middleware_goes_above_it(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(("GET", "/old", redirect(301, "/new", seen)), ("GET", "/new", echo(seen)))
    statuses: list[int] = []

    async def watch(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        response = await call_next(request)
        statuses.append(response.status_code)
        return response

    client = make_client(await serve(app), middlewares=[watch])
    assert names(client.pipeline)[-2:] == ["watch", "redirects"]
    derived = client.with_middleware(watch, name="watch2")
    assert names(derived.pipeline)[-3:] == ["watch", "watch2", "redirects"]
    await derived.get("/old")
    # Middlewares above ``redirects`` see the final response only.
    assert statuses == [200, 200]


@pytest.mark.parametrize(
    ("status", "method"),
    [(303, "POST"), (303, "PUT"), (302, "POST"), (302, "DELETE"), (301, "POST")],
)
async def test_301_302_303_after_non_get_become_get_without_body(
    serve: Serve, make_client: MakeClient, status: int, method: str
) -> None:
    seen = Seen()
    app = routes(
        (method, "/submit", redirect(status, "/result", seen)), ("GET", "/result", echo(seen))
    )
    client = make_client(await serve(app))
    response = await client.request(method, "/submit", json={"name": "Ada"})
    assert response.json() == {"method": "GET", "path": "/result"}
    first, second = seen.requests
    assert first["method"] == method
    assert first["body"] == b'{"name":"Ada"}'
    assert second["method"] == "GET"
    assert second["body"] == b""
    headers = {name.lower() for name in second["headers"]}
    assert "content-type" not in headers
    assert "content-length" not in headers or second["headers"]["Content-Length"] == "0"


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_301_after_any_method_but_post_keeps_method_and_body(
    serve: Serve, make_client: MakeClient, method: str
) -> None:
    # As httpx, requests, aiohttp and browsers do: a DELETE answered "moved
    # permanently" must delete at the new URL, not become a GET that succeeds.
    seen = Seen()
    app = routes(
        (method, "/items/1", redirect(301, "/v2/items/1", seen)),
        (method, "/v2/items/1", echo(seen)),
    )
    client = make_client(await serve(app))
    response = await client.request(method, "/items/1", json={"name": "Ada"})
    assert response.json() == {"method": method, "path": "/v2/items/1"}
    assert response.request.method == method
    first, second = seen.requests
    assert first["body"] == second["body"] == b'{"name":"Ada"}'
    assert second["headers"]["Content-Type"] == "application/json"


async def test_301_after_a_put_with_a_spent_stream_body_is_a_clear_error(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(("PUT", "/items/1", redirect(301, "/v2/items/1", seen)))
    client = make_client(await serve(app))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"part"

    with pytest.raises(stackwire.RedirectError, match="status 301"):
        await client.put("/items/1", content=chunks())
    assert len(seen.requests) == 1


@pytest.mark.parametrize("status", [307, 308])
async def test_307_308_keep_method_and_body_byte_exact(
    serve: Serve, make_client: MakeClient, status: int
) -> None:
    seen = Seen()
    body = bytes(range(256)) + b"\r\n\r\n\x00end"
    app = routes(
        ("POST", "/upload", redirect(status, "/v2/upload", seen)),
        ("POST", "/v2/upload", echo(seen)),
    )
    client = make_client(await serve(app))
    response = await client.post(
        "/upload", content=body, headers={"Content-Type": "application/octet-stream"}
    )
    assert response.json() == {"method": "POST", "path": "/v2/upload"}
    first, second = seen.requests
    assert first["body"] == second["body"] == body
    assert second["headers"]["Content-Type"] == "application/octet-stream"


async def test_307_with_a_spent_stream_body_is_a_clear_error(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(
        ("POST", "/upload", redirect(307, "/elsewhere", seen)), ("POST", "/elsewhere", echo(seen))
    )
    client = make_client(await serve(app))

    async def chunks() -> AsyncIterator[bytes]:
        yield b"part one, "
        yield b"part two"

    with pytest.raises(stackwire.RedirectError, match="stream that is already sent") as info:
        await client.post("/upload", content=chunks())
    assert info.value.response.status_code == 307
    assert info.value.location == "/elsewhere"
    # Never re-sent empty, never retried.
    assert [r["path"] for r in seen.requests] == ["/upload"]
    assert seen.requests[0]["body"] == b"part one, part two"


async def test_hop_limit_default_10_and_configurable(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()

    async def chain(request: web.Request) -> web.Response:
        await seen.record(request)
        n = int(request.match_info["n"])
        return web.Response(status=302, headers={"Location": f"/hop/{n + 1}"})

    base = await serve(routes(("GET", "/hop/{n}", chain)))
    client = make_client(base)
    with pytest.raises(stackwire.RedirectError, match="max_redirects=10") as info:
        await client.get("/hop/0")
    assert len(seen.requests) == 11  # the first request and 10 hops
    assert info.value.response.status_code == 302
    assert not isinstance(info.value, stackwire.APIStatusError)

    seen.requests.clear()
    short = make_client(base, max_redirects=2)
    with pytest.raises(stackwire.RedirectError):
        await short.get("/hop/0")
    assert len(seen.requests) == 3


async def test_exactly_max_redirects_hops_succeed(serve: Serve, make_client: MakeClient) -> None:
    async def chain(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        if n == 10:
            return web.json_response({"done": n})
        return web.Response(status=307, headers={"Location": f"/hop/{n + 1}"})

    client = make_client(await serve(routes(("GET", "/hop/{n}", chain))))
    assert (await client.get("/hop/0")).json() == {"done": 10}


async def test_redirect_loop_detected(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()
    app = routes(("GET", "/a", redirect(302, "/b", seen)), ("GET", "/b", redirect(302, "/a", seen)))
    client = make_client(await serve(app))
    with pytest.raises(stackwire.RedirectError, match="loop") as info:
        await client.get("/a")
    assert [r["path"] for r in seen.requests] == ["/a", "/b"]
    assert info.value.location == "/a"


async def test_post_redirected_to_itself_as_get_is_not_a_loop(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(("POST", "/form", redirect(303, "/form", seen)), ("GET", "/form", echo(seen)))
    client = make_client(await serve(app))
    assert (await client.post("/form", data={"a": "1"})).json() == {
        "method": "GET",
        "path": "/form",
    }


async def test_follow_redirects_false_on_client_and_per_request(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(("GET", "/old", redirect(302, "/new", seen)), ("GET", "/new", echo(seen)))
    base = await serve(app)

    off = make_client(base, follow_redirects=False)
    with pytest.raises(stackwire.APIStatusError) as info:
        await off.get("/old")
    assert info.value.status_code == 302
    assert info.value.response.headers["Location"] == "/new"
    assert info.value.body == "moved"
    # Per request: True wins over the client's False.
    assert (await off.get("/old", follow_redirects=True)).json()["path"] == "/new"

    on = make_client(base)
    with pytest.raises(stackwire.APIStatusError) as info:
        await on.get("/old", follow_redirects=False)
    assert info.value.status_code == 302
    # None means "off" for a per-request option (DESIGN §2): not followed either.
    with pytest.raises(stackwire.APIStatusError) as info:
        await on.get("/old", follow_redirects=None)
    assert info.value.status_code == 302
    assert [r["path"] for r in seen.requests] == ["/old", "/old", "/new", "/old", "/old"]
    # The 3xx was read and released, not leaked.
    assert on.pool_stats().in_use == 0


async def test_redirect_to_a_non_http_location_is_an_error(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(("GET", "/a", redirect(302, "ftp://files.test/x", seen)))
    client = make_client(await serve(app))
    with pytest.raises(stackwire.RedirectError, match="not an http"):
        await client.get("/a")


@pytest.mark.parametrize(
    "location", ["http://api..test/x", f"http://{'a' * 64}.test/x", "http://xn--/x"]
)
async def test_redirect_to_a_host_that_cannot_be_looked_up_is_a_redirect_error(
    serve: Serve, make_client: MakeClient, location: str
) -> None:
    # yarl takes these hosts; the resolver's IDNA encoding does not, and its bare
    # UnicodeError escaped the call instead of a stackwire error.
    seen = Seen()
    app = routes(("GET", "/a", redirect(302, location, seen)))
    client = make_client(await serve(app), max_retries=0)
    with pytest.raises(stackwire.RedirectError, match="invalid Location") as info:
        await client.get("/a")
    assert info.value.location == location
    assert len(seen.requests) == 1


@pytest.mark.parametrize(
    "location", ["http://a b/x", "http://a%20b/x", "https://api<x>.test/", "http://a|b/", "//a^b/"]
)
async def test_redirect_to_a_host_with_a_forbidden_character_is_a_redirect_error(
    location: str,
) -> None:
    # yarl takes a space or "%" in a host, and the hop went on to a DNS lookup of it
    # (browsers refuse such a URL). Over the testing kit: no lookup either way.
    router = Router()
    router.get("/a").respond(status=302, headers={"Location": location})
    client = stackwire.AsyncClient("http://api.test/", transport=MockTransport(router))
    async with client:
        with pytest.raises(stackwire.RedirectError, match="invalid Location") as info:
            await client.get("/a")
    assert info.value.location == location
    assert len(router.calls) == 1


@pytest.mark.parametrize(
    "location",
    ["javascript:alert(1)", "mailto:someone@example.test", "file:///etc/passwd", "data:,hi"],
)
async def test_redirect_to_a_scheme_without_a_host_is_a_redirect_error(
    serve: Serve, make_client: MakeClient, location: str
) -> None:
    seen = Seen()
    app = routes(("GET", "/a", redirect(302, location, seen)))
    client = make_client(await serve(app))
    with pytest.raises(stackwire.RedirectError, match="not an http") as info:
        await client.get("/a")
    assert info.value.location == location
    assert location not in str(info.value)  # the server's text is not echoed
    assert [r["path"] for r in seen.requests] == ["/a"]
    assert client.pool_stats().in_use == 0


async def test_3xx_without_location_is_a_status_error(
    serve: Serve, make_client: MakeClient
) -> None:
    async def choices(request: web.Request) -> web.Response:
        return web.Response(status=300, text="pick one")

    client = make_client(await serve(routes(("GET", "/a", choices))))
    with pytest.raises(stackwire.APIStatusError) as info:
        await client.get("/a")
    assert info.value.status_code == 300


# -- credentials and origins -------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "credential"),
    [
        ({"api_key": SECRET}, "Authorization"),
        ({"api_key": SECRET, "api_key_header": "X-Api-Key"}, "X-Api-Key"),
        ({"api_key": SECRET, "api_key_header": "X-Custom-Key"}, "X-Custom-Key"),
    ],
)
async def test_cross_origin_307_drops_every_credential(
    serve: Serve, make_client: MakeClient, options: dict[str, Any], credential: str
) -> None:
    other_seen = Seen()
    other = await serve(routes(("POST", "/landing", echo(other_seen))))
    seen = Seen()
    base = await serve(routes(("POST", "/start", redirect(307, other + "landing", seen))))
    client = make_client(
        base,
        headers={"Cookie": "session=abc", "X-Signature": "sig-1", "X-Trace": "t-1"},
        sensitive_headers=["X-Signature"],
        **options,
    )
    response = await client.post(
        "/start", json={"k": 1}, headers={"Proxy-Authorization": "Basic cHJveHk6cHc="}
    )
    assert response.json() == {"method": "POST", "path": "/landing"}
    # The first origin got everything.
    first = seen.requests[0]["headers"]
    assert SECRET in first[credential]
    assert first["Cookie"] == "session=abc"
    # The other origin got the body and the harmless headers, no credential.
    landing = other_seen.requests[0]
    assert landing["body"] == b'{"k":1}'
    got = {name.lower() for name in landing["headers"]}
    for name in (
        "authorization",
        "x-api-key",
        "x-custom-key",
        "cookie",
        "x-signature",
        "proxy-authorization",
    ):
        assert name not in got
    assert SECRET not in repr(landing["headers"])
    assert landing["headers"]["X-Trace"] == "t-1"


async def test_credentials_stay_dropped_back_on_the_original_origin(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    other_url: list[str] = []

    async def start(request: web.Request) -> web.Response:
        await seen.record(request)
        return web.Response(status=302, headers={"Location": other_url[0] + "bounce"})

    base = await serve(routes(("GET", "/start", start), ("GET", "/final", echo(seen))))
    other_seen = Seen()
    other_url.append(
        await serve(routes(("GET", "/bounce", redirect(302, base + "final", other_seen))))
    )
    client = make_client(base, api_key=SECRET)
    await client.get("/start")
    assert seen.requests[0]["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert "Authorization" not in other_seen.requests[0]["headers"]
    assert seen.requests[1]["path"] == "/final"
    assert "Authorization" not in seen.requests[1]["headers"]


async def test_same_origin_redirect_keeps_credentials(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    app = routes(("GET", "/a", redirect(302, "/b", seen)), ("GET", "/b", echo(seen)))
    base = await serve(app)
    client = make_client(base, api_key=SECRET)
    await client.get("/a")
    assert [r["headers"]["Authorization"] for r in seen.requests] == [f"Bearer {SECRET}"] * 2


async def test_absolute_url_on_another_origin_gets_no_credentials(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    other_seen = Seen()
    base = await serve(routes(("GET", "/mine", echo(seen))))
    other = await serve(routes(("GET", "/theirs", echo(other_seen))))
    client = make_client(base, api_key=SECRET, api_key_header="X-Api-Key")
    await client.get(other + "theirs")
    assert "X-Api-Key" not in other_seen.requests[0]["headers"]
    # An absolute URL on base_url's own origin keeps them.
    await client.get(base + "mine")
    assert seen.requests[0]["headers"]["X-Api-Key"] == SECRET


async def test_a_key_in_the_clients_query_goes_to_its_own_origin_only(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    other_seen = Seen()
    base = await serve(routes(("GET", "/mine", echo(seen))))
    other = await serve(routes(("GET", "/theirs", echo(other_seen))))
    client = make_client(base, query={"key": SECRET, "api-version": "2"})
    await client.get(other + "theirs")
    await client.get(other + "theirs", query={"q": "x"})
    await client.get(other + "theirs?page=2")
    assert [r["path"] for r in other_seen.requests] == [
        "/theirs?api-version=2",
        "/theirs?api-version=2&q=x",
        "/theirs?page=2&api-version=2",
    ]
    await client.get("mine")
    await client.get(base + "mine", query={"q": "x"})
    assert [r["path"] for r in seen.requests] == [
        f"/mine?key={SECRET}&api-version=2",
        f"/mine?key={SECRET}&api-version=2&q=x",
    ]


async def test_retry_after_a_redirect_starts_again_from_the_first_url(
    serve: Serve, make_client: MakeClient, client_sleeps: Any
) -> None:
    seen = Seen()
    failures = [True]

    async def flaky(request: web.Request) -> web.Response:
        await seen.record(request)
        if failures:
            failures.pop()
            return web.Response(status=503)
        return web.json_response({"ok": True})

    app = routes(("GET", "/a", redirect(307, "/b", seen)), ("GET", "/b", flaky))
    client = make_client(await serve(app))
    response = await client.get("/a")
    assert response.json() == {"ok": True}
    assert response.retries_taken == 1
    assert [r["path"] for r in seen.requests] == ["/a", "/b", "/a", "/b"]
    assert len(client_sleeps.delays) == 1


def slow_chain(
    seen: Seen, hops: int, pause: float, gap: float = 0.0
) -> Callable[[web.Request], Any]:
    """``/h/0`` -> ``/h/1`` -> ... -> ``/h/<hops>``, each answer ``pause`` s late (and
    ``/s/...`` the same, ending in an event stream of 3 events ``gap`` s apart)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        await seen.record(request)
        n = int(request.match_info["n"])
        await asyncio.sleep(pause)
        if n < hops:
            return web.Response(status=302, headers={"Location": f"{n + 1}"})
        if request.path.startswith("/s/"):
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for n in range(3):
                await response.write(b"data: %d\n\n" % n)
                await asyncio.sleep(gap)
            return response
        return web.json_response({"hop": n})

    return handler


async def test_the_whole_redirect_chain_counts_against_the_attempts_total(
    serve: Serve, make_client: MakeClient, client_sleeps: Any
) -> None:
    # One attempt is one redirect chain: ``total`` bounds it whole, as it bounds one
    # request. Each hop on its own (0.15 s) is well within it; five are not.
    seen = Seen()
    base = await serve(routes(("GET", "/h/{n}", slow_chain(seen, hops=5, pause=0.15))))
    client = make_client(base, timeout=stackwire.Timeout(total=0.4), max_retries=1)
    with pytest.raises(stackwire.APITimeoutError) as info:
        await client.get("/h/0")
    assert isinstance(info.value, stackwire.APIConnectionError)
    assert info.value.retries_taken == 1  # timed out, retried from the first URL
    assert isinstance(info.value.__cause__, TimeoutError)
    paths = [r["path"] for r in seen.requests]
    # Each attempt got about three hops in (0.45 s > 0.4 s), never the end of the chain.
    assert paths.count("/h/0") == 2
    assert not {"/h/4", "/h/5"} & set(paths)
    assert client.pool_stats().in_use == 0
    # Within its total, a chain is followed to its end.
    seen.requests.clear()
    response = await client.get("/h/0", timeout=2.0)
    assert (response.json(), len(seen.requests)) == ({"hop": 5}, 6)


async def test_a_redirected_stream_keeps_its_own_gap_limit(
    serve: Serve, make_client: MakeClient
) -> None:
    # For a stream, ``total`` bounds the chain until the final headers; then, without
    # ``read``, each gap between chunks: the whole 0.6 s, not the 0.4 s that the two
    # hops before left of it (the gaps here are 0.5 s).
    seen = Seen()
    chain = slow_chain(seen, hops=2, pause=0.1, gap=0.5)
    base = await serve(routes(("GET", "/s/{n}", chain)))
    client = make_client(base, timeout=stackwire.Timeout(total=0.6), max_retries=0)
    stream = await client.get("/s/0", cast_to=stackwire.ServerSentEvent, stream=True)
    async with stream:
        assert [event.data async for event in stream] == ["0", "1", "2"]
    with pytest.raises(stackwire.APITimeoutError):
        await client.get(
            "/s/0",
            cast_to=stackwire.ServerSentEvent,
            stream=True,
            timeout=0.2,  # the hops take 0.3 s before the stream's headers
        )
    assert client.pool_stats().in_use == 0


async def test_a_location_with_raw_bytes_and_spaces_is_percent_encoded_as_browsers_do(
    raw_server: Any, make_client: MakeClient
) -> None:
    # Header bytes that are not UTF-8 reach us as surrogate escapes, which yarl
    # dropped: the next hop went to "/final/caf", another resource. A space in a
    # query became "+", which a server cannot tell from a literal plus.
    lines: list[str] = []

    async def server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line, _, _ = await read_request(reader)
            lines.append(line)
            if line.startswith("GET /start "):
                location = b"/final/caf\xe9/\xe2\x82\xac x?q=a b&r=1+2"
                writer.write(b"HTTP/1.1 302 Found\r\nLocation: " + location)
                writer.write(b"\r\nContent-Length: 0\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    base, _ = await raw_server(server)
    client = make_client(base, max_retries=0)
    response = await client.get("/start")
    assert lines[1] == "GET /final/caf%E9/%E2%82%AC%20x?q=a%20b&r=1+2 HTTP/1.1"
    assert response.request.url.raw_path_qs == "/final/caf%E9/%E2%82%AC%20x?q=a%20b&r=1+2"


def test_origin_includes_scheme_and_default_port() -> None:
    from yarl import URL

    assert origin_of(URL("https://api.test/")) == origin_of(URL("https://API.test:443/x"))
    assert origin_of(URL("https://api.test/")) != origin_of(URL("http://api.test/"))
    assert origin_of(URL("http://api.test/")) != origin_of(URL("http://api.test:8080/"))


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_max_redirects_validated_before_any_io(bad: Any) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="max_redirects"):
        RedirectMiddleware(max_redirects=bad)
    with pytest.raises(stackwire.InvalidRequestError, match="max_redirects"):
        stackwire.AsyncClient("http://127.0.0.1:1/", max_redirects=bad)
