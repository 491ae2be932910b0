"""sh.run, the runner behind every docker/kind/kubectl/iptables/script call: its timeout holds even when the child is
silent, a timed-out child takes what it started with it, and failures come back as one HarnessError naming the action."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.cluster import restart_reason
from harness.errors import ClusterError, CommandFailed, EnvironmentProblem
from harness.sh import ok, run

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]


def test_silent_child_is_stopped_at_the_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match=r"^sleeping: timed out after 1s$"):
        run(["sleep", "5"], timeout=1, what="sleeping")
    assert time.monotonic() - t0 < 3


def test_timeout_stops_what_the_child_started(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    t0 = time.monotonic()
    with pytest.raises(ClusterError, match="timed out"):
        run(["bash", "-c", f"sleep 30 & echo $! > {pids}; sleep 30"], timeout=1, what="a script with a background job")
    assert time.monotonic() - t0 < 3  # the grandchild held the pipes: returning at all means it is gone
    assert _gone(int(pids.read_text()))


def _gone(pid: int) -> bool:
    """Dead, or a zombie left for whatever reaps orphans here."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_stdout_is_returned_and_stderr_does_not_block() -> None:
    script = "head -c 200000 /dev/zero | tr '\\0' e >&2; head -c 200000 /dev/zero | tr '\\0' o"  # > a pipe buffer each
    assert run(["bash", "-c", script], timeout=30) == "o" * 200_000


def test_failure_names_the_action_and_the_error_line() -> None:
    with pytest.raises(CommandFailed, match=r"^building failed \(exit 1\): error: no disk$") as e:
        run(["bash", "-c", "echo '[step] one' >&2; echo 'error: no disk' >&2; echo trailing >&2; exit 1"], timeout=30, what="building")
    assert (e.value.code, e.value.detail) == (1, "error: no disk")
    with pytest.raises(CommandFailed, match=r"^bash -c echo no >&2; exit 2 failed \(exit 2\): no$"):
        run(["bash", "-c", "echo no >&2; exit 2"], timeout=30)  # named by the command itself, with its last line


def test_a_command_that_may_fail_returns_its_output_and_a_probe_its_success() -> None:
    assert run(["bash", "-c", "echo partial; exit 1"], timeout=30, check=False) == "partial\n"
    assert ok(["true"], timeout=30) and not ok(["false"], timeout=30)
    with pytest.raises(ClusterError, match="timed out"):  # a hang is not a tolerated failure
        run(["sleep", "5"], timeout=1, check=False)


def test_a_missing_command_is_an_environment_problem() -> None:
    with pytest.raises(EnvironmentProblem, match=r"^checking: no-such-command-rh not found$"):
        run(["no-such-command-rh"], timeout=30, what="checking")


def test_a_bundled_script_that_exits_3_names_the_missing_prerequisite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from harness import provision, resources

    script = tmp_path / "build-coredns.sh"  # stands in for the bundled one: the boundary is where scripts are found
    script.write_text("echo '[step] checking' >&2; echo 'error: jq is needed' >&2; exit 3\n")
    monkeypatch.setattr(resources, "script", lambda name: script)
    with pytest.raises(EnvironmentProblem, match=r"^jq is needed$"):
        provision.build_coredns_image()


@pytest.mark.parametrize(("given", "seen"), [(None, "400"), ("100", "100")])
def test_a_build_runs_at_build_nice_with_the_builds_gogc_unless_gogc_is_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, given: str | None, seen: str
) -> None:
    from harness import provision, resources

    script = tmp_path / "build-coredns.sh"  # stands in for the bundled one: the boundary is where scripts are found
    script.write_text('echo "GOGC=$GOGC nice=$(nice)"\n')
    monkeypatch.setattr(resources, "script", lambda name: script)
    if given is None:
        monkeypatch.delenv("GOGC", raising=False)
    else:
        monkeypatch.setenv("GOGC", given)
    nice = min(19, os.nice(0) + provision.BUILD_NICE)
    assert provision._script("build-coredns.sh", "building", timeout=30).split() == [f"GOGC={seen}", f"nice={nice}"]


