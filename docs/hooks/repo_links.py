"""MkDocs hook (mkdocs.yml `hooks:`): links from docs/ to the rest of the repository (../README.md#a-heading,
../bench/README.md) are checked as strictly as MkDocs checks links between pages, and made right for the site.

MkDocs knows only docs/; such a link, which works when browsing the repository, would be a warning it cannot tell from
a broken one. Here it is checked instead: the file must exist in the repository, and a heading anchor must name a
heading of that Markdown file (slugged as the site slugs, GitHub's way); if not, a warning, which fails the strict
build. On the site it then points at the file in the repository (`repo_url` + /blob/main/) or, with no repo_url set,
becomes its text and the file's path in code."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.plugins import get_plugin_logger

log = get_plugin_logger(__name__)

LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    root = Path(config.config_file_path).parent
    docs = Path(config.docs_dir)

    def outside(m: re.Match[str]) -> str:
        url = m["url"]
        if "://" in url or url.startswith(("#", "/", "mailto:")):
            return m[0]
        path, _, anchor = url.partition("#")
        target = (docs / posixpath.dirname(page.file.src_uri) / path).resolve()
        if target.is_relative_to(docs.resolve()):
            return m[0]  # a page of the site: MkDocs checks it
        where = target.relative_to(root.resolve()).as_posix() if target.is_relative_to(root.resolve()) else None
        if where is None or not target.exists():
            log.warning(f"Doc file '{page.file.src_uri}' links to '{url}', which is not in the repository")
            return m[0]
        if anchor and target.suffix == ".md" and anchor not in _anchors(target, config):
            log.warning(f"Doc file '{page.file.src_uri}' links to '{url}': {where} has no heading '#{anchor}'")
        if config.repo_url:
            return f"[{m['text']}]({config.repo_url.rstrip('/')}/blob/main/{where}{'#' + anchor if anchor else ''})"
        return f"`{where}`" if m["text"].strip("`") == where else f"{m['text']} (`{where}`)"

    return LINK.sub(outside, markdown)


def _anchors(md: Path, config: Any) -> set[str]:
    slugify = config.mdx_configs.get("toc", {}).get("slugify")
    text = FENCE.sub("", md.read_text(encoding="utf-8"))
    return {slugify(h["title"], "-") for h in HEADING.finditer(text)}
