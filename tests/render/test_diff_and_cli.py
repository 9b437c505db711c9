"""diff against git refs, and the CLI's exit codes and messages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from infra.cli import main
from infra.diff import diff_objects, render_at_ref
from infra.render import render_environment
from infra.specs import WORKLOADS_DIR, load_environment


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    shutil.copytree(WORKLOADS_DIR, tmp_path / "workloads")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "add", ".")
    _git(tmp_path, "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "base")
    return tmp_path


def test_removed_spec_shows_its_objects_as_removed(repo: Path):
    (repo / "workloads/dev/ml-platform/phi3-dolly-bundled.yaml").unlink()
    new = render_environment(load_environment("dev", repo / "workloads"))
    changes = diff_objects(render_at_ref("dev", "HEAD", repo), new)
    assert {(c.action, c.id[1], c.id[3]) for c in changes} == {
        ("removed", "Job", "phi3-dolly-bundled"),
        ("removed", "ConfigMap", "phi3-dolly-bundled-training-config"),
        ("removed", "PersistentVolumeClaim", "phi3-dolly-bundled-checkpoints"),
    }


def test_changed_hyperparameter_shows_in_the_configmap_diff(repo: Path):
    path = repo / "workloads/dev/ml-platform/phi3-dolly-qlora.yaml"
    path.write_text(path.read_text().replace("epochs: 1", "epochs: 3"))
    changes = diff_objects(render_at_ref("dev", "HEAD", repo), render_environment(load_environment("dev", repo / "workloads")))
    assert [(c.action, c.id[3]) for c in changes] == [("changed", "phi3-dolly-qlora-training-config")]
    assert "+        num_train_epochs: 3" in changes[0].diff


def test_env_missing_at_ref_renders_nothing(repo: Path):
    assert render_at_ref("staging", "HEAD", repo) == []


def test_validate_accepts_the_shipped_workloads(capsys):
    assert main(["validate"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_validate_reports_every_problem_with_file_and_line(capsys, monkeypatch):
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "invalid" / "several-errors-in-one-file" / "workloads"
    monkeypatch.setattr("infra.specs.WORKLOADS_DIR", fixtures)
    assert main(["validate"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 3 and all("job.yaml:" in line and ": $.spec." in line for line in out)


@pytest.mark.parametrize("argv", [["render", "--env", "nope", "--out", "x"], ["diff", "--env", "dev", "--base", "no-such-ref"],
                                  ["validate", "/no/such/path"], ["frobnicate"]])
def test_usage_errors_exit_2_without_traceback(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_render_writes_one_file_per_object(tmp_path, capsys):
    assert main(["render", "--env", "dev", "--out", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").rglob("*.yaml"))
    assert len(files) == len(render_environment(load_environment("dev")))
