"""`Router`: templates, answers, recorded calls, and failures that name the closest routes."""

from __future__ import annotations

import pytest

import stackwire
from stackwire import Request
from stackwire.testing import MockResponse, MockTransport, Router, VirtualTime

BASE = "https://api.test/v1/"


class User(stackwire.Model):
    id: int
    name: str


def client_for(router: Router, **options: object) -> stackwire.AsyncClient:
    time = VirtualTime()
    return stackwire.AsyncClient(
        BASE,
        transport=MockTransport(router),
        sleep=time.sleep,
        **options,  # type: ignore[arg-type]
    )


async def test_templates_capture_one_segment_each_percent_decoded() -> None:
    router = Router(BASE)

    @router.get("/users/{user_id}/files/{name}")
    def file(request: Request, user_id: str, name: str) -> MockResponse:
        return MockResponse(json={"user": user_id, "name": name})

    async with client_for(router) as client:
        got = await client.get(
            "/users/{u}/files/{n}", path_params={"u": "42", "n": "a b/c"}, cast_to=dict
        )
        assert got == {"user": "42", "name": "a b/c"}  # an encoded "/" is one segment
        with pytest.raises(AssertionError, match="no route matches GET /v1/users/42/files/a/b"):
            await client.get("/users/42/files/a/b")  # a {name} never spans "/"
    assert [call.params for call in router.calls[:1]] == [{"user_id": "42", "name": "a b/c"}]


async def test_a_literal_route_wins_over_a_placeholder_whatever_the_order() -> None:
    router = Router(BASE)
    router.get("/users/{id}").respond(json={"id": 1, "name": "by id"})
    router.get("/users/me").respond(json={"id": 0, "name": "me"})
    async with client_for(router) as client:
        assert (await client.get("/users/me", cast_to=User)).name == "me"
        assert (await client.get("/users/5", cast_to=User)).name == "by id"


async def test_respond_seq_answers_in_order_and_fails_past_its_end() -> None:
    router = Router(BASE)
    route = router.post("/jobs").respond_seq(
        [MockResponse(429, headers={"Retry-After": "2"}), MockResponse(201, json={"id": 9})]
    )
    time = VirtualTime()
    async with stackwire.AsyncClient(
        BASE, transport=MockTransport(router), sleep=time.sleep, clock=time.clock
    ) as client:
        assert await client.post("/jobs", json={}, cast_to=dict) == {"id": 9}
        with pytest.raises(
            AssertionError, match="answered all 2 responses of its respond_seq"
        ) as failure:
            await client.post("/jobs", json={}, query={"api_key": "canary-key"})
    assert "canary" not in str(failure.value)  # a query may hold a key
    assert time.slept == [2.0]  # the 429's Retry-After, slept virtually
    assert route.call_count == 3
    keys = {call.request.headers["Idempotency-Key"] for call in route.calls[:2]}
    assert len(keys) == 1  # the retry carried the call's key


async def test_async_route_functions_and_an_absolute_template() -> None:
    router = Router(BASE)

    async def echo(request: Request) -> MockResponse:
        assert isinstance(request.body, bytes)  # a transport's request: bytes, always
        return MockResponse(json={"got": request.body.decode()})

    router.post("/echo").respond_with(echo)
    router.get("https://files.test/blob").respond(content=b"blob")
    async with client_for(router) as client:
        assert await client.post("/echo", content=b"hi", cast_to=dict) == {"got": "hi"}
        raw = await client.with_raw_response.get("https://files.test/blob")
        assert raw.content == b"blob"
        with pytest.raises(AssertionError, match="no route matches GET /blob"):
            await client.get("https://other.test/blob")


