"""`kaito-gitops retire`: which KAITO tuning Workspaces have ended, and the edit that retires their specs.

Each case under tests/fixtures/retire/<case>/ holds `objects.json` (what `kubectl get workspaces.kaito.sh,
jobs.batch -A -o json` returns: the Workspace as rendered from tests/fixtures/retire/_workloads plus the
metadata and status KAITO v0.12 writes, see docs/rendering.md "Retiring a finished tuning job"),
`expected.txt` (exit code, then the output) and, where a spec is edited, `expected/<path>` (the whole file
after the edit). Every file not listed under expected/ must stay byte for byte what it was. A change to the
renderer that renames the training ConfigMap makes the Workspaces of these cases stale; re-render them
(`kaito-gitops render`) into objects.json and re-check the expected output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import main
from infra.render.names import KAITO_COMMIT
from infra.specs import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "retire"
WORKLOADS = FIXTURES / "_workloads"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith("_"))
SPEC = Path("workloads/dev/ml-platform/support-bot.yaml")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the fixture workloads in a scratch directory that is also the working directory."""
    shutil.copytree(WORKLOADS, tmp_path / "workloads")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _retire(capsys, *args: str) -> tuple[int, str]:
    code = main(["retire", "--env", "dev", "--workloads", "workloads", *args])
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("case", CASES)
def test_retire_case(case: str, checkout: Path, capsys):
    shutil.copy(FIXTURES / case / "objects.json", checkout / "objects.json")
    code, output = _retire(capsys, "--write", "objects.json")
    assert f"exit {code}\n{output}" == (FIXTURES / case / "expected.txt").read_text(encoding="utf-8")
    expected = {**_files(WORKLOADS), **{path: data for path, data in _files(FIXTURES / case / "expected").items()}} \
        if (FIXTURES / case / "expected").is_dir() else _files(WORKLOADS)
    after = _files(checkout / "workloads")
    assert after.keys() == expected.keys(), "files were added or removed"
    for path, data in expected.items():
        assert after[path] == data, f"{path} differs from the expected edit"


def test_the_cases_cover_every_state_the_tool_reports():
    states = set()
    for case in CASES:
        states |= {line.split(": ")[2] for line in (FIXTURES / case / "expected.txt").read_text().splitlines()[1:]
                   if line.startswith("dev: ")}
    assert states == {"succeeded", "failed", "failing", "running", "pending", "stale", "already-retired", "not-ours", "no-spec", "inference"}


def test_without_write_nothing_changes_and_the_output_says_what_would(checkout: Path, capsys):
    code, output = _retire(capsys, str(FIXTURES / "succeeded" / "objects.json"))
    assert code == 0 and "to retire (--write edits) workloads/dev/ml-platform/support-bot.yaml" in output
    assert _files(checkout / "workloads") == _files(WORKLOADS)


def test_json_output_for_the_workflow(checkout: Path, capsys):
    code, output = _retire(capsys, "--write", "--format", "json", str(FIXTURES / "failed" / "objects.json"))
    report = json.loads(output)
    assert code == 0 and report["written"] == [str(SPEC)]
    [found] = report["workspaces"]
    assert (found["namespace"], found["name"], found["state"], found["action"], found["reason"]) == \
        ("ml-platform", "support-bot", "failed", "retire", "workspaceFailed")


def test_running_it_again_changes_nothing_more(checkout: Path, capsys):
    objects = str(FIXTURES / "succeeded" / "objects.json")
    assert _retire(capsys, "--write", objects)[0] == 0
    once = _files(checkout / "workloads")
    code, output = _retire(capsys, "--write", objects)
    assert code == 0 and "already-retired" in output and _files(checkout / "workloads") == once


def test_objects_from_several_files_and_stdin(checkout: Path, capsys, monkeypatch):
    items = json.loads((FIXTURES / "succeeded" / "objects.json").read_text())["items"]
    (checkout / "workspaces.json").write_text(json.dumps({"kind": "List", "items": items[:1]}))
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(json.dumps(items[1])))  # one object, not a List
    code, output = _retire(capsys, "workspaces.json", "-")
    assert code == 0 and "support-bot: succeeded" in output


