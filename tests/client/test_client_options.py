"""Client options: ``with_options``, shared sessions, ``env_prefix`` and secrets."""

from __future__ import annotations

import asyncio
import gc
import inspect
import ssl
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire.client.async_client import ClientOptions, DerivedOptions
from tests.conftest import RawServer, Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]

KEY = "sk-live-SECRETSECRET-7a1c"
TOKEN = "tok-SECRETSECRET-99zz"


class Seen:
    def __init__(self) -> None:
        self.headers: list[dict[str, str]] = []
        self.queries: list[dict[str, str]] = []


def echo_app(seen: Seen) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        seen.headers.append(dict(request.headers))
        seen.queries.append(dict(request.query))
        return web.json_response({"ok": True})

    async def unauthorized(request: web.Request) -> web.Response:
        # An API that echoes the credentials it refused.
        auth = request.headers.get("Authorization", "")
        return web.json_response({"error": f"invalid credentials: {auth}"}, status=401)

    return routes(("GET", "/echo", handler), ("GET", "/denied", unauthorized))


# -- with_options ----------------------------------------------------------------------


async def test_with_options_accepts_every_constructor_option(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(await serve(echo_app(Seen())))
    samples: dict[str, Any] = {
        "api_key": "key-0123456789",
        "api_key_header": "X-Api-Key",
        "headers": {"X-A": "1"},
        "query": {"a": 1},
        "timeout": 5.0,
        "deadline": 30.0,
        "max_retries": 0,
        "max_retry_after": 10.0,
        "idempotency_header": None,
        "retry_count_header": None,
        "query_array_format": "comma",
        "query_nested_format": "dots",
        "follow_redirects": False,
        "max_redirects": 3,
        "sensitive_headers": ["X-Secret"],
        "max_response_bytes": 1024,
        "max_event_bytes": 1024,
        "strict": True,
        "platform_headers": True,
        "user_agent": "mine/1",
        "request_id_headers": ["x-trace-id"],
        "middlewares": [],
        "on_retry": None,
        "random": lambda: 0.5,
        "clock": lambda: 0.0,
    }
    samples.update(trust_env=False, proxy=None, verify=True, session=None, max_connections=5)
    keys = set(ClientOptions.__annotations__)
    assert keys <= set(DerivedOptions.__annotations__)
    for name in sorted(keys):
        # Options without a sample are given the value the client already has.
        value = samples[name] if name in samples else getattr(client._config, name)
        derived = client.with_options(**{name: value})
        await derived.get("/echo")
        await derived.close()  # a derived client with its own pool closes it
    assert client.pool_stats().in_use == 0
    await client.get("/echo")  # closing the derived clients left this one working
    with pytest.raises(stackwire.InvalidRequestError, match="unknown client option 'colour'"):
        client.with_options(colour="blue")  # type: ignore[call-arg]


async def test_headers_merge_and_set_headers_replace(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()
    client = make_client(
        await serve(echo_app(seen)), headers={"X-A": "1", "X-B": "2"}, query={"a": "1", "b": "2"}
    )
    await client.with_options(headers={"X-B": "two", "X-C": "3"}, query={"b": "two"}).get("/echo")
    await client.with_options(set_headers={"X-C": "3"}, set_query={"c": "3"}).get("/echo")
    await client.get("/echo")

    merged, replaced, original = seen.headers
    assert (merged["X-A"], merged["X-B"], merged["X-C"]) == ("1", "two", "3")
    assert "X-A" not in replaced
    assert "X-B" not in replaced
    assert replaced["X-C"] == "3"
    assert (original["X-A"], original["X-B"]) == ("1", "2")
    assert "X-C" not in original
    assert seen.queries == [{"a": "1", "b": "two"}, {"c": "3"}, {"a": "1", "b": "2"}]

    with pytest.raises(stackwire.InvalidRequestError, match="not both"):
        client.with_options(headers={"X": "1"}, set_headers={"Y": "2"})
    with pytest.raises(stackwire.InvalidRequestError, match="not both"):
        client.with_options(query={"x": 1}, set_query={"y": 2})


async def test_headers_merged_by_with_options_match_names_case_insensitively(
    serve: Serve, make_client: MakeClient
) -> None:
    # A later with_options(headers=) that spells a name another way replaces the
    # value: it was kept beside it, and the earlier spelling won (Omit stayed, too).
    seen: list[tuple[list[str], list[str]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.headers.getall("X-A", []), request.headers.getall("X-B", [])))
        return web.json_response({})

    base = await serve(routes(("GET", "/echo", handler)))
    client = make_client(base, headers={"x-a": "1", "X-B": "2"})
    await client.with_options(headers={"X-A": "2"}).with_options(headers={"x-a": "3"}).get("/echo")
    await client.with_options(headers={"x-b": stackwire.Omit()}).get("/echo")
    await (
        client.with_options(headers={"X-B": stackwire.Omit()})
        .with_options(headers={"x-b": "back"})
        .get("/echo")
    )
    assert seen == [(["3"], ["2"]), (["1"], []), (["1"], ["back"])]


async def test_derived_clients_share_the_session_and_never_close_it(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    parent = make_client(await serve(echo_app(seen)))
    derived = parent.with_options(headers={"X-Derived": "1"})
    await parent.get("/echo")
    await derived.get("/echo")
    # The derived call reused the parent's idle connection: one pool.
    assert parent.pool_stats() == derived.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)

    await derived.close()
    assert derived.is_closed
    with pytest.raises(stackwire.ClientClosedError):
        await derived.get("/echo")
    await parent.get("/echo")  # the parent is untouched
    assert len(seen.headers) == 3

    sibling = parent.with_options(max_retries=0)
    await parent.close()
    with pytest.raises(stackwire.ClientClosedError):
        await sibling.get("/echo")
    assert len(seen.headers) == 3


async def test_closing_the_origin_closes_derived_clients_with_their_own_pool(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    origin = make_client(await serve(echo_app(seen)))
    own_pool = origin.with_options(verify=ssl.create_default_context())
    shared = own_pool.with_options(max_retries=0)  # on own_pool's session
    grandchild = shared.with_options(max_connections=3)  # a pool of its own again
    for client in (own_pool, shared, grandchild):
        await client.get("/echo")
    assert own_pool.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
    assert grandchild.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)

    await origin.close()
    for client in (own_pool, shared, grandchild):
        assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)
        with pytest.raises(stackwire.ClientClosedError):
            await client.get("/echo")
    assert len(seen.headers) == 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        del own_pool, shared, grandchild, client
        gc.collect()
    assert [str(w.message) for w in caught] == []  # no "Unclosed client session"


@pytest.mark.parametrize(
    "option", [{"verify": False}, {"verify": ssl.create_default_context()}, {"max_connections": 5}]
)
async def test_a_borrowed_session_refuses_the_options_of_a_session_of_our_own(
    option: dict[str, Any],
) -> None:
    # They configure the connector of the session the client would make, so with a
    # borrowed one they were silently ignored: verify=False still verified, a custom
    # CA was never used, the pool kept the session's own limit.
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(stackwire.InvalidRequestError, match="session= cannot be combined"):
            stackwire.AsyncClient("http://127.0.0.1:9/", session=session, **option)
        async with stackwire.AsyncClient("http://127.0.0.1:9/", session=session) as client:
            with pytest.raises(stackwire.InvalidRequestError, match=next(iter(option))):
                client.with_options(**option)
            # What does not configure the session is fine.
            assert client.with_options(proxy="http://127.0.0.1:9", trust_env=False)
        assert not session.closed


async def test_closing_a_derived_client_leaves_its_origin_working(
    serve: Serve, make_client: MakeClient
) -> None:
    origin = make_client(await serve(echo_app(Seen())))
    own_pool = origin.with_options(verify=ssl.create_default_context())
    await own_pool.get("/echo")
    await own_pool.close()
    await origin.get("/echo")
    assert origin.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_with_options_takes_the_constructors_defaults(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = await serve(echo_app(Seen()))
    client = make_client(base + "v1", api_key="key-0123456789")
    constructor = inspect.signature(stackwire.AsyncClient.__init__).parameters.values()
    defaults = {
        p.name: p.default
        for p in constructor
        if p.kind is not p.VAR_KEYWORD and p.default is not inspect.Parameter.empty
    }
    assert defaults == {"base_url": None, "env_prefix": None}
    for name, default in defaults.items():
        derived = client.with_options(**{name: default})
        assert derived.base_url == client.base_url
        assert repr(derived) == repr(client)  # the key is kept too
    monkeypatch.setenv("ACME_BASE_URL", base + "v2")
    assert str(client.with_options(env_prefix="ACME").base_url) == base + "v2/"


# -- env_prefix ------------------------------------------------------------------------


async def test_env_prefix_reads_base_url_and_api_key(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = Seen()
    base = await serve(echo_app(seen))
    monkeypatch.setenv("MYAPI_BASE_URL", base)
    monkeypatch.setenv("MYAPI_API_KEY", KEY)
    monkeypatch.setenv("OTHER_API_KEY", "other-0123456789")

    async with stackwire.AsyncClient(env_prefix="MYAPI") as client:
        assert str(client.base_url) == base
        await client.get("/echo")
        await client.with_options(api_key="given-0123456789").get("/echo")
        await client.with_options(env_prefix="OTHER").get("/echo")
    async with stackwire.AsyncClient(base, env_prefix="MYAPI", api_key="explicit-012345") as c:
        await c.get("/echo")

    assert [h["Authorization"] for h in seen.headers] == [
        f"Bearer {KEY}",
        "Bearer given-0123456789",
        "Bearer other-0123456789",
        "Bearer explicit-012345",
    ]


def test_env_prefix_without_a_base_url_says_which_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOPE_BASE_URL", raising=False)
    monkeypatch.setenv("EMPTY_BASE_URL", "")
    with pytest.raises(stackwire.InvalidRequestError, match="NOPE_BASE_URL"):
        stackwire.AsyncClient(env_prefix="NOPE")
    with pytest.raises(stackwire.InvalidRequestError, match="EMPTY_BASE_URL"):
        stackwire.AsyncClient(env_prefix="EMPTY")
    with pytest.raises(stackwire.InvalidRequestError, match="env_prefix must be a non-empty str"):
        stackwire.AsyncClient("http://127.0.0.1:9/", env_prefix="")


# -- secrets ---------------------------------------------------------------------------


def shows_no_secret(*texts: str) -> None:
    for text in texts:
        assert KEY not in text, text
        assert TOKEN not in text, text
        assert "SECRETSECRET" not in text, text


async def test_secrets_never_show_in_reprs_of_client_request_and_errors(
    serve: Serve, make_client: MakeClient
) -> None:
    requests: list[stackwire.Request] = []

    async def keep(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        requests.append(request)
        return await call_next(request)

    client = make_client(
        await serve(echo_app(Seen())),
        api_key=KEY,
        headers={"X-Session-Token": TOKEN},
        sensitive_headers=["X-Session-Token"],
        middlewares=[keep],
    )
    with pytest.raises(stackwire.AuthenticationError) as info:
        await client.get("/denied")
    error = info.value

    assert repr(client).endswith("api_key='***7a1c')")
    shows_no_secret(
        repr(client),
        repr(client.with_options(max_retries=1)),
        repr(client._config),
        repr(requests[0]),
        repr(error.request),
        repr(error),
        str(error),
        error.message,
    )
    assert "***7a1c" in str(error)  # the echoed key, redacted to its last 4 characters
    # ... while the request really carried the whole key.
    assert requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert requests[0].headers["X-Session-Token"] == TOKEN


async def test_a_bearer_token_in_client_headers_is_hidden_too(
    serve: Serve, make_client: MakeClient
) -> None:
    client = make_client(
        await serve(echo_app(Seen())), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with pytest.raises(stackwire.AuthenticationError) as info:
        await client.get("/denied")
    shows_no_secret(repr(client._config), repr(info.value), str(info.value))
    assert "***99zz" in str(info.value)


async def test_connection_errors_do_not_leak_secrets_through_their_cause(
    raw_server: Any, make_client: MakeClient
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nBroken header line without colon\r\n\r\n")
        await writer.drain()

    base, server = await raw_server(garbage)
    assert isinstance(server, RawServer)
    client = make_client(
        base, api_key=KEY, headers={"Authorization": f"Bearer {TOKEN}"}, max_retries=0
    )
    with pytest.raises(stackwire.APIConnectionError) as info:
        await client.get("/x")
    cause = info.value.__cause__
    assert cause is not None
    shows_no_secret(repr(info.value), str(info.value), repr(cause), str(cause))

    # Nothing listening: connection refused.
    port = base.rsplit(":", 1)[1].rstrip("/")
    await server.close()
    refused = make_client(f"http://127.0.0.1:{port}/", api_key=KEY, max_retries=0)
    with pytest.raises(stackwire.APIConnectionError) as info:
        await refused.get("/x")
    assert info.value.__cause__ is not None
    shows_no_secret(
        repr(info.value), str(info.value), repr(info.value.__cause__), repr(info.value.request)
    )
