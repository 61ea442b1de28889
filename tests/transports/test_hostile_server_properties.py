"""A hostile (or broken) server, generated: whatever bytes come back, a call returns
the right value or raises a stackwire error, never hangs, leaves no connection in
use, never reuses a connection that saw garbage, and never shows the API key.

A raw server on 127.0.0.1 answers ``/hostile`` with bytes built by hypothesis (odd
status lines, 1xx answers, conflicting framing, broken chunking, folded and binary
headers, corrupt compressed bodies, extra bytes, a second response, a cut at any
offset) and ``/good`` with a sound response naming a fresh number, so a good call on
the same client after each example shows whether leftovers reached it. The examples
are derandomized and bounded (``STACKWIRE_FUZZ_EXAMPLES`` raises the count).
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import os
import re
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stackwire
from stackwire.testing import VirtualTime
from tests.conftest import read_request

CANARY = "sk-canary-7f3e9b1d"
TOKEN = "tok"
BODY = b'{"ok":"' + TOKEN.encode() + b'"}'
EVENTS = b"data: " + BODY + b"\n\n"  # the same value, as a stream of one event
CAP = 4096  # max_response_bytes of every client here
EXAMPLES = int(os.environ.get("STACKWIRE_FUZZ_EXAMPLES", "100"))
CALL_LIMIT = 4.0  # seconds: longer is a hang (each attempt's own limit is far below)
TIMEOUT = stackwire.Timeout(total=1.0, connect=1.0, read=0.15)


@dataclass
class Script:
    """What the server does on ``/hostile``."""

    pieces: list[bytes]  # written in turn, a loop turn apart
    early: bool = False  # answer before reading the request
    close: bool = True  # close the connection after the answer (else keep reading)


@dataclass
class ScriptedServer:
    script: Script = field(default_factory=lambda: Script([b""]))
    good: int = 0
    early_pending: bool = False
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            script = self.script
            # Only the first connection after the script is set answers early (the
            # next call's, ``/good``, would get the hostile bytes otherwise).
            early, self.early_pending = self.early_pending, False
            while True:
                if early:
                    await self._answer(writer, script)
                head = await reader.readuntil(b"\r\n\r\n")
                match = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
                if match:
                    await reader.readexactly(int(match[1]))
                if head.split(b" ", 2)[1].startswith(b"/good"):
                    self.good += 1
                    body = b'{"good":%d}' % self.good
                    writer.write(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                    )
                    await writer.drain()
                    continue
                if not early:
                    await self._answer(writer, script)
                if script.close:
                    return
                early = False
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)

    async def _answer(self, writer: asyncio.StreamWriter, script: Script) -> None:
        for index, piece in enumerate(script.pieces):
            if index:
                await asyncio.sleep(0.002)  # (a read of its own on the client)
            writer.write(piece)
            await writer.drain()

    async def finished(self) -> None:
        """Wait until every connection is closed (its close seen by the client)."""
        for _ in range(1000):
            if not self.tasks:
                break
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.001)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.server.wait_closed()


# -- generated responses ----------------------------------------------------------------

STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 200 OK",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 ",
    b"HTTP/1.1 201 \xff\xfe\x80",
    b"HTTP/0.9 200 OK",
    b"HTTP/2 200",
    b"HTTP/1.1 2OO OK",
    b"HTTP/1.1 999 Beyond",
    b"HTTP/1.1 099 Below",
    b"HTTP/1.1 99999999999999999999 Huge",
    b"HTTP/1.1 -20 Negative",
    b"HTTP/1.1 101 Switching Protocols",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 302 Found",
    b"HTTP/1.1 404 Not Found",
    b"HTTP/1.1 429 Slow Down",
    b"HTTP/1.1 503 Busy",
    b"ICY 200 OK",
    b"200 OK",
    b"",
    b"\x00\x01\x02",
]
INFORMATIONAL = [
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 102 Processing\r\n\r\n",
    b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
]
HEADER_LINES = [
    b"X-Request-Id: req-\xff\xfe\xc3\x28",
    b"X-Request-Id: \xe2\x82\xac\x00",
    b"Retry-After: \xd9\xa3",
    b"Retry-After: 1e9999",
    b"Retry-After: -1",
    b"Retry-After: 0",
    b"Retry-After-Ms: \xff",
    b"Location: /elsewhere\xff\xfe",
    b"Location: \xc3\x28\x00",
    b"Location: http://[::1",
    b"Location: /hostile",
    b'Link: </hostile?page=2\xff>; rel="next"',
    b"Link: <\x00>; rel=next",
    b"RateLimit-Limit: \xff\xfe",
    b"RateLimit: limit=\xff, remaining=-1, reset=1e99",
    b"X-RateLimit-Remaining: NaN",
    b"X-Should-Retry: \xff",
    b"Content-Type: application/json; charset=\xff\xfe",
    b"Content-Type: application/json; charset=utf-7",
    b"Content-Type: application/json; charset=no-such-codec",
    b"Content-Type: text/event-stream",
    b"Content-Type: \x00",
    b"X-Folded: first\r\n  continued",
    b" leading-space: value",
    b"X-Nul\x00Name: value",
    b"X-Cr: va\rlue",
    b"X-Bare-Lf: one\ntwo",
    b"No-Colon-Here",
    b": empty-name",
    b"X-Huge: " + b"a" * 9000,
    b"Connection: close",
    b"Connection: keep-alive, upgrade",
    b"Upgrade: websocket",
    b"Content-Encoding: gzip",
    b"Content-Encoding: br",
    b"Content-Encoding: deflate, gzip",
    b"Content-Encoding: \xff",
    b"Set-Cookie: a=\xff",
    b"WWW-Authenticate: Bearer realm=\xff",
    b"X-Echo: Bearer " + CANARY.encode(),  # a server that quotes the key back
    b"X-Echo: Bearer " + CANARY.encode() + b"\xff\x00",
]
header_lines = st.one_of(
    st.sampled_from(HEADER_LINES),
    st.sampled_from(HEADER_LINES),
    st.sampled_from(HEADER_LINES),
    st.builds(
        lambda name, value: name + b": " + value,
        st.binary(min_size=1, max_size=8),
        st.binary(max_size=16),
    ),
)


def _chunked(
    body: bytes, sizes: list[int], size_of: Callable[[int], bytes], style: dict[str, bytes]
) -> bytes:
    """``body`` chunked in pieces of ``sizes`` (the rest in one), the sizes written by
    ``size_of``, with ``style``'s chunk extension and trailer."""
    out = []
    rest = body
    for size in sizes:
        part, rest = rest[:size], rest[size:]
        if part:
            out.append(size_of(len(part)) + style["ext"] + b"\r\n" + part + b"\r\n")
    if rest:
        out.append(size_of(len(rest)) + b"\r\n" + rest + b"\r\n")
    return b"".join(out) + b"0" + style["ext"] + b"\r\n" + style["trailer"] + b"\r\n"


