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
RUNNER_TOOLS = {"az", "docker", "git", "echo", "printf", "mkdir", "test", "cat", "sed", "tee", "set", "exit", "{", "}",
                "python",  # actions/setup-python
                "pulumi",  # pulumi/actions without `command` installs the CLI only
                "kubelogin",  # azure/use-kubelogin
                "kubectl", "gh", "grep"}  # preinstalled on GitHub's ubuntu runner images
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
                while words and re.match(r"^[A-Za-z_]+=", words[0]):
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
                assert command in (".venv/bin/python", ".venv/bin/kaito-gitops", ".venv/bin/pip"), where
            elif command == "python3":  # the runner's Python, for a standard-library script of the repository
                assert (REPO_ROOT / words[1]).is_file(), f"{where}: no script {words[1]}"
            else:
                assert command in RUNNER_TOOLS or (REPO_ROOT / command).is_file(), f"{where}: unknown command"


def test_venv_is_created_before_it_is_used(workflow):
    """`make test` or `make validate` (or an explicit `python -m venv .venv`) create .venv; a step using it
    must come after one of them."""
    path, doc = workflow
    for job_id, job in doc["jobs"].items():
        ready = False
        for step in job.get("steps", []):
            run = step.get("run", "")
            ready = ready or run.startswith("python -m venv .venv\n")
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
        if step.get("uses", "").startswith("pulumi/actions@") and "command" in with_:
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
            if step.get("uses", "").startswith("pulumi/actions@") and "command" in step["with"]:
                up[step["with"]["stack-name"]] = (job_id, job)
                assert step["with"]["command"] == "up"
    assert set(up) == {"dev", "prod"}
    (dev_id, dev), (prod_id, prod) = up["dev"], up["prod"]
    assert dev["environment"] == "dev" and prod["environment"] == "prod"
    assert dev_id in _ancestors(jobs, prod_id)
    assert "test" in _ancestors(jobs, dev_id)
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
    step = next(s for s in preview["steps"] if s.get("id") == "preview")
    assert 'pulumi preview --stack "$ENVIRONMENT"' in step["run"] and step["env"]["ENVIRONMENT"] == "${{ matrix.environment }}"
    assert "environment" not in preview, "previews must not wait for the prod environment's reviewers"
    script = next(s for s in jobs["comment"]["steps"] if s.get("uses", "").startswith("actions/github-script@"))
    from infra.review import MARKER
    assert MARKER in script["with"]["script"] and "updateComment" in script["with"]["script"]


# --- pipeline correctness (issue 9, item 7) --------------------------------------------------------------

def _workflow(trigger: str) -> dict:
    return next(d for d in map(_load, WORKFLOWS) if trigger in d["on"])


def _pulumi_jobs():
    """(workflow, job id, job, how it runs pulumi) for every job that runs the Pulumi CLI against a stack."""
    for path in WORKFLOWS:
        doc = _load(path)
        for job_id, job in doc["jobs"].items():
            for step in job.get("steps", []):
                if step.get("uses", "").startswith("pulumi/actions@") and "command" in step["with"]:
                    yield path.name, job_id, job, step["with"]["command"]
                elif re.search(r"^pulumi (preview|up)\b", step.get("run", ""), re.M):
                    yield path.name, job_id, job, re.search(r"^pulumi (preview|up)\b", step["run"], re.M)[1]


FORK_GUARD = "github.event.pull_request.head.repo.full_name == github.repository"


def test_pull_requests_from_forks_get_no_preview_and_no_comment():
    """GitHub gives a fork's pull_request run no secrets and a read-only GITHUB_TOKEN, and no OIDC token
    (docs.github.com: "Using secrets in GitHub Actions"; "OpenID Connect": id-token is not granted to forks)."""
    jobs = _workflow("pull_request")["jobs"]
    for job_id in ("preview", "comment"):
        assert FORK_GUARD in jobs[job_id]["if"], f"{job_id} must skip pull requests from forks"
    assert "if" not in jobs["test"], "forks still get the test suite"


