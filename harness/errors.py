"""Errors the harness raises on purpose, and the exit code of each. The CLI turns any of them into one line on stderr;
any other exception is a bug: one line naming a log file with its traceback, exit code 4 (harness.cli.crash).

HarnessError                                                                          exit 3
├── UsageError           bad flag, duration, variant name, manifest or output path   exit 2
├── EnvironmentProblem   docker, go, disk space or another prerequisite is missing    exit 3
├── ClusterError         the kind cluster cannot be created, reached or made Ready    exit 3
│   └── CommandFailed    a docker, kind, kubectl or iptables command or a bundled script exited non-zero
└── RolloutError         a Kubernetes action failed or never completed                exit 3 (in a matrix of
    └── ApiError         the API server refused a call (its HTTP status in `status`)  several cells: a failed cell)

EXIT_CODES maps them (a class not in it takes its nearest base's code); ExitCode lists every code the CLI returns.
"""

from __future__ import annotations

from enum import IntEnum


class HarnessError(Exception):
    """Base of every error the harness reports to the user as one line."""


class UsageError(HarnessError):
    """The user asked for something malformed or unknown. `usage`: when the parser refused the command line, the usage
    line of the command it refused (the CLI prints it under the error); "" otherwise."""

    def __init__(self, message: str, usage: str = "") -> None:
        super().__init__(message)
        self.usage = usage


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


class ExitCode(IntEnum):
    """What the command line's exit status says (listed by `rollout-harness --help`)."""

    OK = 0
    OVER_BUDGET = 1
    USAGE = 2
    INFRASTRUCTURE = 3
    INTERNAL = 4
    INTERRUPTED = 130
    TERMINATED = 143

    @property
    def meaning(self) -> str:
        return _MEANINGS[self]


_MEANINGS = {
    ExitCode.OK: "done (every cell within the budget, if one was given)",
    ExitCode.OVER_BUDGET: "over budget: a cell or the load broke --max-failures/--max-fail-pct or missed --certify (census: leftovers)",
    ExitCode.USAGE: "usage: a bad flag, value, name or input file, or an output that cannot be written (checked first)",
    ExitCode.INFRASTRUCTURE: "infrastructure: docker, kind, the cluster, its API, the load process, or a rollout that failed",
    ExitCode.INTERNAL: "internal error (a bug): one line names the log file that holds the traceback",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C), after cleanup",
    ExitCode.TERMINATED: "terminated (SIGTERM), after cleanup",
}

EXIT_CODES: dict[type[HarnessError], ExitCode] = {
    HarnessError: ExitCode.INFRASTRUCTURE,
    UsageError: ExitCode.USAGE,
    EnvironmentProblem: ExitCode.INFRASTRUCTURE,
    ClusterError: ExitCode.INFRASTRUCTURE,
    RolloutError: ExitCode.INFRASTRUCTURE,
}
"""The one table from error class to exit code."""


def exit_code(e: BaseException) -> ExitCode:
    """The exit code of an error: its nearest class in EXIT_CODES; INTERNAL for anything that is no HarnessError."""
    return next((EXIT_CODES[c] for c in type(e).__mro__ if c in EXIT_CODES), ExitCode.INTERNAL)
