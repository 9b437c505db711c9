"""Problems found in a user's files, reported all at once in one line each.

The format `path:line: $.json.path: message (hint: ...)` lets editors and CI
annotations jump to the spot, and names the field to change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Line breaks, terminal escapes, Unicode line separators and bidi overrides: what could fake a line or hide text.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape(text: str) -> str:
    """User text (file names, values) on one line, every unsafe character written as a Python escape."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    json_path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{escape(self.path)}:{self.line}: {escape(self.json_path)}: {escape(self.message)}"
        return f"{text} (hint: {escape(self.hint)})" if self.hint else text


@dataclass
class SpecError(Exception):
    """Raised with every diagnostic found, never only the first."""

    diagnostics: list[Diagnostic] = field(default_factory=list)

    def __str__(self) -> str:
        return "\n".join(str(d) for d in sorted(self.diagnostics))
