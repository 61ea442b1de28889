"""`LoggingMiddleware`: one DEBUG line per attempt, nothing secret in it.

What it does: for every attempt that passes through it, one line on the
``"stackwire"`` logger (or the one given) at DEBUG::

    GET http://api.test/v1/u?limit=10&key=[redacted] -> 200 in 3.1 ms (attempt 0, new connection)

the method, the URL (redacted), the status or the class name of the error, the time
until the response headers, the attempt number, and whether the connection was
reused (``new``, ``reused`` or ``unknown`` when the transport cannot tell). The line
also carries these as ``record.stackwire`` (a dict) for structured formatters.

- ``query=``: query values are shown by allowlist: a parameter on
  `DEFAULT_QUERY_ALLOWLIST` or in ``query`` shows its value, any other shows
  ``[redacted]``.
- ``headers=``: ``False`` (default) prints no headers; ``True`` prints the request's
  and the response's, values by allowlist (`DEFAULT_HEADER_ALLOWLIST`); an iterable of
  names extends that list.
- ``body=True``: the request body (bytes) and a response body that has fully
  arrived with its headers, each cut to ``max_body_bytes`` (1024). A body still on
  the wire is not waited for (that would change when the call reads it): it shows
  as ``<not read>``; a stream as ``<stream>``.

Whatever the lists say, these never appear: URL userinfo, the values of
secret-looking query parameters (``key``, ``api_key``, ``apikey``, ``token``,
``access_token``, ``refresh_token``, ``sig``, ``signature``, ``password``, ``secret``,
``client_secret``, and names ending in them, such as ``X-Amz-Signature``), the values
of every always-sensitive header (``Authorization``, ``Proxy-Authorization``,
``Cookie``, ``Set-Cookie``, ``X-Api-Key``) and of the client's ``sensitive_headers``,
and those same credential values inside a printed body or another printed header
(a server may echo the key in ``WWW-Authenticate``), along with the secret query
values and URL password of the request, the userinfo of any URL in them, and any
``?key=...``-like parameter of a URL in them (a ``Location`` or ``Link`` header, an
error body quoting the URL). Error messages are not printed (a server may echo what
it was sent): the error's class name is.

Where it sits: below ``retry``, given with the client's ``middlewares=`` (between
``decode`` and ``redirects``), so it runs once per attempt and sees each attempt's raw
response, whatever its status, before ``decode`` turns it into an error. The retry
decisions themselves are logged by ``retry``, at INFO.

Defaults: logger ``"stackwire"``; no headers, no bodies; the allowlists below. With
DEBUG off for the logger it costs one ``isEnabledFor`` check per attempt and adds
no coroutine layer.

Retries and timeouts: one line per attempt, numbered like ``X-Retry-Count``; an
attempt that timed out logs ``APITimeoutError``; the duration excludes the backoff
sleeps (those are ``retry``'s INFO lines).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Coroutine, Iterable
from typing import Any
from urllib.parse import unquote_plus

from yarl import URL

from .._http.redaction import (
    DEFAULT_HEADER_ALLOWLIST,
    DEFAULT_QUERY_ALLOWLIST,
    REDACTED,
    is_secret_param,
    redact_headers,
    redact_url,
)
from .._logging import logger as stackwire_logger
from ..errors import InvalidRequestError
from ..pipeline.middleware import CallNext
from ..pipeline.request import ALWAYS_SENSITIVE_HEADERS, Request
from ..pipeline.response import Response

__all__ = ["DEFAULT_HEADER_ALLOWLIST", "DEFAULT_QUERY_ALLOWLIST", "LoggingMiddleware"]

_DEBUG = logging.DEBUG


class LoggingMiddleware:
    """One DEBUG line per attempt, redacted by allowlist; see the module docstring."""

    name = "logging"

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        headers: bool | Iterable[str] = False,
        query: Iterable[str] = (),
        body: bool = False,
        max_body_bytes: int = 1024,
    ) -> None:
        if logger is not None and not isinstance(logger, logging.Logger):
            raise InvalidRequestError(f"logger must be a logging.Logger, got {logger!r}")
        if isinstance(query, str):
            raise InvalidRequestError("query= takes an iterable of parameter names, not a str")
        if isinstance(headers, str):
            raise InvalidRequestError("headers= takes True, False or an iterable of names")
        if (
            isinstance(max_body_bytes, bool)
            or not isinstance(max_body_bytes, int)
            or max_body_bytes < 0
        ):
            # (a negative cap would slice from the end: nearly the whole body shown)
            raise InvalidRequestError(
                f"max_body_bytes must be an int of 0 or more, got {max_body_bytes!r}"
            )
        self.logger = logger if logger is not None else stackwire_logger
        self.query_allowlist = DEFAULT_QUERY_ALLOWLIST | {n.lower() for n in query}
        self.header_allowlist: frozenset[str] | None
        if headers is False:
            self.header_allowlist = None
        elif headers is True:
            self.header_allowlist = DEFAULT_HEADER_ALLOWLIST
        else:
            self.header_allowlist = DEFAULT_HEADER_ALLOWLIST | {n.lower() for n in headers}
        self.body = bool(body)
        self.max_body_bytes = max_body_bytes

    def __call__(
        self, request: Request, call_next: CallNext, /
    ) -> Coroutine[Any, Any, Response[Any]]:
        # Not a coroutine itself: with DEBUG off the attempt goes straight on, with
        # no layer of awaiting added (what this saves: one coroutine per attempt).
        if not self.logger.isEnabledFor(_DEBUG):
            return call_next(request)  # type: ignore[return-value]
        return self._logged(request, call_next)

    async def _logged(self, request: Request, call_next: CallNext) -> Response[Any]:
        started = time.monotonic()
        try:
            response = await call_next(request)
        except Exception as error:
            self._line(request, None, type(error).__name__, time.monotonic() - started)
            raise
        self._line(request, response, None, time.monotonic() - started)
        return response

    # -- the line ------------------------------------------------------------------

    def _line(
        self,
        request: Request,
        response: Response[Any] | None,
        error: str | None,
        duration: float,
    ) -> None:
        # The request that reached the network last (a redirect's final hop) is the
        # response's; its URL is the one shown, along with the first one's.
        sent = response.request if response is not None else request
        url = redact_url(request.url, allowed=self.query_allowlist)
        outcome = str(response.status_code) if response is not None else error
        record = response.timing_record if response is not None else None
        reused = record.reused if record is not None else None
        connection = "unknown" if reused is None else "reused" if reused else "new"
        fields: dict[str, Any] = {
            "method": request.method,
            "url": url,
            "status_code": response.status_code if response is not None else None,
            "error": error,
            "duration": duration,
            "attempt": request.attempt,
            "reused_connection": reused,
        }
        message = "%s %s -> %s in %.1f ms (attempt %d, %s connection)"
        args: list[Any] = [
            request.method,
            url,
            outcome,
            duration * 1000,
            request.attempt,
            connection,
        ]
        if sent is not request and sent.url != request.url:
            final = redact_url(sent.url, allowed=self.query_allowlist)
            message += " via %s"
            args.append(final)
            fields["final_url"] = final
        sensitive = ALWAYS_SENSITIVE_HEADERS | sent.sensitive_headers | request.sensitive_headers
        shows_values = self.header_allowlist is not None or self.body
        secrets = _secret_values(request, sensitive) if shows_values else []
        if shows_values and sent is not request:
            # The request as sent too: an ``auth`` stage below adds its credential there.
            secrets = sorted({*secrets, *_secret_values(sent, sensitive)}, key=len, reverse=True)
        if self.header_allowlist is not None:
            shown = redact_headers(
                request.headers.items(), sensitive=sensitive, allowed=self.header_allowlist
            )
            message += " request headers %s"
            args.append(_headers_text(shown, secrets))
            if response is not None:
                message += " response headers %s"
                args.append(
                    _headers_text(
                        redact_headers(
                            response.headers.items(),
                            sensitive=sensitive,
                            allowed=self.header_allowlist,
                        ),
                        secrets,
                    )
                )
        if self.body:
            message += " request body %s"
            args.append(self._body_text(request.body, secrets))
            if response is not None:
                message += " response body %s"
                args.append(self._response_body(response, secrets))
        self.logger.debug(message, *args, extra={"stackwire": fields})

    def _body_text(self, body: object, secrets: list[str]) -> str:
        if body is None:
            return "<none>"
        if not isinstance(body, (bytes, bytearray, memoryview)):
            return "<stream>"
        data = bytes(body)
        text = data[: self.max_body_bytes].decode("utf-8", errors="replace")
        for secret in secrets:
            text = text.replace(secret, REDACTED)
        if len(data) > self.max_body_bytes:
            text = _cut_secret_at_end(text, secrets)
        shown = repr(_hide_url_secrets(text))
        if len(data) > self.max_body_bytes:
            shown += f"... ({len(data)} bytes)"
        return shown

    def _response_body(self, response: Response[Any], secrets: list[str]) -> str:
        if response.request.options.stream:
            return "<stream>"
        if "Content-Encoding" in response.headers:
            return f"<{response.headers['Content-Encoding']}-coded body>"
        # The body if it has all arrived (the usual small JSON): taken now, kept by the
        # response, so ``decode`` reads the same bytes; else not waited for.
        data = response.read_now(self.max_body_bytes * 4)
        if data is None:
            return "<not read>"
        return self._body_text(data, secrets)

    def __repr__(self) -> str:
        headers = self.header_allowlist is not None
        return (
            f"LoggingMiddleware(logger={self.logger.name!r}, headers={headers}, body={self.body})"
        )


def _headers_text(headers: list[tuple[str, str]], secrets: list[str]) -> str:
    """The headers as a log line shows them; a credential value that a listed header
    carries (a server echoing the key in ``WWW-Authenticate``) is hidden there too."""
    shown = []
    for name, value in headers:
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        shown.append(f"{name}: {_hide_url_secrets(value)}")
    return "{" + ", ".join(shown) + "}"


def _cut_secret_at_end(text: str, secrets: list[str]) -> str:
    """``text``, cut at the size cap, without the start of a secret the cut went
    through (the whole ones are replaced already)."""
    cut = 0
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(text)), cut, -1):
            if text.endswith(secret[:size]):
                cut = size
                break
    return text[:-cut] + REDACTED if cut else text


def _secret_values(request: Request, sensitive: frozenset[str]) -> list[str]:
    """The credential values the request carries (its sensitive headers, its URL's
    password and secret query values), to hide in printed bodies and headers."""
    values = []
    for name, value in request.headers.items():
        if name.lower() in sensitive:
            values.append(value)
            _, _, credentials = value.partition(" ")
            if credentials:
                values.append(credentials)
    values += _url_secrets(request.url)
    return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def _url_secrets(url: URL) -> list[str]:
    """``url``'s password and the values of its secret query parameters, as sent
    (encoded) and decoded: a server may echo either."""
    values = []
    if url.password:
        values += [url.password, url.raw_password or ""]
    for piece in url.raw_query_string.split("&"):
        name, sep, value = piece.partition("=")
        if sep and value and is_secret_param(unquote_plus(name)):
            values += [value, unquote_plus(value)]
    return values


# A ``name=value`` query parameter inside a URL in free text (a ``Location`` or
# ``Link`` header, an error body quoting the URL): its value, if the name is secret,
# is hidden (`_hide_url_secrets`).
_QUERY_PARAM = re.compile(r"([?&;])([^=&?#\s\"'<>;,]+)=([^&#\s\"'<>;,]*)")


# The userinfo (``user:password@``) of a URL in free text, such as a ``Location`` the
# server hands out with credentials of its own: hidden whole (`_hide_url_secrets`).
# (``:\/\/``: a URL inside JSON whose slashes are escaped.)
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*:(?:\\?/){2})[^/?#\s@\"'<>\\]*@")


def _hide_url_secrets(text: str) -> str:
    def hide(match: re.Match[str]) -> str:
        if match.group(3) and is_secret_param(unquote_plus(match.group(2))):
            return f"{match.group(1)}{match.group(2)}={REDACTED}"
        return match.group(0)

    if "@" in text:
        text = _USERINFO.sub(rf"\1{REDACTED}@", text)
    return _QUERY_PARAM.sub(hide, text) if "=" in text else text