def test_a_pending_prod_approval_does_not_block_later_dev_deploys():
    """A workflow-level concurrency group is held by a run while its prod job waits for reviewers, so every
    later merge would queue behind it (docs.github.com: "Control the concurrency of workflows and jobs").
    Each deploy job has its own group instead, never cancelled half-way."""
    doc = _deploy()
    assert "concurrency" not in doc, "a workflow-level group makes dev wait for the prod approval"
    groups = {}
    for _, job_id, job, command in _pulumi_jobs():
        if command == "up":
            assert job["concurrency"]["cancel-in-progress"] is False, job_id
            groups[job["environment"]] = job["concurrency"]["group"]
    assert set(groups) == {"dev", "prod"} and groups["dev"] != groups["prod"]


def test_a_failed_preview_fails_the_required_check_after_the_comment_is_posted():
    jobs = _workflow("pull_request")["jobs"]
    preview = next(s for s in jobs["preview"]["steps"] if s.get("id") == "preview")
    # GitHub's default `bash -e` has no pipefail: without it `| tee` would hide pulumi's exit code.
    assert preview["run"].startswith("set -o pipefail\n") and "| tee" in preview["run"]
    keep = next(s for s in jobs["preview"]["steps"] if "outcome" in s.get("run", ""))
    assert keep["if"] == "always()" and keep["env"]["OUTCOME"] == "${{ steps.preview.outcome }}"
    comment = jobs["comment"]
    assert comment["if"].startswith("always()") and "preview" in _needs(comment)
    # A job skipped by its `if:` reports success to a required check (docs.github.com, "Using conditions to
    # control job execution"): the comment job must not be skipped when `changes` fails, but fail instead.
    assert "needs.changes.result" not in comment["if"], "a failed `changes` would skip, and so pass, the check"
    post = next(i for i, s in enumerate(comment["steps"]) if s.get("uses", "").startswith("actions/github-script@"))
    gate = comment["steps"][-1]
    assert post < len(comment["steps"]) - 1, "the comment is posted before the check fails"
    assert "needs.preview.result == 'failure'" in gate["if"] and "exit 1" in gate["run"]
    assert gate["if"].startswith("always() &&") and "needs.changes.result != 'success'" in gate["if"]
    assert comment["name"] == "plan comment", "docs/gitops.md names `plan comment` as the required check"
    assert "`plan comment`" in (REPO_ROOT / "docs" / "gitops.md").read_text()


def test_a_failed_preview_stands_at_the_top_of_the_comment(tmp_path: Path):
    from infra import review

    (tmp_path / "dev.outcome").write_text("failure\n")
    (tmp_path / "dev.txt").write_text("error: resource kaito-dev-aks: AuthorizationFailed\n")
    (tmp_path / "prod.outcome").write_text("success\n")
    failed = [e for e in ("dev", "prod") if review.preview_status(tmp_path, e) != "success"]
    section = review.environment_section(review.EnvReview("dev", "HEAD", problems=["x"]))
    text = review.comment([section, ["### `prod`"]], "HEAD", ["dev", "prod"], failed)
    lines = text.splitlines()
    assert lines[:2] == [review.MARKER, "## kaito-gitops plan"]
    assert lines[3].startswith("❌ **`pulumi preview` failed for `dev`**"), lines[:5]
    assert "`prod`" not in lines[3]
    opened = "\n".join(review.environment_section(review.review_environment("dev", "HEAD"),
                                                  preview=review._previews(tmp_path, "dev")))
    assert "<details open><summary>pulumi preview</summary>" in opened and "AuthorizationFailed" in opened


def _torch_pin() -> str:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    return re.search(r'"(torch==[^"]+)"', text)[1]


