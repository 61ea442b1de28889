"""Fixtures of the Redis tests: a real ``redis-server`` on 127.0.0.1 (see
`tests.redis.server` for which binary), one for the session and, for the tests that
kill or pause it, one of their own; stores with a prefix of their own per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from stackwire import RedisStateStore
from tests.redis.server import RedisServer

MakeStore = Callable[..., RedisStateStore]


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server this test may kill, restart or pause."""
    with RedisServer() as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}:"


@pytest.fixture
async def make_store(redis_server: RedisServer, prefix: str) -> AsyncIterator[MakeStore]:
    """``make_store(url=None, **options)``: a `RedisStateStore` on the session's server
    (or ``url``) with this test's prefix and a 5 s timeout, closed after the test."""
    stores: list[RedisStateStore] = []

    def make(url: str | None = None, **options: object) -> RedisStateStore:
        options.setdefault("prefix", prefix)
        # Not the 0.25 s default: these tests are about sharing, not faults, and a
        # loaded CI machine may take longer to open a burst of connections.
        options.setdefault("timeout", 5.0)
        store = RedisStateStore(url or redis_server.url, **options)  # type: ignore[arg-type]
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.aclose()