@pytest.mark.parametrize("exit_code", [0, 1])
def test_the_control_plane_weight_is_one_docker_update_and_a_docker_that_refuses_it_is_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture, exit_code: int
) -> None:
    """A Docker that cannot weigh containers (rootless, no cpu controller) does not stop `up`; a fake docker on PATH
    stands in for both (the real weight is checked on the cluster: tests/e2e/test_images_on_cluster.py)."""
    from harness import cluster

    (tmp_path / "docker").write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\nexit {exit_code}\n')
    (tmp_path / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    cluster._weigh_control_plane("rh-x")
    assert (tmp_path / "args").read_text().split() == ["update", "--cpu-shares", "4096", "rh-x-control-plane"]
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warned == (
        []
        if exit_code == 0
        else ["[up] could not set rh-x-control-plane's CPU weight (docker update --cpu-shares); a client pod there may stall longer"]
    )


def test_a_cluster_is_reused_only_if_all_its_nodes_run_since_creation() -> None:
    created = "2026-11-23T16:34:59.656612099Z"

    def node(name: str, running: str = "true", started: str = "2026-11-23T16:35:01.1Z") -> list[str]:
        return [f"/{name}", running, created, started]

    fresh = [node("c"), node("w1"), node("w2")]
    assert restart_reason(fresh) is None
    assert restart_reason(fresh[:2]) == "exists but is not running"
    assert restart_reason([node("c"), node("w1", running="false"), node("w2")]) == "exists but is not running"
    why = restart_reason([node("c"), node("w1", started="2026-11-23T16:41:17.7Z"), node("w2")])
    assert why == "has restarted nodes (w1 restarted 378s after creation, e.g. docker restarted)"


async def test_node_down_is_refused_where_the_harness_cannot_freeze_a_node() -> None:
    from harness.actions import TriggerContext, node_down
    from harness.errors import RolloutError
    from harness.workload import Workload

    w = Workload("web", "app=web", "app", "img:1", "web", 4)
    ctx = TriggerContext(None, "ns", 10, w, {}, lambda kind, detail: None)  # type: ignore[arg-type]
    with pytest.raises(RolloutError, match="node-down needs the harness's own kind cluster"):
        await node_down(ctx)


def test_only_kind_node_containers_are_frozen() -> None:
    from harness.nodes import freeze_node

    with pytest.raises(ClusterError, match="'no-such-container-rh' is not a kind node container"):
        freeze_node("no-such-container-rh", True)


@pytest.mark.parametrize(
    ("argv", "config", "expect"),
    [
        (["dockerd"], None, "on"),  # docker's default
        (["dockerd"], {"userland-proxy": False}, "off"),  # the default config file (/etc/docker/daemon.json)
        (["dockerd", "--userland-proxy=false"], {"userland-proxy": True}, "off"),  # a flag beats the file
        (["dockerd", "--config-file", "CONF"], {"userland-proxy": False}, "off"),  # the harness's own dockerd
        (["/usr/bin/dockerd", "--config-file=CONF"], {}, "on"),
        (["containerd"], None, "unknown"),
    ],
)
def test_the_running_dockers_userland_proxy_is_read_never_changed(tmp_path: Path, argv: list[str], config: object, expect: str) -> None:
    """What a refused connection looks like to a host client depends on it (through the proxy: a reset); it is read
    from dockerd's command line and config file into every result."""
    import json

    from harness.provision import docker_userland_proxy

    conf = tmp_path / "daemon.json"
    if config is not None:
        conf.write_text(json.dumps(config))
    (tmp_path / "proc" / "4242").mkdir(parents=True)
    args = [a.replace("CONF", str(conf)) for a in argv]
    (tmp_path / "proc" / "4242" / "cmdline").write_bytes(b"\0".join(a.encode() for a in args) + b"\0")
    assert docker_userland_proxy(tmp_path / "proc", default_config=conf) == expect


def test_down_puts_back_exactly_the_sysctl_value_up_found(tmp_path: Path) -> None:
    """route.error_cost: the value found is recorded before it is changed and restored by down; a host where it was
    already 0 (nothing changed) is left at 0, and a second down changes nothing."""
    from harness.netguard import set_route_error_cost

    sysctl, record = tmp_path / "error_cost", tmp_path / "cache" / "host-changes.json"
    sysctl.write_text("250\n")
    set_route_error_cost(True, record, sysctl)
    set_route_error_cost(True, record, sysctl)  # up again: the original stays recorded
    assert sysctl.read_text() == "0" and json.loads(record.read_text()) == {"error_cost": "250"}
    set_route_error_cost(False, record, sysctl)
    assert sysctl.read_text() == "250" and json.loads(record.read_text()) == {}
    sysctl.write_text("0")  # the admin's own setting
    set_route_error_cost(True, record, sysctl)
    set_route_error_cost(False, record, sysctl)
    assert sysctl.read_text() == "0"


def test_only_the_harness_rules_are_removed_from_docker_user() -> None:
    from harness.netguard import ours

    listing = "\n".join(
        [
            "-N DOCKER-USER",
            "-A DOCKER-USER -d 10.244.0.0/16 -i br-1 ! -o br-1 -m comment --comment rollout-harness -j DROP",
            "-A DOCKER-USER -o eth0 -d 10.0.0.0/8 -j DROP",  # an admin's (or host-guard.sh's) rule
            '-A DOCKER-USER -s 1.2.3.4 -m comment --comment "rollout-harness others" -j ACCEPT',
            "-A DOCKER-USER -j RETURN",
        ]
    )
    rule = ["-d", "10.244.0.0/16", "-i", "br-1", "!", "-o", "br-1", "-m", "comment", "--comment", "rollout-harness", "-j", "DROP"]
    assert ours(listing) == [["-D", "DOCKER-USER", *rule]]


def test_work_beside_returns_its_result_or_raises_its_error_and_stops_when_asked() -> None:
    from harness.sh import Beside, Cancelled

    assert Beside(lambda: run(["echo", "made"], timeout=30), "echo").wait() == "made\n"
    with pytest.raises(CommandFailed, match=r"^failing failed \(exit 1\)"):
        Beside(lambda: run(["false"], timeout=30, what="failing"), "false").wait()
    slow = Beside(lambda: run(["sleep", "60"], timeout=120), "sleep")
    time.sleep(0.5)
    t0 = time.monotonic()
    slow.stop()
    assert time.monotonic() - t0 < 5.0, "stopped within a poll, by SIGTERM"
    with pytest.raises(Cancelled):
        slow.wait()


@pytest.mark.parametrize("fails", ["", "build-binaries.sh", "build-node-image.sh"])
def test_the_bases_are_made_while_the_binaries_compile_and_a_failure_stops_the_rest(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fails: str
) -> None:
    """Stand-in scripts (the boundary is where scripts are found) write when they start and end: the bases, the python
    base and the add-ons' binaries start before the Kubernetes binaries end, and the first failure ends the rest (which
    would run 60 s)."""
    from harness import provision, resources

    events = tmp_path / "events"
    scripts = ["build-node-image.sh", "build-probe-image.sh", "build-coredns.sh", "build-metrics-server.sh", "build-crictl.sh"]
    for name, seconds in [("build-binaries.sh", 2)] + [(s, 1) for s in scripts]:
        me = f"${{RH_STAGE:-}}${{RH_BINARY_ONLY:+binary:}}{name}"
        body = f"echo {me} start >> {events}; sleep {60 if fails and name != fails else seconds}; "
        body += f"[ {name} != '{fails}' ] || exit 1; echo {me} end >> {events}\n"
        (tmp_path / name).write_text(body)
    monkeypatch.setattr(resources, "script", lambda name: tmp_path / name)
    node = provision.NodeImage.of(provision.Source.OFFLINE, {"K8S_VERSION": "v1.0.0"}, "test")
    if fails:
        with pytest.raises(CommandFailed):
            provision._binaries_beside_bases(node)
    else:
        provision._binaries_beside_bases(node)
    seen = events.read_text().splitlines()
    works = [
        "build-binaries.sh",
        "basesbuild-node-image.sh",
        "basebuild-probe-image.sh",
        "binary:build-coredns.sh",
        "binary:build-metrics-server.sh",
        "build-crictl.sh",
    ]
    assert sorted(e for e in seen if e.endswith(" start")) == sorted(f"{w} start" for w in works), seen
    if fails:
        assert not any(e.endswith(" end") for e in seen), f"nothing ran on after {fails} failed: {seen}"
    else:
        assert seen[-1] == "build-binaries.sh end" and len(seen) == 12, f"the bases were made while the binaries compiled: {seen}"
