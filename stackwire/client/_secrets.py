"""Secrets: wrapped so that reprs redact them (`_Secret`), and hidden in error messages
(`_hide_secrets`, from `stackwire.pipeline.secrets`)."""

from __future__ import annotations

from collections.abc import Iterable

from ..pipeline.request import SecretValue
from ..pipeline.secrets import hide_secrets as _hide_secrets

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


__all__ = ["_Secret", "_hide_secrets", "secrets_in"]
