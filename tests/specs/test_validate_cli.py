"""`kaito-gitops validate`: exit codes 0/1/2, what it prints, and never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import main
from infra.yamlload import MAX_BYTES

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"


def _run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_shipped_workloads_are_valid(capsys) -> None:
    code, out, _ = _run(capsys)
    assert code == 0
    assert out.startswith("ok: ") and out.rstrip().endswith("in 2 environments"), out


def test_a_file_is_checked_in_the_context_of_its_environment(capsys) -> None:
    # The deployment's adapter names a tuning job defined in another file of dev.
    code, out, _ = _run(capsys, str(REPO / "workloads" / "dev" / "ml-platform" / "phi3-dolly.yaml"))
    assert (code, out) == (0, "ok: 1 workload in 1 environment\n")


def test_invalid_tree_exits_1_with_one_line_per_problem(capsys) -> None:
    code, out, err = _run(capsys, str(FIXTURES / "invalid" / "private-url" / "workloads"))
    assert code == 1
    lines = out.splitlines()
    assert len(lines) == 5 and all("job.yaml:" in line and "private or reserved" in line for line in lines), out
    assert "5 problem(s) found" in err


def test_only_the_asked_for_file_is_reported_but_a_broken_environment_fails(tmp_path: Path, capsys) -> None:
    tree = tmp_path / "workloads"
    shutil.copytree(FIXTURES / "valid" / "qlora-urls" / "workloads", tree)
    (tree / "dev" / "broken.yaml").write_text("kind: [\n")
    good = next(p for p in (tree / "dev").rglob("*.yaml") if p.name not in ("broken.yaml", "_defaults.yaml"))
    code, out, err = _run(capsys, str(good))
    assert code == 1 and "ok:" not in out and "broken.yaml" not in out, out
    assert "1 problem(s) in other files" in err
    code, out, _ = _run(capsys, str(tree))
    assert code == 1 and "broken.yaml:" in out and "YAML syntax error" in out


@pytest.mark.parametrize("path, message", [
    ("does-not-exist.yaml", "no such file or folder"),
    ("README.md", "not inside a workloads/ folder"),
    ("tests/specs", "not inside a workloads/ folder"),
])
def test_usage_errors_exit_2(capsys, monkeypatch, path: str, message: str) -> None:
    monkeypatch.chdir(REPO)
    code, out, err = _run(capsys, path)
    assert code == 2 and out == "" and message in err, err


def test_a_non_yaml_file_in_workloads_is_a_usage_error(tmp_path: Path, capsys) -> None:
    env = tmp_path / "workloads" / "dev"
    env.mkdir(parents=True)
    (env / "notes.txt").write_text("hello")
    code, _, err = _run(capsys, str(env / "notes.txt"))
    assert code == 2 and "not a YAML file" in err


def test_oversized_file_is_refused(tmp_path: Path, capsys) -> None:
    tree = tmp_path / "workloads"
    shutil.copytree(FIXTURES / "valid" / "qlora-urls" / "workloads", tree)
    big = tree / "dev" / "big.yaml"
    big.write_text("# " + "x" * MAX_BYTES + "\n")
    code, out, _ = _run(capsys, str(big))
    assert code == 1 and f"over the {MAX_BYTES}-byte limit" in out, out


@pytest.mark.parametrize("content", [
    b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",  # deeper than the recursion limit
    b"\x00\x01\x02",                              # control characters
    b"\xff\xfe\x00a",                             # not UTF-8
    b"? [a, b]\n: c\n",                           # a list as a key
    b"a: !!python/object/apply:os.system [echo hi]\n",
    b"%YAML 1.1\n--- |\n  text\n",                 # a block scalar at the top
])
def test_hostile_files_give_diagnostics_not_tracebacks(tmp_path: Path, content: bytes) -> None:
    tree = tmp_path / "workloads"
    shutil.copytree(FIXTURES / "valid" / "qlora-urls" / "workloads", tree)
    (tree / "dev" / "hostile.yaml").write_bytes(content)
    result = subprocess.run([sys.executable, "-m", "infra.cli", "validate", str(tree)],
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert all(line.split(":", 2)[1].isdigit() for line in result.stdout.splitlines()), result.stdout
