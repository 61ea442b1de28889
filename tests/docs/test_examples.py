"""The runnable examples the README shows: each runs to the end and prints what it says.

The scripts run as users run them (a subprocess, warnings as errors), except the
quickstart, which retries with real backoff: it runs in-process with a fake sleep.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import SleepRecorder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(name: str) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_quickstart(capsys: pytest.CaptureFixture[str], client_sleeps: SleepRecorder) -> None:
    sys.path.insert(0, str(EXAMPLES))
    try:
        import quickstart
    finally:
        sys.path.remove(str(EXAMPLES))
    assert await quickstart.main(sleep=client_sleeps) == 0
    out = capsys.readouterr().out
    assert "1. headers" in out
    assert "6. attempt_log" in out
    assert "429 -> 200" in out
    assert "500 -> 500 -> 200" in out
    assert "    attempt 0: 500 InternalServerError in " in out  # the attempt history
    assert "    attempt 2: 200 ok in " in out
    assert "NotFoundError" in out
    assert "['chunk 0', 'chunk 1', 'chunk 2']" in out
    assert "(2 a page)         attempts: 200 -> 200 " in out  # two pages of users
    assert "['Ada', 'Grace', 'Edsger', 'Barbara']" in out
    assert "'filename': 'notes.txt', 'size': 21" in out
    assert "'purpose': 'demo'" in out
    assert "PoolStats(in_use=0, idle=1)" in out
    # the 429 asked for 200 ms; the two 500s got backoff
    assert client_sleeps.delays[0] == 0.2
    assert len(client_sleeps.delays) == 3


def test_redirects_example() -> None:
    out = run_example("redirects.py")
    assert "{'landed': True} /landing" in out
    assert "[None]" in out  # the API key never reached the other origin
    assert out.splitlines()[-1].startswith("307 http://127.0.0.1:")


def test_pagination_uploads_example() -> None:
    out = run_example("pagination_uploads.py")
    assert "user1" in out
    assert "user5" in out
    assert "{'fields': ['extra', 'file', 'purpose']}" in out
    assert "200 HTTP/1.1 req_1 0" in out
    assert "0123456789abcdef" not in out  # the key is shown redacted


def test_sync_client_example() -> None:
    out = run_example("sync_client.py")
    assert "created and read back: User(id=1, name='Ada')" in out
    assert "not found: 404" in out
    assert "event: 2 chunk 2" in out
    assert "PoolStats(in_use=0, idle=1)" in out


def test_hmac_signing_example() -> None:
    out = run_example("hmac_signing.py")
    assert "{'verified': True, 'bytes': 5}" in out
    assert "wrong key: 401" in out


def test_custom_auth_example() -> None:
    out = run_example("custom_auth.py")
    assert out.strip() == "{'user': 'alice'} tokens issued: 2"


def test_streaming_example() -> None:
    out = run_example("streaming.py")
    lines = out.splitlines()
    assert [line for line in lines if line.startswith("delta")] == [
        "delta 0: 'chunk 0'",
        "delta 1: 'chunk 1'",
        "delta 2: 'chunk 2'",
    ]  # the terminal "done" event is not shown as a Delta
    assert "events: [('delta', '0'), ('done', '0')]" in out
    assert "in use after stopping early: 0" in out
    assert lines[-1] == "at the end: PoolStats(in_use=0, idle=1)"


def test_metrics_middleware_example() -> None:
    out = run_example("metrics_middleware.py")
    lines = out.splitlines()
    assert lines[3:5] == ["4. call_metrics", "5. retry"]
    assert "7. attempt_metrics" in lines
    # A POST at once, a 429 then 200, two 500s then 200: 3 calls, 6 attempts.
    assert (
        "{'2xx': 3, '4xx': 1, '5xx': 2, 'attempts': 6, 'calls': 3, 'retries': 3, "
        "'reused connections': 5}" in out
    )
    assert lines[-3].startswith("attempt 0: 500 InternalServerError in ")
    assert "(reused: True), then slept 0.0" in lines[-3]
    assert lines[-1].startswith("attempt 2: 200 ok in ")
    assert lines[-1].endswith("(reused: True)")
