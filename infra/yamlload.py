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
from trainer.safe_yaml import (
    MAX_BYTES,
    PLAIN_TAGS,
    TIMESTAMP,
    Loader,
    Refused,
    check_bounds,
    construct_scalar,
    decode,
    read_capped,
    syntax_error,
)

_YAML11_BOOL = re.compile(r"y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF")
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
# The lookbehind starts a match only where a run of digits starts: linear even when searched, not only fullmatched.
_SEXAGESIMAL = re.compile(r"(?<![0-9_])[-+]?[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?")
# Written without overlapping repeats ([0-9_]*_[0-9_]* backtracks quadratically); "_" is checked apart.
_UNDERSCORE_NUMBER = re.compile(r"[-+]?[0-9][0-9_]*(\.[0-9_]*)?")


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
    comments: list[tuple[int, str]] = field(default_factory=list)  # (line, text) of each comment

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
    """The JSON path of a child, written exactly as jsonschema writes `json_path`, so schema errors find their line."""
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if re.fullmatch(r"[a-zA-Z][a-zA-Z0-9_]*", key):
        return f"{parent}.{key}"
    return f"{parent}['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"


def load_file(path: Path, display: str | None = None) -> tuple[Document, list[Diagnostic]]:
    """Read one YAML file; returns the document and the problems found (data is None if unusable)."""
    shown = display or str(path)
    try:
        text = decode(read_capped(path, MAX_BYTES, "the file"))
    except Refused as exc:
        return Document(path=shown), [Diagnostic(shown, exc.line, "$", exc.message, exc.hint)]
    return load_text(text, shown)


def load_text(text: str, shown: str) -> tuple[Document, list[Diagnostic]]:
    doc = Document(path=shown)
    loader = Loader(text)
    try:
        root = loader.get_single_node()
    except yaml.composer.ComposerError as exc:
        if "expected a single document" in str(exc):
            line = exc.problem_mark.line + 1 if exc.problem_mark else 1
            return doc, [Diagnostic(shown, line, "$", "several YAML documents in one file",
                                    "put one workload per file")]
        return doc, [_refused(shown, syntax_error(exc, text))]
    except yaml.YAMLError as exc:
        return doc, [_refused(shown, syntax_error(exc, text))]
    if root is None:
        return doc, [Diagnostic(shown, 1, "$", "file is empty", "start from `kaito-gitops new`")]
    problems: list[Diagnostic] = []
    try:
        check_bounds(root)
        doc.data = _build(root, "$", doc, loader, problems)
    except Refused as exc:
        return doc, [_refused(shown, exc)]
    doc.comments = _comments(text, root)
    if not isinstance(doc.data, dict):
        problems.append(Diagnostic(shown, doc.line("$"), "$", "the top level must be a mapping",
                                   "start with `apiVersion:` and `kind:`"))
        doc.data = None
    return doc, problems


def _comments(text: str, root: Node) -> list[tuple[int, str]]:
    """Comments, found as what lies outside every scalar: there a '#' can only start a comment."""
    inside = bytearray(len(text) + 1)
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            inside[node.start_mark.index:node.end_mark.index] = b"\1" * (node.end_mark.index - node.start_mark.index)
        elif isinstance(node, MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        else:
            stack.extend(node.value)
    found, start = [], 0
    for number, line in enumerate(text.split("\n"), start=1):
        hashes = (i for i, char in enumerate(line) if char == "#" and not inside[start + i])
        first = next(hashes, None)
        if first is not None:
            found.append((number, line[first:]))
        start += len(line) + 1
    return found


def _refused(shown: str, exc: Refused) -> Diagnostic:
    return Diagnostic(shown, exc.line, "$", exc.message, exc.hint)


def _build(node: Node, path: str, doc: Document, loader, problems: list[Diagnostic]) -> Any:
    """Plain data from a node graph that check_bounds has measured, so walking it is cheap."""
    line = node.start_mark.line + 1
    doc.lines.setdefault(path, line)
    if node.tag == TIMESTAMP and isinstance(node, ScalarNode) and not node.style:
        return _flag(doc, path, node.value, f"`{node.value}` is read as a date in YAML 1.1")
    if node.tag not in PLAIN_TAGS:
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
            key = construct_scalar(loader, key_node) if isinstance(key_node, ScalarNode) else None
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
            out[key] = _build(value_node, sub, doc, loader, problems)
        return out
    if isinstance(node, SequenceNode):
        return [_build(item, child_path(path, i), doc, loader, problems)
                for i, item in enumerate(node.value)]
    try:
        value = construct_scalar(loader, node)
    except Refused as exc:
        problems.append(Diagnostic(doc.path, exc.line, path, exc.message, exc.hint))
        doc.rejected.add(path)
        return None
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
    if _YAML11_BOOL.fullmatch(raw):
        return f"`{raw}` is a boolean in YAML 1.1 but a string in YAML 1.2"
    if _LEADING_ZERO.fullmatch(raw):
        return f"`{raw}` has a leading zero: YAML 1.1 reads it as an octal number"
    if _SEXAGESIMAL.fullmatch(raw):
        return f"`{raw}` is a base-60 number in YAML 1.1"
    if "_" in raw and _UNDERSCORE_NUMBER.fullmatch(raw):
        return f"`{raw}` is a number with underscores in YAML 1.1 but a string in YAML 1.2"
    return ""
