"""`Token` and `BearerToken`: a refreshed, single-flight bearer token."""

from __future__ import annotations

import asyncio
import inspect
import math
import re
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from .._types import NotGiven
from ..errors import AuthError, InvalidRequestError, StackwireError
from ..pipeline import Clocks, Request, Timeout
from ..pipeline.clocks import DEFAULT_CLOCKS
from ..pipeline.options import DEFAULT_TIMEOUT
from ._base import HEADERS_CHECKED, Auth

__all__ = ["BearerToken", "Token"]


# What may follow ``Bearer `` in a header: visible ASCII, no space (RFC 6750's
# b64token and every token format in use fit in it; CR/LF would split the request).
_TOKEN_VALUE = re.compile(r"[\x21-\x7e]+")


class Token(msgspec.Struct, frozen=True):
    """An access token and when it expires (seconds since the epoch on the client's
    ``clock``; ``None``: never). Its repr never shows the value.

    The value must be a non-empty ``str`` of visible ASCII characters (no spaces,
    CR/LF or other control characters), checked here, before any I/O: an
    `InvalidRequestError` that never quotes the value (a ``fetch()`` returning such a
    token fails the call with `AuthError`).

    >>> Token("abc", 1700000000.0)
    Token(value=[redacted], expires_at=1700000000.0)
    """

    value: str
    expires_at: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise InvalidRequestError(f"Token value must be a str, got {type(self.value).__name__}")
        if _TOKEN_VALUE.fullmatch(self.value) is None:
            raise InvalidRequestError(  # (the value itself is a secret: never quoted)
                "Token value must be a non-empty str of visible ASCII characters: no "
                "spaces, CR/LF or other control characters"
            )
        expires_at = self.expires_at
        if expires_at is not None and (
            isinstance(expires_at, bool)
            or not isinstance(expires_at, (int, float))
            or not math.isfinite(expires_at)
        ):
            raise InvalidRequestError(
                "Token expires_at must be seconds since the epoch (a finite number) or "
                f"None, got {expires_at!r}"
            )

    def __repr__(self) -> str:
        return f"Token(value=[redacted], expires_at={self.expires_at!r})"

    def __rich_repr__(self) -> list[tuple[str, Any]]:  # pragma: no cover - rich only
        return [("value", "[redacted]"), ("expires_at", self.expires_at)]


TokenFetch = Callable[[], Token | Awaitable[Token]]


