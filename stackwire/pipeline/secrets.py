"""Hiding secrets in errors: every message, argument and decoded body of an error and
of the exceptions it chains, with each secret cut to its redacted form.

Used by the client (the credentials a call sent, echoed back by a server) and by the
OAuth 2.0 grant (the client secret, echoed back by a token endpoint).
"""

from __future__ import annotations

from typing import Any

from ..errors import APIError, StackwireError
from .request import Request, redact

__all__ = ["credentials_sent", "hide_secrets"]


def credentials_sent(*requests: Request | None) -> tuple[str, ...]:
    """The secrets ``requests`` carry, to hide in messages: the value of each sensitive
    header and its credentials after the scheme (``Bearer <token>``), longest first;
    values under 8 characters are left alone (hiding them would mangle ordinary text).

    >>> from yarl import URL
    >>> r = Request(method="GET", url=URL("http://api.test/"))
    >>> credentials_sent(r.with_headers({"Authorization": "Bearer tok-1234567890"}))
    ('Bearer tok-1234567890', 'tok-1234567890')
    """
    found: set[str] = set()
    for request in requests:
        if request is None:
            continue
        sensitive = request.sensitive_headers
        for name, value in request.headers.items():
            if name.lower() in sensitive:
                found.add(str(value))
                scheme, _, credentials = str(value).partition(" ")
                if credentials and scheme.isalpha():
                    found.add(credentials)
    return tuple(sorted((v for v in found if len(v) >= 8), key=len, reverse=True))


def hide_secrets(error: StackwireError, secrets: tuple[str, ...]) -> None:
    """Redact ``secrets`` from the messages of ``error`` and of the exceptions it chains."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(isinstance(arg, str) and s in arg for arg in current.args for s in secrets):
            current.args = tuple(
                _hide_in(arg, secrets) if isinstance(arg, str) else arg for arg in current.args
            )
        message = getattr(current, "message", None)
        if isinstance(current, APIError) and isinstance(message, str):
            current.message = _hide_in(message, secrets)
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


def _hide_in(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, redact(secret))
    return text
