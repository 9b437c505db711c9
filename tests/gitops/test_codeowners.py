"""CODEOWNERS: every team folder (and every team with a quota) is owned by that team, and the platform
team owns the infrastructure, the pipelines and each environment's defaults."""

from __future__ import annotations

import fnmatch

import pytest
import yaml

from infra.specs import DEFAULTS_FILE, REPO_ROOT, WORKLOADS_DIR, environments

CODEOWNERS = REPO_ROOT / ".github" / "CODEOWNERS"
PLATFORM = "@kaito-gitops/platform"


def _rules() -> list[tuple[str, list[str]]]:
    rules = []
    for line in CODEOWNERS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            pattern, *owners = line.split()
            rules.append((pattern, owners))
    return rules


def _matches(pattern: str, path: str) -> bool:
    """GitHub's CODEOWNERS matching for the pattern forms used here."""
    if pattern == "*":
        return True
    anchored = pattern.lstrip("/")
    if anchored.endswith("/"):
        return fnmatch.fnmatch(path, anchored + "*")
    return fnmatch.fnmatch(path, anchored)


def owners(path: str) -> list[str]:
    """The owners of a repository path: the last matching rule wins."""
    found: list[str] = []
    for pattern, who in _rules():
        if _matches(pattern, path):
            found = who
    return found


def _team_folders() -> list[tuple[str, str]]:
    return [(env, p.name) for env in environments(WORKLOADS_DIR)
            for p in sorted((WORKLOADS_DIR / env).iterdir()) if p.is_dir()]


def _quota_teams() -> list[tuple[str, str]]:
    out = []
    for env in environments(WORKLOADS_DIR):
        defaults = yaml.safe_load((WORKLOADS_DIR / env / DEFAULTS_FILE).read_text())
        out += [(env, team) for team in defaults.get("teams", {})]
    return out


def test_the_matcher_follows_last_match_wins():
    assert owners("README.md") == [PLATFORM]
    assert owners("workloads/dev/ml-platform/a.yaml") == ["@kaito-gitops/ml-platform"]
    assert owners("workloads/dev/ml-platform-two/a.yaml") == [PLATFORM]  # a folder rule matches the folder only


@pytest.mark.parametrize("env, team", sorted(set(_team_folders()) | set(_quota_teams())))
def test_every_team_folder_is_owned_by_its_team(env: str, team: str):
    assert owners(f"workloads/{env}/{team}/some-workload.yaml") == [f"@kaito-gitops/{team}"], \
        f"add '/workloads/{env}/{team}/ @kaito-gitops/{team}' to .github/CODEOWNERS"


@pytest.mark.parametrize("path", [
    "infra/program.py", "Pulumi.prod.yaml", "Pulumi.yaml", ".github/workflows/deploy.yml", ".github/CODEOWNERS",
    "schemas/tuning-job.schema.json", "trainer/Dockerfile", "workloads/dev/_defaults.yaml",
    "workloads/prod/_defaults.yaml",
])
def test_platform_owns_infrastructure_pipelines_and_defaults(path: str):
    assert owners(path) == [PLATFORM]


def test_there_are_team_folders_to_check():
    assert ("dev", "ml-platform") in _team_folders()


def test_every_rule_points_at_something_that_exists_or_a_quota_team():
    """A stale rule (a renamed team) would silently stop protecting anything."""
    allowed = {f"/workloads/{env}/{team}/" for env, team in _quota_teams()}
    for pattern, _ in _rules():
        if "*" in pattern:
            continue
        assert (REPO_ROOT / pattern.strip("/")).exists() or pattern in allowed, pattern
