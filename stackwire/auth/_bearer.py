"""`Token` and `BearerToken`: a refreshed, single-flight bearer token."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

import msgspec

from ..errors import AuthError, InvalidRequestError, StackwireError
from ..pipeline import Request
from ._base import Auth

__all__ = ["BearerToken", "Token"]


class Token(msgspec.Struct, frozen=True):
    """An access token and when it expires (seconds since the epoch on the client's
    ``clock``; ``None``: never). Its repr never shows the value.

    >>> Token("abc", 1700000000.0)
    Token(value=[redacted], expires_at=1700000000.0)
    """

    value: str
    expires_at: float | None = None

    def __repr__(self) -> str:
        return f"Token(value=[redacted], expires_at={self.expires_at!r})"


TokenFetch = Callable[[], Token | Awaitable[Token]]


class BearerToken(Auth):
    """``Authorization: Bearer <token>``, the token from ``fetch()`` (sync or async).

    - A token within ``refresh_margin`` seconds of its ``expires_at`` is refreshed by
      the next use; an expired token is never sent.
    - Single-flight: however many calls find the token stale at once, one ``fetch``
      runs and they all wait for it. A failing ``fetch`` raises `AuthError` (the
      original as ``__cause__``) to every waiter; the next call fetches again.
    - A 401 to a request carrying the current token refreshes it once and the attempt
      is repeated with the new one.

    >>> BearerToken(lambda: Token("abc"))
    BearerToken(refresh_margin=60.0)
    """

    def __init__(self, fetch: TokenFetch, *, refresh_margin: float = 60.0) -> None:
        if not callable(fetch):
            raise InvalidRequestError(f"fetch must be callable, got {type(fetch).__name__}")
        if (
            isinstance(refresh_margin, bool)
            or not isinstance(refresh_margin, (int, float))
            or not refresh_margin >= 0
        ):
            raise InvalidRequestError(
                f"refresh_margin must be a number of seconds >= 0, got {refresh_margin!r}"
            )
        self._fetch = fetch
        self.refresh_margin = float(refresh_margin)
        self._token: Token | None = None
        self._pending: asyncio.Task[Token] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(refresh_margin={self.refresh_margin})"

    async def authenticate(self, request: Request, *, now: float) -> Request:
        token = await self.token(now=now)
        return request.with_headers({"Authorization": f"Bearer {token.value}"})

    async def on_unauthorized(self, request: Request, *, now: float) -> bool:
        token = self._token
        if token is not None and request.headers.get("Authorization") == f"Bearer {token.value}":
            self._token = None  # the server refused it: the next use fetches a new one
        return True

    async def token(self, *, now: float) -> Token:
        """The current token, fetched (once, for every concurrent caller) when stale."""
        token = self._token
        if token is not None and (
            token.expires_at is None or now < token.expires_at - self.refresh_margin
        ):
            return token
        pending = self._pending
        if pending is None:
            pending = self._pending = asyncio.ensure_future(self._refresh(now))
            pending.add_done_callback(self._settled)
        # Shielded: a cancelled caller does not cancel the fetch the others wait for.
        return await asyncio.shield(pending)

    def _settled(self, task: asyncio.Task[Token]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter was cancelled

    async def fetch(self, *, now: float) -> Token:
        """One new token: the ``fetch`` given, called (and awaited when it returns an
        awaitable). ``now`` is the client's clock, for subclasses that compute expiry."""
        result = self._fetch()
        if inspect.isawaitable(result):
            result = await result
        return result

    async def _refresh(self, now: float) -> Token:
        try:
            token = await self.fetch(now=now)
        except StackwireError as error:
            raise AuthError(f"Could not obtain a token: {type(error).__name__}: {error}") from error
        except Exception as error:
            raise AuthError(
                f"Could not obtain a token: fetch() raised {type(error).__name__}"
            ) from error
        if not isinstance(token, Token):
            raise AuthError(f"fetch() must return a Token, got {type(token).__name__}")
        if token.expires_at is not None and token.expires_at <= now:
            raise AuthError("fetch() returned a token that has already expired")
        self._token = token
        return token
