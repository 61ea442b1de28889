"""Request bodies from the verbs' keywords: ``json=``, ``content=``, ``data=``, ``files=``.

- ``json=``: a dict, list or Struct, sent as compact JSON (``application/json``);
  ``NOT_GIVEN`` and `Omit` values of its dicts are left out, and ``json=None`` is no
  body at all, as ``data=None`` is;
- ``data=``: a mapping sent as a form (``application/x-www-form-urlencoded``), nested
  values flattened by the query rules (`stackwire._http.query.encode_params`);
- ``files=``: a multipart form (see `load_files` for what a file may be); the
  fields of ``data=`` (or of ``json=``, when it is a mapping) become text parts;
- ``content=``: bytes, or an async iterable of bytes streamed as it is produced.

At most one of ``json``, ``data`` and ``content``; ``content`` goes with nothing else.
GET and HEAD carry no body at all. Every conflict is an `InvalidRequestError`
raised before any I/O (files are not even read).
"""

from __future__ import annotations

import asyncio
import inspect
import io
import mimetypes
import os
import pathlib
import re
from collections.abc import AsyncIterable, Mapping
from typing import Any
from urllib.parse import urlencode

import msgspec

from .._http.multipart import Part, encode_multipart
from .._http.query import encode_params
from .._types import NOT_GIVEN
from ..errors import InvalidRequestError
from ..middlewares.headers import check_header
from ..models.decoding import encode_json
from ..pipeline.body import Body, StreamingBody

__all__ = ["LoadedFiles", "build_body", "check_body_keywords", "load_files", "multipart_boundary"]

_NO_BODY_METHODS = frozenset({"GET", "HEAD"})
_BYTES = (bytes, bytearray, memoryview)
DEFAULT_FILENAME = "upload"


class LoadedFiles(msgspec.Struct, frozen=True):
    """``files=`` with every file read into memory: ready to encode, any number of times."""

    parts: tuple[Part, ...]


class _Pending(msgspec.Struct, frozen=True):
    name: str
    filename: str | None
    source: Any  # bytes, a pathlib.Path or a binary file object
    content_type: str
    headers: tuple[tuple[str, str], ...]


def check_body_keywords(
    method: str,
    *,
    json: Any = NOT_GIVEN,
    content: object = None,
    data: object = None,
    files: object = None,
) -> list[str]:
    """The body keywords given (in the order json, content, data, files), after
    rejecting every combination that cannot be sent."""
    if json is None:
        json = NOT_GIVEN
    given = [
        name
        for name, value in (
            ("json", json is not NOT_GIVEN),
            ("content", content is not None),
            ("data", data is not None),
            ("files", files is not None),
        )
        if value
    ]
    if not given:
        return given
    if method in _NO_BODY_METHODS:
        raise InvalidRequestError(f"a {method} request has no body; {given[0]}= cannot be sent")
    if "content" in given and len(given) > 1:
        other = given[1] if given[0] == "content" else given[0]
        raise InvalidRequestError(f"content= cannot be combined with {other}=; pick one body")
    if "json" in given and "data" in given:
        raise InvalidRequestError("json= and data= cannot be combined; pick one body")
    if data is not None and not isinstance(data, Mapping):
        raise InvalidRequestError(f"data= must be a mapping, got {type(data).__name__}")
    if files is not None and json is not NOT_GIVEN and not isinstance(json, Mapping):
        raise InvalidRequestError(
            "json= can go with files= only as a mapping (its fields become form parts), "
            f"got {type(json).__name__}"
        )
    return given


def multipart_boundary(content_type: str) -> str | None:
    """The ``boundary`` parameter of a caller's ``multipart/form-data`` content type
    (``""`` when it has none), or ``None`` when the type is another one.

    >>> multipart_boundary("multipart/form-data"), multipart_boundary("text/plain")
    ('', None)
    >>> multipart_boundary('Multipart/Form-Data; boundary="b-1"')
    'b-1'
    """
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        return None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return ""


