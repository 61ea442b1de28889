"""The ``headers`` middleware, checked on the wire: merging, `Omit`, auth, validation."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable

import pytest

import stackwire
from stackwire.middlewares.headers import HeadersMiddleware, check_header, platform_headers
from tests.conftest import EchoServer, SeenRequest

MakeClient = Callable[..., stackwire.AsyncClient]
EchoStart = Callable[[], Awaitable[tuple[str, EchoServer]]]

KEY = "sk-test-0123456789abcdef"


async def _one_request(
    echo_server: EchoStart,
    make_client: MakeClient,
    *,
    client_options: dict[str, object] | None = None,
    headers: dict[str, str | stackwire.Omit] | None = None,
) -> SeenRequest:
    base, server = await echo_server()
    client = make_client(base, **(client_options or {}))
    await client.get("/x", headers=headers)
    assert len(server.requests) == 1
    return server.requests[0]


async def test_default_headers(echo_server: EchoStart, make_client: MakeClient) -> None:
    seen = await _one_request(echo_server, make_client)
    assert seen.header_values("User-Agent") == [f"stackwire/{stackwire.__version__}"]
    assert seen.header_values("Accept") == ["application/json"]
    assert seen.header_values("Authorization") == []
    assert seen.header_values("X-Stackwire-OS") == []


async def test_client_headers_then_request_headers_case_insensitive(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    seen = await _one_request(
        echo_server,
        make_client,
        client_options={"headers": {"X-Team": "core", "X-Env": "prod", "accept": "text/plain"}},
        headers={"x-env": "staging", "X-New": "1", "ACCEPT": "application/x-ndjson"},
    )
    assert seen.header_values("X-Team") == ["core"]
    assert seen.header_values("X-Env") == ["staging"]  # one value; the request wins
    assert seen.header_values("X-New") == ["1"]
    assert seen.header_values("Accept") == ["application/x-ndjson"]
    names = [name.lower() for name, _ in seen.headers]
    assert len(names) == len(set(names)), f"a header was sent twice: {seen.headers}"


async def test_request_can_override_user_agent_and_authorization(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    seen = await _one_request(
        echo_server,
        make_client,
        client_options={"api_key": KEY},
        headers={"user-agent": "my-sdk/2", "authorization": "Bearer other-key"},
    )
    assert seen.header_values("User-Agent") == ["my-sdk/2"]
    assert seen.header_values("Authorization") == ["Bearer other-key"]


@pytest.mark.parametrize("name", ["User-Agent", "Accept", "user-agent", "ACCEPT"])
async def test_omit_per_request_removes_default_headers(
    echo_server: EchoStart, make_client: MakeClient, name: str
) -> None:
    seen = await _one_request(echo_server, make_client, headers={name: stackwire.Omit()})
    assert seen.header_values(name) == []


async def test_omit_in_client_headers_removes_defaults_for_every_call(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    seen = await _one_request(
        echo_server,
        make_client,
        client_options={
            "api_key": KEY,
            "headers": {"User-Agent": stackwire.Omit(), "Authorization": stackwire.omit},
        },
    )
    assert seen.header_values("User-Agent") == []
    assert seen.header_values("Authorization") == []
    assert seen.header_values("Accept") == ["application/json"]


async def test_omit_removes_a_client_default_header(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    seen = await _one_request(
        echo_server,
        make_client,
        client_options={"headers": {"X-Team": "core"}},
        headers={"x-team": stackwire.Omit()},
    )
    assert seen.header_values("X-Team") == []


async def test_api_key_is_sent_as_bearer(echo_server: EchoStart, make_client: MakeClient) -> None:
    seen = await _one_request(echo_server, make_client, client_options={"api_key": KEY})
    assert seen.header_values("Authorization") == [f"Bearer {KEY}"]


async def test_api_key_header_sends_the_bare_key(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    seen = await _one_request(
        echo_server, make_client, client_options={"api_key": KEY, "api_key_header": "X-Api-Key"}
    )
    assert seen.header_values("X-Api-Key") == [KEY]
    assert seen.header_values("Authorization") == []


async def test_platform_headers_when_asked(echo_server: EchoStart, make_client: MakeClient) -> None:
    seen = await _one_request(echo_server, make_client, client_options={"platform_headers": True})
    expected = platform_headers()
    assert expected["X-Stackwire-Lang"] == "python"
    assert expected["X-Stackwire-Package-Version"] == stackwire.__version__
    for name, value in expected.items():
        assert seen.header_values(name) == [value]


async def test_with_options_merges_headers_and_keeps_the_parent(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    parent = make_client(base, headers={"X-A": "1", "X-B": "1"})
    child = parent.with_options(headers={"x-b": "2", "X-C": "2"})
    await child.get("/x")
    await parent.get("/x")
    child_seen, parent_seen = server.requests
    assert (child_seen.header_values("X-A"), child_seen.header_values("X-B")) == (["1"], ["2"])
    assert child_seen.header_values("X-C") == ["2"]
    assert parent_seen.header_values("X-B") == ["1"]
    assert parent_seen.header_values("X-C") == []


# -- header injection: refused before any I/O ----------------------------------------

BAD_HEADERS = [
    pytest.param({"X-Evil": "a\r\nInjected: 1"}, id="crlf-value"),
    pytest.param({"X-Evil": "a\nb"}, id="lf-value"),
    pytest.param({"X-Evil": "a\rb"}, id="cr-value"),
    pytest.param({"X-Evil": "a\x00b"}, id="nul-value"),
    pytest.param({"X-Evil": "a\x01b"}, id="control-value"),
    pytest.param({"X-Evil": "a\x7fb"}, id="del-value"),
    pytest.param({"X-Evil": "a\x1bb"}, id="escape-value"),
    pytest.param({"X-Evil\r\nInjected": "1"}, id="crlf-name"),
    pytest.param({"X-Evil\n": "1"}, id="lf-name"),
    pytest.param({"X\x00Evil": "1"}, id="nul-name"),
    pytest.param({"X Evil": "1"}, id="space-name"),
    pytest.param({"": "1"}, id="empty-name"),
    pytest.param({"X-Evil\r\n": stackwire.Omit()}, id="crlf-name-omit"),
]


@pytest.mark.parametrize("headers", BAD_HEADERS)
async def test_bad_request_headers_fail_before_any_connection(
    echo_server: EchoStart, make_client: MakeClient, headers: dict[str, str | stackwire.Omit]
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError):
        await client.get("/x", headers=headers)
    assert server.connections == 0
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


@pytest.mark.parametrize("headers", BAD_HEADERS[:-1])
async def test_bad_client_headers_fail_at_construction(
    echo_server: EchoStart, headers: dict[str, str]
) -> None:
    base, server = await echo_server()
    with pytest.raises(stackwire.InvalidRequestError):
        stackwire.AsyncClient(base, headers=headers)
    ok = stackwire.AsyncClient(base)
    with pytest.raises(stackwire.InvalidRequestError):
        ok.with_options(headers=headers)
    await ok.close()
    assert server.connections == 0


@pytest.mark.parametrize("bad_key", [KEY + "\r\nX-Injected: 1", KEY + "\n", KEY + "\x00"])
@pytest.mark.parametrize("api_key_header", [None, "X-Api-Key"])
async def test_bad_api_key_fails_at_construction_without_showing_it(
    echo_server: EchoStart, bad_key: str, api_key_header: str | None
) -> None:
    base, server = await echo_server()
    with pytest.raises(stackwire.InvalidRequestError) as caught:
        stackwire.AsyncClient(base, api_key=bad_key, api_key_header=api_key_header)
    assert KEY not in str(caught.value)
    assert KEY not in repr(caught.value)
    assert server.connections == 0


def test_bad_api_key_header_name_is_rejected() -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        stackwire.AsyncClient("http://127.0.0.1:9/", api_key=KEY, api_key_header="X Api Key")


def test_check_header_accepts_tokens_and_visible_values() -> None:
    check_header("X-Custom_1.2~!#$%&'*+^`|", "any text: tab\tand unicode é")
    with pytest.raises(stackwire.InvalidRequestError):
        check_header("X-Ok", 1)  # type: ignore[arg-type]


def test_the_api_key_is_never_in_a_repr() -> None:
    client = stackwire.AsyncClient("http://127.0.0.1:9/", api_key=KEY)
    middleware = client.pipeline["headers"]
    assert isinstance(middleware, HeadersMiddleware)
    for text in (repr(client), str(client), repr(middleware), repr(client.pipeline)):
        assert KEY not in text
    assert middleware.default_headers["Authorization"] == f"Bearer {KEY}"
    assert "authorization" in middleware.sensitive_headers


def test_api_key_header_is_sensitive() -> None:
    middleware = HeadersMiddleware(api_key=KEY, api_key_header="X-Custom-Key")
    assert "x-custom-key" in middleware.sensitive_headers


async def test_request_header_overrides_a_client_omit(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    seen = await _one_request(
        echo_server,
        make_client,
        client_options={"headers": {"User-Agent": stackwire.Omit()}},
        headers={"user-agent": "mine/1"},
    )
    assert seen.header_values("User-Agent") == ["mine/1"]


class Tier(str, enum.Enum):  # noqa: UP042 (the mixin, whose str() is "Tier.PRO")
    PRO = "pro"


class Masked(str):
    """A str whose ``str()`` is not the text it holds (as for an Enum member)."""

    def __str__(self) -> str:
        return "ok\r\nX-Injected: 1"


async def test_str_subclass_values_are_sent_as_the_text_they_hold(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    # aiohttp writes ``str(value)``: ``Tier.PRO`` for an Enum member, and for a
    # subclass like ``Masked`` a text that was never checked (a bare ValueError).
    base, server = await echo_server()
    client = make_client(base, headers={"X-Tier": Tier.PRO})
    await client.get("/x", headers={"X-Plan": Tier.PRO, "X-Other": Masked("fine")})
    seen = server.requests[0]
    assert seen.header_values("X-Tier") == ["pro"]
    assert seen.header_values("X-Plan") == ["pro"]
    assert seen.header_values("X-Other") == ["fine"]
    assert seen.header_values("X-Injected") == []
