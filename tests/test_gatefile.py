"""The gate file (rollout-harness.toml, or [tool.rollout-harness] in pyproject.toml): the same options, cells and
budget as the equivalent flags; flags given override it; `check` prints one line per problem and exits 2, or a summary
and 0. No cluster: compare is stopped before it connects."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from harness.cli import build_parser, check, gatefile, given, main, matrix, output
from harness.model import RunOptions

CART = Path(__file__).parent / "examples" / "cart-naive.yaml"
GOOD = f"""
workload = "{CART.name}"
variants = ["as-is", "readiness-tcp+prestop-sleep"]
triggers = ["set-image", "drain"]
modes = ["new"]
trials = 2
new_image = "registry/cart:2"
rate = 150
baseline = "5s"
tail = 4
client = "pod"
[budget]
max_failures = 0
"""
FLAGS = ["--workload", str(CART), "--variants", "as-is,readiness-tcp+prestop-sleep", "--triggers", "set-image,drain"]
FLAGS += ["--modes", "new", "--trials", "2", "--new-image", "registry/cart:2", "--rate", "150", "--baseline", "5s"]
FLAGS += ["--tail", "4", "--client", "pod", "--max-failures", "0"]


def _write(directory: Path, text: str, name: str = gatefile.NAME) -> Path:
    (directory / CART.name).write_text(CART.read_text())  # relative paths resolve against the file's directory
    path = directory / name
    path.write_text(text)
    return path


def _plan(argv: list[str], directory: Path) -> tuple[RunOptions, list[object], output.Rendering]:
    """What compare would run with `argv` in `directory` (the file applied as compare applies it)."""
    args = build_parser().parse_args(["compare", *argv])
    args.given = given(["compare", *argv])
    args = gatefile.applied(args, directory)
    opts, cells = matrix.compare_plan(args)
    return _same_out(opts), list(cells), output.Rendering.of(args)


def _same_out(opts: RunOptions) -> RunOptions:
    from dataclasses import replace

    return replace(opts, output=replace(opts.output, out=None))


def test_a_good_file_makes_what_the_equivalent_flags_make(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    copy = tmp_path / CART.name
    from_file = _plan([], tmp_path)
    from_flags = _plan([a if a != str(CART) else str(copy) for a in FLAGS], tmp_path / "elsewhere")
    assert from_file == from_flags
    opts, cells, how = from_file
    assert opts.subject.workload == copy and opts.timing.baseline == 5.0 and opts.traffic.client.value == "pod"
    assert len(cells) == 2 * 2 * 2 and how.budget.max_failures == 0


def test_modes_h2_and_grpc_are_cells_with_their_connections(tmp_path: Path) -> None:
    """`--modes h2,grpc` (or `modes = ["h2", "grpc"]`) makes their cells; `--mux-connections` (or `mux_connections`)
    sets their connections, recorded in the provenance of their results only."""
    from harness.model import ConnMode

    _write(tmp_path, 'modes = ["h2", "grpc"]\nmux_connections = 3\n')
    opts, cells, _ = _plan(["--variants", "naive", "--triggers", "set-image", "--trials", "1"], tmp_path)
    flags, _, _ = _plan(
        ["--variants", "naive", "--triggers", "set-image", "--trials", "1", "--modes", "h2,grpc", "--mux-connections", "3"], tmp_path / "x"
    )
    assert opts == flags and opts.traffic.mux_connections == 3
    assert [c.mode for c in cells] == [ConnMode.H2, ConnMode.GRPC]  # type: ignore[attr-defined]
    assert opts.provenance(ConnMode.H2)["mux_connections"] == 3 and "mux_connections" not in opts.provenance(ConnMode.NEW)


def test_flags_given_override_the_file(tmp_path: Path) -> None:
    _write(tmp_path, GOOD)
    opts, cells, how = _plan(["--rate", "200", "--triggers", "drain", "--max-failures", "3", "--tail", "3"], tmp_path)
    assert opts.traffic.rate == 200 and opts.timing.tail == 3.0  # 3 is the default: given, so it wins all the same
    assert {c.trigger.value for c in cells} == {"drain"} and how.budget.max_failures == 3  # type: ignore[attr-defined]
    assert opts.timing.baseline == 5.0 and opts.schedule.trials == 2  # not given: the file's


def test_given_names_only_what_the_command_line_set() -> None:
    assert given(["compare", "--rate", "200", "--no-ahead", "-v"]) == {"verb", "rate", "ahead", "verbose_after"}
    assert given(["compare"]) == {"verb"}


def test_pyproject_is_read_and_the_dedicated_file_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.rollout-harness]\nrate = 120\ntrials = 1\n')
    assert gatefile.find(tmp_path) == tmp_path / "pyproject.toml"
    assert _plan([], tmp_path)[0].traffic.rate == 120
    _write(tmp_path, "rate = 90\n")
    assert gatefile.find(tmp_path) == tmp_path / gatefile.NAME
    assert _plan([], tmp_path)[0].traffic.rate == 90


def test_no_file_and_a_pyproject_without_the_table_change_nothing(tmp_path: Path) -> None:
    args = argparse.Namespace(rate=1.0, given=frozenset())
    assert gatefile.applied(args, tmp_path) is args
    (tmp_path / "pyproject.toml").write_text("[tool.ruff]\nline-length = 100\n")
    assert gatefile.find(tmp_path) is None


@pytest.mark.parametrize(
    ("text", "expect"),
    [
        ("trails = 3", ["trails: unknown key (did you mean 'trials'?)"]),
        ("max_failures = 0", ["max_failures: unknown key (did you mean 'budget.max_failures'?)"]),
        ("rate = 'fast'\nbaseline = '5x'", ["rate: must be a number, not str 'fast'", "baseline: bad duration '5x'"]),
        ("trials = 1.5", ["trials: must be an integer"]),
        ("rate = -5", ["rate: must be positive"]),
        ("client = 'tcp'", ["client: 'tcp': one of host, pod"]),
        ("variants = 'naive'\n[budget]\nmax_fail_pct = 200", ["budget.max_fail_pct: --max-fail-pct 200: must be in [0, 100]"]),
        ("budget = 3", ["budget: must be a table"]),
        ("rate = [", ["not TOML"]),
        ("baseline = '2h'", ["baseline 7200s: must be in [0, 3600] s"]),
        ("certify = '10%'\ntrials = 3", ["certifying 10 % takes 29 rollouts"]),
        ("variants = ['nope', 'zap']", ["variants: unknown variant 'nope'", "variants: unknown variant 'zap'"]),
        ("triggers = ['explode']", ["unknown trigger"]),
        ("new_image = 'x:2'", ["a new image and a Service port go with your own workload"]),
        (f"workload = '{CART.name}'\nvariants = ['as-is+nope']", ["unknown overlay 'nope'"]),
    ],
)
def test_check_prints_each_problem_on_one_line_and_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, expect: list[str]
) -> None:
    path = _write(tmp_path, text)
    assert main(["check", str(path)]) == 2
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(expect), lines
    for line, want in zip(lines, expect, strict=True):
        assert line.startswith(f"{path}: ") and want in line, (line, want)


def test_check_summarises_a_good_file_and_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, GOOD)
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / gatefile.NAME}: 4 cells × 2 trials, budget at most 0 lost per rollout, certify off\n"
    _write(tmp_path, "variants = ['naive']\ntriggers = ['set-image']\ncertify = '10%'\n")
    assert check.problems(gatefile.read(tmp_path / gatefile.NAME)) == ([], "1 cells × 35 trials, budget none, certify 10 %")


def test_check_without_a_file_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check"]) == 2
    assert "no rollout-harness.toml here" in capsys.readouterr().err
    assert main(["check", "missing.toml"]) == 2
    assert "missing.toml: no such file" in capsys.readouterr().err


def test_compare_refuses_a_bad_file_in_one_line_before_any_cluster_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "trails = 3\nrate = 'x'\n")
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--no-up"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rollout-harness: error: ") and "trails: unknown key" in err and "(and 1 more)" in err, err
    assert "\n" not in err


def test_compare_says_which_file_it_read(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "variants = ['nope']\n")  # read, then refused at the variant's loading: no cluster reached
    monkeypatch.chdir(tmp_path)
    assert main(["compare", "--no-up"]) == 2
    err = capsys.readouterr().err
    assert f"gate file: {tmp_path / gatefile.NAME}" in err and "unknown variant 'nope'" in err
