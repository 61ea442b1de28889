"""What every benchmark module shares: fresh worker processes, RSS, statistics, tables.

Each measured case runs in a fresh Python process (`run_worker`), so its RSS and CPU
time belong to that case alone: no import, allocation or cached connection of another
client leaks in. A worker is the benchmark module itself started with
`--worker '<json>'`; it prints one `RESULT {...}` line that the parent reads back.

A client library that is not available (stackwire before its core lands) makes its
worker answer `{"unavailable": reason}` instead of failing, and the tables say so.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULT_MARK = "RESULT "
NOT_AVAILABLE = "not available yet"

Result = dict[str, Any]

# Client and server on separate cores, so that neither takes CPU time from the other
# and the scheduler never moves them: the server (its own process) on one core, every
# measured worker on another. On a machine with fewer than two usable cores nothing
# is pinned.
CLIENT_CORE = 0
SERVER_CORE = 1


def pin_to(core: int) -> bool:
    """Pin this process to ``core`` (the index among the usable cores); False when the
    machine has fewer than two usable cores or pinning is not supported."""
    try:
        usable = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return False
    if len(usable) < 2:
        return False
    os.sched_setaffinity(0, {usable[core % len(usable)]})
    return True


# --- memory -------------------------------------------------------------------------


def memory_kib() -> dict[str, int]:
    """This process's current (`VmRSS`) and peak (`VmHWM`) resident set, in KiB."""
    values: dict[str, int] = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":", 1)
                values[name] = int(value.split()[0])
    return values


def rss_mib() -> float:
    return memory_kib()["VmRSS"] / 1024


def peak_rss_mib() -> float:
    return memory_kib()["VmHWM"] / 1024


def reset_peak_rss() -> bool:
    """Reset `VmHWM` to the current RSS (Linux `clear_refs` 5); False if not permitted."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


# --- worker processes ---------------------------------------------------------------


def run_worker(module: str, params: Mapping[str, Any], timeout: float = 300.0) -> Result:
    """Run `module` as a fresh worker process with `params`; return its result.

    A worker that crashes or times out gives `{"error": ...}` rather than an exception,
    so one broken client cannot stop the rest of the suite.
    """
    import subprocess

    command = [sys.executable, str(HERE / module), "--worker", json.dumps(dict(params))]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=HERE, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: Result = json.loads(line[len(RESULT_MARK) :])
            return result
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: " + " | ".join(tail)}


def worker_main(handlers: Mapping[str, Callable[[dict[str, Any]], Result]]) -> bool:
    """If this process was started as a worker, run the handler named in its params.

    Returns False when the process is not a worker, so a module can fall through to
    its own command line.
    """
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        return False
    params: dict[str, Any] = json.loads(sys.argv[2])
    handler = handlers[params.pop("case")]
    pin_to(CLIENT_CORE)
    try:
        result = handler(params)
    except Unavailable as error:
        result = {"unavailable": str(error)}
    except Exception as error:
        result = {"error": f"{type(error).__name__}: {error}"}
    print(RESULT_MARK + json.dumps(result), flush=True)
    return True


class Unavailable(Exception):
    """A client library (or one of its entry points) that this run cannot use."""


def import_stackwire() -> Any:
    """`stackwire`, once it has `AsyncClient` and `Model`; else raise `Unavailable`."""
    try:
        import stackwire

        stackwire.AsyncClient  # noqa: B018
        stackwire.Model  # noqa: B018
    except (ImportError, AttributeError) as error:
        raise Unavailable(f"{type(error).__name__}: {error}") from error
    return stackwire


def stackwire_status() -> str | None:
    """None when `stackwire.AsyncClient` and `stackwire.Model` exist, else the reason."""
    import subprocess

    probe = "import stackwire; stackwire.AsyncClient; stackwire.Model"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=HERE, check=False
    )
    if done.returncode == 0:
        return None
    lines = done.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


def cpu_seconds() -> float:
    """CPU time of this process (user + system), for CPU per operation."""
    times = os.times()
    return times.user + times.system


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU that process `pid` has used so far (0.0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- statistics ---------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return math.nan
    rank = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[rank]


class Spread:
    """Median with min and max of one metric across repetitions."""

    def __init__(self, values: Iterable[float]) -> None:
        self.values = [v for v in values if not math.isnan(v)]

    @property
    def median(self) -> float:
        import statistics

        return statistics.median(self.values) if self.values else math.nan

    def format(self, digits: int = 0, scale: float = 1.0) -> str:
        if not self.values:
            return "—"
        low, high = min(self.values) * scale, max(self.values) * scale
        return f"{self.median * scale:,.{digits}f} ({low:,.{digits}f}–{high:,.{digits}f})"


def paired_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> Spread:
    """Ratios of values taken in the same repetition: stackwire_i / baseline_i."""
    return Spread(n / d for n, d in zip(numerators, denominators, strict=False) if d > 0)


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    if math.isnan(value):
        return "not measured"
    met = value <= target if at_most else value >= target
    return "met" if met else "NOT met"


# --- tables -------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(str(cell) for cell in row) + " |" for row in rows)
    return "\n".join(lines)


def status_of(result: Result) -> str | None:
    """The text to show instead of numbers for a result that has none."""
    if "unavailable" in result:
        return NOT_AVAILABLE
    if "error" in result:
        return "error: " + str(result["error"])[:160].replace("|", "/")
    return None
