"""Every regex run over user text finishes on pathological input of megabytes.

A pattern with nested or overlapping repeats backtracks quadratically or worse: on the inputs below such a
pattern runs for hours, a linear one for well under a second. The work runs in a subprocess whose generous
timeout is only a hang guard; how fast each case is lives in benchmarks/bench_hostile.py, not here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import schemas

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD_S = 300  # a quadratic pattern on 1 MB takes hours; every pattern here takes well under a second
# Modules whose module-level patterns see user text: specs, URLs, YAML scalars, credentials, personal data.
MODULES = ["infra.specs", "infra.urls", "infra.yamlload", "trainer.credentials", "trainer.dataset_check"]

SCRIPT = r"""
import importlib, json, re, sys
from infra import schemas
size = int(sys.argv[1])
patterns = {}
for name in json.loads(sys.argv[2]):
    module = importlib.import_module(name)
    for attr, value in vars(module).items():
        if isinstance(value, re.Pattern):
            patterns[f"{name}.{attr}"] = value
for file, pattern in schemas.all_patterns():
    patterns[f"{file}: {pattern}"] = schemas._ecma(pattern)
units = ["a", "a@", "a.", "1_", "0", "A", "A ", "-----BEGIN ", "hf_", "xoxa-", "1 ", "0x", "1:", "?sig", "{team}", "/a"]
for unit in units:
    text = unit * (size // len(unit)) + "!"  # a run that never completes a match, then a character no pattern wants
    for pattern in patterns.values():
        pattern.search(text)
        pattern.fullmatch(text)
print(len(patterns), "patterns")
"""


def test_every_pattern_over_user_text_is_linear_on_megabyte_inputs():
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(1_000_000), json.dumps(MODULES)], cwd=REPO,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[0]) >= 20, done.stdout  # the patterns were found, not skipped


def test_dataset_check_of_a_five_megabyte_row_answers(tmp_path):
    rows = [{"prompt": f"question {i}?", "completion": f"answer {i}."} for i in range(60)]
    hostile = "a" * 1_000_000 + "a@" + "a." * 500_000 + "A" * 1_000_000 + "1 " * 500_000 + "-----BEGIN " + "A " * 250_000
    rows.append({"prompt": "x", "completion": hostile})
    data = tmp_path / "big.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert data.stat().st_size > 4_500_000
    cli = "import sys; from infra.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run([sys.executable, "-c", cli, "dataset", "check", str(data), "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 61


@pytest.mark.parametrize(("file", "pattern"), schemas.all_patterns())
def test_schema_patterns_match_the_whole_value(file, pattern):
    """Anchored at both ends, and a trailing newline (which Python's `$` lets through) is refused."""
    assert pattern.startswith("^") and pattern.endswith("$"), f"{file}: {pattern} is not anchored"
    example = EXAMPLES[pattern]
    assert schemas._ecma(pattern).search(example), f"{file}: {pattern} refuses its example {example!r}"
    assert re.search(pattern, example + "\n"), "Python's own $ accepts the newline: the reason for _ecma"
    assert not schemas._ecma(pattern).search(example + "\n"), f"{file}: {pattern} accepts a trailing newline"


EXAMPLES = {
    schemas.DNS_LABEL: "ml-platform",
    schemas.WORKLOAD_NAME: "phi3-dolly",
    "^https://[^\\s]+$": "https://example.com/a.parquet",
    "^/[A-Za-z0-9._/-]*$": "/mnt/results",
    "^([a-z0-9-]|\\{team\\})+$": "ml-{team}",
    "^[a-z0-9]{5,50}\\.azurecr\\.io$": "kaitogitopsdev.azurecr.io",
    "^[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$": "adapters/phi3-dolly",
    "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$": "v1",
    "^[A-Za-z_][A-Za-z0-9_.]*$": "q_proj",
    "^v?[0-9]+\\.[0-9]+\\.[0-9]+$": "0.12.0",
}


def test_every_schema_pattern_has_a_message_and_an_example():
    used = {pattern for _, pattern in schemas.all_patterns()}
    assert used <= set(schemas.PATTERNS), used - set(schemas.PATTERNS)
    assert used <= set(EXAMPLES), used - set(EXAMPLES)
