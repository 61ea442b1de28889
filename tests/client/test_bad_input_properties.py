"""Property: whatever a caller passes (path params, header names and values, query keys
and values, base URLs, client option values), a call succeeds or raises
`InvalidRequestError`, and a rejected one opened no connection and sent nothing
(issue 11 item 5). One real aiohttp server on 127.0.0.1 for the whole test; it counts
the connections it accepts and the requests it answers.

What is generated stays away from what would legitimately fail another way: the
server answers 200 to every method and path, base URLs are either broken or point
at it, valid timeouts are long and valid size caps are larger than its body.
"""

from __future__ import annotations

import asyncio
import gc
import os
from typing import Any
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stackwire


class CountingServer:
    """An aiohttp server on 127.0.0.1 that counts accepted connections and requests."""

    def __init__(self) -> None:
        self.connections = 0
        self.requests = 0
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None

    async def _answer(self, request: web.Request) -> web.Response:
        self.requests += 1
        await request.read()
        return web.json_response({"ok": True})

    async def start(self) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        protocol_factory = self._runner.server
        assert protocol_factory is not None

        def accept() -> Any:
            self.connections += 1
            return protocol_factory()

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(accept, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._runner is not None:
            await self._runner.cleanup()


async def _no_sleep(delay: float) -> None:
    return None


# Values of the wrong type for most things.
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.lists(st.text(max_size=4), max_size=2),
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
    st.builds(object),
)
token = st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True)  # never a framing header
printable = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=24)
# Any text: control characters and lone surrogates too (Hypothesis leaves those out).
raw_text = st.text(st.characters(exclude_categories=[]), max_size=12)


finite = st.floats(allow_nan=False, allow_infinity=False)


def query_values(
    text: st.SearchStrategy[str], floats: st.SearchStrategy[float] = finite
) -> st.SearchStrategy[Any]:
    # NaN and the infinities are refused (they have no value on the wire).
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), floats, text)
    # Lists of scalars (a list in a list has no comma form), mappings of anything.
    return st.recursive(
        st.one_of(scalars, st.lists(scalars, max_size=3)),
        lambda inner: st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    )


headers = st.dictionaries(token, st.one_of(printable, st.just(stackwire.Omit())), max_size=3)
query = st.dictionaries(st.one_of(printable, st.integers()), query_values(printable), max_size=4)
long_seconds = st.floats(min_value=30, max_value=1e6)

# Client options with values that are valid (and harmless for this server).
VALID_OPTIONS: dict[str, st.SearchStrategy[Any]] = {
    "api_key": printable,
    "api_key_header": token,
    "headers": headers,
    "query": query,
    "timeout": st.one_of(long_seconds, st.builds(stackwire.Timeout, total=long_seconds)),
    "deadline": long_seconds,
    "max_retries": st.integers(min_value=0, max_value=5),
    "max_retry_after": st.floats(min_value=0, max_value=100),
    "idempotency_header": st.one_of(token, st.none()),
    "retry_count_header": st.one_of(token, st.none()),
    "query_array_format": st.sampled_from(["repeat", "brackets", "indices", "comma"]),
    "query_nested_format": st.sampled_from(["brackets", "dots"]),
    "follow_redirects": st.booleans(),
    "max_redirects": st.integers(min_value=0, max_value=20),
    "sensitive_headers": st.lists(token, max_size=3),
    "max_response_bytes": st.one_of(st.integers(min_value=1000), st.none()),
    "max_event_bytes": st.one_of(st.integers(min_value=1), st.none()),
    "trust_env": st.just(False),
    "strict": st.booleans(),
    "platform_headers": st.booleans(),
    "request_id_headers": st.lists(token, max_size=2),
    "user_agent": st.one_of(printable, st.none()),
    "middlewares": st.just(()),
    "max_connections": st.integers(min_value=1, max_value=50),
}
# Options only junk is tried for (a valid proxy or session would change the test).
JUNK_ONLY = ["proxy", "verify", "auth", "session", "on_retry", "clock", "random", "sleep"]

verbs = st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"])


def _dots(path: str) -> bool:
    segments = path.partition("#")[0].partition("?")[0].split("/")
    return any(unquote(segment) in (".", "..") for segment in segments)


