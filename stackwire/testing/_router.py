"""`Router`: routes mocked attempts by method and path template.

A `Router` is a handler for `MockTransport`. A request no route matches, and a route
never called when ``assert_all_called()`` runs, raise ``AssertionError``: a test
failure, not an HTTP status, so it is never retried (``retry`` retries only `APIError`)
and never hidden as a fake 404. The message names the request and the closest routes,
with how each differs, so the fix is usually one glance away.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar
from urllib.parse import unquote

from yarl import URL

from .._types import NOT_GIVEN
from ..errors import InvalidRequestError
from ..models.sse import ServerSentEvent
from ..pipeline.request import Request, request_line
from ._mock import MockHeaders, MockResponse

__all__ = ["Call", "Route", "RouteFunction", "Router"]

RouteFunction: TypeAlias = Callable[..., "MockResponse | Awaitable[MockResponse]"]
"""A route's function: ``fn(request, **path_params)`` returns a `MockResponse` (or an
awaitable of one)."""

_F = TypeVar("_F", bound=RouteFunction)
_MEMO_SIZE = 4096
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_METHOD = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _keywords(function: RouteFunction) -> frozenset[str] | None:
    """The path parameters ``function`` takes by name; ``None`` for all of them (it
    has ``**kwargs``, or its signature cannot be read). ``fn(request)`` gets none."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(parameter.kind is inspect.Parameter.VAR_KEYWORD for parameter in parameters):
        return None
    return frozenset(
        parameter.name
        for parameter in parameters
        if parameter.kind
        in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    )


def _check_template(template: object) -> str:
    """``template`` if it is a path template: a str whose braces are all ``{name}``
    placeholders, each name once."""
    if not isinstance(template, str) or not template:
        raise InvalidRequestError(f"a route template must be a non-empty str, not {template!r}")
    names = _PLACEHOLDER.findall(template)
    rest = _PLACEHOLDER.sub("", template)
    if "{" in rest or "}" in rest:
        raise InvalidRequestError(
            f"route template {template!r} has a brace that is not a {{name}} placeholder "
            "(a name is a Python identifier: {user_id})"
        )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise InvalidRequestError(
            f"route template {template!r} names {', '.join(repeated)} more than once"
        )
    return template


@dataclass(frozen=True)
class Call:
    """One attempt the router saw: the request, the route that answered it (``None``
    when none matched) and the path parameters the template captured."""

    request: Request
    route: Route | None
    params: Mapping[str, str] = field(default_factory=dict)


def _segment_pattern(segment: str) -> re.Pattern[str] | None:
    """A regex for one template segment with placeholders; ``None`` for a literal."""
    if "{" not in segment:
        return None
    parts: list[str] = []
    last = 0
    for match in _PLACEHOLDER.finditer(segment):
        parts.append(re.escape(segment[last : match.start()]))
        parts.append(f"(?P<{match.group(1)}>[^/]+)")
        last = match.end()
    parts.append(re.escape(segment[last:]))
    return re.compile("".join(parts) + r"\Z")


