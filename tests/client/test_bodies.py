"""Request bodies over real sockets: json, form, multipart files and streamed content."""

from __future__ import annotations

import asyncio
import enum
import io
import pathlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import IO, Any, cast

import pytest
from aiohttp import BodyPartReader, web

import stackwire
from stackwire._http.multipart import Part, encode_multipart, quote_param
from tests.conftest import RawServer, Serve, read_request, routes

MakeClient = Callable[..., stackwire.AsyncClient]


class Seen:
    """What the server received, one entry per request."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.content_types: list[str | None] = []
        self.transfer_encodings: list[str | None] = []


def echo_app(seen: Seen, *, fail_first: int = 0) -> web.Application:
    failures = [fail_first]

    async def handler(request: web.Request) -> web.Response:
        seen.bodies.append(await request.read())
        seen.content_types.append(request.headers.get("Content-Type"))
        seen.transfer_encodings.append(request.headers.get("Transfer-Encoding"))
        if failures[0]:
            failures[0] -= 1
            return web.json_response({"error": "busy"}, status=503)
        return web.json_response({"ok": True})

    return routes(("*", "/echo", handler))


async def multipart_parts(request: web.Request) -> list[dict[str, Any]]:
    """Every part as aiohttp's server parses it."""
    reader = await request.multipart()
    parts: list[dict[str, Any]] = []
    while True:
        part = await reader.next()
        if part is None:
            return parts
        assert isinstance(part, BodyPartReader)
        parts.append(
            {
                "name": part.name,
                "filename": part.filename,
                "content_type": part.headers.get("Content-Type"),
                "extra": part.headers.get("X-Part"),
                "content": bytes(await part.read()),
            }
        )


# -- json and form ---------------------------------------------------------------------


