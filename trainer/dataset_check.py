"""A report on a training file before anyone spends GPU hours on it.

Uses the trainer's own reading and conversion (trainer/data.py), so what the check calls
usable is exactly what training will use.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trainer.credentials import CREDENTIAL, SIGNED_URL
from trainer.data import MIN_EXAMPLES, DataError, UnreadableData, detect_layout, read_rows, to_conversation

# Linear time on any input: the local part starts only where a run of its characters starts (the
# lookbehind), so a long run without "@" is scanned once, not once from every position.
EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE = re.compile(r"(?<!\w)(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?)?\d{3,4}[ .-]\d{3,4}(?:[ .-]\d{2,4})?(?!\w)")
FINDINGS = {"e-mail address": EMAIL, "phone number": PHONE, "key or token": CREDENTIAL, "signed URL": SIGNED_URL}
CHARS_PER_TOKEN = 4  # without a tokenizer: a common rule of thumb for English text


@dataclass
class CheckReport:
    file: str
    layout: str = ""
    rows: int = 0
    usable: int = 0
    unusable: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    token_lengths: dict[str, int] = field(default_factory=dict)
    tokens_measured_with: str = ""
    max_seq_length: int = 0
    would_truncate: int = 0
    findings: dict[str, list[int]] = field(default_factory=dict)  # kind -> 1-based row numbers
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__


def _percentile(sorted_values: list[int], q: float) -> int:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def check_file(path: Path, tokenizer=None, max_seq_length: int = 2048) -> CheckReport:
    report = CheckReport(file=str(path), max_seq_length=max_seq_length)
    try:
        rows = read_rows(path)
        if not rows:
            raise DataError(f"{path}: no rows")
        report.layout = detect_layout(rows[0].keys())
    except UnreadableData as err:  # not a finding about the data: the caller reports the file itself
        raise err.error from None
    except DataError as err:
        report.errors.append(str(err) if str(path) in str(err) else f"{path}: {err}")
        return report
    report.rows = len(rows)
    reasons: Counter[str] = Counter()
    seen: set[str] = set()
    lengths = []
    for number, row in enumerate(rows, start=1):
        messages, reason = to_conversation(row, report.layout)
        if messages is None:
            reasons[reason] += 1
            continue
        report.usable += 1
        digest = hashlib.sha256(json.dumps(messages, sort_keys=True).encode()).hexdigest()
        report.duplicates += digest in seen
        seen.add(digest)
        content = "\n".join(m["content"] for m in messages)
        for kind, pattern in FINDINGS.items():
            if pattern.search(content):
                report.findings.setdefault(kind, []).append(number)
        if tokenizer is not None:
            text = tokenizer.apply_chat_template(messages, tokenize=False)
            lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
        else:
            lengths.append(max(1, len(content) // CHARS_PER_TOKEN))
    report.unusable = dict(sorted(reasons.items()))
    report.tokens_measured_with = "the model's tokenizer and chat template" if tokenizer else \
        f"an estimate of {CHARS_PER_TOKEN} characters per token (pass --tokenizer for exact counts)"
    if lengths:
        ordered = sorted(lengths)
        report.token_lengths = {"mean": round(sum(ordered) / len(ordered)), "p50": _percentile(ordered, 0.5),
                                "p90": _percentile(ordered, 0.9), "p99": _percentile(ordered, 0.99),
                                "max": ordered[-1]}
        report.would_truncate = sum(n > max_seq_length for n in ordered)
    if report.usable < MIN_EXAMPLES:
        report.errors.append(f"{path}: {report.usable} usable examples, at least {MIN_EXAMPLES} are needed")
    return report


def format_report(report: CheckReport) -> str:
    lines = [f"file:        {report.file}"]
    if report.layout:
        lines += [f"layout:      {report.layout}", f"rows:        {report.rows}", f"usable:      {report.usable}"]
        lines += [f"  unusable:  {n} {why}" for why, n in report.unusable.items()]
        lines.append(f"duplicates:  {report.duplicates}")
    if report.token_lengths:
        t = report.token_lengths
        lines.append(f"tokens:      mean {t['mean']}, p50 {t['p50']}, p90 {t['p90']}, p99 {t['p99']}, max {t['max']} "
                     f"({report.tokens_measured_with})")
        lines.append(f"truncated:   {report.would_truncate} longer than max_seq_length {report.max_seq_length}")
    for kind, rows in sorted(report.findings.items()):
        shown = ", ".join(map(str, rows[:10])) + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
        lines.append(f"warning:     {len(rows)} row(s) with a likely {kind}: rows {shown}")
    lines += [f"error:       {e}" for e in report.errors]
    return "\n".join(lines)
