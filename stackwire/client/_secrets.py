"""Secrets: wrapped so that reprs redact them (`_Secret`), and hidden in error messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import APIError, StackwireError
from ..pipeline.request import SecretValue, redact

# A secret as a client keeps it: the whole value when sent, but ``repr()`` (of the
# config, of headers holding it) shows at most its last 4 characters.
_Secret = SecretValue


def secrets_in(values: Iterable[object]) -> tuple[str, ...]:
    """The strings of ``values`` to hide in messages (and each credential after its
    scheme), longest first; values under 8 characters are left alone."""
    found: set[str] = set()
    for value in values:
        found.add(str(value))
        scheme, _, credentials = str(value).partition(" ")
        if credentials and scheme.isalpha():
            found.add(credentials)
    return tuple(sorted((v for v in found if len(v) >= 8), key=len, reverse=True))


def _hide_secrets(error: StackwireError, secrets: tuple[str, ...]) -> None:
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
