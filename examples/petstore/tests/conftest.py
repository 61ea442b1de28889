"""Fixtures of the Petstore tests, on the stackwire pytest plugin's fixtures.

``stackwire_router`` (a `Router` for ``stackwire_base_url``), ``stackwire_mock_transport``
and ``stackwire_virtual_time`` come from the plugin; this file points them at the
Petstore API and makes sure no test ever opens a socket.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any, NoReturn

import pytest
from petstore import DEFAULT_BASE_URL, AsyncPetstore, Petstore

from stackwire.testing import MockTransport, VirtualTime


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("a Petstore test tried to open a socket")


async def _refuse_async(*args: Any, **kwargs: Any) -> NoReturn:
    _refuse()


@pytest.fixture(autouse=True)
def no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse)
    monkeypatch.setattr(socket, "create_connection", _refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "create_connection", _refuse_async)


@pytest.fixture
def stackwire_base_url() -> str:
    return DEFAULT_BASE_URL


@pytest.fixture
async def petstore(
    stackwire_mock_transport: MockTransport, stackwire_virtual_time: VirtualTime
) -> AsyncIterator[AsyncPetstore]:
    async with AsyncPetstore(
        "sk-test-petstore",
        transport=stackwire_mock_transport,
        sleep=stackwire_virtual_time.sleep,
        clock=stackwire_virtual_time.clock,
        random=stackwire_virtual_time.random,
    ) as store:
        yield store


@pytest.fixture
def sync_petstore(stackwire_mock_transport: MockTransport) -> Iterator[Petstore]:
    with Petstore("sk-test-petstore", transport=stackwire_mock_transport) as store:
        yield store
