"""`stream=True`: typed Server-Sent Events and JSON Lines over a real socket.

The server is a scripted raw HTTP/1.1 server (keep-alive, chunked bodies), so a
test decides exactly where the body pauses, stalls or ends. After each test the
pool is checked: nothing in use; ``idle`` says whether the connection was reused
(a body read to its end) or closed (a stream stopped early).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, assert_type

import msgspec
import pytest

import stackwire
from stackwire import AsyncStream, Model, PoolStats, ServerSentEvent, Timeout
from tests.conftest import RawServer, SleepRecorder, read_request

MakeClient = Callable[..., stackwire.AsyncClient]
Write = Callable[[asyncio.StreamWriter], Awaitable[None]]
StartRaw = Callable[..., Awaitable[tuple[str, RawServer]]]

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
STALL = 30.0  # longer than any test: the server is cancelled at teardown


class Delta(Model):
    index: int
    text: str


class Start(Model, tag="start"):
    id: str


class Text(Model, tag="text"):
    text: str


class Stop(Model, tag="stop"):
    reason: str


def chunk(data: bytes | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else data
    return b"%x\r\n%s\r\n" % (len(raw), raw)


def head(content_type: str = SSE, status: int = 200, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n{extra}"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode()


def sse(data: str, event: str | None = None) -> str:
    return (f"event: {event}\n" if event else "") + f"data: {data}\n\n"


def deltas(count: int) -> list[str]:
    return [sse(f'{{"index": {n}, "text": "t{n}"}}', "delta") for n in range(count)]


def body(*pieces: str | bytes, content_type: str = SSE, pause: float = 0.0) -> Write:
    """A complete chunked response: ``pieces`` as separate chunks (flushed apart)."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head(content_type))
        for piece in pieces:
            writer.write(chunk(piece))
            await writer.drain()
            await asyncio.sleep(pause)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return write


def stalled(*pieces: str | bytes, content_type: str = SSE) -> Write:
    """Sends ``pieces``, then nothing more: the body never ends."""

    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(head(content_type) + b"".join(chunk(piece) for piece in pieces))
        await writer.drain()
        await asyncio.sleep(STALL)

    return write


def plain(status: int, payload: bytes = b"{}") -> Write:
    async def write(writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        await writer.drain()

    return write


async def start(raw_server: StartRaw, **paths: Write | list[Write]) -> tuple[str, RawServer]:
    """A keep-alive raw server answering ``/<name>`` with ``paths[name]`` (a list:
    one answer per request, in turn)."""
    queues = {
        name: list(answer) if isinstance(answer, list) else answer for name, answer in paths.items()
    }

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while not reader.at_eof():
            try:
                line, _, _ = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            name = line.split()[1].lstrip("/").partition("?")[0]
            answer = queues[name]
            await (answer.pop(0) if isinstance(answer, list) else answer)(writer)

    return await raw_server(handler)


async def collect(stream: AsyncStream[Delta], into: list[Any], *, index: bool = False) -> None:
    """Append each item (or its ``index``) to ``into`` until the stream ends or fails."""
    async for delta in stream:
        into.append(delta.index if index else delta)


# -- typed items ---------------------------------------------------------------------


async def test_events_decode_into_the_model(raw_server: StartRaw, make_client: MakeClient) -> None:
    base, server = await start(raw_server, events=body(*deltas(3), pause=0.005))
    client = make_client(base)
    async with await client.get("/events", cast_to=Delta, stream=True) as stream:
        assert_type(stream, AsyncStream[Delta])
        assert stream.response.status_code == 200
        got = [delta async for delta in stream]
    assert got == [Delta(index=n, text=f"t{n}") for n in range(3)]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)
    assert server.connections == 1


