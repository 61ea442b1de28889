"""Request bodies from the verbs' keywords: ``json=``, ``content=``, ``data=``, ``files=``.

At most one of ``json`` and ``content``; ``data`` and ``files`` go together (a form,
multipart when there are files) and ``json`` may join ``files`` as a form field only
when it is a mapping. GET and HEAD carry no body at all. Every conflict is an
`InvalidRequestError` before any I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any
from urllib.parse import urlencode

from ._query import encode_params
from ._types import NOT_GIVEN
from .errors import InvalidRequestError
from .models.decoding import encode_json
from .pipeline.body import Body, StreamingBody

__all__ = ["build_body"]

_NO_BODY_METHODS = frozenset({"GET", "HEAD"})


def build_body(
    method: str,
    *,
    json: Any = NOT_GIVEN,
    content: bytes | AsyncIterable[bytes] | None = None,
    data: Mapping[str, object] | None = None,
    files: Any = None,
) -> tuple[Body | None, str | None]:
    """The body and its ``Content-Type`` for one call.

    >>> build_body("POST", json={"a": 1})
    (b'{"a":1}', 'application/json')
    >>> build_body("POST", data={"q": "x y", "tags": ["a", "b"]})
    (b'q=x+y&tags=a&tags=b', 'application/x-www-form-urlencoded')
    """
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
        return None, None
    if method in _NO_BODY_METHODS:
        raise InvalidRequestError(f"a {method} request has no body; {given[0]}= cannot be sent")
    if "content" in given and len(given) > 1:
        raise InvalidRequestError(
            f"content= cannot be combined with {given[1] if given[0] == 'content' else given[0]}="
        )
    if "json" in given and "data" in given:
        raise InvalidRequestError("json= and data= cannot be combined; pick one body")
    if files is not None:
        raise NotImplementedError("files= (multipart uploads) is not implemented yet")
    if json is not NOT_GIVEN:
        return encode_json(json), "application/json"
    if data is not None:
        if not isinstance(data, Mapping):
            raise InvalidRequestError(f"data= must be a mapping, got {type(data).__name__}")
        return urlencode(encode_params(data)).encode("ascii"), "application/x-www-form-urlencoded"
    if isinstance(content, (bytes, bytearray, memoryview)):
        return bytes(content), None
    if isinstance(content, AsyncIterable):
        return StreamingBody(content), None
    raise InvalidRequestError(
        f"content= must be bytes or an async iterable of bytes, got {type(content).__name__}"
    )
