"""The middleware contract.

A middleware is any object (or plain async function) with this signature::

    async def my_middleware(request: Request, call_next: CallNext) -> Response: ...

It may change the request (pass on a copy: ``request.replace(...)``), call
``call_next`` zero, one or several times, inspect or replace the response, or raise.

Obligations:

- **Release every response you receive and do not return.** A response you drop
  (to retry, to replace it) must be closed first (``response.close()``), or its
  connection stays checked out of the pool.
- **Never swallow ``asyncio.CancelledError``.** Catch ``Exception``, not
  ``BaseException``, unless you re-raise.
- **Raise stackwire errors.** Anything a user can see is a `StackwireError`
  (with the original as ``__cause__``) or ``CancelledError``.
- **Know your side of ``retry``.** Above it, you run once per call; below it
  (``middlewares=`` given to the client), once per attempt.

A middleware may have a ``name`` attribute; `Pipeline` uses it (else the function's or
class's name) to place others before or after it.

A middleware that only changes the request can derive from `RequestRewriter` and
implement ``rewrite(request)``: the pipeline then links it as a plain function, which
costs less than a coroutine layer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from ..errors import StackwireError
from .request import Request
from .response import Response

__all__ = [
    "CallNext",
    "Middleware",
    "RequestRewriter",
    "middleware_name",
    "not_a_response",
    "pure_rewrite",
]

CallNext = Callable[[Request], Awaitable[Response[Any]]]
"""The rest of the stack: send this request on, get its response back."""


@runtime_checkable
class Middleware(Protocol):
    """``async (request, call_next) -> Response``; see the module docstring."""

    async def __call__(self, request: Request, call_next: CallNext, /) -> Response[Any]: ...


def not_a_response(value: object) -> StackwireError:
    """The error for a middleware that handed back ``value`` instead of a `Response`
    (most often ``None``: ``await call_next(request)`` without ``return``). Raised by
    the stages that read the response (``decode``, ``retry``, the client), only once
    reading it has failed, so a call that goes well pays nothing for the check."""
    if value is None:
        what = "None (does it `return await call_next(request)`?)"
    else:
        what = f"a {type(value).__name__}"
    return StackwireError(
        f"a middleware returned {what} instead of a Response: "
        "every middleware must return the Response that call_next gave it, or another one"
    )


def middleware_name(middleware: Middleware | Callable[..., Any]) -> str:
    """The name a middleware goes by in a `Pipeline`."""
    name = getattr(middleware, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(middleware, "__name__", None)
    if isinstance(name, str):
        return name
    return type(middleware).__name__


PURE_REWRITE = "_stackwire_pure_rewrite"

_F = TypeVar("_F", bound=Callable[..., Any])


def pure_rewrite(rewrite: _F) -> _F:
    """Mark a ``rewrite`` method whose result depends on the request alone (no clock,
    no counter, no state that changes): a `Pipeline` may then hand the last result
    on again for the same request object. Only the built-in rewriters use it; a
    subclass that overrides ``rewrite`` is not pure unless it says so."""
    setattr(rewrite, PURE_REWRITE, True)
    return rewrite


class RequestRewriter:
    """Base of a middleware that only changes the request on its way down.

    A subclass implements ``rewrite(request) -> Request``; the middleware passes the
    rewritten request on and hands back whatever comes up. In a `Pipeline` it is
    linked as a plain function, ``lambda request: call_next(rewrite(request))``,
    with no coroutine of its own, and rewriters next to each other share one such
    function: the built-in ``headers``, ``query`` and ``timeout`` cost a call each,
    not a layer of awaiting. A subclass that overrides
    ``__call__`` is linked through ``__call__`` like any other middleware.

    >>> from stackwire import AsyncClient
    >>> class Tenant(RequestRewriter):
    ...     name = "tenant"
    ...     def rewrite(self, request):
    ...         return request.with_headers({"X-Tenant": "acme"})
    >>> client = AsyncClient("https://api.example.com").with_middleware(Tenant())
    >>> client.pipeline.names
    ['headers', 'query', 'timeout', 'retry', 'decode', 'tenant', 'redirects']
    """

    def rewrite(self, request: Request, /) -> Request:
        """The request to pass on (a copy: ``request.replace(...)`` and friends)."""
        raise NotImplementedError

    async def __call__(self, request: Request, call_next: CallNext, /) -> Response[Any]:
        return await call_next(self.rewrite(request))

    def _rewriter(self) -> Callable[[Request], Request] | None:
        """What `Pipeline` links in place of ``__call__`` (``None``: use that)."""
        if type(self).__call__ is not RequestRewriter.__call__:
            return None
        return self.rewrite
