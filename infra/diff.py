"""What a change to the specs changes in the rendered objects.

Both sides are rendered with the current code, so a review shows the effect of
the spec change alone. Used by `kaito-gitops diff` and the pull-request plan.
"""

from __future__ import annotations

import copy
import difflib
import io
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.lifecycle import replaced_fields
from infra.render import render_environment, to_yaml
from infra import specs
from infra.model import Environment
from infra.specs import load_environment

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


def check_ref(ref: str) -> None:
    """A ref is never read as a git option (`--output=...`), nor holds what no git ref can."""
    if not ref or ref.startswith("-") or any(c in ref for c in "\0\n\r") or len(ref) > 256:
        raise RefError(f"not a git ref: {ref!r}")


def render_at_ref(env: str, ref: str, repo: Path | None = None) -> list[dict[str, Any]]:
    """Render `workloads/<env>` as it was at git `ref` (an env that did not exist renders nothing)."""
    base = environment_at_ref(env, ref, repo)
    return render_environment(base) if base is not None else []


def environment_at_ref(env: str, ref: str, repo: Path | None = None) -> Environment | None:
    """`workloads/<env>` as it was at git `ref`, validated with the current code; None if it did not exist.

    Raises RefError for an unknown ref, SpecError if the specs there do not validate.
    """
    repo = specs.REPO_ROOT if repo is None else repo
    check_ref(ref)
    try:
        subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                       check=True, capture_output=True)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise RefError(f"unknown git ref {ref!r}") from exc
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", ref, "--", "workloads"],
                             capture_output=True)
    if archive.returncode != 0:  # no workloads/ at that ref
        return None
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(tmp, filter=_links_inert)
        root = Path(tmp) / "workloads"
        if not os.path.lexists(root / env) and not root.is_symlink():
            return None
        return load_environment(env, root)


def _links_inert(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo | None:
    """Links at the base stay links, so load_environment refuses them as it does in the working tree,
    but point nowhere: extracting never writes or reads outside the temporary folder."""
    if member.issym() or member.islnk():
        member = copy.copy(member)
        member.type, member.linkname = tarfile.SYMTYPE, "link-not-followed-by-kaito-gitops"
    return tarfile.data_filter(member, dest)


def default_base(repo: Path | None = None) -> str:
    """origin/main when the clone has it (pull requests), else HEAD (local work)."""
    repo = specs.REPO_ROOT if repo is None else repo
    found = subprocess.run(["git", "-C", str(repo), "rev-parse", "--verify", "--quiet", "origin/main"],
                           capture_output=True)
    return "origin/main" if found.returncode == 0 else "HEAD"
