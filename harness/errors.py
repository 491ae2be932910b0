"""Errors the harness raises on purpose. The CLI turns any of them into one line and exit code 2.

HarnessError
├── UsageError           bad flag, duration, variant name or manifest
├── EnvironmentProblem   docker, go, disk space or another prerequisite is missing
├── ClusterError         the kind cluster cannot be created, reached or made Ready
│   └── CommandFailed    a docker, kind, kubectl or iptables command or a bundled script exited non-zero
└── RolloutError         a Kubernetes action failed or never completed
    └── ApiError         the API server refused a call (its HTTP status in `status`)
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness reports to the user as one line."""


class UsageError(HarnessError):
    """The user asked for something malformed or unknown."""


class EnvironmentProblem(HarnessError):
    """A prerequisite on this machine is missing or broken."""


class ClusterError(HarnessError):
    """The cluster cannot be created, reached or made Ready."""


class CommandFailed(ClusterError):
    """A command exited non-zero: `code` is its exit code, `detail` the line of its stderr that says why."""

    def __init__(self, message: str, code: int, detail: str) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail


class RolloutError(HarnessError):
    """A Kubernetes action failed, timed out or the rollout stopped progressing."""


class ApiError(RolloutError):
    """The API server answered a call with an error: `status` is its HTTP status (404, 409, 429, ...)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