class BearerToken(Auth):
    """``Authorization: Bearer <token>``, the token from ``fetch()`` (sync or async).

    - A token within ``refresh_margin`` seconds of its ``expires_at`` is refreshed by
      the next use; an expired token is never sent.
    - Single-flight: however many calls (of one event loop) find the token stale at
      once, one ``fetch`` runs and they all wait for it. A failing ``fetch`` raises
      `AuthError` (the original as ``__cause__``) to every waiter; the next call
      fetches again. A cancelled caller does not cancel the fetch the others wait for.
    - A sync ``fetch`` runs in a worker thread (``asyncio.to_thread``), so a slow one
      does not stop the event loop; an async one runs on the loop.
    - Waiting for a token counts against the attempt: a call waits at most its
      ``timeout``'s ``total`` (cut to what is left of its ``deadline``), and a fetch
      runs at most that long for the call that started it; past it, `AuthError` (a
      ``TimeoutError`` as ``__cause__``), and the next call fetches again.
    - A 401 to a request carrying the current token refreshes it once and the attempt
      is repeated with the new one.
    - One `BearerToken` may serve several clients, blocking ones included (each
      event loop has its own single flight; the token is shared).

    >>> BearerToken(lambda: Token("abc"))
    BearerToken(refresh_margin=60.0)
    """

    def __init__(self, fetch: TokenFetch, *, refresh_margin: float = 60.0) -> None:
        if not callable(fetch):
            raise InvalidRequestError(f"fetch must be callable, got {type(fetch).__name__}")
        if (
            isinstance(refresh_margin, bool)
            or not isinstance(refresh_margin, (int, float))
            or not 0 <= refresh_margin < math.inf
        ):
            raise InvalidRequestError(
                f"refresh_margin must be a finite number of seconds >= 0, got {refresh_margin!r}"
            )
        self._fetch = fetch
        self.refresh_margin = float(refresh_margin)
        self._token: Token | None = None
        # The refresh in flight on each event loop (a task belongs to one loop).
        self._pending: dict[asyncio.AbstractEventLoop, asyncio.Task[Token]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(refresh_margin={self.refresh_margin})"

    async def authenticate(self, request: Request, *, now: float) -> Request:
        token = self._token
        if token is None or not self._fresh(token, now):
            token = await self._wait(now, _wait_limit(request), Clocks.of(request))
        return request.with_headers({"Authorization": f"Bearer {token.value}"})

    async def on_unauthorized(self, request: Request, *, now: float) -> bool:
        token = self._token
        if token is not None and request.headers.get("Authorization") == f"Bearer {token.value}":
            self._token = None  # the server refused it: the next use fetches a new one
        return True

    async def token(self, *, now: float) -> Token:
        """The current token, fetched (once, for every concurrent caller) when stale."""
        token = self._token
        if token is not None and self._fresh(token, now):
            return token
        return await self._wait(now, None, DEFAULT_CLOCKS)

    def _fresh(self, token: Token, now: float) -> bool:
        return token.expires_at is None or now < token.expires_at - self.refresh_margin

    async def _wait(self, now: float, limit: float | None, clocks: Clocks) -> Token:
        loop = asyncio.get_running_loop()
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = loop.create_task(self._refresh(now, limit, clocks))
            pending.add_done_callback(self._settled)
        try:
            async with asyncio.timeout(limit):
                # Shielded: a cancelled caller does not cancel the fetch the others wait for.
                return await asyncio.shield(pending)
        except TimeoutError as error:  # (the fetch raises AuthError only: this timer)
            raise _timed_out(limit) from error

    def _settled(self, task: asyncio.Task[Token]) -> None:
        if self._pending.get(task.get_loop()) is task:
            del self._pending[task.get_loop()]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled

    async def fetch(self, *, now: float) -> Token:
        """One new token: the ``fetch`` given, called (and awaited when it returns an
        awaitable). ``now`` is the client's clock, for subclasses that compute expiry."""
        fetch = self._fetch
        if inspect.iscoroutinefunction(fetch) or inspect.iscoroutinefunction(type(fetch).__call__):
            result = fetch()
        else:  # a sync fetch (a vault client, a file) must not block the event loop
            result = await asyncio.to_thread(fetch)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _obtain(self, now: float, clocks: Clocks) -> Token:
        """`fetch`, for a call whose client has these ``clocks`` (a subclass that
        sleeps or retries, such as the OAuth 2.0 grant, uses them)."""
        return await self.fetch(now=now)

    async def _refresh(self, now: float, limit: float | None, clocks: Clocks) -> Token:
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                token = await self._obtain(now, clocks)
        except AuthError:
            raise  # (already says why: the token endpoint's answer was not a token)
        except StackwireError as error:
            raise AuthError(f"Could not obtain a token: {type(error).__name__}: {error}") from error
        except Exception as error:
            if timer.expired():
                raise _timed_out(limit) from error
            raise AuthError(
                f"Could not obtain a token: fetch() raised {type(error).__name__}"
            ) from error
        if not isinstance(token, Token):
            raise AuthError(f"fetch() must return a Token, got {type(token).__name__}")
        if token.expires_at is not None and token.expires_at <= now:
            raise AuthError("fetch() returned a token that has already expired")
        self._token = token
        return token


def _timed_out(limit: float | None) -> AuthError:
    return AuthError(
        f"Could not obtain a token within {limit:.3g} s (the attempt's timeout, or what was "
        "left of the deadline): fetch() has not returned; raise timeout= to wait longer"
    )


def _wait_limit(request: Request) -> float | None:
    """How long an attempt may wait for a token: its ``total`` timeout, cut to what is
    left of the call's deadline (``None``: no limit)."""
    timeout: Any = request.options.timeout
    if isinstance(timeout, NotGiven):
        timeout = DEFAULT_TIMEOUT
    total = timeout.total if isinstance(timeout, Timeout) else timeout
    if total is not None and not math.isfinite(total):
        total = None
    if request.deadline_at is not None:
        left = max(request.deadline_at - Clocks.of(request).monotonic(), 0.0)
        total = left if total is None else min(total, left)
    return total


HEADERS_CHECKED.add(BearerToken.authenticate)  # (its value is a checked `Token`)
