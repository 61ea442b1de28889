"""`Cassette`: a transport that records real exchanges to a JSON file and replays them.

Recording goes through a real transport (the default `AiohttpTransport`, unless one
is given) and keeps every response body chunk by chunk, as it arrived, so a replayed
stream (SSE, JSON Lines, a download) arrives in the same pieces. Bodies are kept
decoded (a gzip body is written as its text, without ``Content-Encoding``), as text
where they are UTF-8 and as base64 where not, so the file reads like the exchange.

Nothing secret is ever written: before an interaction is stored, every sensitive
header (``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``,
``X-Api-Key``, the request's ``sensitive_headers`` and any given here), URL userinfo,
the secret query values (``key``, ``api_key``, ``token``, ``access_token``, ``sig``,
``password``, ``client_secret``, ..., and names ending in one, such as ``pageToken``
or ``AWSAccessKeyId``, as in log lines; a nested ``auth[token]`` by its last part, in a
request's URL and in a ``Location`` header) and the same-named fields of JSON and form
bodies become ``[redacted]``, and every value found that way (each cookie's value
too) is cut out of everything else in the file, as it is or percent-encoded (an API
that echoes the key in a body, or a redirect that carries the next hop's signature,
does not leak it either).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, unquote_plus, urlencode

import msgspec
from yarl import URL

from .._http.redaction import is_secret_param
from ..errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ClientClosedError,
    InvalidRequestError,
)
from ..pipeline.request import ALWAYS_SENSITIVE_HEADERS, Request
from ..pipeline.response import BodyReader, Response
from ..pipeline.transport import PoolStats, Transport
from ._mock import _Chunks, final_request

__all__ = ["SECRET_FIELDS", "Cassette", "CassetteMode"]

CassetteMode = Literal["record", "replay", "once"]
MatchField = Literal["method", "url", "path", "query", "body"]

REDACTED = "[redacted]"
_REDACTED_BYTES = REDACTED.encode()
_BOUNDARY = b"stackwire-cassette-boundary"
FORMAT_VERSION = 1

SECRET_FIELDS: frozenset[str] = frozenset(
    {
        "key",
        "api_key",
        "apikey",
        "api-key",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "sig",
        "signature",
        "password",
        "passwd",
        "secret",
        "client_secret",
    }
)
"""Query parameters and JSON / form fields whose values are never written."""

_ALWAYS_SECRET_HEADERS = ALWAYS_SENSITIVE_HEADERS | {"set-cookie", "proxy-authorization"}
_COOKIE_HEADERS = frozenset({"cookie", "set-cookie"})
_URL_HEADERS = frozenset({"location", "content-location"})
_MATCH_FIELDS = ("method", "url", "path", "query", "body")
_NAME_PARTS = re.compile(r"[\[\].]")


class _Redactor:
    """Redacts exchanges: names it knows, then every secret value it found (in any
    exchange of the file: a redirect's ``Location`` may carry the signature that only
    the next hop's query names)."""

    def __init__(self, headers: frozenset[str], fields: frozenset[str]) -> None:
        self.headers = headers
        self.fields = fields
        self.values: set[str] = set()
        self._patterns: tuple[re.Pattern[str], re.Pattern[bytes]] | None = None

    def learn(self, value: str | None) -> None:
        if value and len(value) >= 4 and value != REDACTED:
            self._add(value)
            scheme, _, credential = value.partition(" ")
            if credential and scheme.isalpha() and len(credential) >= 4:
                self._add(credential.strip())
                if scheme.lower() == "basic":
                    self._learn_basic(credential.strip())

    def _learn_basic(self, credential: str) -> None:
        """The password of Basic credentials, as it is and form-decoded (OAuth 2.0
        clients form-encode it first): an API that echoes it echoes it decoded."""
        try:
            pair = base64.b64decode(credential, validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return
        _, colon, password = pair.partition(":")
        if colon:
            self.learn(password)
            self.learn(unquote_plus(password))

    def _add(self, value: str) -> None:
        if value not in self.values:
            self.values.add(value)
            self._patterns = None

    def learn_cookies(self, value: str) -> None:
        """Each cookie's value (``a=1; b=2``, or a ``Set-Cookie`` line): an API that
        echoes one cookie echoes it without its neighbours."""
        for pair in value.split(";"):
            _, equals, cookie = pair.partition("=")
            if equals:
                self.learn(cookie.strip().strip('"'))

    def is_secret(self, name: str) -> bool:
        """Whether a query, form or JSON field named ``name`` holds a secret: one of
        ``fields``, or a secret query parameter by the rule of logs and spans
        (`is_secret_param`: ``AWSAccessKeyId``, ``pageToken``, ``my_api_key``); a
        nested name (``auth[token]``, ``auth.token``, ``key[]``) by its innermost part."""
        if name.lower() in self.fields or is_secret_param(name):
            return True
        parts = [part for part in _NAME_PARTS.split(name) if part]
        return bool(parts) and (parts[-1].lower() in self.fields or is_secret_param(parts[-1]))

    def _compiled(self) -> tuple[re.Pattern[str], re.Pattern[bytes]] | None:
        if self._patterns is None and self.values:
            pattern = "|".join(
                _value_pattern(value) for value in sorted(self.values, key=len, reverse=True)
            )
            self._patterns = (re.compile(pattern), re.compile(pattern.encode()))
        return self._patterns

    def scrub(self, text: str) -> str:
        patterns = self._compiled()
        return text if patterns is None else patterns[0].sub(REDACTED, text)

    def scrub_bytes(self, data: bytes) -> bytes:
        patterns = self._compiled()
        return data if patterns is None else patterns[1].sub(_REDACTED_BYTES, data)

    def url(self, url: URL) -> str:
        if url.is_absolute():
            self.learn(url.password)
            self.learn(url.user)
            url = url.with_user(None)
        if url.raw_query_string:
            pairs = []
            for name, value in parse_qsl(url.raw_query_string, keep_blank_values=True):
                if self.is_secret(name):
                    self.learn(value)
                    value = REDACTED
                pairs.append((name, value))
            url = url.with_query(None)
            return str(url) + "?" + urlencode(pairs, safe="[]/:,")
        return str(url)

    def header_list(
        self, headers: Iterable[tuple[str, str]], sensitive: frozenset[str]
    ) -> list[list[str]]:
        shown = []
        for name, value in headers:
            lowered = name.lower()
            if lowered in sensitive or lowered in self.headers:
                self.learn(value)
                if lowered in _COOKIE_HEADERS:
                    self.learn_cookies(value)
                value = REDACTED
            elif lowered in _URL_HEADERS:
                with contextlib.suppress(ValueError):  # not a URL: shown as it is
                    value = self.url(URL(value))
            shown.append([name, value])
        return shown

    def body(self, data: bytes, content_type: str | None) -> bytes:
        """Secret fields of a JSON or form body redacted (other bodies as they are)."""
        kind = (content_type or "").split(";")[0].strip().lower()
        if kind == "application/x-www-form-urlencoded":
            try:
                pairs = parse_qsl(data.decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                return data
            changed = []
            for name, value in pairs:
                if self.is_secret(name):
                    self.learn(value)
                    value = REDACTED
                changed.append((name, value))
            return urlencode(changed).encode()
        if kind.endswith("json") and data[:1] in (b"{", b"["):
            try:
                value = json.loads(data)
            except ValueError:
                return data
            if self._redact_fields(value):
                return json.dumps(value).encode()
        return data

    def _redact_fields(self, value: Any) -> bool:
        changed = False
        if isinstance(value, dict):
            for name, item in value.items():
                if isinstance(item, (str, int, float)) and self.is_secret(name):
                    self.learn(str(item))
                    value[name] = REDACTED
                    changed = True
                else:
                    changed = self._redact_fields(item) or changed
        elif isinstance(value, list):
            for item in value:
                changed = self._redact_fields(item) or changed
        return changed


def _value_pattern(value: str) -> str:
    """A regex for ``value`` as it is, or with any of its characters percent-encoded
    (an API that echoes the URL it got echoes its secrets encoded; ``+`` for a space)."""
    parts = []
    for char in value:
        if char.isascii() and char.isalnum():
            parts.append(char)
            continue
        encoded = "".join(f"%{byte:02X}" for byte in char.encode())
        plus = r"|\+" if char == " " else ""
        parts.append(f"(?:{re.escape(char)}|(?i:{encoded}){plus})")
    return "".join(parts)


def _headers_json(pairs: list[list[str]]) -> dict[str, str | list[str]]:
    """Headers as a JSON object: one value a name, a list for a repeated name."""
    shown: dict[str, str | list[str]] = {}
    for name, value in pairs:
        before = shown.get(name)
        if before is None:
            shown[name] = value
        elif isinstance(before, list):
            before.append(value)
        else:
            shown[name] = [before, value]
    return shown


def _headers_from_json(shown: dict[str, str | list[str]]) -> list[tuple[str, str]]:
    return [
        (name, item)
        for name, value in shown.items()
        for item in (value if isinstance(value, list) else [value])
    ]


def _encode_chunk(chunk: bytes) -> Any:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(chunk).decode("ascii")}


def _decode_chunk(stored: Any) -> bytes:
    if isinstance(stored, str):
        return stored.encode("utf-8")
    return base64.b64decode(stored["base64"], validate=True)


class _RecordingResponse(Response[Any]):
    """The recorded transport's response, read through, keeping each chunk."""

    __slots__ = ("_done", "_reader", "_record")

    def __init__(self, request: Request, inner: Response[Any], record: dict[str, Any]) -> None:
        headers = [
            (name, value)
            for name, value in inner.headers.items()
            if "Content-Encoding" not in inner.headers
            or name.lower() not in ("content-encoding", "content-length")
        ]
        super().__init__(
            request,
            inner.status_code,
            headers=headers,
            reason=inner.reason or None,
            http_version=inner.http_version,
            raw=inner.raw,
        )
        self._source = None  # the body comes from ``inner``, through `_next_raw`
        self._reader = BodyReader(inner)
        self._record = record
        self._done = False

    async def _next_raw(self) -> bytes:
        try:
            chunk = await self._reader.next_chunk()
        except APIError as exc:  # the body was cut short: replayed so, not as complete
            self._record["body_error"] = {"type": type(exc).__name__, "message": exc.message}
            raise
        if chunk:
            self._record["chunks"].append(chunk)
        else:
            self._finish(complete=True)
        return chunk

    def _body_arrived(self) -> bool:
        return self._reader.rest_arrived()

    def _abort(self) -> None:
        super()._abort()
        self._reader.close()
        self._finish(complete=False)  # a no-op when the body had ended

    def _finish(self, *, complete: bool) -> None:
        if not self._done:
            self._done = True
            self._record["complete"] = complete


class Cassette:
    """Records real exchanges to ``path`` (JSON) and replays them; a `Transport`.

    ``mode``: ``"record"`` sends through ``transport`` (the default `AiohttpTransport`)
    and writes every exchange at ``close()``; ``"replay"`` answers from the file and
    never opens a socket; ``"once"`` replays if the file exists, else records.

    Matching: a request matches a recorded one with the same ``match`` fields (by
    default ``("method", "url", "body")``: the method, the full URL with its query,
    redacted as written, and the body bytes, a multipart body with its boundary made
    one fixed string; also ``"path"``, ``"query"``); headers are ignored.
    Requests that match the same recordings get them in recorded order (the
    first retry of a call gets the second recording). In replay, a request that
    matches none left fails the test with an ``AssertionError`` naming it and what
    the file holds.

    Recorded connection failures and timeouts replay as the same error classes, and a
    body cut short (or left unread) when recorded ends at the same place with an
    `APIConnectionError`. A file that is not a cassette fails at once with an
    `InvalidRequestError` naming what is wrong.
    ``sensitive_headers`` and ``secret_fields`` add names to redact (see the module
    docstring). ``close()`` is idempotent: it writes the file (when recording) and
    closes the transport it recorded through.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        mode: CassetteMode = "once",
        match: Iterable[MatchField] = ("method", "url", "body"),
        transport: Transport | None = None,
        sensitive_headers: Iterable[str] = (),
        secret_fields: Iterable[str] = (),
    ) -> None:
        if mode not in ("record", "replay", "once"):
            raise InvalidRequestError(f"mode must be 'record', 'replay' or 'once', not {mode!r}")
        if not isinstance(path, (str, os.PathLike)):
            raise InvalidRequestError(f"path must be a str or a Path, not {type(path).__name__}")
        if transport is not None and not isinstance(transport, Transport):
            raise InvalidRequestError(
                "transport must be a Transport (with send, close and pool_stats), "
                f"not {type(transport).__name__}"
            )
        self.path = Path(path)
        if self.path.is_dir():
            raise InvalidRequestError(f"cassette path {self.path} is a folder, not a file")
        self.match = _names("match", match)
        unknown = [name for name in self.match if name not in _MATCH_FIELDS]
        if unknown or not self.match:
            raise InvalidRequestError(
                f"match takes fields of {', '.join(_MATCH_FIELDS)}; got {self.match!r}"
            )
        # A name given alone as a str would redact its letters, not the header.
        self._headers = frozenset(_names("sensitive_headers", sensitive_headers))
        self._fields = SECRET_FIELDS | set(_names("secret_fields", secret_fields))
        if mode == "once":
            mode = "replay" if self.path.exists() else "record"
        self.mode: Literal["record", "replay"] = mode
        self._transport = transport
        self._closed = False
        self.interactions: list[dict[str, Any]] = []
        self._used: set[int] = set()
        if mode == "replay":
            if not self.path.exists():
                raise InvalidRequestError(
                    f"cassette {self.path} does not exist: record it first "
                    "(mode='record', or mode='once' records when the file is missing)"
                )
            self.interactions = _load(self.path)

    # -- the transport contract --------------------------------------------------------

    async def send(self, request: Request, /) -> Response[Any]:
        if self._closed:
            raise ClientClosedError("the cassette is closed; create a new one")
        request = await final_request(request)
        if self.mode == "replay":
            return self._replay(request)
        return await self._record(request)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if self.mode == "record":
                self.save()
        finally:  # a file that cannot be written leaves no connection open
            if self._transport is not None:
                await self._transport.close()

    def pool_stats(self) -> PoolStats:
        if self._transport is None:
            return PoolStats(in_use=0, idle=0)
        return self._transport.pool_stats()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- recording ---------------------------------------------------------------------

    def _redactor(self) -> _Redactor:
        return _Redactor(_ALWAYS_SECRET_HEADERS | self._headers, self._fields)

    def _request_record(self, request: Request, redactor: _Redactor) -> dict[str, Any]:
        headers = redactor.header_list(request.headers.items(), request.sensitive_headers)
        body = request.body if isinstance(request.body, bytes) else None
        boundary = _multipart_boundary(request.headers.get("Content-Type"))
        if boundary is not None:
            # A multipart body's boundary is drawn at random for each request: written
            # as one fixed string, so that the body matches on replay.
            body = body.replace(boundary.encode(), _BOUNDARY) if body is not None else None
            headers = [
                [name, value.replace(boundary, _BOUNDARY.decode())] for name, value in headers
            ]
        return {
            "method": request.method,
            "url": redactor.url(request.url),
            "headers": _headers_json(headers),
            "body": None
            if body is None
            else _encode_chunk(redactor.body(body, request.headers.get("Content-Type"))),
        }

    async def _record(self, request: Request) -> Response[Any]:
        if self._transport is None:
            from ..transports import AiohttpTransport

            self._transport = AiohttpTransport()
        record: dict[str, Any] = {"request": request, "chunks": []}
        self.interactions.append(record)
        try:
            inner = await self._transport.send(request)
        except APIError as exc:
            record["error"] = {"type": type(exc).__name__, "message": exc.message}
            raise
        except BaseException:
            # Cancelled (or refused before any I/O): no exchange took place to record.
            self.interactions.remove(record)
            raise
        record["response"] = inner
        return _RecordingResponse(request, inner, record)

    def _written(self, record: dict[str, Any], redactor: _Redactor) -> dict[str, Any]:
        """One interaction as it is written: everything secret ``redactor`` knows, or
        learns here, redacted."""
        request: Request = record["request"]
        shown_request = self._request_record(request, redactor)
        if "error" in record:
            error = dict(record["error"])
            error["message"] = redactor.scrub(error["message"])
            written: dict[str, Any] = {"request": shown_request, "error": error}
        else:
            response: Response[Any] = record["response"]
            response_headers = redactor.header_list(
                response.headers.items(), request.sensitive_headers
            )
            if "Content-Encoding" in response.headers:
                response_headers = [
                    pair
                    for pair in response_headers
                    if pair[0].lower() not in ("content-encoding", "content-length")
                ]
            chunks: list[bytes] = record["chunks"]
            content_type = response.headers.get("Content-Type")
            if len(chunks) > 1 and content_type is not None and "json" in content_type:
                if not content_type.startswith(("application/x-ndjson", "application/jsonl")):
                    joined = b"".join(chunks)
                    redacted = redactor.body(joined, content_type)
                    if redacted != joined:
                        chunks = [redacted]
            elif len(chunks) == 1:
                chunks = [redactor.body(chunks[0], content_type)]
            if any(name.lower() == "content-length" for name, _ in response_headers):
                size = len(b"".join(redactor.scrub_bytes(chunk) for chunk in chunks))
                response_headers = [
                    [name, str(size) if name.lower() == "content-length" else value]
                    for name, value in response_headers
                ]
            written = {
                "request": shown_request,
                "response": {
                    "status": response.status_code,
                    "reason": response.reason,
                    "headers": _headers_json(response_headers),
                    "chunks": chunks,
                    "complete": bool(record.get("complete", False)),
                },
            }
            if "body_error" in record:
                written["response"]["error"] = dict(record["body_error"])
        scrubbed: dict[str, Any] = _scrub_tree(written, redactor)
        return scrubbed

    def save(self) -> None:
        """Write the file now (``close()`` does it when recording)."""
        redactor = self._redactor()
        for record in self.interactions:  # learn every secret of the file first
            self._written(record, redactor)
        interactions = [self._written(record, redactor) for record in self.interactions]
        text = json.dumps(
            {"stackwire_cassette": FORMAT_VERSION, "interactions": interactions},
            indent=2,
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(text + "\n", encoding="utf-8")

    # -- replaying ---------------------------------------------------------------------

    def _key(self, request: dict[str, Any]) -> tuple[Any, ...]:
        url = URL(request["url"])
        values = {
            "method": request["method"],
            # Percent-decoded: a secret cut out of a path reads "[redacted]" in the
            # file, and "%5Bredacted%5D" in the URL a replayed client builds from it.
            "url": unquote(request["url"]),
            "path": url.path,
            "query": sorted(url.query.items()),
            "body": request["body"],
        }
        return tuple(repr(values[name]) for name in self.match)

    def _replay(self, request: Request) -> Response[Any]:
        redactor = self._redactor()
        shown = _scrub_tree(self._request_record(request, redactor), redactor)
        key = self._key(shown)
        for index, interaction in enumerate(self.interactions):
            if index not in self._used and self._key(interaction["request"]) == key:
                self._used.add(index)
                return self._answer(request, interaction)
        recorded = [
            f"{item['request']['method']} {item['request']['url']}" for item in self.interactions
        ]
        same = sum(self._key(item["request"]) == key for item in self.interactions)
        why = (
            f"all {same} recordings of it were replayed already"
            if same
            else "it was never recorded"
        )
        raise AssertionError(
            f"cassette {self.path} has no recording left for {shown['method']} {shown['url']} "
            f"(matching on {', '.join(self.match)}): {why}. It holds: "
            + (", ".join(recorded[:10]) or "nothing")
            + (" ..." if len(recorded) > 10 else "")
            + ". Record it again with mode='record'."
        )

    def _answer(self, request: Request, interaction: dict[str, Any]) -> Response[Any]:
        error = interaction.get("error")
        if error is not None:
            raise _replayed_error(error, request)
        stored = interaction["response"]
        chunks = [_decode_chunk(chunk) for chunk in stored.get("chunks", ())]
        headers = _headers_from_json(stored.get("headers", {}))
        reason = stored.get("reason") or None
        if not stored.get("complete", True):
            # The body ended early when recorded: it ends so again, as a connection
            # cut short would (a client that stopped reading it never gets here).
            failure = _replayed_error(
                stored.get("error")
                or {
                    "type": "APIConnectionError",
                    "message": "the recorded body ends here: it was not read to its end",
                },
                request,
            )
            return Response(
                request,
                stored["status"],
                headers=headers,
                stream=_Chunks(chunks, failure),
                reason=reason,
            )
        if len(chunks) <= 1:
            return Response(
                request,
                stored["status"],
                headers=headers,
                content=chunks[0] if chunks else b"",
                reason=reason,
            )
        return Response(
            request, stored["status"], headers=headers, stream=_Chunks(chunks, None), reason=reason
        )

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, mode={self.mode!r})"


def _multipart_boundary(content_type: str | None) -> str | None:
    """The ``boundary`` of a ``multipart/*`` content type, if any."""
    if content_type is None or not content_type.lower().startswith("multipart/"):
        return None
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"') or None
    return None


def _replayed_error(error: dict[str, Any], request: Request) -> APIConnectionError:
    """The recorded failure ``error``, again: a timeout or a connection error."""
    kind = APITimeoutError if error["type"] == "APITimeoutError" else APIConnectionError
    return kind(error["message"] + " (replayed from a cassette)", request=request)


def _names(option: str, names: Iterable[Any]) -> tuple[Any, ...]:
    """``names`` as a tuple of lower-case strings; a lone ``str`` is refused."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise InvalidRequestError(
            f"{option} must be an iterable of names (a list or a tuple), "
            f"not {type(names).__name__} {names!r}"[:300]
        )
    given = tuple(names)
    if not all(isinstance(name, str) and name for name in given):
        raise InvalidRequestError(f"{option} must hold non-empty strs, got {given!r}"[:300])
    return tuple(name.lower() for name in given)


class _Base64(msgspec.Struct, forbid_unknown_fields=True):
    base64: str


_Chunk = str | _Base64


class _StoredRequest(msgspec.Struct):
    method: str
    url: str
    headers: dict[str, str | list[str]] = {}
    body: _Chunk | None = None


class _StoredError(msgspec.Struct):
    type: str
    message: str


class _StoredResponse(msgspec.Struct):
    status: int
    headers: dict[str, str | list[str]] = {}
    chunks: list[_Chunk] = []
    reason: str | None = None
    complete: bool = True
    error: _StoredError | None = None


class _StoredInteraction(msgspec.Struct):
    request: _StoredRequest
    response: _StoredResponse | None = None
    error: _StoredError | None = None


class _StoredFile(msgspec.Struct):
    stackwire_cassette: int
    interactions: list[_StoredInteraction]


def _load(path: Path) -> list[dict[str, Any]]:
    """The interactions of the cassette at ``path``, checked: a file that is not a
    cassette of this format fails here, naming what is wrong, not at the first call."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise InvalidRequestError(f"cassette {path} cannot be read: {exc}") from exc
    try:
        data = json.loads(text)
        stored = msgspec.convert(data, _StoredFile)
        problem = None
        if stored.stackwire_cassette != FORMAT_VERSION:
            problem = f"format {stored.stackwire_cassette}, not {FORMAT_VERSION}"
        for index, interaction in enumerate(stored.interactions):
            response = interaction.response
            where = f"interactions[{index}]"
            if (response is None) == (interaction.error is None):
                problem = f"{where} has neither or both of response and error"
            elif response is not None and not 100 <= response.status <= 599:
                problem = f"{where}.response.status is {response.status}"
            elif response is not None:
                for chunk in response.chunks:
                    _decode_chunk(msgspec.to_builtins(chunk))
            if problem is not None:
                break
    except (ValueError, msgspec.ValidationError) as exc:  # JSONDecodeError, binascii.Error
        problem = str(exc) or type(exc).__name__
    if problem is not None:
        raise InvalidRequestError(
            f"cassette {path} is not a stackwire cassette ({problem}); "
            "record it again with mode='record'"
        )
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions


def _scrub_tree(value: Any, redactor: _Redactor) -> Any:
    """Every secret value the redactor learned, cut out of every string (and body)."""
    if isinstance(value, str):
        return redactor.scrub(value)
    if isinstance(value, bytes):
        return _encode_chunk(redactor.scrub_bytes(value))
    if isinstance(value, list):
        return [_scrub_tree(item, redactor) for item in value]
    if isinstance(value, dict):
        return {name: _scrub_tree(item, redactor) for name, item in value.items()}
    return value
