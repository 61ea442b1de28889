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
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from .request import Request
from .response import Response

__all__ = ["CallNext", "Middleware", "middleware_name"]

CallNext = Callable[[Request], Awaitable[Response[Any]]]
"""The rest of the stack: send this request on, get its response back."""


@runtime_checkable
class Middleware(Protocol):
    """``async (request, call_next) -> Response``; see the module docstring."""

    async def __call__(self, request: Request, call_next: CallNext, /) -> Response[Any]: ...


def middleware_name(middleware: Middleware | Callable[..., Any]) -> str:
    """The name a middleware goes by in a `Pipeline`."""
    name = getattr(middleware, "name", None)
    if isinstance(name, str):
        return name
    name = getattr(middleware, "__name__", None)
    if isinstance(name, str):
        return name
    return type(middleware).__name__