async def test_server_sent_event_as_cast_to_gives_the_raw_events(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    text = "id: 7\nevent: ping\ndata: not json\n\ndata: a\ndata: b\n\n"
    base, _ = await start(raw_server, events=body(text[:15], text[15:]))
    client = make_client(base)
    stream = await client.get("/events", cast_to=ServerSentEvent, stream=True)
    got = [event async for event in stream]
    assert got == [
        ServerSentEvent(event="ping", data="not json", id="7"),
        ServerSentEvent(event="message", data="a\nb", id="7"),
    ]


async def test_a_tagged_union_of_models_picks_each_events_type(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(
        raw_server,
        events=body(
            sse('{"type": "start", "id": "m1"}'),
            sse('{"type": "text", "text": "Hel"}') + sse('{"type": "text", "text": "lo"}'),
            sse('{"type": "stop", "reason": "end"}'),
        ),
    )
    client = make_client(base)
    stream = await client.get("/events", cast_to=Start | Text | Stop, stream=True)
    got = [item async for item in stream]
    assert got == [Start(id="m1"), Text(text="Hel"), Text(text="lo"), Stop(reason="end")]


async def test_an_item_that_does_not_match_raises_and_closes_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=stalled(*deltas(1), sse('{"index": "x"}')))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[Delta] = []
    with pytest.raises(stackwire.APIResponseValidationError, match="Delta") as info:
        await collect(stream, got)
    assert got == [Delta(index=0, text="t0")]
    assert info.value.body == b'{"index": "x"}'
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


# -- errors --------------------------------------------------------------------------


async def test_an_error_event_raises_stream_error_and_closes_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    error = '{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}'
    base, _ = await start(raw_server, events=stalled(*deltas(2), sse(error, "error")))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.StreamError, match="overloaded_error") as info:
        await collect(stream, got, index=True)
    assert got == [0, 1]
    assert info.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "busy"},
    }
    assert info.value.request is not None
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)
    assert [item async for item in stream] == []  # finished: nothing more comes


async def test_an_error_event_with_text_data_keeps_the_text(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body(sse("boom", "error")))
    client = make_client(base)
    stream = await client.get("/events", cast_to=ServerSentEvent, stream=True)
    with pytest.raises(stackwire.StreamError) as info:
        await anext(stream)
    assert info.value.body == "boom"
    # The whole body had arrived: the connection went back to the pool.
    assert client.pool_stats().in_use == 0


async def test_an_error_status_raises_before_any_iteration(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=plain(404, b'{"error": "no such stream"}'))
    client = make_client(base)
    with pytest.raises(stackwire.NotFoundError) as info:
        await client.get("/events", cast_to=Delta, stream=True)
    assert info.value.body == {"error": "no such stream"}
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_a_503_stream_is_retried_like_any_call(
    raw_server: StartRaw, make_client: MakeClient, client_sleeps: SleepRecorder
) -> None:
    base, server = await start(raw_server, events=[plain(503), body(*deltas(2))])
    client = make_client(base, random=lambda: 0.0)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert stream.response.retries_taken == 1
    assert [delta.index async for delta in stream] == [0, 1]
    assert client_sleeps.delays == [0.5]  # one backoff, recorded, not slept
    assert server.connections == 1  # the 503 was read and its connection reused


async def test_a_stream_that_ends_before_its_terminal_event_raises(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(
        raw_server,
        cut=body(*deltas(2)),
        whole=body(*deltas(2), sse('{"index": 9, "text": ""}', "message_stop")),
    )
    client = make_client(base)
    stream = await client.get("/cut", cast_to=Delta, stream=True, stream_end_event="message_stop")
    got: list[int] = []
    with pytest.raises(stackwire.StreamError, match="message_stop"):
        await collect(stream, got, index=True)
    assert got == [0, 1]  # every item that came is handed out first

    stream = await client.get("/whole", cast_to=Delta, stream=True, stream_end_event="message_stop")
    assert [delta.index async for delta in stream] == [0, 1]  # the end event is no Delta
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def cut_after_one_event(writer: asyncio.StreamWriter) -> None:
    """One whole event, then half a chunk, then the connection closes."""
    writer.write(head() + chunk(deltas(1)[0]) + b"40\r\npartial")
    await writer.drain()
    writer.close()


async def test_a_connection_lost_mid_stream_is_a_connection_error(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=cut_after_one_event)
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert (await anext(stream)).index == 0
    with pytest.raises(stackwire.APIConnectionError):
        await anext(stream)
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


@pytest.mark.parametrize("end_event", [None, "done"])
async def test_events_that_arrived_before_the_connection_broke_come_out_first(
    raw_server: StartRaw, make_client: MakeClient, end_event: str | None
) -> None:
    # aiohttp drops what it has buffered once the connection has failed: a consumer
    # that came to read after the break lost the events the server had sent whole
    # (none came out here), a quicker one got them. Now both get them, then the error.
    base, _ = await start(raw_server, events=cut_after_one_event)
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True, stream_end_event=end_event)
    await asyncio.sleep(0.05)  # the break has reached the client: it reads only now
    got: list[int] = []
    with pytest.raises(stackwire.APIConnectionError) as info:
        await collect(stream, got, index=True)
    assert got == [0]
    assert isinstance(info.value, stackwire.IncompleteStreamError) == (end_event is not None)
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_a_connection_lost_before_the_end_event_is_an_incomplete_stream(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=cut_after_one_event)
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True, stream_end_event="done")
    assert (await anext(stream)).index == 0
    with pytest.raises(stackwire.StreamError, match="'done' event") as info:
        await anext(stream)
    # The stream ended before its terminal event, and the response is not complete:
    # both `except StreamError` and `except APIConnectionError` catch it.
    assert isinstance(info.value, stackwire.IncompleteStreamError)
    assert isinstance(info.value, stackwire.APIConnectionError)
    assert isinstance(info.value.__cause__, stackwire.APIConnectionError)
    assert info.value.request is stream.response.request
    assert len(info.value.attempts) == 1
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


