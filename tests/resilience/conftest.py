"""Fixtures of the resilience tests: a virtual clock the client sleeps on."""

from __future__ import annotations

import asyncio

import pytest


class VirtualTime:
    """``sleep`` advances ``clock`` at once (and yields to the loop once); ``slept``
    records every wait. Handed to a client as ``sleep=``/``clock=``, it is the clock
    the resilience parts measure on (`Clocks`)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()
