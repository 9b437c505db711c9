"""Fixture-driven validation tests: every valid tree loads, every invalid tree
reports exactly the expected `file:line: $.path: message` lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from infra.diagnostics import SpecError
from infra.specs import load_environment

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VALID = sorted(p.name for p in (FIXTURES / "valid").iterdir())
INVALID = sorted(p.name for p in (FIXTURES / "invalid").iterdir())


def _relative_lines(error: SpecError, env_dir: Path) -> list[str]:
    lines = []
    for d in error.diagnostics:
        rel = os.path.relpath(Path(d.path).resolve(), env_dir)
        lines.append(str(d).replace(d.path, rel, 1))
    return lines


@pytest.mark.parametrize("case", VALID)
def test_valid_fixture_loads(case: str) -> None:
    env = load_environment("dev", FIXTURES / "valid" / case / "workloads")
    assert env.workloads, f"{case}: no workloads loaded"


@pytest.mark.parametrize("case", INVALID)
def test_invalid_fixture_reports_each_expected_line(case: str) -> None:
    root = FIXTURES / "invalid" / case / "workloads"
    expected = (FIXTURES / "invalid" / case / "expected.txt").read_text().splitlines()
    with pytest.raises(SpecError) as caught:
        load_environment("dev", root)
    got = _relative_lines(caught.value, (root / "dev").resolve())
    for line in expected:
        assert any(g.startswith(line) for g in got), f"{case}: expected a line starting with\n  {line}\ngot:\n  " + "\n  ".join(got)
    unexpected = [g for g in got if not any(g.startswith(line) for line in expected)]
    assert not unexpected, f"{case}: unexpected diagnostics:\n  " + "\n  ".join(unexpected)
    # Each diagnostic names a real line and a hint-bearing message, never a bare traceback.
    assert all(d.line >= 1 for d in caught.value.diagnostics), got
