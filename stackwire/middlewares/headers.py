"""The ``headers`` middleware: the client's default headers, then the request's.

What it does: starts from the client's headers (``User-Agent``, ``Accept``, auth,
optional platform headers, the ``headers=`` given to the client), overlays the
request's own headers case-insensitively (one value per name; the request wins),
removes every header the caller set to `Omit`, and rejects a name that is not an HTTP
token, a value with CR, LF, NUL or another control character (tab is fine), a name
given twice in one mapping (``X-A`` and ``x-a``) and a framing header
(``Content-Length``, ``Transfer-Encoding``: the transport writes them from the body;
a call's own ``Content-Length`` is taken when it is its body's length, or for a
streamed body) with `InvalidRequestError` before any I/O.

Where it sits: first, above ``retry``: headers are the same for every attempt, so
they are built once per call. Middlewares below may still add per-attempt headers
(``retry`` adds the retry count).

Defaults: ``User-Agent: stackwire/<version>``, ``Accept: application/json``,
``Accept-Encoding: gzip, deflate`` (with ``br`` and ``zstd`` when their package is
installed: the codings `Response` decodes); with ``api_key``, ``Authorization: Bearer
<key>`` (or the bare key in ``api_key_header``). Each one can be removed with `Omit`, on
the client or per request, and is then not sent at all (not even as aiohttp's own
default).

Retries and timeouts: none; it runs once per call and never fails after I/O began.
"""

from __future__ import annotations

import platform
import re
import sys
from collections.abc import Iterable, Mapping

from msgspec.structs import replace
from multidict import CIMultiDict, CIMultiDictProxy

from .._http.content_encoding import accept_encoding
from .._types import Omit
from .._version import __version__
from ..errors import InvalidRequestError
from ..pipeline.middleware import RequestRewriter, pure_rewrite
from ..pipeline.request import ALWAYS_SENSITIVE_HEADERS, Request, SecretValue

__all__ = [
    "FRAMING_HEADERS",
    "HeadersMiddleware",
    "check_content_length",
    "check_header",
    "platform_headers",
    "split_headers",
]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Control characters, all but HTAB: CR and LF would split the request, NUL and the
# others are refused by HTTP (and by aiohttp, with a bare ValueError, too late).
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A lone surrogate has no UTF-8 form: aiohttp would drop it from the value silently.
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_header(name: str, value: str) -> None:
    """Reject a header that could split the request (CR, LF, NUL or another control
    character but tab in its value) or whose name is not a token.

    >>> check_header("X-Ok", "fine")
    >>> check_header("X-Bad", "a\\r\\nInjected: 1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stackwire.InvalidRequestError: header 'X-Bad' has a CR, LF or NUL ...
    """
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        raise InvalidRequestError(f"invalid header name {name!r}")
    if not isinstance(value, str):
        raise InvalidRequestError(
            f"header {name!r} must be a str (or Omit()), got {type(value).__name__}"
        )
    if _FORBIDDEN.search(value) is not None:
        raise InvalidRequestError(
            f"header {name!r} has a CR, LF or NUL (or another control character) in its value"
        )
    if _SURROGATE.search(value) is not None:
        raise InvalidRequestError(
            f"header {name!r} has a lone surrogate in its value, which has no UTF-8 form"
        )


# Framing headers: the transport writes them from the body it sends. One given by the
# caller would be sent as well, and a length that is not the body's desynchronises
# the connection (the rest of the body is read as the next request).
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})


def split_headers(
    headers: Mapping[str, str | Omit] | Iterable[tuple[str, str | Omit]] | None,
    *,
    length: bool = False,
) -> tuple[CIMultiDict[str], frozenset[str]]:
    """Validated string headers and the lower-case names set to `Omit`.

    A name given twice (names are case-insensitive: ``X-A`` and ``x-a`` are one) and
    a framing header (``Content-Length``, ``Transfer-Encoding``) are refused; with
    ``length`` (a request's own headers, which `check_content_length` then checks
    against its body), a ``Content-Length`` of digits is taken.
    """
    values: CIMultiDict[str] = CIMultiDict()
    omitted: set[str] = set()
    if not headers:
        return values, frozenset()
    items = headers.items() if isinstance(headers, Mapping) else _pairs(headers)
    for name, value in items:
        if type(value) is not str and isinstance(value, str) and not isinstance(value, SecretValue):
            # The text a subclass holds (a ``str`` Enum member), which is what is checked:
            # aiohttp would send its ``str()``, ``'Tier.PRO'``, or a different text.
            value = str.__str__(value)
        check_header(name, "" if isinstance(value, Omit) else value)
        lower = name.lower()
        if lower in FRAMING_HEADERS and not (
            length and lower == "content-length" and isinstance(value, str) and value.isdigit()
        ):
            raise InvalidRequestError(
                f"header {name!r} is set by the transport from the body it sends; "
                "leave it out (a wrong length would desynchronise the connection)"
            )
        if lower in omitted or name in values:
            raise InvalidRequestError(
                f"header {name!r} is given twice (header names are case-insensitive); "
                "give each name once"
            )
        if isinstance(value, Omit):
            omitted.add(lower)
        else:
            values[name] = value
    return values, frozenset(omitted)


