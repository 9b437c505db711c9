"""Every target the Makefile declares phony has a rule of its own, and `make -n` (print, run nothing) accepts it.

A phony target without a rule is not an error to make: `make bench` would print "Nothing to be done" and
exit 0, so the rule's presence is checked in the Makefile's text."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from infra.specs import REPO_ROOT

MAKEFILE = (REPO_ROOT / "Makefile").read_text()
PHONY = re.search(r"^\.PHONY:(.*)$", MAKEFILE, re.M).group(1).split()  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("target", PHONY)
def test_each_phony_target_has_a_rule(target: str) -> None:
    assert re.search(rf"^{re.escape(target)}:", MAKEFILE, re.M), f"{target} is .PHONY but has no rule"
    run = subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr


def test_bench_runs_the_cpu_benchmarks() -> None:
    run = subprocess.run(["make", "-n", "bench"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "benchmarks/bench_specs.py" in run.stdout and "benchmarks/bench_hostile.py" in run.stdout
