"""Writing rendered objects: deterministic YAML, one file per object, and the output folder's marker."""

from __future__ import annotations

import copy
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


def manifest_path(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    folder = meta.get("namespace", "_cluster")
    return f"{folder}/{obj['kind'].lower()}-{meta['name']}.yaml"


class OutputDirError(Exception):
    pass


def write_manifests(objects: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One file per object. Files we wrote last time and no longer render are removed;
    a folder we did not write is never touched."""
    marker = out_dir / MARKER
    if out_dir.exists() and any(out_dir.iterdir()) and not marker.exists():
        raise OutputDirError(f"{out_dir} is not empty and was not written by kaito-gitops render; "
                             "choose an empty or new folder")
    previous = set(marker.read_text().split()) if marker.exists() else set()
    written = []
    for obj in objects:
        rel = manifest_path(obj)
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(to_yaml(obj), encoding="utf-8")
        written.append(rel)
    for stale in sorted(previous - set(written)):
        target = out_dir / stale
        if target.is_file():
            target.unlink()
            if target.parent != out_dir and not any(target.parent.iterdir()):
                target.parent.rmdir()
    out_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text("\n".join(sorted(written)) + "\n", encoding="utf-8")
    return [out_dir / rel for rel in written]
