"""`Workers`: a pool of warm worker processes (tests/redis/worker.py), each its own
Python interpreter, that run one spec together (see the worker for the spec)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["Workers"]

ROOT = Path(__file__).resolve().parents[2]


class Workers:
    def __init__(self, count: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "tests.redis.worker"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
                cwd=ROOT,
            )
            for _ in range(count)
        ]
        for process in self.processes:  # every interpreter imported everything
            assert process.stdout is not None
            line = process.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"a worker did not start (exit {process.wait()})")

    def run(self, **spec: Any) -> list[dict[str, Any]]:
        """Each worker runs ``spec`` (tagged ``p<index>``); their answers, in order.
        Blocking: call it with ``asyncio.to_thread`` from a test with a server."""
        for index, process in enumerate(self.processes):
            assert process.stdin is not None
            process.stdin.write(json.dumps({**spec, "tag": f"p{index}"}) + "\n")
            process.stdin.flush()
        answers = []
        for process in self.processes:
            assert process.stdout is not None
            line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"a worker died (exit {process.wait()})")
            answers.append(json.loads(line))
        return answers

    def close(self) -> None:
        for process in self.processes:
            assert process.stdin is not None
            process.stdin.close()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
