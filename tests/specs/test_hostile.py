"""The hostile-input corpus (tests/fixtures/hostile/README.md): every case through the real command line.

Each case runs in-process in a sandbox copy of its tree, which becomes the repository the command works on.
Whatever the input, the program must return (an escaping exception is a traceback), with the expected exit
code and message, print no control characters, and leave alone what the case says must stay.
"""

from __future__ import annotations

import builtins
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from infra.cli import INTERNAL_ERROR

HOSTILE = Path(__file__).resolve().parents[1] / "fixtures" / "hostile"
CASES = sorted(p.parent.relative_to(HOSTILE).as_posix() for p in HOSTILE.glob("*/*/case.yaml")
               if not p.parent.parent.name.startswith("_"))
KEYS = {"about", "program", "base", "argv", "exit", "stdout", "stderr", "absent", "no_line", "setup", "after",
        "hide_modules"}
OUTSIDE_TEXT = "do-not-touch\n"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f\u2028\u2029]")


def _inside(sandbox: Path, relative: str) -> Path:
    """A path from a case, resolved against the repository; it must stay in the sandbox (no follow of links)."""
    path = Path(os.path.normpath(sandbox / "repo" / relative))
    assert path == sandbox or sandbox in path.parents, f"case path {relative!r} leaves the sandbox"
    return path


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _setup(sandbox: Path, steps: list[dict], unreadable: set[Path]) -> None:
    repo, commits = sandbox / "repo", 0
    for step in steps:
        if "symlink" in step:
            link = _inside(sandbox, step["symlink"])
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(step["to"])
        elif "write" in step:
            path = _inside(sandbox, step["write"])
            path.parent.mkdir(parents=True, exist_ok=True)
            if "hex" in step:
                path.write_bytes(bytes.fromhex(step["hex"]))
            else:
                path.write_bytes((step["text"] * step.get("repeat", 1)).encode("utf-8"))
        elif "mkdir" in step:
            _inside(sandbox, step["mkdir"]).mkdir(parents=True, exist_ok=True)
        elif "remove" in step:
            path = _inside(sandbox, step["remove"])
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        elif "fifo" in step:
            path = _inside(sandbox, step["fifo"])
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path)
        elif "unreadable" in step:
            path = _inside(sandbox, step["unreadable"])
            path.chmod(0)
            unreadable.add(path)
        elif step.get("git") == "commit":
            if not (repo / ".git").exists():
                _git(repo, "init", "-q", "-b", "main")
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "--allow-empty", "-m", f"commit {commits + 1}")
            commits += 1
            _git(repo, "tag", "base" if commits == 1 else f"base{commits}")
        elif isinstance(step.get("git"), list):
            _git(repo, *step["git"])
        else:
            raise AssertionError(f"unknown setup step {step}")


def _refuse_reads(monkeypatch, unreadable: set[Path]) -> None:
    """chmod 000 does not stop root: make opening those paths fail as it would for anyone else."""
    if not unreadable or os.geteuid() != 0:
        return
    real_open = builtins.open

    def guarded(file, *args, **kwargs):
        if isinstance(file, (str, bytes, os.PathLike)) and Path(os.fsdecode(file)).absolute() in unreadable:
            raise PermissionError(13, "Permission denied", os.fsdecode(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded)
    monkeypatch.setattr(io, "open", guarded)


def _hide(monkeypatch, modules: list[str]) -> None:
    """Make `modules` unimportable; unload the trainer so its imports run afresh against that."""
    for name in list(sys.modules):
        if name == "trainer" or name.startswith("trainer."):
            monkeypatch.delitem(sys.modules, name)
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, name, None)


def _snapshot(path: Path) -> bytes | None:
    try:
        return path.read_bytes() if path.is_file() and not path.is_symlink() else os.readlink(path).encode()
    except OSError:
        return None


def _run(case: dict, monkeypatch, capsys) -> tuple[int, str, str]:
    program = case.get("program", "kaito-gitops")
    if program == "trainer":
        from trainer.__main__ import main
    elif program == "review":
        from infra.review import main
    else:
        assert program == "kaito-gitops", f"unknown program {program!r}"
        from infra.cli import main
    try:
        code = main(list(case["argv"]))
    except SystemExit as stop:  # argparse's usage errors and --help exit this way
        code = stop.code if isinstance(stop.code, int) else 2
    except BaseException as exc:  # noqa: BLE001 - any other escape is the traceback the corpus hunts
        out, err = capsys.readouterr()
        raise AssertionError(f"{type(exc).__name__} escaped: {exc}\nstdout:\n{out}\nstderr:\n{err}") from exc
    out, err = capsys.readouterr()
    return code, out, err


