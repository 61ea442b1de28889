"""Auth (DESIGN §9) over real sockets: what reaches the wire, what is raised."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

import stackwire
from stackwire import BasicAuth, BearerToken, OAuth2ClientCredentials, Signer, Token
from tests.conftest import Serve, SleepRecorder

MakeClient = Callable[..., stackwire.AsyncClient]


class Seen:
    """A handler answering from a script of statuses (the last repeats), recording
    each request's Authorization and X-Retry-Count headers."""

    def __init__(self, *statuses: int, ok_token: str | None = None) -> None:
        self.statuses = list(statuses) or [200]
        self.auth: list[str | None] = []
        self.retry_counts: list[str | None] = []
        self.ok_token = ok_token

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.auth.append(request.headers.get("Authorization"))
        self.retry_counts.append(request.headers.get("X-Retry-Count"))
        if self.ok_token is not None:
            ok = request.headers.get("Authorization") == f"Bearer {self.ok_token}"
            return web.json_response({}, status=200 if ok else 401)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return web.json_response({}, status=status)


async def start(serve: Serve, seen: Seen) -> str:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", seen.handle)
    return await serve(app)


class Fetcher:
    def __init__(self, *tokens: Token, delay: float = 0.0) -> None:
        self.tokens = list(tokens)
        self.calls = 0
        self.delay = delay

    async def __call__(self) -> Token:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.tokens.pop(0) if len(self.tokens) > 1 else self.tokens[0]


