"""The command-line reference (docs/cli.md), generated from the parser `main` parses with, so it cannot drift from it:
`python -m harness.cli.docgen > docs/cli.md`. tests/test_docs.py fails, naming that command, when the page differs
from what this prints.

Markdown of its own rather than argparse's help text: that text wraps to the terminal and changes between Python
versions (3.13 writes `-n, --requests N` where 3.11 writes the metavar twice); this page depends on the flags alone."""

from __future__ import annotations

import argparse
import sys
import textwrap

from harness.cli.verb import Parser, verb_parsers
from harness.errors import ExitCode

REGENERATE = "python -m harness.cli.docgen > docs/cli.md"


def page() -> str:
    from harness.cli import VERBS, build_parser

    top = build_parser()
    verbs = verb_parsers(top)
    out = [
        "# Command-line reference",
        "",
        f"<!-- Generated from the parser by `{REGENERATE}`: do not edit; tests/test_docs.py checks it. -->",
        "",
        str(top.description),
        "",
        *_usage(top),
        *_options(top),
        "## Verbs",
        "",
        "| verb | what it does |",
        "| --- | --- |",
        *(f"| [`{name}`](#{name}) | {_cell(v.summary)} |" for name, v in VERBS.items()),
        "",
        "## Exit codes",
        "",
        "| code | meaning |",
        "| --- | --- |",
        *(f"| {c.value} | {_cell(c.meaning)} |" for c in ExitCode),
        "",
    ]
    for name, v in VERBS.items():
        out += [f"## {name}", "", str(verbs[name].description), "", *_usage(verbs[name]), *_options(verbs[name])]
        out += ["Examples:", "", "```sh", *_examples(v.examples), "```", ""]
    return "\n".join(out)


def _usage(p: argparse.ArgumentParser) -> list[str]:
    assert isinstance(p, Parser)
    return ["```text", p.synopsis(), "```", ""]


def _options(p: argparse.ArgumentParser) -> list[str]:
    """A table per argument group (positional arguments, options, and any group a verb adds); -h/--help left out (every
    command has it), and the verbs (listed apart)."""
    out = []
    for group in p._action_groups:  # argparse keeps the groups private, as shtab reads them too
        skip = (argparse._HelpAction, argparse._SubParsersAction)  # the verbs have a table and a section each
        rows = [a for a in group._group_actions if a.help is not argparse.SUPPRESS and not isinstance(a, skip)]
        if not rows:
            continue
        out += [f"{str(group.title).capitalize()}:", "", "| argument | meaning |", "| --- | --- |"]
        out += [f"| {_cell(_invocation(a))} | {_cell(_help(a, p.prog))} |" for a in rows]
        out.append("")
    return out


def _invocation(a: argparse.Action) -> str:
    """`-n N, --requests N` as argparse writes it: the option strings, each with the metavar when the flag takes a value."""
    if isinstance(a.metavar, str):
        value = a.metavar
    elif a.choices:
        value = "{" + ",".join(map(str, a.choices)) + "}"
    else:
        value = a.dest if not a.option_strings else a.dest.upper()
    if not a.option_strings:
        return f"`{value}`"
    return ", ".join(f"`{s}`" if a.nargs == 0 else f"`{s} {value}`" for s in a.option_strings)


def _help(a: argparse.Action, prog: str) -> str:
    """The help text with its %(default)s and the like filled in, as argparse fills them."""
    text = a.help or ""
    params = {k: v for k, v in vars(a).items() if v is not argparse.SUPPRESS} | {"prog": prog}
    params = {k: getattr(v, "__name__", v) for k, v in params.items()}
    if params.get("choices") is not None:
        params["choices"] = ", ".join(map(str, a.choices or ()))
    return text % params


def _examples(epilog: str) -> list[str]:
    head, _, body = epilog.partition("\n")
    return textwrap.dedent(body if head.rstrip().endswith(":") else epilog).strip("\n").splitlines()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    sys.stdout.write(page())
