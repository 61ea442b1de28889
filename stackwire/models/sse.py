"""Server-Sent Events: the event value and the incremental parser of the wire format.

`SSEDecoder` turns the bytes of a ``text/event-stream`` body into `ServerSentEvent`
values, following the WHATWG HTML "event stream" interpretation rules:

- the stream is UTF-8 (a character may be split across chunks); invalid bytes
  become U+FFFD; one byte order mark at the very start of the stream is dropped;
- a line ends at CRLF, LF or CR, and at nothing else (U+2028, U+2029, U+0085, VT and
  FF are data); a CRLF split across two chunks is one line end;
- a line starting with ``:`` is a comment; otherwise the field name is what precedes
  the first ``:`` (the whole line when there is none) and one leading space of the
  value is dropped; only ``event``, ``data``, ``id`` and ``retry`` mean something;
- an empty line dispatches the block: ``data`` values are joined with ``\\n``, a block
  without any ``data`` line dispatches nothing, the event type defaults to
  ``message`` and is reset after each block; the last event ID persists across
  blocks; an ``id`` containing NUL is ignored; ``retry`` counts only when its value is
  ASCII digits;
- an unfinished last block (no empty line after it) is dropped.

How it works, and why:

- Lines are never split with ``str.splitlines``, which also splits on U+2028, VT, FF
  and friends. CR and CRLF are turned into LF once per chunk (a CR that ends a chunk
  ends its line at once; a LF starting the next chunk is then skipped), after which
  only LF separates lines.
- The decoder keeps the bytes of the block being received and decodes and parses a
  block only once its empty line has arrived. A complete block ends with a line end,
  an ASCII byte that UTF-8 never joins to its neighbours, so decoding blocks apart
  gives the text that decoding the whole stream would (a character split across
  chunks is whole by then). The kept bytes are a short list of pieces, joined once
  when the block ends: a long event fed in small chunks costs time in proportion to
  its size, never its square. Every copy of those bytes goes through one name,
  ``_join``, so that a test counts them.
- Complete blocks take one of two paths. Real streams are almost entirely "plain"
  blocks (an optional ``event`` line, one ``data`` line, the empty line); the
  complete blocks of a chunk are split by one call into the regular-expression
  engine, and when they are all plain, their events are built by ``map`` with no
  Python code per event. Any other text (comments, ``id`` and ``retry`` fields,
  several ``data`` lines, an empty ``event`` value, text longer than the size cap)
  sends the chunk's blocks through the general path, which applies the rules line by
  line. Both give the same events; the tests check both against a line-by-line model
  of the spec.
- The work per chunk is kept small, as chunks are often only a few events: one
  search for the last empty line, which also cuts the chunk (``rpartition``), one
  join, one decode, one split, no scan of the split's result.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from itertools import repeat
from typing import Any, Final

import msgspec

from stackwire.errors import ResponseTooLargeError

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "SSEDecoder", "ServerSentEvent"]

DEFAULT_MAX_EVENT_BYTES: Final = 16 * 2**20
"""The default size cap of one event (16 MiB)."""


class ServerSentEvent(msgspec.Struct, frozen=True, gc=False):
    """One dispatched Server-Sent Event.

    - ``event``: the event type, ``"message"`` when the stream names none.
    - ``data``: the ``data`` lines of the block, joined with ``"\\n"``.
    - ``id``: the last event ID in force when the event was dispatched (it persists
      across events until the stream sets another); ``None`` when there is none (never
      set, or reset by an empty ``id`` field).
    - ``retry``: the reconnection time in milliseconds set by this block, if any.
    """

    event: str = "message"
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The ``data`` decoded as JSON (raises ``msgspec.DecodeError`` if it is not)."""
        return msgspec.json.decode(self.data)


