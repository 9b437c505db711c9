"""The trainer image's tag: a digest of what the trainer runs, so an unchanged trainer keeps its image.

A Job's pod template cannot change in place, and a new one means training again. If every merge built
the trainer anew under the commit SHA and pinned the new digest in `_defaults.yaml`, every bundled Job
would get a new template on every merge. The deploy workflow (.github/workflows/deploy.yml) instead
tags the image with this value and builds only when the tag is new, so a merge that leaves the trainer
alone leaves every Job's pod template byte-identical.

The inputs: every file under trainer/ (its code and Dockerfile) and, from pyproject.toml, the Python
requirement and the extras the Dockerfile installs (`trainer`, `gpu`); not the rest of pyproject.toml
nor README.md, which the image carries but the trainer does not run.

Standard library only, run as a script by the workflow:  python3 infra/trainer_image.py [REPO_ROOT]
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path

PREFIX = "src-"
EXTRAS = ("trainer", "gpu")  # what trainer/Dockerfile installs from pyproject.toml


def trainer_tag(root: Path) -> str:
    digest = hashlib.sha256()
    trainer = root / "trainer"
    files = sorted(p for p in trainer.rglob("*")
                   if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    for path in files:
        content = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.relative_to(root).as_posix()}\0{content}\n".encode())
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {})
    installed = {"requires-python": project.get("requires-python"), **{e: extras.get(e, []) for e in EXTRAS}}
    digest.update(json.dumps(installed, sort_keys=True).encode())
    return PREFIX + digest.hexdigest()[:24]


if __name__ == "__main__":
    print(trainer_tag(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]))
