"""Retire finished KAITO tuning jobs: find them in the cluster, add `retired: true` to their specs.

KAITO keeps a tuning Workspace's GPU node until the Workspace is deleted (workspace_gc_finalizer.go), and a
Workspace deleted while its spec still renders it comes back with the next `up --refresh` or replacement, so the
spec is what must change.
`python -m infra.retire --env dev workspaces.json` reads `kubectl get workspaces.kaito.sh,jobs.batch -A
-o json` (files or `-`; Lists or single objects), finds this repo's tuning Workspaces whose current spec's
run has ended, and with `--write` edits each spec file in place. The rules and their KAITO sources are in
docs/rendering.md ("Retiring a finished tuning job"). Exit 0: done (retired or not); 1: bad input (nothing
is written); 2: usage; 3: some specs could not be edited safely (reported as `refused`; the others are written,
so one odd file does not keep every other node billing).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from infra.diagnostics import SpecError, escape
from infra.model import TUNING_KIND, Environment, Workload
from infra.render import names, tuning
from infra.specs import display_path, environments, load_environment

WORKSPACE_GROUP = "kaito.sh/"
SUCCEEDED_CONDITION = "WorkspaceSucceeded"  # api/v1beta1/condition_types.go WorkspaceConditionTypeSucceeded
JOB_STARTED_CONDITION = "JobStarted"  # condition_types.go WorkspaceConditionTypeTuningJobStatus
FAILED_REASON = "workspaceFailed"  # applyTuningWorkspaceStatus, the reason KAITO sets when the Job has failed pods
REVISION_ANNOTATION = "workspace.kaito.io/revision"  # api/v1beta1/labels.go WorkspaceRevisionAnnotation
WORKSPACE_LABEL = "kaito.sh/workspace"  # api/v1beta1/labels.go LabelWorkspaceName, on KAITO's tuning Job
_SPEC_LINE = re.compile(r"spec:[ \t]*(#.*)?")
_RETIRED_FALSE = re.compile(r"[ \t]*(?P<q>[\"']?)retired(?P=q):[ \t]*(?i:false)[ \t]*(#.*)?")
EXIT_PARTIAL = 3  # some specs retired, some refused: the workflow still proposes the ones it could edit
MESSAGE_LIMIT = 200  # characters of cluster-supplied text kept in a spec comment


class InputError(Exception):
    """Unusable input or an edit refused; the message names the file and the fix."""


@dataclass
class Finding:
    namespace: str
    name: str
    state: str  # succeeded, failed, running, pending, failing, stale, already-retired, no-spec, inference, not-ours,
    # refused (ended, but its file cannot be edited safely)
    action: str  # retire, keep, ignore
    detail: str
    spec: str | None = None  # the spec file, as the repo shows it
    reason: str | None = None  # the WorkspaceSucceeded condition's, for an ended run
    message: str | None = None


def load_objects(sources: list[str]) -> list[dict[str, Any]]:
    """Every object in the given `kubectl get -o json` outputs ("-" is stdin)."""
    objects: list[dict[str, Any]] = []
    for source in sources:
        shown = "<stdin>" if source == "-" else source
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"{escape(shown)}:1: $: cannot read it ({escape(str(getattr(error, 'strerror', None) or error))}) "
                             "(hint: pass the output of `kubectl get workspaces.kaito.sh,jobs.batch -A -o json`)")
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as error:
            line = getattr(error, "lineno", 1)
            raise InputError(f"{escape(shown)}:{line}: $: not JSON ({escape(str(getattr(error, 'msg', error)))}) "
                             "(hint: use `kubectl get ... -o json`, not yaml or wide)")
        items = data.get("items") if isinstance(data, dict) and "items" in data else [data]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InputError(f"{escape(shown)}:1: $.items: not a list of Kubernetes objects "
                             "(hint: use `kubectl get ... -o json`)")
        for index, item in enumerate(items):
            if not isinstance(item.get("metadata"), dict) or not isinstance(item.get("kind"), str):
                raise InputError(f"{escape(shown)}:1: $.items[{index}]: an object without kind or metadata "
                                 "(hint: use `kubectl get ... -o json`)")
        objects += items
    return objects


def _is_workspace(obj: dict[str, Any]) -> bool:
    return obj.get("kind") == "Workspace" and str(obj.get("apiVersion", "")).startswith(WORKSPACE_GROUP)


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == kind), None)


def _contains(live: Any, wanted: Any, path: str) -> str | None:
    """The first path where `wanted` (rendered) is not in `live` (the cluster's, which may carry defaults)."""
    if isinstance(wanted, dict):
        if not isinstance(live, dict):
            return path
        for key, value in wanted.items():
            differs = _contains(live.get(key), value, f"{path}.{key}")
            if differs:
                return differs
        return None
    return None if live == wanted else path


def _component(obj: dict[str, Any], env: Environment) -> str | None:
    """"tuning" or "inference" for a Workspace this repo rendered for `env`; None for any other."""
    labels = obj["metadata"].get("labels") or {}
    ours = labels.get("app.kubernetes.io/managed-by") == names.PART_OF and labels.get(names.ENV_LABEL) == env.name
    return labels.get(names.COMPONENT_LABEL) if ours else None


def _owned_by(job: dict[str, Any], workspace: dict[str, Any]) -> bool:
    """KAITO sets the Workspace as the Job's controller owner (manifests.go GenerateTuningJobManifest): a Job
    left from a deleted Workspace of the same name has another uid and says nothing about this one's run."""
    uid = workspace["metadata"].get("uid")
    owners = job["metadata"].get("ownerReferences") or []
    return bool(uid) and any(isinstance(o, dict) and o.get("uid") == uid for o in owners)


def _tuning_job(workspace: dict[str, Any], jobs: list[dict[str, Any]]) -> dict[str, Any] | None:
    meta = workspace["metadata"]
    return next((j for j in jobs if j["metadata"].get("namespace") == meta.get("namespace")
                 and j["metadata"].get("name") == meta.get("name")
                 and (j["metadata"].get("labels") or {}).get(WORKSPACE_LABEL) == meta.get("name")
                 and _owned_by(j, workspace)), None)


def _job_verdict(job: dict[str, Any]) -> str | None:
    """Kubernetes' own verdict: the Job's Complete or Failed condition is True (no more retries). KAITO says
    `workspaceFailed` as soon as one pod failed, also when a retry then succeeded, so the Job decides."""
    for kind, verdict in (("Complete", "succeeded"), ("Failed", "failed")):
        if (_condition(job, kind) or {}).get("status") == "True":
            return verdict
    return None


def classify(env: Environment, workspace: dict[str, Any], jobs: list[dict[str, Any]]) -> Finding:
    meta = workspace["metadata"]
    found = Finding(str(meta.get("namespace", "")), str(meta.get("name", "")), "", "ignore", "")
    component = _component(workspace, env)
    if component == "inference":
        found.state, found.detail = "inference", "serves a model: nothing to retire"
        return found
    if component != "tuning" or "tuning" not in workspace:
        found.state, found.detail = "not-ours", "not a Workspace this repo rendered for this environment"
        return found
    w = env.by_name(found.name)
    if w is None or w.kind != TUNING_KIND or w.namespace != found.namespace or w.spec["engine"] != "kaito":
        found.state, found.detail = "no-spec", "no engine: kaito TuningJob of this name: the next deploy deletes it"
        return found
    found.spec = display_path(w.path)
    if w.retired:
        found.state, found.detail = "already-retired", "the spec is retired: the next deploy deletes it"
        return found
    rendered = tuning.workspace(env, w)
    differs = _contains(workspace.get("tuning"), rendered["tuning"], "$.tuning") or \
        _contains(workspace.get("resource"), rendered["resource"], "$.resource")
    found.action = "keep"
    if differs:
        found.state, found.detail = "stale", f"the cluster runs another version of the spec ({differs} differs)"
        return found
    condition = _condition(workspace, SUCCEEDED_CONDITION)
    generation = meta.get("generation")
    if condition is None or not isinstance(generation, int) or condition.get("observedGeneration") != generation:
        found.state, found.detail = "pending", "KAITO has not reported on this generation of the Workspace yet"
        return found
    ended = condition.get("status") == "True" or condition.get("reason") == FAILED_REASON
    if not ended:
        started = _condition(workspace, JOB_STARTED_CONDITION)
        found.state = "running" if started and started.get("status") == "True" else "pending"
        found.detail = "the tuning job has not ended"
        return found
    job = _tuning_job(workspace, jobs)
    revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
    if job is None or (job["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) != revision \
            or job["metadata"].get("deletionTimestamp"):
        found.state, found.detail = "pending", "KAITO's tuning Job of the Workspace's current revision is not in the input"
        return found
    verdict = _job_verdict(job)
    if verdict is None:
        found.state, found.detail = "failing", "a pod failed and the Job is still retrying (its backoffLimit)"
        return found
    found.state = verdict
    found.action, found.detail = "retire", f"the tuning job {found.state}"
    found.reason, found.message = str(condition.get("reason", "")), str(condition.get("message", ""))
    return found


def find(env: Environment, objects: list[dict[str, Any]]) -> list[Finding]:
    jobs = [o for o in objects if o.get("kind") == "Job"]
    findings = [classify(env, o, jobs) for o in objects if _is_workspace(o)]
    return sorted(findings, key=lambda f: (f.namespace, f.name))


def _cluster_text(text: str) -> str:
    """Cluster-supplied text as printable ASCII: what `escape` makes safe (line breaks, terminal escapes, lone
    surrogates, characters YAML refuses), and every other non-ASCII character as `\\uXXXX` too."""
    return escape(text).encode("ascii", "backslashreplace").decode("ascii")


def _comment_text(text: str) -> str:
    """Cluster-supplied text, safe inside one YAML comment line: escaped, shortened."""
    text = _cluster_text(text)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "..."


def edited_text(text: str, finding: Finding, shown: str) -> str:
    """The file with `retired: true` (and, for a failed run, a comment why) added as the last key of `spec`."""
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    start = next((i for i, line in enumerate(lines) if _SPEC_LINE.fullmatch(line.rstrip("\r\n"))), None)
    if start is None:
        raise InputError(f"{escape(shown)}:1: $.spec: no block-style `spec:` line to add `retired: true` under "
                         "(hint: write `spec:` on a line of its own, its keys indented below it)")
    indent = None
    end = start + 1
    for i in range(start + 1, len(lines)):
        stripped = lines[i].strip()
        if not stripped:
            continue
        width = len(lines[i]) - len(lines[i].lstrip(" "))
        if width == 0 and not stripped.startswith("#"):
            break
        if indent is None and not stripped.startswith("#"):
            indent = width
        if not stripped.startswith("#"):
            end = i + 1
        elif width > 0:
            end = i + 1
    if not indent:
        raise InputError(f"{escape(shown)}:{start + 1}: $.spec: an empty spec "
                         "(hint: `spec:` needs its keys indented below it)")
    pad = " " * indent
    explicit = next((i for i in range(start + 1, end) if _RETIRED_FALSE.fullmatch(lines[i].rstrip("\r\n"))
                     and len(lines[i]) - len(lines[i].lstrip(" ")) == indent), None)
    if explicit is not None:  # `retired: false` written out: that line becomes the `retired: true`
        del lines[explicit]
        end = explicit
    added = []
    if finding.state == "failed":
        added.append(f"{pad}# kaito-gitops retire: the tuning job failed ({_comment_text(finding.reason or '')}: "
                     f"{_comment_text(finding.message or '')}).{newline}")
        added.append(f"{pad}# Retired so that its GPU node stops billing; remove `retired: true` to train again.{newline}")
    added.append(f"{pad}retired: true{newline}")
    if end == len(lines) and lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
    return "".join(lines[:end] + added + lines[end:])


def _check_edit(env: Environment, root: Path, w: Workload, new: str) -> None:
    """The edited file loads, validates, and says exactly what it said plus `retired: true`."""
    shown = escape(display_path(w.path))
    old = w.path.read_text(encoding="utf-8")
    changes = [line for line in difflib.ndiff(old.splitlines(), new.splitlines()) if line[:2] in ("- ", "+ ")]
    if any(line.startswith("- ") and not _RETIRED_FALSE.fullmatch(line[2:]) for line in changes):
        raise InputError(f"{shown}:1: $.spec: the edit would change existing lines "
                         "(hint: add `retired: true` to the spec by hand)")
    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch)
        shutil.copytree(root / env.name, copy / env.name, symlinks=True)
        (copy / w.path.relative_to(root)).write_text(new, encoding="utf-8")
        try:
            after = load_environment(env.name, root=copy)
        except SpecError as error:
            problems = str(error).replace(display_path(copy), display_path(root))
            raise InputError(f"{shown}:1: $.spec: the edited spec does not validate: {escape(problems)} "
                             "(hint: add `retired: true` by hand)")
    edited = after.by_name(w.name)
    if edited is None or edited.spec != {**w.spec, "retired": True} or edited.kind != w.kind:
        raise InputError(f"{shown}:1: $.spec: the edited file is not the same spec plus `retired: true` "
                         "(hint: add it by hand)")


def _edit(env: Environment, root: Path, w: Workload, finding: Finding) -> str:
    """The checked new text of one spec file, or InputError saying why it cannot be edited safely."""
    shown = display_path(w.path)
    try:
        new = edited_text(w.path.read_text(encoding="utf-8"), finding, shown)
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{escape(shown)}:1: $: cannot read it ({escape(str(error))}) (hint: make it a readable file)")
    if not os.access(w.path, os.W_OK) or not os.access(w.path.parent, os.W_OK):
        raise InputError(f"{escape(shown)}:1: $: cannot write it (hint: run where the checkout is writable)")
    _check_edit(env, root, w, new)
    return new


def write(env: Environment, root: Path, findings: list[Finding]) -> list[str]:
    """Edit every spec to retire; returns the files written. A spec that cannot be edited safely becomes a
    `refused` finding and the others are still written (together: all of them or, on a disk error, none)."""
    edits: list[tuple[Workload, str]] = []
    for finding in findings:
        if finding.action != "retire":
            continue
        w = env.by_name(finding.name)
        assert w is not None  # classify() found it
        try:
            edits.append((w, _edit(env, root, w, finding)))
        except InputError as error:
            finding.state, finding.action, finding.detail = "refused", "keep", f"ended ({finding.detail}), but {error}"
    staged = []
    try:
        for w, text in edits:
            handle, temp = tempfile.mkstemp(dir=w.path.parent, prefix=f".{w.path.name}.", suffix=".retire")
            staged.append((Path(temp), w.path))
            with os.fdopen(handle, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            shutil.copymode(w.path, temp)
    except OSError as error:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        raise InputError(f"cannot write the edited specs ({escape(str(error))}); nothing was changed "
                         "(hint: check the disk and the checkout's permissions)")
    for temp, target in staged:
        os.replace(temp, target)
    return [display_path(target) for _, target in staged]


def report(env: str, findings: list[Finding], write_requested: bool) -> str:
    if not findings:
        return f"{env}: no tuning Workspaces in the input\n"
    out = []
    for f in findings:
        what = f"{_cluster_text(f.namespace)}/{_cluster_text(f.name)}: {f.state}: {f.detail}"
        if f.action == "retire":
            what += f"; {'retired' if write_requested else 'to retire (--write edits)'} {f.spec}"
            if f.state == "failed":
                what += f" ({_comment_text(f.reason or '')}: {_comment_text(f.message or '')})"
        out.append(f"{env}: {what}")
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    """`kaito-gitops retire` (infra/commands/retire.py parses the arguments)."""
    if args.env not in environments(args.workloads):
        print(f"kaito-gitops retire: unknown environment {escape(args.env)!r}; environments: "
              f"{escape(', '.join(environments(args.workloads)))}", file=sys.stderr)
        return 2
    try:
        env = load_environment(args.env, root=args.workloads)
    except SpecError as error:
        print(error)
        print("the specs must validate before jobs can be retired", file=sys.stderr)
        return 1
    try:
        findings = find(env, load_objects(args.objects))
        written = write(env, args.workloads, findings) if args.write else []
    except InputError as error:
        print(f"kaito-gitops retire: {error}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"environment": env.name, "written": written,
                          "workspaces": [asdict(f) for f in findings]}, indent=2, sort_keys=True, ensure_ascii=True))
    else:
        sys.stdout.write(report(env.name, findings, args.write))
    if any(f.state == "refused" for f in findings):
        print("kaito-gitops retire: some ended jobs could not be retired: their specs need `retired: true` by hand "
              "(see `refused` above)", file=sys.stderr)
        return EXIT_PARTIAL
    return 0


if __name__ == "__main__":
    from infra.cli import main

    sys.exit(main(["retire", *sys.argv[1:]]))
