"""User text (paths, keys, column names, values) made safe to print on one log line.

infra's diagnostics use the same helper (infra/diagnostics.py re-exports it): the trainer image ships
only trainer/, so the helper lives here.
"""

from __future__ import annotations

import re

# Line breaks, terminal escapes, Unicode line separators and bidi overrides: what could fake a line or hide text;
# and what cannot be written at all: lone surrogates (from JSON's \\ud800, they fail UTF-8 encoding) and the
# noncharacters U+FFFE/U+FFFF, which YAML refuses in a file.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
                     r"\ud800-\udfff\ufffe\uffff]")


def escape(text: str) -> str:
    """User text on one line, every unsafe character written as a Python escape (idempotent on its output)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))
