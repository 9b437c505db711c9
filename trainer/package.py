"""Lay a trained adapter out as KAITO's adapter images are: two files under /data.

KAITO's tuning pusher builds a one-layer OCI image holding data/adapter_config.json and
data/adapter_model.safetensors, and its inference Workspace copies /data/* of each adapter
image into the model server. `package_adapter` writes the same thing in two forms, so the
Job's push step needs no Docker daemon:

  <out>/data/adapter_config.json, <out>/data/adapter_model.safetensors   the files
  <out>/Dockerfile                        FROM scratch + COPY data /data (docker/buildah/kaniko)
  <out>/layer.tar.gz + <out>/config.json  the same image as an OCI layer and image config, for
      oras push --config config.json:application/vnd.oci.image.config.v1+json \
           <registry>/<repository>:<tag> layer.tar.gz:application/vnd.oci.image.layer.v1.tar+gzip
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
MARKER = ".kaito-trainer-package"  # what package wrote, so a second run may replace exactly that
WRITTEN = ("Dockerfile", "layer.tar.gz", "config.json", *(f"data/{name}" for name in ADAPTER_FILES))


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


def _check_out_dir(out_dir: Path) -> None:
    """--out is new, empty, or written by an earlier package run and holding only what it writes; links in
    it are never followed. Anything else is refused: packaging must not overwrite files it did not create."""
    if not out_dir.exists() and not out_dir.is_symlink():
        return
    if not out_dir.is_dir():
        raise ConfigError([f"--out {out_dir}: not a folder"], source="package")
    found = []
    for folder, dirs, files in os.walk(out_dir):
        for name in sorted(dirs + files):
            path = Path(folder, name)
            if path.is_symlink():
                raise ConfigError([f"--out {out_dir}: {path} is a symbolic link; choose an empty or new folder"],
                                  source="package")
            found.append(path.relative_to(out_dir).as_posix())
    if found and MARKER not in found:
        raise ConfigError([f"--out {out_dir}: not empty and not written by `python -m trainer package`; "
                           "choose an empty or new folder"], source="package")
    foreign = sorted(set(found) - {MARKER, "data", *WRITTEN})
    if foreign:
        raise ConfigError([f"--out {out_dir}: holds {foreign[0]}, which package did not write; "
                           "choose an empty or new folder"], source="package")


def _write(path: Path, data: bytes) -> None:
    """Create or replace a plain file, never writing through a link (O_NOFOLLOW)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def package_adapter(adapter_dir: Path, out_dir: Path) -> dict:
    """Write the adapter image's build context to out_dir; return the layer and config digests."""
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise ConfigError([f"--adapter {adapter_dir}: missing {', '.join(missing)}; point it at "
                           "TrainingArguments.output_dir of a finished run"], source="package")
    try:  # refuse a truncated config
        json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError([f"--adapter {adapter_dir}: adapter_config.json is not JSON ({err})"],
                          source="package") from None
    _check_out_dir(out_dir)
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / MARKER, "\n".join(WRITTEN).encode() + b"\n")  # first: a run cut short stays ours
    for name in ADAPTER_FILES:
        _write(data_dir / name, (adapter_dir / name).read_bytes())
    _write(out_dir / "Dockerfile", b"FROM scratch\nCOPY data /data\n")

    tar = _layer(data_dir)
    layer = gzip.compress(tar, mtime=0)
    _write(out_dir / "layer.tar.gz", layer)
    config = {
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    _write(out_dir / "config.json", config_bytes)
    return {"layer": f"sha256:{hashlib.sha256(layer).hexdigest()}",
            "config": f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"}
