"""rollout-harness: measure traffic lost while a Kubernetes Deployment rolls."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rollout-harness")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"
