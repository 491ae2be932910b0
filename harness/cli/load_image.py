"""`load-image IMG [IMG...]`: put your local docker images on the harness's kind cluster (harness.userimages), so a
workload or `--new-image` can name an image no registry holds."""

from __future__ import annotations

import argparse
import asyncio

from harness.cli.verb import Verb


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("images", nargs="+", metavar="IMG", help="a local docker image by name (NAME:TAG, as docker images lists it)")


async def run(args: argparse.Namespace) -> int:
    from harness import userimages

    await asyncio.to_thread(userimages.load, args.images)
    print(f"loaded into the cluster: {' '.join(args.images)}")
    return 0


VERB = Verb(
    "load-image",
    "put local docker images on the harness's kind cluster (kind load docker-image)",
    "Copy local docker images into every node of the harness's kind cluster, so your workload (and --new-image) can\n"
    "name them without a registry. An image docker does not have is a usage error (exit 2); no docker or no cluster,\n"
    "exit 3. Nothing is loaded unless every image is there.",
    "examples:\n"
    "  docker build -t cart:ci-1 . && docker build -t cart:ci-2 --build-arg V=2 .\n"
    "  rollout-harness load-image cart:ci-1 cart:ci-2",
    add_arguments,
    run,
)