# The fast path: a text of "plain" blocks, each an optional `event` line, one `data`
# line and the empty line that ends it, is split by the C regex engine in one call
# into [gap, event, data, gap, event, data, ..., gap]. The last branch takes all the
# text from the first place where no plain block starts, in one match without
# groups, so the gaps are always empty, and the text was nothing but plain blocks
# exactly when the last match has a `data` value: `parts[-2] is not None`, with no
# scan of the list. (Each capture drops one leading space; an empty `event` value is
# left to the general path; a missing `event` line gives None.) Possessive
# quantifiers keep a failed match linear. (Without DOTALL, "." is any character but
# "\n", which the engine scans faster than [^\n]; the empty branch is faster than an
# optional group; with DOTALL, ".++" jumps to the end of the text at once.)
_split_plain_blocks: Final = re.compile(r"(?:event: ?+(.++)\n|)data: ?+(.*+)\n\n|(?s:.++)").split
# The same split of the undecoded bytes, for `feed_data` (in a bytes pattern "." is any
# byte but LF; the structure of a block is ASCII, which no invalid UTF-8 can hide).
_split_plain_bytes: Final = re.compile(rb"(?:event: ?+(.++)\n|)data: ?+(.*+)\n\n|(?s:.++)").split
# Where the split puts the event types and the data values (slices made once, where
# `parts[1::3]` would make one per call).
_EVENTS: Final = slice(1, None, 3)
_DATA: Final = slice(2, None, 3)

# The bytes of the unfinished block are only ever copied by joining its pieces through
# this name (when the block ends, at a merge, at the end of the stream), never by
# concatenation, so that a test can count the bytes copied and check that a block
# arriving in small chunks is copied a bounded number of times: linear time, checked
# without timing anything.
_join = b"".join

_BOM: Final = b"\xef\xbb\xbf"

# Past this many pieces, the pieces of an unfinished block are merged, so that a long
# block arriving in tiny chunks does not cost a list slot and an object per chunk.
_MERGE_PIECES: Final = 256


def _parse_retry(value: str) -> int | None:
    """The ``retry`` field's value as milliseconds, or ``None`` if it is not ASCII digits
    (or has more digits than ``int()`` accepts, which is no usable delay anyway)."""
    if value.isascii() and value.isdigit():
        try:
            return int(value)
        except ValueError:
            return None
    return None