# -- releasing the connection --------------------------------------------------------


async def test_close_mid_stream_closes_the_connection_and_is_idempotent(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=stalled(*deltas(2)))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert (await anext(stream)).index == 0
    assert client.pool_stats() == PoolStats(in_use=1, idle=0)
    await stream.close()
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)
    await stream.close()
    assert [item async for item in stream] == []  # the already-parsed item is dropped too
    assert stream.response.is_closed


@pytest.mark.parametrize("end_event", [None, "done"])
async def test_close_from_another_task_ends_the_iteration_cleanly(
    raw_server: StartRaw, make_client: MakeClient, end_event: str | None
) -> None:
    # A "stop generating" button: one task reads, another closes. The reader got an
    # APIConnectionError ("Connection closed"), or with stream_end_event an
    # IncompleteStreamError saying the connection broke: the caller's own close.
    base, _ = await start(raw_server, events=stalled(*deltas(1)))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True, stream_end_event=end_event)
    got: list[int] = []
    reader = asyncio.create_task(collect(stream, got, index=True))
    await asyncio.sleep(0.05)  # the reader is waiting for a second event
    await stream.close()
    await reader
    assert got == [0]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_leaving_async_with_early_closes_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=stalled(*deltas(3)))
    client = make_client(base)
    async with await client.get("/events", cast_to=Delta, stream=True) as stream:
        async for delta in stream:
            if delta.index == 1:
                break
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_leaving_async_with_on_an_exception_closes_the_connection(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=stalled(*deltas(3)))
    client = make_client(base)

    async def fail_while_reading() -> None:
        async with await client.get("/events", cast_to=Delta, stream=True) as stream:
            async for _ in stream:
                raise KeyError("the caller's own failure")

    with pytest.raises(KeyError):
        await fail_while_reading()
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_closing_a_fully_read_stream_keeps_the_connection_pooled(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, server = await start(raw_server, events=body(*deltas(2)))
    client = make_client(base)
    for _ in range(2):
        async with await client.get("/events", cast_to=Delta, stream=True) as stream:
            assert len([delta async for delta in stream]) == 2
        await stream.close()
        assert client.pool_stats() == PoolStats(in_use=0, idle=1)
    assert server.connections == 1


async def test_a_stream_read_after_its_client_closed_raises_client_closed(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # As for the blocking client, and for any call after close(): the client was used
    # after close(). It was an APIConnectionError, which a caller might retry, whose
    # cause was aiohttp's bare RuntimeError("Connection closed.").
    base, _ = await start(raw_server, events=stalled(*deltas(1)))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert (await anext(stream)).index == 0
    await client.close()
    with pytest.raises(stackwire.ClientClosedError, match="closed"):
        await anext(stream)
    assert stream.response.is_closed
    assert [item async for item in stream] == []
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_cancelling_the_consumer_closes_the_connection_and_the_client_goes_on(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, server = await start(
        raw_server, events=stalled(*deltas(2)), ok=plain(200, b'{"index": 5, "text": "ok"}')
    )
    client = make_client(base)
    got: list[int] = []
    second = asyncio.Event()

    async def consume() -> None:
        stream = await client.get("/events", cast_to=Delta, stream=True)
        async for delta in stream:
            got.append(delta.index)
            if delta.index == 1:
                second.set()

    task = asyncio.create_task(consume())
    await second.wait()
    await asyncio.sleep(0.01)  # the consumer is now waiting for a third event
    assert client.pool_stats() == PoolStats(in_use=1, idle=0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert got == [0, 1]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)

    assert await client.get("/ok", cast_to=Delta) == Delta(index=5, text="ok")
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)
    assert server.connections == 2


@pytest.mark.parametrize("items_read", [0, 1])
async def test_an_unclosed_stream_warns_and_is_closed(
    raw_server: StartRaw, make_client: MakeClient, items_read: int
) -> None:
    base, _ = await start(raw_server, events=stalled(*deltas(2)))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    for index in range(items_read):
        assert (await anext(stream)).index == index
    del stream
    with pytest.warns(ResourceWarning, match="unclosed stream for GET"):
        gc.collect()
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_an_unclosed_stream_is_closed_where_its_warning_is_an_error(
    raw_server: StartRaw, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With ``-W error`` the warning raises inside ``__del__`` (Python reports it to
    # sys.unraisablehook): the connection must be closed all the same.
    base, _ = await start(raw_server, events=stalled(*deltas(1)))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    raised: list[BaseException | None] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: raised.append(info.exc_value))
    del stream
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()
    assert [type(error) for error in raised] == [ResourceWarning]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_a_finished_stream_does_not_warn(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body(*deltas(1)))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert [delta.index async for delta in stream] == [0]
    del stream
    gc.collect()  # filterwarnings=error: a ResourceWarning here fails the test


# -- timeouts ------------------------------------------------------------------------


async def test_a_stream_may_outlast_total_while_its_gaps_are_short(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body(*deltas(6), pause=0.05))
    client = make_client(base, timeout=Timeout(total=0.1, read=2.0))
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert [delta.index async for delta in stream] == list(range(6))  # ~0.3 s in all
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_a_gap_longer_than_read_raises_a_timeout(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, server = await start(raw_server, events=stalled(*deltas(1)))
    client = make_client(base, timeout=Timeout(total=60, read=0.1))
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.APITimeoutError):
        await collect(stream, got, index=True)
    assert got == [0]
    assert server.connections == 1  # not retried: items were already handed out
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_a_slow_consumer_gets_what_arrived_before_a_read_timeout(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # The server sends three events at once, then goes silent for longer than `read`
    # while the consumer is still busy: the events it sent come out, then the timeout
    # (they were lost: the timeout came at the first read).
    base, _ = await start(raw_server, events=stalled(*deltas(3)))
    client = make_client(base, timeout=Timeout(total=60, read=0.05))
    stream = await client.get("/events", cast_to=Delta, stream=True)
    await asyncio.sleep(0.2)  # the consumer is busy elsewhere
    got: list[int] = []
    with pytest.raises(stackwire.APITimeoutError):
        await collect(stream, got, index=True)
    assert got == [0, 1, 2]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_without_read_a_silent_stream_ends_after_total(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # timeout=0.1 sets total only: a stream that goes silent after its headers must not
    # be waited for forever (total bounds each gap when read is None).
    base, _ = await start(raw_server, events=stalled(*deltas(1)))
    client = make_client(base, timeout=0.1)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.APITimeoutError):
        await collect(stream, got, index=True)
    assert got == [0]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


# -- JSON Lines ----------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [NDJSON, "application/jsonl; charset=utf-8"])
async def test_json_lines_decode_one_value_a_line(
    raw_server: StartRaw, make_client: MakeClient, content_type: str
) -> None:
    lines = (
        '{"index": 0, "text": "a"}\r\n\n{"index": 1, "te',
        'xt": "b"}\n',
        '{"index": 2, "text": "c"}',
    )
    base, _ = await start(raw_server, logs=body(*lines, content_type=content_type, pause=0.005))
    client = make_client(base)
    async with await client.get("/logs", cast_to=Delta, stream=True) as stream:
        got = [delta async for delta in stream]
    assert got == [Delta(index=0, text="a"), Delta(index=1, text="b"), Delta(index=2, text="c")]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_json_lines_take_a_tagged_union_and_plain_values(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    text = '{"type": "start", "id": "x"}\n{"type": "stop", "reason": "done"}\n'
    base, _ = await start(raw_server, logs=body(text, content_type=NDJSON))
    client = make_client(base)
    stream = await client.get("/logs", cast_to=Start | Stop, stream=True)
    assert [item async for item in stream] == [Start(id="x"), Stop(reason="done")]
    values = await client.get("/logs", cast_to=dict[str, str], stream=True)
    assert [value["type"] async for value in values] == ["start", "stop"]


@pytest.mark.parametrize(
    "pieces", [(b"\xef\xbb\xbf[0]\n[1]",), (b"\xef", b"\xbb", b"\xbf[0]\n[1]")]
)
async def test_json_lines_drop_a_byte_order_mark_at_the_start(
    raw_server: StartRaw, make_client: MakeClient, pieces: tuple[bytes, ...]
) -> None:
    # As a JSON body with a BOM decodes (RFC 8259 allows ignoring it), and as an
    # event stream drops one; the first line was an APIResponseValidationError.
    base, _ = await start(raw_server, logs=body(*pieces, content_type=NDJSON, pause=0.005))
    client = make_client(base)
    stream = await client.get("/logs", cast_to=list[int], stream=True)
    assert [item async for item in stream] == [[0], [1]]


async def test_a_json_line_that_does_not_parse_raises(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(
        raw_server, logs=stalled('{"index": 0, "text": "a"}\n{oops\n', content_type=NDJSON)
    )
    client = make_client(base)
    stream = await client.get("/logs", cast_to=Delta, stream=True)
    assert (await anext(stream)).index == 0
    with pytest.raises(stackwire.APIResponseValidationError):
        await anext(stream)
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_a_json_line_that_does_not_parse_without_cast_to_says_so(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # (The message named the sentinel: "does not match NOT_GIVEN".)
    base, _ = await start(raw_server, logs=body("[1]\n{oops\n", content_type=NDJSON))
    client = make_client(base)
    stream = await client.get("/logs", stream=True)
    assert await anext(stream) == [1]
    with pytest.raises(stackwire.APIResponseValidationError) as info:
        await anext(stream)
    assert str(info.value).startswith("a streamed item is not valid JSON: ")
    assert info.value.body == b"{oops"


async def test_a_json_line_over_max_event_bytes_raises(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    long_line = '{"index": 1, "text": "' + "x" * 300 + '"}'
    base, _ = await start(
        raw_server,
        logs=stalled(
            '{"index": 0, "text": "a"}\n', long_line[:100], long_line[100:], content_type=NDJSON
        ),
    )
    client = make_client(base, max_event_bytes=256)
    stream = await client.get("/logs", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.ResponseTooLargeError, match="max_event_bytes=256") as info:
        await collect(stream, got, index=True)
    assert got == [0]
    assert info.value.limit == 256
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_an_event_over_max_event_bytes_raises_after_the_events_before_it(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    huge = sse('{"index": 1, "text": "' + "x" * 300 + '"}')
    base, _ = await start(raw_server, events=stalled(deltas(1)[0] + huge[:200]))
    client = make_client(base, max_event_bytes=128)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.ResponseTooLargeError, match="max_event_bytes=128") as info:
        await collect(stream, got, index=True)
    assert got == [0]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)
    # Like every APIError, it names the request and the call's attempts.
    assert info.value.request is stream.response.request
    assert info.value.limit == 128
    assert len(info.value.attempts) == 1


def test_the_streaming_example_runs() -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "streaming.py"
    result = subprocess.run(
        [sys.executable, "-W", "error", str(example)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "delta 2: 'chunk 2'" in out
    assert "events: [('delta', '0'), ('done', '0')]" in out
    assert "log 2 [warning] step 2 done" in out
    assert "in use after stopping early: 0" in out
    assert 'line: {"seq": 1, "level": "info", "message": "step 1 done"}' in out
    assert out.splitlines()[-1] == "at the end: PoolStats(in_use=0, idle=1)"


# -- what APIs actually send (issue 11, item 7) --------------------------------------


async def test_json_lines_served_as_application_json_stream_with_stream_format(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    lines = '{"index": 0, "text": "a"}\n{"index": 1, "text": "b"}\n'
    base, _ = await start(raw_server, lines=body(lines, content_type="application/json"))
    client = make_client(base)
    stream = await client.get("/lines", cast_to=Delta, stream=True, stream_format="jsonl")
    assert [delta.text async for delta in stream] == ["a", "b"]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_sse_under_another_content_type_streams_with_stream_format(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body(*deltas(2), content_type="text/plain"))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True, stream_format="sse")
    assert [delta.index async for delta in stream] == [0, 1]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


@pytest.mark.parametrize("content_type", ["application/json", "text/html; charset=utf-8"])
async def test_an_unknown_stream_content_type_raises_naming_it(
    raw_server: StartRaw, make_client: MakeClient, content_type: str
) -> None:
    lines = '{"index": 0, "text": "a"}\n'
    base, _ = await start(raw_server, lines=body(lines, content_type=content_type))
    client = make_client(base)
    with pytest.raises(stackwire.APIResponseValidationError) as info:
        await client.get("/lines", cast_to=Delta, stream=True)
    assert repr(content_type.partition(";")[0]) in str(info.value)
    assert "stream_format" in str(info.value)
    assert client.pool_stats().in_use == 0


async def test_a_bad_stream_format_is_rejected_before_any_io(make_client: MakeClient) -> None:
    client = make_client("http://127.0.0.1:9/")
    with pytest.raises(stackwire.InvalidRequestError, match="stream_format"):
        await client.get("/x", stream=True, stream_format="ndjson")  # type: ignore[call-overload]


async def test_done_ends_a_typed_stream_cleanly(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body(*deltas(2), sse("[DONE]")))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert [delta.index async for delta in stream] == [0, 1]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_nothing_after_done_is_read_or_decoded(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    async def open_after_done(writer: asyncio.StreamWriter) -> None:
        writer.write(head() + chunk(deltas(1)[0] + sse("[DONE]")) + chunk(sse("not json")))
        await writer.drain()
        await asyncio.sleep(STALL)  # the server never ends the body

    base, _ = await start(raw_server, events=open_after_done)
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert [delta.index async for delta in stream] == [0]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)  # closed, not waited on


@pytest.mark.parametrize(
    ("terminal", "end_event", "cast_to"),
    [
        (sse("[DONE]"), None, Delta),
        (sse("{}", "message_stop"), "message_stop", Delta),
        (sse("[DONE]"), None, ServerSentEvent),
    ],
    ids=["done", "stream_end_event", "raw"],
)
async def test_a_body_that_ends_just_after_its_terminal_event_keeps_the_connection(
    raw_server: StartRaw,
    make_client: MakeClient,
    terminal: str,
    end_event: str | None,
    cast_to: Any,
) -> None:
    # As an ASGI server sends it: the end of the chunked body a moment after the
    # last event, once the app has returned. The connection is reused, not closed.
    answer = body(*deltas(2), terminal, pause=0.01)
    base, raw = await start(raw_server, events=[answer, answer, answer])
    client = make_client(base)
    for _ in range(3):
        stream = await client.get(
            "/events", cast_to=cast_to, stream=True, stream_end_event=end_event
        )
        assert len([item async for item in stream]) == (3 if cast_to is ServerSentEvent else 2)
        assert client.pool_stats() == PoolStats(in_use=0, idle=1)
    assert raw.connections == 1


async def test_the_end_event_has_its_own_shape_and_ends_the_stream(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    done = sse('{"reason": "stop", "usage": {"tokens": 3}}', "message_stop")
    base, _ = await start(raw_server, events=body(*deltas(2), done, *deltas(1)))
    client = make_client(base)
    stream = await client.get(
        "/events", cast_to=Delta, stream=True, stream_end_event="message_stop"
    )
    assert [delta.index async for delta in stream] == [0, 1]
    assert client.pool_stats().in_use == 0  # released, or closed if the body was still coming


# -- a chunk of many events (the typed path decodes a plain chunk in one go) ---------


async def test_events_before_an_error_event_in_the_same_chunk_come_out_first(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    mixed = "".join(deltas(2)) + sse('{"message": "overloaded"}', "error") + deltas(3)[2]
    base, _ = await start(raw_server, events=body("".join(deltas(3)), mixed))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.StreamError, match="overloaded"):
        await collect(stream, got, index=True)
    assert got == [0, 1, 2, 0, 1]


async def test_an_item_that_does_not_match_mid_chunk_raises_after_the_ones_before_it(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    one_chunk = "".join(deltas(2)) + sse('{"index": "x"}') + "".join(deltas(2))
    base, _ = await start(raw_server, events=stalled(one_chunk))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    got: list[int] = []
    with pytest.raises(stackwire.APIResponseValidationError, match="Delta") as info:
        await collect(stream, got, index=True)
    assert got == [0, 1]
    assert info.value.body == b'{"index": "x"}'
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_done_and_events_without_data_in_a_chunk_of_events(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    one_chunk = deltas(1)[0] + "event: ping\n\n" + "data:\n\n" + deltas(2)[1] + sse("[DONE]")
    base, _ = await start(raw_server, events=body(one_chunk + sse("not json")))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Delta, stream=True)
    assert [delta.index async for delta in stream] == [0, 1]


class Opaque(Model):
    index: int
    raw: msgspec.Raw


async def test_invalid_utf8_in_typed_data_is_replaced_as_the_spec_says(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    # The data is text: an invalid byte is U+FFFD, even for a field msgspec does not
    # check (a Raw value), and in a chunk with a non-ASCII event.
    events = b'data: {"index": 0, "raw": "\xff"}\n\ndata: {"index": 1, "raw": "\xc3\xa9"}\n\n'
    base, _ = await start(raw_server, events=body(events, events[:34], events[34:]))
    client = make_client(base)
    stream = await client.get("/events", cast_to=Opaque, stream=True)
    got = [(item.index, bytes(item.raw).decode()) async for item in stream]
    assert got == [(0, '"\ufffd"'), (1, '"é"')] * 2


# -- raw events end at their terminal event too --------------------------------------


@pytest.mark.parametrize(
    ("terminal", "end_event"),
    [(sse("{}", "message_stop"), "message_stop"), (sse("[DONE]"), None)],
    ids=["stream_end_event", "done"],
)
async def test_a_raw_stream_shows_its_terminal_event_then_ends(
    raw_server: StartRaw, make_client: MakeClient, terminal: str, end_event: str | None
) -> None:
    async def open_after_end(writer: asyncio.StreamWriter) -> None:
        writer.write(head() + chunk(deltas(1)[0]) + chunk(terminal + deltas(2)[1]))
        await writer.drain()
        await asyncio.sleep(STALL)  # the server keeps the connection open

    base, _ = await start(raw_server, events=open_after_end)
    client = make_client(base)
    stream = await client.get(
        "/events", cast_to=ServerSentEvent, stream=True, stream_end_event=end_event
    )
    # Read with a bound: before the fix, the stream waited for the server to end.
    got = await asyncio.wait_for(collect_events(stream), 5)
    assert [(event.event, event.data) for event in got] == [
        ("delta", '{"index": 0, "text": "t0"}'),
        ("message_stop", "{}") if end_event else ("message", "[DONE]"),
    ]
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)  # closed, not waited on


async def collect_events(stream: AsyncStream[ServerSentEvent]) -> list[ServerSentEvent]:
    return [event async for event in stream]


# -- stream=True through the raw views (as in the OpenAI SDK) -------------------------


async def test_stream_true_with_raw_response_parses_into_the_typed_stream(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body(*deltas(2)))
    client = make_client(base)
    response = await client.with_raw_response.get("/events", cast_to=Delta, stream=True)
    assert response.status_code == 200
    stream = await response.parse()  # it was the SSE body decoded as one JSON value
    assert_type(stream, AsyncStream[Delta])
    assert isinstance(stream, AsyncStream)
    assert [delta.index async for delta in stream] == [0, 1]
    assert client.pool_stats() == PoolStats(in_use=0, idle=1)


async def test_stream_true_with_streaming_response_parses_into_the_typed_stream(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=stalled(*deltas(2)))
    client = make_client(base)
    # It was a TypeError: the view passes stream=True itself.
    async with client.with_streaming_response.get(
        "/events", cast_to=Delta, stream=True
    ) as response:
        stream = await response.parse()
        assert isinstance(stream, AsyncStream)
        assert (await anext(stream)).index == 0
    # Leaving the block closes the stream's connection with the response.
    assert client.pool_stats() == PoolStats(in_use=0, idle=0)


async def test_stream_true_through_a_raw_view_refuses_an_unknown_content_type(
    raw_server: StartRaw, make_client: MakeClient
) -> None:
    base, _ = await start(raw_server, events=body("{}", content_type="text/html"))
    client = make_client(base)
    with pytest.raises(stackwire.APIResponseValidationError, match="text/html"):
        await client.with_raw_response.get("/events", cast_to=Delta, stream=True)
    assert client.pool_stats().in_use == 0