def _sandbox(folder: Path, case: dict, tmp_path: Path) -> tuple[Path, set[Path]]:
    """The case's repository in a fresh sandbox, set up; returns the sandbox and the paths made unreadable."""
    sandbox = tmp_path.resolve()
    repo = sandbox / "repo"
    base = case.get("base", "minimal")
    if base == "none":
        repo.mkdir()
    else:
        shutil.copytree(HOSTILE / "_base" / base, repo, symlinks=True)
    if (folder / "tree").is_dir():
        shutil.copytree(folder / "tree", repo, symlinks=True, dirs_exist_ok=True)
    (sandbox / "outside").mkdir()
    (sandbox / "outside" / "secret.txt").write_text(OUTSIDE_TEXT)
    unreadable: set[Path] = set()
    _setup(sandbox, case.get("setup") or [], unreadable)
    return sandbox, unreadable


def _enter(monkeypatch, sandbox: Path, unreadable: set[Path], case: dict) -> None:
    """Make the sandbox's repository the one every command works on, and its root the working directory."""
    import infra.specs

    repo = sandbox / "repo"
    monkeypatch.setattr(infra.specs, "REPO_ROOT", repo)
    monkeypatch.setattr(infra.specs, "WORKLOADS_DIR", repo / "workloads")
    monkeypatch.chdir(repo)
    _refuse_reads(monkeypatch, unreadable)
    _hide(monkeypatch, case.get("hide_modules") or [])


def _load(name: str) -> dict:
    case = yaml.safe_load((HOSTILE / name / "case.yaml").read_text(encoding="utf-8"))
    assert not set(case) - KEYS, f"unknown keys {sorted(set(case) - KEYS)}"
    assert case["exit"] in (0, 1, 2), "exit codes are 0, 1 or 2"
    return case


@pytest.mark.parametrize("name", CASES)
def test_hostile_case(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    case = _load(name)
    sandbox, unreadable = _sandbox(HOSTILE / name, case, tmp_path)
    after = case.get("after") or {}
    before = {p: _snapshot(_inside(sandbox, p)) for p in after.get("unchanged", [])}
    _enter(monkeypatch, sandbox, unreadable, case)
    code, out, err = _run(case, monkeypatch, capsys)
    monkeypatch.undo()
    for path in unreadable:
        path.chmod(0o644)

    shown = f"\n--- exit {code}\n--- stdout:\n{out}--- stderr:\n{err}"
    assert "Traceback" not in out + err and INTERNAL_ERROR not in err, shown
    assert code == case["exit"], f"{case['about']}: expected exit {case['exit']}" + shown
    for line in (out + err).splitlines():
        assert not CONTROL.search(line), f"control character in output line {line!r}" + shown
    for text in case.get("stdout") or []:
        assert text in out, f"stdout lacks {text!r}" + shown
    for text in case.get("stderr") or []:
        assert text in err, f"stderr lacks {text!r}" + shown
    for text in case.get("absent") or []:
        assert text not in out + err, f"output holds {text!r}" + shown
    for prefix in case.get("no_line") or []:
        forged = [line for line in (out + err).splitlines() if line.startswith(prefix)]
        assert not forged, f"forged line(s) starting with {prefix!r}: {forged}" + shown
    for path, content in before.items():
        assert _snapshot(_inside(sandbox, path)) == content, f"{path} changed or went away" + shown
    assert (sandbox / "outside" / "secret.txt").read_text() == OUTSIDE_TEXT, "a file outside the repository changed"
    for path in after.get("exists", []):
        assert os.path.lexists(_inside(sandbox, path)), f"{path} is missing" + shown
    for path in after.get("missing", []):
        assert not os.path.lexists(_inside(sandbox, path)), f"{path} exists" + shown
    for path in after.get("symlink", []):
        assert _inside(sandbox, path).is_symlink(), f"{path} is no longer a symbolic link" + shown


def _cli_case(name: str) -> bool:
    case = _load(name)
    return case.get("program", "kaito-gitops") == "kaito-gitops" and case.get("base") != "none"


@pytest.mark.parametrize("name", [c for c in CASES if _cli_case(c)])
def test_validate_and_render_agree_on_every_tree(name: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """Whatever a case's tree holds, `validate workloads/dev` passes exactly when `render --env dev` does, and
    fails with the same problems."""
    case = _load(name)
    sandbox, unreadable = _sandbox(HOSTILE / name, case, tmp_path)
    _enter(monkeypatch, sandbox, unreadable, case)
    render_out = sandbox / "render-check"
    validated = _run({"argv": ["validate", "workloads/dev"]}, monkeypatch, capsys)
    rendered = _run({"argv": ["render", "--env", "dev", "--out", str(render_out)]}, monkeypatch, capsys)
    monkeypatch.undo()
    for path in unreadable:
        path.chmod(0o644)
    assert INTERNAL_ERROR not in validated[2] + rendered[2], f"validate {validated}\nrender {rendered}"
    assert validated[0] == rendered[0], f"validate {validated}\nrender {rendered}"
    if validated[0] == 1:
        assert validated[1] == rendered[1], f"validate {validated}\nrender {rendered}"
