"""Secrets a client holds: wrapped so that reprs redact them, and hidden in error messages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._config import _Config
from typing import Any

import msgspec

from ..errors import APIError, StackwireError
from ..pipeline.request import ALWAYS_SENSITIVE_HEADERS, SecretValue, redact

# A secret as a client keeps it: the whole value when sent, but ``repr()`` (of the
# config, of headers holding it) shows at most its last 4 characters.
_Secret = SecretValue


def _sensitive_names(config: _Config) -> frozenset[str]:
    names = ALWAYS_SENSITIVE_HEADERS | config.sensitive_headers
    if config.api_key_header is not None:
        names |= {config.api_key_header.lower()}
    return names


def _guard_secrets(config: _Config) -> _Config:
    """``config`` with the API key and sensitive header values wrapped in `_Secret`."""
    changes: dict[str, Any] = {}
    if config.api_key is not None and not isinstance(config.api_key, _Secret):
        changes["api_key"] = _Secret(config.api_key)
    sensitive = _sensitive_names(config)
    if any(
        name.lower() in sensitive and isinstance(value, str) and not isinstance(value, _Secret)
        for name, value in config.headers.items()
    ):
        changes["headers"] = {
            name: _Secret(value) if name.lower() in sensitive and isinstance(value, str) else value
            for name, value in config.headers.items()
        }
    return msgspec.structs.replace(config, **changes) if changes else config


def _secret_values(config: _Config) -> tuple[str, ...]:
    """The secrets to hide in error messages: the key, sensitive header values and
    the credentials after their scheme (``Bearer <token>``). Very short values are
    left alone (hiding them would mangle ordinary text)."""
    sensitive = _sensitive_names(config)
    values = [config.api_key] if config.api_key is not None else []
    values += [
        value
        for name, value in config.headers.items()
        if name.lower() in sensitive and isinstance(value, str)
    ]
    return secrets_in(values)


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
        current = current.__cause__ or current.__context__


def _hide_in(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, redact(secret))
    return text
