"""Reading a server's rate-limit budget from response headers: pure functions, no I/O.

Every function here takes header text and returns a value or ``None``: a malformed,
negative, infinite or absurd value is ignored, never an exception. The families read:

- OpenAI: ``x-ratelimit-limit-requests``, ``x-ratelimit-remaining-requests``,
  ``x-ratelimit-reset-requests`` (a Go duration: ``20ms``, ``1s``, ``6m0s``, ``1m30.5s``);
- Anthropic: ``anthropic-ratelimit-requests-limit`` / ``-remaining`` / ``-reset`` (an
  RFC 3339 date);
- IETF (draft-ietf-httpapi-ratelimit-headers-08 and later): ``RateLimit-Policy:
  "p";q=100;w=60`` and ``RateLimit: "p";r=50;t=30`` (structured-field lists, in one
  field line or several; with several policies the one with the lowest remaining
  counts; a policy whose quota unit ``qu`` is not ``"requests"`` is not read);
- GitHub style: ``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset`` (epoch seconds; a
  value below 10^9 is read as seconds from now, as some APIs send).

`server_budget` tries them all and returns the tightest announcement; `BudgetReader`
is the same for one `RateLimit`'s stream of responses, with a memo of the last
OpenAI-style announcement (the hot path: see its docstring).
"""

from __future__ import annotations

import enum
import functools
import math
import re
from collections.abc import Mapping
from datetime import datetime

import msgspec

__all__ = [
    "MAX_RESET",
    "BudgetReader",
    "ServerBudget",
    "Unread",
    "announces",
    "parse_anthropic",
    "parse_github",
    "parse_go_duration",
    "parse_ietf",
    "parse_openai",
    "parse_rfc3339",
    "server_budget",
]

# Longer than any real window: a reset (or a 429's pause) further away than this is absurd.
MAX_RESET = 366 * 24 * 3600.0
_MAX_COUNT = 10**12


class ServerBudget(msgspec.Struct, frozen=True):
    """What a response announced: ``remaining`` of ``limit`` (``None``: not said) until
    ``reset_in`` seconds from when it arrived; ``window`` is the policy's length when
    the headers say it (IETF ``w``)."""

    limit: int | None
    remaining: int
    reset_in: float
    window: float | None = None


_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
# ASCII digits only: ``\d`` would also take other scripts' digits (``٣s``), which no
# server means as a duration.
_GO_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")


def _number(text: str) -> float | None:
    # float() also reads "1_000", non-ASCII digits and "infinity": none is a number a
    # header means.
    if not text.isascii() or "_" in text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


@functools.lru_cache(maxsize=1024)
def parse_go_duration(text: str) -> float | None:
    """Seconds in a Go-style duration (``1m30.5s`` -> 90.5), or ``None``.

    A bare number is read as seconds (some servers send ``1.5``).

    >>> parse_go_duration("6m0s"), parse_go_duration("20ms"), parse_go_duration("1m30.5s")
    (360.0, 0.02, 90.5)
    >>> parse_go_duration("soon") is None
    True
    """
    text = text.strip()
    if not text or len(text) > 64:
        return None
    bare = _number(text) if text[-1].isdigit() or text[-1] == "." else None
    if bare is not None:
        return bare if bare <= MAX_RESET else None
    total = 0.0
    position = 0
    for match in _GO_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0 or not total <= MAX_RESET:
        return None
    return total


def parse_rfc3339(text: str) -> float | None:
    """An RFC 3339 date-time as epoch seconds, or ``None`` (a time zone is required).

    >>> parse_rfc3339("1970-01-01T00:01:00Z")
    60.0
    >>> parse_rfc3339("tomorrow") is None
    True
    """
    text = text.strip()
    if not 20 <= len(text) <= 40 or text[10:11] not in ("T", "t", " "):
        return None
    if text[-1] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        return moment.timestamp()
    except (OverflowError, OSError, ValueError):  # pragma: no cover - platform limits
        return None


def _count(text: str | None) -> int | None:
    if text is None:
        return None
    if not (text.isdigit() and text.isascii()):  # the usual form needs no strip
        text = text.strip()
        if not text.isascii() or not text.isdigit():
            return None
    if len(text) > 13:
        return None
    value = int(text)
    return value if value <= _MAX_COUNT else None


def _reset_ok(reset_in: float | None) -> float | None:
    if reset_in is None or not math.isfinite(reset_in) or reset_in <= 0 or reset_in > MAX_RESET:
        return None
    return reset_in


def _limit_ok(limit: int | None, remaining: int) -> int | None:
    """The announced limit, or ``None`` when it cannot be trusted: below the remaining
    count (inconsistent), or 0 (a window that never releases anything would keep every
    call waiting for ever, and no response could ever say otherwise)."""
    if limit is not None and (limit < remaining or limit == 0):
        return None
    return limit