class Route:
    """One ``METHOD template`` of a `Router`, and what it answers.

    Set the answer with `respond` (one `MockResponse`, reused for every call),
    `respond_seq` (one per call, in order), or a function (`respond_with`, or the route
    as a decorator). ``calls`` lists the attempts it answered.
    """

    def __init__(self, method: str, template: str, base_path: str) -> None:
        if not isinstance(method, str) or _METHOD.fullmatch(method) is None:
            raise InvalidRequestError(f"a route method must be an HTTP method, not {method!r}")
        self.method = method.upper()
        self.template = template = _check_template(template)
        origin: URL | None = None
        path = template
        if "://" in template:
            url = URL(template)
            origin, path = url.origin(), url.raw_path
        elif not template.startswith("/"):
            path = "/" + template
        self.origin = origin
        full = path if origin is not None else base_path.rstrip("/") + path
        if "?" in full or "#" in full:
            raise InvalidRequestError(
                f"a route template matches the path only; {template!r} has a query or fragment"
            )
        self.path = full
        self._segments = full.split("/")
        self._patterns = [_segment_pattern(segment) for segment in self._segments]
        self.literal_segments = sum(pattern is None for pattern in self._patterns)
        self.calls: list[Call] = []
        self._answer: MockResponse | None = None
        self._sequence: list[MockResponse] | None = None
        self._function: RouteFunction | None = None
        self._keywords: frozenset[str] | None = None

    # -- what it answers ---------------------------------------------------------------

    def respond(
        self,
        status: int | MockResponse | RouteFunction = 200,
        *,
        json: Any = NOT_GIVEN,
        content: bytes = b"",
        headers: MockHeaders = None,
        sse: Iterable[ServerSentEvent | str] | None = None,
        jsonl: Iterable[Any] | None = None,
        chunks: Iterable[bytes] | None = None,
    ) -> Route:
        """Answer every call with this `MockResponse` (the same keywords). Given a
        `MockResponse` (``MockResponse.timeout()``, say) or a function instead of a
        status, answer with that, as `respond_mock` or `respond_with` do."""
        if isinstance(status, MockResponse) or (callable(status) and not isinstance(status, int)):
            given = (json, content, headers, sse, jsonl, chunks)
            if given != (NOT_GIVEN, b"", None, None, None, None):
                raise InvalidRequestError(
                    "respond() takes a MockResponse or a function alone, without body "
                    "or header keywords"
                )
            if isinstance(status, MockResponse):
                return self.respond_mock(status)
            return self.respond_with(status)
        return self.respond_mock(
            MockResponse(
                status,
                json=json,
                content=content,
                headers=headers,
                sse=sse,
                jsonl=jsonl,
                chunks=chunks,
            )
        )

    def respond_mock(self, response: MockResponse) -> Route:
        """Answer every call with ``response`` (a fault such as
        ``MockResponse.timeout()`` included)."""
        if not isinstance(response, MockResponse):
            raise InvalidRequestError(f"expected a MockResponse, not {type(response).__name__}")
        self._answer, self._sequence, self._function = response, None, None
        return self

    def respond_seq(self, responses: Iterable[MockResponse]) -> Route:
        """Answer the first call with the first response, the second with the second,
        ...; a call past the end fails the test (``AssertionError``)."""
        if isinstance(responses, (str, bytes, MockResponse)) or not isinstance(responses, Iterable):
            raise InvalidRequestError(
                f"respond_seq takes a list of MockResponse, not {type(responses).__name__}"
            )
        sequence = list(responses)
        for response in sequence:
            if not isinstance(response, MockResponse):
                raise InvalidRequestError(
                    f"respond_seq takes MockResponse items, not {type(response).__name__}"
                )
        self._answer, self._sequence, self._function = None, sequence, None
        return self

    def respond_with(self, function: RouteFunction) -> Route:
        """Answer with ``function(request, **path_params)``: the path parameters it
        names (all of them for ``**params``; none for ``fn(request)``)."""
        if not callable(function):
            raise InvalidRequestError(f"respond_with takes a function, not {function!r}")
        self._answer, self._sequence, self._function = None, None, function
        self._keywords = _keywords(function)
        return self

    def __call__(self, function: _F) -> _F:
        """As a decorator: ``@router.get("/users/{id}")`` over ``def user(request, id)``."""
        self.respond_with(function)
        return function

    @property
    def called(self) -> bool:
        return bool(self.calls)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    # -- matching ----------------------------------------------------------------------

    def match(self, request: Request) -> dict[str, str] | None:
        """The path parameters if ``request`` matches this route, else ``None``."""
        if request.method != self.method:
            return None
        url = request.url
        if self.origin is not None and url.origin() != self.origin:
            return None
        segments = url.raw_path.split("/")
        if len(segments) != len(self._segments):
            return None
        params: dict[str, str] = {}
        for segment, literal, pattern in zip(segments, self._segments, self._patterns, strict=True):
            if pattern is None:
                if unquote(segment) != unquote(literal):
                    return None
                continue
            found = pattern.match(segment)
            if found is None:
                return None
            params.update({name: unquote(value) for name, value in found.groupdict().items()})
        return params

    def differences(self, method: str, path: str) -> list[str]:
        """How a request with ``method`` and raw ``path`` differs from this route."""
        notes: list[str] = []
        if method != self.method:
            notes.append(f"the method is {method}, not {self.method}")
        segments = path.split("/")
        if len(segments) != len(self._segments):
            notes.append(
                f"the path has {len(segments) - 1} segments, the template {len(self._segments) - 1}"
            )
        for index, (segment, literal, pattern) in enumerate(
            zip(segments, self._segments, self._patterns, strict=False)
        ):
            if pattern is None and unquote(segment) != unquote(literal):
                notes.append(f"segment {index} is {segment!r}, not {literal!r}")
            elif pattern is not None and pattern.match(segment) is None:
                notes.append(f"segment {index} {segment!r} does not fit {literal!r}")
        return notes

    def answer(self, call: Call) -> MockResponse | Awaitable[MockResponse]:
        """Record ``call`` and produce its answer (awaitable from an async function)."""
        self.calls.append(call)
        request, params = call.request, call.params
        if self._answer is not None:
            return self._answer
        if self._sequence is not None:
            number = len(self.calls)
            if number > len(self._sequence):
                raise AssertionError(
                    f"{self} answered all {len(self._sequence)} responses of its respond_seq; "
                    f"call {number} ({request_line(request)}) has none "
                    "(add responses to the sequence)"
                )
            return self._sequence[number - 1]
        if self._function is not None:
            keywords = self._keywords
            if keywords is not None:
                params = {name: value for name, value in params.items() if name in keywords}
            result = self._function(request, **params)
            if inspect.isawaitable(result):
                return self._checked(result)
            return self._check(result)
        raise AssertionError(
            f"{self} matched {request_line(request)} but has no response: "
            "call .respond(...), .respond_seq([...]) or .respond_with(function)"
        )

    async def _checked(self, result: Awaitable[MockResponse]) -> MockResponse:
        return self._check(await result)

    def _check(self, result: object) -> MockResponse:
        if not isinstance(result, MockResponse):
            raise TypeError(
                f"the function of {self} must return a MockResponse, not {type(result).__name__}"
            )
        return result

    def __str__(self) -> str:
        return f"{self.method} {self.template}"

    def __repr__(self) -> str:
        return f"<Route {self} calls={len(self.calls)}>"


