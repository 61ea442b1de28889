"""`Model`: the base class of API models."""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["Model"]


class _ModelMeta(msgspec.StructMeta):
    """Makes the fields of every `Model` subclass keyword-only.

    msgspec's ``kw_only=True`` covers only the fields of the class that says it, not
    those of its subclasses; this metaclass says it for each subclass (which may still
    pass ``kw_only=False`` itself).
    """

    def __new__(
        mcls,
        name: str,
        bases: tuple[type, ...],
        namespace: dict[str, Any],
        /,
        **config: Any,
    ) -> _ModelMeta:
        config.setdefault("kw_only", True)
        return super().__new__(mcls, name, bases, namespace, **config)


class Model(msgspec.Struct, metaclass=_ModelMeta):
    """A msgspec Struct for API payloads.

    Fields are keyword-only; fields the API sends that the model does not declare are
    ignored (APIs add fields over time). Decoding is lax by default (``"1"`` can fill an
    ``int``); ``strict=True`` on the client forbids that.

    >>> class User(Model):
    ...     id: int
    ...     name: str
    >>> User(id=1, name="Ada")
    User(id=1, name='Ada')
    >>> User(1, "Ada")
    Traceback (most recent call last):
    ...
    TypeError: Extra positional arguments provided
    """
