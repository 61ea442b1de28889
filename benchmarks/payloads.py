"""The canned bodies the local server answers and the models they decode into.

Every client under test decodes the same bytes into the same shape, declared once per
model library: plain msgspec Structs (the hand-written baseline), `stackwire.Model`
subclasses, plain pydantic models (httpx + pydantic) and `anthropic.BaseModel`
subclasses (the official SDK only accepts its own pydantic base as `cast_to`).

The model classes are built by factories that take the base class, so the field list
exists once and a library that is missing (stackwire before its core lands) costs
nothing until a benchmark asks for it.
"""

# No `from __future__ import annotations` here: msgspec resolves a Struct's annotations
# in its module's globals, where the classes built inside the factories below are not.
import datetime
import functools
import json
from types import SimpleNamespace
from typing import Any

MIB = 1024 * 1024


def user_object(user_id: int) -> dict[str, Any]:
    """One user as the API returns it: about 300 bytes of JSON."""
    return {
        "id": user_id,
        "name": f"Ada Lovelace {user_id}",
        "email": f"ada.{user_id}@example.com",
        "active": True,
        "score": 98.25,
        "created_at": "2024-05-17T09:30:00Z",
        "roles": ["admin", "billing", "support"],
        "profile": {
            "bio": "Mathematician and writer; first published algorithm.",
            "location": "London, United Kingdom",
            "website": "https://example.com/ada",
        },
    }


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def user_page_object(count: int) -> dict[str, Any]:
    """A page of `count` users (the ~2 KB and ~1 MB payloads)."""
    return {
        "data": [user_object(i) for i in range(1, count + 1)],
        "has_more": False,
        "first_id": "1",
        "last_id": str(count),
    }


USER_BODY = _dumps(user_object(1))
PAYLOAD_NAMES = ("small", "2k", "1m")


def _page_of_size(target: int) -> bytes:
    one = len(_dumps(user_object(1000)))
    return _dumps(user_page_object(max(1, target // (one + 1))))


@functools.cache
def payload(name: str) -> bytes:
    """The decode payloads: `small` (~300 B user), `2k` and `1m` (pages of users).

    Built on first use, so that a worker process that never needs the 1 MiB page does
    not carry the memory its construction touched.
    """
    if name == "small":
        return USER_BODY
    if name == "2k":
        return _dumps(user_page_object(6))
    if name == "1m":
        return _page_of_size(MIB)
    raise KeyError(name)


def sse_event_data(index: int) -> bytes:
    """The JSON `data` of one streamed event: about 150 bytes."""
    return _dumps(
        {
            "type": "content_block_delta",
            "index": index,
            "delta": {"type": "text_delta", "text": "The quick brown fox jumps over the lazy dog."},
            "usage": {"output_tokens": 12},
        }
    )


def sse_event(index: int) -> bytes:
    """One complete event block, as the wire carries it."""
    return b"event: message\ndata: " + sse_event_data(index) + b"\n\n"


def models_on(base: type) -> SimpleNamespace:
    """The benchmark models, declared on `base`: `msgspec.Struct`, `stackwire.Model`,
    `pydantic.BaseModel` or `anthropic.BaseModel` (all read the same annotations)."""

    class Profile(base):  # type: ignore[misc]
        bio: str
        location: str
        website: str

    class User(base):  # type: ignore[misc]
        id: int
        name: str
        email: str
        active: bool
        score: float
        created_at: datetime.datetime
        roles: list[str]
        profile: Profile

    class UserPage(base):  # type: ignore[misc]
        data: list[User]
        has_more: bool
        first_id: str
        last_id: str

    class Delta(base):  # type: ignore[misc]
        type: str
        text: str

    class Usage(base):  # type: ignore[misc]
        output_tokens: int

    class Event(base):  # type: ignore[misc]
        type: str
        index: int
        delta: Delta
        usage: Usage

    return SimpleNamespace(User=User, UserPage=UserPage, Event=Event)


# --- typed SSE of a tagged union (bench_stream's union rows) ---------------------------

UNION_TEXT = "The quick brown fox jumps over the lazy dog, then naps."


def union_event_data(index: int, count: int) -> tuple[bytes, bytes]:
    """The event type and JSON `data` of event `index` of a `count`-event union stream:
    text deltas (~130 bytes of JSON), a usage event every tenth, a `done` event last."""
    if index == count - 1:
        return b"done", _dumps({"type": "done", "index": index, "stop_reason": "end_turn"})
    if index % 10 == 9:
        return b"usage", _dumps(
            {"type": "usage", "index": index, "input_tokens": 25, "output_tokens": index}
        )
    return b"delta", _dumps(
        {"type": "delta", "index": index, "text": UNION_TEXT, "model": "bench-1", "logprob": -0.25}
    )


def sse_union_event(index: int, count: int) -> bytes:
    """One complete block of the union stream, as the wire carries it."""
    name, data = union_event_data(index, count)
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def union_models_on(base: type) -> SimpleNamespace:
    """The union stream's event types on a msgspec `base` (`msgspec.Struct` or
    `stackwire.Model`), tagged by their `type` field; `Event` is their union."""

    class Delta(base, tag="delta", tag_field="type"):  # type: ignore[misc,call-arg]
        index: int
        text: str
        model: str
        logprob: float

    class Usage(base, tag="usage", tag_field="type"):  # type: ignore[misc,call-arg]
        index: int
        input_tokens: int
        output_tokens: int

    class Done(base, tag="done", tag_field="type"):  # type: ignore[misc,call-arg]
        index: int
        stop_reason: str

    return SimpleNamespace(Delta=Delta, Usage=Usage, Done=Done, Event=Delta | Usage | Done)