CHUNK_SIZE_STYLES: dict[str, Callable[[int], bytes]] = {
    "plain": lambda n: b"%x" % n,
    "upper": lambda n: b"%X" % n,
    "zeros": lambda n: b"000%x" % n,
    "space-before": lambda n: b" %x" % n,
    "space-after": lambda n: b"%x " % n,
    "overflow": lambda n: b"1" + b"0" * 20 + b"%x" % n,
    "signed": lambda n: b"+%x" % n,
    "0x": lambda n: b"0x%x" % n,
}


@st.composite
def framings(draw: st.DrawFn, body: bytes) -> tuple[list[bytes], bytes]:
    """The framing headers and the framed body."""
    kind = draw(
        st.sampled_from(
            [
                "length",
                "length",
                "length-twice",
                "length-conflict",
                "length-list",
                "length-odd",
                "chunked",
                "chunked",
                "chunked-and-length",
                "other-coding",
                "none",
            ]
        )
    )
    n = len(body)
    if kind == "length":
        return [b"Content-Length: %d" % n], body
    if kind == "length-twice":
        return [b"Content-Length: %d" % n, b"Content-Length: %d" % n], body
    if kind == "length-conflict":
        other = max(0, n + draw(st.integers(-5, 5)))
        return [b"Content-Length: %d" % n, b"Content-Length: %d" % other], body
    if kind == "length-list":
        return [b"Content-Length: %d, %d" % (n, n)], body
    if kind == "length-odd":
        value = draw(
            st.sampled_from(
                [b"+%d" % n, b"0x%x" % n, b" %d " % n, b"-1", b"9" * 30, b"%d\xff" % n, b""]
            )
        )
        return [b"Content-Length: " + value], body
    if kind == "other-coding":
        coding = draw(
            st.sampled_from([b"gzip", b"chunked, chunked", b"identity", b"chunked, gzip", b"\xff"])
        )
        return [b"Transfer-Encoding: " + coding], body
    if kind == "none":
        return [], body
    sizes = draw(st.lists(st.integers(1, 8), max_size=3))
    size_of = CHUNK_SIZE_STYLES[draw(st.sampled_from(sorted(CHUNK_SIZE_STYLES)))]
    style = {
        "ext": draw(st.sampled_from([b"", b";name=value", b';q="a\\"b"', b";\xff", b" ; x"])),
        "trailer": draw(
            st.sampled_from([b"", b"X-Trailer: yes\r\n", b"Content-Length: 1\r\n", b"\xff\r\n"])
        ),
    }
    framed = _chunked(body, sizes, size_of, style)
    te = [b"Transfer-Encoding: chunked"]
    if kind == "chunked-and-length":
        te.append(b"Content-Length: %d" % len(framed))
    return te, framed


