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
import shutil
import tarfile
from pathlib import Path

from trainer.config import ConfigError

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"


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


def package_adapter(adapter_dir: Path, out_dir: Path) -> dict:
    """Write the adapter image's build context to out_dir; return the layer and config digests."""
    missing = [name for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    if missing:
        raise ConfigError([f"--adapter {adapter_dir}: missing {', '.join(missing)}; point it at "
                           "TrainingArguments.output_dir of a finished run"], source="package")
    json.loads((adapter_dir / "adapter_config.json").read_text())  # refuse a truncated config
    data_dir = out_dir / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ADAPTER_FILES:
        shutil.copyfile(adapter_dir / name, data_dir / name)
    (out_dir / "Dockerfile").write_text("FROM scratch\nCOPY data /data\n")

    tar = _layer(data_dir)
    layer = gzip.compress(tar, mtime=0)
    (out_dir / "layer.tar.gz").write_bytes(layer)
    config = {
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar).hexdigest()}"]},
    }
    config_bytes = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    (out_dir / "config.json").write_bytes(config_bytes)
    return {"layer": f"sha256:{hashlib.sha256(layer).hexdigest()}",
            "config": f"sha256:{hashlib.sha256(config_bytes).hexdigest()}"}
