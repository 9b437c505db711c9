"""Problems found in a user's files, reported all at once in one line each.

The format `path:line: $.json.path: message (hint: ...)` lets editors and CI
annotations jump to the spot, and names the field to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trainer.text import escape  # the one escaping helper; the trainer image cannot import infra

__all__ = ["Diagnostic", "SpecError", "escape"]


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
