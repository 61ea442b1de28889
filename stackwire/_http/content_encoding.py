"""Decoding compressed response bodies (``gzip``, ``deflate``, and ``br`` / ``zstd``
when their optional package is installed), checked and bounded.

stackwire decodes compressed bodies itself (the transport turns aiohttp's automatic
decompression off) for two reasons aiohttp's own decoder does not cover:

- a gzip body cut short inside the compressed data, but framed correctly (its
  ``Content-Length`` matches the bytes sent), must be an error, never a short
  success: `ContentDecoder.finish` raises unless the compressed stream really ended;
- output is produced in pieces of at most `PIECE_BYTES`, however large the input
  chunk expands, so a size cap stops a decompression bomb after about ``cap +
  PIECE_BYTES`` bytes, not after inflating a whole network chunk.

A ``Content-Encoding`` may list several codings in the order they were applied
(``gzip, br``: gzip first, then br; or two headers saying the same, RFC 9110
section 8.4): they are undone in reverse order, each step as bounded as one coding
alone; ``identity`` entries change nothing. Bytes after the end of a complete gzip
member that do not start another member (a trailing newline some servers add) are
ignored, as browsers and curl ignore them; the member itself was checked whole.

``br`` needs the ``brotli`` package (or ``brotlicffi``), 1.2 or newer for its bounded
output (``pip install stackwire[brotli]``); ``zstd`` needs ``zstandard``
(``stackwire[zstd]``). `accept_encoding` asks only for the codings that can be
decoded here. A body in any other coding is handed on as received by ``read()`` (a
caller who asked for it may decode it); decoding it into a value raises an error that
names the coding (`undecodable_coding`), never one about malformed JSON.
"""

from __future__ import annotations

import functools
import importlib.util
import zlib
from collections.abc import Iterator
from typing import Any

__all__ = [
    "ACCEPT_ENCODING",
    "PIECE_BYTES",
    "BrokenContentEncodingError",
    "ContentDecoder",
    "accept_encoding",
    "content_decoder",
    "undecodable_coding",
]

# What is always asked for: the codings the standard library decodes.
ACCEPT_ENCODING = "gzip, deflate"

# The optional codings: the packages that decode each one (any of them will do), and
# the extra that installs one.
_OPTIONAL_CODINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "br": (("brotli", "brotlicffi"), "brotli"),
    "zstd": (("zstandard",), "zstd"),
}

# The most output one decompression step produces.
PIECE_BYTES = 256 * 1024

# How every gzip member starts (RFC 1952): a later member of a body must too.
_GZIP_MAGIC = b"\x1f\x8b"

# `ContentDecoder._member`: where a gzip body is in its members.
_FIRST_MEMBER = 0  # the first member: any failure is a corrupt body
_LATER_MEMBER_NO_OUTPUT = 1  # a later one that has produced nothing yet
_LATER_MEMBER = 2  # a later one producing output: a failure is a corrupt body
_IGNORING_THE_REST = 3  # what followed the last member was not another member


class BrokenContentEncodingError(ValueError):
    """A compressed body is corrupt, or ended before its compressed stream did."""


