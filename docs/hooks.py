"""MkDocs hook: links from the manual to files of the repository outside ``docs/``.

A page links to ``../benchmarks/README.md`` or ``../examples/streaming.py``, which is
right when the page is read on a forge. For the site, each such file (and, for a
Markdown file, what it links to in turn) is copied in under ``repo/`` and the link is
pointed at the copy, so ``mkdocs build --strict`` still checks every link.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

_PREFIX = "repo/"
# A relative Markdown link target: ](path) or ](path#anchor), no scheme, not absolute.
_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|/|#)([^)\s#]+)(#[^)\s]*)?\)")


def _links(markdown: str) -> list[str]:
    return [match.group(1) for match in _LINK.finditer(markdown)]


def on_files(files: Files, config: MkDocsConfig) -> Files:
    docs = Path(config.docs_dir).resolve()
    root = docs.parent
    wanted: list[str] = []
    for file in list(files):
        if file.src_uri.endswith(".md"):
            page = (docs / file.src_uri).read_text(encoding="utf-8")
            base = posixpath.dirname(file.src_uri)
            for link in _links(page):
                target = posixpath.normpath(posixpath.join("docs", base, link))
                if not target.startswith("docs/") and not target.startswith(".."):
                    wanted.append(target)
    seen: set[str] = set()
    while wanted:
        path = wanted.pop()
        if path in seen or not (root / path).is_file():
            continue  # a missing file stays a broken link, which the build reports
        seen.add(path)
        files.append(File.generated(config, _PREFIX + path, abs_src_path=str(root / path)))
        if path.endswith(".md"):
            base = posixpath.dirname(path)
            for link in _links((root / path).read_text(encoding="utf-8")):
                target = posixpath.normpath(posixpath.join(base, link))
                if not target.startswith(".."):
                    wanted.append(target)
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if page.file.src_uri.startswith(_PREFIX):
        return markdown  # a copied file links relative to itself, inside repo/
    depth = page.file.src_uri.count("/")
    up = "../" * (depth + 1)

    def point_at_copy(match: re.Match[str]) -> str:
        link, anchor = match.group(1), match.group(2) or ""
        if not link.startswith(up) or link.startswith(up + "docs/"):
            return match.group(0)
        return f"]({'../' * depth}{_PREFIX}{link[len(up) :]}{anchor})"

    return _LINK.sub(point_at_copy, markdown)
