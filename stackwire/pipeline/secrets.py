"""Hiding secrets in errors: every message, argument and decoded body of an error and
of the exceptions it chains, with each secret cut to its redacted form.

Used by the client (the credentials a call sent, echoed back by a server) and by the
OAuth 2.0 grant (the client secret, echoed back by a token endpoint).
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterable
from typing import Any

from ..errors import APIError, StackwireError
from .request import Request, redact

__all__ = ["Password", "credentials_sent", "hide_secrets", "secret_forms"]


class Password(str):
    """A secret hidden whole (``***``), never down to its last 4 characters: a
    password, or Basic credentials decoded (whose last characters are the password's)."""

    __slots__ = ()


def secret_forms(values: Iterable[object]) -> tuple[str, ...]:
    """The strings of ``values`` (credentials, header values holding one) to hide in
    messages, with the forms a server may echo: the credentials after an auth scheme
    (``Bearer <token>``), and for HTTP Basic the decoded ``user:password`` and the
    password. Longest first; values under 8 characters are left alone (hiding them
    would mangle ordinary text).

    >>> secret_forms(["Basic YWxpY2U6aHVudGVyMjAyNA=="])[-2:]
    ('alice:hunter2024', 'hunter2024')
    >>> from stackwire.pipeline.secrets import _hide_in
    >>> _hide_in("bad password hunter2024", secret_forms(["Basic YWxpY2U6aHVudGVyMjAyNA=="]))
    'bad password ***'
    """
    found: set[str] = set()
    for value in values:
        text = value if isinstance(value, str) else str(value)  # (a Password stays one)
        found.add(text)
        scheme, _, credentials = text.partition(" ")
        if not credentials or not scheme.isalpha():
            continue
        found.add(credentials)
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(credentials, validate=True).decode("utf-8")
            except ValueError:  # (binascii.Error and UnicodeDecodeError are ones)
                continue
            found.update((Password(pair), Password(pair.partition(":")[2])))
    return tuple(sorted((v for v in found if len(v) >= 8), key=len, reverse=True))


def credentials_sent(*requests: Request | None) -> tuple[str, ...]:
    """The secrets ``requests`` carry, in the forms of `secret_forms`: the value of
    each sensitive header and the password of the URL's userinfo.

    >>> from yarl import URL
    >>> r = Request(method="GET", url=URL("http://api.test/"))
    >>> sent = credentials_sent(r.with_headers({"Authorization": "Bearer tok-1234567890"}))
    >>> len(sent), "tok-1234567890" in sent
    (2, True)
    """
    values: list[object] = []
    for request in requests:
        if request is None:
            continue
        sensitive = request.sensitive_headers
        values.extend(value for name, value in request.headers.items() if name.lower() in sensitive)
        if request.url.password:
            values.append(Password(request.url.password))
    return secret_forms(values)


def hide_secrets(error: StackwireError, secrets: tuple[str, ...]) -> None:
    """Redact ``secrets`` from the messages of ``error`` and of the exceptions it chains."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(isinstance(arg, (str, bytes)) and _holds(arg, secrets) for arg in current.args):
            current.args = tuple(_hide_in_value(arg, secrets) for arg in current.args)
        # (aiohttp's parser errors show their ``message``, which quotes the refused line.)
        holder: Any = current
        message = getattr(holder, "message", None)
        if isinstance(message, str) and (isinstance(current, APIError) or _holds(message, secrets)):
            with contextlib.suppress(AttributeError):  # (another library's, read-only)
                holder.message = _hide_in(message, secrets)
        if isinstance(current, APIError) and current.body is not None:
            current.body = _hide_in_value(current.body, secrets)
        current = current.__cause__ or current.__context__


def _hide_in_value(value: object, secrets: tuple[str, ...]) -> Any:
    """``value`` (a decoded JSON body) with ``secrets`` redacted from its strings."""
    if isinstance(value, str):
        return _hide_in(value, secrets)
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
        hidden = _hide_in(text, secrets)
        return value if hidden == text else hidden.encode()
    if isinstance(value, dict):
        return {key: _hide_in_value(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [_hide_in_value(item, secrets) for item in value]
    return value


def _holds(value: str | bytes, secrets: tuple[str, ...]) -> bool:
    """Whether ``value`` contains one of ``secrets`` (bytes: as UTF-8)."""
    if isinstance(value, bytes):
        return any(secret.encode("utf-8", "replace") in value for secret in secrets)
    return any(secret in value for secret in secrets)


def _hide_in(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, "***" if isinstance(secret, Password) else redact(secret))
    return text