async def test_an_unmatched_request_fails_once_naming_the_closest_routes() -> None:
    router = Router(BASE)
    router.get("/users/{id}").respond(json={})
    router.post("/users").respond(json={})
    router.get("/orders/{id}/items").respond(json={})
    router.delete("/sessions").respond(json={})
    async with client_for(router, max_retries=2) as client:
        with pytest.raises(AssertionError) as caught:
            await client.post("/user", json={})
    message = str(caught.value)
    lines = message.splitlines()
    assert lines[0] == "no route matches POST /v1/user (https://api.test/v1/user)"
    assert lines[1] == "closest of 4 routes:"
    assert lines[2] == "  POST /users: segment 2 is 'user', not 'users'"
    assert len(lines) == 5  # three closest routes, each with how it differs
    assert "DELETE /sessions" in message or "GET /users/{id}" in message
    assert len(router.calls) == 1  # an AssertionError is never retried
    assert router.calls[0].route is None


async def test_an_unmatched_request_through_the_blocking_client_is_an_assertion_error() -> None:
    router = Router(BASE)
    with (
        stackwire.Client(BASE, transport=MockTransport(router)) as client,
        pytest.raises(AssertionError, match="the router has no routes"),
    ):
        client.get("/anything")


async def test_assert_all_called_names_routes_never_hit_and_the_nearest_requests() -> None:
    router = Router(BASE)
    router.get("/users/{id}").respond(json={"id": 1, "name": "Ada"})
    router.get("/users/{id}/posts").respond(json=[])
    router.delete("/users/{id}").respond(204)
    async with client_for(router) as client:
        await client.get("/users/1", cast_to=User)
    with pytest.raises(AssertionError) as caught:
        router.assert_all_called()
    assert str(caught.value).splitlines() == [
        "2 of 3 routes were never called:",
        "  GET /users/{id}/posts (closest requests seen: GET /v1/users/1)",
        "  DELETE /users/{id} (closest requests seen: GET /v1/users/1)",
    ]
    router.reset()
    assert router.calls == []


async def test_calls_record_every_attempt_with_its_headers() -> None:
    router = Router(BASE)
    router.get("/flaky").respond_seq(
        [MockResponse(500), MockResponse(502), MockResponse(json={"id": 1, "name": "Ada"})]
    )
    async with client_for(router) as client:
        await client.get("/flaky", cast_to=User, headers={"X-Trace": "t1"})
    assert [call.request.headers["X-Retry-Count"] for call in router.calls] == ["0", "1", "2"]
    assert all(call.request.headers["X-Trace"] == "t1" for call in router.calls)


def test_a_route_without_an_answer_and_bad_answers_are_refused() -> None:
    router = Router()
    with pytest.raises(stackwire.InvalidRequestError, match="path only"):
        router.get("/users?x=1")
    with pytest.raises(stackwire.InvalidRequestError, match="MockResponse"):
        router.get("/a").respond_seq([{"id": 1}])  # type: ignore[list-item]


async def test_a_matched_route_without_an_answer_says_how_to_give_one() -> None:
    router = Router(BASE)
    router.get("/todo")
    async with client_for(router) as client:
        with pytest.raises(AssertionError, match=r"has no response: call \.respond"):
            await client.get("/todo")


@pytest.mark.parametrize(
    ("method", "template", "message"),
    [
        ("GET", "/users/{id", "brace that is not"),  # would match only a literal "{id"
        ("GET", "/users/{user-id}", "brace that is not"),
        ("GET", "/a/{id}/b/{id}", "names id more than once"),
        ("GET", None, "non-empty str"),
        ("GE T", "/users", "HTTP method"),
    ],
)
def test_a_template_or_method_that_could_never_match_is_refused(
    method: str, template: str, message: str
) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match=message):
        Router().route(method, template)


async def test_respond_takes_a_fault_or_a_function_of_the_request_alone() -> None:
    router = Router(BASE)
    router.get("/slow").respond(MockResponse.timeout())
    router.get("/users/{id}").respond(lambda request: MockResponse(json={"id": 1, "name": "A"}))
    async with client_for(router) as client:
        with pytest.raises(stackwire.APITimeoutError):
            await client.get("/slow")
        assert await client.get("/users/7", cast_to=User) == User(id=1, name="A")
    assert router.routes[0].call_count == 3  # retried as a timeout is
    with pytest.raises(stackwire.InvalidRequestError, match="alone"):
        router.get("/x").respond(MockResponse(), json={})