@st.composite
def encoded_bodies(draw: st.DrawFn, plain: bytes) -> tuple[list[bytes], bytes]:
    """The Content-Encoding headers and the body bytes (maybe corrupt, maybe big)."""
    # Past the cap, before or after decompression (a stream has no cap but its events').
    if plain == BODY and draw(st.integers(0, 9)) == 0:
        plain = plain.replace(TOKEN.encode(), b"x" * (CAP + 100))
    coding = draw(
        st.sampled_from(
            ["none", "none", "gzip", "gzip-cut", "gzip-flipped", "deflate", "deflate-raw", "br"]
        )
    )
    if coding == "none":
        return [], plain
    if coding.startswith("gzip"):
        data = gzip.compress(plain)
        if coding == "gzip-cut":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif coding == "gzip-flipped":
            at = draw(st.integers(0, len(data) - 1))
            data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        return [b"Content-Encoding: gzip"], data
    if coding == "deflate":
        return [b"Content-Encoding: deflate"], zlib.compress(plain)
    if coding == "deflate-raw":
        compressor = zlib.compressobj(wbits=-15)
        return [b"Content-Encoding: deflate"], compressor.compress(plain) + compressor.flush()
    return [b"Content-Encoding: br"], b"\x8b\x03\x80" + plain  # not br (no decoder here)


@st.composite
def scripts(draw: st.DrawFn) -> tuple[Script, bytes, str]:
    """A hostile answer and its final status line: a sound response with one or two
    flaws (so that each flaw is reached, not hidden behind a broken status line)."""
    flaws = set(
        draw(
            st.lists(
                st.sampled_from(
                    [
                        "status",
                        "eol",
                        "coding",
                        "framing",
                        "headers",
                        "many",
                        "informational",
                        "tail",
                        "cut",
                        "split",
                        "early",
                        "keep",
                    ]
                ),
                max_size=2,
            )
        )
    )
    kind = draw(st.sampled_from(["get", "post", "stream"]))
    plain, content_type = BODY, b"Content-Type: application/json"
    if kind == "stream":
        plain, content_type = EVENTS, b"Content-Type: text/event-stream"
    status = draw(st.sampled_from(STATUS_LINES)) if "status" in flaws else b"HTTP/1.1 200 OK"
    eol = b"\n" if "eol" in flaws else b"\r\n"
    coding_headers, body = draw(encoded_bodies(plain)) if "coding" in flaws else ([], plain)
    if "framing" in flaws:
        framing_headers, framed = draw(framings(body))
    else:
        framing_headers, framed = [b"Content-Length: %d" % len(body)], body
    extra = draw(st.lists(header_lines, min_size=1, max_size=3)) if "headers" in flaws else []
    if "many" in flaws:
        extra += [b"X-Many-%d: v" % i for i in range(200)]
    headers = [content_type, *coding_headers, *framing_headers, *extra]
    headers = draw(st.permutations(headers))
    prefix = b""
    if "informational" in flaws:
        prefix = b"".join(draw(st.lists(st.sampled_from(INFORMATIONAL), min_size=1, max_size=2)))
    head = prefix + status + eol + b"".join(h + eol for h in headers) + eol
    tail = b""
    if "tail" in flaws:
        tail = draw(
            st.sampled_from(
                [b"garbage\x00\xff", b'HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{"evil":true}']
            )
        )
    whole = head + framed + tail
    close = "keep" not in flaws
    if "cut" in flaws:
        whole, close = whole[: draw(st.integers(0, len(whole) - 1))], True
    pieces = [whole]
    if "split" in flaws:
        at = draw(st.integers(0, len(whole)))
        pieces = [whole[:at], whole[at:]]
    return Script(pieces, early="early" in flaws, close=close), status, kind


