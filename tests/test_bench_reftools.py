"""The h2/grpc benchmark's reference tools (bench/reftools.py) and its table (bench/h2_load.py), on output captured
from h2load 1.52 and ghz v0.120.0 against the probe app: parsing, the figures computed from it, the pod name that
makes the gRPC answer a protobuf message, and the table's columns. Nothing here runs a tool or times anything."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bench import h2_load, reftools
from bench.reftools import Measured, Sample
from bench.tools import Percentiles, Point
from harness.errors import EnvironmentProblem

H2LOAD_STDOUT = """\
starting benchmark...
spawning thread #0: 2 total client(s). Timing-based test with 0s of warm-up time and 5s of main duration for measurements.
Application protocol: h2c

finished in 5.01s, 998.40 req/s, 76.85KB/s
requests: 4992 total, 5002 started, 4992 done, 4990 succeeded, 2 failed, 0 errored, 0 timeout
status codes: 4990 2xx, 0 3xx, 0 4xx, 2 5xx
                     min         max         mean         sd        +/- sd
time for request:      582us     19.58ms      2.38ms      1.40ms    87.34%
"""

H2LOAD_LOG = "1796359365548049\t200\t1497\n1796359365548019\t200\t2130\n1796359365571111\t503\t668\n1796359365571142\t-1\t1613\n"

GHZ_JSON = {
    "count": 3,
    "rps": 55.1,
    "errorDistribution": {"rpc error: code = Unavailable desc = error reading from server: EOF": 1},
    "statusCodeDistribution": {"OK": 2, "Unavailable": 1},
    "details": [
        {"timestamp": "2026-12-04T04:42:45.495920249Z", "latency": 31315712, "error": "", "status": "OK"},
        {"timestamp": "2026-12-04T04:42:45.49737985Z", "latency": 4119866, "error": "", "status": "OK"},
        {"timestamp": "2026-12-04T04:42:45.5Z", "latency": 1000000, "error": "rpc error: ...", "status": "Unavailable"},
    ],
}
BASE = datetime(2026, 12, 4, 4, 42, 45, tzinfo=UTC).timestamp()


def test_h2load_counts_and_log():
    assert reftools.h2load_counts(H2LOAD_STDOUT) == {
        "total": 4992,
        "started": 5002,
        "done": 4992,
        "succeeded": 4990,
        "failed": 2,
        "errored": 0,
        "timeout": 0,
    }
    samples = reftools.h2load_samples(H2LOAD_LOG)
    assert samples[0] == Sample(1796359365.548049, 0.001497, "200", True)
    assert [(s.outcome, s.ok) for s in samples] == [("200", True), ("200", True), ("503", False), ("-1", False)]


def test_h2load_without_its_summary_is_one_clear_error():
    with pytest.raises(EnvironmentProblem, match="no `requests:` line"):
        reftools.h2load_counts("connect: Connection refused\n")


def test_epoch_keeps_nanoseconds_and_zones():
    assert reftools.epoch("2026-12-04T04:42:45Z") == BASE
    assert reftools.epoch("2026-12-04T04:42:45.495920249Z") == pytest.approx(BASE + 0.495920249, abs=1e-6)
    assert reftools.epoch("2026-12-04T05:42:45.5+01:00") == pytest.approx(BASE + 0.5, abs=1e-6)
    with pytest.raises(ValueError, match="RFC 3339"):
        reftools.epoch("04:42:45")


def test_ghz_samples_start_at_end_minus_latency():
    samples, errors = reftools.ghz_samples(json.loads(json.dumps(GHZ_JSON)))
    assert [s.start for s in samples] == pytest.approx(
        [BASE + 0.495920249 - 0.031315712, BASE + 0.49737985 - 0.004119866, BASE + 0.499], abs=1e-6
    )
    assert [(s.outcome, s.ok) for s in samples] == [("OK", True), ("OK", True), ("Unavailable", False)]
    assert errors == ("rpc error: code = Unavailable desc = error reading from server: EOF",)
    assert reftools.ghz_samples({"count": 0}) == ([], ())


def test_point_from_samples_uses_the_point_definitions():
    samples = [Sample(100.0 + i / 4, 0.001 * (i + 1), "OK" if i else "Unavailable", bool(i)) for i in range(5)]  # 5 over 1 s
    p = reftools.point("ghz", "grpc", 10, 1.0, samples, Measured(cpu_seconds=0.05, wall_seconds=2.0, server_cpu_seconds=1.0), ("e",))
    assert (p.scheduled, p.sent, p.ok, p.failed, p.unsent) == (10, 5, 4, 1, 5)
    assert p.achieved_rate == 5.0  # sent / (last start - first start)
    assert p.latency.max == pytest.approx(5.0)
    assert p.cpu_ms_per_1k == pytest.approx(10_000)
    assert p.server_cpu_pct == 50
    assert p.lateness is None and p.skipped is None
    assert p.outcomes == {"OK": 4, "Unavailable": 1} and p.errors == ("e",)


@pytest.mark.parametrize("port", [32768, 50000, 60999])
def test_grpc_pod_name_makes_the_answer_one_protobuf_field(port):
    pod = reftools.grpc_pod_name("v1", 5)
    body = f"{pod}\nv1\nipv4:127.0.0.1:{port}".encode()  # as probe_app.grpcapp answers
    assert body[0] == reftools.REPLY_FIELD << 3 | 2  # field 10, length-delimited
    assert body[1] == len(body) - 2 < 128  # one-byte varint: the field runs to the end of the message
    assert pod.isascii() and pod.isprintable() and "\n" not in pod


def test_grpc_pod_name_refuses_a_length_one_byte_cannot_hold():
    with pytest.raises(ValueError, match="another `rest`"):
        reftools.grpc_pod_name("v" * 120, 5)


def test_port_digits(tmp_path):
    (tmp_path / "range").write_text("32768\t60999\n")
    assert reftools.port_digits(tmp_path / "range") == 5
    (tmp_path / "range").write_text("1024\t65535\n")
    with pytest.raises(EnvironmentProblem, match="differ in length"):
        reftools.port_digits(tmp_path / "range")


def test_grpc_proto_names_the_probe_apps_method():
    proto, call = reftools.grpc_proto()
    assert call == "probe.Probe.Get"
    assert "package probe;" in proto and "rpc Get(Request) returns (Reply)" in proto
    assert f"bytes rest = {reftools.REPLY_FIELD};" in proto


def _point(tool, mode, rate, *, sent, cpu, late_p99=None, skipped=None, process_cpu=None):
    return Point(
        tool=tool,
        mode=mode,
        rate=rate,
        scheduled=rate * 20,
        sent=sent,
        ok=sent,
        achieved_rate=sent / 20,
        latency=Percentiles(1.0, 3.0, 9.0),
        cpu_seconds=cpu,
        wall_seconds=20.0,
        server_cpu_pct=30.0,
        lateness=Percentiles(0.5, late_p99, 4.0) if late_p99 is not None else None,
        skipped=skipped,
        process_cpu_seconds=process_cpu,
    )


def test_table_has_the_columns_ratio_and_goal():
    ours = _point("ours", "h2", 1000, sent=20_000, cpu=1.0, late_p99=1.1, skipped=0, process_cpu=2.0)
    ref = _point("h2load", "h2", 1000, sent=20_000, cpu=0.5)
    late = _point("ours", "grpc", 1000, sent=20_000, cpu=1.0, late_p99=2.5, skipped=0, process_cpu=2.0)
    lines = h2_load.table([ours, ref, late]).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == h2_load.HEADERS
    for col in ("tool", "mode", "rate", "achieved", "late p99 ms", "failed", "CPU ms/1k", "ours/ref CPU"):
        assert col in header
    rows = [dict(zip(header, (c.strip() for c in line.strip("|").split("|")), strict=True)) for line in lines[2:]]
    assert rows[0]["CPU ms/1k"] == "100 (loop 50)" and rows[0]["goal (1000/s, late p99 <= 2 ms)"] == "met"  # whole process: 2 s / 20k
    assert rows[1]["late p99 ms"] == "n/a" and rows[1]["skipped"] == "n/a"
    assert rows[1]["CPU ms/1k"] == "25" and rows[1]["ours/ref CPU"] == "4.00"
    assert rows[2]["goal (1000/s, late p99 <= 2 ms)"] == "MISSED" and rows[2]["ours/ref CPU"] == ""


def test_bad_flags_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as e:
        h2_load.parse_args(["--tools", "wrk"])
    assert e.value.code == 2
    assert "unknown mode or tool 'wrk'" in capsys.readouterr().err