class SSEDecoder:
    """Incremental parser of a ``text/event-stream`` body.

    Feed it the body chunk by chunk, as bytes arrive, in any sizes::

        decoder = SSEDecoder()
        async for chunk in response.content.iter_any():
            for event in decoder.feed(chunk):
                ...
        decoder.flush()

    `feed` returns the events completed by that chunk; how the body is cut into
    chunks never changes which events come out, nor whether and where
    `ResponseTooLargeError` is raised. `flush` ends the stream.

    The decoder keeps the bytes of the block being received (from the end of the
    last complete block up to the newest byte) and decodes and parses blocks once
    their empty line has arrived: every complete block in a chunk in one pass.

    ``max_event_bytes`` caps one block as received: its bytes, line ends included
    (a CRLF counts one), the last line possibly unfinished. It bounds what a server
    can make the client buffer, whether by a long event, an endless line or a huge
    comment. Past the cap `feed` raises `ResponseTooLargeError`. When the chunk that
    passed it also completed events before the oversized block, `feed` returns those
    first and the next `feed` or `flush` raises. Once raised, the decoder keeps
    raising: the stream cannot be trusted to resynchronise. ``None`` disables the cap.
    """

    __slots__ = (
        "_at_start",
        "_careful",
        "_failure",
        "_head",
        "_last_event_id",
        "_max_event_bytes",
        "_merged",
        "_more",
        "_more_size",
        "_pending",
        "_retry",
        "_short_path_limit",
        "_skip_lf",
    )

    def __init__(self, *, max_event_bytes: int | None = DEFAULT_MAX_EVENT_BYTES) -> None:
        if max_event_bytes is not None and max_event_bytes < 1:
            raise ValueError(f"max_event_bytes must be positive or None, not {max_event_bytes}")
        self._max_event_bytes = max_event_bytes
        self._short_path_limit = sys.maxsize if max_event_bytes is None else max_event_bytes
        self._last_event_id = ""
        self._retry: int | None = None
        self._failure: ResponseTooLargeError | None = None
        self._start_stream()

    def _start_stream(self) -> None:
        self._at_start = True  # a BOM may still come: `_head` holds what may be one
        self._head = b""
        self._skip_lf = False  # the last chunk ended in CR: a LF first completes its CRLF
        # `feed` takes its short path unless one of the above (or a failure) is pending.
        self._careful = True
        # The unfinished block, line ends normalised to LF: `_pending`, then the pieces
        # in `_more` when it spans several chunks (`_merged` of them already merged).
        self._pending = b""
        self._more: list[bytes] = []
        self._more_size = 0
        self._merged = 0

    @property
    def last_event_id(self) -> str:
        """The last event ID string: the ID in force at the last dispatch (``""`` if none).

        As in the spec, an ``id`` field takes effect when its block ends (at the empty
        line), even when the block carries no data, and not when the block is left
        unfinished at the end of the stream. This is the value to send back as
        ``Last-Event-ID`` on a reconnection.
        """
        return self._last_event_id

    @property
    def retry(self) -> int | None:
        """The last valid ``retry`` value (milliseconds), ``None`` if none yet.

        A ``retry`` field counts once its block is complete; the complete lines of an
        unfinished block count at `flush`, or, for a block that passed the size cap,
        those that ended within the cap count when the error is raised. So once the
        stream is over, the value is the one the spec's line-by-line processing gives,
        ready for a reconnection.
        """
        return self._retry

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Parse the next chunk of the body; return the events it completed, in order."""
        if self._careful:
            chunk = self._start_carefully(chunk)
        # (13 is CR. Searching for the int is faster: `b"\r" in chunk` first tries to
        # read its operand as an int, and raising and clearing that error costs more
        # than the search.)
        if 13 in chunk:
            if chunk[-1] == 13:
                # That CR already ends its line; a LF at the start of the next chunk
                # is the second half of a CRLF.
                self._skip_lf = self._careful = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        # `head` and `sep`: the complete blocks in this chunk, up to the empty line that
        # ends the last one; `rest`: the start of the next block.
        head, sep, rest = chunk.rpartition(b"\n\n")
        if not sep:
            if not chunk:
                return []
            if chunk[0] != 10 or not self._at_line_start():
                # No block ends in this chunk (not even by an empty line at its start,
                # right after a line end): it all belongs to the unfinished block.
                self._add_pending(chunk)
                return []
            sep, rest = b"\n", chunk[1:]
        if self._more:
            blocks = _join([self._pending, *self._more, head, sep])
            self._more = []
            self._more_size = self._merged = 0
        else:
            blocks = _join((self._pending, head, sep))
        limit = self._short_path_limit
        if len(blocks) <= limit:  # then no block in it can pass the cap
            # The short path: nothing but plain blocks, split in one call. Complete
            # blocks end with a line end, so no character is cut: decoding them apart
            # from the rest of the stream gives the same text.
            parts = _split_plain_blocks(blocks.decode("utf-8", "replace"))
            if parts[-2] is not None:
                self._pending = rest
                events = parts[_EVENTS]
                if not all(events):  # some block had no `event` line
                    events = [event or "message" for event in events]
                # Plain blocks set no ID: the one in force is the last event ID.
                ident = self._last_event_id
                if ident:
                    out = [*map(ServerSentEvent, events, parts[_DATA], repeat(ident))]
                else:
                    out = [*map(ServerSentEvent, events, parts[_DATA])]
                if len(rest) > limit:
                    self._overflow()  # raised by the next call: these events come first
                return out
        out = []
        try:
            self._parse_lines(blocks, out)
        except ResponseTooLargeError as exc:
            self._failure = exc
            self._careful = True
            if out:
                return out
            raise
        self._pending = rest
        if len(rest) > limit:
            error = self._overflow()
            if not out:
                raise error
        return out

    def feed_data(self, chunk: bytes) -> tuple[list[bytes | None], list[bytes]]:
        """`feed`, for a caller that wants only each event's type and data, as bytes.

        Returns two lists of the same length, one entry per event `feed` would
        return: the event types (``None`` for a block without an ``event`` line,
        which `feed` calls ``"message"``) and the data, each the UTF-8 encoding of
        `feed`'s text (invalid bytes already replaced by U+FFFD). The decoder's state
        (`last_event_id`, `retry`, the size cap, the BOM, split line ends) moves
        exactly as with `feed`, and the two may be mixed on one stream.

        For plain blocks (the common case) no text is made and no event object: the
        bytes are split by one call into the regular-expression engine, after a check
        that they are ASCII (or valid UTF-8). A typed stream hands the data straight
        to a msgspec decoder, which reads UTF-8 bytes.
        """
        blocks, rest = self._complete_blocks(chunk)
        if not blocks:
            return [], []
        limit = self._short_path_limit
        if len(blocks) <= limit:
            text = blocks
            if not text.isascii():
                try:
                    text.decode()
                except UnicodeDecodeError:  # as `feed` decodes it, in valid UTF-8
                    text = text.decode("utf-8", "replace").encode()
            parts = _split_plain_bytes(text)
            if parts[-2] is not None:
                self._pending = rest
                if len(rest) > limit:
                    self._overflow()  # raised by the next call: these events come first
                return parts[_EVENTS], parts[_DATA]
        events = self._parse_general(blocks, rest)
        return [event.event.encode() for event in events], [event.data.encode() for event in events]

    def _complete_blocks(self, chunk: bytes) -> tuple[bytes, bytes]:
        """The complete blocks that ``chunk`` ends, up to and with the line ends after
        the last one (``b""`` when none ends in it: the chunk is then added to the
        unfinished block), and what follows them: the start of the next block.

        `feed` does the same inline (a method call per chunk costs it 2% of its time
        at 1 KiB chunks); the tests feed both on one stream, so the two stay in step.
        """
        if self._careful:
            chunk = self._start_carefully(chunk)
        # (13 is CR. Searching for the int is faster: `b"\r" in chunk` first tries to
        # read its operand as an int, and raising and clearing that error costs more
        # than the search.)
        if 13 in chunk:
            if chunk[-1] == 13:
                # That CR already ends its line; a LF at the start of the next chunk
                # is the second half of a CRLF.
                self._skip_lf = self._careful = True
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        # `head` and `sep`: the complete blocks in this chunk, up to the empty line that
        # ends the last one; `rest`: the start of the next block.
        head, sep, rest = chunk.rpartition(b"\n\n")
        if not sep:
            if not chunk:
                return b"", b""
            if chunk[0] != 10 or not self._at_line_start():
                # No block ends in this chunk (not even by an empty line at its start,
                # right after a line end): it all belongs to the unfinished block.
                self._add_pending(chunk)
                return b"", b""
            sep, rest = b"\n", chunk[1:]
        if self._more:
            blocks = _join([self._pending, *self._more, head, sep])
            self._more = []
            self._more_size = self._merged = 0
        else:
            blocks = _join((self._pending, head, sep))
        return blocks, rest

    def _parse_general(self, blocks: bytes, rest: bytes) -> list[ServerSentEvent]:
        """The events of ``blocks`` by the general path; ``rest`` is then pending
        (`feed` does the same inline)."""
        out: list[ServerSentEvent] = []
        try:
            self._parse_lines(blocks, out)
        except ResponseTooLargeError as exc:
            self._failure = exc
            self._careful = True
            if out:
                return out
            raise
        self._pending = rest
        if len(rest) > self._short_path_limit:
            error = self._overflow()
            if not out:
                raise error
        return out

    def flush(self) -> list[ServerSentEvent]:
        """End the stream; always returns ``[]``.

        Per the spec, an unfinished last block is dropped: no event comes out of it.
        Its complete lines still count for `retry`, as the spec processes each line
        as it arrives; a last line without a line end is not a line and is dropped.

        The decoder is then ready for a new stream (a reconnection): `last_event_id`
        and `retry` are kept, and the ID starts as `last_event_id` (as browsers do);
        a new stream may start with a BOM again.
        """
        if self._failure is not None:
            raise self._failure
        if self._head:  # the stream was one or two bytes that a BOM starts with
            self._add_pending(self._head)
        self._apply_retry_lines(_join([self._pending, *self._more]))
        self._start_stream()
        return []

    def _start_carefully(self, chunk: bytes) -> bytes:
        """Raise a failure; drop a BOM at the start and the LF of a split CRLF."""
        if self._failure is not None:
            raise self._failure
        if self._at_start:
            chunk = self._head + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._head = chunk  # wait for enough bytes to tell
                return b""
            self._head = b""
            self._at_start = False
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if chunk and self._skip_lf:
            self._skip_lf = False
            if chunk[0] == 10:
                chunk = chunk[1:]
        self._careful = self._at_start or self._skip_lf
        return chunk

    def _at_line_start(self) -> bool:
        """Whether the unfinished block is empty or ends with a line end."""
        return (self._more[-1] if self._more else self._pending)[-1:] in (b"", b"\n")

    def _add_pending(self, chunk: bytes) -> None:
        """Add ``chunk``, which ends no block, to the unfinished block."""
        chunk = bytes(chunk)  # the same object for bytes; a bytearray may be reused
        if not self._pending:
            self._pending = chunk
        else:
            more = self._more
            more.append(chunk)
            self._more_size += len(chunk)
            if len(more) - self._merged > _MERGE_PIECES:
                more[self._merged :] = [_join(more[self._merged :])]
                self._merged += 1
        if len(self._pending) + self._more_size > self._short_path_limit:
            raise self._overflow()

    def _overflow(self) -> ResponseTooLargeError:
        """Fail the decoder because the unfinished block passed the cap."""
        cap = self._max_event_bytes
        assert cap is not None
        # The spec's parser would have processed the lines that ended within the cap
        # by now: of those, only a `retry` field has an effect that outlives the block.
        self._apply_retry_lines(_join([self._pending, *self._more])[:cap])
        self._failure = self._too_large()
        self._careful = True
        return self._failure

    def _apply_retry_lines(self, raw: bytes) -> None:
        """Apply the `retry` fields among the complete lines of ``raw``."""
        if b"retry" not in raw:
            return
        for line in raw[: raw.rfind(b"\n") + 1].decode("utf-8", "replace").split("\n"):
            name, _, value = line.partition(":")
            if name == "retry":
                retry = _parse_retry(value[1:] if value[:1] == " " else value)
                if retry is not None:
                    self._retry = retry

    def _too_large(self) -> ResponseTooLargeError:
        cap = self._max_event_bytes
        assert cap is not None
        return ResponseTooLargeError(
            f"a server-sent event passed max_event_bytes={cap} before it ended; "
            "raise max_event_bytes (or pass None) if such events are expected",
            limit=cap,
        )

    def _parse_lines(self, raw: bytes, out: list[ServerSentEvent]) -> None:
        """The general path: apply the rules line by line to ``raw``, complete blocks."""
        cap = self._max_event_bytes
        if cap is not None and len(raw) > cap:
            # Some block may pass the cap: measure each line in bytes, as received.
            raw_lines = raw.split(b"\n")
            raw_lines.pop()  # `raw` ends with a line end: nothing follows it
            sizes: Iterable[int] = [len(line) + 1 for line in raw_lines]
            lines = [line.decode("utf-8", "replace") for line in raw_lines]
        else:
            cap = sys.maxsize
            sizes = repeat(0)
            lines = raw.decode("utf-8", "replace").split("\n")
            lines.pop()
        size = 0  # of the current block
        event = ""
        data: list[str] = []
        block_retry: int | None = None
        # The ID buffer: between calls it is always the last event ID, as every
        # block parsed so far ended with its empty line.
        ident = self._last_event_id
        for line, line_size in zip(lines, sizes, strict=False):
            size += line_size
            if size > cap:
                raise self._too_large()
            if not line:  # the empty line: dispatch
                size = 0
                self._last_event_id = ident
                if data:
                    out.append(
                        ServerSentEvent(
                            event or "message", "\n".join(data), ident or None, block_retry
                        )
                    )
                    data = []
                event = ""
                block_retry = None
                continue
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                if "\0" not in value:
                    ident = value
            elif name == "retry":
                retry = _parse_retry(value)
                if retry is not None:
                    block_retry = self._retry = retry
            # Anything else (a comment, an unknown field) is ignored.
