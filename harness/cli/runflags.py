"""The flags of a measured run, shared by `run` and `compare`, and their conversion into harness.model.RunOptions
(defaults taken from its groups, declared once there) and the cluster to run on."""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from harness.cli import output
from harness.cli.verb import CONNECTIONS_HELP, MUX_CONNECTIONS_HELP, duration, percent, positive
from harness.model import (
    Client,
    Consent,
    Discovery,
    Output,
    RunOptions,
    Schedule,
    Subject,
    Thresholds,
    Timing,
    Traffic,
    Via,
    WorkloadKind,
    certify_trials,
)


@dataclass(frozen=True)
class Where:
    """The cluster to run on: the harness's own (brought up unless no_up), or the one a kubeconfig or context names."""

    no_up: bool = False
    kubeconfig: Path | None = None
    context: str | None = None


def where(args: argparse.Namespace) -> Where:
    return Where(args.no_up, args.kubeconfig, args.context)


def schedule(args: argparse.Namespace, trials: int, stop_early: bool = False) -> Schedule:
    """The verb's --trials (or `trials`; with --certify, what it needs + 20 %, at least 2 more) and the flags of
    add_arguments that say how the cells are scheduled."""
    certify = args.certify
    trials = args.trials or (certify_trials(certify) if certify is not None else trials)
    series = args.series if args.series is not None else certify is not None
    return Schedule(trials=trials, stop_early=stop_early, certify=certify, series=series, parallel=args.parallel, ahead=args.ahead)


def options(args: argparse.Namespace, trials: int, stop_early: bool = False) -> RunOptions:
    """RunOptions from the flags add_arguments declared (and the verb's --trials, `trials` when not given)."""
    discovery = Discovery(args.discovery)
    client = Client(args.client) if args.client else (Client.HOST if discovery is Discovery.SERVICE else Client.POD)
    return RunOptions(
        Traffic(
            args.rate,
            args.connect_timeout,
            args.read_timeout,
            args.connections,
            args.path,
            client,
            discovery,
            args.dns_cache,
            args.client_image,
            args.mux_connections,
            registry_fetch=args.registry_fetch,
            via=Via(args.via),
        ),
        Timing(args.baseline, args.tail, args.rollout_timeout),
        Thresholds(args.max_lateness, args.max_gap),
        schedule(args, trials, stop_early),
        Subject(WorkloadKind(args.kind), args.manifests, args.workload, args.new_image, args.port),
        Output(args.out or invocation_dir(args.verb), args.keep_records, args.pictures),
        Consent(args.allow_disruption),
    )


def invocation_dir(verb: str) -> Path:
    """results/<UTC date-time>-<verb>: each invocation its own directory, so nothing earlier is overwritten or read
    back as if it were part of this run (`report results` still reads them all, folding only equal provenance)."""
    return Path("results") / f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{verb}"


