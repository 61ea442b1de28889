"""Reading rate-limit budgets from headers: every family, and junk never raises."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from stackwire.resilience._headers import (
    BudgetReader,
    ServerBudget,
    Unread,
    parse_anthropic,
    parse_github,
    parse_go_duration,
    parse_ietf,
    parse_openai,
    parse_rfc3339,
    server_budget,
)

NOW = 1_700_000_000.0


def headers(**values: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in values.items()}))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20ms", 0.02),
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("1m30.5s", 90.5),
        ("2h", 7200.0),
        ("1h2m3s", 3723.0),
        ("1.5s", 1.5),
        (".5s", 0.5),
        ("500us", 0.0005),
        ("500µs", 0.0005),
        ("250ns", 2.5e-7),
        ("0s", 0.0),
        ("0", 0.0),
        ("2.5", 2.5),  # a bare number: seconds
        (" 1s ", 1.0),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "s",
        "ms",
        "-1s",
        "1x",
        "1s2",
        "1 s",
        "1m 2s",
        "abc",
        "inf",
        "nan",
        "1e3s",
        "9" * 70 + "s",
        "99999999999h",
        "1.2.3s",
        "s1",
        "1ss",
    ],
)
def test_bad_go_durations_are_none(text: str) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("text", "epoch"),
    [
        ("1970-01-01T00:01:00Z", 60.0),
        ("1970-01-01T00:01:00z", 60.0),
        ("1970-01-01T01:01:00+01:00", 60.0),
        ("1970-01-01T00:01:00.250Z", 60.25),
        ("2023-11-14T22:13:20Z", NOW),
    ],
)
def test_rfc3339(text: str, epoch: float) -> None:
    assert parse_rfc3339(text) == pytest.approx(epoch)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "tomorrow",
        "2023-11-14",
        "2023-11-14T22:13:20",
        "2023-13-14T22:13:20Z",
        "2023-11-14T25:13:20Z",
        "Tue, 14 Nov 2023 22:13:20 GMT",
        "x" * 100,
    ],
)
def test_bad_rfc3339_is_none(text: str) -> None:
    assert parse_rfc3339(text) is None  # no time zone, no date, a date only, out of range


def test_openai_family() -> None:
    got = parse_openai(
        headers(
            x_ratelimit_limit_requests="60",
            x_ratelimit_remaining_requests="59",
            x_ratelimit_reset_requests="6m0s",
            x_ratelimit_remaining_tokens="1000",  # tokens are not requests: ignored
        )
    )
    assert got == ServerBudget(limit=60, remaining=59, reset_in=360.0)


def test_anthropic_family() -> None:
    got = parse_anthropic(
        headers(
            anthropic_ratelimit_requests_limit="50",
            anthropic_ratelimit_requests_remaining="0",
            anthropic_ratelimit_requests_reset="2023-11-14T22:13:50Z",
        ),
        NOW,
    )
    assert got == ServerBudget(limit=50, remaining=0, reset_in=30.0)


def test_github_family_epoch_and_delta() -> None:
    epoch = headers(
        x_ratelimit_limit="5000", x_ratelimit_remaining="4999", x_ratelimit_reset=str(int(NOW) + 60)
    )
    assert parse_github(epoch, NOW) == ServerBudget(limit=5000, remaining=4999, reset_in=60.0)
    delta = headers(x_ratelimit_limit="10", x_ratelimit_remaining="3", x_ratelimit_reset="7")
    assert parse_github(delta, NOW) == ServerBudget(limit=10, remaining=3, reset_in=7.0)


def test_ietf_draft_08_one_policy() -> None:
    got = parse_ietf('"default";q=100;w=60', '"default";r=40;t=12')
    assert got == ServerBudget(limit=100, remaining=40, reset_in=12.0, window=60.0)


def test_ietf_several_policies_the_lowest_remaining_counts() -> None:
    got = parse_ietf(
        '"day";q=10000;w=86400, "burst";q=10;w=1, "minute";q=100;w=60',
        '"day";r=9000;t=40000, "burst";r=2;t=1, "minute";r=50;t=30',
    )
    assert got == ServerBudget(limit=10, remaining=2, reset_in=1.0, window=1.0)


def test_ietf_without_policy_and_with_tokens() -> None:
    assert parse_ietf(None, "default;r=5;t=3") == ServerBudget(None, 5, 3.0, None)
    # an item with a broken remaining is skipped; the other counts
    got = parse_ietf('"a";q=10;w=10, "b";q=5;w=5', '"a";r=x;t=1, "b";r=4;t=2')
    assert got == ServerBudget(limit=5, remaining=4, reset_in=2.0, window=5.0)


@pytest.mark.parametrize(
    ("policy", "ratelimit"),
    [
        (None, ""),
        (None, "garbage;;;"),
        (None, '"p";r=-1;t=3'),
        (None, '"p";r=1;t=-3'),
        (None, '"p";r=1'),
        (None, '"p";t=1'),
        (None, '"p";r=1;t=inf'),
        (None, '"p";r=1.5;t=1'),
        (None, '"unterminated;r=1;t=1'),
        (None, "r=5, t=3"),  # a dictionary, not a list of items
        ("junk", '"p";r=1;t=1e9999'),
        (None, '"p";r=' + "9" * 40 + ";t=1"),
    ],
)
def test_ietf_malformed_is_none(policy: str | None, ratelimit: str) -> None:
    assert parse_ietf(policy, ratelimit) is None


def test_ietf_policy_that_contradicts_remaining_drops_the_limit() -> None:
    assert parse_ietf('"p";q=5;w=10', '"p";r=9;t=1') == ServerBudget(None, 9, 1.0, 10.0)


@pytest.mark.parametrize(
    "values",
    [
        {"x_ratelimit_remaining_requests": "-1", "x_ratelimit_reset_requests": "1s"},
        {"x_ratelimit_remaining_requests": "1", "x_ratelimit_reset_requests": "soon"},
        {"x_ratelimit_remaining_requests": "1", "x_ratelimit_reset_requests": "0s"},
        {"x_ratelimit_remaining_requests": "½", "x_ratelimit_reset_requests": "1s"},
        {"x_ratelimit_remaining_requests": "1"},
        {
            "anthropic_ratelimit_requests_remaining": "1",
            "anthropic_ratelimit_requests_reset": "yesterday",
        },
        {
            "anthropic_ratelimit_requests_remaining": "1",
            "anthropic_ratelimit_requests_reset": "2000-01-01T00:00:00Z",
        },  # in the past
        {"x_ratelimit_remaining": "1", "x_ratelimit_reset": "abc"},
        {"x_ratelimit_remaining": "1", "x_ratelimit_reset": "100000000000000000000"},
        {"x_ratelimit_remaining": "1", "x_ratelimit_reset": "nan"},
        {"ratelimit": '"p";r=1;t=0'},
    ],
)
def test_malformed_announcements_are_ignored(values: dict[str, str]) -> None:
    assert server_budget(headers(**values), NOW) is None


def test_server_budget_takes_the_tightest_family() -> None:
    got = server_budget(
        headers(
            x_ratelimit_remaining_requests="30",
            x_ratelimit_reset_requests="10s",
            ratelimit='"p";r=3;t=5',
            ratelimit_policy='"p";q=10;w=5',
        ),
        NOW,
    )
    assert got == ServerBudget(limit=10, remaining=3, reset_in=5.0, window=5.0)
    assert server_budget(headers(content_type="application/json"), NOW) is None


_NAMES = [
    "x-ratelimit-limit-requests",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "anthropic-ratelimit-requests-limit",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "ratelimit",
    "ratelimit-policy",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
]


@given(st.dictionaries(st.sampled_from(_NAMES), st.text(max_size=60)))
def test_any_header_text_gives_a_budget_or_none_never_an_exception(
    values: dict[str, str],
) -> None:
    got = server_budget(CIMultiDictProxy(CIMultiDict(values)), NOW)
    if got is not None:
        assert got.remaining >= 0
        assert 0 < got.reset_in <= 366 * 24 * 3600
        assert got.limit is None or got.limit >= got.remaining


@given(st.text(max_size=40))
def test_any_duration_text_never_raises(text: str) -> None:
    got = parse_go_duration(text)
    assert got is None or got >= 0


@given(
    st.lists(
        st.dictionaries(st.sampled_from(_NAMES), st.sampled_from(["", "7", "1s", "x"])), max_size=4
    )
)
def test_the_reader_gives_what_server_budget_gives(responses: list[dict[str, str]]) -> None:
    # one reader over a stream of responses (its memo of the last texts included)
    reader = BudgetReader()
    for values in responses * 2:
        headers = CIMultiDictProxy(CIMultiDict(values))
        got = reader.read(headers)
        if got is not Unread.UNREAD:
            assert got == server_budget(headers, NOW)


def test_the_reader_leaves_dates_and_several_families_to_server_budget() -> None:
    reader = BudgetReader()
    assert reader.read(headers(x_ratelimit_remaining="1", x_ratelimit_reset="7")) is Unread.UNREAD
    openai = headers(x_ratelimit_remaining_requests="3", x_ratelimit_reset_requests="2s")
    assert reader.read(openai) == ServerBudget(None, 3, 2.0)
    assert reader.read(headers(content_type="application/json")) is None


@pytest.mark.parametrize("text", ["٣s", "1_0s", "1_0", "١٠", "５s"])
def test_durations_take_ascii_digits_only(text: str) -> None:
    assert parse_go_duration(text) is None


def test_github_reset_with_underscores_or_other_digits_is_ignored() -> None:
    spent = {"x_ratelimit_remaining": "0", "x_ratelimit_limit": "60"}
    assert parse_github(headers(**spent, x_ratelimit_reset="1_700_000_030"), NOW) is None
    assert parse_github(headers(**spent, x_ratelimit_reset="٣٠"), NOW) is None


def test_ietf_parameters_may_be_quoted_strings_with_commas() -> None:
    budget = parse_ietf('"p";q=10;w=60;note="a, b; c"', '"p";r=0;t=30;note="x,y"')
    assert budget == ServerBudget(limit=10, remaining=0, reset_in=30.0, window=60.0)


def test_ietf_policies_in_other_quota_units_are_skipped() -> None:
    policy = '"bytes";q=1000;qu="content-bytes";w=60, "requests";q=10;qu="requests";w=60'
    budget = parse_ietf(policy, '"bytes";r=0;t=30, "requests";r=4;t=30')
    assert budget == ServerBudget(limit=10, remaining=4, reset_in=30.0, window=60.0)
