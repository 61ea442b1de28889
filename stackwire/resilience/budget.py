"""`RetryBudget`: retries across all calls of a client stay a fraction of its calls.

What it does: counts the calls of a client (and of the clients derived from it) and
their retries in a sliding ``window``; a retry is allowed while the retries in the
window stay within the larger of ``ratio`` times its calls and a floor of
``min_per_second`` for each second the window covers (from the start of its oldest
slice, a tenth of ``window``, holding a count, to the end of the current one; rounded
up). A floor, not an addition: a busy client hammering a dead upstream makes at most
``1 + ratio`` attempts a call; a quiet one (fewer than ``min_per_second / ratio`` calls
a second) can still retry; a new or idle budget starts from one slice's worth (10
retries with the defaults), not a whole window's (100). When the budget is spent, the
call fails at once with its last attempt's error, whose message says "retry budget
exhausted" and whose ``retry_budget_exhausted`` is ``True``.

Where it sits: not a middleware but the client option ``retry_budget=`` (also for
``with_options``), read by ``retry``, the one stage that sees both calls (deposits,
once per call) and retries (withdrawals, once per retry). Derived clients that keep the
option share the budget; clients given the same store share it too.

Defaults: ``ratio=0.2``, ``min_per_second=10.0``, ``window=10.0`` s; state in a
`MemoryStateStore` of its own unless ``store=`` is given (one budget per store and
settings, not per origin). Time is measured on the client's clock when one is injected.

Retries and timeouts: the budget is asked only once every other rule has said "retry"
(retryable error, ``max_retries`` left, a ``Retry-After`` within bounds, the deadline
not reached), so a call that would not retry spends nothing. Timeouts count as any
other retried failure.
"""

from __future__ import annotations

from ..pipeline.request import Request
from ._common import MIN_WINDOW, StoreSlot, check_number, check_store
from ._store import StateStore

__all__ = ["RetryBudget"]


class RetryBudget:
    """The client option ``retry_budget=``; see the module docstring.

    >>> from stackwire import AsyncClient
    >>> client = AsyncClient("https://api.example.com", retry_budget=RetryBudget(0.1))
    """

    def __init__(
        self,
        ratio: float = 0.2,
        *,
        min_per_second: float = 10.0,
        window: float = 10.0,
        store: StateStore | None = None,
    ) -> None:
        self.ratio = check_number("ratio", ratio, inclusive=True) or 0.0
        self.min_per_second = check_number("min_per_second", min_per_second, inclusive=True) or 0.0
        self.window = check_number("window", window, minimum=MIN_WINDOW, inclusive=True) or 0.0
        self._store = StoreSlot(check_store(store))
        self._key = f"retry_budget:{self.ratio!r}:{self.min_per_second!r}:{self.window!r}"

    async def deposit(self, request: Request) -> None:
        """Count one call (``retry`` calls it once per call)."""
        slot = self._store
        if slot.memory is not None:
            slot.memory.budget_deposit_sync(self._key, window=self.window)
        elif slot.later is not None:  # sent with the store's next round trip
            slot.later.budget_deposit_later(self._key, window=self.window)
        else:
            await (slot.store or slot.get(request)).budget_deposit(self._key, window=self.window)

    async def withdraw(self, request: Request) -> bool:
        """Spend one retry: ``True`` if the budget allows it."""
        store = self._store.store or self._store.get(request)
        return await store.budget_withdraw(
            self._key, ratio=self.ratio, min_per_second=self.min_per_second, window=self.window
        )

    def __repr__(self) -> str:
        return (
            f"RetryBudget({self.ratio:g}, min_per_second={self.min_per_second:g}, "
            f"window={self.window:g})"
        )
