"""`MemoryStateStore`: each operation of the `StateStore` protocol, on a fake clock."""

from __future__ import annotations

import pytest

from stackwire import MemoryStateStore, StateStore


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStateStore:
    return MemoryStateStore(monotonic=clock)


def test_memory_store_is_a_state_store(store: MemoryStateStore) -> None:
    assert isinstance(store, StateStore)


async def test_token_bucket_starts_full_then_paces_in_order(
    store: MemoryStateStore, clock: Clock
) -> None:
    waits = [await store.take_tokens("b", rate=2.0, burst=3.0, max_wait=10) for _ in range(5)]
    # three at once (the burst), then one every 0.5 s, each reserved in turn
    assert waits == [(True, 0.0), (True, 0.0), (True, 0.0), (True, 0.5), (True, 1.0)]
    clock.now += 1.0  # the two reservations are now paid back
    assert await store.take_tokens("b", rate=2.0, burst=3.0, max_wait=10) == (True, 0.5)


async def test_token_bucket_refuses_past_max_wait_without_taking(
    store: MemoryStateStore, clock: Clock
) -> None:
    assert await store.take_tokens("b", rate=1.0, burst=1.0, max_wait=0.5) == (True, 0.0)
    assert await store.take_tokens("b", rate=1.0, burst=1.0, max_wait=0.5) == (False, 1.0)
    assert await store.take_tokens("b", rate=1.0, burst=1.0, max_wait=0.5) == (False, 1.0)
    clock.now += 1.0
    assert await store.take_tokens("b", rate=1.0, burst=1.0, max_wait=0.5) == (True, 0.0)


async def test_token_bucket_never_fills_past_burst(store: MemoryStateStore, clock: Clock) -> None:
    await store.take_tokens("b", rate=10.0, burst=2.0, max_wait=1)
    clock.now += 3600
    got = [(await store.take_tokens("b", rate=10.0, burst=2.0, max_wait=1))[1] for _ in range(3)]
    assert got == [0.0, 0.0, pytest.approx(0.1)]


async def test_quota_counts_down_then_waits_for_the_reset(
    store: MemoryStateStore, clock: Clock
) -> None:
    assert await store.take_quota("q") == (True, 0.0, 1)  # nothing announced yet
    await store.announce_quota("q", limit=3, remaining=2, reset_in=10.0, window=None, ticket=1)
    assert (await store.take_quota("q"))[:2] == (True, 0.0)
    assert (await store.take_quota("q"))[:2] == (True, 0.0)
    # spent: nothing taken, the window ends in 10 s
    assert await store.take_quota("q") == (False, 10.0, 0)
    clock.now += 4.0
    assert await store.take_quota("q") == (False, 6.0, 0)
    clock.now += 6.0
    # the next window opens with the announced limit, and no more
    got = [(await store.take_quota("q"))[:2] for _ in range(4)]
    assert got == [(True, 0.0), (True, 0.0), (True, 0.0), (False, 10.0)]


async def test_an_idle_quota_starts_its_next_window_now(
    store: MemoryStateStore, clock: Clock
) -> None:
    await store.announce_quota("q", limit=1, remaining=0, reset_in=5.0, window=5.0, ticket=0)
    clock.now += 60.0
    assert (await store.take_quota("q"))[:2] == (True, 0.0)
    assert (await store.take_quota("q"))[:2] == (False, 5.0)


async def test_a_later_estimate_of_the_same_window_end_wins(
    store: MemoryStateStore, clock: Clock
) -> None:
    await store.announce_quota("q", limit=2, remaining=0, reset_in=5.0, window=None, ticket=0)
    await store.announce_quota("q", limit=2, remaining=0, reset_in=5.2, window=None, ticket=0)
    granted, wait, _ = await store.take_quota("q")
    assert not granted
    assert wait == pytest.approx(5.2)


