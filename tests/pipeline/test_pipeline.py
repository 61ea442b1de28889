"""`Pipeline` and the client's stack: order, derivation, and where middlewares run."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

import stackwire
from stackwire import CallNext, NamedMiddleware, Pipeline, Request, Response
from stackwire.testing import MockResponse, MockTransport
from tests.conftest import EchoServer, Serve, SleepRecorder, names, routes

MakeClient = Callable[..., stackwire.AsyncClient]

DEFAULT_ORDER = ["headers", "query", "timeout", "retry", "decode"]
# Built-in stages below the client's middlewares (just above the transport).
INNERMOST = names(stackwire.AsyncClient("http://api.test/").pipeline)[len(DEFAULT_ORDER) :]


def with_added(*added: str) -> list[str]:
    """The default stack with ``added`` where the client's middlewares go."""
    return [*DEFAULT_ORDER, *added, *INNERMOST]


class Recorder:
    """A middleware that records what it sees of each request and response."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.statuses: list[int] = []
        self.attempts: list[int] = []
        self.bodies_read: list[bool] = []

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        self.attempts.append(request.attempt)
        response = await call_next(request)
        self.statuses.append(response.status_code)
        self.bodies_read.append(response._content is not None)
        return response


class Flaky:
    """500 for the first ``failures`` hits, then ``{"ok": true}``."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.hits = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.hits <= self.failures:
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"ok": True})


async def _flaky_client(
    serve: Serve, make_client: MakeClient, failures: int, **options: Any
) -> tuple[stackwire.AsyncClient, Flaky]:
    server = Flaky(failures)
    base = await serve(routes(("GET", "/x", server.handle)))
    return make_client(base, **options), server


async def _noop(request: Request, call_next: CallNext) -> Response[Any]:
    return await call_next(request)


# -- reading the stack -------------------------------------------------------------


def test_default_stack_order_and_names() -> None:
    client = stackwire.AsyncClient("http://api.test/")
    entries = list(client.pipeline)
    assert [entry.name for entry in entries] == with_added()
    assert INNERMOST in ([], ["redirects"])
    assert all(isinstance(entry, NamedMiddleware) for entry in entries)
    assert isinstance(client.pipeline["retry"], stackwire.RetryMiddleware)
    assert isinstance(client.pipeline["decode"], stackwire.DecodeMiddleware)
    assert len(client.pipeline) == len(with_added())
    assert "retry" in client.pipeline
    assert "nope" not in client.pipeline


def test_str_lists_one_middleware_a_line() -> None:
    client = stackwire.AsyncClient("http://api.test/").with_middleware(_noop)
    assert str(client.pipeline).splitlines() == [
        f"{i}. {name}" for i, name in enumerate(with_added("_noop"), 1)
    ]
    assert str(client.pipeline).splitlines()[:6] == [
        "1. headers",
        "2. query",
        "3. timeout",
        "4. retry",
        "5. decode",
        "6. _noop",
    ]


def test_client_middlewares_go_below_decode_in_order() -> None:
    first, second = Recorder("first"), Recorder("second")
    client = stackwire.AsyncClient("http://api.test/", middlewares=[first, second])
    assert names(client.pipeline) == with_added("first", "second")


# -- deriving pipelines --------------------------------------------------------------


def test_insert_before_and_after() -> None:
    base = stackwire.AsyncClient("http://api.test/").pipeline
    assert names(base.insert(_noop, name="log", before="retry"))[:6] == [
        "headers",
        "query",
        "timeout",
        "log",
        "retry",
        "decode",
    ]
    assert names(base.insert(_noop, name="log", after="retry"))[:6] == [
        "headers",
        "query",
        "timeout",
        "retry",
        "log",
        "decode",
    ]
    assert names(base.insert(_noop, name="first", before="headers"))[0] == "first"
    assert names(base.insert(_noop))[-1] == "_noop"
    assert names(base) == with_added()  # a value: never changed in place


def test_replace_and_remove() -> None:
    base = stackwire.AsyncClient("http://api.test/").pipeline
    replaced = base.replace("retry", _noop)
    assert names(replaced) == with_added()
    assert replaced["retry"] is _noop
    assert isinstance(base["retry"], stackwire.RetryMiddleware)
    assert names(base.remove("query")) == [n for n in with_added() if n != "query"]