class Router:
    """Routes attempts by method and path template; a handler for `MockTransport`.

    ``router.get("/users/{id}").respond(json={...})`` (and ``post``, ``put``,
    ``patch``, ``delete``, ``head``, ``options``, or ``route(method, template)``). A
    ``{name}`` matches one non-empty path segment, never a ``/``; its value reaches a
    route function as a keyword, percent-decoded. With ``base_url``, templates are
    relative to its path (``Router("https://api.test/v1/").get("/users")`` matches
    ``/v1/users``); a template that is an absolute URL matches that origin only. When
    several routes match, the one with the most literal segments wins (``/users/me``
    before ``/users/{id}``), then the first added.

    ``calls`` holds every attempt seen, matched or not; ``assert_all_called()`` fails
    when a route was never called.

    >>> router = Router()
    >>> _ = router.get("/users/{id}").respond(json={"id": 1})
    >>> router.routes
    [<Route GET /users/{id} calls=0>]
    """

    def __init__(self, base_url: str | URL | None = None) -> None:
        if base_url is not None and not isinstance(base_url, (str, URL)):
            raise InvalidRequestError(
                f"base_url must be a str or a yarl.URL, not {type(base_url).__name__}"
            )
        self.base_path = URL(str(base_url)).raw_path if base_url is not None else ""
        self.routes: list[Route] = []
        self.calls: list[Call] = []
        self._matched: dict[tuple[object, ...], tuple[Route, dict[str, str]] | None] = {}

    def route(self, method: str, template: str) -> Route:
        """A new route for ``method`` and ``template``."""
        route = Route(method, template, self.base_path)
        self.routes.append(route)
        self._matched.clear()
        return route

    def get(self, template: str) -> Route:
        return self.route("GET", template)

    def post(self, template: str) -> Route:
        return self.route("POST", template)

    def put(self, template: str) -> Route:
        return self.route("PUT", template)

    def patch(self, template: str) -> Route:
        return self.route("PATCH", template)

    def delete(self, template: str) -> Route:
        return self.route("DELETE", template)

    def head(self, template: str) -> Route:
        return self.route("HEAD", template)

    def options(self, template: str) -> Route:
        return self.route("OPTIONS", template)

    def __call__(self, request: Request) -> MockResponse | Awaitable[MockResponse]:
        # The route a (method, URL path) goes to, memoized: matching every template
        # costs ~10 µs a call, a third of a mocked call (benchmarks/bench_mock.py);
        # a test that calls one endpoint many times pays it once. Adding a route
        # clears the memo.
        url = request.url
        key = (request.method, url.scheme, url.raw_host, url.port, url.raw_path)
        try:
            best = self._matched[key]
        except KeyError:
            best = self._match(request)
            if len(self._matched) < _MEMO_SIZE:
                self._matched[key] = best
        if best is None:
            self.calls.append(Call(request, None))
            raise AssertionError(self._unmatched_message(request))
        route, params = best
        call = Call(request, route, dict(params))
        self.calls.append(call)
        return route.answer(call)

    def _match(self, request: Request) -> tuple[Route, dict[str, str]] | None:
        best: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            params = route.match(request)
            if params is not None and (
                best is None or route.literal_segments > best[0].literal_segments
            ):
                best = (route, params)
        return best

    def _closest(self, method: str, path: str) -> list[tuple[Route, list[str]]]:
        scored = [(route, route.differences(method, path)) for route in self.routes]
        scored.sort(key=lambda pair: len(pair[1]))
        return scored[:3]

    def _unmatched_message(self, request: Request) -> str:
        url = request.url.with_user(None)
        lines = [f"no route matches {request.method} {url.raw_path} ({url.with_query(None)})"]
        if not self.routes:
            lines.append("the router has no routes: add one with router.get(...).respond(...)")
        else:
            lines.append(f"closest of {len(self.routes)} routes:")
            for route, notes in self._closest(request.method, url.raw_path):
                shown = "; ".join(notes) if notes else "matches, but on another origin"
                lines.append(f"  {route}: {shown}")
        return "\n".join(lines)

    def assert_all_called(self) -> None:
        """Fail (``AssertionError``) naming every route that was never called, with
        the requests that came closest to each."""
        never = [route for route in self.routes if not route.calls]
        if not never:
            return
        seen = [(call.request.method, call.request.url.raw_path) for call in self.calls]
        lines = [f"{len(never)} of {len(self.routes)} routes were never called:"]
        for route in never:
            nearest = sorted(seen, key=lambda pair: len(route.differences(*pair)))[:3]
            shown = ", ".join(f"{method} {path}" for method, path in nearest) or "no request"
            lines.append(f"  {route} (closest requests seen: {shown})")
        raise AssertionError("\n".join(lines))

    def reset(self) -> None:
        """Forget every call (routes and their answers stay)."""
        self.calls.clear()
        for route in self.routes:
            route.calls.clear()

    def __repr__(self) -> str:
        return f"<Router {len(self.routes)} routes, {len(self.calls)} calls>"
