"""`Response.when_done`: one call once the response is finished with, however it ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from yarl import URL

from stackwire import APIConnectionError, Request, Response

REQUEST = Request(method="GET", url=URL("http://api.test/x"))


def streamed(*chunks: bytes, fail: bool = False) -> Response[object]:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
        if fail:
            raise APIConnectionError("cut short", request=REQUEST)

    return Response(REQUEST, stream=body())


async def test_it_runs_once_when_the_body_is_read_closed_or_fails() -> None:
    seen: list[str] = []
    read = streamed(b"a", b"b")
    read.when_done(lambda: seen.append("read"))
    read.when_done(lambda: seen.append("read, second callback"))
    assert await read.read() == b"ab"
    read.close()  # finished already: nothing more

    unread = streamed(b"a")
    unread.when_done(lambda: seen.append("closed"))
    unread.close()
    unread.close()

    failing = streamed(b"a", fail=True)
    failing.when_done(lambda: seen.append("failed"))
    with pytest.raises(APIConnectionError):
        await failing.read()

    iterated = streamed(b"a", b"b")
    iterated.when_done(lambda: seen.append("iterated"))
    assert [chunk async for chunk in iterated.iter_bytes()] == [b"a", b"b"]

    assert seen == ["read", "read, second callback", "closed", "failed", "iterated"]


async def test_it_runs_at_once_for_a_response_finished_already() -> None:
    seen: list[str] = []
    response = streamed(b"a")
    await response.read()
    response.when_done(lambda: seen.append("now"))
    assert seen == ["now"]


async def test_a_callback_that_raises_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise RuntimeError("a bug in the callback")

    response = streamed(b"a")
    response.when_done(broken)
    assert await response.read() == b"a"
    assert "when_done callback failed" in caplog.text


async def test_body_error_is_what_the_body_failed_with_when_the_callback_runs() -> None:
    # A callback judging the attempt by its body (CircuitBreaker) tells a body read
    # from one that broke, by read() or by iteration.
    seen: list[BaseException | None] = []
    failing = streamed(b"a", fail=True)
    failing.when_done(lambda: seen.append(failing.body_error))
    with pytest.raises(APIConnectionError) as raised:
        await failing.read()
    iterated = streamed(b"a", fail=True)
    iterated.when_done(lambda: seen.append(iterated.body_error))
    with pytest.raises(APIConnectionError) as raised_iterating:
        async for _ in iterated.iter_bytes():
            pass
    read = streamed(b"a")
    read.when_done(lambda: seen.append(read.body_error))
    await read.read()
    closed = streamed(b"a")
    closed.when_done(lambda: seen.append(closed.body_error))
    closed.close()
    assert seen == [raised.value, raised_iterating.value, None, None]
