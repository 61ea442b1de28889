"""`Cassette`: records real exchanges over a loopback server, replays them with the
server gone, streams chunk for chunk, and never writes a credential."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

import stackwire
from stackwire import Request
from stackwire.testing import Cassette, MockResponse, MockTransport

API_KEY = "sk-canary-0123456789abcdef"
COOKIE = "session=canary-cookie-value"
TOKEN = "canary-access-token-42"
PASSWORD = "canary-password-hunter2"
CHUNKS = [b'data: {"text": "one"}\n\n', b'data: {"text": "two"}\n\n', b"data: [DONE]\n\n"]


class Delta(stackwire.Model):
    text: str


class User(stackwire.Model):
    id: int
    name: str


def _app() -> web.Application:
    count = 0

    async def user(request: web.Request) -> web.Response:
        return web.json_response(
            {"id": int(request.match_info["id"]), "name": "Ada"},
            headers={"Set-Cookie": f"{COOKIE}; HttpOnly", "x-request-id": "req_1"},
        )

    async def counter(request: web.Request) -> web.Response:
        nonlocal count
        count += 1
        return web.json_response({"n": count})

    async def echo(request: web.Request) -> web.Response:
        # An API that echoes the credential back must not leak it through the file.
        return web.json_response({"you_sent": request.headers.get("Authorization")})

    async def login(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"access_token": TOKEN, "token_type": "bearer"})

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in CHUNKS:
            await response.write(chunk)
            await asyncio.sleep(0.02)  # separate network chunks
        await response.write_eof()
        return response

    async def zipped(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(b'{"id": 5, "name": "Zip"}'),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_get("/users/{id}", user)
    app.router.add_get("/count", counter)
    app.router.add_get("/echo", echo)
    app.router.add_post("/login", login)
    app.router.add_get("/events", events)
    app.router.add_get("/zipped", zipped)
    return app


@pytest.fixture
async def live() -> AsyncIterator[TestServer]:
    server = TestServer(_app(), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def _session(base: str, cassette: Cassette) -> dict[str, object]:
    """The calls a test records and replays; what a user would see of them."""
    seen: dict[str, object] = {}
    async with stackwire.AsyncClient(
        base, api_key=API_KEY, transport=cassette, headers={"Cookie": COOKIE}
    ) as client:
        raw = await client.with_raw_response.get("/users/1", cast_to=User)
        seen["user"] = (await raw.parse(), raw.request_id, raw.status_code)
        seen["counts"] = [
            (await client.get("/count", cast_to=dict))["n"],
            (await client.get("/count", cast_to=dict))["n"],
        ]
        seen["echo"] = await client.get("/echo", cast_to=dict)
        seen["login"] = await client.post(
            "/login", data={"username": "ada", "password": PASSWORD}, cast_to=dict
        )
        seen["query"] = await client.get("/count", query={"api_key": API_KEY}, cast_to=dict)
        async with client.with_streaming_response.get("/events") as response:
            seen["chunks"] = [chunk async for chunk in response.iter_raw()]
        stream = await client.get("/events", cast_to=Delta, stream=True)
        seen["deltas"] = [delta.text async for delta in stream]
        seen["zipped"] = await client.get("/zipped", cast_to=User)
    return seen


async def test_record_then_replay_with_the_server_gone(live: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "session.json"
    base = str(live.make_url("/"))
    recorded = await _session(base, Cassette(path, mode="record"))
    await live.close()  # replay needs no server
    replayed = await _session(base, Cassette(path, mode="replay"))
    # Secrets in bodies were redacted before writing: the replay shows them so.
    assert replayed.pop("echo") == {"you_sent": "[redacted]"}
    assert replayed.pop("login") == {"access_token": "[redacted]", "token_type": "bearer"}
    assert recorded.pop("login") == {"access_token": TOKEN, "token_type": "bearer"}
    del recorded["echo"]
    assert replayed == recorded
    assert recorded["counts"] == [1, 2]  # repeats replay in recorded order
    assert recorded["chunks"] == CHUNKS  # the stream's own chunking, byte for byte
    assert recorded["deltas"] == ["one", "two"]
    assert recorded["zipped"] == User(id=5, name="Zip")


async def test_no_credential_is_ever_written(live: TestServer, tmp_path: Path) -> None:
    path = tmp_path / "secrets.json"
    base = str(live.make_url("/"))
    await _session(base, Cassette(path, mode="record"))
    # userinfo and secret query values, sent straight through the cassette
    cassette = Cassette(tmp_path / "url.json", mode="record", sensitive_headers=["X-Custom-Key"])
    url = live.make_url("/count").with_user("ada").with_password("canary-pw-in-url")
    request = Request(
        method="GET",
        url=url.with_query({"token": "canary-query-token", "page": "2"}),
        headers=stackwire.Request(method="GET", url=URL("http://x"))
        .with_headers({"X-Custom-Key": "canary-custom-header"})
        .headers,
    )
    response = await cassette.send(request)
    await response.read()
    await cassette.close()
    for written in (path, tmp_path / "url.json"):
        text = written.read_text()
        assert "canary" not in text.lower()
        assert "0123456789abcdef" not in text
    text = (tmp_path / "url.json").read_text()
    assert "page=2" in text
    assert "token=[redacted]" in text
    data = json.loads(path.read_text())
    first = data["interactions"][0]
    headers = first["request"]["headers"]
    assert headers["Authorization"] == "[redacted]"
    assert headers["Cookie"] == "[redacted]"
    assert first["response"]["headers"]["Set-Cookie"] == "[redacted]"
    assert first["response"]["chunks"] == ['{"id": 1, "name": "Ada"}']  # human-readable


async def test_once_records_when_the_file_is_missing_then_replays(
    live: TestServer, tmp_path: Path
) -> None:
    path = tmp_path / "once.json"
    base = str(live.make_url("/"))
    first = Cassette(path)
    assert first.mode == "record"
    async with stackwire.AsyncClient(base, transport=first) as client:
        assert await client.get("/count", cast_to=dict) == {"n": 1}
    second = Cassette(path)
    assert second.mode == "replay"
    async with stackwire.AsyncClient(base, transport=second) as client:
        assert await client.get("/count", cast_to=dict) == {"n": 1}  # not the server's 2
        with pytest.raises(AssertionError, match="all 1 recordings of it were replayed"):
            await client.get("/count")
        with pytest.raises(AssertionError, match=r"GET .*/users/9 .*never recorded"):
            await client.get("/users/9")
    await second.close()  # idempotent


async def test_matching_on_the_body_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "body.json"

    def answer(request: Request) -> MockResponse:
        assert isinstance(request.body, bytes)
        return MockResponse(json={"echo": json.loads(request.body)})

    recorder = Cassette(path, mode="record", transport=MockTransport(answer))
    async with stackwire.AsyncClient("https://api.test/", transport=recorder) as client:
        for n in (1, 2):
            await client.post("/search", json={"q": n})
    upload = tmp_path / "upload.json"
    mock = MockTransport(lambda request: MockResponse(json={}))
    async with stackwire.AsyncClient(
        "https://api.test/", transport=Cassette(upload, mode="record", transport=mock)
    ) as client:
        await client.post("/upload", files={"f": b"x"})
    by_body = Cassette(path, mode="replay")  # the default: method, URL and body
    async with stackwire.AsyncClient("https://api.test/", transport=by_body) as client:
        assert await client.post("/search", json={"q": 2}, cast_to=dict) == {"echo": {"q": 2}}
        assert await client.post("/search", json={"q": 1}, cast_to=dict) == {"echo": {"q": 1}}
    async with stackwire.AsyncClient(
        "https://api.test/", transport=Cassette(upload, mode="replay")
    ) as client:  # a multipart body's random boundary does not get in the way
        assert (await client.post("/upload", files={"f": b"x"})).status_code == 200
    by_url = Cassette(path, mode="replay", match=("method", "url"))
    async with stackwire.AsyncClient("https://api.test/", transport=by_url) as client:
        # body ignored (headers always are): recorded order
        assert await client.post("/search", json={"q": 2}, cast_to=dict) == {"echo": {"q": 1}}
        assert await client.post("/search", files={"f": b"x"}, cast_to=dict) == {"echo": {"q": 2}}


async def test_recorded_failures_replay_as_the_same_error(tmp_path: Path) -> None:
    path = tmp_path / "faults.json"
    recorder = Cassette(
        path, mode="record", transport=MockTransport(lambda request: MockResponse.timeout())
    )
    async with stackwire.AsyncClient("https://api.test/", transport=recorder) as client:
        with pytest.raises(stackwire.APITimeoutError):
            await client.get("/slow", max_retries=0)
    async with stackwire.AsyncClient(
        "https://api.test/", transport=Cassette(path, mode="replay")
    ) as client:
        with pytest.raises(stackwire.APITimeoutError, match="replayed from a cassette"):
            await client.get("/slow", max_retries=0)


def test_bad_cassette_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="does not exist"):
        Cassette(tmp_path / "missing.json", mode="replay")
    with pytest.raises(stackwire.InvalidRequestError, match="mode"):
        Cassette(tmp_path / "x.json", mode="rewind")  # type: ignore[arg-type]
    with pytest.raises(stackwire.InvalidRequestError, match="match"):
        Cassette(tmp_path / "x.json", match=("headers",))  # type: ignore[arg-type]


async def test_secrets_are_cut_out_wherever_an_api_echoes_them(tmp_path: Path) -> None:
    path = tmp_path / "echoes.json"

    def api(request: Request) -> MockResponse:
        if request.url.path == "/download":  # a presigned redirect: the next hop's query
            return MockResponse(302, headers={"Location": "/blob?sig=canary-signature"})
        cookies = dict(pair.split("=") for pair in request.headers["Cookie"].split("; "))
        return MockResponse(json={"query": request.url.raw_query_string, "cookies": cookies})

    cassette = Cassette(path, mode="record", transport=MockTransport(api))
    async with stackwire.AsyncClient(
        "https://api.test/", transport=cassette, headers={"Cookie": "a=canary-c1; b=canary-c2"}
    ) as client:
        await client.get("/download")
        # a Basic password echoed in the body, not only the base64 of the pair
        basic = {"Authorization": "Basic " + base64.b64encode(b"ada:canary-pw").decode()}
        await client.get("/echo", query={"password_was": "canary-pw"}, headers=basic)
        secrets = {"api_key": "canary/key+1==", "auth": {"token": "canary-t"}}
        await client.get("/echo", query=secrets)
    text = path.read_text()
    assert "canary" not in text, text
    assert '"Location": "/blob?sig=[redacted]"' in text
    async with stackwire.AsyncClient(
        "https://api.test/", transport=Cassette(path, mode="replay")
    ) as client:  # the redacted redirect replays too
        assert (await client.get("/download")).status_code == 200


async def test_secret_query_names_are_those_of_logs_and_spans(tmp_path: Path) -> None:
    # AWSAccessKeyId, a camelCase name ending in a secret word and a name ending in
    # "_<secret word>" are secrets in log lines, spans and attempt URLs: in the file too.
    path = tmp_path / "names.json"
    secrets = {
        "AWSAccessKeyId": "canary-aws",
        "pageToken": "canary-page",
        "my_api_key": "canary-suffix",
        "X-Goog-Signature": "canary-goog",
    }
    cassette = Cassette(path, mode="record", transport=MockTransport(lambda _: MockResponse()))
    async with stackwire.AsyncClient("https://api.test/", transport=cassette) as client:
        await client.get("/list", query={**secrets, "limit": 5})
        await client.post("/login", data={"clientSecret": "canary-form"})
        await client.post("/token", json={"grant": {"refreshToken": "canary-json"}, "n": 1})
    text = path.read_text()
    assert "canary" not in text, text
    assert "limit=5" in text
    async with stackwire.AsyncClient(
        "https://api.test/", transport=Cassette(path, mode="replay")
    ) as client:  # the live request is redacted the same way, so it still matches
        assert (await client.get("/list", query={**secrets, "limit": 5})).status_code == 200


async def test_a_body_cut_short_when_recorded_is_cut_short_when_replayed(tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    cut = MockResponse.connection_reset(
        after=[b'{"id": 1, '], headers={"Content-Type": "application/json"}
    )

    async def call(cassette: Cassette) -> None:
        async with stackwire.AsyncClient("https://api.test/", transport=cassette) as client:
            # retryable, as over the socket; not a body that fails validation
            with pytest.raises(stackwire.APIConnectionError, match="cut short"):
                await client.get("/users/1", cast_to=User, max_retries=0)

    await call(Cassette(path, mode="record", transport=MockTransport(lambda _: cut)))
    await call(Cassette(path, mode="replay"))


@pytest.mark.parametrize(
    "text",
    ["", "{not json", "[]", '{"stackwire_cassette": 2, "interactions": []}',
     '{"stackwire_cassette": 1, "interactions": [{"request": {"method": "GET"}}]}'],
)  # fmt: skip
def test_a_file_that_is_not_a_cassette_fails_at_once_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(text)
    with pytest.raises(stackwire.InvalidRequestError, match=r"broken\.json is not a stackwire"):
        Cassette(path, mode="replay")


def test_a_lone_name_or_a_wrong_transport_is_refused(tmp_path: Path) -> None:
    # sensitive_headers="X-Secret" would have redacted the letters of the name
    for options in ({"sensitive_headers": "X-Secret"}, {"secret_fields": "pin"}):
        with pytest.raises(stackwire.InvalidRequestError, match="iterable of names"):
            Cassette(tmp_path / "x.json", **options)  # type: ignore[arg-type]
    with pytest.raises(stackwire.InvalidRequestError, match="must be a Transport"):
        Cassette(tmp_path / "x.json", transport=object())  # type: ignore[arg-type]


async def test_a_call_cancelled_while_recording_leaves_the_rest_written(tmp_path: Path) -> None:
    path = tmp_path / "cancelled.json"

    async def api(request: Request) -> MockResponse:
        if request.url.path == "/hang":
            await asyncio.Event().wait()
        return MockResponse(json={"n": 1})

    inner = MockTransport(api)
    async with stackwire.AsyncClient(
        "https://api.test/", transport=Cassette(path, mode="record", transport=inner)
    ) as client:
        await client.get("/ok")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get("/hang"), 0.01)
    assert inner.closed  # closing wrote the file, then closed the transport under it
    written = json.loads(path.read_text())["interactions"]
    assert [item["request"]["url"] for item in written] == ["https://api.test/ok"]


async def test_a_secret_cut_out_of_a_path_still_replays(tmp_path: Path) -> None:
    path = tmp_path / "token.json"

    def api(request: Request) -> MockResponse:
        if request.url.path == "/login":
            return MockResponse(json={"token": "canary-token"})
        return MockResponse(json={"path": request.url.path})

    async def session(cassette: Cassette) -> object:
        async with stackwire.AsyncClient("https://api.test/", transport=cassette) as client:
            token = (await client.post("/login", cast_to=dict))["token"]
            return await client.get("/sessions/{t}", path_params={"t": token}, cast_to=dict)

    await session(Cassette(path, mode="record", transport=MockTransport(api)))
    assert "canary" not in path.read_text()
    # The replayed token is "[redacted]", which the client percent-encodes in the path.
    assert await session(Cassette(path, mode="replay")) == {"path": "/sessions/[redacted]"}
