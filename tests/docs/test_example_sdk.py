"""examples/petstore, a small SDK on stackwire, passes its own test suite (written only
with stackwire.testing) with every socket connection refused and counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PETSTORE = ROOT / "examples" / "petstore"


def run_suite(
    folder: Path, tmp_path: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run pytest in ``folder`` as an SDK author would, plus the socket counter; the
    plugins are named explicitly so the run does not depend on what is installed."""
    count = tmp_path / "sockets.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
        "STACKWIRE_SOCKET_COUNT": str(count),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "stackwire.testing.pytest_plugin",
            "-p",
            "pytest_asyncio.plugin",
            "-p",
            "tests.docs.no_sockets_plugin",
            "-p",
            "no:cacheprovider",
            *args,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return result, count.read_text() if count.exists() else "missing"


def test_the_petstore_sdk_suite_passes_without_opening_a_socket(tmp_path: Path) -> None:
    result, sockets = run_suite(PETSTORE, tmp_path, "-q")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout, result.stdout
    assert sockets.splitlines()[0] == "0", sockets  # no network socket, not even made


def test_the_socket_counter_sees_a_connection(tmp_path: Path) -> None:
    test = tmp_path / "test_dial.py"
    test.write_text(
        "import socket, pytest\n"
        "def test_dial():\n"
        "    with pytest.raises(OSError):\n"
        "        socket.create_connection(('127.0.0.1', 9))\n"
    )
    result, sockets = run_suite(tmp_path, tmp_path, "-q", str(test))
    assert result.returncode == 0, result.stdout + result.stderr
    assert sockets.splitlines()[0] == "1", sockets
