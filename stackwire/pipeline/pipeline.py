"""`Pipeline`: the ordered, named stack of middlewares a call runs through.

A pipeline is a value: ``insert``, ``replace`` and ``remove`` return a new pipeline, so
a client derived with another stack never changes the one it came from. The chain of
calls is composed once per pipeline (and transport) and reused by every call.

>>> from stackwire.pipeline import Pipeline
>>> async def log(request, call_next):
...     return await call_next(request)
>>> print(Pipeline([log]).insert(log, name="log2", after="log"))
1. log
2. log2
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from types import FunctionType, MethodType
from typing import Any, cast, overload

from ..errors import InvalidRequestError
from ._memo import IdentityMemo
from .middleware import PURE_REWRITE, CallNext, Middleware, middleware_name
from .request import Request
from .response import Response

__all__ = ["NamedMiddleware", "Pipeline"]

Handler = Callable[[Request], Awaitable[Response[Any]]]
Rewrite = Callable[[Request], Request]


class NamedMiddleware:
    """A middleware with the name it has in its pipeline; calls go straight through."""

    __slots__ = ("explicit", "middleware", "name")

    def __init__(self, name: str, middleware: Middleware, *, explicit: bool = True) -> None:
        self.name = name
        self.middleware = middleware
        # A name the user gave (``name=``, a ``name`` attribute, a NamedMiddleware), as
        # opposed to one taken from a function's or class's name, which may be renamed
        # (``mw`` -> ``mw-2``) to keep names unique.
        self.explicit = explicit

    def __call__(self, request: Request, call_next: CallNext, /) -> Awaitable[Response[Any]]:
        return self.middleware(request, call_next)

    def __repr__(self) -> str:
        return f"NamedMiddleware({self.name!r}, {self.middleware!r})"


def _link(middleware: Middleware, call_next: Handler) -> Handler:
    # An instance whose class defines ``__call__`` in Python is called through its
    # bound method: the same call, without the slot lookup on every request.
    call: Middleware = middleware
    method = getattr(type(middleware), "__call__", None)  # noqa: B004 (the class's)
    if not isinstance(middleware, FunctionType) and isinstance(method, FunctionType):
        call = MethodType(method, middleware)

    def handler(request: Request) -> Awaitable[Response[Any]]:
        return call(request, call_next)

    return handler


def _rewrite_then(rewrites: tuple[Rewrite, ...], call_next: Handler) -> Handler:
    """One plain function for a run of `RequestRewriter` middlewares, outermost first.

    When every rewriter of the run is pure (marked with `pure_rewrite`: its result
    depends on the request alone, as for the built-in ``headers``, ``query`` and
    ``timeout``),
    the run remembers its last request and result. Most calls of a client hand in the
    very `Request` the call before did (the client shares the request of the calls
    that set nothing of their own), and get the very result back without a rewrite.
    A result with a deadline (``deadline_at`` is read off the clock) or a request with
    a body is never kept.
    """
    if not all(getattr(rewrite, PURE_REWRITE, False) is True for rewrite in rewrites):

        def rewritten(request: Request) -> Awaitable[Response[Any]]:
            for rewrite in rewrites:
                request = rewrite(request)
            return call_next(request)

        return rewritten

    # The last request in and its result only (size 0): most requests made with
    # keywords are one-offs, which must not take the places of the shared ones.
    memo: IdentityMemo[Request] = IdentityMemo(size=0)

    def rewritten_pure(request: Request) -> Awaitable[Response[Any]]:
        if request is memo.last_key:
            return call_next(memo.last_value)
        given = request
        for rewrite in rewrites:
            request = rewrite(request)
        if request.deadline_at is None and given.body is None:
            memo.put(given, request)
        return call_next(request)

    return rewritten_pure


def _rewrite_of(middleware: Middleware) -> Rewrite | None:
    rewriter = getattr(middleware, "_rewriter", None)
    return None if rewriter is None else cast("Rewrite | None", rewriter())


class Pipeline:
    """An ordered stack of named middlewares, outermost first.

    Iterating yields `NamedMiddleware` objects (each with ``name`` and
    ``middleware``); ``str()`` lists them one a line.
    """

    __slots__ = ("_chains", "_entries")

    def __init__(self, middlewares: Iterable[Middleware | NamedMiddleware] = ()) -> None:
        entries: list[NamedMiddleware] = []
        for mw in middlewares:
            if isinstance(mw, NamedMiddleware):
                _check_name(mw.name)
                entries.append(mw)
            else:
                entries.append(_named(mw, None))
        self._entries: tuple[NamedMiddleware, ...] = tuple(_unique(entries))
        self._chains: dict[int, tuple[Handler, Handler]] = {}

    # -- reading -------------------------------------------------------------------

    def __iter__(self) -> Iterator[NamedMiddleware]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return any(entry.name == name for entry in self._entries)

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self._entries]

    def __getitem__(self, name: str) -> Middleware:
        """The middleware called ``name``."""
        return self._entries[self._index(name)].middleware

    def __str__(self) -> str:
        return "\n".join(f"{i}. {entry.name}" for i, entry in enumerate(self._entries, 1))

    def __repr__(self) -> str:
        return f"Pipeline({self.names!r})"

    # -- deriving ------------------------------------------------------------------

    @overload
    def insert(
        self, middleware: Middleware, *, name: str | None = None, before: str
    ) -> Pipeline: ...
    @overload
    def insert(
        self, middleware: Middleware, *, name: str | None = None, after: str
    ) -> Pipeline: ...
    @overload
    def insert(self, middleware: Middleware, *, name: str | None = None) -> Pipeline: ...
    def insert(
        self,
        middleware: Middleware,
        *,
        name: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Pipeline:
        """A pipeline with ``middleware`` added before or after a named one (at the
        end, innermost, when neither is given)."""
        if before is not None and after is not None:
            raise InvalidRequestError("insert() takes before= or after=, not both")
        entry = _named(middleware, name)
        entries = list(self._entries)
        if before is not None:
            entries.insert(self._index(before), entry)
        elif after is not None:
            entries.insert(self._index(after) + 1, entry)
        else:
            entries.append(entry)
        return Pipeline(entries)

    def replace(self, name: str, middleware: Middleware) -> Pipeline:
        """A pipeline where the middleware called ``name`` is ``middleware`` (same name)."""
        entries = list(self._entries)
        entries[self._index(name)] = _named(middleware, name)
        return Pipeline(entries)

    def remove(self, name: str) -> Pipeline:
        """A pipeline without the middleware called ``name``."""
        entries = list(self._entries)
        del entries[self._index(name)]
        return Pipeline(entries)

    def _index(self, name: str) -> int:
        for i, entry in enumerate(self._entries):
            if entry.name == name:
                return i
        raise InvalidRequestError(
            f"no middleware named {name!r} in the pipeline (it has: {', '.join(self.names)})"
        )

    # -- running -------------------------------------------------------------------

    def compose(self, terminal: Handler) -> Handler:
        """The whole chain ending in ``terminal``; built once per terminal, then reused."""
        cached = self._chains.get(id(terminal))
        if cached is not None and cached[0] is terminal:
            return cached[1]
        handler = terminal
        rewrites: list[Rewrite] = []  # a run of rewriters, innermost first
        for entry in reversed(self._entries):
            rewrite = _rewrite_of(entry.middleware)
            if rewrite is not None:
                rewrites.append(rewrite)
                continue
            if rewrites:
                handler = _rewrite_then(tuple(reversed(rewrites)), handler)
                rewrites.clear()
            handler = _link(entry.middleware, handler)
        if rewrites:
            handler = _rewrite_then(tuple(reversed(rewrites)), handler)
        self._chains[id(terminal)] = (terminal, handler)
        return handler


def _named(middleware: Middleware, name: str | None) -> NamedMiddleware:
    if isinstance(middleware, type):  # callable, but calling it makes an instance
        raise InvalidRequestError(
            f"a middleware must be an instance, got the class {middleware.__name__}: "
            f"pass {middleware.__name__}(...)"
        )
    if not callable(middleware):
        raise InvalidRequestError(
            f"a middleware must be callable as (request, call_next), got {middleware!r}"
        )
    if name is not None:
        return NamedMiddleware(_check_name(name), middleware)
    given = getattr(middleware, "name", None)
    if isinstance(given, str):
        return NamedMiddleware(_check_name(given), middleware)
    return NamedMiddleware(middleware_name(middleware), middleware, explicit=False)


def _check_name(name: object) -> str:
    """A middleware's name: a non-empty str with nothing unprintable, since the
    pipeline prints one name a line and others are placed ``before=``/``after=`` it."""
    if not isinstance(name, str) or not name or not name.isprintable():
        raise InvalidRequestError(
            f"a middleware name must be a non-empty printable str, got {name!r:.50}"
        )
    return name


def _unique(entries: list[NamedMiddleware]) -> list[NamedMiddleware]:
    """``entries`` with unique names: two equal names a user gave are an error; a name
    taken from a function or class gets the first free suffix (``mw``, ``mw-2``, ...)."""
    taken: set[str] = set()
    for entry in entries:
        if entry.explicit:
            if entry.name in taken:
                raise InvalidRequestError(
                    f"two middlewares are named {entry.name!r}; pass name= to tell them apart"
                )
            taken.add(entry.name)
    unique: list[NamedMiddleware] = []
    for entry in entries:
        if not entry.explicit:
            name, n = entry.name, 1
            while name in taken:
                n += 1
                name = f"{entry.name}-{n}"
            if name != entry.name:
                entry = NamedMiddleware(name, entry.middleware, explicit=False)
            taken.add(name)
        unique.append(entry)
    return unique
