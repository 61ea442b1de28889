"""Turning a response body into ``cast_to``: one cached decoder per target type.

Supported targets: a `Model` (or any msgspec-decodable type: ``list[Model]``,
``dict[str, int]``, a tagged union, ...), a union of untagged Models (the first
member that matches wins), ``str`` (the body as UTF-8 text), ``bytes`` (the body
itself) and ``None`` (the body is ignored).

Every failure (invalid JSON, invalid UTF-8, nesting too deep, a wrong shape) is an
`APIResponseValidationError` carrying the status and at most 1 KiB of the body.

JSON is UTF-8 (RFC 8259 section 8.1), which is what msgspec reads. A body that says it
is something else, with a byte order mark (which a parser may ignore, the RFC says)
or a declared ``charset`` (`transcoded_json`), is turned into UTF-8 and decoded
again, the way Python's ``json`` module and httpx read it: only after the first
decoding failed, so a UTF-8 body costs nothing more.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import types
import typing
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, TypeVar

import msgspec

from .._types import NotGiven, Omit
from ..errors import APIResponseValidationError, InvalidRequestError

__all__ = ["decode_body", "decoder_for", "encode_json", "transcoded_json"]

_T = TypeVar("_T")
_BODY_PREVIEW = 1024

Decode = Callable[[bytes], Any]


def _is_untagged_struct(tp: object) -> bool:
    return (
        isinstance(tp, type) and issubclass(tp, msgspec.Struct) and tp.__struct_config__.tag is None
    )


def _union_members(tp: object) -> tuple[object, ...] | None:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def _first_match(members: tuple[object, ...], strict: bool) -> Decode:
    """A decoder for a union msgspec cannot decode natively: try members in order."""
    # ``None`` in a union means JSON ``null`` only, not "ignore the body".
    decoders = [
        msgspec.json.Decoder(None).decode
        if member is None or member is type(None)
        else decoder_for(member, strict=strict)
        for member in members
    ]

    def decode(data: bytes) -> Any:
        raw = msgspec.json.decode(data, type=msgspec.Raw)
        errors = []
        for member_decoder in decoders:
            try:
                return member_decoder(raw)
            except msgspec.ValidationError as exc:
                errors.append(str(exc))
        raise msgspec.ValidationError("no member of the union matched: " + "; ".join(errors))

    return decode


def _text(data: bytes) -> str:
    return bytes(data).decode("utf-8")


def _none(data: bytes) -> None:
    return None


def _bytes(data: bytes) -> bytes:
    return bytes(data)


def decoder_for(cast_to: object, *, strict: bool = False) -> Decode:
    """The (cached) function that decodes a body into ``cast_to``.

    A ``cast_to`` msgspec cannot decode (say, ``list[A | B]`` of untagged Structs)
    raises `InvalidRequestError`.

    >>> decoder_for(list[int])(b"[1, 2]")
    [1, 2]
    """
    if isinstance(cast_to, type):
        # A plain class (a Model, ``str``, ``bytes``): one dict lookup, the hot path.
        try:
            return _CLASS_DECODERS[cast_to, strict]
        except KeyError:
            decode = _cached_decoder(cast_to, None, strict)
            if len(_CLASS_DECODERS) < _CLASS_DECODERS_MAX:
                _CLASS_DECODERS[cast_to, strict] = decode
            return decode
    # ``A | B == B | A`` (same hash too), but "the first member that matches" depends
    # on the order written: the members, in order, are part of the cache key.
    return _cached_decoder(cast_to, _union_members(cast_to), strict)


# Decoders of plain classes, by (class, strict); a class is never a union, so no
# member order to keep apart. Bounded like the lru_cache below it.
_CLASS_DECODERS: dict[tuple[type, bool], Decode] = {}
_CLASS_DECODERS_MAX = 512


@lru_cache(maxsize=512)
def _cached_decoder(cast_to: object, members: tuple[object, ...] | None, strict: bool) -> Decode:
    if cast_to is str:
        return _text
    if cast_to is bytes:
        return _bytes
    if cast_to is None or cast_to is type(None):
        return _none
    if members is not None and sum(map(_is_untagged_struct, members)) > 1:
        return _first_match(members, strict)
    try:
        return msgspec.json.Decoder(cast_to, strict=strict).decode
    except TypeError as exc:
        raise InvalidRequestError(f"cast_to={cast_to!r} cannot be decoded: {exc}") from exc


def decode_body(
    data: bytes, cast_to: type[_T] | Any, *, strict: bool = False, status_code: int | None = None
) -> _T:
    """Decode ``data`` into ``cast_to``; any failure is `APIResponseValidationError`.

    >>> decode_body(b'{"a": 1}', dict[str, int])
    {'a': 1}
    """
    return decode_typed(data, cast_to, strict, status_code)  # type: ignore[no-any-return]


def decode_typed(data: bytes, cast_to: Any, strict: bool, status_code: int | None) -> Any:
    """`decode_body` with positional arguments: the call every typed response makes."""
    try:
        decode = _CLASS_DECODERS[cast_to, strict]  # the hot path: a plain class, seen before
    except (KeyError, TypeError):  # TypeError: an unhashable cast_to, which fails below
        decode = decoder_for(cast_to, strict=strict)
    try:
        return decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        utf8 = transcoded_json(data) if cast_to is not bytes else None
        if utf8 is not None:
            with contextlib.suppress(APIResponseValidationError):  # (then: this body's error)
                return decode_typed(utf8, cast_to, strict, status_code)
        name = getattr(cast_to, "__name__", repr(cast_to))
        reason = f"{exc}" if data else "the body is empty"
        raise APIResponseValidationError(
            f"Response body does not match {name}: {reason}",
            body=bytes(data[:_BODY_PREVIEW]),
            status_code=status_code,
        ) from exc


# Byte order marks, UTF-32 before UTF-16 (the UTF-32 LE mark starts with UTF-16 LE's).
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_UTF8_NAMES = frozenset({"utf-8", "utf8", "utf_8"})


def transcoded_json(data: bytes, charset: str | None = None) -> bytes | None:
    """``data`` as UTF-8 when it says it is in another form: it starts with a byte
    order mark, or ``charset`` (the declared one) is a known charset other than UTF-8;
    ``None`` when there is nothing to transcode or it cannot be.

    >>> transcoded_json(b'\\xef\\xbb\\xbf{"a": 1}')
    b'{"a": 1}'
    >>> transcoded_json('{"a": "é"}'.encode("latin-1"), "ISO-8859-1")
    b'{"a": "\\xc3\\xa9"}'
    >>> transcoded_json(b'{"a": 1}') is None
    True
    """
    for bom, codec in _BOMS:
        if data.startswith(bom):
            encoding = codec
            break
    else:
        if charset is None or charset.strip().lower() in _UTF8_NAMES:
            return None
        encoding = charset.strip()
    try:
        return bytes(data).decode(encoding).encode("utf-8")
    except (LookupError, UnicodeError):
        return None


def _has_non_finite(value: object) -> bool:
    # A loop, not recursion: msgspec encodes deeper than Python's recursion limit.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, float):
            if not math.isfinite(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)
    return False


def _has_absent(value: object) -> bool:
    """Whether a mapping in ``value`` has a ``NOT_GIVEN`` or `Omit` value."""
    if isinstance(value, Mapping):
        return any(isinstance(v, _ABSENT) or _has_absent(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_has_absent(v) for v in value)
    return False


def _without_absent(value: object) -> object:
    """``value`` with the ``NOT_GIVEN`` and `Omit` values of its mappings left out."""
    if isinstance(value, Mapping):
        return {k: _without_absent(v) for k, v in value.items() if not isinstance(v, _ABSENT)}
    if isinstance(value, (list, tuple)):
        return [_without_absent(v) for v in value]
    return value


def _encode_other(value: object) -> object:
    """What msgspec cannot encode itself (called only then): a `Mapping` that is no
    dict (a read-only view, a frozendict) is a JSON object too."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Encoding objects of type {type(value).__name__} is unsupported")


