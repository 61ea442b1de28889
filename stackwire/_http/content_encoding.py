"""Decoding ``gzip`` and ``deflate`` response bodies, checked and bounded.

stackwire decodes compressed bodies itself (the transport turns aiohttp's automatic
decompression off) for two reasons aiohttp's own decoder does not cover:

- a gzip body cut short inside the compressed data, but framed correctly (its
  ``Content-Length`` matches the bytes sent), must be an error, never a short
  success: `ContentDecoder.finish` raises unless the compressed stream really ended;
- output is produced in pieces of at most `PIECE_BYTES`, however large the input
  chunk expands, so a size cap stops a decompression bomb after about ``cap +
  PIECE_BYTES`` bytes, not after inflating a whole network chunk.

Other content codings (``br``, ``zstd``, ...) are never asked for by default (the
transport sends ``Accept-Encoding: gzip, deflate``); a body in one that the caller
asked for is handed on as received.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

__all__ = [
    "ACCEPT_ENCODING",
    "PIECE_BYTES",
    "BrokenContentEncodingError",
    "ContentDecoder",
    "content_decoder",
]

ACCEPT_ENCODING = "gzip, deflate"

# The most output one decompression step produces.
PIECE_BYTES = 256 * 1024


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

    __slots__ = ("_coding", "_fed", "_zlib")

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._zlib: zlib._Decompress | None = (
            zlib.decompressobj(16 + zlib.MAX_WBITS) if coding == "gzip" else None
        )
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded bytes of ``data``, in pieces of at most `PIECE_BYTES`."""
        if not data:
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
                    # Another gzip member follows (a body may be several concatenated).
                    decompressor = self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    pending = rest
                piece = decompressor.decompress(pending, PIECE_BYTES)
                pending = decompressor.unconsumed_tail
                if piece:
                    yield piece
                if not pending and len(piece) < PIECE_BYTES and not decompressor.eof:
                    return
        except zlib.error as exc:
            raise BrokenContentEncodingError(f"the {self._coding} body is corrupt ({exc})") from exc

    def finish(self) -> None:
        """Check that the compressed stream ended (an empty body is fine)."""
        if self._fed and self._zlib is not None and not self._zlib.eof:
            raise BrokenContentEncodingError(
                f"the {self._coding} body ended before its compressed stream did"
            )


def content_decoder(content_encoding: str | None) -> ContentDecoder | None:
    """A decoder for a ``Content-Encoding`` value, or ``None`` when the body is to be
    taken as it is (no coding, ``identity``, or a coding stackwire does not decode)."""
    if not content_encoding:
        return None
    coding = content_encoding.strip().lower()
    if coding in ("gzip", "x-gzip"):
        return ContentDecoder("gzip")
    if coding == "deflate":
        return ContentDecoder("deflate")
    return None
