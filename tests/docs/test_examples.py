"""The runnable examples the README and docs/ show: each runs to the end and prints what it says.

The scripts run as users run them (a subprocess, warnings as errors), except the
quickstart, which retries with real backoff: it runs in-process with a fake sleep.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SleepRecorder

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DOCS = EXAMPLES.parent / "docs"


# Run in-process here (quickstart), not an example (demo_server), or run by the tests
# of what it needs (shared_limits: a Redis server, tests/redis/test_example.py).
_ELSEWHERE = {"demo_server.py", "quickstart.py", "shared_limits.py"}

_RUNS: dict[str, subprocess.Popen[str]] = {}
_STARTED: set[str] = set()


def _start_all() -> None:
    """Start every example script at once (each takes ~2 s, mostly imports); the
    tests then collect their output one by one."""
    for path in sorted(EXAMPLES.glob("*.py")):
        if path.name in _ELSEWHERE or path.name in _STARTED:
            continue
        _STARTED.add(path.name)
        _RUNS[path.name] = subprocess.Popen(
            [sys.executable, "-W", "error", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture(autouse=True, scope="module")
def _reap_examples() -> Iterator[None]:
    """Scripts started for tests that did not run (``-k``) are stopped at the end."""
    yield
    while _RUNS:
        _, process = _RUNS.popitem()
        process.kill()
        process.communicate()


def run_example(name: str) -> str:
    return run_example_with_stderr(name)[0]


def run_example_with_stderr(name: str) -> tuple[str, str]:
    _start_all()
    process = _RUNS.pop(name)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.returncode is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    return stdout, stderr


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


def test_first_call_example() -> None:
    out = run_example("first_call.py")
    lines = out.splitlines()
    assert lines[0] == "User(id=1, name='Ada')"
    assert lines[1:] == [
        "1. headers",
        "2. query",
        "3. timeout",
        "4. retry",
        "5. decode",
        "6. redirects",
    ]


def test_sdk_methods_example() -> None:
    lines = run_example("sdk_methods.py").splitlines()
    assert lines == [
        "GET https://api.test/v1/pets?limit=50 X-Retry-Count: 0",
        "[Pet(id=1, name='Rex')]",
        "GET https://api.test/v1/pets?limit=10&species=dog X-Retry-Count: 0",
        "GET https://api.test/v1/pets?limit=50 X-Retry-Count: None",
    ]


def test_middlewares_example() -> None:
    out = run_example("middlewares.py")
    lines = out.splitlines()
    assert lines[0] == "log: POST /v1/users 201"
    # the pipeline the docs page shows is the one the example prints
    page = (DOCS / "middlewares.md").read_text(encoding="utf-8")
    shown = page.split("The printed pipeline of `traced` is:\n\n```text\n", 1)[1]
    shown = shown.split("```", 1)[0]
    assert "\n".join(lines[1:12]) + "\n" == shown
    # above retry once per call, below it once per attempt
    assert [line for line in lines if line.startswith("attempt ")] == [
        "attempt 0 of trace-1",
        "attempt 1 of trace-1",
        "attempt 2 of trace-1",
    ]
    assert lines[-1] == "attempts timed: 4"  # one POST, three GET attempts


def test_retries_example() -> None:
    out = run_example("retries.py")
    assert "[0.5, 1.0, 2.0, 4.0]" in out
    assert "retry after attempt 0: status 424, sleeping 0.50 s\n{'ready': True}" in out
    assert "no retry: 500 retries_taken = 0" in out
    assert "{'retry_count': '2', 'idempotency_key': 'stackwire-retry-" in out
    assert "timed out: APITimeoutError" in out
    assert "deadline: Deadline of 0.3 s would pass during the 0.5 s wait" in out


def test_stream_formats_example() -> None:
    out = run_example("stream_formats.py")
    assert out.splitlines() == [
        "Hello",
        "[0, 1, 2]",
        "refused: cannot stream a body of Content-Type 'application/json'",
        "got: partial",
        "incomplete: StreamError",
        "got: a",
        "error event: {'message': 'overloaded'}",
        "in use at the end: 0",
    ]


def test_errors_example() -> None:
    out = run_example("errors.py")
    assert "404 {'error': {'message': 'no user 999', 'status': 404}}" in out
    assert "validation: Response body does not match list" in out
    assert "invalid: header 'X-Note' has a CR, LF or NUL" in out
    assert "connection: APIConnectionError" in out
    assert out.splitlines()[-1] == "status 404"


def test_security_example() -> None:
    out = run_example("security.py")
    assert "0123456789abcdef" not in out  # the key, never whole
    assert "session-0123456789" not in out
    assert "api_key='***cdef'" in out
    assert "('Authorization', '***cdef'), ('X-Session', '***6789')" in out
    assert 'Error code: 401 - {"error":"bad credential Bearer ***cdef"}' in out
    assert "[{'Authorization': None, 'X-Session': None}]" in out
    assert "too large: Response body exceeds max_response_bytes=1024" in out


def test_bearer_token_example() -> None:
    out = run_example("bearer_token.py")
    assert out.splitlines() == [
        "{'auth': 'Bearer token-1'}",
        "{'auth': 'Bearer token-1'}",
        "['headers', 'query', 'timeout', 'retry', 'decode', 'redirects', 'auth']",
        "tokens issued: 1",
    ]


def test_every_example_is_run_here() -> None:
    """A new file under examples/ gets a test in this module (the docs include them)."""
    source = Path(__file__).read_text(encoding="utf-8")
    for path in sorted(EXAMPLES.glob("*.py")):
        if path.name == "demo_server.py":
            continue  # the API the others run against
        if path.name == "quickstart.py":
            assert "import quickstart" in source
            continue
        if path.name == "shared_limits.py":
            tests = (Path(__file__).parents[1] / "redis" / "test_example.py").read_text()
            assert "shared_limits.py" in tests
            continue
        runs = (f'run_example("{path.name}")', f'run_example_with_stderr("{path.name}")')
        assert any(run in source for run in runs), f"{path.name} is not run by a test"


def test_custom_transport_example() -> None:
    out = run_example("custom_transport.py")
    assert out.splitlines() == [
        "User(id=7, name='Ada')",
        "['Hello', 'world']",
        "0 https://api.example.com/v1/users/7",
    ]


def test_testing_your_sdk_example() -> None:
    out = run_example("testing_your_sdk.py")
    assert "User(id=1, name='Ada') User(id=2, name='Grace')" in out
    assert 'POST https://api.example.com/v1/users b\'{"name":"Grace"}\'' in out
    assert "idempotency key: True" in out
    assert "retries: 2 slept: [0.394, 2.0]" in out
    assert "retry counts: ['0', '1', '2']" in out
    assert "  GET /users/{id}: segment 1 is 'user', not 'users'" in out
    assert "kinds: ['503', 'connection_reset', 'malformed', 'timeout']" in out
    assert "replayed: True User(id=1, name='Ada')" in out
    assert "key in the file: False" in out
    assert out.splitlines()[-1] == "blocking: User(id=1, name='Ada')"


def test_resilient_llm_client_example() -> None:
    out = run_example("resilient_llm_client.py")
    lines = out.splitlines()
    assert "6. circuit_breaker" in lines
    assert "7. rate_limit" in lines
    # paced by the announced budget: every call answered, none refused with a 429
    assert "replies: 12, 429s: 0" in lines
    reached = int(next(line for line in lines if line.startswith("/down:")).split()[3])
    fast = int(
        next(line for line in lines if line.startswith("failed fast:")).split()[2].rstrip(",")
    )
    assert reached < 30  # a dead upstream sees fewer requests than calls
    assert fast >= 10  # once open, the breaker fails calls without a request
    assert lines[-1] == "connections in use: 0"


def test_metrics_middleware_example() -> None:
    out, errors = run_example_with_stderr("metrics_middleware.py")
    assert "Unclosed" not in errors  # the client that owns the session is closed
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
