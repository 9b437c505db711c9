"""Every `python -m infra.*` the workflows run ends a failure with one line and a non-zero exit, like
the `kaito-gitops` CLI: a traceback in a pull request's log tells its author nothing."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from infra import cli, drift, retire, review
from infra.specs import REPO_ROOT

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _modules_the_workflows_run() -> set[str]:
    return {m for f in WORKFLOWS.glob("*.yml") for m in re.findall(r"python -m (infra\.\w+)", f.read_text())}


def test_the_workflows_run_review_drift_and_retire():
    assert _modules_the_workflows_run() == {"infra.review", "infra.drift", "infra.retire"}


@pytest.mark.parametrize("module", sorted(_modules_the_workflows_run()))
def test_an_unexpected_failure_is_one_line_and_exit_1(module: str, monkeypatch, capsys, tmp_path: Path):
    """Break what each command calls first; the entry point must still answer in one line."""
    mod = importlib.import_module(module)

    def broken(*args, **kwargs):
        raise KeyError("boom\nsecond line")

    prog = f"python -m {module}"
    if mod is review:
        monkeypatch.setattr(review, "changed_files", broken)
        argv = ["envs", "--base", "HEAD"]
    elif mod is retire:  # `python -m infra.retire` is `kaito-gitops retire`
        monkeypatch.setattr(retire, "load_objects", broken)
        mod, prog = cli, "kaito-gitops"
        argv = ["retire", "--env", "dev", str(tmp_path / "objects.json")]
    else:
        monkeypatch.setattr(drift, "load_agent_pools", broken)
        argv = ["node-pools", "--env", "dev", "--agent-pools", str(tmp_path / "pools.json")]
    assert mod.main(argv) == cli.EXIT_INVALID
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"{prog}: {cli.INTERNAL_ERROR}: KeyError")


def test_the_comment_reports_an_unwritable_out_file(tmp_path: Path, capsys):
    out = tmp_path / "missing-dir" / "plan.md"
    assert review.main(["comment", "--base", "HEAD", "--env", "dev", "--out", str(out)]) == 2
    assert capsys.readouterr().err == f"python -m infra.review: --out {out}: cannot write: No such file or directory\n"


def test_a_preview_log_with_bytes_that_are_not_utf8_still_makes_a_comment(tmp_path: Path):
    (tmp_path / "dev.outcome").write_bytes(b"failure\n")
    (tmp_path / "dev.txt").write_bytes(b"error: \xff\xfe half a character\n")
    text = review._previews(tmp_path, "dev")
    assert text is not None and "half a character" in text and "did not succeed (failure)" in text


def test_a_usage_error_exits_2_without_a_traceback():
    run = subprocess.run([sys.executable, "-m", "infra.review", "comment"], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "--base" in run.stderr
