"""The pull-request plan comment: a new tuning spec is named with its GPU hours and cost, a removed spec
shows as a removal (what `pulumi up` will delete), broken specs and quotas are called out, and the
environments a change touches are the ones planned."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from infra import review
from infra.specs import REPO_ROOT

NEW_JOB = """\
apiVersion: kaito-gitops.dev/v1alpha1
kind: TuningJob
metadata: {name: support-bot, team: search-ranking}
spec:
  baseModel: phi-3-mini-128k-instruct
  method: qlora
  data:
    train:
      urls: [https://example.com/support.parquet]
      examples: 20000
  output:
    image: {repository: adapters/support-bot, tag: v1}
  hyperparameters: {epochs: 2}
"""


def _plan(repo: Path, env: str = "dev") -> str:
    r = review.review_environment(env, "HEAD", repo=repo, root=repo / "workloads")
    return review.comment([review.environment_section(r, region="eastus")], "HEAD", [env])


def test_a_new_tuning_spec_is_named_with_its_workspace_gpu_hours_and_cost(repo: Path):
    (repo / "workloads/dev/search-ranking").mkdir()
    (repo / "workloads/dev/search-ranking/support-bot.yaml").write_text(NEW_JOB)
    text = _plan(repo)
    assert text.startswith(review.MARKER + "\n")
    assert "| ➕ added | `support-bot` | TuningJob | search-ranking |" in text
    assert "**added**: `Workspace search-ranking/support-bot`" in text  # the KAITO tuning Workspace, in the diff
    assert "<details><summary>Rendered Kubernetes objects" in text
    from infra import pricing
    from infra.specs import load_environment
    est = pricing.estimate_tuning(load_environment("dev", repo / "workloads").by_name("support-bot"), "eastus")
    row = next(line for line in text.splitlines() if line.startswith("| `support-bot` | Standard_NC24ads_A100_v4"))
    assert f"| 20,000 × 2 | {est.gpu_hours:,.1f} | ${est.cost('regular'):,.2f} | ${est.cost('spot'):,.2f} |" in row
    assert "Estimates only" in text and "2026-11-21" in text
    # Unchanged workloads are not costed again.
    assert "`phi3-dolly-qlora` |" not in text


def test_without_the_examples_hint_the_job_is_unknown_size_and_priced_per_hour(repo: Path):
    (repo / "workloads/dev/search-ranking").mkdir()
    (repo / "workloads/dev/search-ranking/support-bot.yaml").write_text(NEW_JOB.replace("      examples: 20000\n", ""))
    row = next(line for line in _plan(repo).splitlines() if line.startswith("| `support-bot` |"))
    assert "unknown size" in row and "$3.67/h" in row and "$0.44/h" in row


def test_a_removed_spec_shows_as_a_removal(repo: Path):
    """Pulumi creates objects only from the current specs, so what the plan lists as removed is deleted."""
    (repo / "workloads/dev/ml-platform/phi3-dolly.yaml").unlink()
    text = _plan(repo)
    assert "| ➖ removed | `phi3-dolly` | InferenceDeployment | ml-platform |" in text
    assert "**removed**: `Workspace ml-platform/phi3-dolly`" in text
    assert "**Workloads**: 0 added, 0 changed, 1 removed" in text


def test_a_changed_spec_shows_as_changed_with_its_diff(repo: Path):
    path = repo / "workloads/dev/ml-platform/phi3-dolly-qlora.yaml"
    path.write_text(path.read_text().replace("epochs: 1", "epochs: 3"))
    text = _plan(repo)
    assert "| ✏️ changed | `phi3-dolly-qlora` | TuningJob | ml-platform |" in text
    assert "+        num_train_epochs: 3" in text
    assert "| 15,011 × 3 |" in text


def test_no_change_says_so(repo: Path):
    text = _plan(repo)
    assert "**Workloads**: no change." in text and "<details>" not in text


def test_a_spec_over_its_team_quota_is_refused_with_a_clear_error(repo: Path, monkeypatch, capsys):
    """End to end: search-ranking may hold 2 GPUs in dev; a deployment asking for 3 is refused by
    validate (exit 1, file, line, field, fix) and the plan comment says it cannot deploy."""
    folder = repo / "workloads/dev/search-ranking"
    folder.mkdir()
    (folder / "ranker.yaml").write_text(
        "apiVersion: kaito-gitops.dev/v1alpha1\nkind: InferenceDeployment\n"
        "metadata: {name: ranker, team: search-ranking}\n"
        "spec:\n  preset: phi-3-mini-128k-instruct\n  replicas: 3\n")
    monkeypatch.setattr("infra.specs.WORKLOADS_DIR", repo / "workloads")
    from infra.cli import main
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "ranker.yaml:3: $.metadata.team: team 'search-ranking' is over its maxGPUs quota: 3 GPUs" in out
    assert "raise teams.search-ranking.maxGPUs in _defaults.yaml" in out
    text = _plan(repo)
    assert "❌ **The specs do not validate**" in text and "over its maxGPUs quota" in text


def test_a_team_at_its_quota_is_warned(repo: Path):
    (repo / "workloads/dev/search-ranking").mkdir()
    (repo / "workloads/dev/search-ranking/support-bot.yaml").write_text(NEW_JOB)  # its one tuning job
    assert "team `search-ranking` is at its `maxConcurrentTuningJobs` quota (1 of 1)" in _plan(repo)


@pytest.mark.parametrize("limit, warned", [(1, True), (720, False)])
def test_a_bundled_job_estimated_past_its_deadline_is_warned(repo: Path, limit: int, warned: bool):
    """The bundled Job's activeDeadlineSeconds is maxTrainingHours: a run estimated longer would be stopped."""
    defaults = repo / "workloads/dev/_defaults.yaml"
    text = defaults.read_text()
    assert "\nmaxTrainingHours: 72\n" in text
    defaults.write_text(text.replace("\nmaxTrainingHours: 72\n", f"\nmaxTrainingHours: {limit}\n"))
    (repo / "workloads/dev/search-ranking").mkdir()
    (repo / "workloads/dev/search-ranking/support-bot.yaml").write_text(
        NEW_JOB.replace("  baseModel:", "  engine: bundled\n  baseModel:").replace("examples: 20000", "examples: 200000"))
    from infra import pricing
    from infra.specs import load_environment
    hours = pricing.estimate_tuning(load_environment("dev", repo / "workloads").by_name("support-bot"), None).hours
    assert 1 < hours < 720
    expected = (f"`support-bot` (engine bundled) is estimated at {hours:.0f} h, longer than maxTrainingHours "
                f"({limit} h, _defaults.yaml)")
    assert (expected in _plan(repo)) is warned


@pytest.mark.parametrize("changed, expected", [
    (["workloads/dev/ml-platform/x.yaml"], ["dev"]),
    (["workloads/prod/_defaults.yaml", "docs/x.md"], ["prod"]),
    (["workloads/dev/a.yaml", "workloads/prod/b/c.yaml"], ["dev", "prod"]),
    (["infra/program.py"], ["dev", "prod"]),
    (["Pulumi.prod.yaml"], ["dev", "prod"]),
    (["trainer/Dockerfile"], ["dev", "prod"]),
    (["schemas/tuning-job.schema.json"], ["dev", "prod"]),
    (["docs/gitops.md", "README.md", "tests/gitops/test_review.py"], []),
    (["workloads/staging/x.yaml"], []),  # not an environment (no folder in the tree)
])
def test_affected_environments(changed, expected):
    assert review.affected_environments(changed, ["dev", "prod"]) == expected


def test_changed_files_covers_commits_and_uncommitted_work(repo: Path, git):
    git(repo, "checkout", "-qb", "feature")
    (repo / "workloads/prod/ml-platform/new.yaml").write_text("x: 1\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "feature")
    (repo / "workloads/dev/untracked.yaml").write_text("x: 1\n")
    base = git(repo, "rev-parse", "HEAD~1").strip()
    assert review.changed_files(base, repo) == ["workloads/dev/untracked.yaml", "workloads/prod/ml-platform/new.yaml"]
    with pytest.raises(review.RefError):
        review.changed_files("no-such-ref", repo)


def test_the_command_line_writes_the_comment_and_reports_bad_input(tmp_path: Path, capsys):
    assert review.main(["comment", "--base", "HEAD", "--env", "dev", "--out", str(tmp_path / "plan.md")]) == 0
    written = (tmp_path / "plan.md").read_text()
    assert written.startswith(review.MARKER) and "**Azure resources** (westus3" in written
    assert review.main(["comment", "--base", "HEAD", "--env", "staging"]) == 2
    assert "unknown environment(s) staging" in capsys.readouterr().err
    assert review.main(["envs", "--base", "no-such-ref"]) == 2
    assert "cannot diff against 'no-such-ref'" in capsys.readouterr().err


def test_a_failed_preview_is_reported_not_hidden(tmp_path: Path):
    (tmp_path / "dev.outcome").write_text("failure\n")
    (tmp_path / "dev.txt").write_text("error: no credentials\n")
    assert "did not succeed (failure)" in review._previews(tmp_path, "dev")
    (tmp_path / "prod.outcome").write_text("success\n")
    (tmp_path / "prod.txt").write_text("+ 1 to create\n")
    assert review._previews(tmp_path, "prod") == "+ 1 to create\n"
    assert "did not succeed (missing)" in review._previews(tmp_path, "staging")


def test_an_oversized_comment_is_cut_below_githubs_limit():
    huge = [["x" * 1000] * 100]
    text = review.comment(huge, "HEAD", ["dev"])
    assert len(text) < 65_536 and "cut:" in text


def test_a_change_in_the_stack_config_is_listed_key_by_key(repo: Path, git):
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", repo / "Pulumi.dev.yaml")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "stack")
    assert "no change in `Pulumi.dev.yaml`" in "\n".join(review.stack_config_lines("dev", "HEAD", repo))
    path = repo / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("maxCount: 2", "maxCount: 4"))
    lines = "\n".join(review.stack_config_lines("dev", "HEAD", repo))
    assert "| `kaito-gitops:gpuPools` |" in lines and '"maxCount": 2' in lines and '"maxCount": 4' in lines
    assert "is new against" in "\n".join(review.stack_config_lines("prod", "HEAD", repo))


def test_a_stack_file_of_nested_aliases_is_not_expanded(repo: Path, git):
    """Nine levels of nine aliases would be 387 million values once compared and printed."""
    shutil.copy(REPO_ROOT / "Pulumi.dev.yaml", repo / "Pulumi.dev.yaml")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "stack")
    laughs = ["config:", "  kaito-gitops:a: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    laughs += [f"  kaito-gitops:b{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    (repo / "Pulumi.dev.yaml").write_text("\n".join(laughs) + "\n")
    lines = "\n".join(review.stack_config_lines("dev", "HEAD", repo))
    assert "is not a valid stack file" in lines


def test_bundled_jobs_beyond_their_pools_gpus_are_warned():
    """dev's gpua100 pool scales to 2 single-GPU nodes: three bundled jobs at once cannot all run."""
    from infra.model import Environment
    from infra.plan import build_plan

    plan = build_plan("dev")
    assert review.capacity_warnings(plan) == []
    job = plan.environment.by_name("phi3-dolly-bundled")
    extra = [dataclasses.replace(job, name=f"copy-{i}") for i in range(2)]
    crowded = dataclasses.replace(plan, environment=Environment("dev", plan.environment.defaults,
                                                                plan.environment.workloads + extra))
    (warning,) = review.capacity_warnings(crowded)
    assert "pool `gpua100` need 3 GPUs at once but it scales to 2" in warning
    text = "\n".join(review.plan_section(crowded, "HEAD"))
    assert "⚠️ bundled jobs on pool `gpua100`" in text and "**Azure resources** (westus3" in text
