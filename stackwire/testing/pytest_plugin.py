"""The stackwire pytest plugin: fixtures for testing an SDK without a live API.

Installed with stackwire (the ``stackwire`` entry point of ``pytest11``), so an SDK's
tests use the fixtures without a ``conftest.py`` line (``-p no:stackwire`` turns it
off; ``-p stackwire.testing.pytest_plugin`` loads it where entry points are off):

- ``stackwire_base_url``: ``"https://api.test/"``; override the fixture for another;
- ``stackwire_virtual_time``: a `VirtualTime`;
- ``stackwire_router``: a `Router` for ``stackwire_base_url``;
- ``stackwire_mock_transport``: a `MockTransport` over ``stackwire_router``;
- ``stackwire_mock_client``: an `AsyncClient` over it, with the virtual time's
  ``sleep``, ``clock`` and ``random``, closed after the test;
- ``stackwire_mock_sync_client``: the same as a blocking `Client`;
- ``stackwire_cassette_dir``: ``cassettes/`` next to the test module;
- ``stackwire_cassette``: a `Cassette` named after the test in that folder, in the
  mode given by ``--stackwire-record`` (``once`` by default; ``record`` re-records,
  ``replay`` fails on a missing recording). Give it as a client's ``transport=``;
  what it recorded is written when the client closes, or else after the test.

Only this module imports pytest; ``import stackwire.testing`` does not.
"""

from __future__ import annotations

from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from ..client import AsyncClient
from ..sync import Client
from ._cassette import Cassette
from ._mock import MockTransport
from ._router import Router
from ._virtual_time import VirtualTime

__all__ = [
    "pytest_addoption",
    "stackwire_base_url",
    "stackwire_cassette",
    "stackwire_cassette_dir",
    "stackwire_mock_client",
    "stackwire_mock_sync_client",
    "stackwire_mock_transport",
    "stackwire_router",
    "stackwire_virtual_time",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("stackwire")
    group.addoption(
        "--stackwire-record",
        choices=("once", "record", "replay"),
        default="once",
        help="mode of the stackwire_cassette fixture (default: once)",
    )


def _finish(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never waits (closing a client over a `MockTransport`)
    to its end without an event loop: fixtures here are plain, so the plugin needs
    no async plugin of its own."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("closing the mocked client had to wait; close it in the test instead")


@pytest.fixture
def stackwire_base_url() -> str:
    return "https://api.test/"


@pytest.fixture
def stackwire_virtual_time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def stackwire_router(stackwire_base_url: str) -> Router:
    return Router(stackwire_base_url)


@pytest.fixture
def stackwire_mock_transport(stackwire_router: Router) -> MockTransport:
    return MockTransport(stackwire_router)


@pytest.fixture
def stackwire_mock_client(
    stackwire_base_url: str,
    stackwire_mock_transport: MockTransport,
    stackwire_virtual_time: VirtualTime,
) -> Iterator[AsyncClient]:
    client = AsyncClient(
        stackwire_base_url,
        transport=stackwire_mock_transport,
        sleep=stackwire_virtual_time.sleep,
        clock=stackwire_virtual_time.clock,
        random=stackwire_virtual_time.random,
    )
    yield client
    if not client.is_closed:
        _finish(client.close())


@pytest.fixture
def stackwire_mock_sync_client(
    stackwire_base_url: str,
    stackwire_mock_transport: MockTransport,
    stackwire_virtual_time: VirtualTime,
) -> Iterator[Client]:
    client = Client(
        stackwire_base_url,
        transport=stackwire_mock_transport,
        sleep=stackwire_virtual_time.sleep,
        clock=stackwire_virtual_time.clock,
        random=stackwire_virtual_time.random,
    )
    yield client
    client.close()


@pytest.fixture
def stackwire_cassette_dir(request: pytest.FixtureRequest) -> Path:
    return Path(request.path).parent / "cassettes"


@pytest.fixture
def stackwire_cassette(
    request: pytest.FixtureRequest, stackwire_cassette_dir: Path
) -> Iterator[Cassette]:
    name = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in request.node.name)
    mode = request.config.getoption("--stackwire-record")
    cassette = Cassette(stackwire_cassette_dir / f"{name}.json", mode=mode)
    yield cassette
    if not cassette.closed and cassette.mode == "record" and cassette.interactions:
        # The client over it was never closed (closing writes the file): keep what
        # the test recorded all the same, rather than record it again next run.
        cassette.save()
