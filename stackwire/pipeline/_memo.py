"""`IdentityMemo`: "the same object as last time", the one cache of the stack.

Most calls of a client share objects: the options of every call that sets no
per-request option, the headers of calls without headers of their own, the joined URL
of a path. A stage that derives something from such an object (a resolved timeout,
the first attempt's headers, whether a URL is of the base URL's origin) remembers the
answer by the object's identity, and pays for the derivation once instead of on
every call. Only read-only objects are keys (frozen structs, header proxies, URLs), so
a remembered answer can never go stale; each entry keeps its key alive, so an id is
never reused while remembered.
"""

from __future__ import annotations

from typing import Any, Final, Generic, TypeVar

__all__ = ["MISSING", "IdentityMemo"]

_V = TypeVar("_V")

MISSING: Final[Any] = object()
"""What `IdentityMemo.get` returns for an object it does not remember."""


class IdentityMemo(Generic[_V]):
    """Values remembered by the identity of their key: the last one found, and up to
    ``size`` more (then new keys are not remembered; the first ones stay).

    >>> memo: IdentityMemo[int] = IdentityMemo(size=2)
    >>> key = ("a",)
    >>> memo.get(key) is MISSING
    True
    >>> memo.put(key, 1)
    >>> memo.get(key)
    1
    >>> memo.get(("a",)) is MISSING  # equal, but not the same object
    True
    """

    __slots__ = ("_entries", "_size", "last_key", "last_value")

    def __init__(self, size: int = 64) -> None:
        self._entries: dict[int, tuple[object, _V]] = {}
        self._size = size
        # The pair found or put last. A stage on the hot path may test it inline,
        # ``memo.last_value if key is memo.last_key else memo.get(key)``, which saves
        # the method call for the usual call (the same object as the call before).
        self.last_key: object = MISSING
        self.last_value: Any = MISSING

    def get(self, key: object) -> _V:
        """The value remembered for ``key`` (this very object), else `MISSING`."""
        if key is self.last_key:
            return self.last_value  # type: ignore[no-any-return]
        entry = self._entries.get(id(key))
        if entry is None or entry[0] is not key:
            return MISSING  # type: ignore[no-any-return]
        self.last_key, self.last_value = key, entry[1]
        return entry[1]

    def put(self, key: object, value: _V) -> None:
        """Remember ``value`` for ``key`` (if there is room)."""
        self.last_key, self.last_value = key, value
        if len(self._entries) < self._size:
            self._entries[id(key)] = (key, value)