@pytest.mark.parametrize(
    "operation",
    [
        lambda p: p.insert(_noop, before="nope"),
        lambda p: p.insert(_noop, after="nope"),
        lambda p: p.replace("nope", _noop),
        lambda p: p.remove("nope"),
        lambda p: p["nope"],
        lambda p: p.insert(_noop, name="x", before="retry", after="retry"),
    ],
)
def test_unknown_names_are_invalid(operation: Callable[[Pipeline], object]) -> None:
    base = stackwire.AsyncClient("http://api.test/").pipeline
    with pytest.raises(stackwire.InvalidRequestError):
        operation(base)


def test_duplicate_names_are_rejected() -> None:
    base = stackwire.AsyncClient("http://api.test/").pipeline
    with pytest.raises(stackwire.InvalidRequestError, match="retry"):
        base.insert(_noop, name="retry")
    # Names a middleware carries (its ``name`` attribute) are explicit: equal ones clash.
    with pytest.raises(stackwire.InvalidRequestError):
        stackwire.AsyncClient("http://api.test/", middlewares=[Recorder(), Recorder()])
    # Names taken from a function are made unique instead.
    assert Pipeline([_noop, _noop]).names == ["_noop", "_noop-2"]
    client = stackwire.AsyncClient("http://api.test/").with_middleware(_noop)
    assert names(client.with_middleware(_noop).pipeline) == with_added("_noop", "_noop-2")
    assert names(client.with_middleware(_noop, name="noop2").pipeline) == with_added(
        "_noop", "noop2"
    )


def test_a_middleware_must_be_callable() -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        Pipeline([42])  # type: ignore[list-item]


def test_a_middleware_class_instead_of_an_instance_is_refused_where_it_is_added() -> None:
    # Callable, so it was taken, and the first call failed with a bare TypeError.
    from stackwire.resilience import CircuitBreaker

    client = stackwire.AsyncClient("http://api.test/")
    added: list[Callable[[], object]] = [
        lambda: client.with_middleware(CircuitBreaker),  # type: ignore[arg-type]
        lambda: stackwire.AsyncClient("http://api.test/", middlewares=[Recorder]),  # type: ignore[list-item]
        lambda: client.pipeline.insert(Recorder),  # type: ignore[call-overload]
    ]
    for add in added:
        with pytest.raises(stackwire.InvalidRequestError, match=r"an instance.*\(\.\.\.\)"):
            add()


def test_replace_checks_the_middleware_as_insert_does() -> None:
    # replace() took anything: the stack printed fine and the first call failed with a
    # bare TypeError ("'int' object is not callable").
    pipeline = stackwire.AsyncClient("http://api.test/").pipeline
    with pytest.raises(stackwire.InvalidRequestError, match="callable"):
        pipeline.replace("retry", 42)  # type: ignore[arg-type]
    with pytest.raises(stackwire.InvalidRequestError, match="an instance"):
        pipeline.replace("retry", Recorder)  # type: ignore[arg-type]
    assert pipeline.replace("retry", _noop).names == pipeline.names


@pytest.mark.parametrize("name", ["", "two\nlines", 5, None])
def test_a_middleware_name_is_a_printable_str(name: object) -> None:
    # The stack prints one name a line; an empty name, a newline or a number broke it
    # (and a number could not be placed before= or after= by its printed name).
    client = stackwire.AsyncClient("http://api.test/")
    if name is not None:
        with pytest.raises(stackwire.InvalidRequestError, match="middleware name"):
            client.with_middleware(_noop, name=name)  # type: ignore[arg-type]
    with pytest.raises(stackwire.InvalidRequestError, match="middleware name"):
        Pipeline([NamedMiddleware(name, _noop)])  # type: ignore[arg-type]


# -- composing once ------------------------------------------------------------------


async def test_chain_is_composed_once_per_terminal() -> None:
    async def terminal(request: Request) -> Response[Any]:
        raise AssertionError("not called")

    async def other(request: Request) -> Response[Any]:
        raise AssertionError("not called")

    pipeline = Pipeline([_noop, Recorder()])
    handler = pipeline.compose(terminal)
    assert pipeline.compose(terminal) is handler
    assert pipeline.compose(other) is not handler


