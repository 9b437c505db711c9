"""Nothing a spec says is executed by the bundled Job (issue 10 item 1).

Every string field of a TuningJob and of the environment defaults is set to a hostile value (shell
substitutions, quotes, separators, newlines, option-looking strings); the Job is rendered without
validation (the renderer must be safe on its own) and every container's command is run for real:
`/bin/sh` is the real shell, every other program is a stub on PATH that only records its argv. The
hostile values try to create a canary file; it must never exist, and each value must reach the
programs as one intact argument, never in an option position.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from infra.model import TUNING_KIND, Environment, Workload
from infra.render import bundled

STUBS = ("curl", "oras", "skopeo", "tar", "mkdir", "mktemp", "cp", "mv", "rm", "python", "python3", "torchrun",
         "find", "cat", "gzip", "sha256sum", "touch", "echo")
# Each stub writes "<argc>\0<name>\0<arg>\0..." to $STUB_LOG; mktemp prints a directory, `skopeo inspect`
# one layer name, as the real programs would. Only shell builtins run inside a stub.
STUB = """#!/bin/sh
name="${0##*/}"
printf '%s\\0' "$#" "$name" "$@" >> "$STUB_LOG"
case "$name" in
  mktemp) printf '%s\\n' "$SANDBOX/work" ;;
  skopeo) [ "$1" = inspect ] && printf 'abc \\n' ;;
