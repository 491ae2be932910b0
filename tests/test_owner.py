"""Owners (harness.owner): a leftover's maker is gone only when that is demonstrable, on real processes."""

from __future__ import annotations

import os
import uuid

import pytest
from support import dead_owner

from harness import owner

pytestmark = pytest.mark.integration  # real processes


def test_an_owner_is_gone_only_when_its_process_demonstrably_ended() -> None:
    host, pid, start, boot, pidns = owner.me().split()
    assert pid == str(os.getpid()) and not owner.gone(owner.me())
    assert owner.gone(dead_owner())
    assert owner.gone(f"{host} {pid} 1 {boot} {pidns}"), "our pid, another start time: the pid was reused"
    not_ours = [
        f"{host} 4194304 {start} {uuid.uuid4()} {pidns}",  # another boot (or machine)
        f"{host} 4194304 {start} {boot} 1",  # another pid namespace: another container's pids
        f"{host} 4194304",  # the older "host pid" form
        "",
        "someone else's note",
    ]
    assert not any(owner.gone(o) for o in not_ours)
