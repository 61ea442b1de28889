"""Pages of a paginated list, and the paginator that walks them.

A page is a `Model` decoded from one response. It says where its items are
(`BasePage.page_items`) and how to ask for the page after it
(`BasePage.next_page_info`): new parameters for the query (or for the JSON body, when
the list is requested with a JSON object body, as with ``POST /search``), or a URL.
Four kinds ship:

- `CursorPage`: ``{"data": [...], "has_more": true, "next_cursor": "c2"}``; the next
  request sends ``cursor=c2``;
- `OffsetPage`: ``{"data": [...]}``; the next request sends ``offset`` advanced by the
  items seen; an empty page is the last;
- `PageNumberPage`: ``{"data": [...]}``; the next request sends ``page`` + 1; an empty
  page is the last;
- `LinkPage`: the body is a JSON list; the next URL is the ``Link`` header's
  ``rel="next"`` target (RFC 8288; see `parse_link_header`).

Parameter names are class-level settings (``cursor_param``, ``offset_param``,
``page_param``, ``first_page``, ``link_rel``); JSON field names are changed the msgspec
way, by declaring the field again with ``msgspec.field(name=...)``::

    class ItemsPage(CursorPage[T]):
        data: list[T] = msgspec.field(name="items")
        next_cursor: str | None = msgspec.field(default=None, name="after")
        cursor_param: ClassVar[str] = "after"

``client.paginate(path, page=CursorPage[User], ...)`` returns an `AsyncPaginator`:
``await`` it for the first page, ``async for`` it for every item of every page. Every
following request keeps the first one's query, headers, body, timeout and retry
options (only an ``idempotency_key`` is not reused: each page is a different request).

An empty page ends a list of any kind, whatever it names as the next page (as in
the OpenAI and Anthropic SDKs). A list ends, too, when the API leads back to a page
of the same walk (a cursor or a ``Link`` that was followed before, as a cursor handed
straight back): that page is not yielded again, and the walk stops instead of
looping forever. Each walk (each
``await`` or ``async for`` of the paginator) keeps its own record.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, cast, get_origin

import msgspec
from yarl import URL

from ..auth import Auth
from ..errors import InvalidRequestError
from ..models.model import Model
from ..pipeline.response import Response
from ._verbs import BaseCallOptions

if TYPE_CHECKING:
    from typing import Self

__all__ = [
    "AsyncPaginator",
    "BasePage",
    "CursorPage",
    "Link",
    "LinkPage",
    "OffsetPage",
    "PageCallOptions",
    "PageFetcher",
    "PageInfo",
    "PageNumberPage",
    "parse_link_header",
]

_T = TypeVar("_T")
_PageT_co = TypeVar("_PageT_co", bound="BasePage[Any]", covariant=True)
_P = TypeVar("_P", bound="BasePage[Any]")

_NO_BODY_METHODS = frozenset({"GET", "HEAD"})
_CONTEXT = "_stackwire_page_request"


class PageCallOptions(BaseCallOptions, total=False):
    """The keywords `AsyncClient.paginate` takes besides ``path``, ``page`` and
    ``method`` (the verbs' keywords, without ``content``, ``files`` and ``stream``)."""

    auth: Auth | None


class PageInfo(msgspec.Struct, frozen=True, kw_only=True):
    """How to request the next page.

    - ``params``: merged over the first request's parameters: into its JSON body when
      it sent a JSON object with a method other than GET, else into its query;
    - ``url``: request this URL instead (absolute, or relative to ``base_url`` as for
      the verbs); the first request's query is kept, except the names the URL sets.
    """

    params: Mapping[str, object] | None = None
    url: str | None = None


# -- the request behind a page ---------------------------------------------------------

PageFetcher = Callable[[str, str, Mapping[str, Any]], Awaitable[Response[Any]]]
"""How pages are fetched: ``fetch(method, path, options)`` sends one call with the
verbs' keyword ``options`` (``cast_to`` the page type) and returns its `Response`,
body read and bound to ``cast_to``. The client hands its own to `AsyncPaginator`; a
page never sees the client."""


class _PageRequest:
    """What a page was requested with; the next page's request is derived from it."""

    __slots__ = (
        "depth",
        "fetch_page",
        "method",
        "options",
        "page_type",
        "path",
        "repeat",
        "seen",
        "url",
    )

    def __init__(
        self,
        fetch_page: PageFetcher,
        page_type: Any,
        method: str,
        path: str,
        options: Mapping[str, Any],
        *,
        seen: dict[str, int] | None = None,
        depth: int = 0,
    ) -> None:
        self.fetch_page = fetch_page
        self.page_type = page_type
        self.method = method
        self.path = path
        self.options = options
        self.url: URL | None = None  # the URL the page came from, once fetched
        # The pages of this walk: what identifies each request (its URL and body
        # parameters) -> how many pages after the first it was. A page whose request
        # was made earlier in the walk is a repeat: the API has led back to it, and
        # following it would loop forever.
        self.seen: dict[str, int] = {} if seen is None else seen
        self.depth = depth
        self.repeat = False

    def restart(self) -> _PageRequest:
        """This (first) request, for a new walk: nothing seen yet."""
        return _PageRequest(self.fetch_page, self.page_type, self.method, self.path, self.options)

    @property
    def params_in_body(self) -> bool:
        return self.method not in _NO_BODY_METHODS and isinstance(self.options.get("json"), Mapping)

    def params(self) -> Mapping[str, object]:
        key = "json" if self.params_in_body else "query"
        return cast("Mapping[str, object]", self.options.get(key) or {})

    def following(self, info: PageInfo) -> _PageRequest:
        options = dict(self.options)
        options.pop("idempotency_key", None)
        path = self.path
        if info.url is not None:
            path = info.url
            options.pop("path_params", None)
            set_by_url = URL(info.url).query
            kept: dict[str, object] = {
                name: value
                for name, value in (options.get("query") or {}).items()
                if not _names_in(name, set_by_url)
            }
            # The client's default query is added to every request: a name the URL
            # sets is given as None (dropped), so it is not sent twice.
            for key in set_by_url:
                kept.setdefault(_top_name(key), None)
            options["query"] = kept or None
        if info.params:
            key = "json" if self.params_in_body else "query"
            options[key] = {**(options.get(key) or {}), **info.params}
        return _PageRequest(
            self.fetch_page,
            self.page_type,
            self.method,
            path,
            options,
            seen=self.seen,
            depth=self.depth + 1,
        )

    async def fetch(self) -> BasePage[Any]:
        response = await self.fetch_page(
            self.method, self.path, {**self.options, "cast_to": self.page_type}
        )
        page_class = get_origin(self.page_type) or self.page_type
        page = await page_class.from_response(response)
        self.url = response.url
        key = str(response.url)
        if self.params_in_body:
            key += " " + repr(self.options.get("json"))
        first = self.seen.setdefault(key, self.depth)
        self.repeat = first < self.depth  # (the same page fetched again is no repeat)
        setattr(page, _CONTEXT, self)  # not a field: pages have a __dict__
        return cast("BasePage[Any]", page)


def _top_name(key: str) -> str:
    """The parameter a query key was encoded from: ``tags`` for ``tags[]``, ``tags[0]``,
    ``filter[a]`` or ``filter.a``."""
    for mark in ("[", "."):
        cut = key.find(mark)
        if cut > 0:
            key = key[:cut]
    return key


def _names_in(name: str, query: Mapping[str, str]) -> bool:
    """Whether a query already sets ``name`` (or one of its ``name[...]``/``name.`` keys)."""
    return any(key == name or key.startswith((name + "[", name + ".")) for key in query)


# -- pages -----------------------------------------------------------------------------


class BasePage(Model, Generic[_T], dict=True):
    """The base of every page: subclass it for an API's own pagination.

    A subclass declares its fields, and overrides `page_items` (where the items are)
    and `next_page_info` (how to get the next page, or ``None`` on the last). It may
    also override `from_response` when the body is not a JSON object of its fields.
    The request a page came from is kept next to it (not as a field), so comparing,
    printing or encoding a page only involves the fields.
    """

    def page_items(self) -> list[_T]:
        """The items on this page."""
        raise NotImplementedError

    def next_page_info(self) -> PageInfo | None:
        """How to request the next page; ``None`` when this page is the last."""
        raise NotImplementedError

    @classmethod
    async def from_response(cls, response: Response[Any]) -> Self:
        """The page decoded from ``response`` (whose ``cast_to`` is the page type)."""
        return cast("Self", await response.parse())

    @property
    def request_params(self) -> Mapping[str, object]:
        """The parameters this page was requested with: those of the JSON body when
        the request sent a JSON object (and was not a GET), else those of the query."""
        context = self._page_request()
        return context.params() if context is not None else {}

    def _page_request(self) -> _PageRequest | None:
        return cast("_PageRequest | None", getattr(self, _CONTEXT, None))

    def _repeats(self) -> bool:
        """Whether this page's request was made before in the walk (a cycle)."""
        context = self._page_request()
        return context is not None and context.repeat

    def has_next_page(self) -> bool:
        """Whether there is a page after this one: never after an empty page (as in the
        OpenAI and Anthropic SDKs: an API that hands out a new cursor with every empty
        page would never end), nor after a page the walk had reached before (the API
        led back to it). `get_next_page` still fetches what `next_page_info` names."""
        return self.next_page_info() is not None and bool(self.page_items()) and not self._repeats()

    async def get_next_page(self) -> Self:
        """Request the page after this one with the original request's options.

        Raises `InvalidRequestError` (before any I/O) on the last page.
        """
        info = self.next_page_info()
        if info is None or self._repeats():
            raise InvalidRequestError(
                f"this {type(self).__name__} is the last page: check has_next_page() "
                "before calling get_next_page()"
            )
        context = self._page_request()
        if context is None:
            raise InvalidRequestError(
                f"this {type(self).__name__} was not fetched by client.paginate(), so there "
                "is no request to continue from"
            )
        return cast("Self", await context.following(info).fetch())

    def iter_pages(self) -> AsyncIterator[Self]:
        """This page, then every page after it (``async for page in page.iter_pages()``)."""
        return _PageIterator(self)

    def __aiter__(self) -> AsyncIterator[_T]:
        """Every item of this page, then of every page after it, each page fetched when
        the one before runs out (``async for item in await client.paginate(...)``)."""
        return _ItemIterator(_PageIterator(self))


class CursorPage(BasePage[_T]):
    """``{"data": [...], "has_more": bool, "next_cursor": str | null}``.

    The next request sets the query (or JSON body) parameter ``cursor_param``
    (``"cursor"``) to ``next_cursor``. The list ends when ``has_more`` is false, when
    there is no ``next_cursor``, when the API hands back the cursor just sent, or at
    an empty page.
    """

    data: list[_T]
    has_more: bool | None = None
    next_cursor: str | None = None

    cursor_param: ClassVar[str] = "cursor"

    def page_items(self) -> list[_T]:
        return self.data

    def next_page_info(self) -> PageInfo | None:
        cursor = self.next_cursor
        if self.has_more is False or not cursor:
            return None
        if self.request_params.get(self.cursor_param) == cursor:
            return None  # the same page again: stop instead of looping forever
        return PageInfo(params={self.cursor_param: cursor})


def _int_param(page: BasePage[Any], name: str, default: int) -> int:
    value = page.request_params.get(name)
    if value is None:  # not sent (a None parameter is dropped): the first one
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRequestError(f"the {name!r} parameter must be an int, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise InvalidRequestError(f"the {name!r} parameter must be an int, got {value!r}") from None


class OffsetPage(BasePage[_T]):
    """``{"data": [...]}``, requested with an ``offset_param`` (``"offset"``).

    The next request's offset is this request's (0 when it sent none) plus the
    number of items on this page; an empty page is the last.
    """

    data: list[_T]

    offset_param: ClassVar[str] = "offset"

    def page_items(self) -> list[_T]:
        return self.data

    def next_page_info(self) -> PageInfo | None:
        if not self.data:
            return None
        offset = _int_param(self, self.offset_param, 0)
        return PageInfo(params={self.offset_param: offset + len(self.data)})


class PageNumberPage(BasePage[_T]):
    """``{"data": [...]}``, requested with a ``page_param`` (``"page"``).

    The next request asks for this page's number (``first_page``, 1, when the request
    sent none) plus one; an empty page is the last.
    """

    data: list[_T]

    page_param: ClassVar[str] = "page"
    first_page: ClassVar[int] = 1

    def page_items(self) -> list[_T]:
        return self.data

    def next_page_info(self) -> PageInfo | None:
        if not self.data:
            return None
        number = _int_param(self, self.page_param, self.first_page)
        return PageInfo(params={self.page_param: number + 1})


class LinkPage(BasePage[_T]):
    """A body that is a JSON list, and a ``Link: <url>; rel="next"`` header.

    ``data`` holds the list; ``next_url`` the absolute URL of the link whose relation
    types include ``link_rel`` (``"next"``), resolved against the URL of the page
    (``None`` when there is none). The first request's query is kept on the next
    URL, except the names that URL sets itself.
    """

    data: list[_T]
    next_url: str | None = None

    link_rel: ClassVar[str] = "next"

    @classmethod
    async def from_response(cls, response: Response[Any]) -> Self:
        content = await response.read()
        try:
            # One whole JSON value, so wrapping it below cannot add other fields.
            msgspec.json.decode(content, type=msgspec.Raw)
        except msgspec.DecodeError:
            page = response._decode(content)  # raises the usual validation error
        else:
            field = cls.__struct_encode_fields__[cls.__struct_fields__.index("data")]
            page = response._decode(b"{" + msgspec.json.encode(field) + b":" + content + b"}")
        page.next_url = _next_link(response, cls.link_rel)
        return cast("Self", page)

    def page_items(self) -> list[_T]:
        return self.data

    def next_page_info(self) -> PageInfo | None:
        if self.next_url is None:
            return None
        context = self._page_request()
        if context is not None and str(context.url) == self.next_url:
            return None  # a link to this very page: stop instead of looping forever
        return PageInfo(url=self.next_url)


def _next_link(response: Response[Any], rel: str) -> str | None:
    """The first usable ``rel`` target of the response's ``Link`` headers. Each header
    is parsed on its own: one broken header (an unterminated quote) cannot take the
    links of the headers after it."""
    for value in response.headers.getall("Link", ()):
        for link in parse_link_header(value):
            if rel in link.rel:
                target = _link_target(response.url, link.url)
                if target is not None:
                    return target
    return None


def _link_target(page_url: URL, reference: str) -> str | None:
    """The absolute http(s) URL a link target resolves to against ``page_url``, or
    ``None`` for a target that names no such URL (``<>``, ``<http://[::1>``,
    ``<javascript:...>``, ``<ftp://...>``): a malformed link is ignored, like any
    malformed header, never an exception; and a next page is only ever an HTTP URL
    with a host, never a relative path the client would reinterpret. The fragment
    (never sent) and any ``user:password@`` are dropped: a link from the API never
    supplies credentials."""
    if not reference:
        return None
    try:
        url = page_url.join(URL(reference)).with_fragment(None).with_user(None)
        url.port  # noqa: B018 - a bad port fails here, not in the next request
    except (ValueError, TypeError):
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    return str(url)


# -- iterating -------------------------------------------------------------------------


class _PageIterator(Generic[_P]):
    """Pages, from a first one (given, or fetched on the first ``__anext__``)."""

    __slots__ = ("_fetch_first", "_page", "_started")

    def __init__(
        self, first: _P | None, fetch_first: Callable[[], Awaitable[_P]] | None = None
    ) -> None:
        self._page = first
        self._fetch_first = fetch_first
        self._started = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _P:
        page = self._page
        if not self._started:
            if page is None:
                assert self._fetch_first is not None
                page = self._page = await self._fetch_first()
            self._started = True
            return page
        if page is None or not page.has_next_page():
            raise StopAsyncIteration
        self._page = following = await page.get_next_page()
        if following._repeats():
            raise StopAsyncIteration  # a page of this walk again: the list ends there
        return following


class _ItemIterator(Generic[_T]):
    """Every item of every page, fetching the next page when one runs out."""

    __slots__ = ("_items", "_pages")

    def __init__(self, pages: _PageIterator[BasePage[_T]]) -> None:
        self._pages = pages
        self._items: Iterator[_T] = iter(())

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> _T:
        while True:
            for item in self._items:
                return item
            page = await self._pages.__anext__()
            self._items = iter(page.page_items())


class AsyncPaginator(Generic[_PageT_co]):
    """What `AsyncClient.paginate` returns.

    - ``page = await paginator``: the first page (a typed page: ``CursorPage[User]``);
    - ``async for item in paginator``: every item of every page, fetching each page
      when the one before runs out;
    - ``async for page in paginator.iter_pages()``: every page.

    Each ``await`` or iteration starts again from the first page.
    """

    __slots__ = ("_request",)

    def __init__(self, request: _PageRequest) -> None:
        self._request = request

    async def _first_page(self) -> _PageT_co:
        return cast("_PageT_co", await self._request.restart().fetch())

    def __await__(self) -> Generator[Any, None, _PageT_co]:
        return self._first_page().__await__()

    def iter_pages(self) -> AsyncIterator[_PageT_co]:
        """Every page, the first one included."""
        return _PageIterator(None, self._first_page)

    def __aiter__(self: AsyncPaginator[BasePage[_T]]) -> AsyncIterator[_T]:
        return _ItemIterator(_PageIterator(None, self._first_page))

    def with_fetcher(self, fetch_page: PageFetcher) -> AsyncPaginator[_PageT_co]:
        """The same paginator, fetching every page (the first and those its pages lead
        to) with ``fetch_page`` instead: how another face of the client (the blocking
        `Client`) sends the pages on its own event loop."""
        request = self._request
        return AsyncPaginator(
            _PageRequest(
                fetch_page, request.page_type, request.method, request.path, request.options
            )
        )

    def __repr__(self) -> str:
        request = self._request
        return f"<AsyncPaginator {request.method} {request.path}>"


# -- the Link header -------------------------------------------------------------------


class Link(msgspec.Struct, frozen=True):
    """One link of a ``Link`` header: its target, relation types (lower case) and
    parameters (names in lower case; the first occurrence of a name wins)."""

    url: str
    rel: tuple[str, ...]
    params: Mapping[str, str]


_SEPARATORS = frozenset(' \t;,="')


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _skip_link(text: str, i: int) -> int:
    """The index just past the comma ending the current (malformed) link."""
    quoted = False
    while i < len(text):
        char = text[i]
        if quoted and char == "\\":
            i += 2
            continue
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            return i + 1
        i += 1
    return i


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The quoted string starting at ``text[i] == '"'`` (unescaped), and the index after it."""
    chars: list[str] = []
    i += 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            chars.append(text[i + 1])
            i += 2
            continue
        if char == '"':
            return "".join(chars), i + 1
        chars.append(char)
        i += 1
    return "".join(chars), i  # unterminated: take what is there


def _token(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and text[i] not in _SEPARATORS:
        i += 1
    return text[start:i], i


def parse_link_header(value: str) -> list[Link]:
    """The links of a ``Link`` header value (RFC 8288); malformed links are skipped.

    Several headers can be joined with ``", "`` first. Targets may contain commas and
    semicolons; parameter values may be quoted (with ``\\`` escapes) or bare tokens;
    ``rel`` may hold several relation types separated by spaces.

    >>> links = parse_link_header('<https://api.test/u?page=2>; rel="next last", <a,b>; rel=prev')
    >>> [(link.url, link.rel) for link in links]
    [('https://api.test/u?page=2', ('next', 'last')), ('a,b', ('prev',))]
    """
    links: list[Link] = []
    i, end = 0, len(value)
    while i < end:
        while i < end and value[i] in " \t,":
            i += 1
        if i >= end:
            break
        if value[i] != "<":
            i = _skip_link(value, i)
            continue
        close = value.find(">", i + 1)
        if close < 0:
            break
        target = value[i + 1 : close].strip()
        i = close + 1
        params: dict[str, str] = {}
        valid = True
        while True:
            i = _skip_spaces(value, i)
            if i >= end or value[i] == ",":
                break
            if value[i] != ";":
                valid = False
                i = _skip_link(value, i)
                break
            name, i = _token(value, _skip_spaces(value, i + 1))
            i = _skip_spaces(value, i)
            param = ""
            if i < end and value[i] == "=":
                i = _skip_spaces(value, i + 1)
                if i < end and value[i] == '"':
                    param, i = _quoted(value, i)
                else:
                    param, i = _token(value, i)
            if name:
                params.setdefault(name.lower(), param)
        if valid:
            rel = tuple(params.get("rel", "").lower().split())
            links.append(Link(target, rel, params))
    return links
