"""`rollout-harness load URL`: drive load, print the summary table, optionally save JSON and records."""

from __future__ import annotations

import argparse
import logging
import time

from harness.load import ConnMode, LoadSpec, run_load
from harness.records import RecordWriter, RequestRecord
from harness.report import run_json, summary_table, timeline_table, write_json
from harness.summary import Accumulator

log = logging.getLogger("harness.load")


async def load_command(args: argparse.Namespace) -> int:
    spec = LoadSpec(
        url=args.url,
        rate=args.rate,
        duration=args.duration,
        mode=ConnMode(args.mode),
        max_requests=args.requests,
        max_in_flight=args.max_in_flight,
        connect_timeout=args.connect_timeout,
        read_timeout=args.read_timeout,
    )
    spec.validate()
    acc = Accumulator()
    writer = RecordWriter(args.records)
    last = [time.monotonic()]
    done = [0]

    def sink(rec: RequestRecord) -> None:
        acc.add(rec)
        writer.write(rec)
        done[0] += 1
        now = time.monotonic()
        if now - last[0] >= 5:
            last[0] = now
            log.info("[load] %d/%d requests, %d failed", done[0], spec.total(), sum(acc.kinds.values()))

    log.info("[load] %s: %d requests at %g/s (%s connections)", spec.url, spec.total(), spec.rate, spec.mode.value)
    try:
        result = await run_load(spec, sink)
    finally:
        writer.close()
    summary = acc.summary()
    print(summary_table(summary))
    if args.timeline:
        print()
        print(timeline_table(summary))
    if args.out:
        cpu_per_1k = 1000.0 * result.cpu_seconds / max(result.sent, 1)
        write_json(
            args.out,
            run_json(
                summary,
                name="load",
                url=spec.url,
                mode=spec.mode.value,
                rate=spec.rate,
                generator={
                    "cpu_seconds": round(result.cpu_seconds, 3),
                    "cpu_ms_per_1k": round(cpu_per_1k * 1000, 2),
                    "wall_seconds": round(result.wall_seconds, 3),
                },
            ),
        )
    return 0
