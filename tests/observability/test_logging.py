"""Logging: `LoggingMiddleware` per attempt, ``retry``'s INFO line per retry decision,
``STACKWIRE_LOG``, and redaction: no canary secret in any record, over 20 fault and
redirect scenarios on real 127.0.0.1 servers (sleeps recorded, never slept)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire.observability import LoggingMiddleware
from tests.conftest import RawHandler, RawServer, Serve, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]
StartRaw = Callable[[RawHandler], Awaitable[tuple[str, RawServer]]]

CANARY_KEY = "sk-canary-APIKEY-0123456789"
CANARY_QUERY = "canary-query-key-9876543210"
CANARY_PROXY_PASSWORD = "canary-proxy-pw-5555"
CANARY_HEADER = "canary-x-secret-header-4242"
CANARIES = (
    CANARY_KEY,
    CANARY_QUERY,
    CANARY_PROXY_PASSWORD,
    CANARY_HEADER,
    base64.b64encode(f"user:{CANARY_PROXY_PASSWORD}".encode()).decode(),
)

# Every list names the secrets: they must stay hidden whatever the lists say (and a
# header that echoes one, such as ``echo_auth``'s WWW-Authenticate, is listed too).
EVERYTHING_ALLOWED = LoggingMiddleware(
    headers=[
        "authorization",
        "x-api-key",
        "proxy-authorization",
        "x-secret",
        "cookie",
        "www-authenticate",
        # URL-valued headers: a secret query value in them stays hidden too.
        "location",
        "content-location",
        "link",
    ],
    query=["key", "api_key", "token", "q"],
    body=True,
)

SERVER_LOGGERS = ("aiohttp.access", "aiohttp.server", "aiohttp.web")


def record_texts(record: logging.LogRecord) -> list[str]:
    """Everything of a record a handler could print."""
    texts = [record.getMessage(), str(record.msg), repr(record.args)]
    texts += [repr(value) for value in vars(record).values()]
    if record.exc_info:
        texts.append(logging.Formatter().formatException(record.exc_info))
    return texts


# -- the servers of the scenarios ----------------------------------------------------


def origin_app(other: list[str]) -> web.Application:
    """Paths that answer as their names say; ``other`` holds a second origin's URL."""
    counts: dict[str, int] = {}

    def nth(request: web.Request) -> int:
        counts[request.path] = counts.get(request.path, 0) + 1
        return counts[request.path]

    async def ok(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    async def fail_once(request: web.Request) -> web.Response:
        status = int(request.match_info["status"])
        return web.json_response({}, status=status if nth(request) == 1 else 200)

    async def always(request: web.Request) -> web.Response:
        return web.json_response({"error": "down"}, status=int(request.match_info["status"]))

    async def limited(request: web.Request) -> web.Response:
        if nth(request) == 1:
            name = request.query.get("header", "Retry-After")
            return web.json_response({}, status=429, headers={name: request.query["value"]})
        return web.json_response({"ok": True})

    async def echo_auth(request: web.Request) -> web.Response:
        # A server that echoes the credentials it got, in its body and a header.
        echoed = request.headers.get("Authorization", "")
        return web.json_response(
            {"error": f"bad key {echoed}", "secret": request.headers.get("X-Secret")},
            status=401,
            headers={"WWW-Authenticate": echoed},
        )

    async def echo_query(request: web.Request) -> web.Response:
        # A server that echoes the URL it got (the ?key= canary in it) in its error
        # body and in a header of URLs.
        return web.json_response(
            {"error": f"no such page: {request.path_qs}"},
            status=400,
            headers={"Link": f"<{request.path_qs}>; rel=self", "Content-Location": request.path_qs},
        )

    async def redirect_same(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/ok?key={CANARY_QUERY}&limit=1")

    async def redirect_away(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"{other[0]}ok?key={CANARY_QUERY}")

    async def redirect_307(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"/ok?token={CANARY_QUERY}")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"/loop?key={CANARY_QUERY}")

    async def redirect_userinfo(request: web.Request) -> web.Response:
        # Credentials of the server's own in a URL it hands out: in a header and a body.
        url = f"http://user:{CANARY_PROXY_PASSWORD}@{request.host}/ok"
        raise web.HTTPFound(url, text=f"see {url}")

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b'data: {"n": 1}\n\n')
        await response.write_eof()
        return response

    return routes(
        ("*", "/ok", ok),
        ("*", "/fail-once/{status}", fail_once),
        ("GET", "/always/{status}", always),
        ("GET", "/limited", limited),
        ("GET", "/echo-auth", echo_auth),
        ("GET", "/echo-query", echo_query),
        ("GET", "/redirect-same", redirect_same),
        ("GET", "/redirect-away", redirect_away),
        ("POST", "/redirect-307", redirect_307),
        ("GET", "/loop", loop),
        ("GET", "/redirect-userinfo", redirect_userinfo),
        ("GET", "/events", events),
    )


