"""Sentinels shared by the whole package: `NOT_GIVEN` and `Omit`."""

from __future__ import annotations

from typing import Final, Literal, final

__all__ = ["NOT_GIVEN", "NotGiven", "Omit", "omit"]


@final
class NotGiven:
    """The type of `NOT_GIVEN`: "the caller said nothing", unlike ``None`` ("off").

    >>> from stackwire import NOT_GIVEN
    >>> bool(NOT_GIVEN)
    False
    """

    __slots__ = ()
    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven()


@final
class Omit:
    """A header value that removes the header, even one the client sends by default.

    >>> from stackwire import Omit
    >>> headers = {"User-Agent": Omit()}
    """

    __slots__ = ()

    def __bool__(self) -> Literal[False]:
        return False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Omit)

    def __hash__(self) -> int:
        return hash(Omit)

    def __repr__(self) -> str:
        return "Omit()"


omit: Final = Omit()