def _declared_status(status_line: bytes) -> int | None:
    match = re.fullmatch(rb"HTTP/\d\.\d ([2-5]\d\d)(?: .*)?", status_line, re.DOTALL)
    return int(match[1]) if match else None


def _check_error(exc: BaseException, status_line: bytes) -> str:
    """The invariants on an error a call raised; its kind."""
    assert isinstance(exc, stackwire.StackwireError), f"not a stackwire error: {exc!r}"
    assert not isinstance(exc, stackwire.InvalidRequestError), f"blamed the caller: {exc!r}"
    if isinstance(exc, stackwire.APIStatusError):
        assert exc.status_code == _declared_status(status_line), (
            f"a status the server did not send: {exc.status_code} for {status_line!r}"
        )
    if isinstance(exc, stackwire.APIConnectionError):
        assert exc.__cause__ is not None, f"no cause: {exc!r}"
    seen: BaseException | None = exc
    while seen is not None:
        for shown in (str(seen), repr(seen)):
            assert CANARY not in shown, f"the API key in {type(seen).__name__}: {shown}"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


async def _call_and_check(
    client: stackwire.AsyncClient, server: ScriptedServer, status_line: bytes, kind: str
) -> str:
    async def read_stream() -> object:
        stream = await client.get("/hostile", stream=True, cast_to=dict)
        async with stream:
            events = [event async for event in stream]
        return events[0] if len(events) == 1 else events

    call: Awaitable[object]
    try:
        if kind == "post":
            call = client.post("/hostile", json={"a": 1}, cast_to=dict)
        elif kind == "stream":
            call = read_stream()
        else:
            call = client.get("/hostile", cast_to=dict)
        value = await asyncio.wait_for(call, CALL_LIMIT)
    except TimeoutError as exc:
        if isinstance(exc, stackwire.StackwireError):
            outcome = _check_error(exc, status_line)
        else:
            raise AssertionError(f"the call hung past {CALL_LIMIT} s") from exc
    except Exception as exc:  # (checked: only stackwire errors pass)
        outcome = _check_error(exc, status_line)
    else:
        declared = _declared_status(status_line)
        assert declared is not None, f"{status_line!r} returned {value}"
        assert 200 <= declared < 300, f"{status_line!r} returned {value}"
        assert value == {"ok": TOKEN}, f"a wrong value: {value!r}"
        outcome = "value"
    assert client.pool_stats().in_use == 0, "a connection still in use after the call"
    if server.script.close:
        # The server closes without saying so (no ``Connection: close``): let it finish,
        # so the next call does not race a keep-alive connection it is closing.
        await server.finished()
    good = await asyncio.wait_for(client.get("/good", cast_to=dict), CALL_LIMIT)
    assert good == {"good": server.good}, f"leftover bytes reached the next call: {good!r}"
    assert client.pool_stats().in_use == 0
    return outcome


def _blocking_call_and_check(
    client: stackwire.Client, server: ScriptedServer, status_line: bytes
) -> str:
    """`_call_and_check` for the blocking client (run in a thread of its own)."""
    try:
        value = client.get("/hostile", cast_to=dict)
    except Exception as exc:  # (checked: only stackwire errors pass)
        outcome = _check_error(exc, status_line)
    else:
        declared = _declared_status(status_line)
        assert declared is not None, f"{status_line!r} returned {value}"
        assert 200 <= declared < 300, f"{status_line!r} returned {value}"
        assert value == {"ok": TOKEN}, f"a wrong value: {value!r}"
        outcome = "value"
    assert client.pool_stats().in_use == 0, "a connection still in use after the call"
    return outcome


