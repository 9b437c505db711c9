"""Shared fixtures: a private copy of workloads/ so tests can add and remove specs."""

from __future__ import annotations

import shutil
import subprocess
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


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t", *args],
                          check=True, capture_output=True, text=True).stdout


@pytest.fixture
def git():
    """Runs git in a repository with a throwaway identity; returns stdout."""
    return _git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding a copy of workloads/, committed: the pull request's base."""
    shutil.copytree(WORKLOADS_DIR, tmp_path / "workloads")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "base")
    return tmp_path
