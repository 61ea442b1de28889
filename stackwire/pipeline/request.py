"""`Request`: one call (or one attempt of it) as an immutable value.

A middleware that changes a request passes on a changed copy
(``request.replace(...)``, ``request.with_headers(...)``); the request it received
is untouched, so no attempt ever sees another attempt's changes.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.urls import shown_url
from .._types import Omit
from .body import Body
from .options import RequestOptions

__all__ = [
    "ALWAYS_SENSITIVE_HEADERS",
    "CREDENTIALS_DROPPED",
    "CREDENTIAL_HEADERS",
    "ExtensionKey",
    "Request",
    "SecretValue",
    "redact",
    "redact_credentials",
    "request_line",
]

_T = TypeVar("_T")

# Header names (lower case) whose values never appear in a repr, an error or a log.
ALWAYS_SENSITIVE_HEADERS: frozenset[str] = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)

# Header names (lower case) that carry credentials whatever the request says is
# sensitive: never sent to another origin than the base URL's (DESIGN §4).
CREDENTIAL_HEADERS: frozenset[str] = frozenset({"authorization", "proxy-authorization", "cookie"})


def request_line(request: Request) -> str:
    """The request as messages name it: the method and the URL without its query or
    userinfo (a query may hold a key, userinfo a password).

    >>> request_line(Request(method="GET", url=URL("https://u:pw@api.test/v1?key=k")))
    'GET https://api.test/v1'
    """
    return f"{request.method} {request.url.with_query(None).with_user(None)}"


def redact(value: str) -> str:
    """A secret as it may be shown: at most its last 4 characters, and none of HTTP
    Basic credentials (base64 of ``user:password``, whose last characters are the
    password's).

    >>> redact("sk-live-1234567890abcd")
    '***abcd'
    >>> redact("short")
    '***'
    >>> redact("dXNlcjpodW50ZXIy"), redact("Basic dXNlcjpodW50ZXIy")
    ('***', '***')
    """
    if len(value) < 12 or _is_basic_credentials(value):
        return "***"
    return "***" + value[-4:]


def _is_basic_credentials(value: str) -> bool:
    """Whether ``value`` is (or ends with) base64 of ``user:password``. A key that only
    looks like it loses its last 4 characters too: the safe way to be wrong."""
    scheme, space, _ = value.partition(" ")
    if space and scheme.lower() == "basic":
        return True
    try:
        decoded = base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error is one
        return False
    return b":" in decoded


def redact_credentials(value: str) -> str:
    """A header value holding a secret, as it may be shown: an auth scheme
    (``Bearer``, ``Basic``, ...) stays, the credentials after it are redacted.

    >>> redact_credentials("Bearer sk-live-1234567890abcd")
    'Bearer ***abcd'
    >>> redact_credentials("sk-live-1234567890abcd")
    '***abcd'
    >>> redact_credentials("Basic dXNlcjpodW50ZXIy")
    'Basic ***'
    """
    scheme, space, credentials = value.partition(" ")
    if space and credentials and scheme.isalpha():
        return f"{scheme} {redact(credentials)}"
    return redact(value)


class SecretValue(str):
    """A secret header value (or key): sent whole, but its ``repr()`` (and so the repr
    of any headers, config or container holding it) is redacted, so a middleware or a
    debugger printing ``request.headers`` never shows it.

    >>> SecretValue("Bearer sk-live-1234567890abcd")
    'Bearer ***abcd'
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(redact_credentials(self))


class ExtensionKey(Generic[_T]):
    """A typed key into `Request.extensions`, for data middlewares pass each other.

    >>> TRACE_ID: ExtensionKey[str] = ExtensionKey("trace_id")
    >>> TRACE_ID
    ExtensionKey('trace_id')
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"ExtensionKey({self.name!r})"


CREDENTIALS_DROPPED: ExtensionKey[bool] = ExtensionKey("stackwire.credentials_dropped")
"""Set (``True``) on a request that must carry no credential but the ones in its own
headers: a redirect hop past the base URL's origin, a first request whose absolute URL
is on another origin (both set by ``redirects``), a token grant. The ``auth`` stage adds
none to it, and the default transport keeps a borrowed session's own credentials (its
default ``Authorization``/``Cookie``/sensitive headers, cookie jar, ``auth=``, ``.netrc``)
off it."""


# Read-only: the default map is shared by every request, so nothing may write into it.
_EMPTY_EXTENSIONS: Mapping[ExtensionKey[Any], Any] = MappingProxyType({})


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """A request as the stack sees it.

    - ``url``: the absolute URL (the ``query`` middleware folds ``query`` into it);
    - ``headers``: a read-only case-insensitive multidict;
    - ``query``: parameters not yet encoded into ``url`` (client defaults are merged
      and encoded by the ``query`` middleware, which passes on ``query=None``);
    - ``body``: bytes, a one-shot `StreamingBody`, or ``None``;
    - ``options``: the typed per-call options (`RequestOptions`);
    - ``extensions``: data for middlewares, keyed by `ExtensionKey`;
    - ``deadline_at``: the monotonic time by which the whole call must end, on
      ``Clocks.of(request).monotonic`` (`time.monotonic`, or the client's injected
      clock), set by the ``timeout`` middleware when a deadline is configured;
    - ``attempt``: 0 for the first attempt, 1 for the first retry, ... (set by ``retry``);
    - ``omit_headers``: lower-case names the caller removed with `Omit` (even headers a
      middleware would add, such as the retry count);
    - ``sensitive_headers``: lower-case names whose values are secrets.
    """

    method: str
    url: URL
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    query: Mapping[str, object] | None = None
    body: Body | None = None
    options: RequestOptions = RequestOptions()
    extensions: Mapping[ExtensionKey[Any], Any] = _EMPTY_EXTENSIONS
    deadline_at: float | None = None
    attempt: int = 0
    omit_headers: frozenset[str] = frozenset()
    sensitive_headers: frozenset[str] = ALWAYS_SENSITIVE_HEADERS

    def replace(self, **changes: Any) -> Request:
        """A copy with some fields changed."""
        return msgspec.structs.replace(self, **changes)

    def with_headers(
        self, headers: Mapping[str, str | Omit] | Iterable[tuple[str, str]]
    ) -> Request:
        """A copy with these headers set (replacing same-named ones); `Omit` removes.
        The value of a sensitive header becomes a `SecretValue` (redacted in reprs).

        >>> r = Request(method="GET", url=URL("http://api.test/"))
        >>> r.with_headers({"X-Trace": "1"}).headers["x-trace"]
        '1'
        >>> r.with_headers({"Authorization": "Bearer sk-live-1234567890abcd"}).headers
        <CIMultiDictProxy('Authorization': 'Bearer ***abcd')>
        """
        merged = CIMultiDict(self.headers)
        items = headers.items() if isinstance(headers, Mapping) else headers
        sensitive = self.sensitive_headers
        for name, value in items:
            if isinstance(value, Omit):
                merged.popall(name, None)
            elif name.lower() in sensitive and not isinstance(value, SecretValue):
                merged[name] = SecretValue(value)
            else:
                merged[name] = value
        return msgspec.structs.replace(self, headers=CIMultiDictProxy(merged))

    def extension(self, key: ExtensionKey[_T]) -> _T | None:
        """The value stored under ``key``, or ``None``."""
        return cast("_T | None", self.extensions.get(key))

    def with_extension(self, key: ExtensionKey[_T], value: _T) -> Request:
        """A copy with ``value`` stored under ``key``."""
        return msgspec.structs.replace(self, extensions={**self.extensions, key: value})

    def redacted_headers(self) -> list[tuple[str, str]]:
        """The headers, with every sensitive value redacted."""
        sensitive = self.sensitive_headers
        return [
            (name, redact(value) if name.lower() in sensitive else value)
            for name, value in self.headers.items()
        ]

    def __repr__(self) -> str:
        return f"<Request {self.method} {shown_url(self.url)}>"

    def __rich_repr__(self) -> list[tuple[str, Any]]:  # pragma: no cover - rich only
        return [
            ("method", self.method),
            ("url", shown_url(self.url)),
            ("headers", self.redacted_headers()),
        ]
