"""Writing rendered objects: deterministic YAML, one file per object, and the output folder's marker."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import yaml

MARKER = ".kaito-gitops-rendered"


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's training_config.yaml) as literal blocks, so diffs read line by line."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(obj: dict[str, Any]) -> str:
    return yaml.dump(copy.deepcopy(obj), Dumper=_Dumper, sort_keys=True, default_flow_style=False, width=120)


# What render writes: `<namespace or _cluster>/<kind>-<name>.yaml`, one folder level, names Kubernetes allows.
# Marker entries of any other shape were not written by render, so they are never deleted.
_MANIFEST = re.compile(r"^(_cluster|[a-z0-9]([-a-z0-9]*[a-z0-9])?)/[a-z]+-[a-z0-9]([-.a-z0-9]*[a-z0-9])?\.yaml$")


class OutputDirError(Exception):
    pass


def manifest_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    folder = meta.get("namespace", "_cluster")
    rel = f"{folder}/{obj['kind'].lower()}-{meta['name']}.yaml"
    if not _MANIFEST.fullmatch(rel) or len(rel) > 255:
        raise OutputDirError(f"refusing to write {rel!r}: not a namespace/kind-name.yaml path")
    return rel


def _check_out_dir(out_dir: Path) -> set[str]:
    """The files render wrote here last time; OutputDirError if the folder is not render's to change.

    Links are never followed inside the folder: one there could point anywhere (the folder
    itself may be a link the user chose).
    """
    marker = out_dir / MARKER
    if not out_dir.exists():
        return set()
    if not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} is not a folder")
    if not any(out_dir.iterdir()):
        return set()
    if not marker.exists() and not marker.is_symlink():
        raise OutputDirError(f"{out_dir} is not empty and was not written by kaito-gitops render; "
                             "choose an empty or new folder")
    for folder, dirs, files in os.walk(out_dir):
        for name in dirs + files:
            path = Path(folder, name)
            if path.is_symlink():
                raise OutputDirError(f"{path} is a symbolic link; render writes only plain files and folders "
                                     "it created (remove the link, or choose an empty or new folder)")
    if not marker.is_file():
        raise OutputDirError(f"{marker} is not a file; choose an empty or new folder")
    try:
        entries = marker.read_text(encoding="utf-8").split()
    except (UnicodeDecodeError, OSError) as exc:
        raise OutputDirError(f"{marker} cannot be read ({exc.__class__.__name__}); "
                             "choose an empty or new folder") from exc
    foreign = [e for e in entries if not _MANIFEST.fullmatch(e)]
    if foreign:
        raise OutputDirError(f"{marker} lists {foreign[0].encode('unicode_escape').decode('ascii')!r}, "
                             "a path render never writes; the marker was edited: choose an empty or new folder")
    return set(entries)


def _write(path: Path, text: str) -> None:
    """Create or truncate a plain file; O_NOFOLLOW: a link put there after the check is not written through."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def write_manifests(objects: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One file per object. Files we wrote last time and no longer render are removed;
    a folder we did not write is never touched, nor anything outside it."""
    previous = _check_out_dir(out_dir)
    written = [manifest_path(obj) for obj in objects]
    out_dir.mkdir(parents=True, exist_ok=True)
    for obj, rel in zip(objects, written):
        path = out_dir / rel
        path.parent.mkdir(exist_ok=True)
        _write(path, to_yaml(obj))
    for stale in sorted(previous - set(written)):
        target = out_dir / stale
        if target.is_file() and not target.is_symlink():
            target.unlink()
            if not any(target.parent.iterdir()):
                target.parent.rmdir()
    _write(out_dir / MARKER, "\n".join(sorted(written)) + "\n")
    return [out_dir / rel for rel in written]