@dataclass
class Faults:
    """A raw server breaking HTTP on purpose, by the path asked for."""

    seen: dict[str, int] = field(default_factory=dict)

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line, _headers, _body = await read_request(reader)
            path = line.split(" ")[1].split("?")[0]
            self.seen[path] = self.seen.get(path, 0) + 1
            first = self.seen[path] == 1
            if path == "/reset-then-ok" and first:
                writer.transport.abort()
                return
            if path == "/cut-body":
                writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a"')
                await writer.drain()
                writer.transport.abort()
                return
            if path == "/hang":
                await reader.read()  # until the client gives up
                return
            if path == "/garbage":
                writer.write(b"HTTQ/9 what\r\n\r\n")
                await writer.drain()
                writer.transport.abort()
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()


class ForwardingProxy:
    """An HTTP forward proxy: sends each absolute-form request on to its origin
    (``Connection: close``), and pipes the answer back; remembers the credentials."""

    def __init__(self) -> None:
        self.authorizations: list[str] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line, headers, body = await read_request(reader)
        self.authorizations.append(headers.get("proxy-authorization", ""))
        method, target, version = line.split(" ", 2)
        rest = target.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        host, _, port = hostport.partition(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port or 80))
        forwarded = [f"{method} /{path} {version}"]
        forwarded += [
            f"{name}: {value}"
            for name, value in headers.items()
            if name not in ("proxy-authorization", "connection")
        ]
        forwarded.append("Connection: close")
        up_writer.write(("\r\n".join(forwarded) + "\r\n\r\n").encode() + body)
        await up_writer.drain()
        while data := await up_reader.read(65536):
            writer.write(data)
            await writer.drain()
        up_writer.close()


@dataclass
class World:
    origin: str
    other: str
    faults: str
    proxy: str
    refused: str


@pytest.fixture
async def world(serve: Serve, raw_server: StartRaw) -> World:
    other: list[str] = []
    origin = await serve(origin_app(other))
    other.append(await serve(origin_app([origin])))
    faults, _ = await raw_server(Faults())
    proxy, _ = await raw_server(ForwardingProxy())
    closed = RawServer(Faults())
    refused = await closed.start()
    await closed.close()  # nothing listens there any more
    return World(origin, other[0], faults, proxy, refused)


Scenario = Callable[[World, MakeClient], Awaitable[object]]


def client_for(make_client: MakeClient, base: str, **options: Any) -> stackwire.AsyncClient:
    options.setdefault("api_key", CANARY_KEY)
    options.setdefault("headers", {"X-Secret": CANARY_HEADER})
    options.setdefault("sensitive_headers", ["X-Secret"])
    options.setdefault("middlewares", [EVERYTHING_ALLOWED])
    options.setdefault("random", lambda: 0.0)
    return make_client(base, **options)


def with_proxy(world: World) -> str:
    return world.proxy.replace("http://", f"http://user:{CANARY_PROXY_PASSWORD}@").rstrip("/")


Q = {"key": CANARY_QUERY, "limit": 3}