def relative(text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A path under the base URL: an absolute one would go to another host."""
    return text.filter(lambda p: "://" not in p).map(lambda p: "/" + p.lstrip("/"))


BROKEN_BASES = [
    "http://[::1",
    "http://127.0.0.1:99999/",
    "ftp://127.0.0.1:{port}/",
    "127.0.0.1:{port}",
    "http://\ud800.test/",
    "http://xn--a.test/",
    "",
    "http://",
    "http://127.0.0.1:{port}/?q=1",
    "http://127.0.0.1:{port}/#top",
]

# What one case may get wrong (at most one thing, so that most parts are valid and a
# wrong one is the reason a call is rejected).
FLAWS = [
    "base",
    "base-tail",
    "option",
    "method",
    "path",
    "path_params",
    "header-name",
    "header-value",
    "headers",
    "query-key",
    "query-value",
    "query",
]


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    flaw = draw(st.one_of(st.none(), st.sampled_from(FLAWS)))
    tail = draw(raw_text if flaw == "base-tail" else st.sampled_from(["", "v1", "v1/", "a b/"]))
    base: Any = (
        draw(
            st.sampled_from(
                ["http://127.0.0.1:{port}/", "http://{user}:{password}@127.0.0.1:{port}/"]
            )
        )
        + tail
    )
    if flaw == "base":
        base = draw(st.one_of(st.sampled_from(BROKEN_BASES), junk))
    chosen = draw(st.fixed_dictionaries({}, optional=VALID_OPTIONS))
    if flaw == "option":
        chosen[draw(st.sampled_from(sorted(VALID_OPTIONS) + JUNK_ONLY))] = draw(junk)
    method = draw(st.one_of(junk, raw_text) if flaw == "method" else verbs)
    template = draw(st.booleans())
    if flaw == "path":
        path = draw(st.one_of(relative(raw_text), junk))
    else:
        # Without '.' or '..' segments (``/.``, ``/a/%2e%2e``): refused, by design.
        path = (
            "/items/{id}"
            if template
            else draw(relative(printable.filter(lambda p: "{" not in p and not _dots(p))))
        )
    # Not empty, "." or "..": each is refused, by design, as a path segment.
    segment = printable.filter(lambda v: v not in ("", ".", ".."))
    params: Any = {"id": draw(st.one_of(segment, st.integers()))} if template else None
    if flaw == "path_params":
        params = draw(st.one_of(junk, st.fixed_dictionaries({"id": st.one_of(junk, raw_text)})))
    call_headers: Any = draw(headers)
    if flaw == "header-name":
        call_headers[draw(raw_text)] = "1"
    elif flaw == "header-value":
        call_headers[draw(token)] = draw(st.one_of(raw_text, junk))
    elif flaw == "headers":
        call_headers = draw(junk)
    call_query: Any = draw(query)
    if flaw == "query-key":
        call_query[draw(raw_text)] = "1"
    elif flaw == "query-value":
        call_query["q"] = draw(st.one_of(query_values(raw_text, st.floats()), junk))
    elif flaw == "query":
        call_query = draw(junk)
    return {
        "flaw": flaw,
        "base": base,
        "userinfo": (draw(printable), draw(printable)),
        "options": chosen,
        "method": method,
        "path": path,
        "path_params": params,
        "headers": call_headers,
        "query": call_query,
    }


def _base_url(case: dict[str, Any], port: int) -> Any:
    base = case["base"]
    if not isinstance(base, str):
        return base
    user, password = case["userinfo"]
    # As a caller writes them into a URL: percent-encoded.
    user, password = (quote(user or "u", safe=""), quote(password or "p", safe=""))
    return base.replace("{port}", str(port)).replace("{user}", user).replace("{password}", password)


async def _check(case: dict[str, Any], server: CountingServer, port: int) -> str:
    """Run one case; return what happened ("rejected at construction", ...)."""
    before = (server.connections, server.requests)
    try:
        given = {"sleep": _no_sleep, **case["options"]}
        client = stackwire.AsyncClient(_base_url(case, port), **given)
    except stackwire.InvalidRequestError:
        assert (server.connections, server.requests) == before
        return "bad client"
    try:
        call = {"path_params": case["path_params"], "headers": case["headers"]}
        call["query"] = case["query"]
        try:
            response = await client.request(case["method"], case["path"], **call)
        except stackwire.InvalidRequestError:
            assert (server.connections, server.requests) == before, "a rejected call sent"
            assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
            return "bad call"
        assert response.status_code == 200
        assert server.requests == before[1] + 1
        return "sent"
    finally:
        await client.close()


def test_any_input_succeeds_or_is_an_invalid_request_error_before_any_io() -> None:
    loop = asyncio.new_event_loop()
    server = CountingServer()
    outcomes: dict[str, int] = {}
    try:
        port = loop.run_until_complete(server.start())

        @settings(
            # STACKWIRE_FUZZ_EXAMPLES=5000 for a deeper run; 250 take about 4 s of CPU.
            max_examples=int(os.environ.get("STACKWIRE_FUZZ_EXAMPLES", "250")),
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=cases())
        def check(case: dict[str, Any]) -> None:
            outcome = loop.run_until_complete(_check(case, server, port))
            if case["flaw"] is None:
                assert outcome == "sent", "a valid call was rejected"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        check()
    finally:
        loop.run_until_complete(server.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        gc.collect()
    # Every outcome was reached: the property was not vacuous.
    assert set(outcomes) == {"bad client", "bad call", "sent"}, outcomes


async def test_a_cast_to_no_response_decodes_into_is_refused_before_any_io() -> None:
    # It failed once the response was in, after the request had been sent ([int]
    # with a bare TypeError).
    server = CountingServer()
    port = await server.start()
    try:
        async with stackwire.AsyncClient(f"http://127.0.0.1:{port}/") as client:
            bads: tuple[Any, ...] = (5, "User", object(), [int], {"a": int}, lambda body: body)
            for bad in bads:
                for call in (
                    client.get("/x", cast_to=bad),
                    client.get("/x", cast_to=bad, headers={"X-A": "1"}),
                    client.with_raw_response.get("/x", cast_to=bad),
                ):
                    with pytest.raises(stackwire.InvalidRequestError, match="cast_to="):
                        await call
            assert (server.connections, server.requests) == (0, 0)
            assert await client.get("/x", cast_to=dict[str, bool]) == {"ok": True}
            assert await client.get("/x", cast_to=stackwire.Response) is not None
            assert server.requests == 2
    finally:
        await server.close()