def test_ci_installs_the_cpu_build_of_torch_before_make_test():
    """PyPI's torch wheel for Linux x86_64 depends on the nvidia-* CUDA wheels; PyTorch's own CPU index
    serves the same version without them (pytorch.org "Start locally", pip, CPU). Locally the pin resolves
    to the wheel the machine's pip finds (find-links), so the Makefile names no index."""
    seen = 0
    for path in WORKFLOWS:
        for job_id, job in _load(path)["jobs"].items():
            runs = [s.get("run", "") for s in job.get("steps", [])]
            if not any(re.search(r"\bmake test\b", r) for r in runs):
                continue
            seen += 1
            first = next(i for i, r in enumerate(runs) if re.search(r"\bmake test\b", r))
            cpu = [r for r in runs[:first] if "--index-url https://download.pytorch.org/whl/cpu" in r]
            assert cpu, f"{path.name}:{job_id}: make test without the CPU torch first"
            assert f" {_torch_pin()}" in cpu[0], f"{path.name}:{job_id}: torch pin differs from pyproject.toml"
    assert seen >= 2
    assert "download.pytorch.org" not in (REPO_ROOT / "Makefile").read_text()


SECRETS_PROVIDER = re.compile(r"^secretsprovider: (azurekeyvault://[a-z0-9-]+\.vault\.azure\.net/keys/[\w-]+)$", re.M)


def test_one_secrets_provider_per_environment_in_stack_files_workflows_and_docs():
    """Each stack encrypts with its own Key Vault key, named once in its stack file. `encryptionsalt` belongs
    to the passphrase provider (pulumi/pulumi pkg/secrets/passphrase/manager.go); a cloud provider keeps
    `encryptedkey`, written by `pulumi stack init` (pkg/secrets/cloud/manager.go)."""
    from infra.plan import stacks

    docs = (REPO_ROOT / "docs" / "infrastructure.md").read_text() + (REPO_ROOT / "docs" / "gitops.md").read_text()
    providers = {}
    for env in stacks():
        text = (REPO_ROOT / f"Pulumi.{env}.yaml").read_text()
        match = SECRETS_PROVIDER.search(text)
        assert match, f"Pulumi.{env}.yaml: no azurekeyvault secretsprovider"
        assert "encryptionsalt" not in text, f"Pulumi.{env}.yaml: encryptionsalt is the passphrase provider's"
        providers[env] = match[1]
        assert f"`{match[1]}`" in docs, f"docs do not name {env}'s secrets provider {match[1]}"
    assert len(set(providers.values())) == len(providers), "one key per environment"
    for path in WORKFLOWS:
        text = path.read_text()
        for other in ("PULUMI_CONFIG_PASSPHRASE", "PULUMI_ACCESS_TOKEN", "secrets-provider", "--secrets-provider"):
            assert other not in text, f"{path.name}: {other} would bypass the stack file's secrets provider"


def test_every_pulumi_job_uses_its_environments_state_and_kubelogin_with_github_oidc():
    """kubelogin's workloadidentity mode asks GitHub's token endpoint for a fresh assertion on each call when
    ACTIONS_ID_TOKEN_REQUEST_URL/TOKEN are set (Azure/kubelogin pkg/internal/token/provider.go,
    githubactionscredential.go); AAD_LOGIN_METHOD overrides the kubeconfig's --login (options.go)."""
    seen = set()
    for name, job_id, job, command in _pulumi_jobs():
        env = job["env"]
        where = f"{name}:{job_id}"
        assert job["permissions"]["id-token"] == "write", where
        assert env["AAD_LOGIN_METHOD"] == "workloadidentity", where
        assert env["AZURE_CLIENT_ID"] == env["ARM_CLIENT_ID"] and env["AZURE_TENANT_ID"] == env["ARM_TENANT_ID"], where
        assert any(s.get("uses", "").startswith("azure/use-kubelogin@") for s in job["steps"]), where
        stack = job.get("environment") or "${{ matrix.environment }}"
        assert env["PULUMI_BACKEND_URL"] == \
            f"azblob://pulumi-{stack}?storage_account=${{{{ vars.PULUMI_STATE_ACCOUNT }}}}", where
        seen.add((name, command))
    assert {("pull-request.yml", "preview"), ("deploy.yml", "up"), ("drift.yml", "preview")} <= seen


