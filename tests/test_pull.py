"""The stock path's pull by digest (harness.pinned, through provision.provide as `up` calls it), against a real
registry: the CNCF distribution registry built from the Go module proxy (ci/build-registry.sh, cached), serving on
127.0.0.1. A tiny image (FROM scratch, one file) is built, pushed, and removed here; the pull brings it back by its
digest, and a digest the registry does not have is refused in one line. Docker Hub itself is never asked.

Unit: the pin's syntax and the registry prefix. Integration (docker and Go): the pull itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import free_port

from harness import pinned, provision, resources, sh
from harness.errors import EnvironmentProblem, UsageError
from harness.pinned import Pinned
from harness.waiting import wait_for_sync

REPO = Path(__file__).resolve().parents[1]
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("ref", "name", "tag"),
    [
        (f"kindest/node:v1.34.0@{DIGEST}", "kindest/node", "v1.34.0"),
        (f"python@{DIGEST}", "python", ""),
        (f"127.0.0.1:5000/rh-test-pull:1@{DIGEST}", "127.0.0.1:5000/rh-test-pull", "1"),
    ],
)
def test_a_pin_is_a_name_a_tag_for_people_and_a_digest(ref: str, name: str, tag: str) -> None:
    assert Pinned.parse(ref) == Pinned(name, tag, DIGEST)
    assert str(Pinned.parse(ref)) == ref


@pytest.mark.parametrize(
    "ref", ["kindest/node:v1.34.0", f"kindest/node:v1.34.0@{DIGEST[:-1]}", "kindest/node@sha256:" + "AB" * 32, f"Python@{DIGEST}"]
)
def test_an_unpinned_reference_is_refused_in_one_line(ref: str) -> None:
    with pytest.raises(UsageError, match=r"is not pinned by digest \(NAME\[:TAG\]@sha256:<64 hex digits>\)$"):
        pinned.pull(ref, "127.0.0.1:9")  # refused before docker is asked


def test_another_registry_serves_the_same_digest_under_its_name() -> None:
    assert str(Pinned.parse(f"kindest/node:v1.34.0@{DIGEST}").at("127.0.0.1:5000")) == f"127.0.0.1:5000/kindest/node:v1.34.0@{DIGEST}"
    assert Pinned.parse(f"registry.k8s.io/pause:3.10@{DIGEST}").at("mirror:5000").name == "mirror:5000/pause"
    assert Pinned.parse(f"python@{DIGEST}").at("") == Pinned("python", "", DIGEST)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A distribution registry on 127.0.0.1:<free port>, its storage in a temporary directory; stopped at the end."""
    env = {"RH_CACHE": str(resources.cache_dir())}
    binary = sh.run(["bash", str(REPO / "ci" / "build-registry.sh")], timeout=1500, what="building the registry", env=env).strip()
    root, host = tmp_path_factory.mktemp("registry"), f"127.0.0.1:{free_port()}"
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {root / 'data'}}}}}\nhttp: {{addr: {host}}}\n"
    )
    with (root / "registry.log").open("w") as log:
        proc = subprocess.Popen(
            [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "OTEL_TRACES_EXPORTER": "none"}
        )
    try:

        def answers() -> tuple[bool | None, str]:
            if proc.poll() is not None:
                raise AssertionError(f"the registry exited {proc.returncode}: {(root / 'registry.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://{host}/v2/", timeout=2) as r:
                    return (True if r.status == 200 else None), str(r.status)
            except OSError as e:
                return None, str(e)

        wait_for_sync(answers, timeout=30, every=0.2, what=f"the registry on {host}")
        yield host
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def pushed(registry: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two tiny images pushed to the registry and gone from docker: their pins `rh-test-pull-N:K@sha256:...`."""
    created: list[str] = []
    pins = []
    try:
        for k in (1, 2):
            name = f"rh-test-pull-{os.getpid()}-{k}"
            ctx = tmp_path / name
            ctx.mkdir()
            (ctx / "hello.txt").write_text(f"{name} {time.time_ns()}\n")  # new content, new digest: no run sees another's
            (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
            local, remote = f"{name}:1", f"{registry}/{name}:1"
            sh.run(["docker", "build", "-q", "-t", local, str(ctx)], timeout=120)
            created += [local, remote]
            sh.run(["docker", "tag", local, remote], timeout=30)
            sh.run(["docker", "push", remote], timeout=120)
            (repo_digest,) = json.loads(sh.run(["docker", "image", "inspect", "-f", "{{json .RepoDigests}}", remote], timeout=30))
            digest = repo_digest.partition("@")[2]
            created.append(f"{registry}/{name}@{digest}")
            sh.run(["docker", "rmi", local, remote], timeout=60)
            assert not provision.image_present(f"{registry}/{name}@{digest}")
            pins.append(f"{name}:1@{digest}")
        yield pins
    finally:
        for ref in created:
            sh.run(["docker", "rmi", ref], timeout=60, check=False)


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_up_pulls_the_node_image_and_the_base_by_digest(registry: str, pushed: list[str], caplog: pytest.LogCaptureFixture) -> None:
    """provision.provide, as `up` calls it on the stock path, with the test's registry in front of the pins."""
    versions = resources.versions() | {"STOCK_NODE_IMAGE": pushed[0], "PYTHON_BASE": pushed[1]}
    node = provision.NodeImage.of(provision.Source.STOCK, versions, "test")
    got = provision.provide(node, registry)
    assert (got.image, got.probe_base) == (f"{registry}/{pushed[0]}", f"{registry}/{pushed[1]}")
    assert provision.image_present(got.image) and provision.image_present(got.probe_base)
    caplog.clear()
    assert provision.provide(node, registry) == got  # already here: nothing pulled again
    assert not [r for r in caplog.records if "pulling" in r.getMessage()]


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_a_digest_the_registry_lacks_is_refused_in_one_line(registry: str, pushed: list[str]) -> None:
    name = pushed[0].partition(":")[0]
    wrong = "sha256:" + "0" * 64
    with pytest.raises(EnvironmentProblem) as e:
        pinned.pull(f"{name}:1@{wrong}", registry)
    assert str(e.value) == f"{registry}/{name} has no image with digest {wrong} (a wrong pin, or not in that registry)"
