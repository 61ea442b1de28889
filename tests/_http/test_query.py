"""The ``query`` middleware, checked on the wire: merging, scalars, array and nested
formats. Each test asserts both what the server decodes and the raw query string."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire._http.query import encode_params, primitive
from tests.conftest import EchoServer, Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]
EchoStart = Callable[[], Awaitable[tuple[str, EchoServer]]]


class Seen:
    """What the server got: decoded pairs, the decoded and the raw query string."""

    def __init__(self) -> None:
        self.pairs: list[list[tuple[str, str]]] = []
        self.query_string: list[str] = []
        self.raw: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.pairs.append(list(request.query.items()))
        self.query_string.append(request.query_string)
        self.raw.append(request.rel_url.raw_query_string)
        return web.Response(text="ok")


async def _client(serve: Serve, make_client: MakeClient, **options: Any) -> tuple[Any, Seen]:
    seen = Seen()
    base = await serve(routes(("GET", "/q", seen.handle)))
    return make_client(base, **options), seen


async def test_request_query_merges_over_client_query(
    serve: Serve, make_client: MakeClient
) -> None:
    client, seen = await _client(serve, make_client, query={"key": "k", "limit": 10})
    await client.get("/q", query={"limit": 5, "q": "x"})
    await client.get("/q")
    assert seen.pairs == [
        [("key", "k"), ("limit", "5"), ("q", "x")],
        [("key", "k"), ("limit", "10")],
    ]


async def test_request_can_drop_a_client_default_with_none(
    serve: Serve, make_client: MakeClient
) -> None:
    client, seen = await _client(serve, make_client, query={"key": "k", "debug": True})
    await client.get("/q", query={"debug": None})
    assert seen.pairs == [[("key", "k")]]


async def test_omit_removes_a_key_and_not_given_leaves_it_out(
    serve: Serve, make_client: MakeClient
) -> None:
    # As in the OpenAI SDK: a generated method passes ``limit: int | Omit = omit``
    # straight into the query; `Omit` removes the key, the client's default included,
    # while ``NOT_GIVEN`` means the call said nothing: the client's value stays.
    client, seen = await _client(serve, make_client, query={"key": "k", "limit": 10})
    await client.get("/q", query={"limit": stackwire.Omit(), "after": stackwire.omit})
    await client.get("/q", query={"limit": stackwire.NOT_GIVEN, "after": stackwire.NOT_GIVEN})
    await client.get(
        "/q", query={"ids": [1, stackwire.omit, stackwire.NOT_GIVEN], "f": {"x": stackwire.omit}}
    )
    await client.with_options(query={"key": stackwire.Omit(), "limit": stackwire.NOT_GIVEN}).get(
        "/q"
    )
    assert seen.raw == ["key=k", "key=k&limit=10", "key=k&limit=10&ids=1", "limit=10"]
    assert (
        encode_params({"a": stackwire.omit, "b": [stackwire.NOT_GIVEN]}, array_format="comma") == []
    )


async def test_booleans_numbers_and_none(serve: Serve, make_client: MakeClient) -> None:
    client, seen = await _client(serve, make_client)
    await client.get("/q", query={"a": True, "b": False, "c": None, "d": 0, "e": 1.5, "f": ""})
    assert seen.pairs == [[("a", "true"), ("b", "false"), ("d", "0"), ("e", "1.5"), ("f", "")]]
    assert seen.raw == ["a=true&b=false&d=0&e=1.5&f="]


class Order(str, enum.Enum):  # noqa: UP042 (the mixin, whose str() is "Order.ASC")
    ASC = "asc"


class Level(int, enum.Enum):
    HIGH = 3


async def test_enum_members_are_sent_as_their_values(serve: Serve, make_client: MakeClient) -> None:
    # ``str(Order.ASC)`` is ``'Order.ASC'``: the API must get ``asc``, in the query and
    # in a form body alike.
    client, seen = await _client(serve, make_client)
    await client.get("/q", query={"order": Order.ASC, "level": Level.HIGH, "tags": [Order.ASC]})
    await client.get("/q", query={Order.ASC: {Order.ASC: 1}})
    assert seen.raw == ["order=asc&level=3&tags=asc", "asc%5Basc%5D=1"]
    assert encode_params({"f": Order.ASC}) == [("f", "asc")]
    assert all(type(value) is str for _, value in encode_params({"f": Order.ASC}))


class Color(enum.Enum):  # a plain Enum: no mixin, its value is what msgspec sends as JSON
    RED = "red"
    DEEP = 2


async def test_plain_enum_members_are_sent_as_their_values_too(
    serve: Serve, make_client: MakeClient
) -> None:
    client, seen = await _client(serve, make_client)
    await client.get("/q", query={"c": Color.RED, "n": Color.DEEP, Color.RED: [Color.DEEP]})
    assert seen.raw == ["c=red&n=2&red=2"]
    assert encode_params({"f": {Color.RED: Color.RED}}) == [("f[red]", "red")]
    with pytest.raises(stackwire.InvalidRequestError, match="got Shade"):
        encode_params({"f": Shade.DARK})  # a value that is no str or number


class Shade(enum.Enum):
    DARK = (0, 0)


async def test_reserved_characters_are_encoded(serve: Serve, make_client: MakeClient) -> None:
    client, seen = await _client(serve, make_client)
    await client.get("/q", query={"q": "a b&c=d+e/é?#"})
    assert seen.pairs == [[("q", "a b&c=d+e/é?#")]]
    assert seen.raw == ["q=a+b%26c%3Dd%2Be/%C3%A9?%23"]


ARRAYS = [
    pytest.param(
        "repeat",
        [("ids", "1"), ("ids", "2"), ("ids", "3")],
        "ids=1&ids=2&ids=3",
        id="repeat",
    ),
    pytest.param(
        "brackets",
        [("ids[]", "1"), ("ids[]", "2"), ("ids[]", "3")],
        "ids%5B%5D=1&ids%5B%5D=2&ids%5B%5D=3",
        id="brackets",
    ),
    pytest.param(
        "indices",
        [("ids[0]", "1"), ("ids[1]", "2"), ("ids[2]", "3")],
        "ids%5B0%5D=1&ids%5B1%5D=2&ids%5B2%5D=3",
        id="indices",
    ),
    pytest.param("comma", [("ids", "1,2,3")], "ids=1,2,3", id="comma"),
]


@pytest.mark.parametrize(("array_format", "pairs", "raw"), ARRAYS)
async def test_array_formats(
    serve: Serve,
    make_client: MakeClient,
    array_format: str,
    pairs: list[tuple[str, str]],
    raw: str,
) -> None:
    client, seen = await _client(serve, make_client, query_array_format=array_format)
    await client.get("/q", query={"ids": [1, 2, 3]})
    await client.get("/q", query={"ids": (1, 2, 3)})
    assert seen.pairs == [pairs, pairs]
    assert seen.raw == [raw, raw]
    # aiohttp's query_string is the percent-decoded form of the same string.
    assert seen.query_string[0] == "&".join(f"{k}={v}" for k, v in pairs)


@pytest.mark.parametrize(
    ("nested_format", "pairs", "raw"),
    [
        pytest.param(
            "brackets",
            [("filter[status]", "open"), ("filter[owner][id]", "7")],
            "filter%5Bstatus%5D=open&filter%5Bowner%5D%5Bid%5D=7",
            id="brackets",
        ),
        pytest.param(
            "dots",
            [("filter.status", "open"), ("filter.owner.id", "7")],
            "filter.status=open&filter.owner.id=7",
            id="dots",
        ),
    ],
)
async def test_nested_formats(
    serve: Serve,
    make_client: MakeClient,
    nested_format: str,
    pairs: list[tuple[str, str]],
    raw: str,
) -> None:
    client, seen = await _client(serve, make_client, query_nested_format=nested_format)
    await client.get("/q", query={"filter": {"status": "open", "owner": {"id": 7}, "gone": None}})
    assert seen.pairs == [pairs]
    assert seen.raw == [raw]


@pytest.mark.parametrize(
    ("array_format", "pairs"),
    [
        ("repeat", [("a", "1"), ("a", "2")]),
        ("brackets", [("a[]", "1"), ("a[]", "2")]),
        ("indices", [("a[0]", "1"), ("a[2]", "2")]),  # positions are kept
        ("comma", [("a", "1,2")]),
    ],
)
async def test_none_items_of_arrays_are_dropped(
    serve: Serve, make_client: MakeClient, array_format: str, pairs: list[tuple[str, str]]
) -> None:
    client, seen = await _client(serve, make_client, query_array_format=array_format)
    await client.get("/q", query={"a": [1, None, 2], "b": [None]})
    assert seen.pairs == [pairs]


async def test_arrays_of_mappings_with_indices(serve: Serve, make_client: MakeClient) -> None:
    client, seen = await _client(serve, make_client, query_array_format="indices")
    await client.get("/q", query={"sort": [{"field": "a", "desc": True}]})
    assert seen.pairs == [[("sort[0][field]", "a"), ("sort[0][desc]", "true")]]


async def test_with_options_changes_the_format_only_for_the_new_client(
    serve: Serve, make_client: MakeClient
) -> None:
    client, seen = await _client(serve, make_client)
    derived = client.with_options(query_array_format="comma")
    await derived.get("/q", query={"a": ["x", "y"]})
    await client.get("/q", query={"a": ["x", "y"]})
    assert seen.pairs == [[("a", "x,y")], [("a", "x"), ("a", "y")]]


@pytest.mark.parametrize(
    "options",
    [
        {"query_array_format": "csv"},
        {"query_array_format": "Repeat"},
        {"query_nested_format": "json"},
        {"query_nested_format": ""},
    ],
)
def test_unknown_format_names_are_rejected(options: dict[str, str]) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="query_"):
        stackwire.AsyncClient("http://127.0.0.1:9/", **options)  # type: ignore[arg-type]
    client = stackwire.AsyncClient("http://127.0.0.1:9/")
    with pytest.raises(stackwire.InvalidRequestError, match="query_"):
        client.with_options(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query",
    [
        {"a": object()},
        {"a": b"bytes"},
        {"a": [object()]},
        {"a": {"b": {1, 2}}},
    ],
)
async def test_unsupported_values_fail_before_any_connection(
    echo_server: EchoStart, make_client: MakeClient, query: dict[str, object]
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError):
        await client.get("/q", query=query)
    assert server.connections == 0


async def test_query_that_is_not_a_mapping_is_rejected(
    echo_server: EchoStart, make_client: MakeClient
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError):
        await client.get("/q", query=[("a", "1")])  # type: ignore[call-overload]
    assert server.connections == 0


def test_encode_params_is_pure_and_ordered() -> None:
    params = {"z": 1, "a": [True, False], "m": {"k": None, "j": "v"}}
    assert encode_params(params) == [("z", "1"), ("a", "true"), ("a", "false"), ("m[j]", "v")]
    assert params == {"z": 1, "a": [True, False], "m": {"k": None, "j": "v"}}
    assert primitive(2) == "2"
