"""The GitHub workflows: they parse, call only what exists, pin every action, ask for least privilege,
and deploy prod only after dev. GitHub is not reachable here, so these checks are what stands between a
typo and a broken merge."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from infra.cli import COMMANDS
from infra.specs import REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)\s*(?P<comment>#.*)?$")
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")
# Tools a GitHub-hosted ubuntu runner has; anything else must be a repo file, a make target or our CLI.
RUNNER_TOOLS = {"az", "docker", "git", "echo", "printf", "mkdir", "test", "cat", "sed"}
# What a job may be granted; `write` only where named.
WRITE_ALLOWED = {"id-token", "pull-requests"}


def _load(path: Path) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); normalise it back.
    doc = yaml.safe_load(path.read_text())
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _steps(doc: dict):
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


def _make_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w.-]*):", text, re.M))


def _commands(script: str):
    """Each simple command of a run script as its words, with ${{ }} expressions and $VARS kept as words."""
    script = re.sub(r"\$\{\{.*?\}\}", "EXPR", script.replace("\\\n", " "))
    substituted = re.findall(r"\$\(([^)]*)\)", script)  # $(...) runs a command too
    script = re.sub(r"\$\([^)]*\)", "SUBST", script)
    for line in script.splitlines() + substituted:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        redirected = False
        for token in list(lexer) + [";"]:
            if token in ("&&", "||", ";", "|"):
                while words and re.match(r"^[A-Z_]+=", words[0]):
                    words = words[1:]
                if words:
                    yield words
                words, redirected = [], False
            elif token in (">", ">>", "<", "2>"):
                redirected = True
            elif not redirected:
                words.append(token)


@pytest.fixture(params=WORKFLOWS, ids=lambda p: p.name)
def workflow(request) -> tuple[Path, dict]:
    return request.param, _load(request.param)


def test_there_is_a_pull_request_and_a_deploy_workflow():
    triggers = [set(_load(p)["on"]) for p in WORKFLOWS]
    assert {"pull_request"} in triggers and any("push" in t for t in triggers)


def test_every_action_is_pinned_to_a_commit_with_its_tag_in_a_comment(workflow):
    path, _ = workflow
    found = 0
    for line in path.read_text().splitlines():
        match = USES.match(line)
        if not match or match["ref"].startswith("./"):
            continue
        found += 1
        assert PINNED.match(match["ref"]), f"{path.name}: {match['ref']} is not pinned to a 40-hex commit"
        assert match["comment"] and re.search(r"v\d+(\.\d+)*", match["comment"]), \
            f"{path.name}: {match['ref']} has no '# vX.Y.Z' comment naming its tag"
    assert found


def test_run_steps_call_only_what_exists(workflow):
    path, doc = workflow
    targets = _make_targets()
    for job_id, _, step in _steps(doc):
        for words in _commands(step.get("run", "")):
            command = words[0]
            where = f"{path.name}:{job_id}: {' '.join(words)}"
            if command == "make":
                missing = [w for w in words[1:] if not w.startswith("-") and "=" not in w and w not in targets]
                assert not missing, f"{where}: no make target {missing}"
            elif command.endswith("kaito-gitops"):
                assert words[1] in COMMANDS, f"{where}: no kaito-gitops sub-command {words[1]!r}"
                assert (REPO_ROOT / "infra" / "commands" / f"{COMMANDS[words[1]]}.py").is_file(), where
            elif command.endswith("/python") and words[1:2] == ["-m"]:
                module = REPO_ROOT.joinpath(*words[2].split("."))
                assert module.with_suffix(".py").is_file() or (module / "__main__.py").is_file(), \
                    f"{where}: no module {words[2]}"
            elif command.startswith(".venv/"):
                assert command in (".venv/bin/python", ".venv/bin/kaito-gitops"), where
            elif command == "python3":  # the runner's Python, for a standard-library script of the repository
                assert (REPO_ROOT / words[1]).is_file(), f"{where}: no script {words[1]}"
            else:
                assert command in RUNNER_TOOLS or (REPO_ROOT / command).is_file(), f"{where}: unknown command"


def test_venv_is_created_before_it_is_used(workflow):
    """`make test` or `make validate` create .venv; a step using it must come after one of them."""
    path, doc = workflow
    for job_id, job in doc["jobs"].items():
        ready = False
        for step in job.get("steps", []):
            run = step.get("run", "")
            if ".venv/" in run:
                assert ready, f"{path.name}:{job_id}: uses .venv before make creates it"
            ready = ready or bool(re.search(r"\bmake (test|validate|plan|render)\b", run))


def test_referenced_repository_files_exist(workflow):
    path, doc = workflow
    for job_id, _, step in _steps(doc):
        with_ = step.get("with", {})
        for key in ("file", "work-dir"):
            if key in with_:
                assert (REPO_ROOT / with_[key]).exists(), f"{path.name}:{job_id}: {key} {with_[key]} is missing"
        if step.get("uses", "").startswith("pulumi/actions@"):
            work_dir = REPO_ROOT / with_["work-dir"]
            assert (work_dir / "Pulumi.yaml").is_file(), f"{path.name}:{job_id}: no Pulumi project in {work_dir}"
            stack = with_["stack-name"]
            if "${{" not in stack:
                assert (work_dir / f"Pulumi.{stack}.yaml").is_file(), f"{path.name}:{job_id}: no stack {stack}"


def _permissions(scope: dict) -> dict:
    return scope.get("permissions", {})


def test_permissions_are_least_privilege(workflow):
    path, doc = workflow
    top = _permissions(doc)
    assert top == {"contents": "read"}, f"{path.name}: top-level permissions must be contents: read"
    for job_id, job in doc["jobs"].items():
        perms = _permissions(job)
        assert perms != "write-all" and isinstance(perms, dict), f"{path.name}:{job_id}"
        writes = {k for k, v in perms.items() if v == "write"}
        assert writes <= WRITE_ALLOWED, f"{path.name}:{job_id}: may not write {writes - WRITE_ALLOWED}"
        uses = [s.get("uses", "") for s in job.get("steps", [])]
        logs_in = any(u.startswith("azure/login@") for u in uses)
        assert ("id-token" in writes) == logs_in, f"{path.name}:{job_id}: id-token: write exactly where azure/login runs"
        comments = any(u.startswith("actions/github-script@") for u in uses)
        assert ("pull-requests" in writes) == comments, f"{path.name}:{job_id}: pull-requests: write only to comment"


def test_azure_login_uses_oidc_not_a_stored_secret(workflow):
    path, doc = workflow
    for job_id, _, step in _steps(doc):
        if step.get("uses", "").startswith("azure/login@"):
            assert set(step["with"]) == {"client-id", "tenant-id", "subscription-id"}, f"{path.name}:{job_id}"


def _needs(job: dict) -> set[str]:
    needs = job.get("needs", [])
    return {needs} if isinstance(needs, str) else set(needs)


def _ancestors(jobs: dict, job_id: str) -> set[str]:
    seen: set[str] = set()
    todo = list(_needs(jobs[job_id]))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += _needs(jobs[current])
    return seen


def _deploy() -> dict:
    return next(d for d in map(_load, WORKFLOWS) if "push" in d["on"])


def test_prod_deploys_only_after_dev_and_behind_its_environment():
    jobs = _deploy()["jobs"]
    up = {}
    for job_id, job in jobs.items():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("pulumi/actions@"):
                up[step["with"]["stack-name"]] = (job_id, job)
                assert step["with"]["command"] == "up"
    assert set(up) == {"dev", "prod"}
    (dev_id, dev), (prod_id, prod) = up["dev"], up["prod"]
    assert dev["environment"] == "dev" and prod["environment"] == "prod"
    assert dev_id in _ancestors(jobs, prod_id)
    assert "test" in _ancestors(jobs, dev_id)
    assert _deploy()["concurrency"]["cancel-in-progress"] is False
    assert _deploy()["on"]["push"]["branches"] == ["main"]


def test_trainer_image_is_passed_by_digest_to_both_stacks():
    jobs = _deploy()["jobs"]
    build = next(s for s in jobs["trainer-image"]["steps"] if s.get("uses", "").startswith("docker/build-push-action@"))
    assert build["with"]["file"] == "trainer/Dockerfile" and build["with"]["push"] is True
    assert build["with"]["tags"].endswith(":${{ steps.tag.outputs.tag }}")  # by content: test_bundled_image_tag.py
    for job_id, env in (("deploy-dev", "dev"), ("deploy-prod", "prod")):
        steps = jobs[job_id]["steps"]
        up = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("pulumi/actions@"))
        pin = steps[up - 1]
        assert "outputs.image" in pin["env"]["IMAGE"], job_id
        assert f"s|^trainerImage: .*|trainerImage: $IMAGE|\" workloads/{env}/_defaults.yaml" in pin["run"], job_id
        assert f"kaito-gitops validate workloads/{env}" in pin["run"], job_id
        assert re.search(r"^trainerImage: ", (REPO_ROOT / "workloads" / env / "_defaults.yaml").read_text(), re.M)
    assert "@$DIGEST" in jobs["trainer-image"]["steps"][-1]["run"]


def test_pull_requests_plan_only_touched_environments_and_preview_each():
    doc = next(d for d in map(_load, WORKFLOWS) if "pull_request" in d["on"])
    jobs = doc["jobs"]
    preview = jobs["preview"]
    assert preview["strategy"]["matrix"]["environment"] == "${{ fromJSON(needs.changes.outputs.environments) }}"
    step = next(s for s in preview["steps"] if s.get("uses", "").startswith("pulumi/actions@"))
    assert step["with"]["command"] == "preview"
    assert "environment" not in preview, "previews must not wait for the prod environment's reviewers"
    script = next(s for s in jobs["comment"]["steps"] if s.get("uses", "").startswith("actions/github-script@"))
    from infra.review import MARKER
    assert MARKER in script["with"]["script"] and "updateComment" in script["with"]["script"]
