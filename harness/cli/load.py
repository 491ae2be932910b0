"""`load`: open-loop HTTP load against a URL (harness.load), its summary on stdout, like `fortio load`."""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, replace
from enum import StrEnum
from pathlib import Path

from harness.cli import output
from harness.cli.verb import CONNECTIONS_HELP, MUX_CONNECTIONS_HELP, Verb, duration, positive, writable_file
from harness.durations import ACCEPTED
from harness.errors import UsageError
from harness.files import write_atomic
from harness.gate import EXIT_OVER_BUDGET, Budget
from harness.load import LoadSpec
from harness.model import ConnMode

log = logging.getLogger("harness")


class LoadFormat(StrEnum):
    """What `load` prints on stdout."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


LOAD_SCHEMA = "rollout-harness/load@1"
"""The JSON result's `schema` (harness/schemas/load.schema.json)."""


def add_arguments(ld: argparse.ArgumentParser) -> None:
    ld.add_argument("url", help="where the GETs go: http:// or https://, a host name or address, a port and a path")
    ld.add_argument("--rate", type=positive(float), default=LoadSpec.rate, help="requests/s (default %(default)g)")
    ld.add_argument("--duration", type=duration, default=LoadSpec.duration, help=f"how long ({ACCEPTED}; default 10s)")
    ld.add_argument("--mode", choices=[m.value for m in ConnMode], default=ConnMode.NEW.value, help="(default %(default)s)")
    ld.add_argument("--connect-timeout", type=duration, default=LoadSpec.connect_timeout, help="(default %(default)gs)")
    ld.add_argument("--read-timeout", type=duration, default=LoadSpec.read_timeout, help="(default %(default)gs)")
    ld.add_argument("--connections", type=positive(int), default=LoadSpec.connections, help=CONNECTIONS_HELP)
    ld.add_argument("--mux-connections", type=positive(int), default=LoadSpec.mux_connections, help=MUX_CONNECTIONS_HELP)
    ld.add_argument(
        "--max-in-flight",
        type=positive(int),
        default=None,
        help=f"requests in flight beyond this are skipped, not sent; at least rate × (connect + read timeout), what a stalled "
        f"server holds (default {LoadSpec.max_in_flight}, or that if more)",
    )
    ld.add_argument("-n", "--requests", type=positive(int), default=None, help="stop after this many requests")
    output.add_budget_arguments(ld)
    ld.add_argument("--out", type=Path, help="write the JSON result here")
    ld.add_argument("--records", type=Path, help="stream every request record here (JSONL)")
    ld.add_argument("--timeline", action="store_true", help="also print the per-second failure timeline (with --format table)")
    ld.add_argument(
        "--format",
        choices=[f.value for f in LoadFormat],
        default=LoadFormat.TABLE.value,
        help="stdout: markdown tables, the JSON result (as --out writes it), or one CSV row under a fixed header (default table)",
    )


async def run(args: argparse.Namespace) -> int:
    spec = LoadSpec(
        url=args.url,
        rate=args.rate,
        duration=args.duration,
        mode=ConnMode(args.mode),
        max_requests=args.requests,
        max_in_flight=args.max_in_flight or LoadSpec.max_in_flight,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
        connections=args.connections,
        mux_connections=args.mux_connections,
    )
    spec.validate()
    need = spec.in_flight_needed()
    if args.max_in_flight is None:
        spec = replace(spec, max_in_flight=max(spec.max_in_flight, need))
    elif args.max_in_flight < need:
        raise UsageError(
            f"--max-in-flight {args.max_in_flight}: below the {need} requests a stalled server holds at this rate and these "
            "timeouts (rate × (connect + read timeout)), beyond which requests are skipped, not sent; raise it, or lower "
            "the rate or the timeouts"
        )
    return await load(spec, output.budget(args), args.out, args.records, args.timeline, LoadFormat(args.format))


async def load(
    spec: LoadSpec, budget: Budget, out: Path | None, records: Path | None, timeline: bool, fmt: LoadFormat = LoadFormat.TABLE
) -> int:
    """Run the load; print its summary (and per-second timeline) in `fmt`; write the JSON result to `out` and every
    record to `records`; return the budget's exit status."""
    from harness.load import run_load
    from harness.records import RecordWriter, RequestRecord
    from harness.report import load_csv, summary_table, timeline_table
    from harness.summary import Accumulator

    spec.validate()
    if timeline and fmt is not LoadFormat.TABLE:
        raise UsageError(f"--timeline adds a table: it goes with --format table (the {fmt.value} output has no timeline table)")
    for path, flag in ((out, "--out"), (records, "--records")):
        if path is not None:
            writable_file(path, flag)
    acc = Accumulator()
    writer = RecordWriter(records)
    last = time.monotonic()
    done = 0

    def sink(rec: RequestRecord) -> None:
        nonlocal last, done
        acc.add(rec)
        writer.write(rec)
        done += 1
        if time.monotonic() - last >= 5:
            last = time.monotonic()
            log.info("[load] %d/%d requests, %d failed", done, spec.total(), acc.failed)

    log.info("[load] %s: %d requests at %g/s (%s connections)", spec.url, spec.total(), spec.rate, spec.mode.value)
    try:
        result = await run_load(spec, sink)
    finally:
        writer.close()
    summary = acc.summary()
    doc = {
        "schema": LOAD_SCHEMA,
        "url": spec.url,
        "mode": spec.mode.value,
        "rate": spec.rate,
        "generator": {"cpu_seconds": result.cpu_seconds, "cpu_ms_per_1k": result.cpu_ms_per_1k, "wall_seconds": result.wall_seconds},
        "summary": asdict(summary),
    }
    if fmt is LoadFormat.JSON:
        print(json.dumps(doc, indent=1))
    elif fmt is LoadFormat.CSV:
        print(load_csv(spec.url, spec.mode.value, spec.rate, summary), end="")
    else:
        print(summary_table(summary))
        if timeline:
            print()
            print(timeline_table(summary))
    if out:
        write_atomic(out, json.dumps(doc, indent=1) + "\n")
    if why := budget.exceeded_load(summary):
        log.warning("over budget (%s): %s", budget.describe(), why)
        return EXIT_OVER_BUDGET
    return 0


VERB = Verb(
    "load",
    "open-loop HTTP load against a URL, like `fortio load`",
    "Send requests to a URL at a fixed rate, each at its scheduled time whatever the server does (open loop), and\n"
    "print what came back by kind of failure. No cluster needed.",
    "examples:\n"
    "  rollout-harness load http://127.0.0.1:8080/ --rate 200 --duration 30s --mode keepalive --timeline\n"
    "  rollout-harness load http://127.0.0.1:8080/healthz -n 1000 --max-failures 0 --out load.json\n"
    "  rollout-harness load http://127.0.0.1:8080/ --duration 1m --format csv > load.csv",
    add_arguments,
    run,
)
