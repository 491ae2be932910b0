"""Known answers for the aggregation and the tables, from hand-built records at 100 req/s (sched = seq / 100)."""

import random

import pytest

from harness.gate import Budget
from harness.records import SKIPPED, UNFINISHED, RequestRecord
from harness.report import summary_table, timeline_table
from harness.summary import Accumulator, Histogram, RunSummary

RATE = 100.0


def rec(seq: int, kind: str = "ok", status: int = 0, latency: float = 0.010, late: float = 0.0) -> RequestRecord:
    sched = seq / RATE
    if kind == "ok" and not status:
        status = 200
    return RequestRecord(seq, sched, sched + late, sched + late + latency, kind, status)


def summary_of(records: list[RequestRecord]) -> RunSummary:
    """The way the harness aggregates (analysis, `load`): feed an Accumulator in any order, then summary()."""
    acc = Accumulator()
    for r in records:
        acc.add(r)
    return acc.summary()


def run_of(pattern: str) -> list[RequestRecord]:
    """One record per character: . ok, R refused, X reset, T read_timeout, 5 http 503, S skipped, E client error
    (EMFILE), U unfinished."""
    kinds = {".": ("ok", 200), "R": ("refused", 0), "X": ("reset", 0), "T": ("read_timeout", 0), "5": ("http_5xx", 503), "S": (SKIPPED, 0)}
    kinds |= {"E": ("client_error", 0), "U": (UNFINISHED, 0)}
    return [rec(i, *kinds[c]) for i, c in enumerate(pattern)]


def test_counts_failures_by_kind_and_http_code() -> None:
    records = [rec(i) for i in range(10)]
    records += [rec(10 + i, "refused") for i in range(3)]
    records += [rec(13 + i, "reset") for i in range(2)]
    records += [rec(15, "http_5xx", 503), rec(16, "http_5xx", 503), rec(17, "http_5xx", 502)]
    records += [rec(18, "http_other", 404)]
    s = summary_of(records)
    assert (s.requests, s.ok, s.failed, s.skipped) == (19, 10, 9, 0)
    assert s.by_kind == {"refused": 3, "reset": 2, "http_5xx": 3, "http_other": 1}
    assert s.http_codes == {"404": 1, "502": 1, "503": 2}
    assert s.failure_pct == pytest.approx(100 * 9 / 19, abs=1e-4)


def test_no_failures_is_zero_everywhere() -> None:
    s = summary_of([rec(i) for i in range(50)])
    assert (s.failed, s.failure_pct, s.longest_outage_ms, s.disruption_seconds) == (0, 0.0, 0.0, 0)
    assert s.outage_start_s is None and s.by_kind == {} and s.http_codes == {}


def test_empty_run() -> None:
    s = summary_of([])
    assert (s.requests, s.ok, s.failed, s.failure_pct, s.achieved_rate, s.timeline) == (0, 0, 0, 0.0, 0.0, [])


def test_skipped_is_neither_ok_nor_failure() -> None:
    s = summary_of(run_of("....SSSS....R"))
    assert (s.requests, s.ok, s.failed, s.skipped) == (13, 8, 1, 4)
    assert s.failure_pct == pytest.approx(100 / 9, abs=1e-4)  # over requests actually sent
    assert s.by_kind == {"refused": 1}
    # a second with only skipped requests is not a disrupted second
    only_skips = [rec(i) for i in range(100)] + [rec(100 + i, SKIPPED) for i in range(100)]
    assert summary_of(only_skips).disruption_seconds == 0


def test_longest_outage_is_first_to_last_failure_of_longest_run() -> None:
    #            0         1         2         3
    #            0123456789012345678901234567890123
    pattern = "..........RRRRR.....TTTTTXXXXX...5"
    s = summary_of(run_of(pattern))
    # run 20..29 (timeouts then resets, one run): sched 0.20 -> 0.29
    assert s.longest_outage_ms == pytest.approx(90.0)
    assert s.outage_start_s == pytest.approx(0.20)


def test_skipped_inside_an_outage_does_not_split_it() -> None:
    s = summary_of(run_of("...RRSSRR..."))
    assert s.longest_outage_ms == pytest.approx(50.0)  # seq 3 -> 8
    assert s.outage_start_s == pytest.approx(0.03)


def test_outage_running_to_the_end_counts() -> None:
    s = summary_of(run_of("..RR....RRRRRRR"))
    assert s.longest_outage_ms == pytest.approx(60.0)
    assert s.outage_start_s == pytest.approx(0.08)


def test_single_failure_is_a_zero_length_outage() -> None:
    s = summary_of(run_of("....R...."))
    assert s.longest_outage_ms == 0.0
    assert s.outage_start_s == pytest.approx(0.04)


def test_order_of_arrival_does_not_matter() -> None:
    records = run_of("....RRRR...TT..5.." * 20)
    shuffled = records[:]
    random.Random(7).shuffle(shuffled)
    assert summary_of(shuffled) == summary_of(records)


def test_disruption_seconds_and_timeline() -> None:
    records = [rec(i) for i in range(400)]  # seconds 0..3
    records[50] = rec(50, "refused")
    records[250] = rec(250, "reset")
    records[251] = rec(251, "http_5xx", 503)
    s = summary_of(records)
    assert s.disruption_seconds == 2
    assert s.timeline == [
        {"t": 0, "ok": 99, "refused": 1},
        {"t": 1, "ok": 100},
        {"t": 2, "http_5xx": 1, "ok": 98, "reset": 1},
        {"t": 3, "ok": 100},
    ]
    table = _cells(timeline_table(s))
    assert table == [["second", "ok", "refused", "reset", "5xx"], ["0", "99", "1", "0", "0"], ["2", "98", "0", "1", "1"]]
    assert timeline_table(summary_of([rec(i) for i in range(10)])) == "(no failures in any second)"