# RFC 2046 section 5.1.1: 1 to 70 of these characters, not ending with a space.
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def _check_boundary(boundary: str, parts: list[Part]) -> None:
    if _BOUNDARY.fullmatch(boundary) is None:
        raise InvalidRequestError(
            f"the multipart boundary {boundary!r} of the Content-Type header is not one "
            "RFC 2046 allows (1 to 70 letters, digits and '()+_,-./:=? ); leave it out "
            "and stackwire picks one"
        )
    marker = ("--" + boundary).encode("ascii")
    if any(marker in part.content for part in parts):
        raise InvalidRequestError(
            f"the multipart boundary {boundary!r} of the Content-Type header occurs in a "
            "part's content; leave it out and stackwire picks one that does not"
        )


def build_body(
    method: str,
    *,
    json: Any = NOT_GIVEN,
    content: bytes | AsyncIterable[bytes] | None = None,
    data: Mapping[str, object] | None = None,
    files: Any = None,
    boundary: str | None = None,
) -> tuple[Body | None, str | None]:
    """The body and its ``Content-Type`` for one call.

    ``files`` is normally a `LoadedFiles` (from ``await load_files(...)``); anything
    else is read here, blocking, which only a synchronous caller should rely on.
    ``boundary``: the multipart boundary to use (the caller's own), else a random one.

    >>> build_body("POST", json={"a": 1})
    (b'{"a":1}', 'application/json')
    >>> build_body("POST", data={"q": "x y", "tags": ["a", "b"]})
    (b'q=x+y&tags=a&tags=b', 'application/x-www-form-urlencoded')
    """
    if json is None:
        json = NOT_GIVEN
    if json is NOT_GIVEN and content is None and data is None and files is None:
        return None, None
    check_body_keywords(method, json=json, content=content, data=data, files=files)
    if files is not None:
        loaded = files if isinstance(files, LoadedFiles) else _read_all(_pending_files(files))
        fields = data if data is not None else json if json is not NOT_GIVEN else None
        parts = [
            Part(name=name, content=value.encode("utf-8"))
            for name, value in encode_params(fields or {})
        ]
        every = [*parts, *loaded.parts]
        if boundary:
            _check_boundary(boundary, every)
        return encode_multipart(every, boundary=boundary or None)
    if json is not NOT_GIVEN:
        if isinstance(json, _BYTES):
            raise InvalidRequestError(
                "json= got bytes, which JSON has no type for (they would go as a base64 "
                "string); send JSON you encoded yourself as content= with a "
                "Content-Type: application/json header"
            )
        return encode_json(json), "application/json"
    if data is not None:
        return urlencode(encode_params(data)).encode("ascii"), "application/x-www-form-urlencoded"
    if isinstance(content, _BYTES):
        return bytes(content), None
    if isinstance(content, AsyncIterable):
        return StreamingBody(content), None
    hint = "; encode text first (content=text.encode())" if isinstance(content, str) else ""
    raise InvalidRequestError(
        f"content= must be bytes or an async iterable of bytes, got {type(content).__name__}{hint}"
    )


async def load_files(
    method: str,
    files: Any,
    *,
    json: Any = NOT_GIVEN,
    content: object = None,
    data: object = None,
) -> LoadedFiles:
    """Check the body keywords, then read every file of ``files=`` into memory.

    ``files`` is a mapping ``{field: file}`` or a list of ``(field, file)`` pairs (a
    field may repeat). A file is ``bytes``, a binary file object (read from its
    current position), a `pathlib.Path`, or a tuple ``(filename, file)``,
    ``(filename, file, content_type)`` or ``(filename, file, content_type,
    headers)``; a ``None`` filename sends the part without one. Without a tuple, the
    filename is the path's or file's name (``"upload"`` for bytes) and the
    content type is guessed from it (``application/octet-stream`` otherwise).

    Paths and file objects on disk are read in a worker thread, so the event loop is
    never blocked, and an async file object (aiofiles', anyio's: ``await f.read()``) is
    awaited; everything is read once per call, so retries resend the same bytes.
    """
    if isinstance(files, LoadedFiles):
        return files
    check_body_keywords(method, json=json, content=content, data=data, files=files)
    pending = _pending_files(files)
    if any(_is_async_file(item.source) for item in pending):
        pending = [
            await _read_async(item) if _is_async_file(item.source) else item for item in pending
        ]
    if any(not isinstance(item.source, (*_BYTES, io.BytesIO)) for item in pending):
        return await asyncio.to_thread(_read_all, pending)
    return _read_all(pending)


