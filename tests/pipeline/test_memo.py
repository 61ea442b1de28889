"""`IdentityMemo`: answers by identity, never by equality, within its size."""

from __future__ import annotations

from stackwire.pipeline._memo import MISSING, IdentityMemo
from stackwire.pipeline.options import RequestOptions


def test_the_memo_answers_by_identity_whatever_was_asked_last() -> None:
    memo: IdentityMemo[RequestOptions] = IdentityMemo(size=2)
    a, b, c = RequestOptions(), RequestOptions(stream=True), RequestOptions()
    resolved_a, resolved_b = RequestOptions(timeout=1.0), RequestOptions(timeout=2.0)
    memo.put(a, resolved_a)
    memo.put(b, resolved_b)
    memo.put(c, RequestOptions(timeout=3.0))  # past the size: only as the last one
    for _ in range(2):  # alternating, so the last-found entry changes every time
        assert memo.get(a) is resolved_a
        assert memo.get(b) is resolved_b
        assert memo.get(c) is MISSING  # equal to `a`, but not the same object
    assert memo.get(a) is resolved_a
    assert memo.get(a) is resolved_a  # found again through the last entry
