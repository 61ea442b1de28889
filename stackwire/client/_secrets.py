"""Secrets: wrapped so that reprs redact them (`_Secret`), and hidden in error messages
(`_hide_secrets`, from `stackwire.pipeline.secrets`)."""

from __future__ import annotations

from ..pipeline.request import SecretValue
from ..pipeline.secrets import hide_secrets as _hide_secrets
from ..pipeline.secrets import secret_forms

# A secret as a client keeps it: the whole value when sent, but ``repr()`` (of the
# config, of headers holding it) shows at most its last 4 characters.
_Secret = SecretValue


# The strings of some values to hide in messages (`secret_forms`).
secrets_in = secret_forms


__all__ = ["_Secret", "_hide_secrets", "secrets_in"]
