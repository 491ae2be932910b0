"""Images pulled by digest: what `up` fetches on the stock path (kind's node image, the probe app's base), so the
cluster is made of exactly the bytes the pin names, whatever a tag points to today.

A pinned reference is `NAME[:TAG]@sha256:<64 hex digits>`; the tag is for people, the digest is what is pulled. Docker
checks the content it pulls against the digest; a registry that has no manifest with that digest refuses it, and so
does `pull`, in one line naming the pin. `pull(ref, registry)` fetches the same digest from another registry (a
mirror, or the test's registry on 127.0.0.1) under that registry's name.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from harness import sh
from harness.errors import CommandFailed, EnvironmentProblem, UsageError

log = logging.getLogger("harness.pinned")

PULL_TIMEOUT = 1800  # kindest/node is ~1 GB
_PINNED = re.compile(r"(?P<name>[a-z0-9][a-z0-9._/:-]*?)(?::(?P<tag>[\w][\w.-]{0,127}))?@(?P<digest>sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class Pinned:
    """One image reference pinned by digest."""

    name: str
    """The repository, with its registry host if it names one: `kindest/node`, `127.0.0.1:5000/rh-test-pull`."""
    tag: str
    """What the pin says it is (`v1.34.0`), for people; "" if none. Never what is pulled."""
    digest: str
    """`sha256:` and 64 hex digits: the manifest (or index) that is pulled."""

    @classmethod
    def parse(cls, ref: str) -> Pinned:
        m = _PINNED.fullmatch(ref)
        if m is None:
            raise UsageError(f"image {ref!r} is not pinned by digest (NAME[:TAG]@sha256:<64 hex digits>)")
        return cls(m["name"], m["tag"] or "", m["digest"])

    def at(self, registry: str) -> Pinned:
        """The same digest in `registry` (host[:port]) instead of the name's own; unchanged if registry is ""."""
        if not registry:
            return self
        first, _, rest = self.name.partition("/")
        own_host = rest and ("." in first or ":" in first or first == "localhost")
        return Pinned(f"{registry}/{rest if own_host else self.name}", self.tag, self.digest)

    def __str__(self) -> str:
        return f"{self.name}{':' + self.tag if self.tag else ''}@{self.digest}"


def present(ref: str) -> bool:
    return sh.ok(["docker", "image", "inspect", ref], timeout=30)


def pull(ref: str, registry: str = "") -> str:
    """Pull the pinned image `ref` by its digest (from `registry` instead of the name's own, if given) unless an
    image with that digest is already here; return the reference docker knows it by (what `kind create --image` and
    `docker build --build-arg` get). A registry without that digest, or a pulled image docker does not find by it,
    is one EnvironmentProblem."""
    pin = Pinned.parse(ref).at(registry)
    if present(str(pin)):
        log.debug("%s is already here", pin)
        return str(pin)
    log.info("[up] pulling %s", pin)
    try:
        sh.run(["docker", "pull", str(pin)], timeout=PULL_TIMEOUT, what=f"pulling {pin}")
    except CommandFailed as e:
        if "manifest unknown" in e.detail or "not found" in e.detail:
            raise EnvironmentProblem(f"{pin.name} has no image with digest {pin.digest} (a wrong pin, or not in that registry)") from None
        raise
    if not present(str(pin)):  # docker checked the content against the digest; it must also find it by that digest
        raise EnvironmentProblem(f"pulled {pin}, but docker does not find it by that digest")
    return str(pin)
