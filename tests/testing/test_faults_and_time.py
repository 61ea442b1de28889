"""`FaultInjector` (seeded, typed faults per attempt) and `VirtualTime`."""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator
from collections.abc import Set as AbstractSet

import pytest

import stackwire
from stackwire.testing import FaultInjector, MockResponse, MockTransport, Router, VirtualTime
from stackwire.testing._faults import FaultKind

BASE = "https://api.test/"


def _router() -> Router:
    router = Router(BASE)
    router.get("/ok").respond(json={"ok": True})
    return router


def _client(router: Router, time: VirtualTime, **options: object) -> stackwire.AsyncClient:
    return stackwire.AsyncClient(
        BASE,
        transport=MockTransport(router),
        sleep=time.sleep,
        clock=time.clock,
        random=time.random,
        **options,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("connection_reset", stackwire.APIConnectionError),
        ("malformed", stackwire.APIConnectionError),
        ("timeout", stackwire.APITimeoutError),
        ("503", stackwire.ServiceUnavailableError),
    ],
)
async def test_each_kind_fails_its_attempt_with_the_typed_error(
    kind: FaultKind, error: type[stackwire.APIError]
) -> None:
    router = _router()
    async with _client(router, VirtualTime(), max_retries=2) as base:
        client = base.with_middleware(FaultInjector(1.0, kinds=[kind]))
        with pytest.raises(error) as caught:
            await client.get("/ok")
    assert type(caught.value) is error
    assert caught.value.retries_taken == 2  # retried as the real failure would be
    assert router.calls == []  # the transport was never reached
    if kind == "503":
        assert isinstance(caught.value, stackwire.APIStatusError)
        assert caught.value.status_code == 503


async def _run(seed: int, calls: int = 30) -> tuple[list[tuple[int, str]], list[float]]:
    time = VirtualTime()
    injector = FaultInjector(0.3, seed=seed)
    async with _client(_router(), time, max_retries=5) as base:
        client = base.with_middleware(injector)
        for _ in range(calls):
            assert await client.get("/ok", cast_to=dict) == {"ok": True}
    return [(fault.attempt, fault.kind) for fault in injector.injected], time.slept


async def test_faults_are_seeded_and_reproducible_and_retries_absorb_them() -> None:
    first, slept = await _run(seed=7)
    again, slept_again = await _run(seed=7)
    other, _ = await _run(seed=8)
    assert first == again
    assert slept == slept_again
    assert first != other
    assert {kind for _, kind in first} == {"connection_reset", "timeout", "malformed", "503"}
    assert 5 <= len(first) <= 25  # about 30% of the attempts
    assert len(slept) == len(first)  # one (virtual) backoff per fault


def test_bad_injector_options_are_refused() -> None:
    with pytest.raises(stackwire.InvalidRequestError, match="rate"):
        FaultInjector(1.5)
    with pytest.raises(stackwire.InvalidRequestError, match="kinds"):
        FaultInjector(0.5, kinds=["dns"])  # type: ignore[list-item]
    with pytest.raises(stackwire.InvalidRequestError, match="seed"):
        FaultInjector(0.5, seed=None)  # type: ignore[arg-type]  # unseeded: not reproducible
    assert FaultInjector(0.1).name == "fault_injector"
    # one kind alone is one kind, not its letters; 503 as a number is the status kind
    assert FaultInjector(0.5, kinds="timeout").kinds == ("timeout",)
    assert FaultInjector(0.5, kinds=[503, "malformed"]).kinds == ("503", "malformed")


async def test_the_faults_listed_show_no_secret_of_the_url() -> None:
    injector = FaultInjector(1.0, kinds=["503"])
    async with stackwire.AsyncClient(
        "https://ada:canary-password@api.test/", transport=MockTransport(_router())
    ) as base:
        client = base.with_middleware(injector)
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/ok", query={"api_key": "canary-key"}, max_retries=0)
    assert injector.injected[0].url == "https://api.test/ok"
    assert "canary" not in repr(injector.injected)