def test_a_workspace_without_generation_is_not_trusted(checkout: Path, capsys):
    data = json.loads((FIXTURES / "succeeded" / "objects.json").read_text())
    del data["items"][0]["metadata"]["generation"]
    for condition in data["items"][0]["status"]["conditions"]:
        condition.pop("observedGeneration")
    (checkout / "objects.json").write_text(json.dumps(data))
    code, output = _retire(capsys, "--write", "objects.json")
    assert code == 0 and "support-bot: pending: KAITO has not reported on this generation" in output
    assert _files(checkout / "workloads") == _files(WORKLOADS)


def test_a_retired_false_line_becomes_retired_true(checkout: Path, capsys):
    spec = checkout / SPEC
    spec.write_text(spec.read_text().replace("spec:   # what KAITO runs\n", "spec:   # what KAITO runs\n  retired: false  # not yet\n"))
    code, _ = _retire(capsys, "--write", str(FIXTURES / "succeeded" / "objects.json"))
    text = spec.read_text()
    assert code == 0 and "retired: false" not in text and text.count("retired: true") == 1


@pytest.mark.parametrize("line", ["retired: False", "retired: FALSE  # not yet", '"retired": false', "'retired': false"])
def test_every_spelling_of_retired_false_becomes_retired_true(checkout: Path, capsys, line: str):
    spec = checkout / SPEC
    spec.write_text(spec.read_text().replace("spec:   # what KAITO runs\n", f"spec:   # what KAITO runs\n  {line}\n"))
    code, output = _retire(capsys, "--write", str(FIXTURES / "succeeded" / "objects.json"))
    text = spec.read_text()
    assert code == 0, output
    assert line not in text and text.count("retired: true") == 1


def _succeeded_objects() -> list[dict]:
    return json.loads((FIXTURES / "succeeded" / "objects.json").read_text())["items"]


def test_a_job_left_from_a_deleted_workspace_of_the_same_name_says_nothing(checkout: Path, capsys):
    """KAITO reports on whatever Job has the Workspace's name (collectTuningStatusSnapshot): one owned by an
    earlier Workspace (another uid) must not retire a run that has not started."""
    workspace, job = _succeeded_objects()
    job["metadata"]["ownerReferences"][0]["uid"] = "uid-of-a-deleted-workspace"
    (checkout / "objects.json").write_text(json.dumps({"kind": "List", "items": [workspace, job]}))
    code, output = _retire(capsys, "--write", "objects.json")
    assert code == 0 and "support-bot: pending: KAITO's tuning Job of the Workspace's current revision" in output
    assert _files(checkout / "workloads") == _files(WORKLOADS)


def test_a_job_that_succeeded_after_a_retry_is_retired_as_succeeded(checkout: Path, capsys):
    """KAITO says workspaceFailed once any pod failed (job.Status.Failed > 0); the Job's Complete decides."""
    workspace, job = _succeeded_objects()
    condition = next(c for c in workspace["status"]["conditions"] if c["type"] == "WorkspaceSucceeded")
    condition.update(status="False", reason="workspaceFailed", message="tuning job failed")
    job["status"]["failed"] = 1
    (checkout / "objects.json").write_text(json.dumps({"kind": "List", "items": [workspace, job]}))
    code, output = _retire(capsys, "--write", "objects.json")
    assert code == 0 and "support-bot: succeeded: the tuning job succeeded; retired" in output
    assert "failed" not in (checkout / SPEC).read_text()


