"""`rollout-harness load-image` and the pytest fixture `load_image`: a user's local images onto the harness's kind
cluster. What stops a load is one line with its exit code, found before anything is loaded; kind is never run here."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import ClusterError, EnvironmentProblem, UsageError, exit_code
from harness.userimages import problem


@pytest.mark.parametrize(
    ("images", "missing", "docker_up", "cluster_up", "error", "line"),
    [
        ([], [], True, True, UsageError, "no image given; name one or more local images (docker images lists them)"),
        (
            ["a:1"],
            [],
            False,
            True,
            EnvironmentProblem,
            "docker does not answer; start it (`rollout-harness up` does) and build or pull the images",
        ),
        (["a:1", "b:2"], ["b:2"], True, True, UsageError, "not in the local docker images: b:2; build or pull it first"),
        (["a:1", "b:2"], ["a:1", "b:2"], True, False, UsageError, "not in the local docker images: a:1, b:2; build or pull them first"),
        (["a:1"], [], True, False, ClusterError, "no cluster rh-test; bring it up first (`rollout-harness up`)"),
    ],
)
def test_what_stops_a_load_is_one_line_and_its_exit_code(
    images: list[str], missing: list[str], docker_up: bool, cluster_up: bool, error: type[Exception], line: str
) -> None:
    err = problem(images, missing, docker_up, cluster_up, "rh-test")
    assert type(err) is error and str(err) == line
    assert exit_code(err) == (2 if error is UsageError else 3)


def test_nothing_stops_a_load_of_present_images_into_a_running_cluster() -> None:
    assert problem(["a:1"], [], True, True, "rh-test") is None


def test_load_image_needs_an_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load-image"]) == 2
    err = capsys.readouterr().err
    first, usage = err.splitlines()
    assert first == "rollout-harness: error: the following arguments are required: IMG" and usage.startswith(
        "usage: rollout-harness load-image"
    )


def test_load_image_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["load-image", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: rollout-harness load-image [-h] [-v] [-q] IMG [IMG ...]" in out
    assert "rollout-harness load-image cart:ci-1 cart:ci-2" in out.split("examples:")[1]


@pytest.mark.integration
@pytest.mark.docker
def test_an_image_docker_lacks_exits_2_before_anything_is_loaded(capsys: pytest.CaptureFixture[str]) -> None:
    """Asks the local docker (read only) whether it has the image."""
    assert main(["load-image", "rh-test-absent-image:never"]) == 2
    assert (
        capsys.readouterr().err
        == "rollout-harness: error: not in the local docker images: rh-test-absent-image:never; build or pull it first\n"
    )


@pytest.mark.integration
@pytest.mark.docker
def test_the_fixture_loads_only_onto_a_kind_cluster_and_only_present_images(tmp_path: Path) -> None:
    """The plugin's `load_image` in a pytest run of its own, the cluster fixture replaced by stand-ins."""
    (tmp_path / "conftest.py").write_text(
        textwrap.dedent(
            """
            import types
            import pytest

            @pytest.fixture
            def rollout_cluster(request):
                return types.SimpleNamespace(kind_name=request.param)
            """
        )
    )
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import pytest
            from harness.errors import UsageError

            @pytest.mark.parametrize("rollout_cluster", [None], indirect=True)
            def test_not_kind(load_image):
                with pytest.raises(UsageError, match="^load_image: this cluster is not a kind cluster; push the images"):
                    load_image("a:1")

            @pytest.mark.parametrize("rollout_cluster", ["rh-test-no-cluster"], indirect=True)
            def test_absent(load_image):
                with pytest.raises(UsageError, match="^not in the local docker images: rh-test-absent-image:never;"):
                    load_image("rh-test-absent-image:never")
            """
        )
    )
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "2 passed" in done.stdout, done.stdout + done.stderr
    fixtures = subprocess.run([*run, "--fixtures"], cwd=tmp_path, capture_output=True, text=True, timeout=120).stdout
    assert "load_image(*images)`: put local docker images on the cluster" in " ".join(fixtures.split())