async def test_json_body_is_sent_byte_exact(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    await client.post("/echo", json={"name": "Ada", "tags": ["a", "b"], "n": 1.5})
    assert seen.bodies == [b'{"name":"Ada","tags":["a","b"],"n":1.5}']
    assert seen.content_types == ["application/json"]


async def test_not_given_and_omit_values_are_left_out_of_a_json_body(
    serve: Serve, make_client: MakeClient
) -> None:
    # An SDK method builds its body from parameters that default to NOT_GIVEN / omit.
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    await client.post(
        "/echo",
        json={
            "model": "m",
            "temperature": stackwire.NOT_GIVEN,
            "user": stackwire.omit,
            "options": {"seed": stackwire.omit, "n": 1, "stop": None},
            "messages": [{"role": "user", "name": stackwire.NOT_GIVEN}],
        },
    )
    await client.post("/echo", json={"only": stackwire.omit})
    assert seen.bodies == [
        b'{"model":"m","options":{"n":1,"stop":null},"messages":[{"role":"user"}]}',
        b"{}",
    ]
    with pytest.raises(stackwire.InvalidRequestError, match="NotGiven"):
        await client.post("/echo", json=[1, stackwire.NOT_GIVEN])  # no key to leave out
    assert len(seen.bodies) == 2


async def test_bytes_as_the_whole_json_body_are_refused_with_a_hint(
    serve: Serve, make_client: MakeClient
) -> None:
    # JSON already encoded, passed as json=: msgspec would send it as a base64 string.
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    for payload in (b'{"a": 1}', bytearray(b"[]"), memoryview(b"{}")):
        with pytest.raises(stackwire.InvalidRequestError, match=r"content=.*Content-Type"):
            await client.post("/echo", json=payload)
    assert seen.bodies == []
    await client.post("/echo", json={"blob": b"\x00\x01"})  # inside a value: base64
    assert seen.bodies == [b'{"blob":"AAE="}']


async def test_json_none_sends_no_body_like_the_other_body_keywords(
    serve: Serve, make_client: MakeClient
) -> None:
    # As data=None, content=None and files=None (and httpx's, aiohttp's json=None).
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    await client.post("/echo", json=None)
    await client.get("/echo", json=None)  # not "a GET request has no body"
    await client.post("/echo", json=None, files={"f": ("a.txt", b"x")})
    assert seen.bodies[:2] == [b"", b""]
    assert seen.content_types[:2] == [None, None]
    assert b'name="f"; filename="a.txt"' in seen.bodies[2]
    assert b"null" not in seen.bodies[2]


async def test_form_body_uses_the_query_rules(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    await client.post(
        "/echo",
        data={"q": "x y&z", "tags": ["a", "b"], "filter": {"min": 1}, "skip": None, "on": True},
    )
    assert seen.bodies == [b"q=x+y%26z&tags=a&tags=b&filter%5Bmin%5D=1&on=true"]
    assert seen.content_types == ["application/x-www-form-urlencoded"]


class Sort(enum.Enum):  # a plain Enum: msgspec sends its value as JSON, and so does a form
    NEWEST = "newest"


async def test_a_plain_enum_in_a_form_or_multipart_field_is_sent_as_its_value(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    await client.post("/echo", data={"sort": Sort.NEWEST, "also": [Sort.NEWEST]})
    await client.post("/echo", data={"sort": Sort.NEWEST}, files={"f": b"x"})
    await client.post("/echo", json={"sort": Sort.NEWEST})
    assert seen.bodies[0] == b"sort=newest&also=newest"
    assert b'name="sort"\r\n\r\nnewest\r\n' in seen.bodies[1]
    assert seen.bodies[2] == b'{"sort":"newest"}'


async def test_content_bytes_are_sent_as_given(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    payload = bytes(range(256)) * 3
    await client.put("/echo", content=payload, headers={"Content-Type": "application/x-raw"})
    await client.put("/echo", content=b"abc")
    assert seen.bodies == [payload, b"abc"]
    assert seen.content_types[0] == "application/x-raw"


async def test_get_and_head_send_no_body_and_no_content_type(
    raw_server: Any, make_client: MakeClient
) -> None:
    requests: list[tuple[str, dict[str, str]]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            line, headers, _ = await read_request(reader)
            requests.append((line, headers))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n")
            if line.startswith("GET"):
                writer.write(b"{}")
            await writer.drain()

    base, _server = await raw_server(handler)
    client = make_client(base)
    await client.get("/x", query={"a": 1})
    await client.request("HEAD", "/x")
    assert [line for line, _ in requests] == ["GET /x?a=1 HTTP/1.1", "HEAD /x HTTP/1.1"]
    for _, headers in requests:
        assert "content-type" not in headers
        assert "transfer-encoding" not in headers
        assert headers.get("content-length", "0") == "0"


# -- multipart -------------------------------------------------------------------------


async def test_files_of_every_kind_arrive_as_parsed_multipart(
    serve: Serve, make_client: MakeClient, tmp_path: pathlib.Path
) -> None:
    received: list[list[dict[str, Any]]] = []

    async def upload(request: web.Request) -> web.Response:
        received.append(await multipart_parts(request))
        return web.json_response({})

    report = tmp_path / "report.csv"
    report.write_bytes(b"a,b\n1,2\n")
    photo = tmp_path / "photo.bin"
    photo.write_bytes(b"\x00\xffimage")
    client = make_client(await serve(routes(("POST", "/upload", upload))))

    with photo.open("rb") as handle:
        await client.post(
            "/upload",
            data={"title": "Quarterly", "tags": ["x", "y"], "meta": {"v": 2}},
            files=[
                ("raw", b"\x01\x02"),
                ("memory", io.BytesIO(b"in memory")),
                ("path", report),
                ("handle", handle),
                ("tuple", ("notes.txt", b"hello")),
                ("typed", ("data.bin", b"\x00", "application/x-custom")),
                ("headed", ("h.json", b"{}", None, {"X-Part": "yes"})),
                ("nameless", (None, b"no filename")),
                ("raw", b"again"),
            ],
        )

    assert received == [
        [
            {"name": "title", "filename": None, "content_type": None, "extra": None,
             "content": b"Quarterly"},
            {"name": "tags", "filename": None, "content_type": None, "extra": None,
             "content": b"x"},
            {"name": "tags", "filename": None, "content_type": None, "extra": None,
             "content": b"y"},
            {"name": "meta[v]", "filename": None, "content_type": None, "extra": None,
             "content": b"2"},
            {"name": "raw", "filename": "upload", "content_type": "application/octet-stream",
             "extra": None, "content": b"\x01\x02"},
            {"name": "memory", "filename": "upload",
             "content_type": "application/octet-stream", "extra": None, "content": b"in memory"},
            {"name": "path", "filename": "report.csv", "content_type": "text/csv",
             "extra": None, "content": b"a,b\n1,2\n"},
            {"name": "handle", "filename": "photo.bin",
             "content_type": "application/octet-stream", "extra": None,
             "content": b"\x00\xffimage"},
            {"name": "tuple", "filename": "notes.txt", "content_type": "text/plain",
             "extra": None, "content": b"hello"},
            {"name": "typed", "filename": "data.bin", "content_type": "application/x-custom",
             "extra": None, "content": b"\x00"},
            {"name": "headed", "filename": "h.json", "content_type": "application/json",
             "extra": "yes", "content": b"{}"},
            {"name": "nameless", "filename": None,
             "content_type": "application/octet-stream", "extra": None,
             "content": b"no filename"},
            {"name": "raw", "filename": "upload", "content_type": "application/octet-stream",
             "extra": None, "content": b"again"},
        ]
    ]  # fmt: skip


async def test_a_callers_multipart_content_type_gets_a_boundary_or_keeps_its_own(
    serve: Serve, make_client: MakeClient
) -> None:
    # SDKs often set "Content-Type: multipart/form-data" on upload calls: it replaced
    # the computed header, so the body went out with no boundary to parse it by.
    received: list[tuple[str, list[dict[str, Any]]]] = []

    async def upload(request: web.Request) -> web.Response:
        received.append((request.headers["Content-Type"], await multipart_parts(request)))
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/upload", upload))))
    files = {"file": ("a.txt", b"hello")}
    await client.post("/upload", files=files, headers={"Content-Type": "multipart/form-data"})
    await client.post(
        "/upload",
        data={"purpose": "test"},
        files=files,
        headers={"content-type": 'multipart/form-data; boundary="my-boundary-42"'},
    )
    (first_type, first), (second_type, second) = received
    assert first_type.startswith("multipart/form-data; boundary=stackwire-")
    assert [part["content"] for part in first] == [b"hello"]
    assert second_type == 'multipart/form-data; boundary="my-boundary-42"'
    assert [(part["name"], part["content"]) for part in second] == [
        ("purpose", b"test"),
        ("file", b"hello"),
    ]


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=" + "b" * 71,
        "multipart/form-data; boundary=has[brackets]",
        "multipart/form-data; boundary=caf\u00e9",
        'multipart/form-data; boundary="in-the-content"',
    ],
)
async def test_an_unusable_caller_boundary_fails_before_any_io(
    echo_server: Callable[[], Any], make_client: MakeClient, content_type: str
) -> None:
    base, server = await echo_server()
    client = make_client(base)
    with pytest.raises(stackwire.InvalidRequestError, match="multipart boundary"):
        await client.post(
            "/upload",
            files={"f": b"x --in-the-content y"},
            headers={"Content-Type": content_type},
        )
    assert server.requests == []


async def test_a_json_mapping_with_files_becomes_form_fields(
    serve: Serve, make_client: MakeClient
) -> None:
    received: list[dict[str, Any]] = []

    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        received.append({"purpose": form["purpose"], "file": (upload.filename, upload.file.read())})
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/files", upload))))
    await client.post("/files", json={"purpose": "fine-tune"}, files={"file": ("a.jsonl", b"{}")})
    assert received == [{"purpose": "fine-tune", "file": ("a.jsonl", b"{}")}]


async def test_filenames_cannot_inject_headers_or_parts(
    serve: Serve, make_client: MakeClient
) -> None:
    received: list[list[dict[str, Any]]] = []

    async def upload(request: web.Request) -> web.Response:
        received.append(await multipart_parts(request))
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/upload", upload))))
    evil = 'evil"; name="admin"\r\nX-Part: injected\r\n\r\n.txt'
    await client.post("/upload", files={'f"x': (evil, b"data")})

    assert len(received[0]) == 1
    part = received[0][0]
    assert part["extra"] is None
    assert part["name"] == "f%22x"
    assert part["filename"] == "evil%22; name=%22admin%22%0D%0AX-Part: injected%0D%0A%0D%0A.txt"
    assert part["content"] == b"data"
    assert quote_param('a"\r\n') == '"a%22%0D%0A"'


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"f": ("evil.php\x00.jpg", b"1")}, id="nul-in-filename"),
        pytest.param({"f": ("a\x0bb\x7f", b"1")}, id="controls-in-filename"),
        pytest.param({"f\x00": b"1"}, id="nul-in-field-name"),
        pytest.param({"f": ("a\ud800.txt", b"1")}, id="lone-surrogate-in-filename"),
        pytest.param({"f\udcff": b"1"}, id="lone-surrogate-in-field-name"),
    ],
)
async def test_a_control_character_or_lone_surrogate_in_a_part_name_fails_before_any_io(
    serve: Serve, make_client: MakeClient, files: dict[str, Any]
) -> None:
    # A server that reads names as C strings takes "evil.php\0.jpg" for "evil.php"; a
    # lone surrogate has no UTF-8 form (it escaped as a bare UnicodeEncodeError).
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    with pytest.raises(stackwire.InvalidRequestError, match="control character or a lone"):
        await client.post("/echo", files=files)
    with pytest.raises(stackwire.InvalidRequestError, match="control character or a lone"):
        await client.post("/echo", data={"a\x01": "1"}, files={"f": b"1"})
    assert seen.bodies == []
    await client.post("/echo", files={"f": ("tab\there é\u2028.txt", b"1")})  # these may go
    assert b'filename="tab\there \xc3\xa9\xe2\x80\xa8.txt"' in seen.bodies[0]