async def test_quota_same_window_only_goes_down(store: MemoryStateStore, clock: Clock) -> None:
    await store.announce_quota("q", limit=10, remaining=5, reset_in=10.0, window=None, ticket=0)
    # a slow response from earlier in the window says more remains: ignored
    await store.announce_quota("q", limit=10, remaining=8, reset_in=9.9, window=None, ticket=0)
    assert [(await store.take_quota("q"))[0] for _ in range(6)] == [True] * 5 + [False]


async def test_quota_new_window_subtracts_later_takes(
    store: MemoryStateStore, clock: Clock
) -> None:
    await store.announce_quota("q", limit=10, remaining=0, reset_in=1.0, window=None, ticket=0)
    clock.now += 1.0
    tickets = [(await store.take_quota("q"))[2] for _ in range(3)]
    # the first request's response announces a new window: 9 left as it saw it, but
    # two more were taken after it
    clock.now += 0.1
    await store.announce_quota(
        "q", limit=10, remaining=9, reset_in=5.0, window=None, ticket=tickets[0]
    )
    granted = [(await store.take_quota("q"))[0] for _ in range(8)]
    assert granted == [True] * 7 + [False]


async def test_a_stale_announcement_is_ignored(store: MemoryStateStore, clock: Clock) -> None:
    await store.announce_quota("q", limit=5, remaining=4, reset_in=30.0, window=30.0, ticket=0)
    await store.announce_quota("q", limit=5, remaining=0, reset_in=2.0, window=30.0, ticket=0)
    assert (await store.take_quota("q"))[0] is True


async def test_pause_holds_everything_and_never_shortens(
    store: MemoryStateStore, clock: Clock
) -> None:
    await store.pause_quota("q", seconds=5.0)
    await store.pause_quota("q", seconds=1.0)
    assert await store.take_quota("q") == (False, 5.0, 0)
    clock.now += 5.0
    assert (await store.take_quota("q"))[:2] == (True, 0.0)  # nothing known: open


async def test_slots(store: MemoryStateStore) -> None:
    first = await store.acquire_slot("c", limit=2)
    second = await store.acquire_slot("c", limit=2)
    assert first is not None
    assert second is not None
    assert first != second
    assert await store.acquire_slot("c", limit=2) is None
    await store.release_slot("c", first)
    await store.release_slot("c", first)  # twice: ignored
    assert store.slots_in_use("c") == 1
    assert await store.acquire_slot("c", limit=2) is not None
    assert await store.acquire_slot("other", limit=1) is not None


async def _record(store: MemoryStateStore, outcome: str, probe: bool = False) -> str:
    return await store.breaker_record(
        "k",
        outcome=outcome,
        probe=probe,
        failure_ratio=0.5,
        min_calls=4,
        window=10.0,
        open_for=30.0,
    )


async def test_breaker_opens_at_the_ratio_with_enough_calls(
    store: MemoryStateStore, clock: Clock
) -> None:
    for outcome in ("failure", "failure", "failure"):
        assert await _record(store, outcome) == "closed"  # fewer than min_calls
    assert await _record(store, "success") == "open"  # 3 of 4 failed
    assert await store.breaker_acquire("k", open_for=30.0) == ("open", 30.0)
    clock.now += 29.0
    state, retry_after = await store.breaker_acquire("k", open_for=30.0)
    assert state == "open"
    assert retry_after == pytest.approx(1.0)
    clock.now += 1.0
    assert await store.breaker_acquire("k", open_for=30.0) == ("probe", 0.0)
    # while the probe is out, the others still fail fast
    assert (await store.breaker_acquire("k", open_for=30.0))[0] == "open"
    assert await _record(store, "failure", probe=True) == "open"
    assert (await store.breaker_acquire("k", open_for=30.0))[0] == "open"
    clock.now += 30.0
    assert (await store.breaker_acquire("k", open_for=30.0))[0] == "probe"
    assert await _record(store, "success", probe=True) == "closed"
    assert await store.breaker_acquire("k", open_for=30.0) == ("closed", 0.0)
    # closed with an empty window: one failure does not reopen it
    assert await _record(store, "failure") == "closed"


