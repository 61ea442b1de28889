"""`Hedge`: a second attempt when the first is slow to answer; the first response wins.

What it does: for GET, HEAD and OPTIONS only (safe to send twice), starts another
attempt each ``delay`` seconds while no attempt has its response headers, up to
``max_extra`` extra attempts. The first response (whatever its status) is handed back
up; the other attempts are cancelled, and a response one of them already got is closed,
so its connection goes back to the pool. An attempt that fails leaves the others
running; when all fail, the first failure is raised. Other methods pass straight
through.

Where it sits: added with ``client.with_middleware(Hedge(0.2))``, below ``retry`` (per
attempt: a hedged attempt and its twins are one attempt for ``retry``). Put it above
`ConcurrencyLimit`, `RateLimit` and `CircuitBreaker` so that each hedged request is
counted, paced and judged like any other; below ``decode``, the winner's body is read
once, by ``decode``.

Defaults: ``max_extra=1``; no state and no ``store=``. The wait between attempts uses
the client's injected ``sleep`` (`Clocks`).

Retries and timeouts: each hedged request gets the attempt's full timeout; the first
response ends the wait whatever its status, so a fast 503 wins and is retried by
``retry`` as usual. Hedging adds load: pick ``delay`` near a high percentile of the
time to first byte (p95), so only the slowest few attempts are doubled.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from ..errors import InvalidRequestError
from ..pipeline.clocks import Clocks
from ..pipeline.middleware import CallNext
from ..pipeline.request import Request
from ..pipeline.response import Response
from ._common import check_number

__all__ = ["Hedge"]

HEDGED_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Hedge:
    """Another attempt each ``delay`` while none has answered; see the module docstring.

    >>> from stackwire import AsyncClient
    >>> client = AsyncClient("https://api.example.com").with_middleware(Hedge(0.25))
    >>> "hedge" in client.pipeline
    True
    """

    name = "hedge"

    def __init__(self, delay: float, *, max_extra: int = 1) -> None:
        self.delay = check_number("delay", delay, inclusive=True) or 0.0
        if isinstance(max_extra, bool) or not isinstance(max_extra, int) or max_extra < 0:
            raise InvalidRequestError(f"max_extra must be an int >= 0, got {max_extra!r}")
        self.max_extra = max_extra

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        if request.method not in HEDGED_METHODS or self.max_extra == 0:
            return await call_next(request)
        sleep = Clocks.of(request).sleep
        attempts: list[asyncio.Task[Response[Any]]] = []
        failures: list[BaseException] = []
        winner: asyncio.Task[Response[Any]] | None = None
        timer: asyncio.Future[object] | None = None

        def launch() -> asyncio.Future[object] | None:
            # Each hedged request gets its own copy of the extension map.
            twin = request.replace(extensions=dict(request.extensions))
            attempts.append(asyncio.ensure_future(call_next(twin)))
            if len(attempts) > self.max_extra:
                return None
            return asyncio.ensure_future(sleep(self.delay))

        try:
            timer = launch()
            while True:
                pending: set[asyncio.Future[Any]] = {t for t in attempts if not t.done()}
                if not pending:
                    raise failures[0]  # every attempt started has failed
                if timer is not None:
                    pending.add(timer)
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in attempts:
                    if task in done:
                        error = task.exception()
                        if error is None:
                            winner = task
                            return task.result()
                        failures.append(error)
                if timer is not None and timer in done:
                    timer = launch()
        finally:
            await _settle(attempts, winner, timer)

    def __repr__(self) -> str:
        return f"Hedge({self.delay:g}, max_extra={self.max_extra})"


async def _settle(
    attempts: list[asyncio.Task[Response[Any]]],
    winner: asyncio.Task[Response[Any]] | None,
    timer: asyncio.Future[object] | None,
) -> None:
    """Cancel the losers (and the timer), wait for them, and close every response one
    of them got; the winner is left alone."""
    if timer is not None and not timer.done():
        timer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await timer
    losers = [task for task in attempts if task is not winner]
    for task in losers:
        task.cancel()
    await asyncio.gather(*losers, return_exceptions=True)
    for task in losers:
        if not task.cancelled() and task.exception() is None:
            task.result().close()
