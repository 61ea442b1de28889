"""The manual builds: ``mkdocs build --strict`` (what ``make docs`` runs) passes, so a
broken link, a missing anchor, a snippet naming a file or section that is gone, or a
page left out of the nav fails CI."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_docs_build_strict(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,  # snippet paths (examples/...) are relative to the repository root
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    options = (site / "client" / "index.html").read_text(encoding="utf-8")
    assert "max_connections" in options
    # the snippet include became the example's code, markers gone
    first = re.sub(r"<[^>]+>", "", (site / "index.html").read_text(encoding="utf-8"))
    assert "class User(stackwire.Model)" in first
    assert "--8&lt;--" not in first
    assert "[start:" not in first
    # a link to a repository file outside docs/ points at the copy the hook made
    assert (site / "repo" / "benchmarks" / "index.html").is_file()
