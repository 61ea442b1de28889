"""``multipart/form-data`` bodies (RFC 7578), encoded into bytes in one go.

The whole body is built in memory once per call, so the retry and redirect
middlewares can send it again unchanged. Each body gets a random boundary (128 bits);
in the vanishingly unlikely case that a part contains it, another is drawn.

Names and filenames are written inside double quotes the way browsers do (the HTML
standard's form encoding): ``"``, CR and LF become ``%22``, ``%0D`` and ``%0A``, so
that no value can end the quoted string or start a header of its own. A backslash is
doubled, as httpx does: servers read the quoted string with quoted-pairs (RFC 9110
section 5.6.4; aiohttp, werkzeug, python-multipart), so a bare one would
vanish (``a\\b`` became ``ab``) or, last, escape the closing quote. Other text, UTF-8
included, is sent as it is, but for what no browser sends: another control character
(a NUL, which a server reading C strings takes for the end: ``evil.php\\0.jpg``) or a
lone surrogate (no UTF-8 form), which are an `InvalidRequestError`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence

import msgspec

from ..errors import InvalidRequestError

__all__ = ["Part", "encode_multipart", "quote_param"]

_QUOTED = str.maketrans({'"': "%22", "\r": "%0D", "\n": "%0A", "\\": "\\\\"})
# Control characters but tab, CR and LF (escaped above), and lone surrogates.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class Part(msgspec.Struct, frozen=True, kw_only=True):
    """One part of a form: a field (no ``filename``) or a file.

    ``headers`` are extra part headers (already checked for CR/LF by the caller).
    """

    name: str
    content: bytes
    filename: str | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


def quote_param(value: str) -> str:
    """``value`` as a quoted ``Content-Disposition`` parameter.

    >>> quote_param('evil"; name="x\\r\\nX-Injected: 1')
    '"evil%22; name=%22x%0D%0AX-Injected: 1"'
    """
    if _REFUSED.search(value) is not None:
        raise InvalidRequestError(
            "a multipart field name or filename has a control character or a lone "
            f"surrogate, which a form cannot carry: {value!r}; give the part another "
            "name (a file's as its tuple: (filename, file))"
        )
    return '"' + value.translate(_QUOTED) + '"'


def _head(part: Part) -> bytes:
    disposition = f"form-data; name={quote_param(part.name)}"
    if part.filename is not None:
        disposition += f"; filename={quote_param(part.filename)}"
    lines = [f"Content-Disposition: {disposition}"]
    if part.content_type is not None:
        lines.append(f"Content-Type: {part.content_type}")
    lines.extend(f"{name}: {value}" for name, value in part.headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _boundary(contents: Iterable[bytes]) -> str:
    while True:
        boundary = "stackwire-" + secrets.token_hex(16)
        marker = boundary.encode("ascii")
        if not any(marker in content for content in contents):
            return boundary


def encode_multipart(parts: Sequence[Part], *, boundary: str | None = None) -> tuple[bytes, str]:
    """The body and the ``Content-Type`` (with its boundary) for ``parts``.

    >>> body, content_type = encode_multipart([Part(name="a", content=b"1")], boundary="b")
    >>> body
    b'--b\\r\\nContent-Disposition: form-data; name="a"\\r\\n\\r\\n1\\r\\n--b--\\r\\n'
    >>> content_type
    'multipart/form-data; boundary=b'
    """
    if boundary is None:
        boundary = _boundary(part.content for part in parts)
    delimiter = b"--" + boundary.encode("ascii")
    chunks: list[bytes] = []
    for part in parts:
        chunks += (delimiter, b"\r\n", _head(part), part.content, b"\r\n")
    chunks += (delimiter, b"--\r\n")
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"
