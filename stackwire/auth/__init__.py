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
"""

from ..errors import AuthError
from ._base import AUTH_OVERRIDE, Auth, AuthMiddleware, BasicAuth, Signer
from ._bearer import BearerToken, Token
from ._oauth2 import OAuth2ClientCredentials

__all__ = [
    "AUTH_OVERRIDE",
    "Auth",
    "AuthError",
    "AuthMiddleware",
    "BasicAuth",
    "BearerToken",
    "OAuth2ClientCredentials",
    "Signer",
    "Token",
]
