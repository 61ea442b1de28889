"""One OS process of the multi-process tests and of ``benchmarks/redis_limits.py``.

``python -m tests.redis.worker`` prints ``ready`` once imported, then reads one JSON
spec a line from stdin and answers each with a JSON line (so a pool of warm processes
serves many runs, started together within milliseconds). A spec makes ``calls`` calls,
``parallel`` at a time, to ``base`` + ``path`` (each with its own ``?id=``) through the
parts named in ``parts`` over one `RedisStateStore` (``redis``, ``prefix``,
``timeout``); with ``duration``, callers go on making calls until that many seconds
have passed instead. The answer: ``{"ok": n, "errors": {name: n}, "elapsed": s,
"warnings": n, "opened": t, "acquires": [[start, end, state], ...]}`` (``warnings``:
the store's outage warnings; with ``"watch": true``, ``opened`` is the ``time.time()``
when this process's breaker record opened the breaker, and ``acquires`` every
breaker check with its state).

Parts: ``{"rate": R, "burst": B}``, ``{"concurrency": N}``, ``{"budget": ratio}``
(with ``"budget_floor": min_per_second``, 0 unless given), ``{"breaker": min_calls}``;
``"local": true`` gives each part its own in-process state instead (the baseline
without sharing).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from collections import Counter
from typing import Any

import stackwire
from stackwire import CircuitBreaker, ConcurrencyLimit, RateLimit, RedisStateStore, RetryBudget


async def no_sleep(delay: float) -> None:
    await asyncio.sleep(0)


class CountWarnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


WARNINGS = CountWarnings()
logging.getLogger("stackwire").addHandler(WARNINGS)


class WatchedStore(RedisStateStore):
    """Records when its breaker checks ran and what they said, and when it opened."""

    opened: float | None = None
    acquires: list[tuple[float, float, str]]

    async def breaker_acquire(self, key: str, *, open_for: float) -> tuple[str, float]:
        began = time.time()
        state, retry_after = await super().breaker_acquire(key, open_for=open_for)
        self.acquires.append((began, time.time(), state))
        return state, retry_after

    async def breaker_record(self, key: str, **options: Any) -> str:
        state = await super().breaker_record(key, **options)
        if state == "open" and self.opened is None:
            self.opened = time.time()
        return state


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    WARNINGS.count = 0
    store: RedisStateStore | None = None
    if not spec.get("local"):
        kind = WatchedStore if spec.get("watch") else RedisStateStore
        store = kind(spec["redis"], prefix=spec["prefix"], timeout=spec.get("timeout", 0.25))
        if isinstance(store, WatchedStore):
            store.acquires = []
    parts = spec.get("parts", {})
    options: dict[str, Any] = {"max_retries": spec.get("max_retries", 2)}
    if "budget" in parts:
        options["retry_budget"] = RetryBudget(
            parts["budget"], min_per_second=parts.get("budget_floor", 0.0), store=store
        )
    if spec.get("no_backoff"):
        options["sleep"] = no_sleep
    errors: Counter[str] = Counter()
    ok = 0
    async with stackwire.AsyncClient(spec["base"], **options) as client:
        if "breaker" in parts:
            client = client.with_middleware(
                CircuitBreaker(min_calls=parts["breaker"], open_for=60.0, store=store)
            )
        if "rate" in parts:
            client = client.with_middleware(
                RateLimit(parts["rate"], burst=parts.get("burst"), store=store)
            )
        if "concurrency" in parts:
            client = client.with_middleware(ConcurrencyLimit(parts["concurrency"], store=store))
        duration = spec.get("duration")
        queue = iter(range(spec.get("calls", 10**9)))
        began = time.monotonic()
        tag = spec.get("tag", "w")

        async def caller() -> None:
            nonlocal ok
            for n in queue:
                if duration is not None and time.monotonic() - began >= duration:
                    return
                try:
                    await client.get(spec.get("path", "/r"), query={"id": f"{tag}-{n}"})
                    ok += 1
                except stackwire.APIError as error:
                    errors[type(error).__name__] += 1

        await asyncio.gather(*(caller() for _ in range(spec.get("parallel", 1))))
        elapsed = time.monotonic() - began
    answer: dict[str, Any] = {
        "ok": ok,
        "errors": dict(errors),
        "elapsed": elapsed,
        "warnings": WARNINGS.count,
    }
    if isinstance(store, WatchedStore):
        answer.update(opened=store.opened, acquires=store.acquires)
    if store is not None:
        await store.aclose()
    return answer


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(asyncio.run(run(json.loads(line)))), flush=True)


if __name__ == "__main__":
    main()
