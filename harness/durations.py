"""Parse human durations: `30s`, `2m`, `1m30s`, `500ms`, `1h`, or a bare number of seconds."""

from __future__ import annotations

import math
import re

from harness.errors import UsageError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
ACCEPTED = "accepted forms: 30s, 2m, 1m30s, 500ms, 1h, or a number of seconds"


def parse_duration(text: str) -> float:
    """Return seconds for `text`; raise UsageError naming the accepted forms otherwise."""
    s = text.strip().lower()
    if s.startswith("-"):
        raise UsageError(f"bad duration {text!r}: must not be negative; {ACCEPTED}")
    try:
        value = float(s)
    except ValueError:
        pass
    else:
        if not math.isfinite(value):
            raise UsageError(f"bad duration {text!r}: must be a finite time; {ACCEPTED}")
        return value
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise UsageError(f"bad duration {text!r}; {ACCEPTED}")
    return total
