"""What a log line, a span or an attempt record may show of a URL or a header. Pure.

Two rules, in this order:

1. **Secrets are never shown**, whatever an allowlist says: URL userinfo (dropped),
   the value of a secret-looking query parameter (`is_secret_param`: ``key``,
   ``api_key``, ``apikey``, ``token``, ``access_token``, ``refresh_token``, ``sig``,
   ``signature``, ``password``, ``secret``, ``client_secret``, in any case, with
   ``-`` or ``_``, alone or as the last word of a longer name such as
   ``X-Amz-Signature``), and the value of every sensitive header.
2. **Everything else by allowlist** where one is given: a query or header value
   whose name is not on it shows as ``[redacted]``; the names always show.

>>> from yarl import URL
>>> redact_url(URL("https://me:pw@api.test/v1/x?key=abc&limit=10"))
'https://api.test/v1/x?key=[redacted]&limit=10'
>>> redact_url(URL("https://api.test/v1/x?key=abc&limit=10&q=x"), allowed={"limit"})
'https://api.test/v1/x?key=[redacted]&limit=10&q=[redacted]'
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from urllib.parse import unquote_plus

from yarl import URL

__all__ = [
    "DEFAULT_HEADER_ALLOWLIST",
    "DEFAULT_QUERY_ALLOWLIST",
    "REDACTED",
    "SECRET_QUERY_PARAMS",
    "is_secret_param",
    "redact_headers",
    "redact_query",
    "redact_url",
]

REDACTED = "[redacted]"
"""What a value that may not be shown is replaced with."""

SECRET_QUERY_PARAMS: frozenset[str] = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "token",
        "access_token",
        "refresh_token",
        "sig",
        "signature",
        "password",
        "secret",
        "client_secret",
        "awsaccesskeyid",
    }
)
"""Query parameters whose values are never shown (compared as `is_secret_param` does)."""

DEFAULT_HEADER_ALLOWLIST: frozenset[str] = frozenset(
    {
        "accept",
        "accept-encoding",
        "cache-control",
        "content-encoding",
        "content-length",
        "content-type",
        "date",
        "idempotency-key",
        "request-id",
        "retry-after",
        "retry-after-ms",
        "server",
        "transfer-encoding",
        "user-agent",
        "x-request-id",
        "x-retry-count",
        "x-should-retry",
    }
)
"""Header names (lower case) whose values log lines show (`LoggingMiddleware`,
``headers=True``)."""

DEFAULT_QUERY_ALLOWLIST: frozenset[str] = frozenset(
    {
        "after",
        "before",
        "ending_before",
        "limit",
        "offset",
        "order",
        "page",
        "page_size",
        "per_page",
        "sort",
        "starting_after",
    }
)
"""Query parameters (lower case) whose values log lines show (``retry``'s and
`LoggingMiddleware`'s)."""

# A URL already checked, and what it shows as: most calls of a client share URL objects.
_last: tuple[URL, str] | None = None


# The last capitalised word of a camelCase name, after a lower-case letter or digit.
_CAMEL_LAST = re.compile(r"[a-z0-9]([A-Z][a-z0-9]*)$")


def is_secret_param(name: str) -> bool:
    """Whether a query parameter's value is a secret: one of `SECRET_QUERY_PARAMS`,
    in any case, ``-`` or ``_`` alike, or ending in ``_<one of them>`` or, in
    camelCase, in one of them capitalised (``accessToken``, ``X-Goog-Signature``).

    >>> [is_secret_param(n) for n in ("API-Key", "X-Amz-Signature", "limit", "monkey")]
    [True, True, False, False]
    >>> [is_secret_param(n) for n in ("accessToken", "AWSAccessKeyId", "pageSize")]
    [True, True, False]
    """
    word = name.lower().replace("-", "_")
    if word in SECRET_QUERY_PARAMS:
        return True
    _, sep, last = word.rpartition("_")
    if sep and last in SECRET_QUERY_PARAMS:
        return True
    camel = _CAMEL_LAST.search(name)
    return camel is not None and camel.group(1).lower() in SECRET_QUERY_PARAMS


def redact_url(url: URL, *, allowed: Collection[str] | None = None, marker: str = REDACTED) -> str:
    """``url`` as it may be shown: no userinfo, no fragment, secret query values
    replaced with ``marker``; with ``allowed`` (lower-case parameter names), every
    value not on it too.

    The query keeps its encoding as sent; only values are replaced.

    >>> redact_url(URL("https://u:p@api.test/x?sig=abc&limit=2#top"))
    'https://api.test/x?sig=[redacted]&limit=2'
    """
    global _last
    last = _last
    cached = allowed is None and marker is REDACTED
    if cached and last is not None and last[0] is url:
        return last[1]
    original = url
    if url.raw_user is not None or url.raw_password is not None:
        url = url.with_user(None)
    if url.raw_fragment:
        url = url.with_fragment(None)
    query = url.raw_query_string
    if not query:
        shown = str(url)
    else:
        shown = f"{url.with_query(None)}?{redact_query(query, allowed=allowed, marker=marker)}"
    if cached:
        _last = (original, shown)
    return shown


def redact_query(
    raw_query: str, *, allowed: Collection[str] | None = None, marker: str = REDACTED
) -> str:
    """A raw (encoded) query string as it may be shown: the value of a secret-looking
    parameter replaced with ``marker``; with ``allowed`` (lower-case names), every
    value not on it too.

    >>> redact_query("limit=10&api_key=abc&q=x")
    'limit=10&api_key=[redacted]&q=x'
    """
    pieces = []
    for piece in raw_query.split("&"):
        name, sep, value = piece.partition("=")
        plain = unquote_plus(name)
        if (
            sep
            and value
            and (is_secret_param(plain) or (allowed is not None and plain.lower() not in allowed))
        ):
            piece = f"{name}={marker}"
        pieces.append(piece)
    return "&".join(pieces)


def redact_headers(
    headers: Iterable[tuple[str, str]],
    *,
    sensitive: Collection[str],
    allowed: Collection[str] | None = None,
) -> list[tuple[str, str]]:
    """``headers`` as they may be shown: a value whose (lower-case) name is in
    ``sensitive`` is `REDACTED` always; with ``allowed``, every value not on it too.

    >>> redact_headers([("Authorization", "Bearer x"), ("Accept", "*/*"), ("X-Id", "7")],
    ...                sensitive={"authorization"}, allowed={"accept", "authorization"})
    [('Authorization', '[redacted]'), ('Accept', '*/*'), ('X-Id', '[redacted]')]
    """
    shown = []
    for name, value in headers:
        lower = name.lower()
        if lower in sensitive or (allowed is not None and lower not in allowed):
            value = REDACTED
        shown.append((name, value))
    return shown
