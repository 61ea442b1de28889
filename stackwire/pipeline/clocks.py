"""`Clocks`: the client's injected ``sleep`` and clocks, as middlewares below it see them.

A client created with ``sleep=`` or ``clock=`` (tests do, with a fake sleep and a
virtual clock) stores them on every request it builds, under `Clocks.KEY` in
`Request.extensions`; `Clocks.of(request)` reads them back, or the real ones when the
client was given none (then nothing is stored: no cost). Middlewares that wait or
measure time (the resilience parts, a custom throttle) use them, so a test that fakes
time for the client fakes it for them too.

- ``sleep``: the client's ``sleep`` (`asyncio.sleep` by default);
- ``clock``: the client's wall clock (`time.time`), for absolute times such as a rate
  limit reset announced as an RFC 3339 date or epoch seconds;
- ``monotonic``: the clock to measure intervals on: `time.monotonic`, or the client's
  ``clock`` when one was injected (a virtual clock advances with the fake sleep).

>>> import time
>>> from yarl import URL
>>> from stackwire.pipeline.request import Request
>>> Clocks.of(Request(method="GET", url=URL("http://api.test/"))).monotonic is time.monotonic
True
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import ClassVar

import msgspec

from .request import ExtensionKey, Request

__all__ = ["Clocks"]


class Clocks(msgspec.Struct, frozen=True, kw_only=True):
    """The client's ``sleep``, wall ``clock`` and ``monotonic`` clock; see the module."""

    KEY: ClassVar[ExtensionKey[Clocks]] = ExtensionKey("clocks")

    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    clock: Callable[[], float] = time.time
    monotonic: Callable[[], float] = time.monotonic

    @staticmethod
    def of(request: Request) -> Clocks:
        """The clocks of the client that built ``request`` (the real ones if it has none)."""
        clocks = request.extensions.get(_KEY)
        return DEFAULT_CLOCKS if clocks is None else clocks

    @classmethod
    def for_client(
        cls, sleep: Callable[[float], Awaitable[object]], clock: Callable[[], float]
    ) -> Clocks | None:
        """What a client with these options stores, or ``None`` for the real ones."""
        if sleep is asyncio.sleep and clock is time.time:
            return None
        return cls(
            sleep=sleep, clock=clock, monotonic=time.monotonic if clock is time.time else clock
        )


DEFAULT_CLOCKS = Clocks()
_KEY = Clocks.KEY