async def test_the_injector_sits_below_retry_in_the_stack() -> None:
    async with _client(_router(), VirtualTime()) as base:
        client = base.with_middleware(FaultInjector(0.5))
        names = [entry.name for entry in client.pipeline]
    assert names.index("retry") < names.index("fault_injector") < names.index("redirects")


async def test_virtual_time_makes_backoff_instant_and_exact() -> None:
    router = Router(BASE)
    router.get("/down").respond(503)
    time = VirtualTime()
    async with _client(router, time, max_retries=4) as client:
        with pytest.raises(stackwire.ServiceUnavailableError):
            await client.get("/down")
    # 0.5, 1, 2, 4 s, each times the seeded jitter factor in (0.75, 1]
    assert len(time.slept) == 4
    for delay, base in zip(time.slept, [0.5, 1.0, 2.0, 4.0], strict=True):
        assert 0.75 * base < delay <= base
    assert time.clock() - time.start == pytest.approx(sum(time.slept))
    one, two = VirtualTime(seed=1), VirtualTime(seed=1)
    assert [one.random() for _ in range(3)] == [two.random() for _ in range(3)]


async def test_retry_after_dates_are_read_against_the_virtual_clock() -> None:
    time = VirtualTime()
    later = email.utils.formatdate(time.clock() + 30, usegmt=True)
    router = Router(BASE)
    router.get("/busy").respond_seq(
        [MockResponse(429, headers={"Retry-After": later}), MockResponse(json={"ok": True})]
    )
    async with _client(router, time) as client:
        assert await client.get("/busy", cast_to=dict) == {"ok": True}
    assert time.slept == [30.0]


async def test_the_deadline_counts_the_virtual_sleeps() -> None:
    router = Router(BASE)
    router.get("/busy").respond(503, headers={"Retry-After": "2"})
    time = VirtualTime()
    async with _client(router, time, deadline=3, max_retries=5) as client:
        # 2 s slept of 3; the next 2 s would pass the deadline: the call ends now
        with pytest.raises(stackwire.APITimeoutError, match="Deadline of 3 s"):
            await client.get("/busy")
    assert time.slept == [2.0]


async def test_a_virtual_sleep_gives_the_other_tasks_their_turn() -> None:
    # As a real sleep does: a loop polling with it for another task's work must not
    # starve that task.
    time = VirtualTime()
    order: list[str] = []

    async def sleeper() -> None:
        await time.sleep(5)
        order.append("slept")

    async def other() -> None:
        order.append("other ran")

    await asyncio.gather(sleeper(), other())
    assert order == ["other ran", "slept"]


async def test_advance_moves_the_clock_without_sleeping() -> None:
    time = VirtualTime(start=100.0)
    time.advance(5)
    await time.sleep(0)
    assert (time.clock(), time.slept) == (105.0, [0])
    assert repr(time) == "VirtualTime(elapsed=5 s, sleeps=1)"


class _ReversedSet(AbstractSet[str]):
    """A set whose iteration order is not the kinds' own (as a str set's order varies
    from run to run with the hash salt)."""

    def __init__(self, items: list[str]) -> None:
        self._items = items

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(reversed(self._items))

    def __len__(self) -> int:
        return len(self._items)


def test_kinds_given_as_a_set_are_drawn_in_one_fixed_order() -> None:
    kinds = _ReversedSet(["connection_reset", "timeout", "503"])
    assert FaultInjector(0.5, kinds=kinds).kinds == ("connection_reset", "timeout", "503")  # type: ignore[arg-type]
    assert FaultInjector(0.5, kinds={"503", "malformed"}).kinds == ("malformed", "503")
    # a list keeps its order (and its repeats, which weigh a kind)
    assert FaultInjector(0.5, kinds=["503", "timeout", "503"]).kinds == ("503", "timeout", "503")