def add_arguments(r: argparse.ArgumentParser) -> None:
    """Every flag of a measured run but the cells' (variants, triggers, modes, trials)."""
    tr, ti, th, sc, su = Traffic(), Timing(), Thresholds(), Schedule(), Subject()
    sched_g = r.add_argument_group("schedule", "how many rollouts per cell, and how cells share the cluster")
    subject_g = r.add_argument_group("what is rolled")
    traffic_g = r.add_argument_group("traffic", "the load and how the client reaches the pods")
    timing_g = r.add_argument_group("timing")
    trust_g = r.add_argument_group("trust", "when a run is too blind to count")
    output_g = r.add_argument_group("budget and output")
    cluster_g = r.add_argument_group("cluster", "where it runs")
    sched_g.add_argument(
        "--certify",
        type=percent,
        default=None,
        metavar="P%",
        help="roll each cell until P(a rollout loses) <= P is shown with 95 %% confidence (10%%: 29 rollouts that lose "
        "nothing), or until a rollout loses; exit 1 unless every cell reached it",
    )
    sched_g.add_argument(
        "--series",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="roll a cell's trials t..2t-1 on one set-up, back and forth (set-image, restart, rollback, scale; on with --certify)",
    )
    subject_g.add_argument(
        "--kind",
        choices=[k.value for k in WorkloadKind],
        default=su.kind.value,
        help="run the pods as a Deployment, a StatefulSet (+ headless Service) or a DaemonSet (one pod per node) (default %(default)s)",
    )
    sched_g.add_argument(
        "--parallel",
        type=positive(int),
        default=sc.parallel,
        help="cells at once, each in its own namespace (default %(default)d)",
    )
    sched_g.add_argument(
        "--no-ahead",
        dest="ahead",
        action="store_false",
        help="set each cell up only after the one before it ended (default: during its tail, once its old pods are gone)",
    )
    traffic_g.add_argument("--rate", type=positive(float), default=tr.rate, help="requests/s (default %(default)g)")
    timing_g.add_argument("--baseline", type=duration, default=ti.baseline, help="load before the trigger (default %(default)gs)")
    timing_g.add_argument("--tail", type=duration, default=ti.tail, help="load after the disruption settled (default %(default)gs)")
    timing_g.add_argument("--rollout-timeout", type=duration, default=ti.rollout_timeout, help="(default %(default)gs)")
    traffic_g.add_argument("--connect-timeout", type=duration, default=tr.connect_timeout, help="(default %(default)gs)")
    traffic_g.add_argument("--read-timeout", type=duration, default=tr.read_timeout, help="(default %(default)gs)")
    traffic_g.add_argument("--connections", type=positive(int), default=tr.connections, help=CONNECTIONS_HELP)
    traffic_g.add_argument("--mux-connections", type=positive(int), default=tr.mux_connections, help=MUX_CONNECTIONS_HELP)
    traffic_g.add_argument("--client-image", default=None, help="--client pod: a pushed client image (see `client-image`)")
    traffic_g.add_argument(
        "--client",
        choices=[c.value for c in Client],
        default=None,
        help="load from the host through the NodePort, or from a pod through the ClusterIP (default host; pod with --discovery "
        "dns or registry)",
    )
    traffic_g.add_argument(
        "--discovery",
        choices=[d.value for d in Discovery],
        default=tr.discovery.value,
        help="the client goes through the Service, or resolves the pods' headless Service itself and calls each pod IP "
        "in turn, caching answers for their TTL, or lists them in the variant's service registry (default %(default)s)",
    )
    traffic_g.add_argument(
        "--via",
        choices=[v.value for v in Via],
        default=tr.via.value,
        help="the host client's way in: the workload's Service (its NodePort), or the Traefik ingress controller "
        "(installed on first use) with its retry off or on (default %(default)s)",
    )
    traffic_g.add_argument(
        "--dns-cache",
        type=duration,
        default=tr.dns_cache,
        help="--discovery dns: keep answers this long instead of their TTL, as a JVM keeps them 30s (default: the TTL)",
    )
    traffic_g.add_argument(
        "--registry-fetch",
        type=duration,
        default=tr.registry_fetch,
        help="--discovery registry: keep the instances listed this long before fetching them again, as Eureka's client "
        "does for 30s (default %(default)gs)",
    )
    trust_g.add_argument(
        "--max-lateness",
        type=duration,
        default=th.max_lateness,
        help="unreliable above this lateness p99 (default %(default)gs)",
    )
    trust_g.add_argument(
        "--max-gap",
        type=duration,
        default=th.max_gap,
        help="a zero with a longer blind gap is unreliable (default %(default)gs)",
    )
    output.add_arguments(output_g)
    output_g.add_argument(
        "--out", type=Path, default=None, help="directory for JSON per run (default: a new one per invocation, results/DATE-TIME-VERB)"
    )
    subject_g.add_argument("--manifests", type=Path, default=None, help="manifests directory (default: the bundled one)")
    subject_g.add_argument(
        "--workload",
        type=Path,
        default=None,
        help="your own Deployment + Service (+ objects) YAML; the variants are then overlays on it (default as-is; "
        "`variants --workload FILE` lists them, a+b combines)",
    )
    subject_g.add_argument(
        "--new-image", default=None, help="--workload: the image set-image rolls to (default: same image, new pod template)"
    )
    traffic_g.add_argument("--path", default=tr.path, help="HTTP path of every request (default %(default)s)")
    subject_g.add_argument("--port", type=positive(int), default=None, help="--workload: the Service port to load (default: its first)")
    cluster_g.add_argument("--no-up", action="store_true", help="do not create the cluster; fail if it is not there")
    cluster_g.add_argument("--kubeconfig", type=Path, default=None, help="use this cluster (never created or deleted); needs --client pod")
    cluster_g.add_argument("--context", default=None, help="kubeconfig context to use (implies a given cluster, as --kubeconfig)")
    cluster_g.add_argument(
        "--allow-disruption",
        action="store_true",
        help="drain on a cluster the harness did not create: cordon a worker (never a control-plane or cordoned one) and "
        "evict the cell's pods from it, then uncordon it",
    )
    output_g.add_argument("--keep-records", action="store_true", help="also save every request record (JSONL) next to the JSON")
    output_g.add_argument("--no-pictures", dest="pictures", action="store_false", help="no PNG per run (and overview) next to the JSON")
