"""How stackwire is built and installed (issue 11 items 9, 10): the editable install is
a plain ``.pth`` line that type checkers follow, with no deprecation on the way; the
wheel ships ``py.typed``; the optional codings are extras."""

from __future__ import annotations

import tomllib
import warnings
import zipfile
from pathlib import Path

import hatchling.build
import pytest

import stackwire

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_editable_wheel_is_a_plain_pth_line_with_the_project_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert PYPROJECT["build-system"]["build-backend"] == "hatchling.build"
    monkeypatch.chdir(ROOT)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecation from the backend or our config
        name = hatchling.build.build_editable(str(tmp_path))
    with zipfile.ZipFile(tmp_path / name) as wheel:
        files = wheel.namelist()
        pth = [f for f in files if f.endswith(".pth")]
        assert len(pth) == 1
        # A path, which mypy and pyright follow; never an import hook (`import ...`).
        assert wheel.read(pth[0]).decode().strip() == str(ROOT)
        assert not [f for f in files if f.endswith(".py")]
        metadata = wheel.read(next(f for f in files if f.endswith("METADATA"))).decode()
    assert f"Version: {stackwire.__version__}" in metadata
    assert "License-Expression: MIT" in metadata


def test_the_wheel_ships_the_package_with_py_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    name = hatchling.build.build_wheel(str(tmp_path))
    with zipfile.ZipFile(tmp_path / name) as wheel:
        files = set(wheel.namelist())
    assert "stackwire/py.typed" in files
    assert "stackwire/_version.py" in files
    assert "stackwire/_http/content_encoding.py" in files
    assert not [f for f in files if f.startswith(("tests/", "examples/", "benchmarks/"))]


def test_the_makefile_installs_without_setuptools_options() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "editable_mode" not in makefile
    assert "--config-settings" not in makefile


def test_the_optional_codings_are_extras_and_in_dev() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["brotli"] == ["brotli>=1.2"]
    assert extras["zstd"] == ["zstandard>=0.22"]
    assert set(extras["brotli"] + extras["zstd"]) <= set(extras["dev"])
    assert any(dep.startswith("hatchling") for dep in extras["dev"])
