"""The `Auth` contract, the ``auth`` stage that runs it, `BasicAuth` and `Signer`."""

from __future__ import annotations

import base64
import inspect
import re
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any

from yarl import URL

from ..errors import AuthError, InvalidRequestError, StackwireError
from ..middlewares import CREDENTIALS_DROPPED, origin_of
from ..middlewares.headers import check_header
from ..pipeline import CallNext, ExtensionKey, Request, Response, is_replayable

__all__ = ["AUTH_OVERRIDE", "BELOW", "Auth", "AuthMiddleware", "BasicAuth", "Signer"]


BELOW: ContextVar[CallNext | None] = ContextVar("stackwire_auth_below", default=None)
"""While the ``auth`` stage runs an `Auth` whose ``sends_below`` is true: what is below
the stage in the client's stack (its transport, through any innermost middleware),
for the requests the `Auth` sends itself (`OAuth2ClientCredentials`' grant), so that
they go where the client's go: its pool, proxy and TLS settings, or a `MockTransport`
or `Cassette` in tests. Tasks started meanwhile (a single-flight fetch) see it too."""


class Auth:
    """The base of an authentication provider.

    A subclass implements ``authenticate(request, now=...)``: return a copy of
    ``request`` carrying the credential (``request.with_headers({...})``). ``now`` is the
    client's ``clock()`` (seconds since the epoch). It may also implement
    ``on_unauthorized(request, now=...)``: called when ``request`` (as authenticated)
    got a 401; return ``True`` to have the attempt repeated once with a fresh
    ``authenticate`` (after refreshing whatever was stale), ``False`` to hand the 401 up.

    The ``auth`` stage calls it only for requests to the origin of the client's
    ``base_url``; any other origin gets no credential. Failures to obtain a credential
    should raise `AuthError` (never retried) with the original as ``__cause__``, and
    never put a secret in a message or a repr; the stage turns any other exception of
    ``authenticate`` (or a result that is not a `Request`) into one, and checks the
    headers it added (CR/LF, names) before anything is sent.
    """

    sends_below: bool = False
    """Whether `authenticate` may send requests of its own, through `BELOW`."""

    async def authenticate(self, request: Request, *, now: float) -> Request:
        """``request`` with the credential added."""
        raise NotImplementedError

    async def on_unauthorized(self, request: Request, *, now: float) -> bool:
        """Whether to repeat the attempt once after a 401 (default: no)."""
        return False


# Control characters (RFC 5234 CTL), which RFC 7617 forbids in Basic credentials.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BasicAuth(Auth):
    """``Authorization: Basic <base64(username:password)>`` on every request.

    >>> BasicAuth("alice", "s3cret")
    BasicAuth(username='alice', password=[redacted])
    """

    def __init__(self, username: str, password: str) -> None:
        if not isinstance(username, str) or ":" in username:
            raise InvalidRequestError("BasicAuth username must be a str without ':'")
        if not isinstance(password, str):
            raise InvalidRequestError("BasicAuth password must be a str")
        # RFC 7617 §2: no control characters in either (never quoted: a secret).
        for field, value in (("username", username), ("password", password)):
            if _CONTROL.search(value) is not None:
                raise InvalidRequestError(
                    f"BasicAuth {field} must not contain control characters (RFC 7617)"
                )
        self.username = username
        self._header = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode(
            "ascii"
        )

    async def authenticate(self, request: Request, *, now: float) -> Request:
        return request.with_headers({"Authorization": self._header})

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password=[redacted])"


class Signer(Auth):
    """The base of a request signer (HMAC, cloud request signatures).

    A subclass implements ``sign(request) -> Request``. It is called last on every
    attempt and every redirect hop to the base URL's origin, with the final headers
    (everything but what the transport adds: ``Host``, ``Content-Length`` /
    ``Transfer-Encoding``, ``Accept-Encoding``; ``X-Retry-Count``, the idempotency key
    and every user middleware's headers are there) and the final body as bytes
    (``request.body`` is ``bytes`` or ``None``). A streamed body (an async iterable)
    cannot be signed from bytes: such a request raises `InvalidRequestError` before
    any I/O; send ``content=`` as bytes instead.
    """

    def sign(self, request: Request, /) -> Request | Awaitable[Request]:
        """``request`` with its signature added (a copy). It may be a coroutine
        function (``async def sign``), for a signer that fetches its key."""
        raise NotImplementedError

    async def authenticate(self, request: Request, *, now: float) -> Request:
        if request.body is not None and not isinstance(request.body, bytes):
            raise InvalidRequestError(
                f"{type(self).__name__} signs the body bytes, but this request has a "
                "streamed body; pass content= as bytes to sign it"
            )
        signed = self.sign(request)
        if inspect.isawaitable(signed):
            return await signed
        return signed


