"""Training data: read a file, turn each row into a conversation, tokenize it with the
base model's chat template, and label only the assistant's tokens.

Accepted layouts (the first whose columns are present wins):
- chat `messages`: a list of {role, content} per row (dolly-15k-oai-style, KAITO's documented format);
- `prompt` / `completion`;
- `instruction` / `context` / `response` (the original dolly-15k columns);
- KAITO's `context_column` / `response_column` keys, when the config names them.
Rows that cannot be used are counted per reason in the report, never silently dropped.
"""

from __future__ import annotations

import errno
import os
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

from trainer.text import escape

MIN_EXAMPLES = 50
ROLES = ("system", "user", "assistant")
FORMATS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}


class DataError(Exception):
    """The data cannot be trained on; the message names the file and the fix.

    Paths, column names and reader messages quote the user's files: the message is escaped onto one line.
    """

    def __init__(self, message: str):
        super().__init__(escape(message))


@dataclass
class DataReport:
    """What happened to every row: the trainer logs it and writes it into metrics.json."""

    file: str
    layout: str
    rows: int = 0
    usable: int = 0
    unusable: dict[str, int] = field(default_factory=dict)
    truncated: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_rows(path: Path, extension: str | None = None) -> list[dict[str, Any]]:
    """Rows of a parquet, jsonl, json or csv file, read with `datasets`."""
    fmt = FORMATS.get(f".{extension.lstrip('.')}" if extension else path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use parquet, jsonl, json or csv "
                        "(or set DatasetConfig.dataset_extension)")
    if fmt != "parquet":
        _require_utf8(path)
    import datasets

    datasets.disable_progress_bars()
    try:
        table = datasets.load_dataset(fmt, data_files=str(path), split="train", keep_in_memory=True)
    except OSError as err:
        raise unreadable(path, err) or err from None
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad file for the user, unless the disk failed
        cause = _os_error_behind(err)
        if cause is None:
            raise DataError(f"{path}: cannot be read as {fmt}: {str(err).splitlines()[0][:300]}") from None
        user_error = unreadable(path, cause)
        if user_error is None:
            raise  # EIO and the like: the trainer exits 1 and the Job retries
        raise user_error from None
    return list(table)


def _os_error_behind(err: BaseException) -> OSError | None:
    """The OSError with an errno that a reader error wraps, if any.

    `datasets` re-raises whatever fails while it generates the table as DatasetGenerationError `from` it
    (datasets/builder.py, `_prepare_split_single`); pyarrow raises its I/O failures as OSError(errno, message)
    (pyarrow/error.pxi, `convert_status`). An OSError without an errno is pyarrow's word for a malformed file.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
    return None


# Reading errors the user fixes (a wrong path, permissions, a folder or link where a file belongs); others, such as
# EIO from a failing volume, are left to propagate: the trainer exits 1 and the Job retries.
_USER_ERRNOS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.ELOOP}


class UnreadableData(DataError):
    """A data file the pod cannot read; `error` is the OSError behind it."""

    def __init__(self, message: str, error: OSError):
        super().__init__(message)
        self.error = error


def unreadable(path: Path, err: OSError) -> UnreadableData | None:
    """The DataError for a reading failure the user must fix, or None when a retry may help."""
    if err.errno is not None and err.errno not in _USER_ERRNOS:
        return None
    reason = err.strerror or (str(err).splitlines() or [type(err).__name__])[0][:300]
    return UnreadableData(f"{path}: cannot read the data file ({reason}); check that the volume or download puts "
                          f"a readable file there (the trainer runs as user {os.getuid()}) and that "
                          "DatasetConfig.dataset_path or BundledConfig.validation_path names it", err)


def _require_utf8(path: Path) -> None:
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise unreadable(path, err) or err from None
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 (byte 0x{raw[err.start]:02x}); save the file as UTF-8") from None


def detect_layout(columns: Iterable[str], dataset_cfg: Any = None) -> str:
    cols = set(columns)
    messages = getattr(dataset_cfg, "messages_column", None) or "messages"
    if messages in cols:
        return f"messages:{messages}"
    if {"prompt", "completion"} <= cols:
        return "prompt-completion"
    if {"instruction", "response"} <= cols:
        return "instruction-context-response"
    context = getattr(dataset_cfg, "context_column", None)
    response = getattr(dataset_cfg, "response_column", None)
    if context and response and {context, response} <= cols:
        return f"columns:{context}:{response}"
    raise DataError(f"unknown layout: columns {sorted(cols)}; expected a `messages` column, prompt/completion, "
                    "instruction/context/response, or DatasetConfig.context_column + response_column")


def to_conversation(row: dict[str, Any], layout: str) -> tuple[list[dict[str, str]] | None, str]:
    """(messages, "") for a usable row, (None, reason) otherwise."""
    if layout.startswith("messages:"):
        messages = row.get(layout.split(":", 1)[1])
        if not isinstance(messages, list) or not messages:
            return None, "messages is empty or not a list"
        out = []
        for m in messages:
            if not isinstance(m, dict) or m.get("role") not in ROLES:
                return None, "a message has an unknown role"
            if not isinstance(m.get("content"), str):
                return None, "a message's content is not text"
            out.append({"role": m["role"], "content": m["content"]})
        replies = [m for m in out if m["role"] == "assistant"]
        if not replies:
            return None, "no assistant reply"
        if any(not m["content"].strip() for m in replies):
            return None, "empty assistant reply"
        return out, ""
    if layout == "prompt-completion":
        prompt, reply = row.get("prompt"), row.get("completion")
    elif layout == "instruction-context-response":
        prompt, reply = row.get("instruction"), row.get("response")
        context = row.get("context")
        if isinstance(prompt, str) and isinstance(context, str) and context.strip():
            prompt = f"{prompt}\n\n{context}"
    else:
        _, context_col, response_col = layout.split(":")
        prompt, reply = row.get(context_col), row.get(response_col)
    if not isinstance(prompt, str) or not prompt.strip():
        return None, "empty or missing prompt"
    if not isinstance(reply, str) or not reply.strip():
        return None, "empty assistant reply"
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}], ""


def assistant_spans(tokenizer, messages: list[dict[str, str]]) -> tuple[str, list[tuple[int, int]]]:
    """The templated text and the character spans of the assistant's turns in it.

    Found by rendering each prefix of the conversation, so it works with any chat template,
    including those without `{% generation %}` markers (Phi-3's has none).
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True) if i else ""
        # The turn ends where the conversation so far stops agreeing with the whole one (a template
        # may close a shorter conversation with an end-of-text token the whole one has later).
        upto = text if i == len(messages) - 1 else tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not text.startswith(before):
            raise DataError("the chat template does not render conversations prefix by prefix; "
                            "set ModelConfig.chat_template to one that does")
        spans.append((len(before), len(os.path.commonprefix([upto, text]))))
    return text, spans


