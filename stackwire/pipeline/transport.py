"""The transport contract: the terminal stage of every stack.

A transport sends one attempt and hands back its `Response`; see `Transport`.
"""

from __future__ import annotations

import msgspec

__all__ = ["PoolStats"]


class PoolStats(msgspec.Struct, frozen=True):
    """Connections of the transport's pool: checked out by a request, and idle."""

    in_use: int
    idle: int
