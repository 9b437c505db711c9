"""Shared fixtures: a private copy of workloads/ so tests can add and remove specs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.specs import WORKLOADS_DIR


@pytest.fixture
def workloads(tmp_path: Path, monkeypatch) -> Path:
    """A copy of the repository's workloads/ that the CLI commands read instead of the real one."""
    root = tmp_path / "workloads"
    shutil.copytree(WORKLOADS_DIR, root)
    monkeypatch.setattr("infra.specs.WORKLOADS_DIR", root)
    return root