async def test_500_concurrent_calls_with_a_stale_token_make_one_fetch(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(200)
    base = await start(serve, seen)
    fetch = Fetcher(Token("t1"), delay=0.01)
    client = make_client(base, auth=BearerToken(fetch))
    await asyncio.gather(*(client.get("/x") for _ in range(500)))
    assert fetch.calls == 1
    assert seen.auth == ["Bearer t1"] * 500


async def test_token_is_refreshed_ahead_of_expiry_on_the_client_clock(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(200)
    base = await start(serve, seen)
    now = [1000.0]
    fetch = Fetcher(Token("t1", 1100.0), Token("t2", 2000.0))
    client = make_client(base, auth=BearerToken(fetch, refresh_margin=30), clock=lambda: now[0])
    await client.get("/a")
    now[0] = 1060.0  # 40 s before expiry: still fresh
    await client.get("/b")
    now[0] = 1075.0  # within 30 s of expiry: refreshed
    await client.get("/c")
    assert seen.auth == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert fetch.calls == 2


async def test_a_401_refreshes_once_and_repeats_the_same_attempt(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(ok_token="t2")
    base = await start(serve, seen)
    fetch = Fetcher(Token("t1"), Token("t2"))
    client = make_client(base, auth=BearerToken(fetch))
    response = await client.with_raw_response.get("/x")
    assert response.status_code == 200
    assert response.retries_taken == 0
    assert seen.auth == ["Bearer t1", "Bearer t2"]
    assert seen.retry_counts == ["0", "0"]


async def test_a_second_401_raises_authentication_error(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(401)
    base = await start(serve, seen)
    fetch = Fetcher(Token("t1"), Token("t2"), Token("t3"))
    client = make_client(base, auth=BearerToken(fetch))
    with pytest.raises(stackwire.AuthenticationError):
        await client.get("/x")
    assert seen.auth == ["Bearer t1", "Bearer t2"]
    assert client.pool_stats().in_use == 0


async def test_a_retry_sends_the_refreshed_token(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen(503, 200)
    base = await start(serve, seen)
    now = [1000.0]
    fetch = Fetcher(Token("t1", 1070.0), Token("t2", 5000.0))

    async def sleep(delay: float) -> None:
        now[0] += 100  # the backoff outlives the first token

    client = make_client(
        base, auth=BearerToken(fetch, refresh_margin=10), clock=lambda: now[0], sleep=sleep
    )
    await client.get("/x")
    assert seen.auth == ["Bearer t1", "Bearer t2"]
    assert seen.retry_counts == ["0", "1"]


async def test_a_failing_fetch_raises_auth_error_to_every_waiter_and_is_not_retried(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(200)
    base = await start(serve, seen)
    calls = 0

    async def fetch() -> Token:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise OSError("vault unreachable: password=hunter2")

    client = make_client(base, auth=BearerToken(fetch))
    # DESIGN section 9's thousand concurrent calls: one fetch, and each gets its error.
    results = await asyncio.gather(*(client.get("/x") for _ in range(1000)), return_exceptions=True)
    assert all(
        isinstance(r, stackwire.AuthError) and isinstance(r.__cause__, OSError) for r in results
    )
    first = results[0]
    assert isinstance(first, stackwire.AuthError)
    assert isinstance(first.__cause__, OSError)
    assert "hunter2" not in str(first)
    assert calls == 1
    assert seen.auth == []
    with pytest.raises(stackwire.AuthError):
        await client.get("/x")
    assert calls == 2  # fetched again on the next call, not in a loop


async def test_no_credential_is_sent_to_another_origin(
    serve: Serve, make_client: MakeClient
) -> None:
    other = Seen(200)
    other_base = await start(serve, other)

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(other_base + "elsewhere")

    app = web.Application()
    app.router.add_get("/go", bounce)
    base = await serve(app)
    client = make_client(base, auth=BasicAuth("alice", "s3cret"))
    await client.get("/go")
    await client.get(other_base + "direct")
    assert other.auth == [None, None]


async def test_basic_auth_and_per_request_none(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen(200)
    base = await start(serve, seen)
    client = make_client(base, auth=BasicAuth("alice", "s3cret"))
    await client.get("/x")
    await client.get("/x", auth=None)
    await client.get("/x", auth=BasicAuth("bob", "pw"))
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert seen.auth == [expected, None, "Basic " + base64.b64encode(b"bob:pw").decode()]
    assert "s3cret" not in repr(client.pipeline) + str(client.pipeline)


async def test_per_request_none_sends_not_even_the_clients_api_key(
    serve: Serve, make_client: MakeClient
) -> None:
    seen: list[tuple[str | None, str | None]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.headers.get("Authorization"), request.headers.get("X-Api-Key")))
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/x", record)
    base = await serve(app)
    bearer = make_client(base, api_key="sk-canary")
    await bearer.get("/x", auth=None)
    await bearer.get("/x", auth=None, headers={"Authorization": "Bearer own"})  # the call's
    await bearer.get("/x")
    await make_client(base, api_key="sk-canary", api_key_header="X-Api-Key").get("/x", auth=None)
    assert seen == [
        (None, None),
        ("Bearer own", None),
        ("Bearer sk-canary", None),
        (None, None),
    ]


async def test_per_request_auth_on_a_client_without_one(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(200)
    base = await start(serve, seen)
    other = Seen(200)
    other_base = await start(serve, other)
    client = make_client(base)
    await client.get("/x", auth=BasicAuth("a", "b"))
    await client.get("/x", auth=None)
    await client.get(other_base + "y", auth=BasicAuth("a", "b"))  # another origin: none
    assert seen.auth == ["Basic " + base64.b64encode(b"a:b").decode(), None]
    assert other.auth == [None]
    assert "auth" not in client.pipeline.names  # the stack of its other calls
    with pytest.raises(stackwire.InvalidRequestError, match="auth must be an Auth"):
        await client.get("/x", auth="a-token")  # type: ignore[call-overload]


class HmacSigner(Signer):
    def __init__(self, key: bytes) -> None:
        self.key = key

    def sign(self, request: stackwire.Request) -> stackwire.Request:
        message = b"\n".join(
            [
                request.method.encode(),
                request.url.path_qs.encode(),
                request.headers.get("X-Retry-Count", "").encode(),
                request.body if isinstance(request.body, bytes) else b"",
            ]
        )
        return request.with_headers(
            {"X-Signature": hmac.new(self.key, message, hashlib.sha256).hexdigest()}
        )


async def test_signer_signs_every_attempt_with_the_final_headers_and_body(
    serve: Serve, make_client: MakeClient
) -> None:
    key = b"k3y"
    verdicts: list[bool] = []
    statuses = [503, 200]

    async def check(request: web.Request) -> web.Response:
        body = await request.read()
        message = b"\n".join(
            [
                request.method.encode(),
                request.path_qs.encode(),
                request.headers.get("X-Retry-Count", "").encode(),
                body,
            ]
        )
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        verdicts.append(request.headers.get("X-Signature") == expected)
        return web.json_response({}, status=statuses.pop(0))

    app = web.Application()
    app.router.add_post("/sign", check)
    base = await serve(app)
    client = make_client(base, auth=HmacSigner(key))
    await client.post("/sign", content=b"payload", query={"a": "1"})
    assert verdicts == [True, True]


async def test_signer_refuses_a_streamed_body_before_any_io(make_client: MakeClient) -> None:
    async def chunks() -> Any:
        yield b"x"

    client = make_client("http://127.0.0.1:9/", auth=HmacSigner(b"k"))
    with pytest.raises(stackwire.InvalidRequestError, match="streamed body"):
        await client.post("/x", content=chunks())


async def test_oauth2_client_credentials_grant_against_a_local_token_endpoint(
    serve: Serve, make_client: MakeClient
) -> None:
    grants: list[tuple[str | None, dict[str, str]]] = []

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        grants.append((request.headers.get("Authorization"), {k: str(v) for k, v in form.items()}))
        return web.json_response(
            {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600}
        )

    app = web.Application()
    app.router.add_post("/oauth/token", token)
    token_base = await serve(app)
    seen = Seen(200)
    base = await start(serve, seen)
    auth = OAuth2ClientCredentials(
        token_base + "oauth/token", "my app", "s3cret", scopes=("read", "write"), audience="api"
    )
    client = make_client(base, auth=auth)
    await client.get("/x")
    await client.get("/y")
    # RFC 6749 §2.3.1: id and secret form-urlencoded (a space is "+"), then base64.
    basic = "Basic " + base64.b64encode(b"my+app:s3cret").decode()
    assert grants == [
        (basic, {"grant_type": "client_credentials", "scope": "read write", "audience": "api"})
    ]
    assert seen.auth == ["Bearer at-1", "Bearer at-1"]
    assert "s3cret" not in repr(auth)


async def test_oauth2_token_endpoint_failure_is_an_auth_error_without_the_secret(
    serve: Serve, make_client: MakeClient
) -> None:
    async def token(request: web.Request) -> web.Response:
        return web.json_response({"error": "invalid_client"}, status=401)

    app = web.Application()
    app.router.add_post("/token", token)
    token_base = await serve(app)
    client = make_client(
        "http://127.0.0.1:9/", auth=OAuth2ClientCredentials(token_base + "token", "app", "s3cret")
    )
    with pytest.raises(stackwire.AuthError) as caught:
        await client.get("/x")
    assert isinstance(caught.value.__cause__, stackwire.AuthenticationError)
    assert "s3cret" not in str(caught.value) + repr(caught.value)


async def test_no_credential_on_a_hop_back_after_another_origin(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen(200)
    home_app = web.Application()
    back: list[str] = []

    async def go(request: web.Request) -> web.Response:
        raise web.HTTPFound(other_base + "bounce")

    home_app.router.add_get("/go", go)
    home_app.router.add_get("/back", seen.handle)
    home = await serve(home_app)

    async def bounce(request: web.Request) -> web.Response:
        back.append(request.headers.get("Authorization") or "")
        raise web.HTTPFound(home + "back")

    other_app = web.Application()
    other_app.router.add_get("/bounce", bounce)
    other_base = await serve(other_app)
    client = make_client(home, auth=BasicAuth("alice", "s3cret"))
    await client.get("/go")
    assert back == [""]
    assert seen.auth == [None]


TOKEN = "tok-canary-5e1f9a7c3b"
PASSWORD = "pw-canary-0d8e4b2a61"


async def _echo_credentials(request: web.Request) -> web.Response:
    # An API that quotes what it got back in its 401 (some do, in "debug" messages).
    return web.json_response(
        {"error": {"message": f"bad credentials: {request.headers.get('Authorization')}"}},
        status=401,
    )


@pytest.mark.parametrize(
    ("auth", "secret"),
    [
        (BearerToken(lambda: Token(TOKEN)), TOKEN),
        (BasicAuth("ada", PASSWORD), base64.b64encode(f"ada:{PASSWORD}".encode()).decode()),
    ],
)
async def test_a_credential_added_by_auth_never_shows_in_the_error(
    serve: Serve, make_client: MakeClient, auth: stackwire.Auth, secret: str
) -> None:
    app = web.Application()
    app.router.add_get("/denied", _echo_credentials)
    client = make_client(await serve(app), auth=auth, max_retries=0)
    with pytest.raises(stackwire.AuthenticationError) as info:
        await client.get("/denied")
    error = info.value
    shown = [str(error), repr(error), error.message, repr(error.body), repr(error.request)]
    shown += [repr(error.response), repr(auth), repr(client)]
    assert not [text for text in shown if secret in text or TOKEN in text or PASSWORD in text]
    assert "bad credentials" in str(error)


@pytest.mark.parametrize("value", ["", "a\r\nX-Injected: 1", "two words", "caf\u00e9", 123])
async def test_a_bad_token_value_fails_before_any_io_without_showing_it(
    serve: Serve, make_client: MakeClient, value: Any
) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="Token value must be"):
        Token(value)
    seen = Seen(200)
    base = await start(serve, seen)

    def fetch() -> Token:
        return Token(value)

    client = make_client(base, auth=BearerToken(fetch))
    with pytest.raises(stackwire.AuthError) as caught:
        await client.get("/x")
    assert isinstance(caught.value.__cause__, stackwire.InvalidRequestError)
    assert seen.auth == []
    if isinstance(value, str) and value:
        assert value not in str(caught.value) + repr(caught.value.__cause__)


@pytest.mark.parametrize("blocking", [False, True], ids=["async-fetch", "sync-fetch"])
async def test_a_fetch_that_hangs_fails_the_call_within_its_timeout(
    serve: Serve, make_client: MakeClient, blocking: bool
) -> None:
    seen = Seen(200)
    base = await start(serve, seen)
    released = threading.Event()

    def hang_sync() -> Token:
        released.wait(5)  # (a sync fetch runs in a worker thread: the loop goes on)
        return Token("late")

    async def hang_async() -> Token:
        for _ in range(1000):
            if released.is_set():
                break
            await asyncio.sleep(0.005)
        return Token("late")

    client = make_client(
        base, auth=BearerToken(hang_sync if blocking else hang_async), timeout=0.05
    )
    try:
        with pytest.raises(stackwire.AuthError, match=r"within 0\.05 s") as caught:
            await client.get("/x")
        assert isinstance(caught.value.__cause__, TimeoutError)
        with pytest.raises(stackwire.AuthError):  # with a deadline, too
            await client.get("/x", timeout=None, deadline=0.05)
    finally:
        released.set()
    assert seen.auth == []


async def test_one_bearer_token_serves_two_blocking_clients_at_once(serve: Serve) -> None:
    # Each fetch waits for the other: two clients (two loops) refresh at the same time.
    both = threading.Barrier(2, timeout=5)
    tokens = iter(["t1", "t2"])

    def fetch() -> Token:
        both.wait()
        return Token(next(tokens))

    seen = Seen(200)
    base = await start(serve, seen)
    auth = BearerToken(fetch)
    with stackwire.Client(base, auth=auth) as one, stackwire.Client(base, auth=auth) as two:
        await asyncio.gather(asyncio.to_thread(one.get, "/a"), asyncio.to_thread(two.get, "/b"))
        await asyncio.to_thread(one.get, "/c")
    assert sorted(str(value) for value in seen.auth[:2]) == ["Bearer t1", "Bearer t2"]
    assert seen.auth[2] in ("Bearer t1", "Bearer t2")


SECRET = "sec-canary-7f3a9c1e52"


@pytest.mark.parametrize("client_auth", ["basic", "body"])
async def test_oauth2_a_token_endpoint_echoing_the_secret_does_not_leak_it(
    serve: Serve, make_client: MakeClient, client_sleeps: SleepRecorder, client_auth: str
) -> None:
    answers = [503, 400]

    async def token(request: web.Request) -> web.Response:
        form = await request.post()
        sent = f"{form.get('client_secret')!s} {request.headers.get('Authorization')}"
        return web.json_response(
            {"error": "invalid_client", "error_description": f"bad: {sent}"},
            status=answers.pop(0),
        )

    app = web.Application()
    app.router.add_post("/token", token)
    auth = OAuth2ClientCredentials(
        await serve(app) + "token", "app", SECRET, client_auth=client_auth
    )
    client = make_client("http://127.0.0.1:9/", auth=auth)
    with pytest.raises(stackwire.AuthError) as caught:
        await client.get("/x")
    assert client_sleeps.delays  # the grant's backoff slept on the client's sleep
    basic = base64.b64encode(f"app:{SECRET}".encode()).decode()
    cause = caught.value.__cause__
    assert isinstance(cause, stackwire.BadRequestError)
    shown = [str(caught.value), repr(caught.value.args), str(cause), repr(cause.body)]
    assert "bad: " in shown[0]
    assert not [text for text in shown if SECRET in text or basic in text]


@pytest.mark.parametrize(
    "options",
    [{"scopes": "read write"}, {"scopes": ["a b"]}, {"audience": 5}, {"max_retries": -1}],
)
def test_oauth2_bad_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        OAuth2ClientCredentials("https://auth.test/token", "app", "pw", **options)
    with pytest.raises(stackwire.InvalidRequestError, match="token_url"):
        OAuth2ClientCredentials(5, "app", "pw")  # type: ignore[arg-type]
    shown = OAuth2ClientCredentials("https://app:pw-in-url@auth.test/token", "app", "pw")
    assert "pw-in-url" not in repr(shown)


async def test_a_logged_body_never_shows_the_credential_auth_added(
    serve: Serve, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    from stackwire.observability import LoggingMiddleware

    app = web.Application()
    app.router.add_get("/denied", _echo_credentials)
    client = make_client(
        await serve(app),
        auth=BearerToken(lambda: Token(TOKEN)),
        middlewares=[LoggingMiddleware(body=True)],
        max_retries=0,
    )
    with caplog.at_level("DEBUG", logger="stackwire"), pytest.raises(stackwire.AuthenticationError):
        await client.get("/denied")
    assert "bad credentials" in caplog.text
    assert TOKEN not in caplog.text


class _Broken(stackwire.Auth):
    def __init__(self, how: str) -> None:
        self.how = how

    async def authenticate(self, request: stackwire.Request, *, now: float) -> Any:
        if self.how == "raises":
            raise KeyError("vault")
        if self.how == "returns None":
            return None
        return request.with_headers({"X-Signature": "a\r\nX-Injected: 1"})


@pytest.mark.parametrize(
    ("how", "error"),
    [
        ("raises", stackwire.AuthError),
        ("returns None", stackwire.AuthError),
        ("adds a CR/LF header", stackwire.InvalidRequestError),
    ],
)
async def test_an_auth_of_the_applications_writing_fails_typed_before_any_io(
    serve: Serve, make_client: MakeClient, how: str, error: type[Exception]
) -> None:
    seen = Seen(200)
    client = make_client(await start(serve, seen), auth=_Broken(how))
    with pytest.raises(error):
        await client.get("/x")
    assert seen.auth == []


async def test_an_on_unauthorized_that_raises_is_an_auth_error_and_releases_the_401(
    serve: Serve, make_client: MakeClient
) -> None:
    class Refuses(BasicAuth):
        async def on_unauthorized(self, request: stackwire.Request, *, now: float) -> bool:
            raise KeyError("refresh endpoint")

    seen = Seen(401)
    client = make_client(await start(serve, seen), auth=Refuses("a", "b"))
    with pytest.raises(stackwire.AuthError) as caught:
        await client.get("/x")
    assert isinstance(caught.value.__cause__, KeyError)
    assert client.pool_stats().in_use == 0
    assert len(seen.auth) == 1


async def test_with_options_auth_on_a_client_with_added_middlewares(
    serve: Serve, make_client: MakeClient
) -> None:
    async def passing(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        return await call_next(request)

    seen = Seen(200)
    plain = make_client(await start(serve, seen)).with_middleware(passing)
    added = plain.with_options(auth=BasicAuth("a", "b"))  # the auth stage comes...
    await added.get("/x")
    await added.with_options(auth=None).get("/x")  # ...and goes
    assert seen.auth == ["Basic " + base64.b64encode(b"a:b").decode(), None]
    assert added.pipeline.names[-2:] == ["redirects", "auth"]


async def test_oauth2_grant_goes_through_the_clients_transport() -> None:
    # A token endpoint can be mocked like the API: the grant is sent through the
    # client's transport (here a MockTransport; nothing opens a socket).
    from stackwire.testing import MockResponse, MockTransport, Router

    router = Router("https://api.test/v1/")
    token = router.post("https://login.test/oauth/token").respond(
        json={"access_token": "tok-from-the-mock", "expires_in": 3600}
    )
    seen: list[str | None] = []

    @router.get("/me")
    def me(request: stackwire.Request) -> MockResponse:
        seen.append(request.headers.get("Authorization"))
        return MockResponse(json={"ok": True})

    oauth = OAuth2ClientCredentials("https://login.test/oauth/token", "app", "s3cret-value")
    async with stackwire.AsyncClient(
        "https://api.test/v1/", transport=MockTransport(router), auth=oauth
    ) as client:
        assert (
            await asyncio.gather(*(client.get("/me", cast_to=dict) for _ in range(3)))
            == [{"ok": True}] * 3
        )
    assert seen == ["Bearer tok-from-the-mock"] * 3
    assert len(token.calls) == 1
    (grant,) = token.calls
    assert grant.request.body == b"grant_type=client_credentials"
    assert grant.request.headers["Authorization"].startswith("Basic ")
