"""`client-image`: build the image of the client pod (harness.clientpod) here and print its tag."""

from __future__ import annotations

import argparse
import asyncio

from harness.cli.verb import Verb


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


async def run(args: argparse.Namespace) -> int:
    from harness import clientpod

    print(await asyncio.to_thread(clientpod.image))
    return 0


VERB = Verb(
    "client-image",
    "build the --client pod image here and print its tag (to push it to your registry)",
    "Build the image the load runs from with --client pod and print its tag. A cluster that pulls its images (not\n"
    "a kind cluster) needs it pushed to a registry it can reach, and its reference given as --client-image.",
    "examples:\n"
    "  docker tag $(rollout-harness client-image) registry.example/rh-client:1 && docker push registry.example/rh-client:1\n"
    "  rollout-harness run --kubeconfig ~/.kube/config --client pod --client-image registry.example/rh-client:1",
    add_arguments,
    run,
)
