"""Authentication (DESIGN §9): credentials added to every attempt and redirect hop.

Give a client ``auth=`` one of these (or your own `Auth` subclass):

- `BearerToken`: ``Authorization: Bearer <token>`` from a ``fetch()`` you supply,
  refreshed ahead of expiry, single-flight, refreshed once on a 401.
- `OAuth2ClientCredentials`: a `BearerToken` whose fetch is the OAuth 2.0
  client-credentials grant.
- `BasicAuth`: ``Authorization: Basic ...``.
- `Signer`: the base of request signers (HMAC, cloud signatures), called last with the
  final headers and body bytes.

`AuthMiddleware` is the pipeline stage that runs them (innermost, below ``redirects``).
An `Auth` that sends requests of its own (a token grant) sets ``sends_below`` and
sends them through `BELOW`, what is below the stage: the client's transport.
"""

from ..errors import AuthError
from ._base import AUTH_OVERRIDE, BELOW, Auth, AuthMiddleware, BasicAuth, Signer
from ._bearer import BearerToken, Token
from ._oauth2 import OAuth2ClientCredentials

__all__ = [
    "AUTH_OVERRIDE",
    "BELOW",
    "Auth",
    "AuthError",
    "AuthMiddleware",
    "BasicAuth",
    "BearerToken",
    "OAuth2ClientCredentials",
    "Signer",
    "Token",
]
