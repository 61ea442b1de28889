"""The transport contract: the terminal stage of every stack.

A transport sends one attempt and hands back its `Response`. Anything with these
three methods is one (subclassing `Transport` is optional)::

    class MyTransport:
        async def send(self, request: Request) -> Response: ...
        async def close(self) -> None: ...
        def pool_stats(self) -> PoolStats: ...

Pass it as ``AsyncClient(base_url, transport=MyTransport())`` (or to the blocking
``Client``); clients derived with ``with_options`` share it, and closing the client it
was given to closes it.

Obligations of ``send(request)``:

- **One request per call.** Send ``request.method`` to ``request.url`` (the ``query``
  middleware has encoded the query into it), the headers ``request.headers`` exactly
  (add only framing headers: ``Host``, ``Content-Length`` / ``Transfer-Encoding``) and
  the body ``request.body`` (``None``, ``bytes``, or a `StreamingBody` to iterate
  once; with a ``Content-Length`` of the request's own, iterate
  ``body.sized(length)``, which fails a stream of another length). Never follow
  redirects (the ``redirects`` middleware does) and never retry (``retry`` does).
- **Return at the headers.** Build a `Response` for ``request`` with the status, the
  headers as received (``Content-Encoding`` included: `Response` decodes gzip,
  deflate, and br / zstd when their packages are installed, and caps the size) and
  the body: ``content=`` bytes, or ``stream=`` an async iterable of chunks as they
  arrive. The `Response` owns the connection from then on.
- **Fail typed.** A failure to connect, a reset, a malformed response or a body cut
  short is `APIConnectionError`; a time limit (``request.options.timeout``, already
  resolved to a `Timeout` or a number of seconds by the ``timeout`` middleware, and
  ``request.deadline_at``, on ``Clocks.of(request).monotonic``) is `APITimeoutError`; each with the
  original as ``__cause__``. A stream of a `Response` that raises maps the same way.
  An HTTP error status is not a failure: return the `Response` (``decode`` raises).
- **Never swallow ``CancelledError``**, and release or close the connection on every
  path.

``close()`` releases every connection (idempotent; after it, ``send`` may raise
`ClientClosedError`, and so may a ``send`` or a body read it cut short: the default
transport's do); ``pool_stats()`` says how many connections are in use and idle
(a transport without a pool may count the responses it handed out and that are not
finished with yet as ``in_use``, with `Response.when_done`, as ``MockTransport`` does;
else ``PoolStats(0, 0)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import msgspec

if TYPE_CHECKING:
    from .request import Request
    from .response import Response

__all__ = ["PoolStats", "Transport"]


class PoolStats(msgspec.Struct, frozen=True):
    """Connections of the transport's pool: checked out by a request, and idle."""

    in_use: int
    idle: int


@runtime_checkable
class Transport(Protocol):
    """Sends one attempt; see the module docstring for the obligations."""

    async def send(self, request: Request, /) -> Response[Any]:
        """Send ``request`` once; its `Response` as soon as the headers are in."""
        ...

    async def close(self) -> None:
        """Release every connection; idempotent."""
        ...

    def pool_stats(self) -> PoolStats:
        """Connections in use and idle right now."""
        ...
