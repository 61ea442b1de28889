"""URL building: ``base_url`` joining, path templates and what reaches the server."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

import stackwire
from stackwire._http.urls import fill_path, join_url, normalize_base_url
from tests.conftest import EchoServer, Serve

MakeClient = Callable[..., stackwire.AsyncClient]
EchoStart = Callable[[], Awaitable[tuple[str, EchoServer]]]


# -- base_url ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://api.test", "http://api.test/"),
        ("http://api.test/", "http://api.test/"),
        ("http://api.test/v1", "http://api.test/v1/"),
        ("http://api.test/v1/", "http://api.test/v1/"),
        (URL("https://api.test/a/b"), "https://api.test/a/b/"),
        # From an environment variable or a config file: the spaces are no part of it
        # (a trailing one became the path ``/v1%20/``).
        ("  http://api.test/v1 ", "http://api.test/v1/"),
    ],
)
def test_base_url_gets_one_trailing_slash(given: str | URL, expected: str) -> None:
    assert str(normalize_base_url(given)) == expected
    assert str(stackwire.AsyncClient(given).base_url) == expected


@pytest.mark.parametrize(
    "bad", ["api.test/v1", "/v1", "ftp://api.test/", "http://api.test/?a=1", "http://api.test/#x"]
)
def test_bad_base_url_is_rejected(bad: str) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        stackwire.AsyncClient(bad)


@pytest.mark.parametrize("path", ["/users", "users", "users/", "/users/"])
async def test_relative_paths_stay_under_the_base_path(
    echo_server: EchoStart, make_client: MakeClient, path: str
) -> None:
    base, server = await echo_server()
    client = make_client(base + "v1")
    await client.get(path)
    assert server.requests[0].target == "/v1/" + path.lstrip("/")


async def test_base_url_without_a_path_joins_under_the_root(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base.rstrip("/"))
    assert str(client.base_url) == base
    await client.get("users")
    await client.get("/users")
    assert [r.target for r in server.requests] == ["/users", "/users"]


@pytest.mark.parametrize(
    ("path", "target"),
    [
        ("/a b", "/v1/a%20b"),
        ("/zoë", "/v1/zo%C3%AB"),
        ("/50%", "/v1/50%25"),
        ("/a%2Fb", "/v1/a%2Fb"),
        ("/a;b=c", "/v1/a;b=c"),
        ("/x#fragment", "/v1/x"),
        ("/s?q=a b&r=é", "/v1/s?q=a%20b&r=%C3%A9"),
    ],
)
async def test_literal_paths_are_sent_encoded_and_escapes_kept(
    echo_server: EchoStart, make_client: MakeClient, path: str, target: str
) -> None:
    base, server = await echo_server()
    client = make_client(base + "v1/")
    await client.get(path)
    assert server.requests[0].target == target


async def test_absolute_url_is_used_as_is(echo_server: EchoStart, make_client: MakeClient) -> None:
    base, server = await echo_server()
    other_base, other = await echo_server()
    client = make_client(base + "v1")
    await client.get(other_base + "elsewhere/x?y=1")
    assert server.requests == []
    assert [r.target for r in other.requests] == ["/elsewhere/x?y=1"]


async def test_query_in_path_is_kept_and_merged_with_query(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base + "v1", query={"key": "k"})
    await client.get("/search?q=a%20b&page=2", query={"limit": 5})
    assert server.requests[0].target == "/v1/search?q=a%20b&page=2&key=k&limit=5"


async def test_query_given_replaces_the_same_name_written_in_the_path(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    # ``limit=10&limit=20`` left the server to pick one. As httpx merges params into a
    # URL (the OpenAI SDK's ``_build_request``): the call's query= replaces a name
    # written in the path, which replaces the client's default; what else is written
    # stays as written (``%20``), and None/Omit/NOT_GIVEN replace nothing.
    base, server = await echo_server()
    client = make_client(base + "v1", query={"key": "k", "limit": 1, "tag": "d"})
    await client.get("/s?q=a%20b&limit=10&tag=x&tag=y", query={"limit": 20})
    await client.get("/s?q=a%20b&limit=10&tag=x", query={"tag": ["p", "q"], "key": None})
    await client.get("/s?limit=10", query={"limit": stackwire.Omit()})
    await client.get("/s?limit=10", query={"limit": stackwire.NOT_GIVEN})
    await client.get("/s?limit=10")
    assert [r.target for r in server.requests] == [
        "/v1/s?q=a%20b&tag=x&tag=y&key=k&limit=20",
        "/v1/s?q=a%20b&limit=10&tag=p&tag=q",
        "/v1/s?limit=10&key=k&tag=d",
        "/v1/s?limit=10&key=k&tag=d",
        "/v1/s?limit=10&key=k&tag=d",
    ]


def test_join_url_rejects_dot_segments_and_control_characters() -> None:
    base = URL("http://api.test/v1/")
    for path in ["/../admin", "a/./b", "..", "/a/..", "/a\nb", "/a\x00", "/%2e%2e/x", "/a/%2E"]:
        with pytest.raises(stackwire.InvalidRequestError):
            join_url(base, path)


def test_leading_double_slash_does_not_change_the_host() -> None:
    base = URL("http://api.test/v1/")
    assert join_url(base, "//evil.test/x").host == "api.test"


# -- path parameters ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "raw_segment", "decoded"),
    [
        ("a/b", "a%2Fb", "a/b"),
        ("a b", "a%20b", "a b"),
        ("50%", "50%25", "50%"),
        ("%2e%2e", "%252e%252e", "%2e%2e"),
        ("zoë", "zo%C3%AB", "zoë"),
        ("日本", "%E6%97%A5%E6%9C%AC", "日本"),
        ("a?b=1", "a%3Fb%3D1", "a?b=1"),
        ("a#frag", "a%23frag", "a#frag"),
        ("...", "...", "..."),
        ("a+b&c;d", "a%2Bb%26c%3Bd", "a+b&c;d"),
        (42, "42", "42"),
        (1.5, "1.5", "1.5"),
    ],
)
async def test_path_params_are_percent_encoded_as_one_segment(
    serve: Serve,
    make_client: MakeClient,
    value: object,
    raw_segment: str,
    decoded: str,
) -> None:
    seen: list[tuple[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append((request.raw_path, request.match_info["name"]))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/v1/files/{name}/meta", handler)
    client = make_client(await serve(app) + "v1")
    await client.get("/files/{name}/meta", path_params={"name": value})
    assert seen == [(f"/v1/files/{raw_segment}/meta", decoded)]


class Kind(str, enum.Enum):  # noqa: UP042 (the mixin, whose str() is "Kind.IMAGE")
    IMAGE = "image"


class Version(int, enum.Enum):
    TWO = 2


def test_enum_path_params_are_filled_with_their_values() -> None:
    # ``str(Kind.IMAGE)`` is ``'Kind.IMAGE'``, which names another resource.
    assert fill_path("/{kind}/{v}", {"kind": Kind.IMAGE, "v": Version.TWO}) == "/image/2"


class Size(enum.Enum):  # a plain Enum, no mixin
    SMALL = "s m"
    BIG = 10


def test_plain_enum_path_params_are_filled_with_their_values() -> None:
    assert fill_path("/{size}/{n}", {"size": Size.SMALL, "n": Size.BIG}) == "/s%20m/10"


def test_fill_path_encodes_each_placeholder() -> None:
    assert fill_path("/a/{x}/b/{y}", {"x": "1/2", "y": "é"}) == "/a/1%2F2/b/%C3%A9"


BAD_PARAMS: list[Any] = [
    pytest.param("/u/{id}", {"id": ""}, id="empty"),
    pytest.param("/u/{id}", {"id": "."}, id="dot"),
    pytest.param("/u/{id}", {"id": ".."}, id="dotdot"),
    pytest.param("/u/{id}", {"id": "a\nb"}, id="newline"),
    pytest.param("/u/{id}", {"id": "a\rb"}, id="cr"),
    pytest.param("/u/{id}", {"id": "a\x00"}, id="nul"),
    pytest.param("/u/{id}", {"id": "\x7f"}, id="del"),
    pytest.param("/u/{id}", {"id": "a\x85b"}, id="c1-control"),
    pytest.param("/u/{id}", {"id": "\t"}, id="tab"),
    pytest.param("/u/{id}", {}, id="missing"),
    pytest.param("/u/{id}", {"id": 1, "other": 2}, id="extra"),
    pytest.param("/u", {"id": 1}, id="no-placeholder"),
    pytest.param("/u/{id}", {"id": None}, id="none"),
    pytest.param("/u/{id}", {"id": True}, id="bool"),
    pytest.param("/u/{id}", {"id": ["a"]}, id="list"),
    pytest.param("/u/{id}/{id2}", {"id": "ok", "id2": ".."}, id="second-bad"),
]


@pytest.mark.parametrize(("template", "params"), BAD_PARAMS)
async def test_bad_path_params_fail_before_any_connection(
    echo_server: EchoStart,
    make_client: MakeClient,
    template: str,
    params: dict[str, object],
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError):
        await client.get(template, path_params=params)
    assert server.connections == 0
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


async def test_placeholder_without_path_params_fails_before_any_connection(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError, match="id"):
        await client.get("/u/{id}")
    assert server.connections == 0


async def test_path_with_dot_segments_fails_before_any_connection(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base + "v1")
    for path in ["/../admin", "/a/./b", "/a\r\nHost: evil"]:
        with pytest.raises(stackwire.InvalidRequestError):
            await client.get(path)
    assert server.connections == 0


async def test_error_messages_name_the_parameter(make_client: MakeClient) -> None:
    client = make_client("http://127.0.0.1:9/")
    with pytest.raises(stackwire.InvalidRequestError, match="'user_id'"):
        await client.get("/u/{user_id}", path_params={"user_id": ".."})
    with pytest.raises(stackwire.InvalidRequestError, match="extra"):
        await client.get("/u/{user_id}", path_params={"user_id": 1, "extra": 2})


async def test_same_path_twice_reuses_one_connection(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    for user_id in (1, 2):
        await client.get("/u/{id}", path_params={"id": user_id})
    assert [r.target for r in server.requests] == ["/u/1", "/u/2"]
    assert server.connections == 1
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)
