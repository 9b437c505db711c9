"""The trainer image's Dockerfile (Docker cannot run here, so its properties are read) and the
adapter image layout `python -m trainer package` writes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "trainer" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_base_image_is_a_pinned_cuda_pytorch_tag():
    bases = [args for word, args in instructions() if word == "FROM"]
    assert len(bases) == 1
    image = bases[0].split()[0]
    name, _, tag = image.partition(":")
    assert name == "pytorch/pytorch"
    assert re.fullmatch(r"\d+\.\d+\.\d+-cuda12\.\d+-cudnn9-runtime", tag.split("@")[0]), tag
    assert "latest" not in image


def test_runs_as_a_numeric_non_root_user():
    users = [args for word, args in instructions() if word == "USER"]
    assert users, "no USER: the container would run as root"
    assert users[-1].isdigit() and int(users[-1]) != 0


def test_entrypoint_is_the_trainer_module():
    entry = [args for word, args in instructions() if word == "ENTRYPOINT"]
    assert json.loads(entry[-1]) == ["python", "-m", "trainer"]


def test_no_secrets_are_baked_in():
    secretish = re.compile(r"(TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_?KEY|CREDENTIAL)", re.I)
    for word, args in instructions():
        if word in ("ENV", "ARG"):
            assert not secretish.search(args), f"{word} {args}"
        assert not re.search(r"(hf_[A-Za-z0-9]{20,}|AKIA[0-9A-Z]{16})", args)


def test_installs_the_trainer_and_gpu_extras_from_pyproject_but_not_torch(tmp_path):
    """Runs the Dockerfile's own requirement-list command against pyproject.toml."""
    import re
    import shutil
    import tomllib

    text = DOCKERFILE.read_text()
    command = re.search(r'RUN python -c "(.+?)" \\', text).group(1)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    requirements = tmp_path / "req.txt"
    subprocess.run([sys.executable, "-c", command.replace("/tmp/req.txt", str(requirements))], cwd=tmp_path, check=True)
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    wanted = [d for d in extras["trainer"] + extras["gpu"] if not d.startswith("torch")]
    assert requirements.read_text().splitlines() == wanted
    assert any(d.startswith("liger-kernel") for d in wanted)
    assert "flash-attn==" in text and "COPY trainer" in text


@pytest.fixture
def adapter_dir(tmp_path) -> Path:
    d = tmp_path / "results"
    d.mkdir()
    (d / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (d / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    (d / "training_args.bin").write_bytes(b"not for the image")
    return d


def test_package_lays_out_kaito_adapter_image(adapter_dir, tmp_path):
    out = tmp_path / "ctx"
    proc = subprocess.run([sys.executable, "-m", "trainer", "package", "--adapter", str(adapter_dir),
                           "--out", str(out)], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "data").iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]
    assert (out / "Dockerfile").read_text() == "FROM scratch\nCOPY data /data\n"

    tar_bytes = gzip.decompress((out / "layer.tar.gz").read_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == ["data", "data/adapter_config.json", "data/adapter_model.safetensors"]
        assert tar.extractfile("data/adapter_config.json").read() == (adapter_dir / "adapter_config.json").read_bytes()
    config = json.loads((out / "config.json").read_text())
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}"]


def test_package_is_reproducible(adapter_dir, tmp_path):
    from trainer.package import package_adapter

    assert package_adapter(adapter_dir, tmp_path / "a") == package_adapter(adapter_dir, tmp_path / "b")


def test_package_without_adapter_is_a_usage_error(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trainer", "package", "--adapter", str(tmp_path),
                           "--out", str(tmp_path / "ctx")], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert "missing adapter_config.json, adapter_model.safetensors" in proc.stderr
    assert "Traceback" not in proc.stderr
