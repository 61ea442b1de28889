"""SSEDecoder: every rule of the WHATWG event-stream format as a vector, fed whole, split
at every byte offset and one byte at a time; the size cap; flush; linear time."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgspec
import pytest

from stackwire.errors import ResponseTooLargeError
from stackwire.models import sse
from stackwire.models.sse import ServerSentEvent, SSEDecoder

E = ServerSentEvent


@dataclass(frozen=True)
class Vector:
    name: str
    stream: bytes
    events: list[ServerSentEvent]
    last_event_id: str = ""
    retry: int | None = None


VECTORS = [
    # Dispatch and data.
    Vector("one event", b"data: hello\n\n", [E("message", "hello")]),
    Vector("empty stream", b"", []),
    Vector("only empty lines", b"\n\n\n\n", []),
    Vector("data lines join with LF", b"data: a\ndata: b\ndata:c\n\n", [E(data="a\nb\nc")]),
    Vector("data without colon is empty data", b"data\n\n", [E(data="")]),
    Vector("data with empty value", b"data:\n\n", [E(data="")]),
    Vector("two empty data lines", b"data\ndata:\n\n", [E(data="\n")]),
    Vector("exactly one leading space dropped", b"data:  two\n\n", [E(data=" two")]),
    Vector("no space to drop", b"data:none\n\n", [E(data="none")]),
    Vector("a tab is not a space", b"data:\tx\n\n", [E(data="\tx")]),
    Vector("trailing spaces kept", b"data: x  \n\n", [E(data="x  ")]),
    Vector("colons in the value", b"data: a:b: c\n\n", [E(data="a:b: c")]),
    Vector("NUL in data", b"data: a\x00b\n\n", [E(data="a\x00b")]),
    Vector("block without data", b"event: ping\n\n", []),
    Vector("unfinished block dropped", b"data: a\n\ndata: b\n", [E(data="a")]),
    Vector("unfinished line dropped", b"data: a\n\ndata: b", [E(data="a")]),
    Vector(
        "several blocks in a row",
        b"data: 1\n\ndata: 2\n\n\n\ndata: 3\n\n",
        [E(data="1"), E(data="2"), E(data="3")],
    ),
    # Event type.
    Vector("event type", b"event: add\ndata: x\n\n", [E("add", "x")]),
    Vector("event type after data", b"data: x\nevent: add\n\n", [E("add", "x")]),
    Vector("last event line wins", b"event: a\nevent: b\ndata: x\n\n", [E("b", "x")]),
    Vector(
        "event type resets after dispatch",
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        [E("a", "1"), E("message", "2")],
    ),
    Vector(
        "event type resets after a block without data",
        b"event: a\n\ndata: 2\n\n",
        [E("message", "2")],
    ),
    Vector("empty event type is message", b"event:\ndata: x\n\n", [E("message", "x")]),
    Vector("event of one space is message", b"event: \ndata: x\n\n", [E("message", "x")]),
    Vector("event without colon is message", b"event\ndata: x\n\n", [E("message", "x")]),
    Vector("event keeps a second space", b"event:  a\ndata: x\n\n", [E(" a", "x")]),
    Vector("event type with colon", b"event: a:b\ndata: x\n\n", [E("a:b", "x")]),
    Vector(
        "unicode event type",
        "event: évé 東\ndata: x\n\n".encode(),
        [E("évé 東", "x")],
    ),
    # Comments, unknown and case-sensitive fields.
    Vector("comment lines", b": hi\ndata: x\n:another\n\n", [E(data="x")]),
    Vector("comment only block", b":keepalive\n\n", []),
    Vector("a lone colon is a comment", b":\ndata: x\n\n", [E(data="x")]),
    Vector("unknown field ignored", b"foo: bar\ndata: x\nbaz\n\n", [E(data="x")]),
    Vector("names are case-sensitive", b"Data: x\nEVENT: a\nID: 3\nRetry: 5\n\n", []),
    Vector("a space before the name", b" data: x\n\n", []),
    Vector("a space before the colon", b"data : x\n\n", []),
    # id.
    Vector(
        "id persists across events",
        b"id: 1\ndata: a\n\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
        last_event_id="1",
    ),
    Vector(
        "empty id resets",
        b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\ndata: c\n\nid:\ndata: d\n\n",
        [E(data="a", id="1"), E(data="b"), E(data="c", id="2"), E(data="d")],
        last_event_id="",
    ),
    Vector(
        "id with NUL ignored",
        b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n",
        [E(data="a", id="1"), E(data="b", id="1")],
        last_event_id="1",
    ),
    Vector(
        "id of a block without data counts",
        b"id: 9\n\ndata: x\n\n",
        [E(data="x", id="9")],
        last_event_id="9",
    ),
    Vector("id alone", b"id: 9\n\n", [], last_event_id="9"),
    Vector(
        "id of an unfinished block does not count",
        b"id: 1\ndata: a\n\nid: 5\ndata: b\n",
        [E(data="a", id="1")],
        last_event_id="1",
    ),
    Vector("id keeps spaces", b"id: a b \ndata: x\n\n", [E(data="x", id="a b ")], "a b "),
    Vector("unicode id", "id: ü東\ndata: x\n\n".encode(), [E(data="x", id="ü東")], "ü東"),
    # retry.
    Vector("retry", b"retry: 1500\ndata: x\n\n", [E(data="x", retry=1500)], retry=1500),
    Vector(
        "retry belongs to its block, the decoder keeps it",
        b"retry: 10\ndata: a\n\ndata: b\n\n",
        [E(data="a", retry=10), E(data="b")],
        retry=10,
    ),
    Vector("retry without data", b"retry: 10\n\n", [], retry=10),
    Vector("last retry wins", b"retry: 1\nretry: 2\ndata: x\n\n", [E(data="x", retry=2)], retry=2),
    Vector("retry zero", b"retry: 0\ndata: x\n\n", [E(data="x", retry=0)], retry=0),
    Vector("retry leading zeros", b"retry: 007\n\n", [], retry=7),
    Vector(
        "invalid retry values ignored",
        b"retry: 5\n\nretry: 1.5\nretry: -1\nretry: 2x\nretry:\nretry\nretry:  3\n"
        b"retry: +4\nretry: 1_000\n\n",
        [],
        retry=5,
    ),
    Vector("non-ASCII digits are not a retry", "retry: ١٢\nretry: ５\n\n".encode(), []),
    Vector(
        "retry of an unfinished block counts once the stream ends",
        b"data: a\n\nretry: 42\ndata: b\n",
        [E(data="a")],
        retry=42,
    ),
    Vector("an unterminated retry line does not count", b"retry: 42", []),
    # Line ends.
    Vector("CRLF", b"data: a\r\ndata: b\r\n\r\n", [E(data="a\nb")]),
    Vector("CR", b"data: a\rdata: b\r\r", [E(data="a\nb")]),
    Vector("mixed line ends", b"data: a\r\ndata: b\rdata: c\n\r\n", [E(data="a\nb\nc")]),
    Vector("CR then CRLF", b"data: a\r\r\ndata: b\n\n", [E(data="a"), E(data="b")]),
    Vector("LF then CR", b"data: a\n\rdata: b\r\n\n", [E(data="a"), E(data="b")]),
    Vector("CR CR CR", b"data: a\r\r\rdata: b\r\r", [E(data="a"), E(data="b")]),
    Vector(
        "CRLF events with ids",
        b"id: 1\r\nevent: e\r\ndata: x\r\n\r\n",
        [E("e", "x", "1")],
        last_event_id="1",
    ),
    Vector(
        "other Unicode line breaks are data",
        "data: a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei\n\n".encode(),
        [E(data="a\u2028b\u2029c\u0085d\x0be\x0cf\x1cg\x1dh\x1ei")],
    ),
    Vector(
        "line breaks in event and id are data",
        "event: a\u2028b\nid: c\x0bd\ndata: x\n\n".encode(),
        [E("a\u2028b", "x", "c\x0bd")],
        last_event_id="c\x0bd",
    ),
    # Encoding.
    Vector("BOM dropped", b"\xef\xbb\xbfdata: x\n\n", [E(data="x")]),
    Vector(
        "only the first BOM is dropped",
        b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n",
        [E(data="y")],  # the first line's name is "\ufeffdata": an unknown field
    ),
    Vector(
        "a BOM later is data",
        b"data: a\n\n\xef\xbb\xbfdata: b\n\ndata: \xef\xbb\xbfc\n\n",
        [E(data="a"), E(data="\ufeffc")],
    ),
    Vector("BOM alone", b"\xef\xbb\xbf", []),
    Vector(
        "multi-byte characters",
        "data: café 東京 😀\n\n".encode(),
        [E(data="café 東京 😀")],
    ),
    Vector("invalid byte", b"data: a\xffb\n\n", [E(data="a\ufffdb")]),
    Vector("truncated sequence", b"data: \xe6\x9d\n\n", [E(data="\ufffd")]),
    Vector("truncated at the end", b"data: x\n\ndata: \xe6\x9d", [E(data="x")]),
    Vector(
        "overlong and surrogate encodings",
        b"data: \xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80\n\n",
        [E(data=b"\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80".decode("utf-8", "replace"))],
    ),
    Vector("a broken BOM is not a BOM", b"\xef\xbbdata: x\n\n", []),
    # Mixed blocks, which switch between the decoder's paths.
    Vector(
        "plain and other blocks mixed",
        b"event: a\ndata: 1\n\n: keepalive\n\nevent: b\ndata: 2\n\ndata: 3\n\n"
        b"id: 7\ndata: 4\ndata: 5\n\nevent: c\ndata: 6\n\n",
        [
            E("a", "1"),
            E("b", "2"),
            E("message", "3"),
            E("message", "4\n5", "7"),
            E("c", "6", "7"),
        ],
        last_event_id="7",
    ),
]


def feed_all(
    chunks: Iterable[bytes], decoder: SSEDecoder | None = None
) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = decoder or SSEDecoder()
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    assert decoder.flush() == []
    return events, decoder


def check(vector: Vector, chunks: Sequence[bytes]) -> None:
    assert b"".join(chunks) == vector.stream
    events, decoder = feed_all(chunks)
    where = f"vector {vector.name!r} in chunks {list(chunks)!r}"
    assert events == vector.events, where
    assert decoder.last_event_id == vector.last_event_id, where
    assert decoder.retry == vector.retry, where


# One test per way of cutting the stream, each over every vector (the suite's
# per-test fixtures make hundreds of parametrized cases slow).


def test_vectors_whole() -> None:
    for vector in VECTORS:
        check(vector, [vector.stream])


def test_vectors_split_at_every_offset() -> None:
    for vector in VECTORS:
        for cut in range(1, len(vector.stream)):
            check(vector, [vector.stream[:cut], vector.stream[cut:]])


def test_vectors_one_byte_at_a_time() -> None:
    for vector in VECTORS:
        check(vector, [vector.stream[i : i + 1] for i in range(len(vector.stream))])


def test_vectors_with_empty_chunks_between_bytes() -> None:
    for vector in VECTORS:
        chunks = [b""]
        for i in range(len(vector.stream)):
            chunks += [vector.stream[i : i + 1], b""]
        check(vector, chunks)


def feed_data_all(chunks: Iterable[bytes]) -> tuple[list[tuple[str, str]], SSEDecoder]:
    """Every chunk through `feed_data`: (type, data) per event, decoded from the bytes."""
    decoder = SSEDecoder()
    events: list[tuple[str, str]] = []
    for chunk in chunks:
        names, datas = decoder.feed_data(chunk)
        assert all(isinstance(data, bytes) for data in datas)
        events += [
            ("message" if name is None else name.decode(), data.decode())
            for name, data in zip(names, datas, strict=True)
        ]
    assert decoder.flush() == []
    return events, decoder


def check_data(vector: Vector, chunks: Sequence[bytes]) -> None:
    events, decoder = feed_data_all(chunks)
    where = f"vector {vector.name!r} in chunks {list(chunks)!r}"
    assert events == [(event.event, event.data) for event in vector.events], where
    assert decoder.last_event_id == vector.last_event_id, where
    assert decoder.retry == vector.retry, where


def test_feed_data_gives_every_vector_whole_split_and_byte_by_byte() -> None:
    # CRLF, CR and LF line ends (split across chunks too), the BOM, comments,
    # retry, an id with NUL, multi-line data, invalid UTF-8: the same types and
    # data as `feed`, and the same last event ID and retry.
    for vector in VECTORS:
        stream = vector.stream
        check_data(vector, [stream])
        for cut in range(1, len(stream)):
            check_data(vector, [stream[:cut], stream[cut:]])
        check_data(vector, [stream[i : i + 1] for i in range(len(stream))])


def test_feed_data_of_plain_blocks_is_the_bytes_as_sent() -> None:
    decoder = SSEDecoder()
    names, datas = decoder.feed_data(b'event: delta\ndata: {"a":1}\n\ndata:  x\n\nda')
    assert (names, datas) == ([b"delta", None], [b'{"a":1}', b" x"])
    assert decoder.feed_data(b"ta: caf\xc3\xa9\n\n") == ([None], ["café".encode()])
    # Invalid UTF-8 comes out as `feed` decodes it: U+FFFD, in UTF-8.
    assert decoder.feed_data(b"data: \xff!\n\n") == ([None], ["\ufffd!".encode()])


def test_vectors_concatenated() -> None:
    # Vectors whose stream ends at a block boundary, back to back in one stream:
    # each must come out the same whatever came before it (a clean state).
    clean = [
        v
        for v in VECTORS
        if v.stream.endswith((b"\n\n", b"\r\r", b"\r\n\r\n"))
        and not v.stream.startswith(b"\xef\xbb\xbf")
        and b"id" not in v.stream
        and b"\n\r" not in v.stream[-3:]
    ]
    stream = b"".join(v.stream for v in clean)
    expected = [event for v in clean for event in v.events]
    for size in (1, 5, 64, len(stream)):
        events, _ = feed_all(stream[i : i + size] for i in range(0, len(stream), size))
        assert events == expected


def test_events_come_out_as_soon_as_their_block_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"event: a\nda") == []
    assert decoder.feed(b"ta: 1\n") == []
    assert decoder.feed(b"\ndata: 2\n") == [E("a", "1")]
    assert decoder.feed(b"\n") == [E("message", "2")]


def test_a_cr_at_the_end_of_a_chunk_ends_the_line_at_once() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r") == [E(data="a")]  # not waiting for a possible LF
    assert decoder.feed(b"data: b\n\r") == [E(data="b")]


def test_a_crlf_split_across_chunks_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    # Were the LF a second line end, it would end the block with "a" alone.
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n\r\n") == [E(data="a\nb")]


def test_the_lf_of_a_split_crlf_may_come_after_an_empty_chunk() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\n") == [E(data="a")]


def test_a_bom_split_across_chunks_is_dropped() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef") == []
    assert decoder.feed(b"\xbb") == []
    assert decoder.feed(b"\xbfdata: x\n\n") == [E(data="x")]


def test_a_stream_of_the_first_bytes_of_a_bom() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb") == []
    assert decoder.flush() == []
    # Those two bytes were the start of an unfinished line, and count as received.
    decoder = SSEDecoder(max_event_bytes=1)
    assert decoder.feed(b"\xef\xbb") == []
    with pytest.raises(ResponseTooLargeError):
        decoder.flush()


def test_last_event_id_changes_when_the_block_ends() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\n")
    assert decoder.last_event_id == ""
    decoder.feed(b"\n")
    assert decoder.last_event_id == "1"


def test_a_retry_too_long_for_int_is_ignored() -> None:
    stream = b"retry: 5\n\nretry: " + b"9" * 5000 + b"\ndata: x\n\n"
    for chunks in ([stream], [stream[:20], stream[20:]], [stream[:-5], stream[-5:]]):
        events, decoder = feed_all(chunks)
        assert events == [E(data="x")]
        assert decoder.retry == 5


def test_retry_counts_for_complete_lines_of_an_unfinished_block_at_flush() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"retry: 300\nretry: 4")
    assert decoder.flush() == []
    assert decoder.retry == 300  # "retry: 4" had no line end


def test_flush_starts_a_new_stream_and_keeps_id_and_retry() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"\xef\xbb\xbfid: 7\nretry: 50\ndata: a\n\nid: 8\ndata: b\n") == [
        E(data="a", id="7", retry=50)
    ]
    assert decoder.flush() == []
    assert (decoder.last_event_id, decoder.retry) == ("7", 50)
    # A reconnection: a BOM again, the id carries on, the unfinished block is gone.
    assert decoder.feed(b"\xef\xbb\xbfdata: c\n\n") == [E(data="c", id="7")]
    assert decoder.flush() == []


def test_flush_forgets_a_split_character_and_a_pending_crlf() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\r")
    decoder.flush()
    # The LF opens the new stream: an empty line, not the end of a CRLF.
    assert decoder.feed(b"\ndata: b\n\n") == [E(data="b")]
    decoder.feed(b"data: \xe6\x9d")
    decoder.flush()
    assert decoder.feed(b"\xb1data: c\n\n") == []  # "\ufffddata" is no field name


def test_a_reused_bytearray_buffer_is_not_kept() -> None:
    decoder = SSEDecoder()
    buffer = bytearray(b"data: abc")
    assert decoder.feed(buffer) == []  # type: ignore[arg-type]
    buffer[:] = b"XXXXXXXXX"
    assert decoder.feed(b"\n\n") == [E(data="abc")]


def test_server_sent_event_defaults_and_json() -> None:
    event = ServerSentEvent()
    assert (event.event, event.data, event.id, event.retry) == ("message", "", None, None)
    event = ServerSentEvent(data='{"a": [1, 2], "b": "é"}')
    assert event.json() == {"a": [1, 2], "b": "é"}
    with pytest.raises(msgspec.DecodeError):
        ServerSentEvent(data="not json").json()
    with pytest.raises(AttributeError):
        event.data = "x"  # type: ignore[misc]
    assert ServerSentEvent("a", "b", "c", 1) == ServerSentEvent(
        event="a", data="b", id="c", retry=1
    )


def test_many_events_in_large_chunks() -> None:
    blocks, expected = [], []
    for i in range(5000):
        if i % 3:
            blocks.append(f'event: delta\ndata: {{"i": {i}}}\n\n')
            expected.append(E("delta", f'{{"i": {i}}}'))
        else:
            blocks.append(f"data: {i}\n\n")
            expected.append(E("message", str(i)))
    body = "".join(blocks).encode()
    for size in (1, 7, 64, 1000, 16384, len(body)):
        events, _ = feed_all(body[i : i + size] for i in range(0, len(body), size))
        assert events == expected


# The size cap.


def _feed_until_error(decoder: SSEDecoder, chunks: Iterable[bytes]) -> list[ServerSentEvent]:
    """The events fed before the decoder raised; fails if it never raises."""
    events: list[ServerSentEvent] = []

    def feed_and_flush() -> None:
        for chunk in chunks:
            events.extend(decoder.feed(chunk))
        decoder.flush()

    with pytest.raises(ResponseTooLargeError, match="max_event_bytes") as info:
        feed_and_flush()
    assert info.value.limit == decoder._max_event_bytes
    return events


@pytest.mark.parametrize("size", [1, 100, 4096, None])
def test_cap_big_data_event(size: int | None) -> None:
    body = b"data: ok\n\ndata: " + b"x" * 5000 + b"\n\ndata: never\n\n"
    chunks = [body] if size is None else [body[i : i + size] for i in range(0, len(body), size)]
    events = _feed_until_error(SSEDecoder(max_event_bytes=1000), chunks)
    assert events == [E(data="ok")]


def test_cap_big_event_made_of_many_lines() -> None:
    body = b"data: 0123456789\n" * 200 + b"\n"
    assert _feed_until_error(SSEDecoder(max_event_bytes=1000), [body]) == []
    events, _ = feed_all([body], SSEDecoder(max_event_bytes=len(body)))
    assert len(events) == 1


@pytest.mark.parametrize("line", [b":" + b"c" * 5000, b"x" * 5000, b"foo: " + b"y" * 5000])
def test_cap_huge_line_without_line_end(line: bytes) -> None:
    # A comment, an unknown field: nothing dispatches, but the line must be kept
    # until it ends, so it is capped too.
    decoder = SSEDecoder(max_event_bytes=1000)
    assert decoder.feed(b"data: ok\n\n") == [E(data="ok")]
    events = _feed_until_error(decoder, [line[i : i + 100] for i in range(0, len(line), 100)])
    assert events == []


@pytest.mark.parametrize(
    ("block", "size"),
    [
        (b"event: e\n: c\ndata: 12345\n\n", 26),  # line ends included
        ("data: 東京\n\n".encode(), 14),  # bytes, not characters
        (b"data: x\r\n\r\n", 9),  # a CRLF counts one
        (b"\xef\xbb\xbfdata: x\n\n", 9),  # the BOM is not part of a block
    ],
)
def test_cap_counts_the_bytes_of_the_whole_block(block: bytes, size: int) -> None:
    for cut in range(len(block) + 1):
        events, _ = feed_all([block[:cut], block[cut:]], SSEDecoder(max_event_bytes=size))
        assert len(events) == 1
        decoder = SSEDecoder(max_event_bytes=size - 1)
        assert _feed_until_error(decoder, [block[:cut], block[cut:]]) == []


def test_cap_delivers_the_events_before_the_oversized_one_then_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    body = b"data: 1\n\ndata: 2\n\ndata: " + b"x" * 200 + b"\n\n"
    assert decoder.feed(body) == [E(data="1"), E(data="2")]
    with pytest.raises(ResponseTooLargeError):
        decoder.feed(b"data: 3\n\n")
    with pytest.raises(ResponseTooLargeError):  # and keeps raising
        decoder.flush()


@pytest.mark.parametrize("then", ["flush", "feed"])
def test_cap_a_chunk_that_ends_a_block_and_starts_an_oversized_one(then: str) -> None:
    decoder = SSEDecoder(max_event_bytes=100)
    assert decoder.feed(b"data: a\n\n: " + b"x" * 200) == [E(data="a")]
    with pytest.raises(ResponseTooLargeError):
        decoder.flush() if then == "flush" else decoder.feed(b"\n\n")


def test_cap_none_disables_it() -> None:
    data = "x" * (17 * 2**20)
    events, _ = feed_all([b"data: " + data.encode() + b"\n\n"], SSEDecoder(max_event_bytes=None))
    assert events == [E(data=data)]


def test_default_cap_is_16_mib() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ok\n\n") == [E(data="ok")]
    for _ in range(16):
        assert decoder.feed(b"x" * 2**20) == []
    with pytest.raises(ResponseTooLargeError) as info:
        decoder.feed(b"x")
    assert info.value.limit == 16 * 2**20


@pytest.mark.parametrize("cap", [0, -1])
def test_cap_must_be_positive(cap: int) -> None:
    with pytest.raises(ValueError, match="max_event_bytes"):
        SSEDecoder(max_event_bytes=cap)


def test_a_long_event_in_tiny_chunks_is_assembled_once() -> None:
    data = "".join(chr(0x4E00 + i % 500) for i in range(100_000))
    body = ("data: " + data + "\n\n").encode()
    events, _ = feed_all(body[i : i + 3] for i in range(0, len(body), 3))
    assert events == [E(data=data)]


# Linear time. A long block arriving in small chunks would cost time in proportion to
# the square of its size if the bytes already received were copied again for each new
# chunk. The decoder only ever copies them by joining its pieces through `sse._join`,
# so counting the bytes that pass through it checks the property exactly, with no
# timing.


@pytest.mark.parametrize(
    ("value", "lines"),
    [
        pytest.param("x" * 16 * 2**20, 1, id="one 16 MiB line"),
        pytest.param("123456789", 2**20, id="a million short lines, 16 MiB"),
    ],
)
def test_a_long_event_in_small_chunks_is_copied_a_bounded_number_of_times(
    value: str, lines: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = f"data: {value}\n".encode() * lines + b"\n"
    # Each byte is copied about twice: when its pieces are merged, then when the block
    # ends. Copying the whole block again for each 64-byte chunk would be 100,000 times.
    budget = 3 * len(body)
    copied = 0

    def counting_join(pieces: Iterable[bytes]) -> bytes:
        nonlocal copied
        joined = b"".join(pieces)
        copied += len(joined)
        # Failing at once, not after hours of copying.
        assert copied <= budget, f"copied {copied:,} bytes of a {len(body):,}-byte event"
        return joined

    monkeypatch.setattr(sse, "_join", counting_join)
    decoder = SSEDecoder(max_event_bytes=None)
    events: list[ServerSentEvent] = []
    for i in range(0, len(body), 64):
        events += decoder.feed(body[i : i + 64])
    assert events == [E(data="\n".join([value] * lines))]
    assert copied >= len(body)  # the block was joined through the counted name