def _run_property(retrying: bool | None) -> dict[str, int]:
    """Run the property with an `AsyncClient` (``retrying`` or not), or with a blocking
    `Client` (``None``)."""
    loop = asyncio.new_event_loop()
    server = ScriptedServer()
    outcomes: dict[str, int] = {}
    try:
        base = loop.run_until_complete(server.start())

        @settings(
            max_examples=EXAMPLES if retrying is not None else max(EXAMPLES // 3, 10),
            derandomize=True,
            database=None,
            deadline=None,
            report_multiple_bugs=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(case=scripts())
        def check(case: tuple[Script, bytes, str]) -> None:
            script, status_line, kind = case
            server.script = script
            server.early_pending = script.early
            time = VirtualTime()

            async def run() -> str:
                async with stackwire.AsyncClient(
                    base,
                    api_key=CANARY,
                    max_retries=2 if retrying else 0,
                    sleep=time.sleep,
                    clock=time.clock,
                    random=time.random,
                    timeout=TIMEOUT,
                    max_response_bytes=CAP,
                    max_redirects=2,
                ) as client:
                    return await _call_and_check(client, server, status_line, kind)

            async def run_blocking() -> str:
                with stackwire.Client(
                    base,
                    api_key=CANARY,
                    max_retries=0,
                    timeout=TIMEOUT,
                    max_response_bytes=CAP,
                    max_redirects=2,
                ) as client:
                    # (The call blocks its thread; this loop keeps serving meanwhile.)
                    call = asyncio.to_thread(_blocking_call_and_check, client, server, status_line)
                    outcome = await asyncio.wait_for(call, CALL_LIMIT)
                    if script.close:
                        await server.finished()
                    good = await asyncio.to_thread(client.get, "/good", cast_to=dict)
                    assert good == {"good": server.good}, (
                        f"leftovers reached the next call: {good!r}"
                    )
                    return outcome

            outcome = loop.run_until_complete(run() if retrying is not None else run_blocking())
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

        check()
    finally:
        loop.run_until_complete(server.close())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        gc.collect()
    return outcomes


def test_a_hostile_server_gives_a_value_or_a_stackwire_error_and_a_clean_pool() -> None:
    outcomes = _run_property(retrying=False)
    # Not vacuous: values, status errors and connection errors were all reached.
    assert {"value", "APIConnectionError"} <= set(outcomes), outcomes
    assert len(outcomes) >= 3, outcomes


def test_a_hostile_server_behind_retries_gives_the_same_guarantees() -> None:
    outcomes = _run_property(retrying=True)
    assert {"value", "APIConnectionError"} <= set(outcomes), outcomes


def test_a_hostile_server_gives_the_blocking_client_the_same_guarantees() -> None:
    outcomes = _run_property(retrying=None)
    assert {"value", "APIConnectionError"} <= set(outcomes), outcomes


@pytest.mark.parametrize("status", [b"200 OK", b"404 Not Found"])
@pytest.mark.parametrize("charset", [b"\xff\xfe", b"utf\xc3\xa9-8"])
async def test_a_charset_that_is_not_ascii_is_ignored_not_a_unicode_error(
    raw_server: Callable[..., Awaitable[tuple[str, object]]],
    make_client: Callable[..., stackwire.AsyncClient],
    status: bytes,
    charset: bytes,
) -> None:
    # Header bytes that are not UTF-8 reach Python as surrogates; ``bytes.decode`` with
    # such a name raised a bare UnicodeEncodeError from `Response.text` (an error
    # body) and from decoding a success: no codec has a non-ASCII name.
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/json; charset="
            + charset
            + b"\r\nContent-Length: 12\r\n\r\n"
            + BODY
        )
        await writer.drain()

    base, _ = await raw_server(answers)
    client = make_client(base, max_retries=0)
    if status.startswith(b"200"):
        assert await client.get("/x", cast_to=dict) == {"ok": TOKEN}
    else:
        with pytest.raises(stackwire.NotFoundError) as caught:
            await client.get("/x")
        assert caught.value.body == {"ok": TOKEN}


@pytest.mark.parametrize(
    ("method", "status"),
    [("GET", b"204 No Content"), ("GET", b"304 Not Modified"), ("HEAD", b"200 OK")],
)
async def test_body_bytes_after_a_bodiless_answer_are_a_connection_error_and_not_reused(
    raw_server: Callable[..., Awaitable[tuple[str, object]]],
    make_client: Callable[..., stackwire.AsyncClient],
    method: str,
    status: bytes,
) -> None:
    # A 204, a 304 or a HEAD answer followed in the same segment by body bytes:
    # aiohttp's parser reads those as the next response's status line and fails the
    # whole answer (curl and httpx return it and drop the connection). A typed error
    # with its cause, and the connection is not reused: the next call is clean.
    async def answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            line, _, _ = await read_request(reader)
            if line.startswith("GET /good"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
            else:
                writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 12\r\n\r\n" + BODY)
            await writer.drain()

    base, _ = await raw_server(answers)
    client = make_client(base, max_retries=0)
    with pytest.raises(stackwire.APIConnectionError) as caught:
        await client.request(method, "/x")
    assert caught.value.__cause__ is not None
    assert client.pool_stats().in_use == 0
    assert await client.get("/good", cast_to=list) == []
