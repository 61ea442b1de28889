"""Query-string encoding: a pure function from parameters to ``(key, value)`` pairs.

- ``True``/``False`` become ``true``/``false``; ``None``, `Omit` and ``NOT_GIVEN`` are
  dropped (at any depth): a generated method's ``limit: int | Omit = omit`` leaves
  ``limit`` out;
- arrays (lists and tuples) follow ``array_format``:
  ``repeat`` ``a=1&a=2``, ``brackets`` ``a[]=1&a[]=2``, ``indices`` ``a[0]=1&a[1]=2``,
  ``comma`` ``a=1,2``;
- mappings follow ``nested_format``: ``brackets`` ``a[b]=1``, ``dots`` ``a.b=1``.

The same rules encode form bodies (``data=``).
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Collection, Mapping
from typing import Literal, TypeAlias
from urllib.parse import unquote_plus

from .._types import NotGiven, Omit
from ..errors import InvalidRequestError

__all__ = ["ArrayFormat", "NestedFormat", "encode_params", "primitive", "split_written"]

ArrayFormat: TypeAlias = Literal["repeat", "brackets", "indices", "comma"]
NestedFormat: TypeAlias = Literal["brackets", "dots"]

ARRAY_FORMATS: frozenset[str] = frozenset({"repeat", "brackets", "indices", "comma"})
NESTED_FORMATS: frozenset[str] = frozenset({"brackets", "dots"})
# A lone surrogate has no UTF-8 form: yarl and aiohttp would drop it silently.
_SURROGATE = re.compile("[\ud800-\udfff]")


def _text(value: str, what: str) -> str:
    if _SURROGATE.search(value) is not None:
        raise InvalidRequestError(
            f"a query or form {what} has a lone surrogate, which has no UTF-8 form: {value!r}"
        )
    return value


def primitive(value: object) -> str:
    """The text of one scalar parameter value.

    A subclass of ``str``, ``int`` or ``float`` (a ``class Order(str, Enum)`` member)
    is sent as the value it holds: its ``str()`` is ``'Order.ASC'``, not ``'asc'``. A
    plain Enum member is sent as its ``value``, as msgspec writes it in JSON.

    >>> primitive(True), primitive(1.5), primitive("x")
    ('true', '1.5', 'x')
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _text(value if type(value) is str else str.__str__(value), "value")
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if not math.isfinite(value):  # "nan" or "inf" would reach the API as a value
            raise InvalidRequestError(
                f"a query or form value is {value!r}, which has no value on the wire "
                "(as JSON, which cannot represent it either)"
            )
        return float.__repr__(value)
    if isinstance(value, enum.Enum) and isinstance(value.value, (str, int, float)):
        return primitive(value.value)
    raise InvalidRequestError(
        f"a query or form value must be a str, int, float, bool, None, list or mapping; "
        f"got {type(value).__name__}"
    )


def _key(key: object) -> str:
    """The text of a parameter name: a str, or an int (``{1: "a"}`` sends ``1=a``)."""
    if isinstance(key, str):
        return _text(key if type(key) is str else str.__str__(key), "key")
    if isinstance(key, int) and not isinstance(key, bool):
        return int.__repr__(key)
    if isinstance(key, enum.Enum) and isinstance(key.value, (str, int)):
        return _key(key.value)
    raise InvalidRequestError(
        f"a query or form key must be a str (or an int), got {type(key).__name__}: {key!r:.50}"
    )


def encode_params(
    params: Mapping[str, object],
    *,
    array_format: ArrayFormat = "repeat",
    nested_format: NestedFormat = "brackets",
) -> list[tuple[str, str]]:
    """Flatten ``params`` into ``(key, value)`` pairs, in order.

    >>> encode_params({"a": [1, 2], "f": {"x": True}, "n": None}, array_format="brackets")
    [('a[]', '1'), ('a[]', '2'), ('f[x]', 'true')]
    >>> encode_params({"f": {"x": 1}}, nested_format="dots")
    [('f.x', '1')]
    """
    pairs: list[tuple[str, str]] = []
    try:
        for key, value in params.items():
            _flatten(_key(key), value, pairs, array_format, nested_format)
    except RecursionError as exc:
        raise InvalidRequestError("a query or form value is nested too deeply to encode") from exc
    return pairs


def _flatten(
    key: str,
    value: object,
    out: list[tuple[str, str]],
    array_format: str,
    nested_format: str,
) -> None:
    if value is None:
        return
    if isinstance(value, Mapping):
        for sub_key, sub_value in value.items():
            sub_key = _key(sub_key)
            child = f"{key}.{sub_key}" if nested_format == "dots" else f"{key}[{sub_key}]"
            _flatten(child, sub_value, out, array_format, nested_format)
        return
    if isinstance(value, (list, tuple)):
        if array_format == "comma":
            if any(isinstance(item, (Mapping, list, tuple)) for item in value):
                raise InvalidRequestError(
                    f"query_array_format='comma' joins scalars only; {key!r} holds a list "
                    "or mapping inside its list"
                )
            items = [primitive(item) for item in value if not _absent(item)]
            if items:
                out.append((key, ",".join(items)))
            return
        for index, item in enumerate(value):
            if array_format == "brackets":
                child = f"{key}[]"
            elif array_format == "indices":
                child = f"{key}[{index}]"
            else:
                child = key
            _flatten(child, item, out, array_format, nested_format)
        return
    if isinstance(value, (Omit, NotGiven)):
        return
    out.append((key, primitive(value)))


def _absent(value: object) -> bool:
    """Whether ``value`` leaves its key out: ``None``, `Omit` or ``NOT_GIVEN``."""
    return value is None or isinstance(value, (Omit, NotGiven))


def split_written(written: str, replaced: Collection[str]) -> tuple[str, frozenset[str]]:
    """A query string written in a path, without the pairs whose (decoded) name is in
    ``replaced``, and the names of the pairs it keeps. The pairs kept are not
    re-encoded: ``%20`` stays ``%20``.

    >>> written, names = split_written("q=a%20b&limit=10&tag=x", {"limit"})
    >>> written, sorted(names)
    ('q=a%20b&tag=x', ['q', 'tag'])
    """
    kept: list[str] = []
    names: set[str] = set()
    for piece in written.split("&"):
        if not piece:
            continue
        name = unquote_plus(piece.partition("=")[0])
        if name not in replaced:
            kept.append(piece)
            names.add(name)
    return "&".join(kept), frozenset(names)
