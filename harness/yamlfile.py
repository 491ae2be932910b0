"""Read a YAML file (a workload, a variant, an overlay, the base) as plain data, refusing in one line what is not a
small YAML text: a file over 1 MiB, bytes that are not UTF-8 (or UTF-16 with a byte-order mark) text, standard input,
and aliases that expand to more than ALIAS_NODES nodes. PyYAML keeps an alias as a second reference to one object,
so a "billion laughs" file of nested anchors loads in milliseconds; it expands later, when the objects are copied or
sent to the API server. The expanded size is counted on the composed nodes, before any object is built."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import yaml

from harness.errors import UsageError

MAX_BYTES = 1 << 20
"""A workload file is a few KiB; a larger one is refused before it is parsed."""
ALIAS_NODES = 10_000
"""Nodes that aliases may add to a document (each use of an anchor adds the nodes under it)."""


class _Refused(Exception):
    """Why a document is refused; read_yaml prefixes the file."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_aliases(root: yaml.Node) -> None:
    """_Refused if the document's aliases add more than ALIAS_NODES nodes or one contains itself."""
    size: dict[int, int] = {}
    open_: set[int] = set()
    added = 0

    def expanded(node: yaml.Node) -> int:
        nonlocal added
        key = id(node)
        if key in size:  # met before: this is an alias, and it repeats everything under its anchor
            added += size[key]
            if added > ALIAS_NODES:
                raise _Refused(f"aliases expand to more than {ALIAS_NODES:,} nodes")
            return size[key]
        if key in open_:
            raise _Refused("an alias refers to a node that contains it")
        open_.add(key)
        size[key] = 1 + sum(expanded(c) for c in _children(node))
        open_.discard(key)
        return size[key]

    expanded(root)


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader that checks each document's aliases (_check_aliases) before building it."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_aliases(node)
        return super().construct_document(node)


def _text(path: Path) -> str:
    if str(path) == "-":
        raise UsageError(
            "YAML from standard input ('-') is not supported: save it to a file first "
            "(kubectl get deployment,service NAME -o yaml > app.yaml) and give that"
        )
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
            if len(data) > MAX_BYTES:
                size = path.stat().st_size if path.is_file() else 0
                raise UsageError(f"{path}: {f'{size:,} bytes' if size else 'more than 1 MiB'}; YAML files over 1 MiB are refused")
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from e
    encoding = "utf-16" if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) else "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise UsageError(
            f"{path}: not a YAML text file (byte 0x{data[e.start]:02x} at offset {e.start} is not {encoding.upper()})"
        ) from None


def read_yaml(path: Path) -> list[Any]:
    """The file's documents, empty ones left out; UsageError naming the file if it cannot be read, is not a small
    UTF-8 YAML text, or its aliases expand too far (module docstring)."""
    text = _text(path)
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]  # _Loader is a SafeLoader
    except yaml.reader.ReaderError as e:
        raise UsageError(f"{path}: not a YAML text file (character #x{e.character:04x} at position {e.position}: {e.reason})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{path}: malformed YAML{where}: {getattr(e, 'problem', None) or type(e).__name__}") from e
    except _Refused as e:
        raise UsageError(f"{path}: YAML refused: {e}") from None
    except RecursionError:
        raise UsageError(f"{path}: YAML nested too deeply") from None
