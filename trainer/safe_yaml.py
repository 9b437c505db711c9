"""Bounded reading of YAML someone else wrote: the spec loader (infra/yamlload.py) and the
trainer's config loader share these limits, so neither can be made to hang or exhaust memory.

Lives in trainer/ because the trainer image ships only this package; infra imports it from here.
Standard library and PyYAML only.

PyYAML refuses Python tags in safe mode but still expands aliases without limit: a 1 KiB
"billion laughs" of nested aliases (of mappings, lists or plain scalars) expands into billions
of nodes once constructed or walked. The node graph is therefore measured before anything is
built from it: expanded nodes, expanded scalar characters, aliases, depth and recursion.
"""

from __future__ import annotations

import math
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

MAX_BYTES = 256 * 1024
MAX_ALIASES = 16
MAX_NODES = 20_000  # after alias expansion; a spec has about 50, a training config about 100
MAX_SCALAR_CHARS = 2 * MAX_BYTES  # after alias expansion: what the file itself may hold, twice
MAX_DEPTH = 32  # specs nest about 6 deep; far deeper input is an attack or an accident

PLAIN_TAGS = frozenset(f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq"))
TIMESTAMP = "tag:yaml.org,2002:timestamp"

# libyaml's parser when PyYAML was built with it (10x faster); the same node graph either way.
Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Refused(Exception):
    """Input that is unsafe or impossible to read further; one message, its line, and how to fix it."""

    def __init__(self, line: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


def read_capped(path: Path, limit: int = MAX_BYTES, what: str = "the file") -> bytes:
    """The file's bytes, refusing anything over `limit` before reading it (and while reading: files grow)."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise Refused(1, f"{what} is not a regular file", "give the path of a plain file")
    too_big = Refused(1, f"{what} is {max(info.st_size, limit + 1)} bytes, over the {limit}-byte limit",
                      "keep it short; move data elsewhere")
    if info.st_size > limit:
        raise too_big
    with path.open("rb") as handle:
        raw = handle.read(limit + 1)
    if len(raw) > limit:
        raise too_big
    return raw


def decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise Refused(line, f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                      "save the file as UTF-8") from None


def check_bounds(root: Node) -> None:
    """Refuse a node graph whose expansion is too large, too deep or recursive, before it is built."""
    nodes, chars = _measure(root, {}, set(), 0)
    if nodes > MAX_NODES or chars > MAX_SCALAR_CHARS:
        raise Refused(root.start_mark.line + 1,
                      f"through aliases the document expands to more than {MAX_NODES} values "
                      f"or {MAX_SCALAR_CHARS} characters",
                      "write the values out; aliases can expand a small file into a huge one")
    where = _alias_over_limit(root)
    if where is not None:
        raise Refused(where.start_mark.line + 1, f"more than {MAX_ALIASES} aliases",
                      "write the values out; aliases can expand a small file into a huge one")


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return [] if isinstance(node, ScalarNode) else list(node.value)


def _measure(node: Node, sizes: dict[int, tuple[int, int]], open_: set[int], depth: int) -> tuple[int, int]:
    """(nodes, scalar characters) of `node` with every alias expanded; each distinct node is walked once."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    line = node.start_mark.line + 1
    if key in open_:
        raise Refused(line, "an alias refers to a node that contains it (a recursive structure)",
                      "write the values out; recursive data cannot be read")
    if depth > MAX_DEPTH:
        raise Refused(line, f"nested more than {MAX_DEPTH} levels deep", "flatten the structure")
    if isinstance(node, ScalarNode):
        sizes[key] = (1, len(node.value))
        return sizes[key]
    open_.add(key)
    nodes, chars = 1, 0
    for child in _children(node):
        n, c = _measure(child, sizes, open_, depth + 1)
        nodes, chars = nodes + n, chars + c
        if nodes > MAX_NODES or chars > MAX_SCALAR_CHARS:
            break  # already over: the caller reports it; stop before the sums themselves get expensive
    open_.discard(key)
    sizes[key] = (nodes, chars)
    return sizes[key]


def _alias_over_limit(root: Node) -> Node | None:
    """The list or mapping holding the first alias over the limit, in document order; None if within it.

    A node reached a second time is an alias; each distinct node's edges are walked once.
    """
    count, seen, stack = 0, set(), [(root, root)]
    while stack:
        node, parent = stack.pop()
        if id(node) in seen:
            count += 1
            if count > MAX_ALIASES:
                return parent
            continue
        seen.add(id(node))
        stack.extend((child, node) for child in reversed(_children(node)))
    return None


def construct_scalar(loader: Any, node: ScalarNode) -> Any:
    """One scalar's value; numbers Python cannot represent, or that are not finite, are refused."""
    try:
        value = loader.construct_object(node)
    except ValueError:  # an integer of thousands of digits
        raise Refused(node.start_mark.line + 1, f"the number {node.value[:20]}... is too large",
                      "write a number of at most 4300 digits, or quote it if it is a string") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise Refused(node.start_mark.line + 1, f"`{node.value}` is not a finite number",
                      "write a finite number such as 0.5; NaN and infinity are not allowed")
    return value


def syntax_error(exc: yaml.YAMLError, text: str) -> Refused:
    """A YAML syntax error as line, column and the offending character, with a hint for the usual causes."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = " ".join((getattr(exc, "problem", None) or str(exc).split("\n")[0]).split())
    if mark is None:
        return Refused(1, f"YAML syntax error: {problem}", "check indentation and quoting")
    char = text[mark.index] if 0 <= mark.index < len(text) else ""
    shown = f"character {char!r}" if char else "the end of the file"
    message = f"YAML syntax error at column {mark.column + 1} ({shown}): {problem}"
    return Refused(mark.line + 1, message, _syntax_hint(problem, char))


def _syntax_hint(problem: str, char: str) -> str:
    if char == "\t" or "\\t" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ', or fix the indentation of this key"
    if "expected ',' or ']'" in problem or "expected ',' or '}'" in problem:
        return "close the bracket, or quote a value that contains ',', '[' or '{'"
    if "cannot start any token" in problem:
        return f"quote the value: {char!r} cannot start a plain YAML value"
    if "expected a single document" in problem:
        return "keep one YAML document per file (remove the extra '---')"
    if "found undefined alias" in problem:
        return "define the anchor (&name) before using *name, or quote a value that starts with '*'"
    return "check indentation and quoting (values with ': ', '#' or a leading special character need quotes)"


def load(text: str) -> Any:
    """One YAML document as plain data, within the limits above; Refused otherwise."""
    loader = Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as exc:
            raise syntax_error(exc, text) from None
        if root is None:
            return None
        check_bounds(root)
        return _construct(loader, root)
    finally:
        loader.dispose()


def _construct(loader: Any, node: Node) -> Any:
    line = node.start_mark.line + 1
    if node.tag == TIMESTAMP and isinstance(node, ScalarNode):
        return node.value  # as written: no value read here is a date, and a name like 2024-01-01 is a string
    if node.tag not in PLAIN_TAGS:
        raise Refused(line, f"tag {node.tag!r} is not allowed",
                      "remove the tag; write plain strings, numbers, lists and mappings")
    if isinstance(node, ScalarNode):
        return construct_scalar(loader, node)
    if isinstance(node, MappingNode):
        out = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise Refused(key_node.start_mark.line + 1, "a list or mapping cannot be a mapping key",
                              "write a plain or quoted name")
            key = _construct(loader, key_node)
            if key in out:
                raise Refused(key_node.start_mark.line + 1, f"duplicate key {key!r}", "keep one of them")
            out[key] = _construct(loader, value_node)
        return out
    return [_construct(loader, child) for child in node.value]