esac
exit 0
"""
MARKER = "pwned"
PAYLOADS = [
    "$(echo {m} >> {canary})",
    "`echo {m} >> {canary}`",
    "'; echo {m} >> {canary}; '",
    '"; echo {m} >> {canary}; "',
    "x\necho {m} >> {canary}\n",
    "|echo {m} >> {canary}",
    "&& echo {m} >> {canary} &",
    "--output={canary}-{m}",
    "-o{canary}-{m}",
    "${{IFS}}echo${{IFS}}{m}>{canary}",
]
# Only the trainer image's containers may rely on the image's entry point (trainer/Dockerfile ENTRYPOINT).
TRAINER_ENTRYPOINT = ["python", "-m", "trainer"]
INERT = re.compile(r"[A-Za-z0-9._/=:-]*")  # a value made safe by the renderer (e.g. a download's file name)


def _hostile_specs(value: str) -> list[tuple[Environment, Workload, dict[str, Workload]]]:
    def spec(**extra):
        base = {
            "engine": "bundled", "baseModel": value, "method": "qlora", "quantization": value,
            "output": {"image": {"repository": value, "tag": value, "pushSecret": value}},
            "outputDir": f"/mnt/{value}", "hyperparameters": {},
            "placement": {"instanceType": value, "nodePool": value},
        }
        return {**base, **extra}

    defaults = {"registry": value, "trainerImage": value, "namespace": value, "maxTrainingHours": 72}
    earlier = Workload(TUNING_KIND, value, value, value, spec(data={"train": {"urls": [value]}}), Path("a.yaml"))
    shapes = [
        spec(data={"train": {"urls": [f"https://{value}/a.jsonl", value, f"https://h/{value}?{value}#{value}"]},
                   "validation": {"image": value, "pullSecrets": [value]}},
             continueFrom={"image": value}),
        spec(data={"train": {"image": value, "pullSecrets": [value, "plain"]},
                   "validation": {"urls": [value]}},
             continueFrom={"tuningJob": value}),
        spec(data={"train": {"volume": {"claimName": value}}}, output={"volume": {"claimName": value}}),
    ]
    out = []
    for s in shapes:
        w = Workload(TUNING_KIND, f"{value}-next", value, value, s, Path("b.yaml"))
        out.append((Environment("dev", defaults, [earlier, w]), w, {earlier.name: earlier}))
    return out


def _read_log(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    fields = path.read_bytes().split(b"\0")[:-1]
    calls, i = [], 0
    while i < len(fields):
        count = int(fields[i])
        calls.append([f.decode() for f in fields[i + 1:i + 2 + count]])
        i += 2 + count
    return calls


@pytest.fixture
def sandbox(tmp_path) -> Path:
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for name in STUBS:
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    return tmp_path


def _run_containers(job: dict, sandbox: Path) -> list[list[str]]:
    log = sandbox / "argv.log"
    log.unlink(missing_ok=True)
    env = {"PATH": str(sandbox / "stubs"), "STUB_LOG": str(log), "SANDBOX": str(sandbox), "HOME": str(sandbox)}
    auth = sandbox / "auth"
    auth.mkdir(exist_ok=True)
    (auth / "acr-adapter-pull.json").write_text("{}")
    pod = job["spec"]["template"]["spec"]
    for container in pod["initContainers"] + pod["containers"]:
        command = container.get("command") or TRAINER_ENTRYPOINT
        # The credentials folder is ours, not the spec's: point it at one with a (fake) docker config.
        argv = command + [str(auth) if a == bundled.PULL_AUTH_DIR else a for a in container.get("args", [])]
        program = argv[0] if argv[0].startswith("/") else str(sandbox / "stubs" / argv[0])
        assert argv[0] == "/bin/sh" or argv[0] in STUBS, f"{container['name']}: unexpected program {argv[0]}"
        proc = subprocess.run([program, *argv[1:]], env=env, cwd=sandbox, capture_output=True, text=True,
                              timeout=30)
        assert proc.returncode == 0, f"{container['name']}: {proc.stderr}"
    return _read_log(log)


@pytest.mark.parametrize("template", PAYLOADS)
def test_no_spec_value_is_executed_or_split(template, sandbox):
    canary = sandbox / "canary"
    value = template.format(m=MARKER, canary=canary)
    for env, w, jobs in _hostile_specs(value):
        calls = _run_containers(bundled.job(env, w, jobs), sandbox)
        assert calls, "no program ran: the test would prove nothing"
        assert not list(sandbox.glob("canary*")), f"a spec value was executed: {value!r}"
        seen_whole = False
        for call in calls:
            end_of_options = call.index("--") if "--" in call else len(call)
            for position, arg in enumerate(call[1:], start=1):
                if MARKER not in arg:
                    continue
                if value not in arg and json.dumps(value)[1:-1] not in arg:  # whole, or whole inside JSON
                    assert INERT.fullmatch(arg), f"{call[0]} got a piece of a spec value: {arg!r}"
                    continue  # the renderer reduced it to a safe name (a download's file name)
                seen_whole = True
                in_option = arg.startswith("-") and position < end_of_options
                ours = re.match(r"--[a-z-]+=", arg) and not arg.startswith(value)  # our --option=, then the value
                assert not in_option or ours, f"{call[0]}: spec value in an option position: {arg!r}"
        assert seen_whole, f"no program received the value {value!r} at all"


def test_stubs_record_what_a_shell_would_split(sandbox):
    """The harness itself: an unquoted expansion inside a script does reach the stubs split."""
    log = sandbox / "argv.log"
    env = {"PATH": str(sandbox / "stubs"), "STUB_LOG": str(log), "SANDBOX": str(sandbox)}
    subprocess.run(["/bin/sh", "-c", 'curl $1; tar "$1"', "t", "a b"], env=env, check=True)
    assert _read_log(log) == [["curl", "a", "b"], ["tar", "a b"]]


def test_an_interpolating_script_would_be_caught(sandbox):
    """What the old renderer did (a URL inside `sh -c`) creates the canary, so the test above can fail."""
    canary = sandbox / "canary"
    url = f"'$(echo {MARKER} >> {canary})'"
    subprocess.run(["/bin/sh", "-c", f"curl -o /mnt/data/x '{url}'"], env={"PATH": str(sandbox / "stubs"),
                   "STUB_LOG": str(sandbox / "argv.log")}, check=True)
    assert canary.exists()