def _budget(
    limit: int | None, remaining: int | None, reset_in: float | None
) -> ServerBudget | None:
    reset_in = _reset_ok(reset_in)
    if remaining is None or reset_in is None:
        return None
    return ServerBudget(_limit_ok(limit, remaining), remaining, reset_in)


_OPENAI_LIMIT = "x-ratelimit-limit-requests"
_OPENAI_REMAINING = "x-ratelimit-remaining-requests"
_OPENAI_RESET = "x-ratelimit-reset-requests"
_ANTHROPIC_REMAINING = "anthropic-ratelimit-requests-remaining"
_GITHUB_REMAINING = "x-ratelimit-remaining"


def _openai(remaining: str | None, reset: str | None, limit: str | None) -> ServerBudget | None:
    count = _count(remaining)
    if count is None or reset is None:
        return None
    return _budget(_count(limit), count, parse_go_duration(reset))


def parse_openai(headers: Mapping[str, str]) -> ServerBudget | None:
    """OpenAI's ``x-ratelimit-*-requests``; ``None`` when absent or malformed.

    >>> parse_openai({"x-ratelimit-limit-requests": "60",
    ...               "x-ratelimit-remaining-requests": "59",
    ...               "x-ratelimit-reset-requests": "1s"})
    ServerBudget(limit=60, remaining=59, reset_in=1.0, window=None)
    """
    get = headers.get
    return _openai(get(_OPENAI_REMAINING), get(_OPENAI_RESET), get(_OPENAI_LIMIT))


def parse_anthropic(headers: Mapping[str, str], now: float) -> ServerBudget | None:
    """Anthropic's ``anthropic-ratelimit-requests-*`` (reset an RFC 3339 date, read
    against ``now``, a Unix time)."""
    remaining = _count(headers.get("anthropic-ratelimit-requests-remaining"))
    reset = headers.get("anthropic-ratelimit-requests-reset")
    if remaining is None or reset is None:
        return None
    moment = parse_rfc3339(reset)
    return _budget(
        _count(headers.get("anthropic-ratelimit-requests-limit")),
        remaining,
        None if moment is None else moment - now,
    )


def parse_github(headers: Mapping[str, str], now: float) -> ServerBudget | None:
    """``X-RateLimit-Limit`` / ``-Remaining`` / ``-Reset``: the reset in epoch seconds
    (a value below 10^9 is seconds from now)."""
    remaining = _count(headers.get("x-ratelimit-remaining"))
    reset_text = headers.get("x-ratelimit-reset")
    if remaining is None or reset_text is None:
        return None
    reset = _number(reset_text.strip())
    if reset is None:
        return None
    reset_in = reset - now if reset >= 1e9 else reset
    return _budget(_count(headers.get("x-ratelimit-limit")), remaining, reset_in)


# -- IETF structured fields (RFC 8941 lists of tokens/strings with parameters) --------

# A parameter's value: a quoted string (which may hold ``,`` and ``;``) or a bare item.
_VALUE = r'(?:"(?:[^"\\]|\\.)*"|[^;,"]*)'
_ITEM = re.compile(
    r'\s*(?:"((?:[^"\\]|\\.)*)"|([A-Za-z*][A-Za-z0-9_\-.:%*/]*))((?:\s*;\s*[a-z*][a-z0-9_\-.*]*(?:='
    + _VALUE
    + r")?)*)\s*(?:,|$)"
)
_PARAM = re.compile(r"\s*;\s*([a-z*][a-z0-9_\-.*]*)(?:=(" + _VALUE + r"))?")


def _sf_list(text: str) -> list[tuple[str, dict[str, str]]] | None:
    """The items of a structured-field list: ``(name, {param: raw value})``, or ``None``."""
    if len(text) > 4096:
        return None
    items: list[tuple[str, dict[str, str]]] = []
    position = 0
    text = text.strip()
    while position < len(text):
        match = _ITEM.match(text, position)
        if match is None or match.end() == position:
            return None
        name = match.group(1) if match.group(1) is not None else match.group(2)
        params = {key: (value or "").strip() for key, value in _PARAM.findall(match.group(3))}
        items.append((name, params))
        position = match.end()
    return items


def _sf_int(value: str | None) -> int | None:
    if value is None:
        return None
    return _count(value)


def _sf_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if not value or not all(ch.isdigit() or ch == "." for ch in value):
        return None
    return _number(value)


