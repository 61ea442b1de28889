"""Typed decoding of response bodies: every supported ``cast_to`` and every way a body
can fail to match it (always `APIResponseValidationError`, never retried)."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any, cast

import msgspec
import pytest
from aiohttp import web

import stackwire
from stackwire.models.decoding import decode_body, decoder_for, encode_json
from tests.conftest import Serve, routes

MakeClient = Callable[..., stackwire.AsyncClient]


class User(stackwire.Model):
    id: int
    name: str


class Team(stackwire.Model):
    id: int
    members: list[str]


class Cat(stackwire.Model, tag="cat"):
    lives: int


class Dog(stackwire.Model, tag="dog"):
    good: bool


class Flag(stackwire.Model):
    on: bool


class Server:
    """One route answering ``body`` (raw bytes) with ``status``; counts the hits."""

    def __init__(self, body: bytes, *, status: int = 200, content_type: str = "application/json"):
        self.body = body
        self.status = status
        self.content_type = content_type
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.Response(
            body=self.body, status=self.status, headers={"Content-Type": self.content_type}
        )


async def _client_for(
    serve: Serve, make_client: MakeClient, body: bytes, **options: Any
) -> tuple[stackwire.AsyncClient, Server]:
    server = Server(body, status=options.pop("status", 200))
    base = await serve(routes(("GET", "/v1/thing", server.handle)))
    return make_client(base + "v1", **options), server


# -- each supported cast_to --------------------------------------------------------


async def test_model_ignores_unknown_fields(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(
        serve, make_client, b'{"id": 7, "name": "Ada", "added_later": {"x": 1}}'
    )
    user = await client.get("/thing", cast_to=User)
    assert user == User(id=7, name="Ada")
    assert type(user) is User


def test_model_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        cast(Any, User)(7, "Ada")
    assert User(id=7, name="Ada").name == "Ada"


async def test_untagged_union_takes_the_first_member_that_matches(
    serve: Serve, make_client: MakeClient
) -> None:
    # The body matches both members: the order written decides.
    client, _ = await _client_for(serve, make_client, b'{"id": 1, "name": "a", "members": ["b"]}')
    assert type(await client.get("/thing", cast_to=User | Team)) is User
    assert type(await client.get("/thing", cast_to=Team | User)) is Team


async def test_untagged_union_falls_through_to_a_later_member(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _client_for(serve, make_client, b'{"id": 1, "members": ["b"]}')
    assert await client.get("/thing", cast_to=User | Team) == Team(id=1, members=["b"])


async def test_untagged_union_with_no_matching_member_is_a_validation_error(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _client_for(serve, make_client, b'{"other": true}')
    with pytest.raises(stackwire.APIResponseValidationError):
        await client.get("/thing", cast_to=User | Team)
    with pytest.raises(stackwire.APIResponseValidationError):
        await client.get("/thing", cast_to=User | Team | None)


async def test_optional_union_of_models_accepts_null(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(serve, make_client, b"null")
    assert await client.get("/thing", cast_to=User | Team | None) is None


async def test_tagged_union_picks_the_member_by_tag(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(serve, make_client, b'{"type": "dog", "good": true, "x": 0}')
    assert await client.get("/thing", cast_to=Cat | Dog) == Dog(good=True)


async def test_list_of_models(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(
        serve, make_client, b'[{"id": 1, "name": "a"}, {"id": 2, "name": "b", "z": 0}]'
    )
    assert await client.get("/thing", cast_to=list[User]) == [
        User(id=1, name="a"),
        User(id=2, name="b"),
    ]


async def test_plain_and_typed_dicts(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(serve, make_client, b'{"a": 1, "b": 2}')
    assert await client.get("/thing", cast_to=dict) == {"a": 1, "b": 2}
    assert await client.get("/thing", cast_to=dict[str, int]) == {"a": 1, "b": 2}


async def test_typed_dict_with_wrong_value_type_fails(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _client_for(serve, make_client, b'{"a": [1]}')
    with pytest.raises(stackwire.APIResponseValidationError):
        await client.get("/thing", cast_to=dict[str, int])


async def test_str_bytes_and_none(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(serve, make_client, "héllo, not json".encode())
    assert await client.get("/thing", cast_to=str) == "héllo, not json"
    got = await client.get("/thing", cast_to=bytes)
    assert got == "héllo, not json".encode()
    assert type(got) is bytes
    nothing: object = await client.get("/thing", cast_to=None)
    assert nothing is None
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=1)


async def test_response_and_omitted_cast_to_return_the_read_response(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _client_for(serve, make_client, b'{"id": 1, "name": "a"}')
    for response in (
        await client.get("/thing"),
        await client.get("/thing", cast_to=stackwire.Response),
    ):
        assert isinstance(response, stackwire.Response)
        assert response.status_code == 200
        assert response.content == b'{"id": 1, "name": "a"}'
        assert response.json() == {"id": 1, "name": "a"}
    assert client.pool_stats().in_use == 0


async def test_raw_response_parse_decodes_into_cast_to(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _client_for(serve, make_client, b'{"id": 1, "name": "a"}')
    response = await client.with_raw_response.get("/thing", cast_to=User)
    assert response.status_code == 200
    assert await response.parse() == User(id=1, name="a")


# -- lax and strict ----------------------------------------------------------------


async def test_lax_by_default_coerces_strings(serve: Serve, make_client: MakeClient) -> None:
    # msgspec's strict=False: numeric strings fill numbers, "true"/"false" fill bools.
    client, _ = await _client_for(serve, make_client, b'{"id": "1", "name": "a"}')
    assert await client.get("/thing", cast_to=User) == User(id=1, name="a")
    flag_client, _ = await _client_for(serve, make_client, b'{"on": "true"}')
    assert await flag_client.get("/thing", cast_to=Flag) == Flag(on=True)


async def test_lax_mode_still_rejects_non_numeric_strings(
    serve: Serve, make_client: MakeClient
) -> None:
    client, _ = await _client_for(serve, make_client, b'{"id": "one", "name": "a"}')
    with pytest.raises(stackwire.APIResponseValidationError):
        await client.get("/thing", cast_to=User)


async def test_strict_client_forbids_coercion(serve: Serve, make_client: MakeClient) -> None:
    client, server = await _client_for(serve, make_client, b'{"id": "1", "name": "a"}', strict=True)
    with pytest.raises(stackwire.APIResponseValidationError) as caught:
        await client.get("/thing", cast_to=User)
    assert "$.id" in str(caught.value)
    assert server.hits == 1
    # The same types decode normally when the JSON types are right.
    server.body = b'{"id": 1, "name": "a"}'
    assert await client.get("/thing", cast_to=User) == User(id=1, name="a")


async def test_strict_survives_with_options(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(serve, make_client, b'{"id": "1", "name": "a"}')
    strict = client.with_options(strict=True)
    with pytest.raises(stackwire.APIResponseValidationError):
        await strict.get("/thing", cast_to=User)
    assert await client.get("/thing", cast_to=User) == User(id=1, name="a")


# -- bodies in another form of Unicode ---------------------------------------------

USER_JSON = '{"id": 1, "name": "café"}'


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xef\xbb\xbf" + USER_JSON.encode(), id="utf-8-bom"),
        pytest.param(USER_JSON.encode("utf-16"), id="utf-16-bom"),
        pytest.param(USER_JSON.encode("utf-32"), id="utf-32-bom"),
    ],
)
async def test_a_json_body_with_a_byte_order_mark_decodes(
    serve: Serve, make_client: MakeClient, body: bytes
) -> None:
    # RFC 8259 section 8.1: a parser may ignore a byte order mark; Python's json and
    # httpx do. Was: "JSON is malformed: invalid character (byte 0)".
    client, _ = await _client_for(serve, make_client, body)
    assert await client.get("/thing", cast_to=User) == User(id=1, name="café")
    assert (await client.get("/thing")).json() == {"id": 1, "name": "café"}


async def test_an_undecodable_body_with_a_byte_order_mark_keeps_its_own_bytes(
    serve: Serve, make_client: MakeClient
) -> None:
    body = b"\xff\xfe" + "not json".encode("utf-16-le")
    client, _ = await _client_for(serve, make_client, body)
    with pytest.raises(stackwire.APIResponseValidationError) as caught:
        await client.get("/thing", cast_to=User)
    assert caught.value.body == body  # what the server sent, not a transcoding of it


async def test_a_declared_charset_other_than_utf_8_is_honoured(
    serve: Serve, make_client: MakeClient
) -> None:
    latin1 = USER_JSON.encode("latin-1")
    server = Server(latin1, content_type="application/json; charset=ISO-8859-1")
    error = Server(b'{"error": "d\xe9j\xe0 vu"}', status=409, content_type=server.content_type)
    text = Server("café".encode("latin-1"), content_type='text/plain; charset="latin-1"')
    base = await serve(
        routes(("GET", "/json", server.handle), ("GET", "/error", error.handle),
               ("GET", "/text", text.handle))
    )  # fmt: skip
    client = make_client(base, max_retries=0)
    assert await client.get("/json", cast_to=User) == User(id=1, name="café")
    assert (await client.get("/json")).json() == {"id": 1, "name": "café"}
    # cast_to=str is the body as text in its charset (it was a UnicodeDecodeError).
    assert await client.get("/text", cast_to=str) == "café"
    with pytest.raises(stackwire.ConflictError) as caught:
        await client.get("/error")
    assert caught.value.body == {"error": "déjà vu"}
    assert client.pool_stats().in_use == 0


async def test_an_empty_body_says_so(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _client_for(serve, make_client, b"", status=204)
    with pytest.raises(stackwire.APIResponseValidationError, match="User: the body is empty"):
        await client.get("/thing", cast_to=User)
    nothing: object = await client.get("/thing", cast_to=None)
    assert nothing is None


# -- bodies that cannot be decoded -------------------------------------------------

BAD_BODIES = [
    pytest.param(b'{"id": 1, "name": ', User, id="invalid-json"),
    pytest.param(b"<html>oops</html>", User, id="html"),
    pytest.param(b'{"id": 1, "name": "\xff\xfe"}', User, id="invalid-utf8-json"),
    pytest.param(b"\xff\xfe not text", str, id="invalid-utf8-str"),
    pytest.param(b"[" * 100_000, list[Any], id="deep-nesting"),
    pytest.param(b"[" * 100_000, Any, id="deep-nesting-any"),
    pytest.param(b'{"id": "x", "name": 1}', User, id="wrong-shape"),
    pytest.param(b'[{"id": 1, "name": "a"}]', User, id="list-for-model"),
    pytest.param(b"", User, id="empty"),
    pytest.param(b'{"type": "bird"}', Cat | Dog, id="unknown-tag"),
]


@pytest.mark.parametrize(("body", "cast_to"), BAD_BODIES)
async def test_undecodable_body_is_a_validation_error_and_not_retried(
    serve: Serve, make_client: MakeClient, body: bytes, cast_to: Any
) -> None:
    server = Server(body, status=201)
    client = make_client(await serve(routes(("GET", "/thing", server.handle))))
    with pytest.raises(stackwire.APIResponseValidationError) as caught:
        await client.get("/thing", cast_to=cast_to)
    error = caught.value
    assert type(error) is stackwire.APIResponseValidationError
    assert error.status_code == 201
    assert isinstance(error.body, bytes)
    assert error.body == body[:1024]
    assert error.request is not None
    assert error.request.url.path == "/thing"
    assert error.__cause__ is not None
    assert server.hits == 1  # the default max_retries=2 never applies
    assert client.pool_stats().in_use == 0


async def test_a_body_of_another_content_type_names_it(
    serve: Serve, make_client: MakeClient
) -> None:
    # A proxy's HTML error page with a 200: "JSON is malformed" alone sends the reader
    # looking at the API's JSON.
    server = Server(b"<html>Gateway</html>", content_type="text/html; charset=utf-8")
    client = make_client(await serve(routes(("GET", "/thing", server.handle))))
    named = r"\(byte 0\); the Content-Type is 'text/html; charset=utf-8', not JSON"
    with pytest.raises(stackwire.APIResponseValidationError, match=named) as caught:
        await client.get("/thing", cast_to=User)
    assert caught.value.body == b"<html>Gateway</html>"
    response = await client.get("/thing")
    with pytest.raises(stackwire.APIResponseValidationError, match=named):
        response.json()
    raw = await client.with_raw_response.get("/thing", cast_to=list[User])
    with pytest.raises(stackwire.APIResponseValidationError, match=named):
        await raw.parse()
    assert await client.get("/thing", cast_to=str) == "<html>Gateway</html>"
    # JSON under another type still decodes; JSON types are not named.
    server.body = b'{"id": 1, "name": "a"}'
    assert await client.get("/thing", cast_to=User) == User(id=1, name="a")
    server.body, server.content_type = b"{", "application/problem+json"
    with pytest.raises(stackwire.APIResponseValidationError) as caught:
        await client.get("/thing", cast_to=User)
    assert "Content-Type" not in str(caught.value)


async def test_validation_error_keeps_at_most_one_kib_of_the_body(
    serve: Serve, make_client: MakeClient
) -> None:
    body = b'{"id": "x", "name": "' + b"a" * 50_000 + b'"}'
    client, _ = await _client_for(serve, make_client, body)
    with pytest.raises(stackwire.APIResponseValidationError) as caught:
        await client.get("/thing", cast_to=User)
    assert caught.value.body == body[:1024]
    assert len(str(caught.value)) < 2048


def test_decode_body_wraps_every_failure() -> None:
    for data, cast_to in [
        (b"\xff", str),
        (b"[" * 100_000, Any),
        (b"{", dict),
        (b'"\xc3"', str),
    ]:
        with pytest.raises(stackwire.APIResponseValidationError) as caught:
            decode_body(data, cast_to, status_code=200)
        assert caught.value.status_code == 200
        assert not isinstance(caught.value, (UnicodeDecodeError, RecursionError))


def test_unsupported_cast_to_is_a_typed_error() -> None:
    # msgspec cannot decode a union of two untagged structs nested in a container.
    with pytest.raises(stackwire.InvalidRequestError, match="cast_to"):
        decode_body(b"[]", list[User | Team])


def test_decoders_are_cached_per_type_and_order() -> None:
    assert decoder_for(User) is decoder_for(User)
    assert decoder_for(User, strict=True) is not decoder_for(User)
    first = decoder_for(User | Team)
    assert first is decoder_for(User | Team)
    assert first is not decoder_for(Team | User)


# -- request bodies ----------------------------------------------------------------


class Item(msgspec.Struct):
    name: str
    price: float


async def test_json_bodies_are_compact_msgspec(serve: Serve, make_client: MakeClient) -> None:
    received: list[tuple[bytes, str]] = []

    async def echo(request: web.Request) -> web.Response:
        received.append((await request.read(), request.headers["Content-Type"]))
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/items", echo))))
    await client.post("/items", json=Item(name="pen", price=1.5))
    await client.post("/items", json={"a": [1, 2], "b": {"c": None}})
    await client.post("/items", json=[User(id=1, name="x"), "é"])
    assert received == [
        (b'{"name":"pen","price":1.5}', "application/json"),
        (b'{"a":[1,2],"b":{"c":null}}', "application/json"),
        ('[{"id":1,"name":"x"},"é"]'.encode(), "application/json"),
    ]


@pytest.mark.parametrize(
    "payload",
    [
        {"x": float("nan")},
        [1.0, float("inf")],
        {"deep": [{"v": -float("inf")}]},
        Item(name="n", price=float("nan")),
    ],
)
async def test_non_finite_json_is_rejected_before_sending(
    serve: Serve, make_client: MakeClient, payload: object
) -> None:
    hits: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        hits.append(1)
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/items", handler))))
    with pytest.raises(stackwire.InvalidRequestError, match="NaN"):
        await client.post("/items", json=payload)
    assert hits == []
    assert client.pool_stats() == stackwire.PoolStats(in_use=0, idle=0)


def test_encode_json_keeps_real_nulls_and_rejects_unencodable() -> None:
    assert encode_json({"a": None, "b": "null"}) == b'{"a":null,"b":"null"}'
    with pytest.raises(stackwire.InvalidRequestError):
        encode_json({"a": object()})


def test_encode_json_checks_a_deep_body_with_a_null_without_a_recursion_error() -> None:
    # msgspec encodes it; the NaN check behind it walked it recursively and hit
    # Python's recursion limit (a bare RecursionError).
    deep: object = [None]
    nan: object = [float("nan")]
    for _ in range(350):
        deep, nan = [[deep]], {"x": [nan], "n": None}
    assert encode_json(deep) == b"[" * 701 + b"null" + b"]" * 701
    with pytest.raises(stackwire.InvalidRequestError, match="NaN"):
        encode_json(nan)


def test_encode_json_takes_any_mapping_as_an_object() -> None:
    # A read-only view, a frozendict, a multidict: a Mapping is a JSON object too.
    view = types.MappingProxyType({"a": 1, "b": stackwire.NOT_GIVEN})
    assert encode_json({"x": view, "y": [view]}) == b'{"x":{"a":1},"y":[{"a":1}]}'
    assert encode_json(view) == b'{"a":1}'


async def test_content_bytes_are_sent_byte_exact(serve: Serve, make_client: MakeClient) -> None:
    received: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(text="ok")

    payload = bytes(range(256)) * 3 + b"\r\n\x00"
    client = make_client(await serve(routes(("PUT", "/blob", handler))))
    await client.put("/blob", content=payload)
    await client.put("/blob", content=b"")
    assert received == [payload, b""]