def check_content_length(headers: CIMultiDict[str], body: object) -> None:
    """A request's own ``Content-Length`` must be its body's length; one for a streamed
    body (an upload to an API that refuses chunked bodies) is sent as given, and the
    stream must then yield exactly that many bytes."""
    value = headers.get("Content-Length")
    if value is None:
        return
    if body is None:
        size = 0
    elif isinstance(body, bytes | bytearray | memoryview):
        size = len(body)
    else:
        return
    if int(value) != size:
        raise InvalidRequestError(
            f"header 'Content-Length: {value}' is not the body's length ({size} bytes); "
            "leave it out, the transport writes it"
        )


def _pairs(headers: object) -> Iterable[tuple[str, str | Omit]]:
    """The ``(name, value)`` pairs of headers given as an iterable of pairs."""
    if isinstance(headers, (str, bytes)) or not isinstance(headers, Iterable):
        raise InvalidRequestError(
            f"headers must be a mapping or (name, value) pairs, got {type(headers).__name__}"
        )
    pairs: list[tuple[str, str | Omit]] = []
    for pair in headers:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise InvalidRequestError(f"headers must be (name, value) pairs, got {pair!r:.100}")
        pairs.append(pair)
    return pairs


def _plain(text: str) -> str:
    """``text`` as an exact ``str`` (the text a subclass holds, not its ``str()``)."""
    return text if type(text) is str else str.__str__(text)


def platform_headers() -> dict[str, str]:
    """Headers describing the runtime: OS, architecture, Python, stackwire version."""
    return {
        "X-Stackwire-Lang": "python",
        "X-Stackwire-Package-Version": __version__,
        "X-Stackwire-OS": platform.system() or "unknown",
        "X-Stackwire-Arch": platform.machine() or "unknown",
        "X-Stackwire-Runtime": sys.implementation.name,
        "X-Stackwire-Runtime-Version": platform.python_version(),
    }


class HeadersMiddleware(RequestRewriter):
    """Merges the client's default headers with the request's; see the module docs."""

    name = "headers"

    def __init__(
        self,
        headers: Mapping[str, str | Omit] | None = None,
        *,
        api_key: str | None = None,
        api_key_header: str | None = None,
        user_agent: str | None = None,
        include_platform_headers: bool = False,
        sensitive_headers: Iterable[str] = (),
    ) -> None:
        defaults: CIMultiDict[str] = CIMultiDict()
        defaults["Accept"] = "application/json"
        defaults["Accept-Encoding"] = accept_encoding()
        defaults["User-Agent"] = _plain(user_agent) if user_agent else f"stackwire/{__version__}"
        if include_platform_headers:
            defaults.update(platform_headers())
        sensitive = set(ALWAYS_SENSITIVE_HEADERS)
        sensitive.update(name.lower() for name in sensitive_headers)
        if api_key is not None:
            api_key = _plain(api_key)
            if api_key_header is not None:
                check_header(api_key_header, api_key)
                defaults[api_key_header] = SecretValue(api_key)
                sensitive.add(api_key_header.lower())
            else:
                check_header("Authorization", api_key)
                defaults["Authorization"] = SecretValue(f"Bearer {api_key}")
        given, omitted = split_headers(headers)
        for name, value in given.items():
            # A credential's repr is redacted: a middleware may log ``request.headers``.
            if name.lower() in sensitive and not isinstance(value, SecretValue):
                value = SecretValue(value)
            defaults[name] = value
        for name in omitted:
            defaults.popall(name, None)
        self.sensitive_headers = frozenset(sensitive)
        self._defaults = CIMultiDictProxy(defaults)
        # Names the client's headers= set to Omit: every request carries them in
        # ``omit_headers`` so that no stage below (nor aiohttp) adds them back.
        self._omitted = omitted

    @property
    def default_headers(self) -> CIMultiDictProxy[str]:
        return self._defaults

    @pure_rewrite
    def rewrite(self, request: Request) -> Request:
        own = request.headers
        omitted = request.omit_headers
        if not own and not omitted:
            headers = self._defaults
            if not self._omitted:  # the common call: nothing of its own
                return replace(request, headers=headers, sensitive_headers=self.sensitive_headers)
        else:
            merged = CIMultiDict(self._defaults)
            sensitive = self.sensitive_headers
            for name, value in own.items():
                check_header(name, value)
                if name.lower() in sensitive and not isinstance(value, SecretValue):
                    value = SecretValue(value)
                merged[name] = value
            for name in omitted:
                merged.popall(name, None)
            headers = CIMultiDictProxy(merged)
        if self._omitted:
            # A header the request sets itself overrides the client's Omit.
            omitted = omitted | frozenset(n for n in self._omitted if n not in own)
        return replace(
            request, headers=headers, sensitive_headers=self.sensitive_headers, omit_headers=omitted
        )

    def __repr__(self) -> str:
        return f"HeadersMiddleware({len(self._defaults)} default headers)"