async def test_backslashes_in_names_and_filenames_reach_the_server_unchanged(
    serve: Serve, make_client: MakeClient
) -> None:
    # Servers read the quoted parameter with RFC 9110 quoted-pairs (aiohttp, werkzeug,
    # python-multipart): a bare backslash escapes the next character (werkzeug
    # turned "a\\b.bin" into "ab.bin") and a trailing one escapes the closing quote.
    received: list[list[dict[str, Any]]] = []

    async def upload(request: web.Request) -> web.Response:
        received.append(await multipart_parts(request))
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/upload", upload))))
    await client.post(
        "/upload",
        files=[("f\\1", ("a\\b.bin", b"x")), ("g", ("dir\\", b"y")), ("h", ('q\\"', b"z"))],
    )

    assert [(part["name"], part["filename"]) for part in received[0]] == [
        ("f\\1", "a\\b.bin"),
        ("g", "dir\\"),
        ("h", "q\\%22"),
    ]
    assert quote_param("a\\b") == '"a\\\\b"'


async def test_multipart_boundary_is_random_and_not_in_the_content(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    for _ in range(2):
        await client.post("/echo", files={"f": b"--stackwire-"})
    boundaries = [ct.split("boundary=")[1] for ct in seen.content_types if ct]
    assert len(set(boundaries)) == 2
    for boundary, body in zip(boundaries, seen.bodies, strict=True):
        assert boundary.startswith("stackwire-")
        assert len(boundary) == len("stackwire-") + 32
        assert body.count(boundary.encode()) == 2  # the delimiter and the close delimiter
    body, content_type = encode_multipart(
        [Part(name="a", content=b"stackwire-" + b"0" * 32)], boundary=None
    )
    assert content_type.split("boundary=")[1].encode() not in b"stackwire-" + b"0" * 32


async def test_multipart_is_resent_byte_exact_on_retry_and_read_once(
    serve: Serve, make_client: MakeClient, client_sleeps: Any
) -> None:
    seen = Seen()
    reads: list[str] = []

    class CountingFile(io.RawIOBase):
        name = "/tmp/counted.txt"

        def read(self, size: int = -1) -> bytes:
            reads.append(threading.current_thread().name)
            return b"counted content"

    client = make_client(await serve(echo_app(seen, fail_first=1)))
    await client.post("/echo", files={"f": cast("IO[bytes]", CountingFile())}, data={"k": "v"})

    assert len(seen.bodies) == 2
    assert seen.bodies[0] == seen.bodies[1]
    assert b"counted content" in seen.bodies[0]
    assert seen.content_types[0] == seen.content_types[1]
    assert len(reads) == 1
    assert reads[0] != threading.current_thread().name  # read in a worker thread
    assert len(client_sleeps.delays) == 1


class AsyncFile:
    """An async file object, as aiofiles and anyio open them: ``await f.read()``."""

    def __init__(self, content: bytes, name: str) -> None:
        self.name = name
        self._content = content

    async def read(self) -> bytes:
        await asyncio.sleep(0)
        return self._content


async def test_an_async_file_object_is_awaited(serve: Serve, make_client: MakeClient) -> None:
    received: list[list[dict[str, Any]]] = []

    async def upload(request: web.Request) -> web.Response:
        received.append(await multipart_parts(request))
        return web.json_response({})

    client = make_client(await serve(routes(("POST", "/upload", upload))))
    files: list[tuple[str, AsyncFile | tuple[str, AsyncFile]]] = [
        ("a", AsyncFile(b"one", "/tmp/one.csv")),
        ("b", ("x.bin", AsyncFile(b"two", ""))),
    ]
    await client.post("/upload", files=files)
    assert [(p["name"], p["filename"], p["content_type"], p["content"]) for p in received[0]] == [
        ("a", "one.csv", "text/csv", b"one"),
        ("b", "x.bin", "application/octet-stream", b"two"),
    ]


async def test_paths_are_read_off_the_event_loop(
    serve: Serve, make_client: MakeClient, tmp_path: pathlib.Path
) -> None:
    threads: list[str] = []

    class SpyPath(type(pathlib.Path())):  # type: ignore[misc]
        def read_bytes(self) -> bytes:
            threads.append(threading.current_thread().name)
            return super().read_bytes()  # type: ignore[no-any-return]

    target = SpyPath(tmp_path / "big.bin")
    target.write_bytes(b"x" * 100_000)
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    await client.post("/echo", files={"f": target})
    assert len(threads) == 1
    assert threads[0] != threading.current_thread().name
    assert b"x" * 100_000 in seen.bodies[0]


# -- streamed content ------------------------------------------------------------------


async def test_async_iterable_is_streamed_once_and_only_after_sending_starts(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()
    events: list[str] = []
    starts = [0]

    async def chunks() -> AsyncIterator[bytes]:
        starts[0] += 1
        events.append("first chunk pulled")
        for i in range(5):
            yield f"chunk-{i};".encode()
            await asyncio.sleep(0)

    async def mark(request: stackwire.Request, call_next: stackwire.CallNext) -> Any:
        events.append("sending")
        return await call_next(request)

    client = make_client(await serve(echo_app(seen)), middlewares=[mark])
    body = chunks()
    await client.post("/echo", content=body)

    assert events == ["sending", "first chunk pulled"]
    assert starts == [1]
    assert seen.bodies == [b"chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;"]
    assert seen.transfer_encodings == ["chunked"]


async def test_a_streamed_body_is_never_resent(serve: Serve, make_client: MakeClient) -> None:
    seen = Seen()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"once"

    client = make_client(await serve(echo_app(seen, fail_first=1)), max_retries=2)
    with pytest.raises(stackwire.ServiceUnavailableError):
        await client.post("/echo", content=chunks())
    assert seen.bodies == [b"once"]


class BodyFailure(Exception):
    pass


async def test_a_failing_content_iterable_is_the_callers_error_not_a_connection_error(
    serve: Serve, make_client: MakeClient
) -> None:
    # aiohttp reports the iterable's exception as "Failed to send bytes into the
    # underlying connection": it was an APIConnectionError, as if the network had failed.
    seen = Seen()

    async def failing() -> AsyncIterator[bytes]:
        yield b"part one;"
        raise BodyFailure("the upload source broke")

    client = make_client(await serve(echo_app(seen)), max_retries=2)
    with pytest.raises(stackwire.InvalidRequestError, match="the upload source broke") as info:
        await client.post("/echo", content=failing())
    assert not isinstance(info.value, stackwire.APIError)
    assert isinstance(info.value.__cause__, BodyFailure)
    assert "BodyFailure" in str(info.value)
    assert client.pool_stats().in_use == 0


async def test_a_content_iterable_giving_text_is_an_invalid_request(
    serve: Serve, make_client: MakeClient
) -> None:
    seen = Seen()

    async def text() -> AsyncIterator[Any]:
        yield b"bytes first, "
        yield "then a str"

    client = make_client(await serve(echo_app(seen)), max_retries=2)
    with pytest.raises(stackwire.InvalidRequestError, match="content= must yield bytes, got str"):
        await client.post("/echo", content=text())
    assert client.pool_stats().in_use == 0
    # The connection it broke is gone; the next call is fine.
    assert (await client.post("/echo", content=b"ok")).json() == {"ok": True}


async def test_a_streamed_body_with_its_content_length_is_sent_unchunked(
    serve: Serve, make_client: MakeClient
) -> None:
    # An upload to an API that refuses chunked bodies (a presigned object-store PUT).
    seen = Seen()

    async def chunks() -> AsyncIterator[bytes]:
        yield b"abc"
        yield b"def"

    client = make_client(await serve(echo_app(seen)))
    await client.put("/echo", content=chunks(), headers={"Content-Length": "6"})
    await client.post("/echo", content=b"abcdef", headers={"content-length": "6"})
    assert seen.bodies == [b"abcdef", b"abcdef"]
    assert seen.transfer_encodings == [None, None]
    with pytest.raises(stackwire.InvalidRequestError, match="not the body's length"):
        await client.post("/echo", content=b"abcdef", headers={"Content-Length": "1"})
    with pytest.raises(stackwire.InvalidRequestError, match="Content-Length"):
        await client.put("/echo", content=chunks(), headers={"Content-Length": "-6"})
    assert len(seen.bodies) == 2


async def test_a_streamed_body_of_another_length_than_its_content_length_fails(
    raw_server: Any, make_client: MakeClient
) -> None:
    # Sent short, the server would wait for the rest, and then read the next request on
    # the connection as the rest of this body; sent long, the extra bytes were dropped.
    bodies: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, _, body = await read_request(reader)  # reads exactly its Content-Length
            bodies.append(body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    def chunks(*parts: bytes) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            for part in parts:
                yield part

        return gen()

    base, server = await raw_server(handler)
    client = make_client(base, timeout=5.0)
    length = {"Content-Length": "10"}
    with pytest.raises(stackwire.InvalidRequestError, match=r"gave 3 bytes .*'Content-Length: 10'"):
        await client.put("/u", content=chunks(b"abc"), headers=length)
    with pytest.raises(stackwire.InvalidRequestError, match=r"more than .*'Content-Length: 10'"):
        await client.put("/u", content=chunks(b"0123456", b"789ab"), headers=length)
    await client.put("/u", content=chunks(b"01234", b"56789"), headers=length)
    await client.put("/u", content=chunks(), headers={"Content-Length": "0"})
    assert bodies == [b"0123456789", b""]  # the refused ones never reached the server
    assert server.connections == 3  # a refused body's connection is not reused
    assert client.pool_stats().in_use == 0


# -- bad input -------------------------------------------------------------------------


async def test_conflicting_or_bad_bodies_fail_before_any_io(
    serve: Serve, make_client: MakeClient, tmp_path: pathlib.Path
) -> None:
    seen = Seen()
    client = make_client(await serve(echo_app(seen)))
    missing = tmp_path / "missing.bin"

    async def stream() -> AsyncIterator[bytes]:
        yield b"x"

    cases: list[tuple[dict[str, Any], str]] = [
        ({"json": {"a": 1}, "content": b"x"}, "content= cannot be combined with json="),
        ({"files": {"f": missing}, "content": b"x"}, "content= cannot be combined with files="),
        ({"data": {"a": 1}, "content": b"x"}, "content= cannot be combined with data="),
        ({"json": {"a": 1}, "data": {"b": 2}}, "json= and data= cannot be combined"),
        ({"json": [1, 2], "files": {"f": b"x"}}, "as a mapping"),
        ({"data": [("a", 1)]}, "data= must be a mapping"),
        ({"content": "text"}, r"encode text first \(content=text.encode\(\)\)"),
        ({"content": [b"a", b"b"]}, "bytes or an async iterable"),
        ({"files": {"f": "text"}}, "encode text first, or send it in data="),
        ({"files": ["f"]}, "list of \\(field, file\\) pairs"),
        ({"files": {"f": ("a", b"x", "text/plain\r\nX: y")}}, "CR, LF or NUL"),
        ({"files": {"f": ("a", b"x", None, {"X-A": "1\r\n"})}}, "CR, LF or NUL"),
        ({"files": {"f": ("a", b"x", None, {"Content-Type": "x"})}}, "not in its headers"),
        ({"files": {"f": ("a",)}}, "got a tuple of 1"),
        ({"files": {"f": missing}}, "cannot read"),
        ({"files": {"f": io.StringIO("text")}}, "binary mode"),
    ]
    for kwargs, message in cases:
        with pytest.raises(stackwire.InvalidRequestError, match=message):
            await client.post("/echo", **kwargs)
    for kwargs in ({"json": {"a": 1}}, {"data": {"a": 1}}, {"files": {"f": missing}}):
        with pytest.raises(stackwire.InvalidRequestError, match="GET request has no body"):
            await client.get("/echo", **kwargs)
    with pytest.raises(stackwire.InvalidRequestError, match="HEAD request has no body"):
        await client.request("HEAD", "/echo", content=stream())
    assert seen.bodies == []
    assert client.pool_stats().in_use == 0


async def test_raw_server_sees_a_complete_multipart_request(
    raw_server: Any, make_client: MakeClient
) -> None:
    got: list[tuple[dict[str, str], bytes]] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers, body = await read_request(reader)
        got.append((headers, body))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()

    base, server = await raw_server(handler)
    assert isinstance(server, RawServer)
    client = make_client(base)
    await client.post("/u", files={"f": ("a.txt", b"hi")})
    headers, body = got[0]
    boundary = headers["content-type"].split("boundary=")[1]
    assert headers["content-length"] == str(len(body))
    assert (
        body
        == (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="f"; filename="a.txt"\r\n'
            "Content-Type: text/plain\r\n\r\n"
            f"hi\r\n--{boundary}--\r\n"
        ).encode()
    )
