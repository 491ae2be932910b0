"""The command line's grammar: every verb and flag of rollout-harness, with the defaults taken from the options
dataclasses (declared once there). harness.cli runs what this parses."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import __version__
from harness.durations import ACCEPTED, parse_duration
from harness.errors import UsageError
from harness.load import LoadSpec
from harness.model import ConnMode, Schedule, Subject, Thresholds, Timing, Traffic, Trigger

DEFAULT_VARIANTS = ("naive", "readiness", "readiness-prestop", "graceful-app", "best-practice")
DEFAULT_TRIGGERS = ("set-image", "drain")
CONNECTIONS_HELP = "keep-alive mode: connections the requests are spread over (default %(default)d)"
COMPARE_TRIALS = 3  # a verdict needs more than one run: 3 gives a t-interval and a 2-of-3 lossless claim


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def parse_percent(text: str) -> float:
    """`10%` or `0.1` -> 0.1."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a percentage: {text!r} (give e.g. 10%)") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0% and 100%: {text!r}")
    return value


def _positive(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    def conv(text: str) -> float:
        try:
            value = kind(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from e
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
        return value

    return conv


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="rollout-harness", description="Measure traffic lost while a Kubernetes Deployment rolls.")
    p.add_argument("-V", "--version", action="version", version=f"rollout-harness {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)

    up = sub.add_parser("up", help="bring up the kind cluster (idempotent; builds the node image offline if needed)")
    up.add_argument(
        "--offline",
        choices=["auto", "yes", "no"],
        default="auto",
        help="build the node image locally (yes), pull kindest/node (no), or decide (auto) (default: auto)",
    )
    up.add_argument(
        "--dead-pod-ip",
        choices=["reject", "drop"],
        default=None,
        help="what a SYN to a deleted pod's IP meets: reject = ICMP host unreachable (no_route), drop = silence (connect_timeout) "
        "(default: keep the running cluster's setting; reject for a new one)",
    )
    up.add_argument(
        "--proxy-mode",
        choices=["iptables", "nftables", "ipvs"],
        default=None,
        help="kube-proxy mode, fixed at creation (default: the running cluster's; iptables for a new one; ipvs needs kernel IPVS)",
    )
    up.add_argument(
        "--icmp-ratelimit",
        choices=["off", "kernel"],
        default=None,
        help="per-destination ICMP error rate limit on the nodes: off = as many clients would see it, kernel = 1/s (default: keep; off)",
    )
    sub.add_parser("down", help="delete the harness's kind cluster (idempotent)")

    ld = sub.add_parser("load", help="open-loop HTTP load against a URL, like `fortio load`")
    ld.add_argument("url")
    ld.add_argument("--rate", type=_positive(float), default=LoadSpec.rate, help="requests/s (default %(default)g)")
    ld.add_argument("--duration", type=parse_duration, default=LoadSpec.duration, help=f"how long ({ACCEPTED}; default 10s)")
    ld.add_argument("--mode", choices=[m.value for m in ConnMode], default=ConnMode.NEW.value, help="(default %(default)s)")
    ld.add_argument("--connect-timeout", type=parse_duration, default=LoadSpec.connect_timeout, help="(default %(default)gs)")
    ld.add_argument("--read-timeout", type=parse_duration, default=LoadSpec.read_timeout, help="(default %(default)gs)")
    ld.add_argument("--connections", type=_positive(int), default=LoadSpec.connections, help=CONNECTIONS_HELP)
    ld.add_argument("--max-in-flight", type=_positive(int), default=LoadSpec.max_in_flight, help="(default %(default)d)")
    ld.add_argument("-n", "--requests", type=_positive(int), default=None, help="stop after this many requests")
    _budget_args(ld)
    ld.add_argument("--out", type=Path, help="write the JSON result here")
    ld.add_argument("--records", type=Path, help="stream every request record here (JSONL)")
    ld.add_argument("--timeline", action="store_true", help="also print the per-second failure timeline")

    tr, ti, th, sc, su = Traffic(), Timing(), Thresholds(), Schedule(), Subject()
    for verb in ("run", "compare"):
        r = sub.add_parser(verb, help="one variant × trigger cell" if verb == "run" else "a variants × triggers matrix with verdicts")
        if verb == "run":
            r.add_argument("--variant", default=None, help="(default naive; with --workload: as-is)")
            r.add_argument("--trigger", default="set-image", help=f"one of {', '.join(t.value for t in Trigger)} (default %(default)s)")
            r.add_argument("--mode", choices=[m.value for m in ConnMode], default=ConnMode.NEW.value, help="(default %(default)s)")
            r.add_argument(
                "--trials", type=_positive(int), default=None, help=f"(default {sc.trials}; with --certify: what it needs + 20 %%)"
            )
        else:
            r.add_argument("--variants", default=None, help=f"comma-separated (default {','.join(DEFAULT_VARIANTS)})")
            r.add_argument("--triggers", default=",".join(DEFAULT_TRIGGERS), help="comma-separated (default %(default)s)")
            r.add_argument("--modes", default=ConnMode.NEW.value, help="comma-separated: new,keepalive (default %(default)s)")
            r.add_argument(
                "--trials",
                type=_positive(int),
                default=None,
                help=f"runs per cell (default {COMPARE_TRIALS}; with --certify: at most what it needs + 20 %%)",
            )
            r.add_argument(
                "--stop-early",
                action="store_true",
                help="adaptive trials: no more trials for a cell once a used trial lost >= 10 refused/no-route/reset/HTTP requests",
            )
        r.add_argument(
            "--certify",
            type=parse_percent,
            default=None,
            metavar="P%",
            help="roll each cell until P(a rollout loses) <= P is shown with 95 %% confidence (10%%: 29 rollouts that lose nothing), "
            "or until its first rollout that loses; exit 1 unless every cell reached it",
        )
        r.add_argument(
            "--series",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="roll a cell's trials t..2t-1 on one set-up, back and forth (set-image, restart, rollback, scale; on with --certify)",
        )
        r.add_argument(
            "--kind",
            choices=["deployment", "statefulset"],
            default=su.kind.value,
            help="run the pods as a Deployment or as a StatefulSet (+ headless Service) (default %(default)s)",
        )
        r.add_argument(
            "--parallel",
            type=_positive(int),
            default=sc.parallel,
            help="cells at once, each in its own namespace (default %(default)d)",
        )
        r.add_argument(
            "--no-ahead",
            dest="ahead",
            action="store_false",
            help="set each cell up only after the one before it ended (default: during its tail, once its old pods are gone)",
        )
        r.add_argument("--rate", type=_positive(float), default=tr.rate, help="requests/s (default %(default)g)")
        r.add_argument("--baseline", type=parse_duration, default=ti.baseline, help="load before the trigger (default %(default)gs)")
        r.add_argument("--tail", type=parse_duration, default=ti.tail, help="load after the disruption settled (default %(default)gs)")
        r.add_argument("--rollout-timeout", type=parse_duration, default=ti.rollout_timeout, help="(default %(default)gs)")
        r.add_argument("--connect-timeout", type=parse_duration, default=tr.connect_timeout, help="(default %(default)gs)")
        r.add_argument("--read-timeout", type=parse_duration, default=tr.read_timeout, help="(default %(default)gs)")
        r.add_argument("--connections", type=_positive(int), default=tr.connections, help=CONNECTIONS_HELP)
        r.add_argument("--client-image", default=None, help="--client pod: a pushed client image (see `client-image`)")
        r.add_argument(
            "--client",
            choices=["host", "pod"],
            default=None,
            help="load from the host through the NodePort, or from a pod through the ClusterIP (default host; pod with --discovery dns)",
        )
        r.add_argument(
            "--discovery",
            choices=["service", "dns"],
            default=tr.discovery.value,
            help="the client goes through the Service, or resolves the pods' headless Service itself and calls each pod IP "
            "in turn, caching answers for their TTL (default %(default)s)",
        )
        r.add_argument(
            "--dns-cache",
            type=parse_duration,
            default=tr.dns_cache,
            help="--discovery dns: keep answers this long instead of their TTL, as a JVM keeps them 30s (default: the TTL)",
        )
        r.add_argument(
            "--max-lateness",
            type=parse_duration,
            default=th.max_lateness,
            help="unreliable above this lateness p99 (default %(default)gs)",
        )
        r.add_argument(
            "--max-gap",
            type=parse_duration,
            default=th.max_gap,
            help="a zero with a longer blind gap is unreliable (default %(default)gs)",
        )
        _output_args(r)
        r.add_argument("--out", type=Path, default=Path("results"), help="directory for JSON per run (default %(default)s)")
        r.add_argument("--manifests", type=Path, default=None, help="manifests directory (default: the bundled one)")
        r.add_argument(
            "--workload",
            type=Path,
            default=None,
            help="your own Deployment + Service (+ objects) YAML; the variants are then overlays on it (default as-is; "
            "`variants --workload FILE` lists them, a+b combines)",
        )
        r.add_argument("--new-image", default=None, help="--workload: the image set-image rolls to (default: same image, new pod template)")
        r.add_argument("--path", default=tr.path, help="HTTP path of every request (default %(default)s)")
        r.add_argument("--port", type=_positive(int), default=None, help="--workload: the Service port to load (default: its first)")
        r.add_argument("--no-up", action="store_true", help="do not create the cluster; fail if it is not there")
        r.add_argument("--kubeconfig", type=Path, default=None, help="use this cluster (never created or deleted); needs --client pod")
        r.add_argument("--context", default=None, help="kubeconfig context to use (implies a given cluster, as --kubeconfig)")
        r.add_argument("--keep-records", action="store_true", help="also save every request record (JSONL) next to the JSON")
        r.add_argument("--no-pictures", dest="pictures", action="store_false", help="no PNG per run (and overview) next to the JSON")

    sub.add_parser("client-image", help="build the --client pod image here and print its tag (to push it to your registry)")
    var = sub.add_parser("variants", help="list the manifest variants with what each one changes")
    var.add_argument("--manifests", type=Path, default=None, help="manifests directory (default: the bundled one)")
    var.add_argument("--workload", type=Path, default=None, help="list the overlays for your workload file instead")

    rep = sub.add_parser("report", help="re-render the comparison table (and the gate) from saved JSON")
    rep.add_argument("dir", type=Path)
    _output_args(rep)
    return p


def _budget_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-failures", type=int, default=None, metavar="N", help="CI gate: exit 1 if a trial loses more than N requests")
    p.add_argument(
        "--max-fail-pct", type=float, default=None, metavar="P", help="CI gate: exit 1 if a trial loses more than P %% of its requests"
    )


def _output_args(p: argparse.ArgumentParser) -> None:
    _budget_args(p)
    p.add_argument(
        "--format", choices=["md", "json", "csv"], default="md", help="stdout: markdown table, cells as JSON, or CSV (default md)"
    )
    p.add_argument("--junit", type=Path, default=None, metavar="FILE", help="also write a JUnit XML report, one testcase per cell")
