"""A merge that does not change a bundled Job must not restart it: the trainer image is tagged by what the
trainer runs (infra/trainer_image.py), and the deploy workflow builds only a new tag and pins that digest."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.trainer_image import trainer_tag

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / ".github" / "workflows" / "deploy.yml"


@pytest.fixture
def checkout(tmp_path) -> Path:
    shutil.copytree(REPO / "trainer", tmp_path / "trainer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "README.md").write_text("readme\n")
    return tmp_path


def test_tag_ignores_what_the_trainer_does_not_run(checkout):
    before = trainer_tag(checkout)
    (checkout / "README.md").write_text("a new paragraph\n")
    (checkout / "trainer" / "__pycache__").mkdir()
    (checkout / "trainer" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    pyproject = checkout / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pytest>=8",', '"pytest>=8",\n    "another-dev-tool",'))
    assert "another-dev-tool" in pyproject.read_text()
    assert trainer_tag(checkout) == before


@pytest.mark.parametrize("change", ["code", "dockerfile", "dependency", "gpu-dependency"])
def test_tag_follows_what_the_trainer_runs(checkout, change):
    before = trainer_tag(checkout)
    if change == "code":
        path = checkout / "trainer" / "train.py"
        path.write_text(path.read_text() + "\n# changed\n")
    elif change == "dockerfile":
        path = checkout / "trainer" / "Dockerfile"
        path.write_text(path.read_text() + "\n# changed\n")
    else:
        extra = "trainer" if change == "dependency" else "gpu"
        path = checkout / "pyproject.toml"
        path.write_text(path.read_text().replace(f'{extra} = [\n', f'{extra} = [\n    "new-runtime-dependency",\n'))
        assert "new-runtime-dependency" in path.read_text()
    assert trainer_tag(checkout) != before


def test_tag_covers_every_extra_the_dockerfile_installs():
    from infra.trainer_image import EXTRAS

    installed = set(re.findall(r"extras\['([a-z-]+)'\]", (REPO / "trainer" / "Dockerfile").read_text()))
    assert installed and installed == set(EXTRAS)


def test_script_prints_the_tag_with_the_standard_library_only(checkout):
    """The workflow runs it with the runner's python3, before any virtual environment exists."""
    proc = subprocess.run([sys.executable, "-I", "-S", str(REPO / "infra" / "trainer_image.py"), str(checkout)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == trainer_tag(checkout)


def _steps(job: str) -> list[dict]:
    return yaml.safe_load(DEPLOY.read_text())["jobs"][job]["steps"]


def test_deploy_builds_only_a_new_tag_and_pins_its_digest():
    steps = {s.get("id"): s for s in _steps("trainer-image")}
    assert "python3 infra/trainer_image.py" in steps["tag"]["run"]
    assert 'kaito-gitops/trainer:$TAG' in steps["existing"]["run"]
    assert steps["build"]["if"] == "steps.existing.outputs.digest == ''"
    assert steps["build"]["with"]["tags"].endswith("kaito-gitops/trainer:${{ steps.tag.outputs.tag }}")
    assert steps["ref"]["env"]["DIGEST"] == "${{ steps.existing.outputs.digest || steps.build.outputs.digest }}"
    text = DEPLOY.read_text()
    assert "github.sha" not in text and "GITHUB_SHA" not in text, "a per-commit tag or digest is back"
    promote = next(s for s in _steps("deploy-prod") if s.get("id") == "promote")
    assert '--image "kaito-gitops/trainer:$TAG"' in promote["run"]