class ContentDecoder:
    """Incremental decoder of one ``gzip`` or ``deflate`` body.

    >>> import gzip
    >>> body = gzip.compress(b"hello " * 1000)
    >>> decoder = ContentDecoder("gzip")
    >>> out = b"".join(decoder.feed(body[:20])) + b"".join(decoder.feed(body[20:]))
    >>> decoder.finish()
    >>> out == b"hello " * 1000
    True
    >>> decoder = ContentDecoder("gzip")
    >>> _ = b"".join(decoder.feed(body[:-4]))
    >>> try:
    ...     decoder.finish()
    ... except BrokenContentEncodingError as exc:
    ...     print(exc)
    the gzip body ended before its compressed stream did
    """

    __slots__ = ("_coding", "_fed", "_member", "_zlib")

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
        )
        self._fed = False
        self._member = _FIRST_MEMBER

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most `PIECE_BYTES`."""
        if not data or self._member == _IGNORING_THE_REST:
            return
        decompressor = self._zlib
        if decompressor is None:
            # deflate: a zlib stream (RFC 1950) or, as some servers send, raw deflate.
            wbits = zlib.MAX_WBITS if data[0] & 0x0F == 8 else -zlib.MAX_WBITS
            decompressor = self._zlib = zlib.decompressobj(wbits)
        self._fed = True
        pending = data
        try:
            while True:
                if decompressor.eof:
                    rest = decompressor.unused_data + pending
                    if self._coding == "gzip":
                        rest = rest.lstrip(b"\0")  # zero padding after a member
                    if not rest or self._coding != "gzip":
                        return  # bytes after the end of a deflate stream are ignored
                    if not _GZIP_MAGIC.startswith(rest[:2]):
                        # Not another member: trailing bytes after a whole member.
                        self._member = _IGNORING_THE_REST
                        return
                    # Another gzip member follows (a body may be several concatenated).
                    decompressor = self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    self._member = _LATER_MEMBER_NO_OUTPUT
                    pending = rest
                piece = decompressor.decompress(pending, PIECE_BYTES)
                # At the end of a stream, what follows it is in ``unused_data`` (and,
                # when the output limit was reached before, in ``unconsumed_tail``
                # too: taking both would decode the next gzip member twice, and so on).
                pending = b"" if decompressor.eof else decompressor.unconsumed_tail
                if piece:
                    if self._member == _LATER_MEMBER_NO_OUTPUT:
                        self._member = _LATER_MEMBER
                    yield piece
                if not pending and len(piece) < PIECE_BYTES and not decompressor.eof:
                    return
        except zlib.error as exc:
            if self._member == _LATER_MEMBER_NO_OUTPUT:
                # Bytes after a whole member that only looked like another one.
                self._member = _IGNORING_THE_REST
                return
            raise BrokenContentEncodingError(f"the {self._coding} body is corrupt ({exc})") from exc

    def finish(self) -> None:
        """Check that the compressed stream ended (an empty body is fine)."""
        if (
            self._fed
            and self._zlib is not None
            and not self._zlib.eof
            and self._member in (_FIRST_MEMBER, _LATER_MEMBER)
        ):
            raise BrokenContentEncodingError(
                f"the {self._coding} body ended before its compressed stream did"
            )


def _pieces(out: bytes) -> Iterator[bytes]:
    """``out`` in pieces of at most `PIECE_BYTES`."""
    if len(out) <= PIECE_BYTES:
        if out:
            yield out
        return
    with memoryview(out) as view:
        for at in range(0, len(out), PIECE_BYTES):
            yield bytes(view[at : at + PIECE_BYTES])


# brotli's output buffer grows in steps until it reaches this size, so one step
# returns somewhat more than it: at most about twice `PIECE_BYTES`.
_BROTLI_LIMIT = PIECE_BYTES


class _BrotliDecoder(ContentDecoder):
    """``br``: brotli's bounded output (``output_buffer_limit``) keeps each step small
    however far a chunk expands; it is handed on in pieces of at most `PIECE_BYTES`."""

    __slots__ = ("_brotli", "_error")

    def __init__(self, module: Any) -> None:
        super().__init__("br")
        self._brotli = module.Decompressor()
        self._error: type[Exception] = module.error

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._fed = True
        decompressor = self._brotli
        try:
            if decompressor.is_finished():
                return  # bytes after the end of the stream are ignored, as for deflate
            out = decompressor.process(data, output_buffer_limit=_BROTLI_LIMIT)
            while True:
                yield from _pieces(out)
                # Output stops growing once past the limit: a full buffer may have more
                # behind it, a shorter one means the input is used up.
                if len(out) < _BROTLI_LIMIT and decompressor.can_accept_more_data():
                    return
                out = decompressor.process(b"", output_buffer_limit=_BROTLI_LIMIT)
        except self._error as exc:
            raise BrokenContentEncodingError(f"the br body is corrupt ({exc})") from exc

    def finish(self) -> None:
        if self._fed and not self._brotli.is_finished():
            raise BrokenContentEncodingError("the br body ended before its compressed stream did")


# zstandard's decompressor returns all the output of the input it is given. One zstd
# block (at most 128 KiB of output) takes 4 bytes or more on the wire, so the input is
# fed this many bytes at a time: at most 2 MiB of output per step, cut into pieces of
# `PIECE_BYTES` (measured: 64-byte steps decode 500 KB of zstd in 6 ms).
_ZSTD_STEP = 64
# The largest window a zstd body may use (RFC 8878 section 3: 8 MB for HTTP): a larger
# one is refused rather than allocated.
_ZSTD_MAX_WINDOW = 8 * 2**20


class _ZstdDecoder(ContentDecoder):
    """``zstd``: one frame after another, each fed in small steps (see `_ZSTD_STEP`)."""

    __slots__ = ("_frame", "_in_frame", "_module", "_zstd")

    def __init__(self, module: Any) -> None:
        super().__init__("zstd")
        self._module = module
        self._zstd = module.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
        self._frame = self._zstd.decompressobj()
        self._in_frame = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self._fed = True
        try:
            for start in range(0, len(data), _ZSTD_STEP):
                pending = data[start : start + _ZSTD_STEP]
                while pending:
                    frame = self._frame
                    self._in_frame = True
                    out = frame.decompress(pending)
                    pending = b""
                    if frame.eof:  # a frame ended; another may follow in the same body
                        pending = frame.unused_data
                        self._frame = self._zstd.decompressobj()
                        self._in_frame = False
                    yield from _pieces(out)
        except self._module.ZstdError as exc:
            raise BrokenContentEncodingError(f"the zstd body is corrupt ({exc})") from exc

    def finish(self) -> None:
        if self._in_frame:
            raise BrokenContentEncodingError("the zstd body ended before its compressed stream did")


class _ChainDecoder(ContentDecoder):
    """Several codings (``gzip, br``): each piece one stage puts out is fed to the next
    at once, so no stage holds more than a piece and the output stays bounded."""

    __slots__ = ("_stages",)

    def __init__(self, name: str, stages: list[ContentDecoder]) -> None:
        super().__init__(name)
        self._stages = stages  # in decoding order: the last coding applied first

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            yield data
            return
        for piece in self._stages[index].feed(data):
            yield from self._through(index + 1, piece)

    def finish(self) -> None:
        for stage in self._stages:
            stage.finish()


def _coding_module(coding: str) -> Any:
    """The package that decodes an optional coding, imported now, or ``None``."""
    names, _ = _OPTIONAL_CODINGS[coding]
    for name in names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        if coding == "br" and not hasattr(module.Decompressor, "can_accept_more_data"):
            continue  # before 1.2: no bounded output, so no bomb cap
        return module
    return None


def _installed(coding: str) -> bool:
    """Whether the package for an optional coding is there and usable. ``zstandard`` is
    only looked for (importing it takes ~25 ms, left to the first zstd body); brotli is
    imported (under 1 ms) to see that it is 1.2 or newer."""
    if coding == "br":
        return _coding_module("br") is not None
    names, _ = _OPTIONAL_CODINGS[coding]
    return any(importlib.util.find_spec(name) is not None for name in names)


# Looked up once per process: looking for a package scans sys.path (~0.5 ms), and
# every client (and every ``with_options``) asks. ``accept_encoding.cache_clear()``
# looks again.
@functools.cache
def accept_encoding() -> str:
    """The ``Accept-Encoding`` to send: gzip and deflate, and ``br`` / ``zstd`` when
    their package is installed (``stackwire[brotli]``, ``stackwire[zstd]``)."""
    extra = [coding for coding in _OPTIONAL_CODINGS if _installed(coding)]
    return ", ".join([ACCEPT_ENCODING, *extra])


def _normalized(content_encoding: str) -> str:
    coding = content_encoding.strip().lower()
    return "gzip" if coding == "x-gzip" else coding


def _codings(content_encoding: str) -> list[str]:
    """The codings of a ``Content-Encoding`` value, in the order they were applied,
    without ``identity`` and empty list items.

    >>> _codings("GZIP , identity,, br")
    ['gzip', 'br']
    """
    if "," not in content_encoding:
        coding = _normalized(content_encoding)
        return [] if coding in ("", "identity") else [coding]
    return [
        coding
        for coding in map(_normalized, content_encoding.split(","))
        if coding not in ("", "identity")
    ]


def _decoder(coding: str) -> ContentDecoder | None:
    if coding in ("gzip", "deflate"):
        return ContentDecoder(coding)
    if coding in _OPTIONAL_CODINGS:
        module = _coding_module(coding)
        if module is None:
            return None
        return _BrotliDecoder(module) if coding == "br" else _ZstdDecoder(module)
    return None


def content_decoder(content_encoding: str | None) -> ContentDecoder | None:
    """A decoder for a ``Content-Encoding`` value (one coding or a list of them), or
    ``None`` when the body is to be taken as it is (no coding, ``identity``, or a
    coding stackwire cannot decode here: `undecodable_coding` says why)."""
    if not content_encoding:
        return None
    codings = _codings(content_encoding)
    if len(codings) == 1:
        return _decoder(codings[0])
    stages = [_decoder(coding) for coding in reversed(codings)]
    if not stages or None in stages:
        return None
    return _ChainDecoder(", ".join(codings), stages)  # type: ignore[arg-type]


def undecodable_coding(content_encoding: str | None) -> str | None:
    """Why a body in this ``Content-Encoding`` cannot be decoded (a message naming the
    coding and, for an optional one, the package to install), or ``None`` if it can.

    >>> undecodable_coding("gzip") is None
    True
    >>> undecodable_coding("gzip, br") is None
    True
    >>> print(undecodable_coding("x-made-up"))  # doctest: +ELLIPSIS
    the response's Content-Encoding 'x-made-up' is not supported (...)
    >>> print(undecodable_coding("gzip, x-made-up"))  # doctest: +ELLIPSIS
    the response's Content-Encoding 'gzip, x-made-up' is not supported: 'x-made-up' (...)
    """
    if not content_encoding:
        return None
    codings = _codings(content_encoding)
    for coding in codings:
        if coding in ("gzip", "deflate"):
            continue
        if coding in _OPTIONAL_CODINGS:
            if _coding_module(coding) is not None:
                continue
            names, extra = _OPTIONAL_CODINGS[coding]
            package = f"'{names[0]}'" if coding != "br" else "'brotli' (1.2 or newer)"
            return (
                f"the response's Content-Encoding {coding!r} cannot be decoded: install the "
                f"{package} package (pip install 'stackwire[{extra}]')"
            )
        whole = content_encoding.strip()
        which = "" if len(codings) == 1 else f": {coding!r}"
        return (
            f"the response's Content-Encoding {whole!r} is not supported{which} "
            "(stackwire decodes gzip, deflate, br and zstd)"
        )
    return None
