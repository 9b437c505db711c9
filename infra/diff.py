"""What a change to the specs changes in the rendered objects.

Both sides are rendered with the current code, so a review shows the effect of
the spec change alone. Used by `kaito-gitops diff` and the pull-request plan.
"""

from __future__ import annotations

import difflib
import io
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.lifecycle import replaced_fields
from infra.render import render_environment, to_yaml
from infra.specs import REPO_ROOT, load_environment

ObjectId = tuple[str, str, str, str]  # apiVersion, kind, namespace, name


@dataclass(frozen=True)
class Change:
    action: str  # "added" | "changed" | "replaced" | "removed"
    id: ObjectId
    diff: str  # unified diff of the YAML
    replaced: tuple[str, ...] = ()  # the fields that cannot change in place (infra.lifecycle)

    @property
    def title(self) -> str:
        _, kind, namespace, name = self.id
        why = f" (cannot change in place: {', '.join(self.replaced)})" if self.replaced else ""
        return f"{kind} {namespace + '/' if namespace else ''}{name}{why}"


class RefError(Exception):
    pass


def object_id(obj: dict[str, Any]) -> ObjectId:
    meta = obj["metadata"]
    return (obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def diff_objects(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[Change]:
    old_objects = {object_id(o): o for o in old}
    new_objects = {object_id(o): o for o in new}
    before = {key: to_yaml(o) for key, o in old_objects.items()}
    after = {key: to_yaml(o) for key, o in new_objects.items()}
    changes = []
    for key in sorted(before.keys() | after.keys(), key=lambda k: (k[1], k[2], k[3], k[0])):
        a, b = before.get(key, ""), after.get(key, "")
        if a == b:
            continue
        replaced: tuple[str, ...] = ()
        if a and b:
            replaced = tuple(replaced_fields(old_objects[key], new_objects[key]))
        action = "added" if not a else "removed" if not b else "replaced" if replaced else "changed"
        text = "".join(difflib.unified_diff(a.splitlines(True), b.splitlines(True),
                                            fromfile=f"a/{key[1]}/{key[3]}", tofile=f"b/{key[1]}/{key[3]}"))
        changes.append(Change(action, key, text, replaced))
    return changes


def render_at_ref(env: str, ref: str, repo: Path = REPO_ROOT) -> list[dict[str, Any]]:
    """Render `workloads/<env>` as it was at git `ref` (an env that did not exist renders nothing)."""
    try:
        subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise RefError(f"unknown git ref {ref!r}") from exc
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref, "--", "workloads"],
                             capture_output=True)
    if archive.returncode != 0:  # no workloads/ at that ref
        return []
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter="data")
        root = Path(tmp) / "workloads"
        if not (root / env).is_dir():
            return []
        return render_environment(load_environment(env, root))


def default_base(repo: Path = REPO_ROOT) -> str:
    """origin/main when the clone has it (pull requests), else HEAD (local work)."""
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "origin/main"],
                           capture_output=True)
    return "origin/main" if found.returncode == 0 else "HEAD"
