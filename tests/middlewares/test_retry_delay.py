"""The pure retry decisions: the status rule, Retry-After parsing, backoff, jitter."""

from __future__ import annotations

import email.utils
import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict

from stackwire.middlewares._retry_delay import (
    backoff_delays,
    jittered,
    parse_retry_after,
    should_retry_status,
)

NOW = 1_700_000_000.0  # an injected "wall clock" reading, a whole second


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(NOW + seconds_from_now, usegmt=True)


# -- whether ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 501, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    assert should_retry_status(status, {})


@pytest.mark.parametrize("status", [300, 400, 401, 403, 404, 413, 422, 424, 499])
def test_other_statuses_are_final(status: int) -> None:
    assert not should_retry_status(status, {})


@pytest.mark.parametrize(
    ("status", "value", "expected"),
    [
        (400, "true", True),  # overrides a final status
        (503, "false", False),  # overrides a retryable one
        (400, "TRUE", False),  # only the exact values count
        (400, "1", False),
        (503, "FALSE", True),
        (503, "0", True),
        (503, "", True),
    ],
)
def test_x_should_retry_overrides_only_with_exact_values(
    status: int, value: str, expected: bool
) -> None:
    # Header names are case-insensitive, as in a real response.
    headers = CIMultiDict({"X-Should-Retry": value})
    assert should_retry_status(status, headers) is expected


# -- how long: the server's hint ---------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"Retry-After": " 3 "}, 3.0),
        ({"retry-after-ms": "1500", "Retry-After": "10"}, 1.5),
        ({"retry-after-ms": "abc", "Retry-After": "10"}, 10.0),  # unusable ms: fall back
        ({"retry-after-ms": "0", "Retry-After": "4"}, 4.0),
        ({"Retry-After": http_date(20)}, 20.0),
        ({"Retry-After": "60"}, 60.0),
        ({"Retry-After": "61"}, 61.0),  # too long is the middleware's call, not a parse error
        ({"Retry-After": "1000000000000"}, 1e12),
    ],
)
def test_usable_hints(headers: dict[str, str], expected: float) -> None:
    assert parse_retry_after(CIMultiDict(headers), NOW) == expected


@pytest.mark.parametrize(
    "value",
    [
        "0",
        "-10",
        "",
        "   ",
        "abc",
        "inf",
        "-inf",
        "nan",
        "Infinity",
        "1e3",  # not the HTTP grammar (and float() would take it)
        "1_000",  # same
        "0x10",
        "\u0663",  # ARABIC-INDIC DIGIT THREE: float() reads it as 3, HTTP's DIGIT is ASCII
        "\uff15",  # FULLWIDTH DIGIT FIVE
        "1.\u0665",
        http_date(-30),  # in the past
        http_date(0),  # now: nothing to wait for
        "Fri, 29 Sep 100000 16:26:57 GMT",  # year out of range
        "Sun, 06 Nov 1994 08:49:37 +9999",  # offset out of range
        "9" * 400,  # overflows a float to inf
    ],
)
def test_unusable_hints_are_ignored(value: str) -> None:
    assert parse_retry_after(CIMultiDict({"Retry-After": value}), NOW) is None
    assert parse_retry_after(CIMultiDict({"retry-after-ms": value}), NOW) is None


def test_no_hint() -> None:
    assert parse_retry_after(CIMultiDict(), NOW) is None


def test_http_date_without_zone_is_utc() -> None:
    # "-0000" (and no zone at all) parse to a naive datetime; it must not be read
    # in the local time zone.
    text = email.utils.formatdate(NOW + 20, usegmt=True).replace("GMT", "-0000")
    assert parse_retry_after({"retry-after": text}, NOW) == 20.0


@given(st.text(max_size=60), st.text(max_size=60))
def test_any_header_text_gives_none_or_a_positive_finite_wait(ms: str, seconds: str) -> None:
    hint = parse_retry_after({"retry-after-ms": ms, "retry-after": seconds}, NOW)
    assert hint is None or (hint > 0 and math.isfinite(hint))


# -- how long: backoff and jitter ----------------------------------------------------------


def test_backoff_schedule_doubles_to_the_cap() -> None:
    assert list(itertools.islice(backoff_delays(), 7)) == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_never_overflows() -> None:
    delays = list(itertools.islice(backoff_delays(), 1101))
    assert delays[1100] == 8.0
    # Even a tiny start that needs 2**n beyond a float's range to reach the cap.
    tiny = list(itertools.islice(backoff_delays(5e-324, 8.0), 1200))
    assert tiny[-1] == 8.0
    assert all(0 < d <= 8.0 for d in tiny)


def test_backoff_is_configurable() -> None:
    assert list(itertools.islice(backoff_delays(0.1, 0.3), 4)) == [0.1, 0.2, 0.3, 0.3]


@given(st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_jitter_factor_is_in_three_quarters_to_one(draw: float) -> None:
    delay = jittered(8.0, 0.25, lambda: draw)
    assert 6.0 < delay <= 8.0


def test_jitter_extremes_and_bad_sources() -> None:
    assert jittered(4.0, 0.25, lambda: 0.0) == 4.0
    assert jittered(4.0, 0.0, lambda: 0.9) == 4.0  # jitter off
    # random.random() may return 1 - 2**-53; the factor must still exceed 0.75.
    assert 3.0 < jittered(4.0, 0.25, lambda: 1 - 2**-53) < 3.0 + 1e-12
    assert 3.0 < jittered(4.0, 0.25, lambda: 7.0) < 3.0 + 1e-12  # clamped: never negative
    assert jittered(4.0, 0.25, lambda: -1.0) == 4.0  # clamped, never above the delay