async def test_breaker_window_slides(store: MemoryStateStore, clock: Clock) -> None:
    for _ in range(3):
        await _record(store, "failure")
    clock.now += 11.0  # those fell out of the window
    assert await _record(store, "failure") == "closed"
    for _ in range(3):
        await _record(store, "success")
    assert await store.breaker_acquire("k", open_for=30.0) == ("closed", 0.0)


async def test_an_abandoned_probe_frees_the_probe_slot(
    store: MemoryStateStore, clock: Clock
) -> None:
    for _ in range(4):
        await _record(store, "failure")
    clock.now += 30.0
    assert (await store.breaker_acquire("k", open_for=30.0))[0] == "probe"
    await _record(store, "abandoned", probe=True)
    assert (await store.breaker_acquire("k", open_for=30.0))[0] == "probe"


async def test_budget_allows_the_larger_of_ratio_and_floor_not_their_sum(
    store: MemoryStateStore, clock: Clock
) -> None:
    for _ in range(10):
        await store.budget_deposit("r", window=10.0)
    kwargs = {"ratio": 0.2, "min_per_second": 0.1, "window": 10.0}
    granted = [await store.budget_withdraw("r", **kwargs) for _ in range(3)]
    assert granted == [True, True, False]  # max(0.2 * 10, 0.1 for 1 s, rounded up) = 2
    clock.now += 10.0  # the window slid past all of it: only the floor remains
    granted = [await store.budget_withdraw("r", **kwargs) for _ in range(2)]
    assert granted == [True, False]


async def test_a_busy_budget_allows_ratio_of_calls_whatever_the_floor(
    store: MemoryStateStore,
) -> None:
    for _ in range(1000):
        await store.budget_deposit("r", window=10.0)
    kwargs = {"ratio": 0.2, "min_per_second": 10.0, "window": 10.0}
    granted = [await store.budget_withdraw("r", **kwargs) for _ in range(250)]
    assert granted.count(True) == 200  # not 200 + the floor's 10 (or 100)
    assert granted[:200] == [True] * 200


async def test_the_floor_counts_the_seconds_the_window_covers(
    store: MemoryStateStore, clock: Clock
) -> None:
    kwargs = {"ratio": 0.0, "min_per_second": 1.0, "window": 10.0}  # slices of 1 s

    def withdraw_all() -> int:
        granted = 0
        while store.budget_withdraw_sync("r", **kwargs):
            granted += 1
        return granted

    await store.budget_deposit("r", window=10.0)
    assert withdraw_all() == 1  # a new budget: one slice covered, one retry
    clock.now += 4.0
    assert withdraw_all() == 4  # 5 s covered: 5 retries in the window, 1 spent before
    for _ in range(15):  # a call every second: the window covers 10 s, never more
        clock.now += 1.0
        await store.budget_deposit("r", window=10.0)
    assert withdraw_all() == 10
    clock.now += 60.0  # idle for longer than the window: it starts again from one slice
    await store.budget_deposit("r", window=10.0)
    assert withdraw_all() == 1


async def test_a_floor_below_one_retry_a_slice_still_allows_one(
    store: MemoryStateStore, clock: Clock
) -> None:
    kwargs = {"ratio": 0.0, "min_per_second": 0.01, "window": 10.0}
    assert [await store.budget_withdraw("r", **kwargs) for _ in range(2)] == [True, False]
    no_floor = {"ratio": 0.0, "min_per_second": 0.0, "window": 10.0}
    assert not await store.budget_withdraw("r0", **no_floor)


async def use_every_kind_once(
    store: MemoryStateStore, key: str, *, rate: float, window: float
) -> None:
    """One short use of each per-origin entry for ``key``, leaving each as good as new
    once ``1 / rate`` and ``window`` have passed."""
    await store.take_tokens(key, rate=rate, burst=1.0, max_wait=1)
    await store.take_quota(key)
    lease = await store.acquire_slot(key, limit=1)
    assert lease is not None
    await store.release_slot(key, lease)
    await store.breaker_record(
        key,
        outcome="success",
        probe=False,
        failure_ratio=0.5,
        min_calls=2,
        window=window,
        open_for=1.0,
    )