async def test_client_calls_reuse_the_composed_chain(
    serve: Serve, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = await _flaky_client(serve, make_client, failures=0)
    composed: list[Pipeline] = []
    original = Pipeline.compose

    def counting(self: Pipeline, terminal: Any) -> Any:
        composed.append(self)
        return original(self, terminal)

    monkeypatch.setattr(Pipeline, "compose", counting)
    for _ in range(3):
        await client.get("/x", cast_to=dict)
    assert composed == []


# -- where middlewares run -----------------------------------------------------------


async def test_with_middleware_sees_every_attempt_before_error_mapping(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    client, server = await _flaky_client(serve, make_client, failures=1)
    recorder = Recorder()
    traced = client.with_middleware(recorder)
    assert traced is not client
    assert names(client.pipeline) == with_added()  # the original is unchanged
    assert names(traced.pipeline) == with_added("recorder")

    assert await traced.get("/x", cast_to=dict) == {"ok": True}
    assert recorder.statuses == [500, 200]  # the raw 500, not an error
    assert recorder.attempts == [0, 1]
    assert recorder.bodies_read == [False, False]  # below decode: body not yet read
    assert server.hits == 2
    assert len(client_sleeps.delays) == 1

    await client.get("/x", cast_to=dict)  # the original client does not run it
    assert len(recorder.statuses) == 2
    assert traced.pool_stats() == client.pool_stats()


async def test_middleware_sees_the_final_500_too(serve: Serve, make_client: MakeClient) -> None:
    client, _ = await _flaky_client(serve, make_client, failures=10, max_retries=1)
    recorder = Recorder()
    with pytest.raises(stackwire.InternalServerError):
        await client.with_middleware(recorder).get("/x")
    assert recorder.statuses == [500, 500]


async def test_plain_async_function_middleware(serve: Serve, make_client: MakeClient) -> None:
    seen: list[str] = []

    async def tag(request: Request, call_next: CallNext) -> Response[Any]:
        seen.append(request.headers["User-Agent"])
        response = await call_next(request.with_headers({"X-Tag": "1"}))
        seen.append(str(response.status_code))
        return response

    tags: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        tags.append(request.headers.get("X-Tag"))
        return web.json_response([])

    client = make_client(await serve(routes(("GET", "/x", handler)))).with_middleware(tag)
    assert names(client.pipeline) == with_added("tag")
    assert await client.get("/x", cast_to=list) == []
    assert seen == [f"stackwire/{stackwire.__version__}", "200"]
    assert tags == ["1"]


async def test_middleware_before_retry_runs_once_per_call(
    serve: Serve, make_client: MakeClient
) -> None:
    client, server = await _flaky_client(serve, make_client, failures=2)
    outer, inner = Recorder("outer"), Recorder("inner")
    stacked = client.with_middleware(outer, before="retry").with_middleware(inner)
    assert names(stacked.pipeline) == [
        "headers",
        "query",
        "timeout",
        "outer",
        "retry",
        "decode",
        "inner",
        *INNERMOST,
    ]
    assert await stacked.get("/x", cast_to=dict) == {"ok": True}
    assert server.hits == 3
    assert inner.statuses == [500, 500, 200]
    assert outer.statuses == [200]
    assert outer.attempts == [0]
    assert outer.bodies_read == [True]  # above decode: the body was read


async def test_client_middlewares_run_outermost_first(
    serve: Serve, make_client: MakeClient
) -> None:
    order: list[str] = []

    def make(label: str) -> Any:
        async def middleware(request: Request, call_next: CallNext) -> Response[Any]:
            order.append(label + ">")
            response = await call_next(request)
            order.append("<" + label)
            return response

        middleware.__name__ = label
        return middleware

    client, _ = await _flaky_client(
        serve, make_client, failures=0, middlewares=[make("a"), make("b")]
    )
    await client.get("/x")
    assert order == ["a>", "b>", "<b", "<a"]


async def test_with_options_keeps_added_middlewares(serve: Serve, make_client: MakeClient) -> None:
    client, server = await _flaky_client(serve, make_client, failures=1)
    recorder = Recorder()
    derived = client.with_middleware(recorder).with_options(max_retries=0)
    assert names(derived.pipeline) == with_added("recorder")
    with pytest.raises(stackwire.InternalServerError):
        await derived.get("/x")
    assert recorder.statuses == [500]
    assert server.hits == 1


async def test_a_middleware_can_answer_without_calling_next(
    serve: Serve, make_client: MakeClient
) -> None:
    client, server = await _flaky_client(serve, make_client, failures=0)

    async def refuse(request: Request, call_next: CallNext) -> Response[Any]:
        raise stackwire.InvalidRequestError("blocked by policy")

    with pytest.raises(stackwire.InvalidRequestError, match="policy"):
        await client.with_middleware(refuse, before="headers").get("/x")
    assert server.hits == 0


async def _json_ok(request: web.Request) -> web.Response:
    return web.json_response({})


async def _forgets_to_return(request: Request, call_next: CallNext) -> Response[Any]:
    response = await call_next(request)
    response.close()
    return None  # type: ignore[return-value]  # the bug: no ``return response``


@pytest.mark.parametrize(
    "position", [{}, {"before": "decode"}, {"before": "retry"}, {"before": "headers"}]
)
async def test_a_middleware_that_returns_no_response_is_named_as_the_cause(
    serve: Serve, make_client: MakeClient, position: dict[str, str]
) -> None:
    # It surfaced as a bare AttributeError from inside decode or retry ("'NoneType'
    # object has no attribute 'request'"), or as None from with_raw_response.
    base = await serve(routes(("GET", "/x", _json_ok)))
    client = make_client(base).with_middleware(_forgets_to_return, **position)
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: client.get("/x"),
        lambda: client.get("/x", cast_to=dict),
        lambda: client.with_raw_response.get("/x"),
    ]
    for call in calls:
        with pytest.raises(
            stackwire.StackwireError, match=r"a middleware returned None .* instead of a Response"
        ):
            await call()


async def test_the_extension_map_shared_by_requests_is_read_only(
    echo_server: Callable[[], Awaitable[tuple[str, EchoServer]]],
) -> None:
    base, _ = await echo_server()
    key: stackwire.ExtensionKey[str] = stackwire.ExtensionKey("note")
    seen: list[Request] = []

    async def record(request: Request, call_next: CallNext) -> Response[Any]:
        seen.append(request)  # as the client built it: this runs first
        return await call_next(request)

    for client in (
        stackwire.AsyncClient(base, request_id_headers=["x-trace"]),
        stackwire.AsyncClient(base),
    ):
        seen.clear()
        async with client:
            outermost = client.with_middleware(record, before="headers")
            await outermost.get("/a")
            await outermost.get("/b")
        first, second = seen
        # Writing in place would change every later request of the client: refused.
        shared: Any = first.extensions
        with pytest.raises(TypeError):
            shared[key] = "in place"
        noted = first.with_extension(key, "copied")
        assert noted.extension(key) == "copied"
        assert first.extension(key) is None
        assert second.extension(key) is None


# -- RequestRewriter -------------------------------------------------------------------


class _Tag(stackwire.RequestRewriter):
    name = "tag"

    def rewrite(self, request: stackwire.Request) -> stackwire.Request:
        return request.with_headers({"X-Tag": "on"})


async def _answer(request: stackwire.Request) -> stackwire.Response[Any]:
    raise _Answered(request)


class _Answered(Exception):
    def __init__(self, request: stackwire.Request) -> None:
        self.request = request


async def test_a_request_rewriter_is_linked_as_a_plain_function() -> None:
    handler = stackwire.Pipeline([_Tag()]).compose(_answer)
    assert not inspect.iscoroutinefunction(handler)
    request = stackwire.Request(method="GET", url=URL("http://api.test/"))
    # What the handler hands back is the next stage's own coroutine: no layer of
    # the rewriter's in between.
    pending = handler(request)
    assert inspect.iscoroutine(pending)
    assert pending.cr_code is _answer.__code__
    with pytest.raises(_Answered) as info:
        await pending
    assert info.value.request.headers["X-Tag"] == "on"
    # Called directly, it is an ordinary middleware.
    with pytest.raises(_Answered) as info:
        await _Tag()(request, _answer)
    assert info.value.request.headers["X-Tag"] == "on"


class _Mark(stackwire.RequestRewriter):
    """Appends its mark to ``X-Marks``: the header tells the order they ran in."""

    def __init__(self, mark: str) -> None:
        self.name = mark

    def rewrite(self, request: stackwire.Request) -> stackwire.Request:
        marks = request.headers.get("X-Marks", "")
        return request.with_headers({"X-Marks": marks + self.name})


async def _marked(request: stackwire.Request) -> stackwire.Response[Any]:
    raise _Answered(request)


@pytest.mark.parametrize("count", [2, 3, 4, 5])
async def test_a_run_of_rewriters_is_one_plain_function_in_stack_order(count: int) -> None:
    marks = "abcde"[:count]
    handler = stackwire.Pipeline([_Mark(mark) for mark in marks]).compose(_marked)
    pending = handler(stackwire.Request(method="GET", url=URL("http://api.test/")))
    assert pending.cr_code is _marked.__code__  # type: ignore[attr-defined]
    with pytest.raises(_Answered) as info:
        await pending
    assert info.value.request.headers["X-Marks"] == marks


async def test_rewriters_around_a_middleware_run_in_stack_order() -> None:
    async def between(
        request: stackwire.Request, call_next: stackwire.CallNext
    ) -> stackwire.Response[Any]:
        return await call_next(request.with_headers({"X-Marks": request.headers["X-Marks"] + "|"}))

    pipeline = stackwire.Pipeline([_Mark("a"), _Mark("b"), between, _Mark("c"), _Mark("d")])
    with pytest.raises(_Answered) as info:
        await pipeline.compose(_marked)(
            stackwire.Request(method="GET", url=URL("http://api.test/"))
        )
    assert info.value.request.headers["X-Marks"] == "ab|cd"


async def test_a_request_rewriter_that_overrides_call_is_called_through_it() -> None:
    calls: list[str] = []

    class Counting(_Tag):
        async def __call__(
            self, request: stackwire.Request, call_next: stackwire.CallNext
        ) -> stackwire.Response[Any]:
            calls.append("call")
            return await call_next(self.rewrite(request))

    handler = stackwire.Pipeline([Counting()]).compose(_answer)
    with pytest.raises(_Answered):
        await handler(stackwire.Request(method="GET", url=URL("http://api.test/")))
    assert calls == ["call"]


async def test_a_failing_rewrite_is_an_error_before_any_io(echo_server: Any) -> None:
    class Refuse(stackwire.RequestRewriter):
        def rewrite(self, request: stackwire.Request) -> stackwire.Request:
            raise stackwire.InvalidRequestError("no")

    base, server = await echo_server()
    async with stackwire.AsyncClient(base).with_middleware(Refuse(), before="headers") as client:
        with pytest.raises(stackwire.InvalidRequestError, match="no"):
            await client.get("/a")
    assert server.requests == []


def _tagging(tag: str) -> Callable[..., Any]:
    async def mw(request: Request, call_next: CallNext) -> Response[Any]:
        return await call_next(request.with_headers({f"X-Tag-{tag}": "1"}))

    return mw


async def test_unnamed_middlewares_with_one_name_get_unique_names(
    serve: Serve, make_client: MakeClient
) -> None:
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append({k: v for k, v in request.headers.items() if k.startswith("X-Tag")})
        return web.json_response({})

    base = await serve(routes(("GET", "/x", handler)))
    client = make_client(base, middlewares=[_tagging("a"), _tagging("b")])
    assert names(client.pipeline)[-3:] == ["mw", "mw-2", "redirects"]
    third = client.with_middleware(_tagging("c"))
    assert names(third.pipeline)[-4:] == ["mw", "mw-2", "mw-3", "redirects"]
    await third.get("/x")
    assert seen == [{"X-Tag-a": "1", "X-Tag-b": "1", "X-Tag-c": "1"}]


def test_an_unnamed_middleware_yields_to_an_explicit_name() -> None:
    pipeline = Pipeline([_tagging("a"), NamedMiddleware("mw", _tagging("b"))])
    assert pipeline.names == ["mw-2", "mw"]


def test_two_explicit_equal_names_are_still_an_error() -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="two middlewares are named 'mw'"):
        Pipeline([NamedMiddleware("mw", _tagging("a")), NamedMiddleware("mw", _tagging("b"))])
    with pytest.raises(stackwire.InvalidRequestError, match="pass name= to tell them apart"):
        Pipeline([_tagging("a")]).insert(_tagging("b"), name="mw").insert(_tagging("c"), name="mw")


