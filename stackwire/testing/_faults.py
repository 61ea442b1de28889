"""`FaultInjector`: a middleware that fails a seeded share of attempts, for chaos tests.

What it does: for each attempt, draws from its own seeded random generator; with
probability ``rate`` the attempt fails without reaching the transport, with one of
``kinds``: ``"connection_reset"`` and ``"malformed"`` (`APIConnectionError`),
``"timeout"`` (`APITimeoutError`), each the very error the default transport raises for
that socket failure, or ``"503"``, a real 503 `Response` that ``decode`` turns into
`ServiceUnavailableError`. ``injected`` lists what it did, attempt by attempt.

Where it sits: below ``retry`` (``client.with_middleware(FaultInjector(...))`` puts it
among the per-attempt middlewares, above ``redirects``), so that every attempt draws
and the retry middleware sees the faults as it would see real ones.

Defaults: ``kinds`` all four (one kind alone, ``kinds="timeout"``, and ``503`` as a
number are accepted); ``seed=0``. The same seed and the same sequence of
attempts give the same faults on every run; the draws are in attempt order, so
concurrent calls get reproducible faults only if they are started in the same order.

Retries and timeouts: each fault is retried exactly as the failure it imitates
(connection errors, timeouts and 503 are retried by default); an injected timeout
fails at once, without waiting for the attempt's timeout.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal, get_args

from ..errors import InvalidRequestError
from ..pipeline.middleware import CallNext
from ..pipeline.request import Request
from ..pipeline.response import Response
from ._mock import MockResponse

__all__ = ["FaultInjector", "FaultKind", "InjectedFault"]

FaultKind = Literal["connection_reset", "timeout", "malformed", "503"]
ALL_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

_UNAVAILABLE = MockResponse(
    503,
    json={"error": {"type": "service_unavailable", "message": "injected by FaultInjector"}},
)


@dataclass(frozen=True)
class InjectedFault:
    """One fault injected: the attempt's number among those the injector saw (0 for
    the first), its method and URL (without its query and userinfo, which may hold
    secrets), and the kind."""

    attempt: int
    method: str
    url: str
    kind: FaultKind


class FaultInjector:
    """Fails a seeded share ``rate`` of attempts with ``kinds``; see the module docs."""

    name = "fault_injector"

    def __init__(
        self,
        rate: float,
        *,
        kinds: Iterable[FaultKind | Literal[503]] | FaultKind | Literal[503] = ALL_KINDS,
        seed: int = 0,
    ) -> None:
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise InvalidRequestError(f"rate must be a number from 0 to 1, not {rate!r}")
        if isinstance(kinds, (str, int)):  # one kind: kinds="timeout"
            kinds = (kinds,)
        if not isinstance(kinds, Iterable):
            raise InvalidRequestError(f"kinds must be a list of kinds, not {kinds!r}")
        # 503 as a number names the status kind too.
        chosen = tuple("503" if kind == 503 else kind for kind in kinds)
        if isinstance(kinds, AbstractSet):
            # A set's order changes from one run to the next (str hashing is salted
            # per process), and the draws pick by position: put it in a fixed order.
            chosen = tuple(kind for kind in ALL_KINDS if kind in chosen) + tuple(
                kind for kind in chosen if kind not in ALL_KINDS
            )
        unknown = [kind for kind in chosen if kind not in ALL_KINDS]
        if unknown or not chosen:
            raise InvalidRequestError(
                f"kinds must be a non-empty selection of {', '.join(ALL_KINDS)}; got {chosen!r}"
            )
        if isinstance(seed, bool) or not isinstance(seed, (int, str, bytes)):
            raise InvalidRequestError(f"seed must be an int (or a str), not {seed!r}")
        self.rate = float(rate)
        self.kinds = chosen
        self.seed = seed
        self._random = random.Random(seed)
        self.attempts = 0
        self.injected: list[InjectedFault] = []

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        number = self.attempts
        self.attempts += 1
        draw = self._random.random()
        kind = self._random.choice(self.kinds)  # drawn either way: one pair per attempt
        if draw >= self.rate:
            return await call_next(request)
        # The URL as messages show it: a query may hold a key, userinfo a password.
        url = str(request.url.with_query(None).with_user(None))
        self.injected.append(InjectedFault(number, request.method, url, kind))
        if kind == "503":
            return _UNAVAILABLE.build(request)
        if kind == "connection_reset":
            return MockResponse.connection_reset().build(request)
        if kind == "timeout":
            return MockResponse.timeout().build(request)
        return MockResponse.malformed().build(request)

    def __repr__(self) -> str:
        return f"FaultInjector(rate={self.rate:g}, kinds={self.kinds!r}, seed={self.seed})"
