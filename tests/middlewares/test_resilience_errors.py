"""The refusals of the resilience parts: typed, importable, never retried."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import stackwire
from stackwire import CallNext, Request, Response
from tests.conftest import EchoServer

REFUSALS = [
    stackwire.RateLimitExceededError,
    stackwire.ConcurrencyLimitError,
    stackwire.CircuitOpenError,
]


@pytest.mark.parametrize("error_class", REFUSALS)
async def test_a_refusal_is_raised_once_without_retry_or_io(
    error_class: type[stackwire.APIError],
    echo_server: Callable[[], Awaitable[tuple[str, EchoServer]]],
    make_client: Callable[..., stackwire.AsyncClient],
) -> None:
    base_url, server = await echo_server()
    refused: list[int] = []

    async def refuse(request: Request, call_next: CallNext) -> Response[Any]:
        refused.append(request.attempt)
        raise error_class("refused before any I/O", request=request)

    client = make_client(base_url, max_retries=2).with_middleware(refuse)
    with pytest.raises(error_class) as caught:
        await client.get("/x")
    assert isinstance(caught.value, stackwire.APIError)
    assert caught.value.retries_taken == 0
    assert refused == [0]  # one attempt, no retry
    assert server.requests == []  # nothing reached the wire


def test_refusals_are_exported_from_errors_and_top_level() -> None:
    for error_class in REFUSALS:
        assert error_class.__name__ in stackwire.__all__
        assert error_class.__name__ in stackwire.errors.__all__
        assert error_class("x").retry_after is None