SCENARIOS: dict[str, Scenario] = {
    "ok": lambda w, m: client_for(m, w.origin).get("/ok", query=Q),
    "500 then 200": lambda w, m: client_for(m, w.origin).get("/fail-once/500", query=Q),
    "503 for good": lambda w, m: client_for(m, w.origin).get("/always/503", query=Q),
    "429 Retry-After": lambda w, m: client_for(m, w.origin).get(
        "/limited", query={**Q, "value": "1"}
    ),
    "429 retry-after-ms": lambda w, m: client_for(m, w.origin).get(
        "/limited", query={**Q, "header": "retry-after-ms", "value": "250"}
    ),
    "429 Retry-After too long": lambda w, m: client_for(m, w.origin).get(
        "/limited", query={**Q, "value": "3600"}
    ),
    "reset then ok": lambda w, m: client_for(m, w.faults).get("/reset-then-ok", query=Q),
    "body cut short": lambda w, m: client_for(m, w.faults).get("/cut-body", query=Q),
    "malformed status line": lambda w, m: client_for(m, w.faults).get("/garbage", query=Q),
    "refused": lambda w, m: client_for(m, w.refused).get("/x", query=Q),
    "timeout": lambda w, m: client_for(m, w.faults, timeout=0.05, max_retries=1).get(
        "/hang", query=Q
    ),
    "same-origin redirect": lambda w, m: client_for(m, w.origin).get("/redirect-same", query=Q),
    "cross-origin redirect": lambda w, m: client_for(m, w.origin).get("/redirect-away", query=Q),
    "redirect loop": lambda w, m: client_for(m, w.origin).get("/loop", query=Q),
    "307 POST redirect": lambda w, m: client_for(m, w.origin).post(
        "/redirect-307", query=Q, json={"a": 1}
    ),
    "redirect not followed": lambda w, m: client_for(m, w.origin, follow_redirects=False).get(
        "/redirect-same", query=Q
    ),
    "401 echoing the key": lambda w, m: client_for(m, w.origin).get("/echo-auth", query=Q),
    "400 echoing the query": lambda w, m: client_for(m, w.origin).get("/echo-query", query=Q),
    "userinfo in a Location and a body": lambda w, m: client_for(
        m, w.origin, follow_redirects=False
    ).get("/redirect-userinfo", query=Q),
    "cross-origin redirect not followed": lambda w, m: client_for(
        m, w.origin, follow_redirects=False
    ).get("/redirect-away", query=Q),
    "proxy ok": lambda w, m: client_for(m, w.origin, proxy=with_proxy(w)).get("/ok", query=Q),
    "proxy 503 then 200": lambda w, m: client_for(m, w.origin, proxy=with_proxy(w)).get(
        "/fail-once/503", query=Q
    ),
    "stream": lambda w, m: _consume(client_for(m, w.origin), Q),
    "POST 500 then 200": lambda w, m: client_for(m, w.origin).post(
        "/fail-once/500", query=Q, json={"a": 1}
    ),
    # (userinfo is sent as Basic auth: no api_key, aiohttp refuses both at once)
    "userinfo in base_url": lambda w, m: client_for(
        m, w.origin.replace("http://", f"http://user:{CANARY_PROXY_PASSWORD}@"), api_key=None
    ).get("/ok", query=Q),
}


async def _consume(client: stackwire.AsyncClient, query: dict[str, object]) -> None:
    async with await client.get("/events", query=query, stream=True) as stream:
        async for _ in stream:
            pass