def parse_ietf(policy: str | None, ratelimit: str | None) -> ServerBudget | None:
    """``RateLimit`` (``r`` remaining, ``t`` seconds to reset) with the quota ``q`` and
    window ``w`` of the ``RateLimit-Policy`` item of the same name; the item with the
    lowest remaining wins.

    >>> parse_ietf('"hour";q=1000;w=3600, "minute";q=60;w=60',
    ...            '"hour";r=900;t=1800, "minute";r=3;t=20')
    ServerBudget(limit=60, remaining=3, reset_in=20.0, window=60.0)
    """
    if ratelimit is None:
        return None
    items = _sf_list(ratelimit)
    if not items:
        return None
    policies: dict[str, tuple[int | None, float | None]] = {}
    other_units: set[str] = set()
    if policy is not None:
        for name, params in _sf_list(policy) or ():
            unit = params.get("qu")
            if unit is not None and unit.strip('"') != "requests":
                # A quota of content bytes or concurrent requests: its remaining count
                # is not a number of requests in a window.
                other_units.add(name)
                continue
            policies[name] = (_sf_int(params.get("q")), _sf_seconds(params.get("w")))
    best: ServerBudget | None = None
    for name, params in items:
        if name in other_units:
            continue
        remaining = _sf_int(params.get("r"))
        reset_in = _reset_ok(_sf_seconds(params.get("t")))
        if remaining is None or reset_in is None:
            continue
        limit, window = policies.get(name, (None, None))
        limit = _limit_ok(limit, remaining)
        window = window if window is not None and 0 < window <= MAX_RESET else None
        candidate = ServerBudget(limit, remaining, reset_in, window)
        if best is None or candidate.remaining < best.remaining:
            best = candidate
    return best


def _field(headers: Mapping[str, str], name: str) -> str | None:
    """A list-valued field as one value: its field lines joined by commas (RFC 9110
    §5.3), so that policies sent in several ``RateLimit`` lines are all read."""
    value = headers.get(name)
    if value is None:
        return None
    getall = getattr(headers, "getall", None)  # a multidict (a response's headers)
    if getall is not None:
        lines = getall(name)
        if len(lines) > 1:
            return ", ".join(lines)
    return value


def announces(headers: Mapping[str, str]) -> bool:
    """Whether the headers hold any family's remaining count (a cheap first look)."""
    return (
        _OPENAI_REMAINING in headers
        or "ratelimit" in headers
        or _GITHUB_REMAINING in headers
        or _ANTHROPIC_REMAINING in headers
    )


def server_budget(headers: Mapping[str, str], now: float) -> ServerBudget | None:
    """The tightest budget any header family of the response announces (the lowest
    remaining), or ``None``. ``now`` is the client's wall clock, for absolute resets.

    Only the families whose remaining count is present are parsed (most APIs send
    one family): a response pays for what it announces, not for every format.
    """
    budgets = []
    if "x-ratelimit-remaining-requests" in headers:
        budgets.append(parse_openai(headers))
    if "anthropic-ratelimit-requests-remaining" in headers:
        budgets.append(parse_anthropic(headers, now))
    ratelimit = _field(headers, "ratelimit")
    if ratelimit is not None:
        budgets.append(parse_ietf(_field(headers, "ratelimit-policy"), ratelimit))
    if "x-ratelimit-remaining" in headers:
        budgets.append(parse_github(headers, now))
    found: ServerBudget | None = None
    for budget in budgets:
        if budget is not None and (found is None or budget.remaining < found.remaining):
            found = budget
    return found


class Unread(enum.Enum):
    """What `BudgetReader` returns for headers it leaves to `server_budget` (they need
    the wall clock, or hold several families)."""

    UNREAD = "unread"


class BudgetReader:
    """`server_budget` for the responses of one `RateLimit`, made cheap for the usual
    case: each family's remaining count is looked up once (four direct lookups, no
    pass over all headers, nothing else when none is there); when only the OpenAI
    family is present (durations, so no clock to read), its three texts are compared
    with the last response's and, when equal, the last `ServerBudget` is returned as is
    (it is frozen, and relative to its response). Any other family, or several, gives
    ``Unread.UNREAD``: the caller reads the wall clock and calls `server_budget`.

    What it saves, measured with callgrind: see `RateLimit` in benchmarks/RESULTS.md.
    """

    __slots__ = ("_budget", "_texts")

    def __init__(self) -> None:
        self._texts: tuple[str, str | None, str | None] | None = None
        self._budget: ServerBudget | None = None

    def read(self, headers: Mapping[str, str]) -> ServerBudget | Unread | None:
        get = headers.get
        remaining = get(_OPENAI_REMAINING)
        if (
            get("ratelimit") is not None
            or get(_GITHUB_REMAINING) is not None
            or get(_ANTHROPIC_REMAINING) is not None
        ):
            return Unread.UNREAD
        if remaining is None:
            return None
        texts = (remaining, get(_OPENAI_RESET), get(_OPENAI_LIMIT))
        if texts != self._texts:
            self._budget = _openai(*texts)
            self._texts = texts
        return self._budget
