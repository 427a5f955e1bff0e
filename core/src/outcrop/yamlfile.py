"""Reading a YAML config file strictly: UTF-8 only, no duplicate keys, bounded size and aliases.

A config mistake must never turn into a silently different config (a duplicated
``master_key:`` whose later value is empty), a traceback, or a hang (an alias "bomb" that
expands to billions of values). Every refusal is a ``ConfigError`` naming the file and, where
there is one, the line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

#: A config file larger than this is refused before parsing (a LiteLLM config is kilobytes).
MAX_FILE_BYTES = 16 * 1024 * 1024
#: Values the document may expand to once aliases (``*name``) are followed.
MAX_VALUES = 250_000
#: Nesting depth of mappings and lists.
MAX_DEPTH = 64

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _check_keys(root: Node) -> str | None:
    """The first duplicate key, as ``path: problem`` (None when there is none)."""
    seen: set[int] = set()
    stack: list[tuple[Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                where = f"{path}.{key.value}" if path else key.value
                before = first.get((key.tag, key.value))
                if before is not None:
                    lines = (
                        f"lines {before} and {_line(key)}"
                        if before != _line(key)
                        else (f"twice on line {before}")
                    )
                    return f"{where}: duplicate key ({lines}); remove one of them"
                first[key.tag, key.value] = _line(key)
                stack.append((value, where))
        elif isinstance(node, SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
    return None


def _check_expansion(root: Node) -> str | None:
    """Size and depth of the document once aliases are followed, computed without expanding it."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            entered.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(c)] for c in children)
            height[key] = 1 + max((height[id(c)] for c in children), default=0)
            if height[key] > MAX_DEPTH:
                return f"line {_line(node)}: values nested deeper than {MAX_DEPTH} levels"
            if size[key] > MAX_VALUES:
                return (
                    f"line {_line(node)}: anchors and aliases (&name, *name) expand this "
                    f"document beyond {MAX_VALUES} values; refusing it"
                )
            continue
        if key in size:
            continue
        if key in entered:
            return f"line {_line(node)}: an alias refers to a value that contains it"
        entered.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return None


def parse_yaml(text: str, source: str) -> Any:
    """Parse one YAML document strictly. Raises ``ConfigError``."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        problem = _check_expansion(node) or _check_keys(node)
        if problem:
            raise ConfigError([f"{source}: {problem}"])
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}: not valid YAML{where}: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: nested deeper than {MAX_DEPTH} levels"]) from None
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike[str]) -> Any:
    """Read and parse a YAML config file (UTF-8, optionally with a BOM). Raises ``ConfigError``."""
    p = Path(path)
    try:
        with p.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read config file: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError([f"{p}: larger than {MAX_FILE_BYTES} bytes; refusing to read it"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            [
                f"{p}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                f"{exc.start}); save the file as UTF-8"
            ]
        ) from None
    return parse_yaml(text, str(p))
