"""`RetryBudget` (``retry_budget=``): a dead upstream sees about one attempt per call."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from aiohttp import web

import stackwire
from stackwire import MemoryStateStore, RetryBudget
from tests.conftest import Serve, routes
from tests.resilience.conftest import VirtualTime

MakeClient = Callable[..., stackwire.AsyncClient]


async def dead(serve: Serve) -> tuple[str, list[int]]:
    hits: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        hits.append(1)
        return web.json_response({"error": "down"}, status=503)

    return await serve(routes(("GET", "/r", handle))), hits


async def test_without_a_budget_every_call_makes_three_attempts(
    serve: Serve, make_client: MakeClient
) -> None:
    base, hits = await dead(serve)
    client = make_client(base, max_retries=2)
    for _ in range(20):
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/r")
    assert len(hits) == 60


async def test_with_a_budget_retries_stay_a_fraction_of_calls(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, hits = await dead(serve)
    budget = RetryBudget(0.2, min_per_second=0.0)
    client = make_client(base, max_retries=2, retry_budget=budget, sleep=vt.sleep, clock=vt.clock)
    errors = []
    for _ in range(50):
        with pytest.raises(stackwire.ServiceUnavailableError) as caught:
            await client.get("/r")
        errors.append(caught.value)
    assert len(hits) <= 50 * 1.2 + 1
    spent = [e for e in errors if e.retry_budget_exhausted]
    assert spent
    assert "retry budget exhausted" in str(spent[0])
    assert all(e.retries_taken < 2 or not e.retry_budget_exhausted for e in errors)


async def test_the_floor_lets_a_quiet_client_retry_a_few_times_a_second(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, hits = await dead(serve)
    # 0.2 of one call allows no retry: the floor does, one for each second covered
    budget = RetryBudget(0.2, min_per_second=1.0, window=10.0)
    client = make_client(base, max_retries=2, retry_budget=budget, sleep=vt.sleep, clock=vt.clock)
    with pytest.raises(stackwire.ServiceUnavailableError) as caught:
        await client.get("/r")
    assert caught.value.retries_taken == 1  # its second retry came within the same second
    assert caught.value.retry_budget_exhausted
    vt.advance(2.0)  # the window now covers 3 s: 3 retries, 1 spent
    with pytest.raises(stackwire.ServiceUnavailableError) as caught:
        await client.get("/r")
    assert caught.value.retries_taken == 2
    assert not caught.value.retry_budget_exhausted
    assert len(hits) == 2 + 3


async def test_a_successful_retry_spends_from_the_budget_too(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    statuses = iter([503, 200, 503, 200])

    async def handle(request: web.Request) -> web.Response:
        return web.json_response({}, status=next(statuses))

    base = await serve(routes(("GET", "/r", handle)))
    budget = RetryBudget(0.0, min_per_second=0.1, window=10.0)  # one retry a window
    client = make_client(base, retry_budget=budget, sleep=vt.sleep, clock=vt.clock)
    assert (await client.get("/r")).retries_taken == 1
    with pytest.raises(stackwire.ServiceUnavailableError) as caught:
        await client.get("/r")
    assert caught.value.retry_budget_exhausted


async def test_derived_clients_and_shared_stores_share_the_budget(
    serve: Serve, make_client: MakeClient, vt: VirtualTime
) -> None:
    base, hits = await dead(serve)
    store = MemoryStateStore(monotonic=vt.clock)
    one = make_client(
        base,
        retry_budget=RetryBudget(0.0, min_per_second=0.1, store=store),
        sleep=vt.sleep,
        clock=vt.clock,
    )
    two = make_client(
        base,
        retry_budget=RetryBudget(0.0, min_per_second=0.1, store=store),
        sleep=vt.sleep,
        clock=vt.clock,
    )
    derived = one.with_options(headers={"X-Derived": "1"})
    with pytest.raises(stackwire.ServiceUnavailableError):
        await one.get("/r")  # takes the one retry of the window
    for client in (two, derived):
        with pytest.raises(stackwire.ServiceUnavailableError) as caught:
            await client.get("/r")
        assert caught.value.retry_budget_exhausted
    assert len(hits) == 2 + 1 + 1


async def test_with_options_sets_and_removes_the_budget(
    serve: Serve, make_client: MakeClient
) -> None:
    base, hits = await dead(serve)
    client = make_client(base, retry_budget=RetryBudget(0.0, min_per_second=0.0))
    with pytest.raises(stackwire.ServiceUnavailableError):
        await client.get("/r")
    unbudgeted = client.with_options(retry_budget=None)
    with pytest.raises(stackwire.ServiceUnavailableError):
        await unbudgeted.get("/r")
    assert len(hits) == 1 + 3


def test_the_blocking_client_takes_the_option() -> None:
    budget = RetryBudget()
    with stackwire.Client("http://127.0.0.1:9/", retry_budget=budget) as client:
        derived = client.with_options(retry_budget=RetryBudget(0.5))
        assert derived.max_retries == 2
    with pytest.raises(stackwire.InvalidRequestError, match="retry_budget"):
        stackwire.Client("http://127.0.0.1:9/", retry_budget=0.2)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0.2, "x", object()])
def test_bad_retry_budget(bad: object) -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="retry_budget"):
        stackwire.AsyncClient("http://127.0.0.1:9/", retry_budget=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"ratio": -0.1}, {"min_per_second": -1}, {"window": 0}, {"window": 1e-300}, {"store": 3}],
)
def test_bad_budget_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises(stackwire.InvalidRequestError):
        RetryBudget(**kwargs)  # type: ignore[arg-type]
