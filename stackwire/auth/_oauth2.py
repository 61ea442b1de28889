"""`OAuth2ClientCredentials`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from urllib.parse import quote, urlencode

import msgspec
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .._version import __version__
from ..errors import AuthError, InvalidRequestError
from ..middlewares.decode import DecodeMiddleware
from ..middlewares.redirects import RedirectMiddleware
from ..middlewares.retry import RetryMiddleware
from ..middlewares.timeout import TimeoutMiddleware
from ..pipeline.options import RequestOptions, Timeout
from ..pipeline.pipeline import Pipeline
from ..pipeline.request import Request
from ..transports.aiohttp_transport import AiohttpTransport
from ._bearer import BearerToken, Token

__all__ = ["OAuth2ClientCredentials"]


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
    wherever that is; the secret never appears in a
    message, repr or log line.

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
        url = URL(token_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise InvalidRequestError(f"token_url must be an http(s) URL, got {str(url)!r}")
        if not isinstance(client_id, str) or not isinstance(client_secret, str):
            raise InvalidRequestError("client_id and client_secret must be str")
        if client_auth not in ("basic", "body"):
            raise InvalidRequestError(f"client_auth must be 'basic' or 'body', got {client_auth!r}")
        self.scopes = tuple(scopes)
        if not all(isinstance(scope, str) and scope for scope in self.scopes):
            raise InvalidRequestError("scopes must be non-empty strs")
        self.token_url = url
        self.client_id = client_id
        self._client_secret = client_secret
        self.audience = audience
        self.client_auth = client_auth
        self.max_retries = max_retries
        self.timeout = timeout

    def __repr__(self) -> str:
        return (
            f"OAuth2ClientCredentials(token_url={str(self.token_url)!r}, "
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
        pair = f"{quote(self.client_id, safe='')}:{quote(self._client_secret, safe='')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}

    async def fetch(self, *, now: float) -> Token:
        # The grant is an HTTP call with retries and timeouts: a small stack of the
        # built-in middlewares over a transport of its own, closed after the call.
        transport = AiohttpTransport()
        handler = Pipeline(
            [
                TimeoutMiddleware(self.timeout),
                RetryMiddleware(max_retries=self.max_retries),
                DecodeMiddleware(),
                RedirectMiddleware(follow_redirects=False),
            ]
        ).compose(transport.send)
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
        )
        try:
            response = await handler(request)
        finally:
            await transport.close()
        answer = response.parsed
        assert isinstance(answer, _TokenResponse)
        if answer.token_type.lower() != "bearer":
            raise AuthError(f"The token endpoint gave a {answer.token_type!r} token, not a bearer")
        expires_at = None if answer.expires_in is None else now + answer.expires_in
        return Token(answer.access_token, expires_at)
