"""A pytest plugin (``-p tests.docs.no_sockets_plugin``) for running another test suite
with network sockets refused and counted: creating an IPv4/IPv6 socket, ``connect`` and
the event loop's ``create_connection`` all fail (the loop's own AF_UNIX self-pipe is
allowed). At exit it writes how many were tried to the file named by
``STACKWIRE_SOCKET_COUNT``."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any, NoReturn

import pytest

_attempts: list[str] = []


def _refuse(*args: Any, **kwargs: Any) -> NoReturn:
    _attempts.append(repr(args[1:] or kwargs))
    raise ConnectionRefusedError("sockets are off in this run")


async def _refuse_async(*args: Any, **kwargs: Any) -> NoReturn:
    _refuse(*args, **kwargs)


_socket_init = socket.socket.__init__


def _guarded_init(self: socket.socket, family: Any = -1, *args: Any, **kwargs: Any) -> None:
    if family in (socket.AF_INET, socket.AF_INET6, -1) and not kwargs.get("fileno"):
        if family == -1 and not args:
            family = socket.AF_INET  # socket.socket() defaults to IPv4
        if family in (socket.AF_INET, socket.AF_INET6):
            _attempts.append(f"socket({family!r})")
            raise PermissionError("network sockets are off in this run")
    _socket_init(self, family, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    socket.socket.__init__ = _guarded_init  # type: ignore[method-assign]
    socket.socket.connect = _refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
    asyncio.BaseEventLoop.create_connection = _refuse_async  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    target = os.environ.get("STACKWIRE_SOCKET_COUNT")
    if target:
        Path(target).write_text(f"{len(_attempts)}\n" + "\n".join(_attempts))
