"""The gate file: `rollout-harness.toml` in the current directory (or `[tool.rollout-harness]` in ./pyproject.toml; the
dedicated file wins if both) writes a team's `compare` gate down for review.

    workload = "deploy/cart.yaml"          # optional; without it the bundled variants
    variants = ["as-is", "readiness-tcp+prestop-sleep"]
    triggers = ["set-image", "drain"]
    modes = ["new"]
    trials = 3                             # or: certify = "10%"
    rate = 200
    baseline = "5s"                        # any RunOptions setting by its field name
    [budget]
    max_failures = 0                       # or: max_fail_pct = 0.5

Each key is the dest of the compare flag of the same name, and its value is converted as that flag's is (durations as
strings or numbers, paths relative to the file's directory), so a file and the equivalent flags make the same
RunOptions, cells and budget. A flag given on the command line overrides the file's value (`given`: the dests the
command line set, from parsing it a second time with every default suppressed)."""

from __future__ import annotations

import argparse
import difflib
import logging
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.cli.verb import duration, percent, positive
from harness.errors import UsageError
from harness.gate import Budget
from harness.model import Client, Discovery, WorkloadKind

log = logging.getLogger("harness")

NAME = "rollout-harness.toml"
TOOL = "rollout-harness"


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise argparse.ArgumentTypeError(f"must be a number, not {type(value).__name__} {value!r}")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise argparse.ArgumentTypeError(f"must be an integer, not {type(value).__name__} {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f"must be a string, not {type(value).__name__} {value!r}")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise argparse.ArgumentTypeError(f"must be true or false, not {value!r}")
    return value


def _duration(value: object) -> float:
    return duration(value) if isinstance(value, str) else duration(str(_number(value)))


def _names(value: object) -> str:
    """A list of names (or one comma-separated string) as the comma-separated flag value."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(x, str) for x in items):
        raise argparse.ArgumentTypeError(f"must be a list of names, not {value!r}")
    return ",".join(items)


def _choice(*choices: str) -> Callable[[object], str]:
    def conv(value: object) -> str:
        if _text(value) not in choices:
            raise argparse.ArgumentTypeError(f"{value!r}: one of {', '.join(choices)}")
        return str(value)

    return conv


Convert = Callable[[object], object]
_PATHS = ("workload", "manifests", "out")
"""Paths: relative ones resolve against the file's directory."""
_KEYS: dict[str, Convert] = {
    "variants": _names,
    "triggers": _names,
    "modes": _names,
    "trials": lambda v: positive(int)(str(_integer(v))),
    "stop_early": _flag,
    "certify": lambda v: percent(v if isinstance(v, str) else str(_number(v))),
    "series": _flag,
    "parallel": lambda v: positive(int)(str(_integer(v))),
    "ahead": _flag,
    "kind": _choice(*(k.value for k in WorkloadKind)),
    "rate": lambda v: positive(float)(str(_number(v))),
    "baseline": _duration,
    "tail": _duration,
    "rollout_timeout": _duration,
    "connect_timeout": _duration,
    "read_timeout": _duration,
    "connections": lambda v: positive(int)(str(_integer(v))),
    "mux_connections": lambda v: positive(int)(str(_integer(v))),
    "client_image": _text,
    "client": _choice(*(c.value for c in Client)),
    "discovery": _choice(*(d.value for d in Discovery)),
    "dns_cache": _duration,
    "registry_fetch": _duration,
    "max_lateness": _duration,
    "max_gap": _duration,
    "new_image": _text,
    "path": _text,
    "port": lambda v: positive(int)(str(_integer(v))),
    "allow_disruption": _flag,
    "keep_records": _flag,
    "pictures": _flag,
    **dict.fromkeys(_PATHS, _text),
}


def _budget(key: str, conv: Convert) -> Convert:
    def check(value: object) -> object:
        converted = conv(value)
        Budget(**{key: converted})  # type: ignore[arg-type]  # its own range check
        return converted

    return check


_BUDGET: dict[str, Convert] = {"max_failures": _budget("max_failures", _integer), "max_fail_pct": _budget("max_fail_pct", _number)}


@dataclass(frozen=True)
class GateFile:
    """A gate file read: its settings as compare's flag dests and values, and what is wrong with it (one line each)."""

    path: Path
    values: dict[str, object]
    problems: tuple[str, ...]


def find(directory: Path) -> Path | None:
    """The gate file in `directory`: rollout-harness.toml, else a pyproject.toml with [tool.rollout-harness]."""
    if (own := directory / NAME).is_file():
        return own
    pyproject = directory / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return pyproject if TOOL in data.get("tool", {}) else None


def read(path: Path) -> GateFile:
    """The file's settings, every problem (unknown key, wrong type, bad value) as one line naming the key."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        return GateFile(path, {}, (f"cannot read it: {e}",))
    except tomllib.TOMLDecodeError as e:
        return GateFile(path, {}, (f"not TOML: {e}",))
    if path.name == "pyproject.toml":
        data = data.get("tool", {}).get(TOOL, {})
    values: dict[str, object] = {}
    problems: list[str] = []
    budget = data.pop("budget", {})
    if not isinstance(budget, dict):
        problems.append(f"budget: must be a table ([budget]), not {budget!r}")
        budget = {}
    for table, known, prefix in ((data, _KEYS, ""), (budget, _BUDGET, "budget.")):
        for key, value in table.items():
            if key not in known:
                problems.append(f"{prefix}{key}: unknown key{_did_you_mean(key, prefix)}")
                continue
            try:
                converted = known[key](value)
            except (argparse.ArgumentTypeError, UsageError) as e:
                problems.append(f"{prefix}{key}: {e}")
                continue
            values[key] = path.parent / str(converted) if key in _PATHS else converted
    return GateFile(path, values, tuple(problems))


def _did_you_mean(key: str, prefix: str) -> str:
    everywhere = [*_KEYS, *(f"budget.{k}" for k in _BUDGET)]
    if near := difflib.get_close_matches(f"{prefix}{key}", everywhere, n=1):
        return f" (did you mean {near[0]!r}?)"
    return f"; known: {', '.join(everywhere)}"


def apply(args: argparse.Namespace, gate: GateFile, given: frozenset[str]) -> argparse.Namespace:
    """`args` with the file's values for every setting the command line did not give."""
    merged = argparse.Namespace(**vars(args))
    for dest, value in gate.values.items():
        if dest not in given:
            setattr(merged, dest, value)
    return merged


def applied(args: argparse.Namespace, directory: Path | None = None) -> argparse.Namespace:
    """`args` with the gate file in `directory` (default: the current one) under the flags given, or as they are."""
    path = find(directory or Path.cwd())
    if path is None:
        return args
    gate = read(path)
    if gate.problems:
        more = f" (and {len(gate.problems) - 1} more)" if len(gate.problems) > 1 else ""
        raise UsageError(f"{path}: {gate.problems[0]}{more}; `rollout-harness check` lists them")
    log.info("gate file: %s (flags given on the command line override it)", path)
    return apply(args, gate, args.given)
