"""The layers contract (DESIGN §5) holds, and it fails on an upward import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "stackwire", tmp_path / "stackwire")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_the_contract(tmp_path: Path) -> None:
    result = _lint(_copy_of_the_package(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "KEPT" in result.stdout


def test_an_upward_import_breaks_the_contract(tmp_path: Path) -> None:
    tree = _copy_of_the_package(tmp_path)
    urls = tree / "stackwire" / "_http" / "urls.py"
    urls.write_text(urls.read_text() + "\nfrom ..client import AsyncClient  # noqa\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert "stackwire._http is not allowed to import stackwire.client" in result.stdout


def test_no_import_loop_but_the_type_only_errors_edge() -> None:
    import grimp

    graph = grimp.build_graph("stackwire", exclude_type_checking_imports=False, cache_dir=None)

    def loops() -> list[tuple[str, str]]:
        return [
            (module, imported)
            for module in sorted(graph.modules)
            for imported in graph.find_modules_directly_imported_by(module)
            if graph.chain_exists(importer=imported, imported=module)
        ]

    assert loops()  # errors.py imports Request, Response, Attempt for annotations ...
    for imported in ("request", "response", "attempts"):
        graph.remove_import(importer="stackwire.errors", imported=f"stackwire.pipeline.{imported}")
    assert loops() == []  # ... and that edge is the only loop there is
