"""Stopping a run (issue 18 item 3): the first Ctrl-C or SIGTERM stops a long command with what it started, a
second one during clean-up is acknowledged and ignored, a third forces the exit; real processes, no cluster."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import sh

pytestmark = [pytest.mark.integration, pytest.mark.timeout(20)]

ENTRY = """import asyncio, logging, sys
from harness import progress, sh
from harness.cli import execute

def long():
    with sh.cancellable():  # as cluster.up runs its builds and `kind create`
        sh.run(["sh", "-c", "sleep 60 & echo $$ $! > " + sys.argv[1] + "; wait"], timeout=120)

async def work():
    try:
        await asyncio.to_thread(long)
    finally:
        await asyncio.sleep(float(sys.argv[2]))  # a slow clean-up
        print("cleaned up", flush=True)
    return 0

with progress.logging_to(sys.stderr, {"harness": logging.INFO}):
    sys.exit(execute(work()))"""


def _start(tmp_path: Path, cleanup_s: float) -> tuple[subprocess.Popen[str], list[int]]:
    """The entry, once its command runs: the process and the pids of the command (sh) and its child (sleep)."""
    pids = tmp_path / "pids"
    proc = subprocess.Popen(
        [sys.executable, "-c", ENTRY, str(pids), str(cleanup_s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 10
    while not (pids.exists() and len(pids.read_text().split()) == 2):
        assert time.monotonic() < deadline and proc.poll() is None, "the command did not start"
        time.sleep(0.05)
    return proc, [int(p) for p in pids.read_text().split()]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie nobody reaped (no init in a container) is dead all the same


def _signal(proc: subprocess.Popen[str], *gaps: float, sig: signal.Signals = signal.SIGINT) -> tuple[str, str, float]:
    """Send `sig` once, then once more after each gap; (stdout, stderr, seconds from the first signal to the exit)."""
    t = time.monotonic()
    proc.send_signal(sig)
    for gap in gaps:
        time.sleep(gap)
        proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    return out, err, time.monotonic() - t


def test_sigterm_stops_the_running_command_and_what_it_started(tmp_path: Path) -> None:
    proc, pids = _start(tmp_path, 0)
    out, err, took = _signal(proc, sig=signal.SIGTERM)
    assert proc.returncode == 143, err
    assert took < 3, took  # not the 60 s of the command, nor its 5 s grace: it stops at SIGTERM
    assert err.strip().splitlines()[-1] == "rollout-harness: terminated; cleaned up" and "Traceback" not in err
    assert out == "cleaned up\n"
    assert not any(_alive(p) for p in pids)


def test_a_second_ctrl_c_during_clean_up_is_acknowledged_and_ignored(tmp_path: Path) -> None:
    proc, pids = _start(tmp_path, 2)
    out, err, took = _signal(proc, 0.5)
    assert proc.returncode == 130, err
    assert out == "cleaned up\n" and 2 <= took < 5, took
    lines = err.strip().splitlines()
    assert lines[-2:] == ["rollout-harness: cleaning up; press Ctrl-C again to force", "rollout-harness: interrupted; cleaned up"], err
    assert not any(_alive(p) for p in pids)


def test_a_third_ctrl_c_forces_the_exit(tmp_path: Path) -> None:
    proc, pids = _start(tmp_path, 30)
    out, err, took = _signal(proc, 0.3, 0.3)
    assert proc.returncode == 130, err
    assert out == "" and took < 3, took  # the 30 s clean-up abandoned
    assert err.strip().splitlines()[-1] == "rollout-harness: forced exit; clean-up not finished", err
    assert not any(_alive(p) for p in pids)


def test_cancel_stops_a_cancellable_command_and_refuses_the_next_but_not_a_shielded_one() -> None:
    results: list[str] = []

    def long() -> None:
        with sh.cancellable():
            try:
                sh.run(["sleep", "60"], timeout=120)
            except sh.Cancelled:
                results.append("stopped")
            try:
                sh.run(["true"], timeout=10)
            except sh.Cancelled:
                results.append("refused")
            with sh.shielded():
                sh.run(["true"], timeout=10)  # clean-up
                results.append("clean-up ran")

    t = threading.Thread(target=long)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    sh.cancel_running()
    t.join(5)
    assert not t.is_alive() and time.monotonic() - started < 2
    assert results == ["stopped", "refused", "clean-up ran"]


def test_a_command_outside_a_cancellable_block_runs_on() -> None:
    """A clean-up command (a thaw, an iptables restore) is not stopped by a cancellation."""
    t = time.monotonic()
    done: list[str] = []
    th = threading.Thread(target=lambda: done.append(sh.run(["sh", "-c", "sleep 0.5; echo done"], timeout=10)))
    th.start()
    time.sleep(0.1)
    sh.cancel_running()
    th.join(5)
    assert done == ["done\n"] and time.monotonic() - t >= 0.5


def test_a_command_has_its_own_process_group() -> None:
    """So a Ctrl-C in the terminal reaches the harness alone, which decides what stops."""
    pgid = int(sh.run(["sh", "-c", "cut -d' ' -f5 /proc/$$/stat"], timeout=10))  # pid (comm) state ppid pgrp
    assert pgid != os.getpgid(0)