# -- a call like the one before it -------------------------------------------------------
# A client shares the `Request` of calls that set nothing of their own, and a run of
# the built-in rewriters hands the last result on again for the same request. What
# changes from call to call must still change.


class _Counting(stackwire.RequestRewriter):
    """Numbers every request it rewrites in ``X-Count``: a rewriter that is not pure."""

    name = "count"

    def __init__(self) -> None:
        self.count = 0

    def rewrite(self, request: stackwire.Request) -> stackwire.Request:
        self.count += 1
        return request.with_headers({"X-Count": str(self.count)})


def _recording_client(**options: Any) -> tuple[stackwire.AsyncClient, list[Request]]:
    seen: list[Request] = []

    def handler(request: Request) -> MockResponse:
        seen.append(request)
        return MockResponse(json={"path": request.url.path})

    transport = MockTransport(handler)
    return stackwire.AsyncClient("http://api.test/", transport=transport, **options), seen


async def test_a_rewriter_that_is_not_pure_runs_on_every_call_next_to_the_built_in_ones() -> None:
    client, seen = _recording_client()
    client = client.with_middleware(_Counting(), after="query")  # inside their run
    for _ in range(3):
        await client.get("/same")
    assert [request.headers["X-Count"] for request in seen] == ["1", "2", "3"]