def tokenize_conversation(tokenizer, messages: list[dict[str, str]], max_seq_length: int) -> tuple[dict, bool]:
    """input_ids and labels (-100 outside assistant turns), truncated to max_seq_length."""
    text, spans = assistant_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, labels = encoded["input_ids"], []
    for token_id, (start, end) in zip(ids, encoded["offset_mapping"]):
        inside = any(s <= start and end <= e and end > start for s, e in spans)
        labels.append(token_id if inside else -100)
    truncated = len(ids) > max_seq_length
    return {"input_ids": ids[:max_seq_length], "labels": labels[:max_seq_length]}, truncated


def tokenize_file(path: Path, tokenizer, max_seq_length: int, dataset_cfg: Any = None) -> tuple[list[dict], DataReport]:
    rows = read_rows(path, getattr(dataset_cfg, "dataset_extension", None))
    if not rows:
        raise DataError(f"{path}: no rows")
    layout = _layout_or_error(path, rows, dataset_cfg)
    report = DataReport(file=str(path), layout=layout, rows=len(rows))
    reasons: Counter[str] = Counter()
    examples = []
    for row in rows:
        messages, reason = to_conversation(row, layout)
        if messages is None:
            reasons[reason] += 1
            continue
        example, truncated = tokenize_conversation(tokenizer, messages, max_seq_length)
        if all(label == -100 for label in example["labels"]):
            reasons["no assistant tokens within max_seq_length"] += 1
            continue
        report.truncated += truncated
        examples.append(example)
    report.usable, report.unusable = len(examples), dict(sorted(reasons.items()))
    return examples, report


def _layout_or_error(path: Path, rows: list[dict], dataset_cfg: Any) -> str:
    try:
        return detect_layout(rows[0].keys(), dataset_cfg)
    except DataError as err:
        raise DataError(f"{path}: {err}") from None


def prepare_datasets(dataset_cfg: Any, tokenizer, max_seq_length: int, seed: int,
                     validation_path: Path | None = None) -> tuple[list[dict], list[dict], dict]:
    """Train and evaluation examples for the trainer (see trainer/train.py for the contract).

    Evaluation data is the validation file when given, else a held-out split (seeded by `seed`) of
    `1 - train_test_split` of the usable rows, else nothing. Shuffling follows shuffle_seed, as in KAITO.
    """
    path = Path(dataset_cfg.dataset_path)
    examples, report = tokenize_file(path, tokenizer, max_seq_length, dataset_cfg)
    if dataset_cfg.shuffle_dataset:
        random.Random(dataset_cfg.shuffle_seed).shuffle(examples)
    evaluation: list[dict] = []
    summary: dict[str, Any] = {"train_file": report.as_dict()}
    if validation_path is not None:
        evaluation, val_report = tokenize_file(Path(validation_path), tokenizer, max_seq_length, dataset_cfg)
        summary["validation_file"] = val_report.as_dict()
    elif dataset_cfg.train_test_split < 1:
        held_out = max(1, round(len(examples) * (1 - dataset_cfg.train_test_split)))
        rng = random.Random(seed)
        order = list(range(len(examples)))
        rng.shuffle(order)
        chosen = set(order[:held_out])
        evaluation = [e for i, e in enumerate(examples) if i in chosen]
        examples = [e for i, e in enumerate(examples) if i not in chosen]
    if len(examples) < MIN_EXAMPLES:
        unusable = ", ".join(f"{n} {why}" for why, n in report.unusable.items()) or "none unusable"
        raise DataError(f"{path}: {len(examples)} usable training examples, at least {MIN_EXAMPLES} are needed "
                        f"({report.rows} rows; {unusable}); add data or fix the rows "
                        "(kaito-gitops dataset check shows which)")
    summary.update({"train_examples": len(examples), "eval_examples": len(evaluation)})
    return examples, evaluation, summary