async def test_idle_entries_are_dropped_so_many_origins_do_not_grow_the_store(
    store: MemoryStateStore, clock: Clock
) -> None:
    # A client that calls a new origin each time (a crawler) used to keep every
    # bucket, budget, slot set and breaker it ever made.
    for n in range(5000):
        await use_every_kind_once(store, f"o{n}", rate=100.0, window=1.0)
        clock.now += 0.01  # each bucket is full again and each window empty 1 s later
    sizes = [len(store._buckets), len(store._quotas), len(store._slots), len(store._breakers)]
    assert max(sizes) <= 1024, sizes
    assert min(sizes) >= 100, sizes  # the recent ones are kept


async def test_entries_still_in_use_survive_a_sweep(store: MemoryStateStore, clock: Clock) -> None:
    # in debt, with a budget announced, a slot held, an open breaker: none is as good
    # as new, so none is dropped when the tables are swept
    assert await store.take_tokens("busy", rate=1.0, burst=1.0, max_wait=5) == (True, 0.0)
    assert await store.take_tokens("busy", rate=1.0, burst=1.0, max_wait=5) == (True, 1.0)
    await store.announce_quota("busy", limit=5, remaining=0, reset_in=30.0, window=60.0, ticket=0)
    assert await store.acquire_slot("busy", limit=1) is not None
    for _ in range(2):
        await store.breaker_record(
            "busy",
            outcome="failure",
            probe=False,
            failure_ratio=0.5,
            min_calls=2,
            window=10.0,
            open_for=30.0,
        )
    for n in range(3000):  # enough new keys to sweep every table more than once
        await use_every_kind_once(store, f"o{n}", rate=1000.0, window=0.001)
        clock.now += 0.0001
    taken, wait = await store.take_tokens("busy", rate=1.0, burst=1.0, max_wait=5)
    assert taken
    assert wait == pytest.approx(2.0 - 0.3, abs=0.01)  # still in debt: one token paid back
    assert (await store.take_quota("busy"))[0] is False
    assert await store.acquire_slot("busy", limit=1) is None
    assert (await store.breaker_acquire("busy", open_for=30.0))[0] == "open"


async def test_a_reset_releases_what_a_window_held_when_no_limit_was_announced(
    store: MemoryStateStore, clock: Clock
) -> None:
    # The first answer of a window said 4 remain, and named no limit: the window held
    # (at least) 5. After its reset, 100 waiters asking get 5, not 100.
    _, _, ticket = await store.take_quota("q")
    await store.announce_quota(
        "q", limit=None, remaining=4, reset_in=1.0, window=None, ticket=ticket
    )
    assert [(await store.take_quota("q"))[0] for _ in range(5)] == [True] * 4 + [False]
    clock.now += 1.0
    granted = [(await store.take_quota("q"))[0] for _ in range(100)]
    assert granted.count(True) == 5


async def test_quota_takes_the_servers_count_when_nothing_was_taken_since(
    store: MemoryStateStore, clock: Clock
) -> None:
    _, _, ticket = await store.take_quota("q")
    await store.announce_quota(
        "q", limit=10, remaining=3, reset_in=60.0, window=None, ticket=ticket
    )
    for _ in range(5):  # the server keeps saying 3 (it did not count these calls)
        granted, _, ticket = await store.take_quota("q")
        assert granted
        await store.announce_quota(
            "q", limit=10, remaining=3, reset_in=60.0, window=None, ticket=ticket
        )
    # a slow answer to an earlier take still never raises the count
    tickets = [(await store.take_quota("q"))[2] for _ in range(2)]
    await store.announce_quota(
        "q", limit=10, remaining=3, reset_in=60.0, window=None, ticket=tickets[0]
    )
    assert [(await store.take_quota("q"))[0] for _ in range(2)] == [True, False]
