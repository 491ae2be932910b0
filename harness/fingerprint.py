"""What a result was made with, as content hashes, so that results made with different code, manifests or images
are never folded into one verdict (results.Provenance.key) and a result can be traced to its source.

    source     sha256 of the harness's own Python modules and probe app (the code that measured and was measured)
    commit     the git commit the package was imported from, "+dirty" if its files differ from it ("" outside git)
    variant    sha256 of the objects a cell deploys (variant or workload + overlays, as converted), so a changed
               manifest or workload file makes a different cell
    images     the probe images' docker IDs on the harness's own cluster
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path

from harness import sh
from harness.errors import HarnessError

_PACKAGE = Path(__file__).resolve().parent


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


@functools.cache
def source() -> str:
    """Hash of every Python module of the harness and the probe app, path and content."""
    h = hashlib.sha256()
    for root in (_PACKAGE, _PACKAGE.parent / "probe_app"):
        for p in sorted(root.rglob("*.py")) if root.is_dir() else ():
            h.update(str(p.relative_to(root.parent)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


@functools.cache
def commit() -> str:
    """The checkout's commit ("+dirty" when harness/, probe_app/ or manifests/ differ from it); "" if not in git."""
    top = _PACKAGE.parent
    if not (top / ".git").exists():
        return ""
    git = ["git", "-C", str(top)]
    try:
        head = sh.run([*git, "rev-parse", "--short=12", "HEAD"], timeout=10, check=False).strip()
        dirty = sh.run([*git, "status", "--porcelain", "--", "harness", "probe_app", "manifests"], timeout=10, check=False).strip()
    except HarnessError:  # no git here, or it hung: the source hash still says what ran
        return ""
    return head + ("+dirty" if head and dirty else "")


def objects(*docs: object) -> str:
    """Hash of Kubernetes objects as plain JSON (key order does not matter)."""
    return digest(json.dumps(docs, sort_keys=True, default=str).encode())


def images(tags: tuple[str, ...]) -> dict[str, str]:
    """`image <tag>` -> docker image ID (short), for those present here."""
    out = {}
    for tag in tags:
        image_id = sh.run(["docker", "image", "inspect", "--format", "{{.Id}}", tag], timeout=30, check=False).strip()
        if image_id:
            out[f"image {tag}"] = image_id.removeprefix("sha256:")[:12]
    return out
