"""Safe, strict YAML loading that remembers where every value came from.

PyYAML's SafeLoader already refuses Python tags, but silently keeps the last of
duplicate keys, expands aliases without limit and reads `on`/`no`/`0755` the
YAML 1.1 way. Specs are short hand-written files, so we are stricter: each of
those is a diagnostic, and every value's line is kept for messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from infra.diagnostics import Diagnostic

MAX_BYTES = 256 * 1024
MAX_ALIASES = 16
MAX_DEPTH = 32  # specs nest about 6 deep; far deeper input is an attack or an accident, and would blow the stack

_STANDARD_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_YAML11_BOOL = re.compile(r"^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$")
_LEADING_ZERO = re.compile(r"^[-+]?0[0-9_]+$")
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?$")
_UNDERSCORE_NUMBER = re.compile(r"^[-+]?[0-9][0-9_]*_[0-9_]*(\.[0-9_]*)?$")


class Ambiguous(str):
    """A plain scalar YAML 1.1 and YAML 1.2 read differently; flagged after schema checks."""

    reason: str


@dataclass
class Document:
    """A loaded file: its data and the line of every JSON path in it."""

    path: str
    data: Any = None
    lines: dict[str, int] = field(default_factory=dict)
    ambiguous: dict[str, Ambiguous] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)  # paths already reported; schema errors there are noise

    def line(self, json_path: str) -> int:
        """The line of `json_path`, or of its nearest ancestor that has one."""
        while json_path:
            if json_path in self.lines:
                return self.lines[json_path]
            json_path = _parent(json_path)
        return 1


def _parent(json_path: str) -> str:
    if json_path == "$":
        return ""
    cut = max(json_path.rfind("."), json_path.rfind("["))
    return json_path[:cut] if cut > 0 else "$"


def child_path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{parent}.{key}"
    return f"{parent}[{key!r}]"


# libyaml's parser when PyYAML was built with it (10x faster); the same node graph either way.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    """Stops building a document that is unsafe to read further; carries its one diagnostic."""

    def __init__(self, line: int, message: str, hint: str) -> None:
        super().__init__(message)
        self.line, self.message, self.hint = line, message, hint


def load_file(path: Path, display: str | None = None) -> tuple[Document, list[Diagnostic]]:
    """Read one YAML file; returns the document and the problems found (data is None if unusable)."""
    shown = display or str(path)
    doc = Document(path=shown)
    raw = path.read_bytes()
    if len(raw) > MAX_BYTES:
        return doc, [Diagnostic(shown, 1, "$", f"file is {len(raw)} bytes, over the {MAX_BYTES}-byte limit",
                                "a workload spec is a short file; move data elsewhere")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return doc, [Diagnostic(shown, line, "$", f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                                "save the file as UTF-8")]
    return load_text(text, shown)


def load_text(text: str, shown: str) -> tuple[Document, list[Diagnostic]]:
    doc = Document(path=shown)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        if "expected a single document" in str(exc):
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            return doc, [Diagnostic(shown, line, "$", "several YAML documents in one file",
                                    "put one workload per file")]
        return doc, [_yaml_error(shown, exc)]
    except yaml.YAMLError as exc:
        return doc, [_yaml_error(shown, exc)]
    if root is None:
        return doc, [Diagnostic(shown, 1, "$", "file is empty", "start from `kaito-gitops new`")]
    problems: list[Diagnostic] = []
    try:
        doc.data = _build(root, "$", doc, loader, problems, seen=set())
    except _Refused as exc:
        return doc, [Diagnostic(shown, exc.line, "$", exc.message, exc.hint)]
    if not isinstance(doc.data, dict):
        problems.append(Diagnostic(shown, doc.line("$"), "$", "the top level must be a mapping",
                                   "start with `apiVersion:` and `kind:`"))
        doc.data = None
    return doc, problems


def _yaml_error(shown: str, exc: yaml.YAMLError) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark else 1
    problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]  # one line: drop the "in <unicode string>" part
    return Diagnostic(shown, line, "$", f"YAML syntax error: {' '.join(problem.split())}",
                      "check indentation and quoting")


def _build(node: Node, path: str, doc: Document, loader, problems: list[Diagnostic], seen: set[int],
           depth: int = 0) -> Any:
    """Plain data from the node graph; a node met again is an alias, counted before it can multiply."""
    line = node.start_mark.line + 1
    if depth > MAX_DEPTH:
        raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep", "flatten the structure")
    if isinstance(node, (MappingNode, SequenceNode)):
        if id(node) in seen:
            loader.alias_count = getattr(loader, "alias_count", 0) + 1
            if loader.alias_count > MAX_ALIASES:
                raise _Refused(doc.line(_parent(path)), f"more than {MAX_ALIASES} aliases",
                               "write the values out; aliases can expand a small file into a huge one")
        seen.add(id(node))
    doc.lines.setdefault(path, line)
    if node.tag == _TIMESTAMP and isinstance(node, ScalarNode) and not node.style:
        return _flag(doc, path, node.value, f"`{node.value}` is read as a date in YAML 1.1")
    if node.tag not in _STANDARD_TAGS:
        problems.append(Diagnostic(doc.path, line, path, f"tag {node.tag!r} is not allowed",
                                   "remove the tag; specs hold plain strings, numbers, lists and mappings"))
        doc.rejected.add(path)
        return None
    if isinstance(node, MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(Diagnostic(doc.path, key_node.start_mark.line + 1, path,
                                           "merge keys (<<) are not allowed", "write the keys out"))
                doc.rejected.add(path)  # the mapping is incomplete without them; schema errors there are noise
                continue
            key = loader.construct_object(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                message = (f"mapping key {key_node.value!r} must be a string" if isinstance(key_node, ScalarNode)
                           else "a list or mapping cannot be a mapping key")
                problems.append(Diagnostic(doc.path, key_node.start_mark.line + 1, path, message,
                                           "write a plain or quoted name"))
                continue
            sub = child_path(path, key)
            if key in out:
                problems.append(Diagnostic(doc.path, key_node.start_mark.line + 1, sub,
                                           f"duplicate key {key!r} (first on line {doc.lines[sub]})",
                                           "keep one of them"))
                continue
            doc.lines[sub] = key_node.start_mark.line + 1
            out[key] = _build(value_node, sub, doc, loader, problems, seen, depth + 1)
        return out
    if isinstance(node, SequenceNode):
        return [_build(item, child_path(path, i), doc, loader, problems, seen, depth + 1)
                for i, item in enumerate(node.value)]
    value = loader.construct_object(node)
    if not node.style:  # plain scalars only (None or "" by parser): quoted ones mean what they say
        reason = _ambiguity(node.value)
        if reason:
            return _flag(doc, path, node.value, reason)
    return value


def _flag(doc: Document, path: str, raw: str, reason: str) -> Ambiguous:
    flagged = Ambiguous(raw)
    flagged.reason = reason
    doc.ambiguous[path] = flagged
    return flagged


def _ambiguity(raw: str) -> str:
    if _YAML11_BOOL.match(raw):
        return f"`{raw}` is a boolean in YAML 1.1 but a string in YAML 1.2"
    if _LEADING_ZERO.match(raw):
        return f"`{raw}` has a leading zero: YAML 1.1 reads it as an octal number"
    if _SEXAGESIMAL.match(raw):
        return f"`{raw}` is a base-60 number in YAML 1.1"
    if _UNDERSCORE_NUMBER.match(raw):
        return f"`{raw}` is a number with underscores in YAML 1.1 but a string in YAML 1.2"
    return ""