def _cells(markdown: str) -> list[list[str]]:
    """Rows of a github-format table as stripped cells, without the |---| line."""
    lines = markdown.splitlines()
    return [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines[:1] + lines[2:]]


def test_percentiles_within_two_percent() -> None:
    n = 1000
    records = [rec(i, latency=(i + 1) / 1000, late=(n - i) / 100_000) for i in range(n)]  # 1..1000 ms; 10 µs..10 ms
    s = summary_of(records)
    assert s.latency_p50_ms == pytest.approx(500, rel=0.02)
    assert s.latency_p99_ms == pytest.approx(990, rel=0.02)
    assert s.latency_max_ms == pytest.approx(1000, rel=1e-6)
    assert s.lateness_p50_ms == pytest.approx(5.0, rel=0.02)
    assert s.lateness_p99_ms == pytest.approx(9.9, rel=0.02)


def test_failures_do_not_count_in_latency() -> None:
    records = [rec(i, latency=0.005) for i in range(100)] + [rec(100 + i, "read_timeout", latency=2.0) for i in range(5)]
    s = summary_of(records)
    assert s.latency_max_ms == pytest.approx(5.0)


def test_achieved_rate() -> None:
    s = summary_of([rec(i, latency=0.0) for i in range(201)])  # first start 0.0, last end 2.0
    assert s.achieved_rate == pytest.approx(100.5, abs=0.1)


def test_histogram() -> None:
    h = Histogram()
    assert h.percentile(50) == 0.0
    for v in (0.0, 1e-9, 0.001):
        h.add(v)
    assert h.n == 3 and h.max == 0.001
    assert h.percentile(100) == pytest.approx(0.001, rel=0.01)


def test_accumulator_grows_beyond_its_initial_buffer() -> None:
    acc = Accumulator()
    acc.add(rec(5000, "refused"))
    acc.add(rec(0))
    s = acc.summary()
    assert (s.ok, s.failed, s.requests) == (1, 1, 2)


def test_summary_table_has_the_metrics() -> None:
    s = summary_of(run_of("....RR..55..SS.."))
    table = summary_table(s)
    lines = table.splitlines()
    assert lines[0].startswith("| metric") and "value" in lines[0]
    assert lines[1].startswith("|--")
    for label in (
        "requests",
        "failure %",
        "refused",
        "http_5xx",
        "HTTP codes",
        "503×2",
        "client errors",
        "skipped (in-flight cap)",
        "unfinished",
        "not ok (budget)",
        "longest failure streak ms",
        "seconds with a failure",
        "latency p50 / p99 / max ms",
        "achieved rate req/s",
    ):
        assert label in table, label


def _rows(markdown: str) -> dict[str, str]:
    return {row[0]: row[1] for row in _cells(markdown)[1:]}


def test_client_errors_skipped_and_unfinished_are_on_the_table_and_in_not_ok() -> None:
    """The review's case: 500 ok and 500 EMFILE used to print "failed 0, failure % 0.000" and pass
    --max-failures 0. Each kind of request not ok has its row; not_ok sums them over the scheduled requests."""
    s = summary_of(run_of("." * 500 + "E" * 500))
    assert (s.requests, s.ok, s.failed, s.failure_pct, s.client_errors) == (1000, 500, 0, 0.0, 500)
    assert (s.not_ok, s.not_ok_pct) == (500, 50.0)
    rows = _rows(summary_table(s))
    assert rows["failed"] == "0" and rows["client errors (the generator's)"] == "500"
    assert rows["not ok (budget): count, % of scheduled"] == "500, 50.000"

    mixed = summary_of(run_of("..R..SS.EUU.5....TTX"))
    assert (mixed.ok, mixed.failed, mixed.skipped, mixed.client_errors, mixed.unfinished) == (10, 5, 2, 1, 2)
    assert mixed.not_ok == mixed.failed + mixed.skipped + mixed.client_errors + mixed.unfinished == mixed.requests - mixed.ok == 10
    assert mixed.not_ok_pct == 50.0
    rows = _rows(summary_table(mixed))
    assert (rows["skipped (in-flight cap)"], rows["unfinished (in flight at the end)"]) == ("2", "2")
    assert rows["failure % (of ok + failed)"] == "33.333"  # 5 of 15 answered or failed
    assert (summary_of([]).not_ok, summary_of([]).not_ok_pct) == (0, 0.0)


def test_the_load_budget_counts_every_request_not_ok() -> None:
    broken_client = summary_of(run_of("." * 500 + "E" * 500))
    assert Budget(max_failures=0).exceeded(broken_client.failed, broken_client.failure_pct) == ""  # the old gate passed it
    assert Budget(max_failures=0).exceeded_load(broken_client) == "not ok 500 > 0 (0 failed, 500 client errors, 0 skipped, 0 unfinished)"
    assert Budget(max_failures=500).exceeded_load(broken_client) == ""
    assert Budget(max_fail_pct=49.9).exceeded_load(broken_client).startswith("not ok 50.00 % > 49.9 %")
    assert Budget(max_fail_pct=50).exceeded_load(broken_client) == ""
    assert Budget().exceeded_load(broken_client) == ""  # no budget, nothing to break
    assert Budget(certify=0.1).exceeded_load(broken_client) == ""  # a claim about rollouts: not for a plain load
    for pattern in ("....SS", "....UU", "....RR"):
        assert Budget(max_failures=1).exceeded_load(summary_of(run_of(pattern))).startswith("not ok 2 > 1"), pattern
    assert Budget(max_failures=0).exceeded_load(summary_of(run_of("......"))) == ""
    assert Budget(max_failures=0).exceeded_load(summary_of([])) == "no request was scheduled: nothing shown"
