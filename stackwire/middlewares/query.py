"""The ``query`` middleware: the client's default query, then the request's, encoded.

What it does: merges the client's ``query=`` with the request's ``query`` (a key the
request gives replaces the client's; ``None`` or `Omit` removes it, ``NOT_GIVEN``
keeps the client's), encodes them with the client's formats
(booleans as ``true``/``false``, ``None`` dropped, arrays per ``query_array_format``,
mappings per ``query_nested_format``; see `stackwire._http.query`) and appends them to
the URL, after any query already written in the path (a name given in ``query=``
replaces the same name written there, which replaces the client's default). It passes
on ``query=None``. A secret-looking default (``key``, ``api_key``, ``token``, ...: an API
key sent in the query) goes only to requests for ``origin`` (the client's
``base_url``): it is a credential, scoped like the credential headers.

Where it sits: above ``retry``: the URL is the same for every attempt.

Defaults: no default query; ``repeat`` arrays, ``brackets`` mappings.

Retries and timeouts: none; bad values raise `InvalidRequestError` before any I/O.
"""

from __future__ import annotations

from collections.abc import Mapping

from msgspec.structs import replace
from yarl import URL

from .._http.query import (
    ARRAY_FORMATS,
    NESTED_FORMATS,
    ArrayFormat,
    NestedFormat,
    encode_params,
    split_written,
)
from .._http.redaction import is_secret_param
from .._types import NOT_GIVEN
from ..errors import InvalidRequestError
from ..pipeline.middleware import RequestRewriter, pure_rewrite
from ..pipeline.request import Request
from .redirects import origin_of

__all__ = ["QueryMiddleware"]


class QueryMiddleware(RequestRewriter):
    """Merges and encodes the query; see the module docs."""

    name = "query"

    def __init__(
        self,
        query: Mapping[str, object] | None = None,
        *,
        array_format: ArrayFormat = "repeat",
        nested_format: NestedFormat = "brackets",
        origin: URL | None = None,
    ) -> None:
        if not isinstance(array_format, str) or array_format not in ARRAY_FORMATS:
            raise InvalidRequestError(
                f"query_array_format must be one of {sorted(ARRAY_FORMATS)}, got {array_format!r}"
            )
        if not isinstance(nested_format, str) or nested_format not in NESTED_FORMATS:
            raise InvalidRequestError(
                f"query_nested_format must be one of {sorted(NESTED_FORMATS)}, "
                f"got {nested_format!r}"
            )
        self.array_format: ArrayFormat = array_format
        self.nested_format: NestedFormat = nested_format
        self.default_query: dict[str, object] = dict(query or {})
        # Encoded once: a call without its own query reuses these pairs.
        self._default_pairs = self._encode(self.default_query)
        # A secret-looking default (``key=``, ``api_key=``: an API key sent in the query)
        # is a credential: it goes only to ``origin``'s requests, as credential headers
        # do (an absolute URL to another origin gets the other defaults, not it).
        secret = {name for name in self.default_query if is_secret_param(str(name))}
        self._origin = origin_of(origin) if origin is not None and secret else None
        self._public_query = {
            name: value for name, value in self.default_query.items() if name not in secret
        }
        self._public_pairs = self._encode(self._public_query)

    def _encode(self, params: Mapping[str, object]) -> list[tuple[str, str]]:
        return encode_params(
            params, array_format=self.array_format, nested_format=self.nested_format
        )

    @pure_rewrite
    def rewrite(self, request: Request) -> Request:
        own = request.query
        defaults = self.default_query
        default_pairs = self._default_pairs
        if self._origin is not None and origin_of(request.url) != self._origin:
            defaults, default_pairs = self._public_query, self._public_pairs
        if own:
            merged = {**defaults, **own}
            if defaults:
                for name, value in own.items():
                    # ``NOT_GIVEN``: as if the call had not named it, the client's value.
                    if value is NOT_GIVEN and name in defaults:
                        merged[name] = defaults[name]
            pairs = self._encode(merged)
        elif default_pairs:
            pairs = default_pairs
        else:
            return request if own is None else replace(request, query=None)
        url = request.url
        if url.raw_query_string:  # a query written in the path: see `_over_written`
            return replace(request, url=self._over_written(url, own, defaults), query=None)
        return replace(request, url=url.extend_query(pairs), query=None)

    def _over_written(
        self, url: URL, own: Mapping[str, object] | None, client_query: Mapping[str, object]
    ) -> URL:
        """``url``, whose path came with a query, with the client's and the call's
        parameters: a name the call's ``query=`` gives replaces the same name written
        in the path (``"/items?limit=10"`` with ``query={"limit": 20}`` sends
        ``limit=20``, not both), and a name written in the path replaces the client's
        default, so the more specific of the three wins. ``None``, `Omit` and
        ``NOT_GIVEN`` in ``query=`` replace nothing written."""
        own = own or {}
        defaults = {
            name: value
            for name, value in client_query.items()
            if name not in own or own[name] is NOT_GIVEN
        }
        own_pairs = self._encode(own)
        written, names = split_written(url.raw_query_string, {name for name, _ in own_pairs})
        default_pairs = [pair for pair in self._encode(defaults) if pair[0] not in names]
        bare = URL.build(
            scheme=url.scheme,
            authority=url.raw_authority,
            path=url.raw_path,
            query_string=written,
            encoded=True,
        )
        return bare.extend_query(default_pairs + own_pairs)

    def __repr__(self) -> str:
        return (
            f"QueryMiddleware(array_format={self.array_format!r}, "
            f"nested_format={self.nested_format!r})"
        )
