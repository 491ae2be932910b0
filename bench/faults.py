"""The fault bench (issue 18): kill -9 the harness at moments spread over the phases of drain and node-down runs and
of `up`, restart dockerd during a run, pause the API server for 30 s during a run; after each fault the next ordinary
command (`rollout-harness up`) reports and repairs, and `census` must find nothing left.

    bench/faults.sh [--quick] [--out DIR]      (the harness's own kind cluster; ~30 min; --quick: 5 faults)

Writes DIR/faults.md (the table) and DIR/faults.json; exits 1 if any census found a leftover. Run it alone: it
drives the cluster, and a census counts everything the harness makes.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tabulate import tabulate

ROOT = Path(__file__).resolve().parent.parent
RH = [sys.executable, "-m", "harness"]
CP = "rollout-harness-control-plane"
COMMAND_TIMEOUT = 900


@dataclass
class Fault:
    name: str
    phase: str
    """The last thing the harness logged before the fault."""
    left: str
    """What the census found right after the fault, before any repair (by kind)."""
    repairs: int
    """Log lines of the next command that say it undid something a dead run left."""
    leftovers: int
    which: str
    next_exit: int
    seconds: float


def _log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen([*RH, *args], stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def _last_line(log: Path) -> str:
    lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:90] if lines else "(nothing logged yet)"


def _run(args: list[str], log: Path) -> int:
    with log.open("wb") as f:
        return subprocess.run([*RH, *args], stdout=f, stderr=subprocess.STDOUT, cwd=ROOT, timeout=COMMAND_TIMEOUT, check=False).returncode


def _census(path: Path, wait: str) -> list[list[str]]:
    """The census table's rows (kind, count, which), as `census` prints them."""
    _run(["census", "--wait", wait], path)
    rows = [ln.split("|") for ln in path.read_text().splitlines() if ln.startswith("| ") and "leftover" not in ln]
    return [[c.strip() for c in r[1:4]] for r in rows if len(r) > 3 and r[2].strip().isdigit()]


def _after(name: str, phase: str, out: Path, t0: float) -> Fault:
    """The census of what the fault left, the next ordinary command, then the census again."""
    left = ", ".join(f"{n} {kind}" for kind, n, _ in _census(out / f"{name}.left.txt", "0s") if n != "0") or "nothing"
    log = out / f"{name}.next.log"
    code = _run(["up", "-v"], log)
    repairs = sum(1 for ln in log.read_text(errors="replace").splitlines() if "left by a harness process" in ln or "thawing" in ln
                  or "uncordoned node" in ln or "freeze mark" in ln or "recreating" in ln)  # fmt: skip
    rows = _census(out / f"{name}.census.txt", "180s")
    which = "; ".join(f"{kind}: {w}" for kind, n, w in rows if n != "0")
    fault = Fault(name, phase, left, repairs, sum(int(n) for _, n, _ in rows), which, code, round(time.monotonic() - t0, 1))
    _log(f"{name}: phase {phase!r}, left {left}, repairs {repairs}, leftovers {fault.leftovers}, next exit {code}")
    return fault


def kill_run(trigger: str, delay: float, out: Path) -> Fault:
    name = f"kill9-{trigger}-{delay:g}s"  # after the command started (its Python imports take ~1.5 s)
    log = out / f"{name}.log"
    t0 = time.monotonic()
    variant = "readiness" if trigger == "drain" else "best-practice"
    proc = _start(["run", "--variant", variant, "--trigger", trigger, "--no-up", "-v", "--no-pictures", "--out", str(out / name)], log)
    try:
        proc.wait(timeout=delay)
        phase = f"ended first (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        phase = _last_line(log)
        os.kill(proc.pid, signal.SIGKILL)  # the harness alone, as a killed process: its children see their pipes close
        proc.wait()
    return _after(name, phase, out, t0)


def kill_up(delay: float, out: Path) -> Fault:
    name = f"kill9-up-{delay:g}s"
    _run(["down"], out / f"{name}.down.log")
    log = out / f"{name}.log"
    t0 = time.monotonic()
    proc = _start(["up", "-v"], log)
    try:
        proc.wait(timeout=delay)
        phase = f"ended first (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        phase = _last_line(log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return _after(name, phase, out, t0)


def during_run(name: str, delay: float, act: list[list[str]], out: Path, pause: float = 0) -> Fault:
    """Start a drain run, and `delay` s later run the commands `act` (split in two by `pause` seconds when given)."""
    log = out / f"{name}.log"
    t0 = time.monotonic()
    proc = _start(["run", "--variant", "readiness", "--trigger", "drain", "--no-up", "-v", "--no-pictures", "--out", str(out / name)], log)
    time.sleep(delay)
    phase = _last_line(log)
    for i, cmd in enumerate(act):
        if i and pause:
            time.sleep(pause)
        subprocess.run(cmd, cwd=ROOT, timeout=300, check=False, capture_output=True)
    try:
        code = proc.wait(timeout=COMMAND_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        code = -9
    return _after(name, f"{phase} (the run exited {code})", out, t0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="5 faults instead of 26")
    p.add_argument("--out", type=Path, default=Path("results/faults"))
    a = p.parse_args()
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    drain = [1.5, 2.5, 3.5, 4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 11, 12.5, 14, 16, 18, 20] if not a.quick else [6, 12]
    node_down = [4, 8, 12, 17, 23, 30] if not a.quick else [12]
    ups = [4, 15, 30] if not a.quick else []
    restart_docker = [
        ["pkill", "-TERM", "-x", "dockerd"],
        ["sh", "-c", "sleep 5; RH_CACHE=${RH_CACHE:-$HOME/.cache/rollout-harness} bash ci/docker-up.sh"],
    ]
    pause_api = [["docker", "exec", CP, "pkill", "-STOP", "kube-apiserver"], ["docker", "exec", CP, "pkill", "-CONT", "kube-apiserver"]]
    _run(["up"], out / "first-up.log")
    faults = [kill_run("drain", d, out) for d in drain]
    faults += [kill_run("node-down", d, out) for d in node_down]
    faults += [during_run("api-paused-30s", 8, pause_api, out, pause=30)]
    faults += [kill_up(d, out) for d in ups]
    faults += [during_run("dockerd-restarted", 8, restart_docker, out)]
    rows = [(f.name, f.phase, f.left, f.repairs, f.leftovers, f.which or "", f.next_exit, f.seconds) for f in faults]
    headers = ["fault", "harness's last line before it", "left by the fault", "repairs", "leftovers", "which", "next up", "s"]
    table = tabulate(rows, headers=headers, tablefmt="github")
    (out / "faults.md").write_text(table + "\n")
    (out / "faults.json").write_text(json.dumps([asdict(f) for f in faults], indent=1))
    print(table)
    bad = [f.name for f in faults if f.leftovers or f.next_exit]
    _log(f"{len(faults)} faults, {len(bad)} with leftovers or a failing next command: {', '.join(bad) or 'none'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