@pytest.mark.parametrize("message", ["bad \ufffe char", "lone \ud800 surrogate", "bidi \u202e txt", "nel \x85 line"])
def test_any_cluster_message_becomes_a_comment_yaml_loads(checkout: Path, capsys, message: str):
    """Characters YAML refuses (U+FFFE, a lone surrogate) or that reorder text reach the file as \\u escapes."""
    workspace, job = _succeeded_objects()
    condition = next(c for c in workspace["status"]["conditions"] if c["type"] == "WorkspaceSucceeded")
    condition.update(status="False", reason="workspaceFailed", message=message)
    job["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    (checkout / "objects.json").write_text(json.dumps({"kind": "List", "items": [workspace, job]}))
    code, output = _retire(capsys, "--write", "objects.json")
    assert code == 0, output
    text = (checkout / SPEC).read_text(encoding="utf-8")
    assert text.isascii() and output.isascii() and "retired: true" in text
    from infra.specs import load_environment
    assert load_environment("dev", root=Path("workloads")).by_name("support-bot").retired


def test_a_spec_it_cannot_edit_safely_is_refused_and_the_others_are_still_retired(checkout: Path, capsys):
    """Two jobs to retire, one in flow style: that one is refused (exit 3), the other is retired, so one odd
    file does not keep every other GPU node billing."""
    spec = checkout / SPEC
    second = checkout / "workloads/dev/ml-platform/support-bot-flow.yaml"
    second.write_text(spec.read_text().replace("name: support-bot ", "name: support-bot-flow ")
                      .split("spec:")[0] + "spec: {engine: kaito, baseModel: phi-3-mini-128k-instruct, method: qlora, "
                      "data: {train: {urls: [https://example.com/support/train.parquet]}}, "
                      "output: {image: {repository: adapters/support-bot-flow, tag: v1}}}\n")
    before = _files(checkout / "workloads")
    from infra.render import render_environment
    from infra.specs import load_environment

    rendered = {o["metadata"]["name"]: o for o in render_environment(load_environment("dev", root=Path("workloads")))
                if o["kind"] == "Workspace"}
    items = json.loads((FIXTURES / "succeeded" / "objects.json").read_text())["items"]
    flow = json.loads(json.dumps(items).replace('"support-bot"', '"support-bot-flow"')
                      .replace("uid-support-bot", "uid-support-bot-flow"))
    flow[0]["tuning"] = rendered["support-bot-flow"]["tuning"]
    flow[0]["metadata"]["labels"]["app.kubernetes.io/name"] = "support-bot-flow"
    (checkout / "objects.json").write_text(json.dumps({"kind": "List", "items": items + flow}))
    code, output = _retire(capsys, "--write", "objects.json")
    assert code == 3
    assert ("dev: ml-platform/support-bot-flow: refused: ended (the tuning job succeeded), but "
            "workloads/dev/ml-platform/support-bot-flow.yaml:1: $.spec: no block-style `spec:` line to add "
            "`retired: true` under (hint: write `spec:` on a line of its own, its keys indented below it)\n") in output
    assert "dev: ml-platform/support-bot: succeeded: the tuning job succeeded; retired" in output
    after = _files(checkout / "workloads")
    assert after[str(second.relative_to(checkout / "workloads"))] == before[str(second.relative_to(checkout / "workloads"))]
    assert after[str(SPEC.relative_to("workloads"))].endswith(b"  retired: true\n")


def test_a_failed_write_leaves_every_file_as_it_was(checkout: Path, capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.mkstemp", full)
    code, output = _retire(capsys, "--write", str(FIXTURES / "succeeded" / "objects.json"))
    assert code == 1 and "nothing was changed" in output and "No space left on device" in output
    assert _files(checkout / "workloads") == _files(WORKLOADS)


@pytest.mark.parametrize("content, message", [
    ("", "objects.json:1: $: not JSON (Expecting value)"),
    ('{"items": {"kind": "Workspace"}}', "objects.json:1: $.items: not a list of Kubernetes objects"),
    ('{"items": [{"kind": "Workspace"}]}', "objects.json:1: $.items[0]: an object without kind or metadata"),
    ("[" * 100000, "objects.json:1: $: not JSON"),
])
def test_bad_input_is_one_clear_line_and_exit_1(checkout: Path, capsys, content: str, message: str):
    (checkout / "objects.json").write_text(content)
    code, output = _retire(capsys, "--write", "objects.json")
    assert code == 1 and output.startswith(f"kaito-gitops retire: {message}") and "Traceback" not in output
    assert len(output.splitlines()) == 1


def test_usage_errors_exit_2(checkout: Path, capsys):
    with pytest.raises(SystemExit) as usage:  # no FILE
        _retire(capsys)
    assert usage.value.code == 2
    code = main(["retire", "--env", "nope", "--workloads", "workloads", "objects.json"])
    assert code == 2 and "unknown environment 'nope'" in capsys.readouterr().err


def test_python_dash_m_runs_the_same_command(checkout: Path):
    result = subprocess.run([sys.executable, "-m", "infra.retire", "--env", "dev",
                             "--workloads", "workloads", str(FIXTURES / "running" / "objects.json")],
                            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0 and result.stdout.startswith("dev: ml-platform/support-bot: running"), result.stderr


PR_SCRIPT = REPO_ROOT / "scripts" / "retire-pull-request.sh"
FAKE_GH = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$GH_LOG"
if [ "$1 $2" = "pr list" ]; then cat "$GH_OPEN"; fi
if [ "$1 $2" = "pr create" ] || [ "$1 $2" = "pr edit" ]; then
  while [ $# -gt 0 ]; do if [ "$1" = --body-file ]; then cp "$2" "$GH_BODY"; fi; shift; done
fi
"""


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A clone of a scratch repository (its origin a local bare one) and `gh` replaced by a recorder."""
    def git(*args: str, cwd: Path) -> str:
        return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout

    origin, work = tmp_path / "origin.git", tmp_path / "work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(origin), cwd=tmp_path)
    git("clone", "--quiet", str(origin), str(work), cwd=tmp_path)
    shutil.copytree(WORKLOADS, work / "workloads")
    git("add", "workloads", cwd=work)
    git("-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "--quiet", "-m", "specs", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    (tmp_path / "open").write_text("")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "GH_LOG": str(tmp_path / "gh.log"),
           "GH_OPEN": str(tmp_path / "open"), "GH_BODY": str(tmp_path / "body.md")}
    (tmp_path / "gh.log").write_text("")
    return work, env


def _pull_request_script(work: Path, env: dict[str, str], report: str) -> subprocess.CompletedProcess:
    (work.parent / "report.txt").write_text(report)
    return subprocess.run(["bash", str(PR_SCRIPT), "dev", str(work.parent / "report.txt")], cwd=work, env=env,
                          capture_output=True, text=True)


def _remote_branch(work: Path) -> str:
    return subprocess.run(["git", "ls-remote", "origin", "retire/dev"], cwd=work, capture_output=True,
                          text=True).stdout


def test_the_pull_request_script_is_shellcheck_clean():
    assert shutil.which("shellcheck"), "shellcheck is missing: `make test` installs it (Makefile, system-packages)"
    result = subprocess.run(["shellcheck", str(PR_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_an_edit_becomes_one_pull_request_and_a_rerun_pushes_nothing(clone, capsys):
    work, env = clone
    objects = str(FIXTURES / "succeeded" / "objects.json")
    assert main(["retire", "--env", "dev", "--workloads", str(work / "workloads"), "--write", objects]) == 0
    report = capsys.readouterr().out
    result = _pull_request_script(work, env, report)
    assert result.returncode == 0, result.stderr
    log = Path(env["GH_LOG"]).read_text()
    assert "pr create --base main --head retire/dev" in log
    # It merges itself once the branch protection allows: nobody has to watch for the job to end.
    assert log.splitlines()[-1] == "pr merge retire/dev --auto --squash"
    # The report is an indented code block in the body: no cluster-supplied text can end it.
    assert "\n    dev: ml-platform/support-bot: succeeded" in Path(env["GH_BODY"]).read_text()
    pushed = _remote_branch(work)
    assert pushed
    shown = subprocess.run(["git", "show", "--stat", "--format=%s", pushed.split()[0]], cwd=work,
                           capture_output=True, text=True).stdout
    assert "Retire the finished tuning jobs in dev" in shown and "support-bot.yaml" in shown

    # The next run: main unchanged, the same edit, the pull request open: nothing is pushed or edited.
    subprocess.run(["git", "switch", "--quiet", "main"], cwd=work, check=True)
    subprocess.run(["git", "branch", "--quiet", "-D", "retire/dev"], cwd=work, check=True)
    assert main(["retire", "--env", "dev", "--workloads", str(work / "workloads"), "--write", objects]) == 0
    Path(env["GH_OPEN"]).write_text("7\n")
    Path(env["GH_LOG"]).write_text("")
    result = _pull_request_script(work, env, capsys.readouterr().out)
    assert result.returncode == 0, result.stderr
    assert _remote_branch(work) == pushed
    assert Path(env["GH_LOG"]).read_text() == "pr list --head retire/dev --state open --json number --jq .[0].number // empty\n"


def test_a_pushed_branch_without_an_open_pull_request_gets_one(clone, capsys):
    """A run whose `gh pr create` failed after the push, or a pull request closed without its branch: the next
    run must still open one, or the node bills on in a quiet repository."""
    work, env = clone
    objects = str(FIXTURES / "succeeded" / "objects.json")
    for _ in range(2):
        subprocess.run(["git", "switch", "--quiet", "main"], cwd=work, check=True)
        subprocess.run(["git", "branch", "--quiet", "-D", "retire/dev"], cwd=work, capture_output=True)
        subprocess.run(["git", "checkout", "--quiet", "--", "workloads"], cwd=work, check=True)
        assert main(["retire", "--env", "dev", "--workloads", str(work / "workloads"), "--write", objects]) == 0
        Path(env["GH_LOG"]).write_text("")
        result = _pull_request_script(work, env, capsys.readouterr().out)
        assert result.returncode == 0, result.stderr
        assert "pr create --base main --head retire/dev" in Path(env["GH_LOG"]).read_text()


def test_nothing_left_to_retire_closes_the_open_pull_request(clone):
    work, env = clone
    Path(env["GH_OPEN"]).write_text("7\n")
    result = _pull_request_script(work, env, "dev: ml-platform/support-bot: running: the tuning job has not ended\n")
    assert result.returncode == 0, result.stderr
    assert "pr close 7 --delete-branch" in Path(env["GH_LOG"]).read_text()
    assert not _remote_branch(work)


def test_a_repository_without_auto_merge_gets_a_warning_not_a_failure(clone, capsys):
    work, env = clone
    fake = Path(env["PATH"].split(":")[0]) / "gh"
    fake.write_text(FAKE_GH + 'if [ "$1 $2" = "pr merge" ]; then echo "auto-merge is not allowed" >&2; exit 1; fi\n')
    objects = str(FIXTURES / "succeeded" / "objects.json")
    assert main(["retire", "--env", "dev", "--workloads", str(work / "workloads"), "--write", objects]) == 0
    result = _pull_request_script(work, env, capsys.readouterr().out)
    assert result.returncode == 0, result.stderr
    assert "::warning::auto-merge is off" in result.stdout and _remote_branch(work)


KAITO_GIT = Path("/work/.mirror/kaito-project+kaito/repo")  # kaito-project/kaito's history, where present


def _kaito(*args: str, check: bool = True) -> str:
    if not (KAITO_GIT / "HEAD").exists():
        pytest.skip(f"KAITO's source is not on this machine ({KAITO_GIT})")
    return subprocess.run(["git", "-C", str(KAITO_GIT), *args], check=check, capture_output=True, text=True).stdout


@pytest.mark.parametrize("path, needles", [
    # The condition the tool reads, its reasons, and the generation it is written for.
    ("api/v1beta1/condition_types.go", ['WorkspaceConditionTypeSucceeded ConditionType = ConditionType("WorkspaceSucceeded")',
                                        'WorkspaceConditionTypeTuningJobStatus ConditionType = ConditionType("JobStarted")']),
    ("pkg/workspace/controllers/workspace_controller.go", [
        'metav1.ConditionFalse, "workspaceFailed", "tuning job failed")',
        'metav1.ConditionTrue, "workspaceSucceeded", "workspace succeeds")',
        "ObservedGeneration: generation,",
        "snapshot.failed = job.Status.Failed > 0",  # one failed pod, while the Job may still retry
        "if err := c.Get(ctx, types.NamespacedName{Name: wObj.Name, Namespace: wObj.Namespace}, job)"]),
    # KAITO's tuning Job: label, revision annotation, no TTL or backoffLimit set.
    ("pkg/workspace/manifests/manifests.go", [
        "func GenerateTuningJobManifest(revisionNum string)",
        "kaitov1beta1.LabelWorkspaceName: ctx.Workspace.Name,",
        "kaitov1beta1.WorkspaceRevisionAnnotation: revisionNum,",
        '*metav1.NewControllerRef(ctx.Workspace, kaitov1beta1.GroupVersion.WithKind("Workspace")),']),
    ("api/v1beta1/labels.go", ['LabelWorkspaceName = KAITOPrefix + "workspace"',
                               'WorkspaceRevisionAnnotation = "workspace.kaito.io/revision"']),
])
def test_the_rules_match_kaitos_source(path: str, needles: list[str]):
    source = _kaito("show", f"{KAITO_COMMIT}:{path}")
    for needle in needles:
        assert needle in source, f"{path} no longer says {needle!r}: re-check infra/retire.py and docs/rendering.md"


def test_kaitos_tuning_job_sets_no_ttl_and_no_backoff_limit():
    """Its Job stays after it ends (the tool reads it) and retries with Kubernetes' default backoffLimit."""
    _kaito("cat-file", "-e", f"{KAITO_COMMIT}^{{commit}}")  # the pinned commit is there: an empty grep means something
    found = subprocess.run(["git", "-C", str(KAITO_GIT), "grep", "-l", "-e", "TTLSecondsAfterFinished", "-e",
                            "BackoffLimit", KAITO_COMMIT, "--", "pkg/workspace/"], capture_output=True, text=True)
    assert found.returncode in (0, 1), found.stderr  # 1: no match; anything else: git could not search
    assert [line for line in found.stdout.splitlines() if not line.endswith("_test.go")] == []


TUNING_FILES = sorted(p for root in ("tests/fixtures", "workloads") for p in (REPO_ROOT / root).rglob("*.y*ml")
                      if "kind: TuningJob" in p.read_text(encoding="utf-8", errors="replace"))


def test_the_edit_keeps_every_line_of_every_tuning_spec_in_the_repo():
    """On each TuningJob file the repository holds (examples and fixtures, odd layouts included), the edit
    either refuses with a clear message or yields the same YAML data plus `spec.retired: true`, and removes no
    line but a `retired: false` one."""
    import difflib

    import yaml

    from infra.retire import Finding, InputError, edited_text

    edited = refused = 0
    for path in TUNING_FILES:
        try:
            text = path.read_text(encoding="utf-8")
            docs = list(yaml.safe_load_all(text))
        except (yaml.YAMLError, ValueError):  # hostile fixtures: Latin-1 bytes, a 5000-digit number, ...
            continue
        if len(docs) != 1 or not isinstance(docs[0], dict) or not isinstance(docs[0].get("spec"), dict):
            continue
        try:
            new = edited_text(text, Finding("ns", "job", "succeeded", "retire", ""), str(path))
        except InputError as error:
            assert str(error).startswith(f"{path}:"), error
            refused += 1
            continue
        edited += 1
        expected = {**docs[0], "spec": {**docs[0]["spec"], "retired": True}}
        assert yaml.safe_load(new) == expected, path
        removed = [line for line in difflib.ndiff(text.splitlines(), new.splitlines()) if line.startswith("- ")]
        assert all("retired: false" in line for line in removed), (path, removed)
    assert edited > 100, (edited, refused)
