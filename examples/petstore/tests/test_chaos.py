"""Chaos: with a fifth of the attempts failing, every call still succeeds (retries)."""

from __future__ import annotations

import socket

import pytest
from petstore import AsyncPetstore

from stackwire.testing import FaultInjector, MockTransport, Router, VirtualTime


async def test_calls_survive_injected_faults(
    stackwire_router: Router, stackwire_mock_transport: MockTransport
) -> None:
    stackwire_router.get("/pets/{id}").respond(json={"id": 1, "name": "Ada"})
    chaos = FaultInjector(0.2, seed=42)
    time = VirtualTime()
    async with AsyncPetstore(
        "sk-test",
        transport=stackwire_mock_transport,
        middlewares=[chaos],
        max_retries=5,
        sleep=time.sleep,
        random=time.random,
    ) as petstore:
        for _ in range(50):
            assert (await petstore.pets.get(1)).name == "Ada"
    assert chaos.injected  # faults did happen, and were retried
    assert len(time.slept) == len(chaos.injected)
    assert len(stackwire_router.calls) == 50  # each call reached the API once


def test_no_test_can_open_a_socket() -> None:
    with pytest.raises(AssertionError, match="tried to open a socket"):
        socket.create_connection(("127.0.0.1", 9))
