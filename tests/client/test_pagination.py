"""Pagination: every page kind end to end over real sockets, the page logic (next
parameters, the end of the list) over the testing kit's `MockTransport`, and the Link parser."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, assert_type

import msgspec
import pytest
from aiohttp import web

import stackwire
from stackwire import CursorPage, LinkPage, OffsetPage, PageNumberPage
from stackwire.client.pagination import Link, parse_link_header
from stackwire.testing import MockResponse, MockTransport, Router
from tests.conftest import Serve, routes

T = TypeVar("T")
MakeClient = Callable[..., stackwire.AsyncClient]

API_KEY = "sk-live-0123456789abcdef"
USERS = [{"id": i, "name": f"user{i}"} for i in range(1, 6)]


class User(stackwire.Model):
    id: int
    name: str


def ids(users: list[User]) -> list[int]:
    return [user.id for user in users]


class Recorder:
    """The requests a server saw: query, selected headers and JSON body."""

    def __init__(self) -> None:
        self.queries: list[dict[str, list[str]]] = []
        self.headers: list[dict[str, str | None]] = []
        self.bodies: list[Any] = []

    async def record(self, request: web.Request) -> None:
        query: dict[str, list[str]] = {}
        for key, value in request.query.items():
            query.setdefault(key, []).append(value)
        self.queries.append(query)
        self.headers.append(
            {
                name: request.headers.get(name)
                for name in ("Authorization", "X-Trace", "Idempotency-Key", "X-Api-Key")
            }
        )
        self.bodies.append(await request.json() if request.can_read_body else None)


def mocked(router: Router) -> stackwire.AsyncClient:
    """A client over the testing kit's `MockTransport`: the page *logic* (which
    parameters the next request sends, when the list ends) needs no socket."""
    return stackwire.AsyncClient("http://api.test/", transport=MockTransport(router))


def queries(router: Router) -> list[dict[str, list[str]]]:
    """The query of every request the router saw, as ``{name: [values]}``."""
    seen: list[dict[str, list[str]]] = []
    for call in router.calls:
        query: dict[str, list[str]] = {}
        for key, value in call.request.url.query.items():
            query.setdefault(key, []).append(value)
        seen.append(query)
    return seen


# -- cursor ----------------------------------------------------------------------------


def cursor_app(recorder: Recorder, path: str = "/v1/users", method: str = "GET") -> web.Application:
    pages = {
        None: {"data": USERS[0:2], "has_more": True, "next_cursor": "c2"},
        "c2": {"data": USERS[2:4], "has_more": True, "next_cursor": "c3"},
        "c3": {"data": USERS[4:5], "has_more": False, "next_cursor": None},
    }

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        if method == "GET":
            cursor = request.query.get("cursor")
        else:
            cursor = (await request.json()).get("cursor")
        return web.json_response(pages[cursor])

    return routes((method, path, handler))


async def test_cursor_pages_iterate_every_item_keeping_the_original_request(
    serve: Serve, make_client: MakeClient
) -> None:
    recorder = Recorder()
    base = await serve(cursor_app(recorder))
    client = make_client(base + "v1", api_key=API_KEY, query={"api-version": "2"})

    users = client.paginate(
        "/users",
        page=CursorPage[User],
        query={"limit": 2, "filter": "active"},
        headers={"X-Trace": "trace-1"},
    )
    got = [user async for user in users]

    assert ids(got) == [1, 2, 3, 4, 5]
    assert recorder.queries == [
        {"api-version": ["2"], "limit": ["2"], "filter": ["active"]},
        {"api-version": ["2"], "limit": ["2"], "filter": ["active"], "cursor": ["c2"]},
        {"api-version": ["2"], "limit": ["2"], "filter": ["active"], "cursor": ["c3"]},
    ]
    assert [h["X-Trace"] for h in recorder.headers] == ["trace-1"] * 3
    assert [h["Authorization"] for h in recorder.headers] == [f"Bearer {API_KEY}"] * 3
    assert client.pool_stats().in_use == 0


async def test_await_gives_the_typed_first_page_and_pages_chain(
    serve: Serve, make_client: MakeClient
) -> None:
    recorder = Recorder()
    client = make_client(await serve(cursor_app(recorder)) + "v1")

    first = await client.paginate("/users", page=CursorPage[User])
    assert_type(first, CursorPage[User])
    assert first == CursorPage(
        data=[User(id=1, name="user1"), User(id=2, name="user2")], has_more=True, next_cursor="c2"
    )
    assert first.has_next_page()
    assert first.request_params == {}

    second = await first.get_next_page()
    assert_type(second, CursorPage[User])
    assert ids(second.data) == [3, 4]
    assert second.request_params == {"cursor": "c2"}

    pages = [page async for page in first.iter_pages()]
    assert [ids(page.data) for page in pages] == [[1, 2], [3, 4], [5]]
    last = pages[-1]
    assert not last.has_next_page()
    sent = len(recorder.queries)
    with pytest.raises(stackwire.InvalidRequestError, match="last page"):
        await last.get_next_page()
    assert len(recorder.queries) == sent  # nothing was sent


async def test_paginator_iter_pages_and_typed_items(serve: Serve, make_client: MakeClient) -> None:
    client = make_client(await serve(cursor_app(Recorder())) + "v1")
    paginator = client.paginate("/users", page=CursorPage[User])
    async for user in paginator:
        assert_type(user, User)
        assert isinstance(user, User)
    pages = [page async for page in paginator.iter_pages()]
    assert [ids(page.page_items()) for page in pages] == [[1, 2], [3, 4], [5]]


async def test_leaving_the_loop_early_leaves_nothing_behind(
    serve: Serve, make_client: MakeClient
) -> None:
    recorder = Recorder()
    client = make_client(await serve(cursor_app(recorder)) + "v1")
    seen = []
    async for user in client.paginate("/users", page=CursorPage[User]):
        seen.append(user.id)
        if user.id == 3:
            break
    assert seen == [1, 2, 3]
    assert len(recorder.queries) == 2  # the third page was never asked for
    assert client.pool_stats().in_use == 0


async def test_post_search_puts_the_cursor_in_the_json_body(
    serve: Serve, make_client: MakeClient
) -> None:
    recorder = Recorder()
    base = await serve(cursor_app(recorder, "/v1/search", method="POST"))
    client = make_client(base + "v1", query={"api-version": "2"})

    got = [
        user
        async for user in client.paginate(
            "/search",
            page=CursorPage[User],
            method="POST",
            json={"q": "user", "limit": 2},
            idempotency_key="first-key",
        )
    ]

    assert ids(got) == [1, 2, 3, 4, 5]
    assert recorder.bodies == [
        {"q": "user", "limit": 2},
        {"q": "user", "limit": 2, "cursor": "c2"},
        {"q": "user", "limit": 2, "cursor": "c3"},
    ]
    assert recorder.queries == [{"api-version": ["2"]}] * 3
    keys = [h["Idempotency-Key"] for h in recorder.headers]
    # Each page is a different request: the caller's key is used for the first only.
    assert keys[0] == "first-key"
    assert keys[1] not in (None, "first-key")
    assert keys[2] not in (None, "first-key", keys[1])


async def test_following_pages_keep_timeout_and_retry_options(
    serve: Serve, make_client: MakeClient, client_sleeps: Any
) -> None:
    recorder = Recorder()
    failures = {"c2": 1}
    seen_timeouts: list[object] = []

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        cursor = request.query.get("cursor")
        if failures.get(cursor or ""):
            failures[cursor or ""] -= 1
            return web.json_response({"error": "busy"}, status=503)
        pages: dict[str | None, Any] = {
            None: {"data": USERS[0:2], "has_more": True, "next_cursor": "c2"},
            "c2": {"data": USERS[2:4], "has_more": True, "next_cursor": "c3"},
            "c3": {"data": USERS[4:5], "has_more": False},
        }
        return web.json_response(pages[cursor])

    async def watch(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        seen_timeouts.append(request.options.timeout)
        return await call_next(request)

    base = await serve(routes(("GET", "/users", handler)))
    client = make_client(base, max_retries=0, middlewares=[watch])
    timeout = stackwire.Timeout(total=7, connect=3)

    got = [
        user
        async for user in client.paginate(
            "/users", page=CursorPage[User], timeout=timeout, max_retries=1
        )
    ]

    assert ids(got) == [1, 2, 3, 4, 5]
    assert [q.get("cursor") for q in recorder.queries] == [None, ["c2"], ["c2"], ["c3"]]
    assert len(client_sleeps.delays) == 1  # the 503 on page 2 was retried once
    assert seen_timeouts == [timeout] * 4


# -- offset and page number ------------------------------------------------------------


async def test_every_page_is_sent_with_the_calls_own_auth() -> None:
    # `auth=` (per call in DESIGN's table) worked, but was missing from the typed
    # keywords of `paginate()`: mypy refused it, in async and blocking code alike.
    router = Router()

    def page(request: stackwire.Request) -> MockResponse:
        first = "cursor" not in request.url.query
        return MockResponse(
            json={"data": [USERS[0 if first else 1]], "has_more": first, "next_cursor": "c2"}
        )

    router.get("/users").respond(page)
    async with mocked(router) as client:
        users = client.paginate("/users", page=CursorPage[User], auth=stackwire.BasicAuth("u", "p"))
        assert ids([user async for user in users]) == [1, 2]
        anonymous = client.with_options(api_key=API_KEY).paginate(
            "/users", page=CursorPage[User], auth=None
        )
        assert ids([user async for user in anonymous]) == [1, 2]
    seen = [call.request.headers.get("Authorization") for call in router.calls]
    assert seen == ["Basic dTpw", "Basic dTpw", None, None]


async def test_offset_pages_advance_by_items_seen_and_stop_on_an_empty_page() -> None:
    router = Router("http://api.test/")

    @router.get("/users")
    def users(request: stackwire.Request) -> MockResponse:
        offset = int(request.url.query.get("offset", "0"))
        limit = int(request.url.query["limit"])
        return MockResponse(json={"data": USERS[offset : offset + limit]})

    async with mocked(router) as client:
        got = [
            user
            async for user in client.paginate(
                "/users", page=OffsetPage[User], query={"limit": 2, "sort": "id"}
            )
        ]

    assert ids(got) == [1, 2, 3, 4, 5]
    assert queries(router) == [
        {"limit": ["2"], "sort": ["id"]},
        {"limit": ["2"], "sort": ["id"], "offset": ["2"]},
        {"limit": ["2"], "sort": ["id"], "offset": ["4"]},
        {"limit": ["2"], "sort": ["id"], "offset": ["5"]},  # empty: the end
    ]


async def test_offset_starts_from_the_callers_offset() -> None:
    router = Router("http://api.test/")

    @router.get("/users")
    def users(request: stackwire.Request) -> MockResponse:
        offset = int(request.url.query["offset"])
        return MockResponse(json={"data": USERS[offset : offset + 2]})

    async with mocked(router) as client:
        got = [
            u async for u in client.paginate("/users", page=OffsetPage[User], query={"offset": 1})
        ]
    assert ids(got) == [2, 3, 4, 5]
    assert [q["offset"] for q in queries(router)] == [["1"], ["3"], ["5"]]


async def test_page_number_pages_count_up_and_stop_on_an_empty_page() -> None:
    router = Router("http://api.test/")

    @router.get("/users")
    def users(request: stackwire.Request) -> MockResponse:
        number = int(request.url.query.get("page", "1"))
        return MockResponse(json={"data": USERS[(number - 1) * 2 : number * 2]})

    async with mocked(router) as client:
        paginator = client.paginate(
            "/users", page=PageNumberPage[User], query={"per_page": 2}, headers={"X-Trace": "t"}
        )
        pages = [page async for page in paginator.iter_pages()]

    assert [ids(page.data) for page in pages] == [[1, 2], [3, 4], [5], []]
    assert queries(router) == [
        {"per_page": ["2"]},
        {"per_page": ["2"], "page": ["2"]},
        {"per_page": ["2"], "page": ["3"]},
        {"per_page": ["2"], "page": ["4"]},
    ]
    assert [call.request.headers["X-Trace"] for call in router.calls] == ["t"] * 4


# -- Link header -----------------------------------------------------------------------


async def test_link_pages_follow_rel_next_and_keep_the_original_query(
    serve: Serve, make_client: MakeClient
) -> None:
    recorder = Recorder()

    async def handler(request: web.Request) -> web.Response:
        await recorder.record(request)
        number = int(request.query.get("page", "1"))
        headers: dict[str, str] = {}
        if number == 1:
            # Absolute, among other links, with a comma and a quoted ";" in params.
            headers["Link"] = (
                f'<{request.url.with_query(page=3, per_page=2)}>; rel="last", '
                f'<{request.url.with_query(page=2, per_page=2)}>; title="a, b; c"; rel="next"'
            )
        elif number == 2:
            # Relative, with several relation types in one rel.
            headers["Link"] = '</users?page=3&per_page=2>; rel="next last"; title=x'
        else:
            headers["Link"] = '</users?page=1&per_page=2>; rel="first"'
        body = USERS[(number - 1) * 2 : number * 2]
        return web.json_response(body, headers=headers)

    client = make_client(await serve(routes(("GET", "/users", handler))), api_key=API_KEY)
    paginator = client.paginate(
        "/users", page=LinkPage[User], query={"per_page": 2, "sort": "name"}
    )
    first = await paginator
    assert_type(first, LinkPage[User])
    assert first.next_url is not None
    assert first.next_url.endswith("/users?page=2&per_page=2")

    got = [user async for user in paginator]
    assert ids(got) == [1, 2, 3, 4, 5]
    assert recorder.queries[1:] == [
        {"per_page": ["2"], "sort": ["name"]},
        {"page": ["2"], "per_page": ["2"], "sort": ["name"]},
        {"page": ["3"], "per_page": ["2"], "sort": ["name"]},
    ]
    # Same origin: the credentials stay.
    assert {h["Authorization"] for h in recorder.headers} == {f"Bearer {API_KEY}"}


async def test_a_next_link_to_another_origin_gets_no_credentials(
    serve: Serve, make_client: MakeClient
) -> None:
    other = Recorder()

    async def elsewhere(request: web.Request) -> web.Response:
        await other.record(request)
        return web.json_response([USERS[2]])

    other_base = await serve(routes(("GET", "/more", elsewhere)))

    async def first(request: web.Request) -> web.Response:
        return web.json_response(
            USERS[0:2], headers={"Link": f'<{other_base}more?page=2>; rel="next"'}
        )

    base = await serve(routes(("GET", "/users", first)))
    client = make_client(
        base,
        api_key=API_KEY,
        headers={"X-Api-Key": "key-0123456789", "X-Trace": "t"},
    )
    got = [user async for user in client.paginate("/users", page=LinkPage[User])]

    assert ids(got) == [1, 2, 3]
    assert other.headers == [
        {
            "Authorization": None,
            "X-Trace": "t",
            "Idempotency-Key": None,
            "X-Api-Key": None,
        }
    ]


async def test_a_link_to_the_same_page_ends_the_list(serve: Serve, make_client: MakeClient) -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.path_qs)
        return web.json_response(USERS[:1], headers={"Link": f'<{request.url}>; rel="next"'})

    client = make_client(await serve(routes(("GET", "/users", handler))))
    got = [u async for u in client.paginate("/users", page=LinkPage[User], query={"a": 1})]
    assert ids(got) == [1]
    assert calls == ["/users?a=1"]


async def test_a_repeated_cursor_ends_the_list(serve: Serve, make_client: MakeClient) -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.query.get("cursor"))
        return web.json_response({"data": USERS[:1], "has_more": True, "next_cursor": "same"})

    client = make_client(await serve(routes(("GET", "/users", handler))))
    got = [u async for u in client.paginate("/users", page=CursorPage[User])]
    assert ids(got) == [1, 1]
    assert calls == [None, "same"]


async def test_a_cursor_cycle_ends_the_list_instead_of_looping_forever() -> None:
    # A -> b -> c -> b -> c ...: only a cursor handed straight back was caught, so
    # this walked forever.
    nexts = {None: "b", "b": "c", "c": "b"}
    router = Router()

    def page(request: stackwire.Request) -> MockResponse:
        cursor = request.url.query.get("cursor")
        item = {"id": len(router.calls), "name": str(cursor)}
        return MockResponse(json={"data": [item], "has_more": True, "next_cursor": nexts[cursor]})

    router.get("/users").respond(page)
    async with mocked(router) as client:
        got = [user async for user in client.paginate("/users", page=CursorPage[User])]
        # The page the cycle led back to is not yielded again.
        assert [user.name for user in got] == ["None", "b", "c"]
        assert [q.get("cursor") for q in queries(router)] == [None, ["b"], ["c"], ["b"]]
        # A new walk starts afresh, and fetching one page twice is no cycle.
        first = await client.paginate("/users", page=CursorPage[User])
        second = await first.get_next_page()
        again = await first.get_next_page()
        assert second.has_next_page()
        assert again.has_next_page()
        assert (await again.get_next_page()).has_next_page()


@pytest.mark.parametrize("kind", ["cursor", "link"])
async def test_an_empty_page_ends_the_list_whatever_it_links_to(kind: str) -> None:
    # An API handing out a new cursor (or next link) with every empty page walked
    # forever: no page repeated, so no cycle was seen. An empty page is the last, as
    # in the OpenAI and Anthropic SDKs.
    router = Router()

    def page(request: stackwire.Request) -> MockResponse:
        number = int(request.url.query.get("cursor") or request.url.query.get("page") or 0)
        items = [{"id": 1, "name": "x"}] if number == 0 else []
        if kind == "cursor":
            return MockResponse(
                json={"data": items, "has_more": True, "next_cursor": str(number + 1)}
            )
        return MockResponse(json=items, headers={"Link": f"</users?page={number + 1}>; rel=next"})

    router.get("/users").respond(page)
    page_type: Any = CursorPage[User] if kind == "cursor" else LinkPage[User]
    async with mocked(router) as client:
        got = [user async for user in client.paginate("/users", page=page_type)]
        assert ids(got) == [1]
        assert len(router.calls) == 2
        pages = [p async for p in client.paginate("/users", page=page_type).iter_pages()]
        assert [len(p.page_items()) for p in pages] == [1, 0]
        assert not pages[-1].has_next_page()
        # Asked for explicitly, the page after an empty one is still fetched.
        assert (await pages[-1].get_next_page()).page_items() == []


async def test_a_cycle_of_link_pages_ends_the_list() -> None:
    router = Router()

    def page(request: stackwire.Request) -> MockResponse:
        number = int(request.url.query.get("page", "1"))
        after = {1: 2, 2: 3, 3: 2}[number]  # 3 leads back to 2
        return MockResponse(
            json=[{"id": number, "name": "x"}],
            headers={"Link": f'</users?page={after}>; rel="next"'},
        )

    router.get("/users").respond(page)
    async with mocked(router) as client:
        got = [user async for user in client.paginate("/users", page=LinkPage[User])]
        assert ids(got) == [1, 2, 3]
        # One request more than pages: the one that found the cycle.
        assert [q.get("page") for q in queries(router)] == [None, ["2"], ["3"], ["2"]]


async def test_a_post_search_whose_body_cursor_cycles_ends_the_list() -> None:
    nexts = {None: "b", "b": "c", "c": "b"}
    router = Router()

    def page(request: stackwire.Request) -> MockResponse:
        assert isinstance(request.body, bytes)
        cursor = json.loads(request.body).get("cursor")
        return MockResponse(
            json={"data": [{"id": 1, "name": str(cursor)}], "next_cursor": nexts[cursor]}
        )

    router.post("/search").respond(page)
    async with mocked(router) as client:
        paginator = client.paginate(
            "/search", page=CursorPage[User], method="POST", json={"q": "x"}
        )
        assert [user.name async for user in paginator] == ["None", "b", "c"]


async def test_link_page_body_must_be_a_list_of_items(
    serve: Serve, make_client: MakeClient
) -> None:
    async def handler(request: web.Request) -> web.Response:
        # A crafted body cannot set next_url: it must be exactly one JSON list.
        return web.Response(
            text='[], "next_url": "http://evil.test/"', content_type="application/json"
        )

    client = make_client(await serve(routes(("GET", "/users", handler))))
    with pytest.raises(stackwire.APIResponseValidationError) as info:
        await client.paginate("/users", page=LinkPage[User])
    assert info.value.request is not None
    assert client.pool_stats().in_use == 0


async def test_a_bad_page_mid_list_raises_a_validation_error(
    serve: Serve, make_client: MakeClient
) -> None:
    async def handler(request: web.Request) -> web.Response:
        if request.query.get("cursor") == "c2":
            return web.json_response({"data": [{"id": "not a number"}]})
        return web.json_response({"data": USERS[:2], "has_more": True, "next_cursor": "c2"})

    client = make_client(await serve(routes(("GET", "/users", handler))), strict=True)
    seen: list[int] = []

    async def collect() -> None:
        async for user in client.paginate("/users", page=CursorPage[User]):
            seen.append(user.id)

    with pytest.raises(stackwire.APIResponseValidationError, match=r"\$\.data\[0\]"):
        await collect()
    assert seen == [1, 2]
    assert client.pool_stats().in_use == 0


# -- custom pages ----------------------------------------------------------------------


class ItemsPage(CursorPage[T]):
    """An API that says ``items`` and ``after``."""

    data: list[T] = msgspec.field(name="items")
    next_cursor: str | None = msgspec.field(default=None, name="after")
    cursor_param: ClassVar[str] = "after"


class StartPage(OffsetPage[T]):
    offset_param: ClassVar[str] = "start"


class ZeroBasedPage(PageNumberPage[T]):
    page_param: ClassVar[str] = "p"
    first_page: ClassVar[int] = 0


async def test_a_subclass_renames_fields_and_parameters() -> None:
    router = Router("http://api.test/")

    @router.get("/a")
    def cursor(request: stackwire.Request) -> MockResponse:
        if request.url.query.get("after") is None:
            return MockResponse(json={"items": USERS[:2], "has_more": True, "after": "x"})
        return MockResponse(json={"items": USERS[2:3], "has_more": False})

    @router.get("/b")
    def start(request: stackwire.Request) -> MockResponse:
        begin = int(request.url.query.get("start", "0"))
        return MockResponse(json={"data": USERS[begin : begin + 3]})

    @router.get("/c")
    def zero(request: stackwire.Request) -> MockResponse:
        number = int(request.url.query["p"])
        return MockResponse(json={"data": USERS[number * 3 : number * 3 + 3]})

    async with mocked(router) as client:
        got = [u async for u in client.paginate("/a", page=ItemsPage[User])]
        assert ids(got) == [1, 2, 3]
        assert queries(router) == [{}, {"after": ["x"]}]
        started = client.paginate("/b", page=StartPage[User])
        assert ids([u async for u in started]) == [1, 2, 3, 4, 5]
        zero_pages = client.paginate("/c", page=ZeroBasedPage[User], query={"p": 0})
        assert ids([u async for u in zero_pages]) == [1, 2, 3, 4, 5]


class UserPage(CursorPage[User]):
    """A page bound to one item type (not generic)."""


class UserLinks(LinkPage[User]):
    pass


async def test_non_generic_page_subclasses(serve: Serve, make_client: MakeClient) -> None:
    async def cursor(request: web.Request) -> web.Response:
        return web.json_response({"data": USERS[:1], "has_more": False})

    async def links(request: web.Request) -> web.Response:
        return web.json_response(USERS[:2])

    client = make_client(await serve(routes(("GET", "/a", cursor), ("GET", "/b", links))))
    page = await client.paginate("/a", page=UserPage)
    assert_type(page, UserPage)
    assert page.data == [User(id=1, name="user1")]
    assert ids([u async for u in client.paginate("/b", page=UserLinks)]) == [1, 2]


async def test_bad_paginate_arguments_fail_before_any_io(
    serve: Serve, make_client: MakeClient
) -> None:
    calls = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(1)
        return web.json_response({"data": USERS[:1]})

    client = make_client(
        await serve(routes(("GET", "/users", handler), ("POST", "/users", handler)))
    )
    with pytest.raises(stackwire.InvalidRequestError, match="page model"):
        client.paginate("/users", page=User)  # type: ignore[type-var]
    with pytest.raises(stackwire.InvalidRequestError, match="files="):
        client.paginate("/users", page=CursorPage[User], files={"a": b"x"})  # type: ignore[call-arg]
    with pytest.raises(stackwire.InvalidRequestError, match="GET request has no body"):
        await client.paginate("/users", page=CursorPage[User], json={"q": 1})
    assert calls == []
    page = await client.paginate("/users", page=OffsetPage[User], query={"offset": "x"})
    with pytest.raises(stackwire.InvalidRequestError, match="'offset' parameter must be an int"):
        page.has_next_page()
    assert len(calls) == 1
    with pytest.raises(stackwire.InvalidRequestError, match=r"not fetched by client\.paginate"):
        await CursorPage(data=[1], has_more=True, next_cursor="z").get_next_page()


# -- the Link header parser ------------------------------------------------------------


def test_parse_link_header_multiple_links_and_params() -> None:
    value = (
        '<https://api.test/items?page=2&x=a,b>; rel="next"; title="Next, please; now", '
        "<https://api.test/items?page=9>; REL=Last; type=application/json, "
        '<https://api.test/items?page=1>; rel="first prev"; title="say \\"hi\\""'
    )
    assert parse_link_header(value) == [
        Link(
            "https://api.test/items?page=2&x=a,b",
            ("next",),
            {"rel": "next", "title": "Next, please; now"},
        ),
        Link(
            "https://api.test/items?page=9", ("last",), {"rel": "Last", "type": "application/json"}
        ),
        Link(
            "https://api.test/items?page=1",
            ("first", "prev"),
            {"rel": "first prev", "title": 'say "hi"'},
        ),
    ]


def test_parse_link_header_skips_malformed_links_and_keeps_the_first_rel() -> None:
    value = (
        'nonsense; rel="next", <https://a.test/1>; rel="next" trailing junk, '
        '<https://a.test/2>; rel="prev"; rel="next",<https://a.test/3> ; rel = next ,'
        "<unterminated"
    )
    links = parse_link_header(value)
    assert [(link.url, link.rel) for link in links] == [
        ("https://a.test/2", ("prev",)),
        ("https://a.test/3", ("next",)),
    ]
    assert parse_link_header("") == []
    assert parse_link_header(" , ,") == []
    assert parse_link_header('<x>; rel="unterminated') == [
        Link("x", ("unterminated",), {"rel": "unterminated"})
    ]


def test_page_info_is_part_of_the_public_surface() -> None:
    page = OffsetPage(data=[1, 2])
    info = page.next_page_info()
    assert info == stackwire.PageInfo(params={"offset": 2})
    assert json.loads(msgspec.json.encode(page)) == {"data": [1, 2]}


# -- hostile next links, parameters and arguments --------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://[::1/users?page=2",  # a broken IPv6 host: yarl raises ValueError
        "http://api.test:99999/users?page=2",  # a port out of range
        "javascript:alert(1)",  # was requested as the path /javascript:alert(1)
        "mailto:someone@api.test",
        "ftp://api.test/users?page=2",  # was an InvalidRequestError mid-walk
        "file:///etc/passwd",
        "",
    ],
)
async def test_a_next_link_that_is_no_http_url_is_ignored(target: str) -> None:
    router = Router()
    router.get("/users").respond(
        json=USERS[:1],
        headers={"Link": f'<{target}>; rel="next", <http://api.test/users?page=2>; rel="last"'},
    )
    async with mocked(router) as client:
        page = await client.paginate("/users", page=LinkPage[User])
        assert page.next_url is None
        assert not page.has_next_page()
        assert ids([u async for u in client.paginate("/users", page=LinkPage[User])]) == [1]
        assert len(router.calls) == 2  # one request per walk, nothing else


async def test_the_first_usable_next_link_wins() -> None:
    router = Router()
    router.get("/users").respond_seq(
        [
            MockResponse(
                json=USERS[:1],
                headers={"Link": '<http://[::1>; rel="next", </users?page=2#top>; rel="next"'},
            ),
            MockResponse(json=USERS[1:2]),
        ]
    )
    async with mocked(router) as client:
        got = [u async for u in client.paginate("/users", page=LinkPage[User])]
        assert ids(got) == [1, 2]
        assert str(router.calls[1].request.url) == "http://api.test/users?page=2"


async def test_a_broken_link_header_does_not_hide_the_next_one() -> None:
    # Several Link headers were joined with ", " and parsed as one: an unterminated
    # quote in one took the rest, the next header's rel="next" with it.
    router = Router()
    router.get("/users").respond_seq(
        [
            MockResponse(
                json=USERS[:1],
                headers=[
                    ("Link", '</users?page=0>; rel="prev"; title="unterminated'),
                    ("Link", '</users?page=2>; rel="next"'),
                ],
            ),
            MockResponse(json=USERS[1:2]),
        ]
    )
    async with mocked(router) as client:
        got = [u async for u in client.paginate("/users", page=LinkPage[User])]
        assert ids(got) == [1, 2]
        assert str(router.calls[1].request.url) == "http://api.test/users?page=2"


async def test_a_next_link_never_supplies_credentials(
    serve: Serve, make_client: MakeClient
) -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        if "page" in request.query:
            return web.json_response(USERS[1:2])
        # Same origin, with a user and password: they were sent as Basic auth.
        link = request.url.with_user("admin").with_password("hunter2").with_query(page=2)
        return web.json_response(USERS[:1], headers={"Link": f'<{link}>; rel="next"'})

    client = make_client(await serve(routes(("GET", "/users", handler))))
    first = await client.paginate("/users", page=LinkPage[User])
    assert first.next_url is not None
    assert "hunter2" not in first.next_url
    assert ids([u async for u in client.paginate("/users", page=LinkPage[User])]) == [1, 2]
    assert seen == [None, None, None]


async def test_a_next_link_does_not_repeat_the_clients_default_query() -> None:
    router = Router()
    router.get("/users").respond_seq(
        [
            MockResponse(
                json=USERS[:1],
                headers={
                    "Link": '</users?api-version=2024-01&filter[state]=open&page=2>; rel="next"'
                },
            ),
            MockResponse(json=USERS[1:2]),
        ]
    )
    transport = MockTransport(router)
    default_query = {"api-version": "2024-01", "filter": {"state": "open"}, "tenant": "t1"}
    async with stackwire.AsyncClient(
        "http://api.test/", transport=transport, query=default_query
    ) as client:
        paginator = client.paginate("/users", page=LinkPage[User], query={"per_page": 1})
        assert ids([u async for u in paginator]) == [1, 2]
    assert queries(router) == [
        {
            "api-version": ["2024-01"],
            "filter[state]": ["open"],
            "tenant": ["t1"],
            "per_page": ["1"],
        },
        {
            "api-version": ["2024-01"],
            "filter[state]": ["open"],
            "page": ["2"],
            "tenant": ["t1"],
            "per_page": ["1"],
        },
    ]


@pytest.mark.parametrize(
    ("page_type", "name", "sent"),
    [(OffsetPage[User], "offset", ["1", "2"]), (PageNumberPage[User], "page", ["2", "3"])],
)
async def test_a_none_offset_or_page_starts_from_the_first(
    page_type: Any, name: str, sent: list[str]
) -> None:
    # None means "not sent" for a query parameter; it was an InvalidRequestError
    # once the first page had come back.
    router = Router()
    router.get("/users").respond_seq(
        [
            MockResponse(json={"data": USERS[:1]}),
            MockResponse(json={"data": USERS[1:2]}),
            MockResponse(json={"data": []}),
        ]
    )
    async with mocked(router) as client:
        paginator = client.paginate("/users", page=page_type, query={name: None})
        assert ids([u async for u in paginator]) == [1, 2]
    assert [q.get(name) for q in queries(router)] == [None, [sent[0]], [sent[1]]]


async def test_paginate_method_must_be_a_string() -> None:
    async with mocked(Router()) as client:
        with pytest.raises(stackwire.InvalidRequestError, match="method= must be a str"):
            client.paginate("/users", page=CursorPage[User], method=1)  # type: ignore[arg-type]


async def test_async_for_over_a_page_walks_its_items_and_the_following_pages() -> None:
    # As with the Anthropic/OpenAI SDKs' AsyncPage: the awaited first page iterates
    # every item from there on (it was a TypeError: a page was not async-iterable).
    nexts = {None: "b", "b": "c", "c": None}
    router = Router()

    def page(request: stackwire.Request) -> MockResponse:
        cursor = request.url.query.get("cursor")
        item = {"id": len(router.calls), "name": str(cursor)}
        return MockResponse(json={"data": [item], "next_cursor": nexts[cursor]})

    router.get("/users").respond(page)
    async with mocked(router) as client:
        first = await client.paginate("/users", page=CursorPage[User])
        assert [user.name async for user in first] == ["None", "b", "c"]
        second = await first.get_next_page()
        got = [user async for user in second]
        assert_type(got, list[User])
        assert [user.name for user in got] == ["b", "c"]
