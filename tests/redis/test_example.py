"""examples/shared_limits.py (the snippets of docs/shared-limits.md) runs to the end
against the test Redis, as a user runs it (a subprocess, warnings as errors)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.redis.server import RedisServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shared_limits.py"


def test_the_shared_limits_example(redis_server: RedisServer) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "REDIS_URL": redis_server.url},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    took = float(lines[0].split(" took ")[1].split()[0])
    assert took >= 0.9  # 20 calls at 20/s from a bucket of 1, from two workers
    assert lines[0].endswith("one limit of 20/s for both")
    assert lines[1] == "worker 2 refused, not sent (probe in 30 s)"
    assert lines[2].startswith("worker 1: ")
    assert lines[3:] == ["local: 200", "raise: StateStoreError (never retried)"]
    # one warning for each store that found Redis unreachable, on stderr
    assert result.stderr.count("unreachable") == 2
