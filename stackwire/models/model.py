"""`Model`: the base class of API models."""

from __future__ import annotations

import msgspec

__all__ = ["Model"]


class Model(msgspec.Struct, kw_only=True):
    """A msgspec Struct for API payloads.

    Fields are keyword-only; fields the API sends that the model does not declare are
    ignored (APIs add fields over time). Decoding is lax by default (``"1"`` can fill an
    ``int``); ``strict=True`` on the client forbids that.

    >>> class User(Model):
    ...     id: int
    ...     name: str
    >>> User(id=1, name="Ada")
    User(id=1, name='Ada')
    """