def _pending_files(files: object) -> list[_Pending]:
    if isinstance(files, Mapping):
        items = list(files.items())
    elif isinstance(files, (list, tuple)):
        items = list(files)
        for item in items:
            if not (isinstance(item, tuple) and len(item) == 2):
                raise InvalidRequestError(
                    "files= must be a mapping or a list of (field, file) pairs, "
                    f"got an item {type(item).__name__}"
                )
    else:
        raise InvalidRequestError(
            f"files= must be a mapping or a list of (field, file) pairs, got {type(files).__name__}"
        )
    return [_pending(name, spec) for name, spec in items]


def _check_source(name: str, source: object) -> None:
    if isinstance(source, (*_BYTES, pathlib.Path)) or callable(getattr(source, "read", None)):
        return
    hint = "; encode text first, or send it in data=" if isinstance(source, str) else ""
    raise InvalidRequestError(
        f"files[{name!r}] must be bytes, a binary file object or a pathlib.Path, "
        f"got {type(source).__name__}{hint}"
    )


def _default_filename(source: object) -> str:
    if isinstance(source, pathlib.Path):
        return source.name
    file_name = getattr(source, "name", None)
    if isinstance(file_name, str) and file_name:
        return os.path.basename(file_name)
    return DEFAULT_FILENAME


def _pending(name: object, spec: object) -> _Pending:
    if not isinstance(name, str):
        raise InvalidRequestError(f"a files= field name must be a str, got {type(name).__name__}")
    content_type: object = None
    headers: object = None
    if isinstance(spec, tuple):
        if not 2 <= len(spec) <= 4:
            raise InvalidRequestError(
                f"files[{name!r}] must be (filename, file[, content_type[, headers]]), "
                f"got a tuple of {len(spec)}"
            )
        filename, source, content_type, headers = (*spec, None, None)[:4]
        if filename is not None and not isinstance(filename, str):
            raise InvalidRequestError(f"files[{name!r}]: the filename must be a str or None")
    else:
        source = spec
        filename = _default_filename(spec)
    _check_source(name, source)
    if content_type is None:
        guessed = mimetypes.guess_type(filename)[0] if filename else None
        content_type = guessed or "application/octet-stream"
    if not isinstance(content_type, str):
        raise InvalidRequestError(f"files[{name!r}]: the content type must be a str")
    check_header("Content-Type", content_type)
    extra: list[tuple[str, str]] = []
    if headers is not None:
        if not isinstance(headers, Mapping):
            raise InvalidRequestError(f"files[{name!r}]: part headers must be a mapping")
        for header, value in headers.items():
            check_header(header, value)
            if header.lower() in ("content-disposition", "content-type"):
                raise InvalidRequestError(
                    f"files[{name!r}]: set {header} with the filename and content type of the "
                    "tuple, not in its headers"
                )
            extra.append((header, value))
    return _Pending(name, filename, source, content_type, tuple(extra))


def _is_async_file(source: object) -> bool:
    return inspect.iscoroutinefunction(getattr(source, "read", None))


async def _read_async(item: _Pending) -> _Pending:
    """``item`` with its async file read into bytes."""
    try:
        content = await item.source.read()
    except OSError as exc:
        raise _unreadable(item, exc) from exc
    return msgspec.structs.replace(item, source=_file_bytes(item, content))


def _read(item: _Pending) -> bytes:
    source = item.source
    if isinstance(source, _BYTES):
        return bytes(source)
    try:
        if isinstance(source, pathlib.Path):
            return source.read_bytes()
        content = source.read()
    except OSError as exc:
        raise _unreadable(item, exc) from exc
    return _file_bytes(item, content)


def _unreadable(item: _Pending, exc: OSError) -> InvalidRequestError:
    return InvalidRequestError(f"files[{item.name!r}]: cannot read {item.source!r}: {exc}")


def _file_bytes(item: _Pending, content: object) -> bytes:
    if not isinstance(content, _BYTES):
        raise InvalidRequestError(
            f"files[{item.name!r}]: the file gave {type(content).__name__}, not bytes; "
            "open it in binary mode ('rb')"
        )
    return bytes(content)


def _read_all(pending: list[_Pending]) -> LoadedFiles:
    return LoadedFiles(
        tuple(
            Part(
                name=item.name,
                content=_read(item),
                filename=item.filename,
                content_type=item.content_type,
                headers=item.headers,
            )
            for item in pending
        )
    )
