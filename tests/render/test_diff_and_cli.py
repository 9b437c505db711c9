"""diff against git refs, and the CLI's exit codes and messages."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import pytest

from infra.cli import main
from infra.diff import diff_objects, render_at_ref
from infra.render import config_map_name, render_environment
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
    config_map = config_map_name(load_environment("dev", repo / "workloads").by_name("phi3-dolly-bundled"))
    (repo / "workloads/dev/ml-platform/phi3-dolly-bundled.yaml").unlink()
    new = render_environment(load_environment("dev", repo / "workloads"))
    changes = diff_objects(render_at_ref("dev", "HEAD", repo), new)
    assert {(c.action, c.id[1], c.id[3]) for c in changes} == {
        ("removed", "Job", "phi3-dolly-bundled"),
        ("removed", "ConfigMap", config_map),
        ("removed", "PersistentVolumeClaim", "phi3-dolly-bundled-checkpoints"),
    }


def _changes(repo: Path, spec: str, old: str, new: str):
    path = repo / "workloads/dev/ml-platform" / spec
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return diff_objects(render_at_ref("dev", "HEAD", repo), render_environment(load_environment("dev", repo / "workloads")))


def _kaito_revision_input(workspace: dict) -> tuple:
    """What KAITO's ComputeHash encodes (workspace_controller.go): a new value is a new revision, a new Job."""
    return workspace.get("resource"), workspace.get("inference"), workspace.get("tuning")


@pytest.mark.parametrize("old,new,diff_line", [
    ("epochs: 1", "epochs: 3", "+        num_train_epochs: 3"),
    ("seed: 42", "seed: 7", "+        seed: 7"),
])
def test_a_hyperparameter_change_renames_the_configmap_and_changes_the_workspace_kaito_hashes(repo, old, new,
                                                                                              diff_line):
    before = {o["metadata"]["name"]: o for o in render_at_ref("dev", "HEAD", repo) if o["kind"] == "Workspace"}
    changes = _changes(repo, "phi3-dolly-qlora.yaml", old, new)
    assert [(c.action, c.id[1]) for c in changes] == [("added", "ConfigMap"), ("removed", "ConfigMap"),
                                                      ("changed", "Workspace")]
    added, removed, workspace = changes
    assert added.id[3].startswith("phi3-dolly-qlora-training-config-") and added.id[3] != removed.id[3]
    assert diff_line in added.diff
    after = next(o for o in render_environment(load_environment("dev", repo / "workloads"))
                 if o["metadata"]["name"] == "phi3-dolly-qlora" and o["kind"] == "Workspace")
    assert after["tuning"]["config"] == added.id[3]
    assert _kaito_revision_input(after) != _kaito_revision_input(before["phi3-dolly-qlora"])


def test_a_hyperparameter_change_reruns_the_bundled_job_by_replacing_it(repo):
    changes = _changes(repo, "phi3-dolly-bundled.yaml", "batchSize: 8", "batchSize: 4")
    job = next(c for c in changes if c.id[1] == "Job")
    assert job.action == "replaced" and job.replaced == ("spec.template",)
    assert "cannot change in place: spec.template" in job.title


@pytest.mark.parametrize("spec,old,new,fields", [
    ("phi3-dolly-qlora.yaml", "method: qlora", "method: lora", ("tuning.method",)),
    ("phi3-dolly.yaml", "preset: phi-3-mini-128k-instruct", "preset: phi-3-mini-4k-instruct", ("inference.preset",)),
])
def test_fields_kaito_refuses_to_update_are_reported_as_replaced(repo, spec, old, new, fields):
    workspace = next(c for c in _changes(repo, spec, old, new) if c.id[1] == "Workspace")
    assert workspace.action == "replaced" and workspace.replaced == fields


def test_a_data_change_updates_the_tuning_workspace_in_place_and_changes_its_kaito_hash(repo):
    before = next(o for o in render_at_ref("dev", "HEAD", repo) if o["metadata"]["name"] == "phi3-dolly-qlora")
    changes = _changes(repo, "phi3-dolly-qlora.yaml", "train-00000-of-00001", "train-00001-of-00001")
    (workspace,) = [c for c in changes if c.id[1] == "Workspace"]
    assert workspace.action == "changed"  # KAITO lets input URLs change; its name may not (tuning.input.name)
    after = next(o for o in render_environment(load_environment("dev", repo / "workloads"))
                 if o["metadata"]["name"] == "phi3-dolly-qlora")
    assert _kaito_revision_input(after) != _kaito_revision_input(before)


def test_an_instance_type_change_is_a_replacement(repo):
    changes = _changes(repo, "phi3-dolly.yaml", "preset: phi-3-mini-128k-instruct",
                       "preset: phi-3-mini-128k-instruct\n  placement: {instanceType: Standard_NC48ads_A100_v4}")
    (workspace,) = [c for c in changes if c.id[1] == "Workspace"]
    assert workspace.action == "replaced" and workspace.replaced == ("resource.instanceType",)


def test_retiring_a_tuning_job_removes_its_objects_and_keeps_its_adapter_for_inference(repo):
    changes = _changes(repo, "phi3-dolly-qlora.yaml", "engine: kaito", "engine: kaito\n  retired: true")
    assert {(c.action, c.id[1]) for c in changes} == {("removed", "Workspace"), ("removed", "ConfigMap")}
    new = render_environment(load_environment("dev", repo / "workloads"))
    serving = next(o for o in new if o["metadata"]["name"] == "phi3-dolly")
    assert serving["inference"]["adapters"][0]["source"]["image"].endswith("/adapters/phi3-dolly-qlora:v1")


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


def test_a_tuning_job_name_reused_for_serving_is_refused_against_the_base(repo):
    """KAITO refuses to turn a tuning Workspace into an inference one; a retired job's name is free."""
    from infra.diagnostics import SpecError
    from infra.diff import environment_at_ref

    root = repo / "workloads/dev/ml-platform"
    serving = (root / "phi3-dolly.yaml").read_text()
    (root / "phi3-dolly-bundled.yaml").write_text(serving.replace("name: phi3-dolly\n", "name: phi3-dolly-bundled\n"))
    base = environment_at_ref("dev", "HEAD", repo)
    with pytest.raises(SpecError) as caught:
        load_environment("dev", repo / "workloads", base=base)
    (problem,) = caught.value.diagnostics
    assert problem.json_path == "$.kind" and "is a deployed TuningJob" in problem.message
    retired = dataclasses.replace(base, workloads=[
        dataclasses.replace(w, spec={**w.spec, "retired": True}) if w.name == "phi3-dolly-bundled" else w
        for w in base.workloads])
    assert load_environment("dev", repo / "workloads", base=retired).by_name("phi3-dolly-bundled").kind == \
        "InferenceDeployment"