async def test_a_subclass_of_a_built_in_rewriter_that_overrides_rewrite_runs_every_time() -> None:
    class Stamped(stackwire.HeadersMiddleware):
        calls = 0

        def rewrite(self, request: stackwire.Request) -> stackwire.Request:
            Stamped.calls += 1
            return super().rewrite(request).with_headers({"X-Stamp": str(Stamped.calls)})

    handler = stackwire.Pipeline(
        [Stamped(), stackwire.QueryMiddleware(), stackwire.TimeoutMiddleware()]
    ).compose(_answer)
    request = stackwire.Request(method="GET", url=URL("http://api.test/"))
    stamps = []
    for _ in range(3):
        with pytest.raises(_Answered) as info:
            await handler(request)  # the very same request object each time
        stamps.append(info.value.request.headers["X-Stamp"])
    assert stamps == ["1", "2", "3"]


async def test_every_call_gets_a_deadline_of_its_own() -> None:
    client, seen = _recording_client(deadline=10.0)
    for _ in range(3):
        before = time.monotonic()
        await client.get("/same")
        # (read off the clock during this call, not handed on from the one before)
        assert before + 10.0 <= seen[-1].deadline_at <= time.monotonic() + 10.0  # type: ignore[operator]


async def test_calls_alternating_paths_and_types_each_get_their_own() -> None:
    class Path(stackwire.Model):
        path: str

    client, seen = _recording_client()
    answers = [
        await client.get("/a", cast_to=Path),
        await client.get("/b", cast_to=dict),
        await client.get("/a", cast_to=dict),
        await client.post("/a", cast_to=Path),
        await client.get("/b", cast_to=Path),
    ]
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/a"),
        ("GET", "/b"),
        ("GET", "/a"),
        ("POST", "/a"),
        ("GET", "/b"),
    ]
    a, b = Path(path="/a"), Path(path="/b")
    assert answers == [a, {"path": "/b"}, {"path": "/a"}, a, b]


async def test_a_closed_client_refuses_a_call_it_made_before() -> None:
    client, seen = _recording_client()
    await client.get("/same")
    await client.close()
    with pytest.raises(stackwire.ClientClosedError):
        await client.get("/same")
    assert len(seen) == 1