def test_there_are_twenty_scenarios_or_more() -> None:
    assert len(SCENARIOS) >= 20


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_no_secret_in_any_log_record(
    name: str, world: World, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with contextlib.suppress(stackwire.APIError):  # failures are part of the scenarios
        await SCENARIOS[name](world, make_client)
    ours = [r for r in caplog.records if r.name.startswith("stackwire")]
    assert ours, "the scenario logged nothing: it proves nothing"
    for record in caplog.records:
        if record.name.startswith(SERVER_LOGGERS):
            continue  # the test servers' access logs, not the client's
        for text in record_texts(record):
            for canary in CANARIES:
                assert canary not in text, f"{name}: {record.name} {record.getMessage()!r}"


# -- what the lines say ----------------------------------------------------------------


async def test_one_debug_line_per_attempt_and_one_info_line_per_retry(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stackwire")
    base = await serve(origin_app([]))
    client = make_client(base, middlewares=[LoggingMiddleware()], random=lambda: 0.0)
    with pytest.raises(stackwire.ServiceUnavailableError):
        await client.get("/always/503", query={"limit": 2, "q": "private"})
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    url = f"{base}always/503?limit=2&q=[redacted]"
    assert [line.split(" in ")[0] for line in debug] == [f"GET {url} -> 503"] * 3
    assert [line.split("(")[-1] for line in debug] == [
        "attempt 0, new connection)",
        "attempt 1, reused connection)",
        "attempt 2, reused connection)",
    ]
    # One line before each sleep, none for the final failure.
    assert info == [
        f"retrying GET {base}always/503?limit=2&q=[redacted] after attempt 0 failed "
        "(status 503): sleeping 0.500 s (backoff)",
        f"retrying GET {base}always/503?limit=2&q=[redacted] after attempt 1 failed "
        "(status 503): sleeping 1.000 s (backoff)",
    ]
    fields = caplog.records[0].stackwire  # type: ignore[attr-defined]
    assert fields["status_code"] == 503
    assert fields["attempt"] == 0
    assert fields["reused_connection"] is False


async def test_retry_line_names_retry_after_as_the_source(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stackwire")
    client = make_client(await serve(origin_app([])))
    await client.get("/limited", query={"value": "2"})
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.endswith("(status 429): sleeping 2.000 s (retry-after)")


async def test_connection_errors_log_their_class_not_their_message(
    raw_server: StartRaw, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stackwire")
    base, _ = await raw_server(Faults())
    client = make_client(base, middlewares=[LoggingMiddleware()])
    await client.get("/reset-then-ok")
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug[0].startswith(f"GET {base}reset-then-ok -> APIConnectionError in ")
    assert debug[1].startswith(f"GET {base}reset-then-ok -> 200 in ")
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "(APIConnectionError): sleeping" in info[0]


async def test_headers_and_bodies_by_allowlist(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stackwire")
    logging_mw = LoggingMiddleware(headers=["x-tenant"], body=True, max_body_bytes=8)
    client = make_client(await serve(origin_app([])), middlewares=[logging_mw], api_key=CANARY_KEY)
    await client.post(
        "/ok", json={"text": "a long body"}, headers={"X-Tenant": "acme", "X-Other": "hidden"}
    )
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert "X-Tenant: acme" in line
    assert "X-Other: [redacted]" in line
    assert "Authorization: [redacted]" in line
    assert "Content-Type: application/json" in line
    assert "request body '{\"text\":'... (22 bytes)" in line
    assert "response body '{\"ok\": t'... (12 bytes)" in line
    assert CANARY_KEY not in line


@pytest.mark.parametrize("shown_of_key", [1, 6, len(CANARY_KEY) - 1])
async def test_a_secret_cut_by_the_body_cap_prints_none_of_itself(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture, shown_of_key: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="stackwire")
    head = '{"note":"'
    logging_mw = LoggingMiddleware(body=True, max_body_bytes=len(head) + shown_of_key)
    client = make_client(await serve(origin_app([])), middlewares=[logging_mw], api_key=CANARY_KEY)
    await client.post("/ok", json={"note": CANARY_KEY})
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert f"request body '{head}[redacted]'..." in line
    assert CANARY_KEY[:shown_of_key] + "'" not in line


async def test_logging_off_means_no_records_and_the_same_result(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="stackwire")
    client = make_client(await serve(origin_app([])), middlewares=[LoggingMiddleware()])
    assert (await client.get("/ok")).json() == {"ok": True}
    assert not [r for r in caplog.records if r.name.startswith("stackwire")]


def test_the_logger_is_silent_by_default() -> None:
    handlers = logging.getLogger("stackwire").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)


@pytest.mark.parametrize(("value", "shown"), [("info", True), ("debug", True), ("", False)])
def test_stackwire_log_adds_a_stderr_handler(value: str, shown: bool) -> None:
    code = (
        "import logging, stackwire\n"
        "logging.getLogger('stackwire').info('retry decision %s', 'here')\n"
        "logging.getLogger('stackwire').debug('attempt line')\n"
    )
    env = {**os.environ, "STACKWIRE_LOG": value}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert ("retry decision here" in done.stderr) is shown
    assert ("attempt line" in done.stderr) is (value == "debug")
    assert done.stdout == ""


def test_logging_middleware_rejects_bad_options() -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        LoggingMiddleware(query="key")
    with pytest.raises(stackwire.InvalidRequestError):
        LoggingMiddleware(headers="authorization")
    with pytest.raises(stackwire.InvalidRequestError, match="0 or more"):
        LoggingMiddleware(body=True, max_body_bytes=-1)  # would print all but one byte


async def test_secret_query_values_echoed_in_a_body_or_a_url_header_are_hidden(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stackwire")
    logging_mw = LoggingMiddleware(headers=["link", "content-location"], query=["key"], body=True)
    client = make_client(await serve(origin_app([])), middlewares=[logging_mw])
    with pytest.raises(stackwire.BadRequestError):
        await client.get("/echo-query", query={"key": "abc", "sig": CANARY_QUERY, "limit": 3})
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert CANARY_QUERY not in line
    assert "key=abc" not in line
    # What is not secret still shows, in the body and the URL headers alike.
    assert line.count("key=[redacted]&sig=[redacted]&limit=3") == 4  # URL, Link, C-L, body
