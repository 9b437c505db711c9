"""Lay a trained adapter out as KAITO's adapter images are: two files under /data, plus lineage.

KAITO's tuning pusher builds a one-layer OCI image holding data/adapter_config.json and
data/adapter_model.safetensors, and its inference Workspace copies /data/* of each adapter
image into the model server. `package_adapter` writes the same thing in two forms, so the
Job's push step needs no Docker daemon:

  <out>/data/adapter_config.json, <out>/data/adapter_model.safetensors   the files
  <out>/Dockerfile                        FROM scratch + COPY data /data (docker/buildah/kaniko)
  <out>/layer.tar.gz + <out>/config.json  the same image as an OCI layer and image config
  <out>/annotations.json                  manifest annotations in oras' --annotation-file format
      oras push --config config.json:application/vnd.oci.image.config.v1+json \
           --annotation-file annotations.json <registry>/<repository>:<tag> \
           layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip

The annotations say what the adapter is: what the caller passes (base model, method, data
sources), the SHA-256 of the training config and of the data the trainer read, and the
trainer's metrics.json. `--out` is written only if it is new or holds exactly what an earlier
run wrote (a re-run after eviction); anything else there, or a symbolic link, is refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from trainer.config import ConfigError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MARKER = ".kaito-gitops-package"
WRITTEN = (MARKER, "data", *(f"data/{name}" for name in ADAPTER_FILES), "Dockerfile", "layer.tar.gz",
           "config.json", "annotations.json")
ANNOTATION_PREFIX = "kaito-gitops.dev/"
CONFIG_SHA = ANNOTATION_PREFIX + "config.sha256"
DATA_SHA = ANNOTATION_PREFIX + "data.sha256"
DATA_FILES = ANNOTATION_PREFIX + "data.files"
METRICS = ANNOTATION_PREFIX + "metrics"


def _layer(data_dir: Path) -> bytes:
    """A reproducible tar of data/: fixed order, owner and timestamps, so the digest depends only on the files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        entries = [("data", None)] + [(f"data/{name}", data_dir / name) for name in ADAPTER_FILES]
        for arcname, path in entries:
            info = tarfile.TarInfo(arcname)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.mode, info.size = 0o644, path.stat().st_size
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return raw.getvalue()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_digest(data_dirs: list[Path]) -> tuple[str, int]:
    """One SHA-256 over every file under the directories: each file's directory as given, its path relative to
    that directory and its own SHA-256, in that order, sorted. A file moved between the training and the
    validation directory changes it."""
    entries = sorted((data_dir.as_posix(), path.relative_to(data_dir).as_posix(), path)
                     for data_dir in data_dirs for path in data_dir.rglob("*")
                     if path.is_file() and not path.is_symlink())
    digest = hashlib.sha256()
    for data_dir, relative, path in entries:
        digest.update(f"{data_dir}\0{relative}\0{_sha256_file(path)}\n".encode())
    return f"sha256:{digest.hexdigest()}", len(entries)


def _check_out_dir(out_dir: Path) -> None:
    """Refuse an --out that holds anything this command did not write, or a link anywhere in it."""
    if out_dir.is_symlink():
        raise ConfigError([f"--out {out_dir}: is a symbolic link; give a new directory"], source="package")
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError([f"--out {out_dir}: exists and is not a directory; give a new directory"], source="package")
    present = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")}
    if present and MARKER not in present:
        raise ConfigError([f"--out {out_dir}: is not empty and was not written by `python -m trainer package`; "
                           "give a new or empty directory"], source="package")
    links = sorted(p for p in present if (out_dir / p).is_symlink())
    if links:
        raise ConfigError([f"--out {out_dir}: {', '.join(links[:5])} is a symbolic link, which this command never "
                           "writes through; remove it or give a new directory"], source="package")
    foreign = sorted(present - set(WRITTEN))
    if foreign:
        raise ConfigError([f"--out {out_dir}: holds {', '.join(foreign[:5])}, which this command did "
                           "not write; remove them or give a new directory"], source="package")


def _annotations(adapter_dir: Path, config: Path | None, data_dirs: list[Path],
                 given: dict[str, str]) -> dict[str, str]:
    out = dict(given)
    if config is not None:
        if not config.is_file():
            raise ConfigError([f"--config {config}: no such file"], source="package")
        out[CONFIG_SHA] = f"sha256:{_sha256_file(config)}"
    if data_dirs:
        for data in data_dirs:
            if not data.is_dir():
                raise ConfigError([f"--data {data}: no such directory"], source="package")
        out[DATA_SHA], count = data_digest(data_dirs)
        out[DATA_FILES] = str(count)
    metrics = adapter_dir / "metrics.json"
    if metrics.is_file():
        try:
            out[METRICS] = json.dumps(json.loads(metrics.read_text()), sort_keys=True, separators=(",", ":"))
        except ValueError as err:
            raise ConfigError([f"{metrics}: not JSON ({err})"], source="package") from err
    return out


def _write(path: Path, data: bytes) -> None:
    """Create or replace a plain file, never writing through a link (O_NOFOLLOW)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def parse_annotations(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError([f"--annotation {pair!r}: write KEY=VALUE"], source="package")
        out[key] = value
    return out


def package_adapter(adapter_dir: Path, out_dir: Path, config: Path | None = None,
                    data_dirs: list[Path] | None = None, annotations: dict[str, str] | None = None) -> dict:
    """Write the adapter image's build context to out_dir; return the layer and config digests and the annotations."""

    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise ConfigError([f"--adapter {adapter_dir}: missing {', '.join(missing)}; point it at "
                           "TrainingArguments.output_dir of a finished run"], source="package")
    try:
        json.loads((adapter_dir / "adapter_config.json").read_text())  # refuse a truncated config
    except ValueError as err:
        raise ConfigError([f"--adapter {adapter_dir}: adapter_config.json is not JSON ({err})"],
                          source="package") from None
    _check_out_dir(out_dir)
    manifest_annotations = _annotations(adapter_dir, config, data_dirs or [], annotations or {})
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / MARKER, b"written by python -m trainer package; it rewrites only the files it wrote\n")
    for name in ADAPTER_FILES:
        _write(data_dir / name, (adapter_dir / name).read_bytes())
    _write(out_dir / "Dockerfile", b"FROM scratch\nCOPY data /data\n")

    tar = _layer(data_dir)
    layer = gzip.compress(tar, mtime=0)
    _write(out_dir / "layer.tar.gz", layer)
    config_doc = {
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
    }
    config_bytes = json.dumps(config_doc, sort_keys=True, separators=(",", ":")).encode()
    _write(out_dir / "config.json", config_bytes)
    _write(out_dir / "annotations.json", (json.dumps({"$manifest": manifest_annotations}, indent=2,
                                                     sort_keys=True) + "\n").encode())
    return {"layer": f"sha256:{hashlib.sha256(layer).hexdigest()}",
            "config": f"sha256:{hashlib.sha256(config_bytes).hexdigest()}",
            "annotations": manifest_annotations}
