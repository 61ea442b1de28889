"""Resilience parts (DESIGN §8): rate limits, concurrency limits, a circuit breaker, a
retry budget and hedging.

Each part but `RetryBudget` is a middleware added with ``client.with_middleware(part)``
(below ``retry``, so it runs once per attempt); `RetryBudget` is the client option
``retry_budget=``. A part's state belongs to the part instance (derived clients that
share the part share it) and lives in a `StateStore`; give several parts the same store
to share their state. Refusals are typed errors raised before any I/O, never retried.

- `RateLimit`: a token bucket per origin and the server's own announced budget;
- `ConcurrencyLimit`: at most N attempts in flight;
- `CircuitBreaker`: fail fast while an origin keeps failing, then probe it;
- `RetryBudget`: retries stay a fraction of calls;
- `Hedge`: another attempt for a slow GET; the first response wins.

`MemoryStateStore` keeps state in the process; `RedisStateStore` (extra
``stackwire[redis]``) shares it between every process and host that use one Redis.

A recommended stack for an LLM API::

    client = AsyncClient(base_url, retry_budget=RetryBudget())
    client = client.with_middleware(CircuitBreaker()).with_middleware(RateLimit())

Parts measure time on the client's injected clock and wait with its injected sleep
(`Clocks`), so tests with a virtual clock take milliseconds.
"""

from ..errors import (
    CircuitOpenError,
    ConcurrencyLimitError,
    RateLimitExceededError,
    StateStoreError,
)
from ..pipeline.clocks import Clocks
from ._store import MemoryStateStore, StateStore
from .breaker import CircuitBreaker
from .budget import RetryBudget
from .concurrency import ConcurrencyLimit
from .hedge import Hedge
from .rate_limit import RateLimit
from .redis_store import RedisStateStore

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "Clocks",
    "ConcurrencyLimit",
    "ConcurrencyLimitError",
    "Hedge",
    "MemoryStateStore",
    "RateLimit",
    "RateLimitExceededError",
    "RedisStateStore",
    "RetryBudget",
    "StateStore",
    "StateStoreError",
]
