"""URL building: the base URL, relative paths and path templates. Pure functions.

- ``base_url`` always ends with ``/``; a relative path is appended under it, so
  ``/v1/`` + ``"/users"`` is ``/v1/users`` (a leading ``/`` never climbs to the root);
- an absolute URL (``https://...``) is used as it is;
- ``{name}`` placeholders take values percent-encoded as one path segment; an empty
  value, ``.``, ``..`` or a control character is refused before any I/O.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote, unquote

from yarl import URL

from ..errors import InvalidRequestError
from .redaction import is_secret_param, redact_query

__all__ = [
    "check_host",
    "fill_path",
    "join_url",
    "normalize_base_url",
    "shown_text_url",
    "shown_url",
]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
_ABSOLUTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# A lone surrogate (``"\\ud800"``) has no UTF-8 form: it cannot be sent, only mangled.
_SURROGATE = re.compile("[\ud800-\udfff]")


def shown_url(url: URL) -> str:
    """A URL as a repr or a warning may show it: a password in it is masked, and so is
    the value of a secret-looking query parameter (``api_key``, ``token``, ...: see
    `is_secret_param`).

    >>> shown_url(URL("https://user:hunter2@api.test/v1/?limit=5&api_key=sk-123"))
    'https://user:***@api.test/v1/?limit=5&api_key=[redacted]'
    """
    if url.password is not None:
        url = url.with_password("***")
    query = url.raw_query_string
    if not query:
        return str(url)
    return f"{url.with_query(None).with_fragment(None)}?{redact_query(query)}"


# The userinfo of a URL written as text: up to the last ``@`` of the authority.
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/?#]*)@")


def shown_text_url(text: str) -> str:
    """A URL given as text, perhaps one that does not parse, as a message may quote it
    (``repr`` of the result): `shown_url`'s masking done on the text, so that a bad URL
    refused with a message never shows its password or a secret query value.

    >>> shown_text_url("http://u:hunter2@a..b/x?limit=5&api_key=sk-1#f")
    "'http://u:***@a..b/x?limit=5&api_key=[redacted]'"
    >>> shown_text_url("/users?token=t-1")
    "'/users?token=[redacted]'"
    """
    found = _USERINFO.match(text)
    if found is not None:
        user, colon, _ = found.group(2).partition(":")
        text = f"{found.group(1)}{user}{':***' if colon else ''}@{text[found.end() :]}"
    head, mark, query = text.partition("?")
    if mark:
        text = f"{head}?{redact_query(query.partition('#')[0])}"
    return repr(text)


def _hide_in(exc: BaseException, text: str) -> BaseException:
    """``exc`` (a parser's refusal of the URL ``text``) with the password and secret
    query values of ``text`` cut out of its message: yarl quotes the netloc."""
    secrets: list[str] = []
    found = _USERINFO.match(text)
    if found is not None and ":" in found.group(2):
        secrets.append(found.group(2).partition(":")[2])
    query = text.partition("?")[2].partition("#")[0]
    for piece in query.split("&") if query else ():
        name, _, value = piece.partition("=")
        if value and is_secret_param(unquote(name)):
            secrets.append(value)
    secrets = sorted((secret for secret in secrets if secret), key=len, reverse=True)
    if secrets:
        args = []
        for arg in exc.args:
            if isinstance(arg, str):
                for secret in secrets:
                    arg = arg.replace(secret, "***")
            args.append(arg)
        exc.args = tuple(args)
    return exc


def check_host(url: URL) -> None:
    """Raise `UnicodeError` when ``url``'s host cannot be looked up as written.

    The resolver encodes a host name with IDNA, which refuses an empty label
    (``a..b``, ``.a``) and one longer than 63 characters; yarl accepts both, so
    without this check the failure would come out of the DNS lookup as a bare
    ``UnicodeError``. An ``xn--`` label that does not decode (``xn--``) is refused
    too (yarl decodes it lazily, on the first read of ``url.host``). IP literals pass.

    >>> check_host(URL("http://api.test/")) is None
    True
    >>> check_host(URL("http://a..b/"))
    Traceback (most recent call last):
    ...
    UnicodeError: encoding with 'idna' codec failed (UnicodeError: label empty or too long)
    """
    host = url.raw_host
    if host:
        host.encode("idna")
        url.host  # noqa: B018


def normalize_base_url(base_url: str | URL) -> URL:
    """The base URL with exactly one trailing ``/`` on its path.

    >>> str(normalize_base_url("https://api.test/v1"))
    'https://api.test/v1/'
    >>> str(normalize_base_url("https://api.test"))
    'https://api.test/'
    >>> str(normalize_base_url(" https://api.test/v1 "))
    'https://api.test/v1/'
    """
    if not isinstance(base_url, (str, URL)):
        raise InvalidRequestError(
            f"base_url must be a str or a yarl.URL, got {type(base_url).__name__}"
        )
    if isinstance(base_url, str):
        # Spaces around it (an environment variable, a config file) are no part of
        # the URL, as for a browser (WHATWG): a trailing one became the path ``/v1%20/``.
        base_url = base_url.strip(" ")
    text = base_url if isinstance(base_url, str) else str(base_url)
    if _SURROGATE.search(text) is not None or _CONTROL.search(text) is not None:
        raise InvalidRequestError(
            f"base_url has a lone surrogate or a control character: {shown_text_url(text)}"
        )
    try:
        url = URL(base_url) if isinstance(base_url, str) else base_url
        url.port  # noqa: B018  (yarl checks the port and the host lazily)
        url.raw_host  # noqa: B018
        url.host  # noqa: B018  (decodes an ``xn--`` label: invalid IDNA fails here)
        check_host(url)
    except (ValueError, UnicodeError) as exc:  # a bad IPv6 literal, port or IDNA host
        raise InvalidRequestError(
            f"base_url is not a valid URL ({_hide_in(exc, text)}): {shown_text_url(text)}"
        ) from exc
    if not url.is_absolute() or url.scheme not in ("http", "https"):
        raise InvalidRequestError(
            f"base_url must be an absolute http(s) URL, got {shown_text_url(str(url))}"
        )
    if url.query_string or url.fragment:
        raise InvalidRequestError("base_url must not have a query or a fragment; use query=")
    # ``URL("http://h")`` has the path ``/`` but prints without it: set it explicitly.
    path = url.raw_path if url.raw_path.endswith("/") else url.raw_path + "/"
    return url.with_path(path, encoded=True)


def _check_segment(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        if isinstance(value, enum.Enum):  # a plain Enum member: its value, as in JSON
            return _check_segment(name, value.value)
        raise InvalidRequestError(
            f"path parameter {name!r} must be a str or a number, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequestError(f"path parameter {name!r} is {value!r}, which names no resource")
    # The value a subclass holds (a ``str``/``int`` Enum member), not its ``str()``.
    if isinstance(value, str):
        text = str.__str__(value)
    elif isinstance(value, int):
        text = int.__repr__(value)
    else:
        text = float.__repr__(value)
    if text == "":
        raise InvalidRequestError(f"path parameter {name!r} is empty")
    if text in (".", ".."):
        raise InvalidRequestError(f"path parameter {name!r} may not be {text!r}")
    if _CONTROL.search(text) is not None:
        raise InvalidRequestError(f"path parameter {name!r} has a control character")
    if _SURROGATE.search(text) is not None:
        raise InvalidRequestError(
            f"path parameter {name!r} has a lone surrogate, which has no UTF-8 form"
        )
    return quote(text, safe="")


@lru_cache(maxsize=1024)
def _placeholders(template: str) -> tuple[str, ...]:
    return tuple(_PLACEHOLDER.findall(template))


def fill_path(template: str, params: Mapping[str, object]) -> str:
    """``template`` with each ``{name}`` replaced by its percent-encoded value.

    >>> fill_path("/users/{user_id}/files/{name}", {"user_id": 7, "name": "a b/c"})
    '/users/7/files/a%20b%2Fc'
    """
    names = _placeholders(template)
    missing = [name for name in names if name not in params]
    if missing:
        raise InvalidRequestError(f"path {template!r} needs path_params {missing}")
    extra = sorted(set(params) - set(names))
    if extra:
        raise InvalidRequestError(f"path {template!r} has no placeholder for {extra}")
    return _PLACEHOLDER.sub(lambda m: _check_segment(m.group(1), params[m.group(1)]), template)


# Characters a path (or query) may hold as they are (RFC 3986 pchar, plus ``/``, and
# ``?`` in a query); ``%`` stays for escapes already written. Everything else is
# percent-encoded, and nothing already encoded is ever decoded again: ``%2F`` or ``%3B``
# in a path parameter reaches the server as written.
_PATH_SAFE = "!$&'()*+,;=:@/%"
_QUERY_SAFE = _PATH_SAFE + "?"
_STRAY_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")


def _quote(text: str, safe: str) -> str:
    return quote(_STRAY_PERCENT.sub("%25", text), safe=safe)


@lru_cache(maxsize=2048)
def _join(base: URL, path: str) -> URL:
    if _SURROGATE.search(path) is not None:
        raise InvalidRequestError(
            f"path {shown_text_url(path)} has a lone surrogate, which has no UTF-8 form"
        )
    if _ABSOLUTE.match(path):
        if _CONTROL.search(path) is not None:
            raise InvalidRequestError(f"URL {shown_text_url(path)} has a control character")
        try:
            url = URL(path)
            url.port  # noqa: B018
            url.raw_host  # noqa: B018
            url.host  # noqa: B018
            check_host(url)
        except (ValueError, UnicodeError) as exc:
            raise InvalidRequestError(
                f"{shown_text_url(path)} is not a valid URL ({_hide_in(exc, path)})"
            ) from exc
        if url.scheme not in ("http", "https"):
            raise InvalidRequestError(
                f"only http(s) URLs can be requested, got {shown_text_url(path)}"
            )
        return url
    if _CONTROL.search(path) is not None:
        raise InvalidRequestError(f"path {shown_text_url(path)} has a control character")
    path = path.partition("#")[0]  # a fragment is never sent
    path, _, query = path.partition("?")
    relative = path.lstrip("/")
    for segment in relative.split("/"):
        # ``%2e%2e`` is ``..`` to a server that normalizes the path.
        if segment in (".", "..") or unquote(segment) in (".", ".."):
            raise InvalidRequestError(f"path {path!r} may not have '.' or '..' segments")
    return URL.build(
        scheme=base.scheme,
        authority=base.raw_authority,
        path=base.raw_path + _quote(relative, _PATH_SAFE),
        query_string=_quote(query, _QUERY_SAFE),
        encoded=True,
    )


def join_url(base: URL, path: str) -> URL:
    """The URL for ``path`` under ``base`` (or ``path`` itself when absolute).

    >>> str(join_url(URL("https://api.test/v1/"), "/users?limit=2"))
    'https://api.test/v1/users?limit=2'
    """
    return _join(base, path)
