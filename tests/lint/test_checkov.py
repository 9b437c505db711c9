"""checkov over what we deploy: the manifests `kaito-gitops render` writes for each environment and
trainer/Dockerfile. Every finding is either fixed or listed with its reason in checkov-skips.yaml; a
listed finding that no longer occurs fails too, so the list stays true. checkov lives in its own venv
(.venv/tools-checkov, made by the Makefile) because its pinned dependencies conflict with ours."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from infra.cli import main as cli
from infra.plan import stacks
from infra.specs import REPO_ROOT

CHECKOV = REPO_ROOT / ".venv" / "tools-checkov" / "bin" / "checkov"
SKIPS = yaml.safe_load((Path(__file__).parent / "checkov-skips.yaml").read_text())["skips"]


def _checkov(directory: Path) -> dict[str, list[dict]]:
    """Failed checks by check ID. --skip-download: no call to Prisma Cloud (offline, same checks)."""
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: `make test` installs it (Makefile, CHECKOV_VERSION)"
    result = subprocess.run([str(CHECKOV), "-d", str(directory), "--framework", "kubernetes", "dockerfile",
                             "--output", "json", "--quiet", "--skip-download"], capture_output=True, text=True)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout) if result.stdout.strip() else []
    failed: dict[str, list[dict]] = {}
    for report in reports if isinstance(reports, list) else [reports]:
        assert not report["summary"]["parsing_errors"], report["summary"]
        for check in report["results"].get("failed_checks", []):
            failed.setdefault(check["check_id"], []).append(check)
    return failed


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("checkov")
    for env in stacks():
        assert cli(["render", "--env", env, "--out", str(root / env)]) == 0
    (root / "trainer").mkdir()
    shutil.copy(REPO_ROOT / "trainer" / "Dockerfile", root / "trainer" / "Dockerfile")
    return root


def test_every_skip_says_why():
    ids = [s["id"] for s in SKIPS]
    assert len(ids) == len(set(ids)), "a check is listed twice"
    for skip in SKIPS:
        assert skip["status"] in ("accepted", "open") and len(skip["reason"].split()) >= 3, skip


def test_rendered_manifests_and_dockerfile_have_no_unlisted_finding(deployed: Path):
    failed = _checkov(deployed)
    listed = {s["id"] for s in SKIPS}
    new = {cid: sorted({f"{c['file_path']} {c['resource']}" for c in checks})
           for cid, checks in failed.items() if cid not in listed}
    assert not new, f"checkov findings to fix or list in checkov-skips.yaml with a reason: {new}"
    stale = listed - set(failed)
    assert not stale, f"checkov no longer reports {sorted(stale)}: delete them from checkov-skips.yaml"


def test_checkov_really_checks_a_bad_manifest(tmp_path: Path):
    """A privileged root pod and a Dockerfile that adds a remote file: checkov reports both."""
    (tmp_path / "pod.yaml").write_text(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  containers:\n"
        "  - name: bad\n    image: busybox@sha256:" + "0" * 64 + "\n"
        "    securityContext:\n      privileged: true\n")
    (tmp_path / "Dockerfile").write_text("FROM busybox\nADD https://example.com/x /x\nUSER 10001\n")
    failed = _checkov(tmp_path)
    assert "CKV_K8S_16" in failed, sorted(failed)  # container should not be privileged
    assert "CKV_DOCKER_4" in failed, sorted(failed)  # COPY instead of ADD