_ABSENT = (NotGiven, Omit)
_encoder = msgspec.json.Encoder(enc_hook=_encode_other)


def encode_json(value: object) -> bytes:
    """Compact JSON for a request body (any `Mapping` is an object); NaN and
    infinities are rejected.

    msgspec writes a non-finite float as ``null``; sending that would silently change
    the caller's data, so it is an `InvalidRequestError` instead. A dict's value that
    is ``NOT_GIVEN`` or `Omit` (an SDK method's parameter left out) is left out of it,
    at any depth; msgspec cannot encode them, so they are looked for only then.

    >>> encode_json({"a": [1, 2.5]})
    b'{"a":[1,2.5]}'
    >>> from stackwire import NOT_GIVEN, omit
    >>> encode_json({"a": 1, "b": NOT_GIVEN, "c": {"d": omit}})
    b'{"a":1,"c":{}}'
    """
    try:
        data = _encoder.encode(value)
    except (TypeError, msgspec.EncodeError) as exc:
        try:
            stripped = _without_absent(value) if _has_absent(value) else None
        except RecursionError as deep:
            raise InvalidRequestError(
                "json= is nested too deeply to look for NOT_GIVEN and Omit values in it, "
                f"and cannot be encoded as it is: {exc}"
            ) from deep
        if stripped is not None:
            return encode_json(stripped)
        raise InvalidRequestError(f"json= cannot be encoded as JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidRequestError("json= is nested too deeply to encode as JSON") from exc
    except UnicodeEncodeError as exc:  # a lone surrogate has no UTF-8 form
        raise InvalidRequestError(
            f"json= has a str that cannot be encoded as UTF-8 (a lone surrogate?): {exc.reason}"
        ) from exc
    if b"null" in data and _has_non_finite(msgspec.to_builtins(value, enc_hook=_encode_other)):
        raise InvalidRequestError("json= contains NaN or an infinity, which JSON cannot represent")
    return data