def test_the_preview_identity_never_deploys_and_only_reads_state():
    for name, job_id, job, command in _pulumi_jobs():
        preview_identity = job["env"]["ARM_CLIENT_ID"] == "${{ vars.AZURE_PREVIEW_CLIENT_ID }}"
        assert preview_identity == (command == "preview"), f"{name}:{job_id}: {command} as the wrong identity"
    script = (REPO_ROOT / "scripts" / "bootstrap.sh").read_text()
    preview_roles = re.findall(r'assign "\$PREVIEW_PRINCIPAL" \w+ "?([^"$]+?)"? "\$(\w+)"', script)
    assert ("Storage Blob Data Reader", "STATE_SCOPE") in preview_roles
    assert not [r for r in preview_roles if "Contributor" in r[0] or "Owner" in r[0]], preview_roles


def test_drift_is_checked_on_a_schedule_for_every_stack_including_kaito_node_pools():
    from infra.plan import stacks

    doc = _workflow("schedule")
    assert doc["on"]["schedule"][0]["cron"] and "workflow_dispatch" in doc["on"]
    job = doc["jobs"]["drift"]
    assert job["strategy"]["matrix"]["environment"] == stacks()
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert re.search(r"pulumi preview --stack \"\$ENVIRONMENT\" --refresh --expect-no-changes", runs)
    assert "az aks nodepool list" in runs and "python -m infra.drift node-pools" in runs


ACTION_INPUTS = yaml.safe_load((Path(__file__).parent / "action-inputs.yaml").read_text())


def test_every_action_gets_only_inputs_its_action_yml_declares(workflow):
    path, doc = workflow
    for job_id, _, step in _steps(doc):
        uses = step.get("uses", "")
        if not uses or uses.startswith("./"):
            continue
        assert uses in ACTION_INPUTS, f"{path.name}:{job_id}: {uses} is not in action-inputs.yaml (regenerate it)"
        action = ACTION_INPUTS[uses]
        given = set(step.get("with", {}))
        assert given <= set(action["inputs"]), f"{path.name}:{job_id}: {uses} has no input {given - set(action['inputs'])}"
        assert set(action["required"]) <= given, f"{path.name}:{job_id}: {uses} needs {action['required']}"
        assert action["runs"] != "node20", f"{uses}: GitHub removes the node20 runtime"


def test_stack_outputs_the_workflows_read_are_exported():
    program = (REPO_ROOT / "infra" / "program.py").read_text()
    read = {name for path in WORKFLOWS for name in re.findall(r"pulumi stack output (\w+)", path.read_text())}
    assert read, "the drift check reads the cluster name from the stack"
    for name in read:
        assert f'pulumi.export("{name}"' in program, f"no stack output {name!r} (infra/program.py)"


PROD_RUNNER = ["self-hosted", "kaito-gitops-prod"]


def test_every_job_that_talks_to_prod_runs_on_the_runner_its_api_server_admits():
    """prod's API server admits its runner subnet's NAT gateway IP (and the cluster's own outbound IP); GitHub's
    hosted runners have no fixed addresses (docs/infrastructure.md, "Reaching the API server"). A job whose
    labels match no online runner waits in the queue (docs.github.com, "Choosing the runner for a job"), so
    there is no fallback that would fail on a timeout instead."""
    seen = 0
    for name, job_id, job, _ in _pulumi_jobs():
        if job.get("environment") == "prod":
            assert job["runs-on"] == PROD_RUNNER, f"{name}:{job_id}"
        elif "matrix" in job.get("strategy", {}):
            assert job["runs-on"] == ("${{ matrix.environment == 'prod' && "
                                      "fromJSON('[\"self-hosted\", \"kaito-gitops-prod\"]') || 'ubuntu-latest' }}"), \
                f"{name}:{job_id}"
        else:
            assert job["runs-on"] == "ubuntu-latest", f"{name}:{job_id}"
            continue
        seen += 1
    assert seen == 3
    label = PROD_RUNNER[1]
    lint = yaml.safe_load((REPO_ROOT / ".github" / "actionlint.yaml").read_text())
    assert lint["self-hosted-runner"]["labels"] == [label]
    runbook = (REPO_ROOT / "docs" / "infrastructure.md").read_text()
    assert f"--labels {label}" in runbook, "the runbook registers the runner with the label the jobs ask for"