# A per-request ``auth=``: a 1-tuple, so that ``(None,)`` (no credential) differs from
# "not given" (no extension at all).
AUTH_OVERRIDE: ExtensionKey[tuple[Auth | None]] = ExtensionKey("stackwire.auth")


class AuthMiddleware:
    """The ``auth`` stage: runs an `Auth` on every attempt and redirect hop.

    What it does: for a request to the origin of ``base_url``, asks the `Auth` for the
    credential (``authenticate``) and sends the result; on a 401, when the `Auth`
    says so (``on_unauthorized``, e.g. a refreshed token), releases that response and
    repeats the attempt once; a second 401 is handed up (``decode`` raises
    `AuthenticationError`). A request to any other origin is sent untouched. A
    per-request override (``auth=`` on a verb) replaces the client's `Auth` for that
    call; ``None`` sends no credential.

    Where it sits: innermost, below ``redirects`` and every ``middlewares=`` stage, just
    above the transport, so it sees each hop (and its origin) and signs last, with the
    final headers. It is in the pipeline only when the client has an ``auth=``.

    Defaults: none; the clock is the client's ``clock`` (for token expiry).

    Retries and timeouts: it runs once per attempt, so each attempt carries the current
    credential; the repeat after a 401 belongs to the same attempt (same
    ``X-Retry-Count``, not counted in ``retries_taken`` nor against ``max_retries``) and
    runs under the attempt's timeout. A credential that cannot be obtained raises
    `AuthError`, which ``retry`` never retries.
    """

    name = "auth"

    def __init__(
        self,
        auth: Auth | None,
        *,
        base_url: URL | str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if auth is not None and not isinstance(auth, Auth):
            raise InvalidRequestError(f"auth must be an Auth or None, got {type(auth).__name__}")
        self.auth = auth
        self._origin = origin_of(URL(base_url))
        self.clock = clock

    async def __call__(self, request: Request, call_next: CallNext) -> Response[Any]:
        auth = self.auth
        override = request.extension(AUTH_OVERRIDE)
        if override is not None:
            auth = override[0]
        if (
            auth is None
            or origin_of(request.url) != self._origin
            or request.extension(CREDENTIALS_DROPPED)
        ):
            return await call_next(request)
        sent = await _authenticate(auth, request, self.clock(), call_next)
        response = await call_next(sent)
        if response.status_code != 401:
            return response
        try:
            repeat = await auth.on_unauthorized(sent, now=self.clock())
        except BaseException as error:
            response.close()  # (the 401 is not handed up: its connection goes back now)
            if isinstance(error, Exception) and not isinstance(error, StackwireError):
                raise AuthError(
                    f"{type(auth).__name__}.on_unauthorized() raised {type(error).__name__}"
                ) from error
            raise
        if not repeat or not is_replayable(request.body):
            # (A spent stream cannot be sent again: the 401 goes up, but the refused
            # credential is refreshed by the next call all the same.)
            return response
        response.close()
        return await call_next(await _authenticate(auth, request, self.clock(), call_next))

    def __repr__(self) -> str:
        return f"AuthMiddleware({self.auth!r})"


async def _authenticate(auth: Auth, request: Request, now: float, below: CallNext) -> Request:
    """``auth.authenticate(request)``, held to the contract: a failure of an `Auth`
    of the application's writing is an `AuthError` (the original as ``__cause__``),
    and a header it added is checked like any other before it reaches the wire (a
    CR/LF in one made aiohttp raise a bare ``ValueError`` at send). An `Auth` that
    sends requests of its own (``sends_below``) finds ``below`` in `BELOW` meanwhile."""
    try:
        if auth.sends_below:
            token = BELOW.set(below)
            try:
                sent = await auth.authenticate(request, now=now)
            finally:
                BELOW.reset(token)
        else:
            sent = await auth.authenticate(request, now=now)
    except StackwireError:
        raise
    except Exception as error:
        raise AuthError(
            f"{type(auth).__name__}.authenticate() raised {type(error).__name__}; "
            "no credential, so the request was not sent"
        ) from error
    if not isinstance(sent, Request):
        raise AuthError(
            f"{type(auth).__name__}.authenticate() must return a Request, got {type(sent).__name__}"
        )
    before = request.headers
    if sent.headers is not before and type(auth).authenticate not in HEADERS_CHECKED:
        for name, value in sent.headers.items():
            if before.get(name) is not value:
                check_header(name, value)
    return sent


# The ``authenticate`` methods whose headers need no check: their values are checked
# where they are made (`Token`, Basic credentials in base64). Saves the check: about
# 11,800 instructions an attempt (the stage alone under callgrind, N vs 2N calls).
HEADERS_CHECKED: set[Callable[..., Awaitable[Request]]] = {BasicAuth.authenticate}
