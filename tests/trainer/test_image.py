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


def test_the_bundled_job_runs_as_the_images_user_whose_home_exists():
    """The pod's runAsUser overrides USER; a uid the image has no passwd entry for runs with HOME=/, where
    Triton's and other caches cannot be written. The rendered Job uses the image's own uid."""
    from infra.render.bundled import RUN_AS

    users = [args for word, args in instructions() if word == "USER"]
    created = re.search(r"useradd --uid (\d+) --create-home", DOCKERFILE.read_text())
    assert created and int(created.group(1)) == int(users[-1]) == RUN_AS


def test_the_allocator_uses_expandable_segments():
    """Out of GPU memory exits 2 (not retried), so fragmentation must not cause it: PyTorch's CUDA caching
    allocator with expandable segments (docs: "CUDA semantics", "Optimizing memory usage with
    PYTORCH_CUDA_ALLOC_CONF") grows segments instead of stranding free blocks between them."""
    env = " ".join(args for word, args in instructions() if word == "ENV")
    assert "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" in env


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


def _package(adapter: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trainer", "package", f"--adapter={adapter}", f"--out={out}", *extra],
                          capture_output=True, text=True, cwd=REPO)


def test_package_runs_again_over_its_own_output(adapter_dir, tmp_path):
    """A retried pod packages into the context an earlier attempt wrote."""
    out = tmp_path / "ctx"
    assert _package(adapter_dir, out).returncode == 0
    proc = _package(adapter_dir, out)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", ["foreign-file", "foreign-in-data", "link-inside", "out-is-link", "out-is-file"])
def test_package_refuses_to_overwrite_what_it_did_not_write(adapter_dir, tmp_path, case):
    out, victim = tmp_path / "ctx", tmp_path / "victim"
    victim.write_text("keep me")
    if case == "out-is-link":
        out.symlink_to(victim)
    elif case == "out-is-file":
        out.write_text("keep me too")
    elif case == "foreign-file":  # someone's directory
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:  # package's own output, then tampered with
        assert _package(adapter_dir, out).returncode == 0
        if case == "foreign-in-data":
            (out / "data" / "extra.bin").write_text("mine")
        else:
            (out / "layer.tar.gz").unlink()
            (out / "layer.tar.gz").symlink_to(victim)
    proc = _package(adapter_dir, out)
    assert proc.returncode == 2, proc.stderr
    assert "--out" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "keep me"
    if case == "out-is-file":
        assert out.read_text() == "keep me too"
    if case == "foreign-file":
        assert (out / "notes.txt").read_text() == "mine" and not (out / "layer.tar.gz").exists()


def test_package_records_lineage_annotations(adapter_dir, tmp_path):
    config, data = tmp_path / "training_config.yaml", tmp_path / "data"
    config.write_text("training_config: {}\n")
    (data / "validation").mkdir(parents=True)
    (data / "a.jsonl").write_text("{}\n")
    (data / "validation" / "b.jsonl").write_text("{}\n")
    (adapter_dir / "metrics.json").write_text(json.dumps({"tuned": {"loss": 0.5}}))
    out = tmp_path / "ctx"
    proc = _package(adapter_dir, out, f"--config={config}", f"--data={data}",
                    "--annotation=sh.kaito.model.name=phi-4", "--annotation=kaito-gitops.dev/data.train={\"urls\":[]}")
    assert proc.returncode == 0, proc.stderr
    notes = json.loads((out / "annotations.json").read_text())["$manifest"]
    assert notes["sh.kaito.model.name"] == "phi-4"
    assert notes["kaito-gitops.dev/data.train"] == '{"urls":[]}'
    assert notes["kaito-gitops.dev/config.sha256"] == "sha256:" + hashlib.sha256(config.read_bytes()).hexdigest()
    assert notes["kaito-gitops.dev/data.files"] == "2"
    assert json.loads(notes["kaito-gitops.dev/metrics"]) == {"tuned": {"loss": 0.5}}
    before = notes["kaito-gitops.dev/data.sha256"]
    (data / "validation" / "b.jsonl").write_text("{\"changed\": 1}\n")
    assert _package(adapter_dir, out, f"--data={data}").returncode == 0
    assert json.loads((out / "annotations.json").read_text())["$manifest"]["kaito-gitops.dev/data.sha256"] != before


def test_package_hashes_every_data_directory_given(adapter_dir, tmp_path):
    """The Job passes the training and the validation directory: both are in the one data hash."""
    train, validation = tmp_path / "data", tmp_path / "validation"
    for d in (train, validation):
        d.mkdir()
    (train / "a.jsonl").write_text("{}\n")
    (validation / "b.jsonl").write_text("{}\n")

    def recorded() -> dict:
        proc = _package(adapter_dir, tmp_path / "ctx", f"--data={train}", f"--data={validation}")
        assert proc.returncode == 0, proc.stderr
        notes = json.loads((tmp_path / "ctx" / "annotations.json").read_text())["$manifest"]
        return {"files": notes["kaito-gitops.dev/data.files"], "sha256": notes["kaito-gitops.dev/data.sha256"]}

    before = recorded()
    assert before["files"] == "2"
    (validation / "b.jsonl").write_text("{\"changed\": 1}\n")
    changed = recorded()
    assert changed["sha256"] != before["sha256"]
    (validation / "b.jsonl").rename(train / "b.jsonl")  # the same file, now training data
    moved = recorded()
    assert moved["files"] == "2" and moved["sha256"] != changed["sha256"]


def test_package_annotation_without_a_key_is_a_usage_error(adapter_dir, tmp_path):
    proc = _package(adapter_dir, tmp_path / "ctx", "--annotation=novalue")
    assert proc.returncode == 2 and "KEY=VALUE" in proc.stderr
