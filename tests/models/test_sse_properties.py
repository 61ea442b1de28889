"""SSEDecoder against a reference model written straight from the WHATWG rules.

The reference walks the stream one byte at a time and handles each line as the spec
describes the parser: slow and obviously right. Hypothesis then checks, on generated
streams cut into random chunks, that the decoder agrees with it (and with the events
the stream was built from), and that random bytes only ever give events or
`ResponseTooLargeError`, whatever the chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stackwire.errors import ResponseTooLargeError
from stackwire.models.sse import ServerSentEvent, SSEDecoder

E = ServerSentEvent
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Outcome:
    """What a stream gives: events, then maybe an oversize error, and the final state."""

    events: list[ServerSentEvent] = field(default_factory=list)
    too_large: bool = False
    last_event_id: str = ""
    retry: int | None = None


def reference(stream: bytes, max_event_bytes: int | None = None) -> Outcome:
    """The WHATWG event-stream interpretation, one byte, then one line, at a time.

    Lines are split on the bytes CR, LF and CRLF, then each line is decoded: the
    same text as decoding the whole stream first, as the spec says, since UTF-8
    decoding never joins an ASCII byte to its neighbours (a test below checks it).
    The size cap is the decoder's documented rule: the bytes of one block as
    received (a line end counts one, a CRLF too) must not exceed the cap.
    """
    if stream.startswith(b"\xef\xbb\xbf"):
        stream = stream[3:]
    outcome = Outcome()
    event_type = ""
    data = ""
    id_buffer = ""
    block_retry: int | None = None

    def process(line: str) -> None:
        nonlocal event_type, data, id_buffer, block_retry
        if line == "":
            outcome.last_event_id = id_buffer
            if data == "":
                event_type = ""
                block_retry = None
                return
            if data.endswith("\n"):
                data = data[:-1]
            outcome.events.append(E(event_type or "message", data, id_buffer or None, block_retry))
            data = ""
            event_type = ""
            block_retry = None
            return
        if line.startswith(":"):
            return
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "event":
            event_type = value
        elif name == "data":
            data += value + "\n"
        elif name == "id":
            if "\0" not in value:
                id_buffer = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            try:
                number = int(value)
            except ValueError:  # more digits than int() takes: ignored
                return
            block_retry = outcome.retry = number

    line = bytearray()
    block_size = 0
    i = 0
    while i < len(stream):
        byte = stream[i : i + 1]
        block_size += 1
        if max_event_bytes is not None and block_size > max_event_bytes:
            outcome.too_large = True
            return outcome
        if byte in (b"\r", b"\n"):
            if byte == b"\r" and stream[i + 1 : i + 2] == b"\n":
                i += 1
            process(line.decode("utf-8", "replace"))
            if not line:
                block_size = 0
            line = bytearray()
        else:
            line += byte
        i += 1
    # The last line has no line end: it is not a line, and is dropped.
    return outcome


def decode(chunks: list[bytes], max_event_bytes: int | None = None) -> Outcome:
    decoder = SSEDecoder(max_event_bytes=max_event_bytes)
    outcome = Outcome()
    try:
        for chunk in chunks:
            outcome.events += decoder.feed(chunk)
        assert decoder.flush() == []
    except ResponseTooLargeError:
        outcome.too_large = True
    outcome.last_event_id = decoder.last_event_id
    outcome.retry = decoder.retry
    return outcome


def cut(stream: bytes, offsets: list[int]) -> list[bytes]:
    points = sorted({0, len(stream), *(o % (len(stream) + 1) for o in offsets)})
    return [stream[a:b] for a, b in pairwise(points)]


# The reference model itself, on a few known answers.


def test_reference_model_known_answers() -> None:
    assert reference(b"\xef\xbb\xbfevent: a\r\ndata: 1\rdata:2\n\n").events == [E("a", "1\n2")]
    assert reference(b"id: 1\ndata\n\nid\n\nretry: 7\ndata: x\n").events == [E("message", "", "1")]
    outcome = reference(b"id: 1\ndata\n\nid\n\nretry: 7\ndata: x\n")
    assert (outcome.last_event_id, outcome.retry) == ("", 7)
    assert reference("data: a\u2028b\x0bc\n\n".encode()).events == [E(data="a\u2028b\x0bc")]
    assert reference(b"data: 12345\n\n", max_event_bytes=13) == Outcome([E(data="12345")])
    assert reference(b"data: 12345\n\n", max_event_bytes=12).too_large


def _lines_by_bytes(stream: bytes) -> list[str]:
    lines = stream.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return [line.decode("utf-8", "replace") for line in lines]


def _lines_by_characters(stream: bytes) -> list[str]:
    text = stream.decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


@SETTINGS
@given(st.binary(max_size=100))
def test_decoding_lines_apart_is_decoding_the_whole(stream: bytes) -> None:
    # What lets the reference (and the decoder) decode line by line, or block by block.
    assert _lines_by_bytes(stream) == _lines_by_characters(stream)


# Abstract events, serialised with random line ends, chunked at random.

LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])
AFTER_CR = st.sampled_from(["\r\n", "\r"])
# Any character but the three line ends (and lone surrogates, which UTF-8 cannot carry);
# U+2028, U+2029, U+0085, VT, FF and NUL are data and must stay so.
VALUE_CHARS = st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n")
TRICKY_CHARS = st.sampled_from(["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x00", ":", " "])
VALUES = st.text(st.one_of(VALUE_CHARS, TRICKY_CHARS), max_size=12)


@dataclass
class Abstract:
    event: str | None
    data: list[str]
    id: str | None
    retry: int | None
    comments: list[str]


ABSTRACT = st.builds(
    Abstract,
    event=st.none() | VALUES,
    data=st.lists(VALUES, max_size=3),
    id=st.none() | VALUES.filter(lambda v: "\0" not in v),
    retry=st.none() | st.integers(min_value=0, max_value=10**12),
    comments=st.lists(VALUES, max_size=2),
)


def serialise(events: list[Abstract], draw_end: st.DrawFn, bom: bool) -> bytes:
    lines: list[str] = []
    for event in events:
        lines += [":" + comment for comment in event.comments]
        if event.event is not None:
            lines.append("event: " + event.event)
        if event.id is not None:
            lines.append("id: " + event.id)
        if event.retry is not None:
            lines.append(f"retry: {event.retry}")
        lines += ["data: " + value for value in event.data]
        lines.append("")
    text = []
    end = ""
    for line in lines:
        # After a CR, an empty line ended by LF would read as one CRLF.
        end = draw_end(AFTER_CR if end == "\r" and not line else LINE_ENDS)
        text += [line, end]
    return (b"\xef\xbb\xbf" if bom else b"") + "".join(text).encode()


def expected_events(events: list[Abstract]) -> Outcome:
    outcome = Outcome()
    last_id = ""
    for event in events:
        if event.id is not None:
            last_id = event.id
        if event.retry is not None:
            outcome.retry = event.retry
        outcome.last_event_id = last_id
        if event.data:
            outcome.events.append(
                E(event.event or "message", "\n".join(event.data), last_id or None, event.retry)
            )
    return outcome


@st.composite
def generated_streams(draw: st.DrawFn) -> tuple[list[Abstract], bytes]:
    events = draw(st.lists(ABSTRACT, max_size=8))
    return events, serialise(events, draw, draw(st.booleans()))


@SETTINGS
@given(generated_streams(), st.lists(st.integers(min_value=0), max_size=12))
def test_generated_streams_match_the_reference_and_the_events(
    generated: tuple[list[Abstract], bytes], offsets: list[int]
) -> None:
    events, stream = generated
    expected = reference(stream)
    assert expected == expected_events(events)
    assert decode(cut(stream, offsets)) == expected
    assert decode([stream]) == expected


@SETTINGS
@given(
    generated_streams(),
    st.integers(min_value=1, max_value=7),
    st.sampled_from([None, 24, 80]),
)
def test_generated_streams_in_tiny_chunks_with_and_without_a_cap(
    generated: tuple[list[Abstract], bytes], size: int, cap: int | None
) -> None:
    _, stream = generated
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    assert decode(chunks, cap) == reference(stream, cap)


# Random bytes: never anything but events or ResponseTooLargeError.

TOKENS = st.sampled_from(
    [
        b"data:",
        b"data: ",
        b"event:",
        b"event: ",
        b"id:",
        b"retry:",
        b"retry: 12",
        b":",
        b" ",
        b"\n",
        b"\r",
        b"\r\n",
        b"\n\n",
        b"\x00",
        b"\xef\xbb\xbf",
        b"\xe2\x80\xa8",
        b"\xc2\x85",
        b"\xe6\x9d\xb1",
        b"\xe6\x9d",
        b"\xf0\x9f\x98\x80",
        b"\xff",
        b"\x80",
        b"\x0b\x0c",
        b"x",
        b"x" * 40,
        b"123",
    ]
)
NOISE = st.lists(st.one_of(TOKENS, st.binary(max_size=6)), max_size=40).map(b"".join)


@SETTINGS
@given(
    st.one_of(st.binary(max_size=200), NOISE),
    st.lists(st.integers(min_value=0), max_size=10),
    st.sampled_from([None, 16, 64]),
)
@example(b"data: \xe6\x9d", [7], 7)
@example(b"data: x\r", [8], None)
@example(b"data: a\n\n" + b"x" * 80, [], 64)
@example(b"\xef\xbb", [1], 1)
@example(b"data: a\n\nretry: 5\n" + b"x" * 80, [30], 64)
def test_random_bytes_give_events_or_too_large_whatever_the_chunking(
    stream: bytes, offsets: list[int], cap: int | None
) -> None:
    whole = decode([stream], cap)
    assert all(isinstance(event, ServerSentEvent) for event in whole.events)
    assert decode(cut(stream, offsets), cap) == whole
    assert decode([stream[i : i + 1] for i in range(len(stream))], cap) == whole
    assert whole == reference(stream, cap)


# `feed_data`, the bytes-only twin of `feed` that typed streams use: the same events
# (as UTF-8 bytes of the same text), the same state, the same errors, whatever the
# chunking, and mixed with `feed` on one stream.


def decode_data(
    chunks: list[bytes], max_event_bytes: int | None = None, *, mixed: bool = False
) -> Outcome:
    decoder = SSEDecoder(max_event_bytes=max_event_bytes)
    outcome = Outcome()
    try:
        for i, chunk in enumerate(chunks):
            if mixed and i % 2:
                outcome.events += [E(event.event, event.data) for event in decoder.feed(chunk)]
                continue
            names, datas = decoder.feed_data(chunk)
            assert len(names) == len(datas)
            outcome.events += [
                # The bytes are the UTF-8 of the text: decoding them strictly works.
                E("message" if name is None else name.decode(), data.decode())
                for name, data in zip(names, datas, strict=True)
            ]
        assert decoder.flush() == []
    except ResponseTooLargeError:
        outcome.too_large = True
    outcome.last_event_id = decoder.last_event_id
    outcome.retry = decoder.retry
    return outcome


def _types_and_data(outcome: Outcome) -> Outcome:
    """`outcome` with only what `feed_data` reports of each event: type and data."""
    return Outcome(
        [E(event.event, event.data) for event in outcome.events],
        outcome.too_large,
        outcome.last_event_id,
        outcome.retry,
    )


@SETTINGS
@given(
    generated_streams(),
    st.lists(st.integers(min_value=0), max_size=12),
    st.sampled_from([None, 24, 80]),
)
def test_feed_data_gives_the_types_and_data_of_the_reference(
    generated: tuple[list[Abstract], bytes], offsets: list[int], cap: int | None
) -> None:
    _, stream = generated
    expected = _types_and_data(reference(stream, cap))
    assert decode_data(cut(stream, offsets), cap) == expected
    assert decode_data(cut(stream, offsets), cap, mixed=True) == expected
    assert decode_data([stream[i : i + 3] for i in range(0, len(stream), 3)], cap) == expected


@SETTINGS
@given(
    st.one_of(st.binary(max_size=200), NOISE),
    st.lists(st.integers(min_value=0), max_size=10),
    st.sampled_from([None, 16, 64]),
)
@example(b"data: \xe6\x9d", [7], 7)
@example(b"data: \xff\xe6\x9d\n\n", [7], None)
@example(b"event: \xff\ndata: x\n\n", [], None)
@example(b"data: x\r", [8], None)
@example(b"data: a\n\n" + b"x" * 80, [], 64)
@example(b"\xef\xbb", [1], 1)
@example(b"data: a\n\nretry: 5\n" + b"x" * 80, [30], 64)
def test_feed_data_on_random_bytes_matches_the_reference(
    stream: bytes, offsets: list[int], cap: int | None
) -> None:
    expected = _types_and_data(reference(stream, cap))
    assert decode_data([stream], cap) == expected
    assert decode_data(cut(stream, offsets), cap) == expected
    assert decode_data(cut(stream, offsets), cap, mixed=True) == expected
    assert decode_data([stream[i : i + 1] for i in range(len(stream))], cap) == expected
