"""`OAuth2ClientCredentials`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlencode

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._http.urls import shown_url
from .._version import __version__
from ..errors import AuthError, InvalidRequestError, StackwireError
from ..middlewares.decode import DecodeMiddleware
from ..middlewares.redirects import RedirectMiddleware
from ..middlewares.retry import RetryMiddleware, check_max_retries
from ..middlewares.timeout import TimeoutMiddleware
from ..pipeline.clocks import DEFAULT_CLOCKS, Clocks
from ..pipeline.options import RequestOptions, Timeout
from ..pipeline.pipeline import Pipeline
from ..pipeline.request import CREDENTIALS_DROPPED, Request
from ..pipeline.secrets import hide_secrets
from ..transports.aiohttp_transport import AiohttpTransport
from ._base import BELOW
from ._bearer import BearerToken, Token

__all__ = ["OAuth2ClientCredentials"]


# A scope-token of RFC 6749 §3.3: visible ASCII but space, '"' and backslash.
_SCOPE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


class _TokenResponse(msgspec.Struct):
    access_token: str
    token_type: str = "bearer"
    expires_in: float | None = None


def _no_fetch() -> Token:  # pragma: no cover - replaced by OAuth2ClientCredentials.fetch
    raise NotImplementedError


class OAuth2ClientCredentials(BearerToken):
    """A `BearerToken` whose fetch is the client-credentials grant.

    ``POST token_url`` with the form ``grant_type=client_credentials``, ``scope`` (the
    ``scopes`` joined by spaces; left out when empty) and ``audience`` (when given),
    the client authenticated by HTTP Basic (RFC 6749 §2.3.1: id and secret
    form-urlencoded, then base64), or, with ``client_auth="body"``, by ``client_id``
    and ``client_secret`` in the form. The answer's ``expires_in`` sets the token's
    expiry on the client's clock.

    The grant goes over its own small stackwire stack (``timeout``, ``max_retries``
    retries, typed decoding and errors; redirects are not followed) to ``token_url``,
    wherever that is, sent through the calling client's transport (what is below its
    ``auth`` stage: the same pool, proxy and TLS settings, and in tests the same
    `MockTransport` or `Cassette`, so a token endpoint can be mocked and replayed);
    a `fetch` outside a client's call uses a transport of its own. The secret never
    appears in a message, repr or log line.

    >>> auth = OAuth2ClientCredentials("https://auth.example.com/token", "app", "s3cret")
    >>> "s3cret" in repr(auth)
    False
    """

    def __init__(
        self,
        token_url: str | URL,
        client_id: str,
        client_secret: str,
        *,
        scopes: Iterable[str] = (),
        audience: str | None = None,
        client_auth: str = "basic",
        refresh_margin: float = 60.0,
        max_retries: int = 2,
        timeout: Timeout | float | None = 30.0,
    ) -> None:
        super().__init__(_no_fetch, refresh_margin=refresh_margin)
        if not isinstance(token_url, (str, URL)):
            raise InvalidRequestError(
                f"token_url must be an http(s) URL, got {type(token_url).__name__}"
            )
        try:
            url = URL(token_url)
        except (TypeError, ValueError) as exc:
            raise InvalidRequestError("token_url is not a valid URL") from exc
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidRequestError(f"token_url must be an http(s) URL, got {shown_url(url)!r}")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise InvalidRequestError("client_id and client_secret must be str")
        if client_auth not in ("basic", "body"):
            raise InvalidRequestError(f"client_auth must be 'basic' or 'body', got {client_auth!r}")
        if isinstance(scopes, (str, bytes)):
            raise InvalidRequestError(
                f"scopes must be an iterable of scope names, not one {type(scopes).__name__} "
                "(scopes=['read', 'write'], not 'read write')"
            )
        self.scopes = tuple(scopes)
        if not all(isinstance(scope, str) and _SCOPE.fullmatch(scope) for scope in self.scopes):
            raise InvalidRequestError(
                "each scope must be a non-empty str of visible ASCII characters without "
                "spaces, '\"' or '\\' (RFC 6749 §3.3)"
            )
        if audience is not None and not isinstance(audience, str):
            raise InvalidRequestError(f"audience must be a str or None, got {audience!r}")
        self.token_url = url
        self.client_id = client_id
        self._client_secret = client_secret
        self.audience = audience
        self.client_auth = client_auth
        self.max_retries = check_max_retries(max_retries)
        self.timeout = Timeout.coerce(timeout)

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={shown_url(self.token_url)!r}, "
            f"client_id={self.client_id!r}, client_secret=[redacted])"
        )

    def _form(self) -> dict[str, object]:
        form: dict[str, object] = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if self.audience is not None:
            form["audience"] = self.audience
        if self.client_auth == "body":
            form["client_id"] = self.client_id
            form["client_secret"] = self._client_secret
        return form

    def _headers(self) -> dict[str, str]:
        if self.client_auth != "basic":
            return {}
        # RFC 6749 §2.3.1: each form-urlencoded (Appendix B: a space is "+") first.
        pair = f"{quote_plus(self.client_id)}:{quote_plus(self._client_secret)}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    def _secrets(self) -> tuple[str, ...]:
        """The forms of the client secret a token endpoint could echo back: as given,
        as encoded in the form or the Basic credentials, and those credentials."""
        secret = self._client_secret
        forms = {secret, quote(secret, safe=""), quote_plus(secret)}
        forms.update(value.partition(" ")[2] for value in self._headers().values())
        return tuple(sorted((form for form in forms if form), key=len, reverse=True))

    async def fetch(self, *, now: float) -> Token:
        return await self._obtain(now, DEFAULT_CLOCKS)

    sends_below = True

    async def _obtain(self, now: float, clocks: Clocks) -> Token:
        # The grant is an HTTP call with retries and timeouts: a small stack of the
        # built-in middlewares over what is below the client's ``auth`` stage (its
        # transport: its pool, proxy and TLS settings, or a MockTransport or Cassette
        # in tests), or, for a fetch() outside a client's call, over a transport of its
        # own, closed after the call. Its backoff sleeps on the calling client's
        # ``sleep`` (an injected one in tests).
        below = BELOW.get()
        transport = None
        if below is None:
            transport = AiohttpTransport()
            below = transport.send
        handler = Pipeline(
            [
                TimeoutMiddleware(self.timeout),
                RetryMiddleware(
                    max_retries=self.max_retries, sleep=clocks.sleep, clock=clocks.clock
                ),
                DecodeMiddleware(),
                RedirectMiddleware(follow_redirects=False),
            ]
        ).compose(below)
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": f"stackwire/{__version__}",
            **self._headers(),
        }
        request = Request(
            method="POST",
            url=self.token_url,
            headers=CIMultiDictProxy(CIMultiDict(headers)),
            body=urlencode(self._form()).encode("ascii"),
            options=RequestOptions(cast_to=_TokenResponse),
            # Its own credentials only: a borrowed session's (default headers, cookie
            # jar) stay off the grant, wherever token_url is.
            extensions={CREDENTIALS_DROPPED: True},
        )
        try:
            response = await handler(request)
        except StackwireError as error:
            # A token endpoint may quote what it was sent (the secret, in the form or
            # the Basic credentials) in its error: never shown past here.
            hide_secrets(error, self._secrets())
            raise
        finally:
            if transport is not None:
                await transport.close()
        answer = response.parsed
        assert isinstance(answer, _TokenResponse)
        if answer.token_type.lower() != "bearer":
            raise AuthError(f"The token endpoint gave a {answer.token_type!r} token, not a bearer")
        if answer.expires_in is not None and answer.expires_in <= 0:
            # (Honoured: a token already expired is never sent.)
            raise AuthError(
                f"The token endpoint {shown_url(self.token_url)} gave expires_in="
                f"{answer.expires_in:g}: the token has already expired"
            )
        expires_at = None if answer.expires_in is None else now + answer.expires_in
        return Token(answer.access_token, expires_at)
