"""`SyncPaginator`: the blocking twin of `AsyncPaginator`, for `Client.paginate`.

- ``paginator.first_page()``: the first page (a typed page: ``CursorPage[User]``);
- ``for item in paginator``: every item of every page, fetching each page when the
  one before runs out;
- ``for page in paginator.iter_pages()``: every page.

Each call of these starts again from the first page. Every page is fetched on the
client's event loop, with the first request's options, as `AsyncPaginator` does. The
pages are the same models as in async code; their ``get_next_page()`` is async, so
walk pages with ``iter_pages()`` here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, TypeVar

from ..client.pagination import AsyncPaginator, BasePage
from ._loop_thread import LoopThread

__all__ = ["SyncPaginator"]

_T = TypeVar("_T")
_V = TypeVar("_V")
_PageT_co = TypeVar("_PageT_co", bound="BasePage[Any]", covariant=True)

_DONE: Any = object()


async def _next_or_done(iterator: AsyncIterator[_V]) -> _V:
    try:
        return await iterator.__anext__()
    except StopAsyncIteration:
        return _DONE  # type: ignore[no-any-return]


async def _first(paginator: AsyncPaginator[_PageT_co]) -> _PageT_co:
    return await paginator


class SyncPaginator(Generic[_PageT_co]):
    """What `Client.paginate` returns; see the module docstring."""

    __slots__ = ("_keepalive", "_runtime", "async_paginator")

    def __init__(
        self, paginator: AsyncPaginator[_PageT_co], runtime: LoopThread, keepalive: object
    ) -> None:
        self.async_paginator = paginator
        self._runtime = runtime
        self._keepalive = keepalive

    def first_page(self) -> _PageT_co:
        """Fetch the first page (blocks)."""
        paginator = self.async_paginator
        return self._runtime.run(lambda: _first(paginator), what="first_page()")

    def _drain(self, iterator: AsyncIterator[_V], what: str) -> Iterator[_V]:
        runtime = self._runtime
        while True:
            value = runtime.run(lambda: _next_or_done(iterator), what=what)
            if value is _DONE:
                return
            yield value

    def iter_pages(self) -> Iterator[_PageT_co]:
        """Every page, the first one included (each fetched when needed; blocks)."""
        return self._drain(self.async_paginator.iter_pages(), "iterating pages")

    def __iter__(self: SyncPaginator[BasePage[_T]]) -> Iterator[_T]:
        return self._drain(aiter(self.async_paginator), "iterating a paginated list")

    def __repr__(self) -> str:
        return "<SyncPaginator " + repr(self.async_paginator).removeprefix("<AsyncPaginator ")
