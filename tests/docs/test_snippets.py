"""Every Python snippet of the README and docs/ is a run file, and the reference pages
say what the code does.

- No ```python block in docs/*.md is written inline: each is a snippet include of a
  file (or a region of one) under examples/, or a doctest, which runs here.
- The README cannot include files (forges do not render snippet includes): its one
  Python block is a copy of an examples/ region, named in the comment above it, and
  must stay equal to it.
- The exception tree of docs/errors.md is the one in stackwire/errors.py.
- The options table of docs/client.md has a row for every option of the client, of
  with_options() and of the verbs, says where each can be given, and shows the
  client's real defaults.
"""

from __future__ import annotations

import doctest
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

import stackwire
import stackwire.errors
from stackwire.client._config import _Config
from stackwire.client._verbs import BaseCallOptions, CallOptions
from stackwire.client.async_client import ClientOptions, DerivedOptions
from stackwire.sync.client import SyncCallOptions

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.glob("*.md"))

_FENCE = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)
_INCLUDE = re.compile(r'^--8<-- "([^":]+)(?::([\w-]+))?"$')
_MARKER = re.compile(r"#\s*--8<--\s*\[(start|end):([\w-]+)\]")


def python_blocks(text: str) -> list[str]:
    return _FENCE.findall(text)


def region(path: Path, name: str | None) -> str:
    """The text a snippet include of ``path`` (``name``: one section) puts in a page:
    the lines between the markers, dedented, without any marker line."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if name is not None:
        start = next(i for i, line in enumerate(lines) if f"[start:{name}]" in line)
        end = next(i for i, line in enumerate(lines) if f"[end:{name}]" in line and i > start)
        lines = lines[start + 1 : end]
    kept = [line for line in lines if _MARKER.search(line) is None]
    return textwrap.dedent("\n".join(kept)).strip("\n") + "\n"


def test_pages_are_found() -> None:
    names = {page.name for page in PAGES}
    assert {"index.md", "client.md", "errors.md", "authentication.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_no_inline_python_in_docs(page: Path) -> None:
    for block in python_blocks(page.read_text(encoding="utf-8")):
        lines = [line for line in block.splitlines() if line.strip()]
        if lines and lines[0].startswith(">>>"):
            continue  # a doctest: run by test_doctests_in_docs
        for line in lines:
            match = _INCLUDE.match(line)
            assert match, (
                f"{page.name}: a ```python block written inline ({line!r}); put the code "
                'in a file under examples/ and include it with --8<-- "examples/x.py:part"'
            )
            target = ROOT / match.group(1)
            assert match.group(1).startswith("examples/"), line
            assert target.is_file(), f"{page.name}: {line} names no file"
            if match.group(2) is not None:
                assert region(target, match.group(2)).strip(), f"{page.name}: {line} is empty"


def doctest_blocks(page: Path) -> list[str]:
    """The ```python blocks of a page that are doctests (they start with ``>>>``)."""
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    return [block for block in blocks if block.lstrip().startswith(">>>")]


def test_docs_have_doctests() -> None:
    """The doctest path of test_no_inline_python_in_docs is taken, and run."""
    assert sum(len(doctest_blocks(page)) for page in PAGES) >= 1


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_doctests_in_docs(page: Path) -> None:
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for number, block in enumerate(doctest_blocks(page)):
        test = parser.get_doctest(block, {}, f"{page.name}[{number}]", str(page), 0)
        runner.run(test)
    assert runner.failures == 0


def test_readme_first_example_is_the_examples_region() -> None:
    text = README.read_text(encoding="utf-8")
    found = re.findall(
        r"<!-- (examples/[\w.]+):([\w-]+) -->\n```python\n(.*?)^```$", text, re.S | re.M
    )
    assert len(python_blocks(text)) == len(found) == 1, (
        "the README has one Python block, a copy of an examples/ region named in an "
        "<!-- examples/x.py:part --> comment just above it"
    )
    for path, name, block in found:
        assert block == region(ROOT / path, name), f"README block differs from {path}:{name}"


def test_errors_page_shows_the_exception_tree() -> None:
    source_tree = (stackwire.errors.__doc__ or "").split("```")[1].strip("\n")
    page = (DOCS / "errors.md").read_text(encoding="utf-8")
    page_tree = page.split("```text\n", 1)[1].split("```", 1)[0].strip("\n")
    assert page_tree == source_tree
    for name in stackwire.__all__:
        value = getattr(stackwire, name)
        if isinstance(value, type) and issubclass(value, BaseException):
            assert re.search(rf"\b{name}\b", page_tree), f"{name} is missing from the tree"


# -- the options table -----------------------------------------------------------------


def options_table() -> dict[str, list[str]]:
    """The rows of docs/client.md's options table: name -> [type, default, where, does]."""
    page = (DOCS / "client.md").read_text(encoding="utf-8")
    section = page.split("## Every option\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == 5, line
        name = cells[0].strip("`")
        assert name not in rows, f"{name} has two rows"
        rows[name] = cells[1:]
    return rows


def _keys(*typed_dicts: Any) -> set[str]:
    return {key for typed_dict in typed_dicts for key in typed_dict.__annotations__} | {
        key for typed_dict in typed_dicts for key in getattr(typed_dict, "__optional_keys__", ())
    }


CLIENT_OPTIONS = _keys(ClientOptions) | {"base_url", "env_prefix"}
DERIVED_ONLY = _keys(DerivedOptions) - CLIENT_OPTIONS
REQUEST_OPTIONS = _keys(BaseCallOptions, CallOptions, SyncCallOptions) | {"cast_to", "stream"}


def test_options_table_has_every_option_once() -> None:
    rows = options_table()
    assert set(rows) == CLIENT_OPTIONS | DERIVED_ONLY | REQUEST_OPTIONS


def test_options_table_says_where_each_option_goes() -> None:
    for name, (_, _, where, _) in options_table().items():
        if name in DERIVED_ONLY:
            assert where == "`with_options`", name
        elif name in CLIENT_OPTIONS and name in REQUEST_OPTIONS:
            assert where == "client, request", name
        elif name in REQUEST_OPTIONS:
            assert where == "request", name
        else:
            assert where.startswith("client"), name
            assert "request" not in where, name


def test_options_table_shows_the_real_defaults() -> None:
    rows = options_table()
    config = _Config(base_url=URL("http://api.test/"))
    for name in _Config.__struct_fields__:
        if name == "base_url":
            continue
        value = getattr(config, name)
        default = rows[name][1]
        if isinstance(value, (bool, int, float, str, type(None), stackwire.Timeout, tuple)):
            assert f"`{value!r}`" in default, f"{name}: the table says {default}, not {value!r}"
        elif callable(value):
            module = getattr(value, "__module__", None) or ""
            qualname = getattr(value, "__qualname__", getattr(value, "__name__", ""))
            assert qualname.split(".")[-1] in default, f"{name}: {default} vs {module}.{qualname}"
        elif isinstance(value, (dict, frozenset)):
            assert not value, name
            assert default in ("`{}`", "`()`"), f"{name}: {default}"
