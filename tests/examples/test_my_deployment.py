"""What a user would copy: assert with the `rollout` fixture (the rollout-harness pytest plugin, active once the
package is installed) that a configuration loses nothing when it is rolled out and when its node is drained.

Copy this file, point `manifests=` at your own variants directory (see manifests/variants/README.md), and run
`pytest` (add `--rollout-keep-cluster` to keep the kind cluster between runs). In this repository it runs in the
e2e tier (`--with-e2e`)."""

from __future__ import annotations

from harness.model import Status
from harness.pytest_plugin import Rollout


def test_best_practice_loses_nothing(rollout: Rollout) -> None:
    """Its node drained (its rollout, set-image, is the cell below: two of them)."""
    result = rollout("best-practice", "drain", rate=150)
    assert result.status is Status.USED, result.reasons
    assert result.lost == 0, result.lost_by_kind


def test_naive_loses_requests_on_set_image(rollout: Rollout) -> None:
    result = rollout("naive", "set-image", rate=150)
    assert result.status is Status.USED, result.reasons
    assert result.lost > 0, "a Deployment without probes must lose requests when it is rolled out"


def test_best_practice_cell_is_lossless_over_two_rollouts(rollout: Rollout) -> None:
    """A cell's verdict, folded as `compare` folds it: per-rollout claims, not one trial's numbers."""
    cell = rollout.cell("best-practice", "set-image", trials=2, rate=150, parallel=2)  # the two side by side
    assert cell.verdict == "lossless" and cell.rollouts == 2 and cell.rollouts_lost == 0, cell.why
    assert cell.p_lose_upper is not None and cell.p_lose_upper < 0.8  # 0 of 2: at most 78 % of rollouts lose (95 %)
