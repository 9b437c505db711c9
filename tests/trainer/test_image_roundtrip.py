"""An adapter image's round trip on real components: Debian's docker-registry (with htpasswd auth, so
pulls and pushes without credentials fail), the rendered Job's package and push steps, KAITO's way of
pulling it back (skopeo copy --dest-decompress to a dir: layout, `skopeo inspect` for the layers, untar
each: pkg/workspace/image/puller.sh at the pinned commit), and peft loading the result onto the same
tiny model. The rendered `pull-previous-adapter` script runs against the same registry.

Only the oras CLI is not real here (no release on PyPI, Debian or npm): the rendered `oras push`
arguments are parsed and handed to the oras Python client, which sends the same manifest.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from infra.model import TUNING_KIND, Environment, Workload
from infra.render import bundled

REPO = Path(__file__).resolve().parents[2]
REGISTRY_BIN = "/usr/bin/docker-registry"
USER, PASSWORD = "adapter-bot", "s3cret-for-this-test-only"
KAITO_LAYER_LIST = "{{ range .Layers }}{{ slice . 7 }} {{ end }}"  # puller.sh's skopeo inspect format


def _require_tools() -> None:
    missing = [name for name, ok in (("docker-registry", os.access(REGISTRY_BIN, os.X_OK)),
                                     ("skopeo", shutil.which("skopeo") is not None)) if not ok]
    if not missing:
        return
    message = f"{', '.join(missing)} not installed: `make test` installs them (apt, as root)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """A docker-registry on 127.0.0.1 with htpasswd auth; yields its host:port."""
    _require_tools()
    import bcrypt

    root = tmp_path_factory.mktemp("registry")
    (root / "htpasswd").write_text(f"{USER}:{bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
    port = _free_port()
    (root / "config.yml").write_text(json.dumps({
        "version": 0.1, "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(root / "storage")}},
        "http": {"addr": f"127.0.0.1:{port}"},
        "auth": {"htpasswd": {"realm": "test", "path": str(root / "htpasswd")}},
    }))
    proc = subprocess.Popen([REGISTRY_BIN, "serve", str(root / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
        except urllib.error.HTTPError as err:
            assert err.code == 401, err  # up, and refusing anonymous requests
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"docker-registry did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
    yield f"localhost:{port}"  # oras and skopeo treat localhost by name; registries.conf marks it plain HTTP
    proc.terminate()
    proc.wait(timeout=10)


def _docker_config(path: Path, host: str, user: str = USER, password: str = PASSWORD) -> Path:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    path.write_text(json.dumps({"auths": {host: {"auth": token}}}))
    return path


@pytest.fixture
def skopeo_env(registry, tmp_path):
    """skopeo's environment: the test registry speaks plain HTTP, which skopeo allows only without TLS
    verification (Debian's skopeo ignores CONTAINERS_REGISTRIES_CONF), so `skopeo copy` on PATH is the real
    skopeo with --src-tls-verify=false and otherwise the same arguments."""
    shim = tmp_path / "shim"
    shim.mkdir()
    real = shutil.which("skopeo")
    (shim / "skopeo").write_text(f'#!/bin/sh\nif [ "$1" = copy ]; then shift; exec {real} copy --src-tls-verify=false "$@"; '
                                 f'fi\nexec {real} "$@"\n')
    (shim / "skopeo").chmod(0o755)
    return {**os.environ, "PATH": f"{shim}:{os.environ['PATH']}", "HOME": str(tmp_path)}


def _tiny_model():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=32))


def _workload(name: str, spec_extra: dict) -> Workload:
    spec = {"engine": "bundled", "baseModel": "phi-3-mini-128k-instruct", "method": "qlora", "quantization": "4bit",
            "data": {"train": {"urls": ["https://example.com/data/train.jsonl"]}},
            "output": {"image": {"repository": f"adapters/{name}", "tag": "v1", "pushSecret": "acr-adapter-push"}},
            "outputDir": "/mnt/results", "hyperparameters": {},
            "placement": {"instanceType": "Standard_NC24ads_A100_v4", "nodePool": "gpua100"}, **spec_extra}
    return Workload(kind=TUNING_KIND, name=name, team="ml-platform", namespace="ml-platform", spec=spec,
                    path=Path(f"workloads/dev/ml-platform/{name}.yaml"))


def _env(registry: str, *workloads: Workload) -> Environment:
    defaults = {"registry": registry, "trainerImage": "trainer:test", "maxTrainingHours": 72}
    return Environment(name="dev", defaults=defaults, workloads=list(workloads))


def _container(job: dict, name: str) -> dict:
    pod = job["spec"]["template"]["spec"]
    return next(c for c in pod["initContainers"] + pod["containers"] if c["name"] == name)


def _localize(value: str, places: dict[str, Path]) -> str:
    """A rendered path (or --option=path) with its mount path replaced by the test's directory."""
    prefix, sep, path = value.partition("=") if value.startswith("--") else ("", "", value)
    for mount in sorted(places, key=len, reverse=True):
        if path == mount or path.startswith(mount + "/"):
            return f"{prefix}{sep}{places[mount]}{path[len(mount):]}"
    return value


def _oras_push(args: list[str], cwd: Path, insecure_host: str):
    """`oras push` with the rendered arguments, sent by the oras Python client."""
    import oras.provider

    cli = argparse.ArgumentParser(prog="oras push", exit_on_error=False)
    cli.add_argument("--registry-config")
    cli.add_argument("--config")
    cli.add_argument("--annotation-file")
    cli.add_argument("ref")
    cli.add_argument("files", nargs="+")
    parsed = cli.parse_args(args)
    # The test registry answers with a Basic challenge; the oras CLI picks Basic or Bearer from the challenge.
    client = oras.provider.Registry(hostname=insecure_host, insecure=True, auth_backend="basic")
    here = Path.cwd()
    os.chdir(cwd)  # oras resolves file arguments against the working directory, as the container's workingDir
    try:
        return client.push(target=parsed.ref, config_path=parsed.registry_config, files=parsed.files,
                           manifest_config=parsed.config, annotation_file=parsed.annotation_file)
    finally:
        os.chdir(here)


def _run(argv: list[str], **kwargs) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{argv}: {proc.stderr}"
    return proc.stdout


def _kaito_pull(ref: str, authfile: Path, work: Path, env: dict) -> tuple[Path, dict]:
    """KAITO's puller.sh steps: copy to a dir: layout, list the layers, untar each into a rootfs."""
    layout, rootfs = work / "layout", work / "rootfs"
    work.mkdir()  # puller.sh: TMPDIR="$(mktemp -d)"
    _run(["skopeo", "copy", "--dest-decompress", f"--authfile={authfile}", f"docker://{ref}", f"dir:{layout}"], env=env)
    layers = _run(["skopeo", "inspect", "--format", KAITO_LAYER_LIST, f"dir:{layout}"], env=env).split()
    rootfs.mkdir()
    for layer in layers:
        _run(["tar", "x", "-f", str(layout / layer), "-C", str(rootfs)])
    return rootfs / "data", json.loads((layout / "manifest.json").read_text())


def test_adapter_image_round_trip(registry, skopeo_env, tmp_path):
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model

    # A trained adapter (random LoRA weights, so it changes the output) and the trainer's metrics.
    results, config_dir, data_dir = tmp_path / "results", tmp_path / "config", tmp_path / "data"
    for d in (results, config_dir, data_dir / "validation"):
        d.mkdir(parents=True)
    tuned = get_peft_model(_tiny_model(), LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                     init_lora_weights=False))
    tuned.save_pretrained(results)
    (results / "metrics.json").write_text(json.dumps({"tuned": {"loss": 1.25}, "eval_examples": 3}))
    (config_dir / "training_config.yaml").write_text("training_config:\n  LoraConfig: {r: 4}\n")
    (data_dir / "000-train.jsonl").write_text('{"messages": []}\n')
    (data_dir / "validation" / "000-val.jsonl").write_text('{"messages": []}\n')

    w = _workload("roundtrip", {})
    job = bundled.job(_env(registry, w), w, {})
    places = {"/mnt/results": results, "/mnt/config": config_dir, "/mnt/data": data_dir}

    package = _container(job, "package-adapter")
    argv = package["command"] + [_localize(a, places) for a in package["args"]]
    assert argv[:3] == ["python", "-m", "trainer"]
    proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, proc.stderr

    push = _container(job, "push-adapter")
    assert push["command"] == ["oras", "push"]
    secrets = tmp_path / "push-secret"
    secrets.mkdir()
    _docker_config(secrets / "config.json", registry)
    args = [_localize(a, {"/mnt/registry/push": secrets}) for a in push["args"] if a != "--"]
    context = Path(_localize(push["workingDir"], places))
    ref = f"{registry}/adapters/roundtrip:v1"
    assert ref in args
    anonymous = tmp_path / "anonymous.json"
    _docker_config(anonymous, registry, password="wrong")
    with pytest.raises(ValueError, match="UNAUTHORIZED"):  # refused without the push secret's credentials
        _oras_push([str(anonymous) if a.endswith("config.json") and "/" in a else a for a in args], context, registry)
    _oras_push(args, context, registry)

    # Pulled back the way KAITO's inference puller does, with the read-scoped credentials.
    authfile = _docker_config(tmp_path / "pull-secret.json", registry)
    pulled, manifest = _kaito_pull(ref, authfile, tmp_path / "kaito", skopeo_env)
    assert sorted(p.name for p in pulled.iterdir()) == ["adapter_config.json", "adapter_model.safetensors"]

    notes = manifest["annotations"]
    assert notes["sh.kaito.model.name"] == "phi-3-mini-128k-instruct"
    assert notes["kaito-gitops.dev/method"] == "qlora-4bit"
    assert notes["kaito-gitops.dev/workload"] == "dev/ml-platform/roundtrip"
    assert json.loads(notes["kaito-gitops.dev/data.train"]) == {"urls": ["https://example.com/data/train.jsonl"]}
    config_sha = hashlib.sha256((config_dir / "training_config.yaml").read_bytes()).hexdigest()
    assert notes["kaito-gitops.dev/config.sha256"] == f"sha256:{config_sha}"
    assert notes["kaito-gitops.dev/data.files"] == "2"
    assert notes["kaito-gitops.dev/data.sha256"].startswith("sha256:")
    assert json.loads(notes["kaito-gitops.dev/metrics"]) == {"tuned": {"loss": 1.25}, "eval_examples": 3}

    # peft loads it onto the same base model and computes what the trained adapter computed.
    loaded = PeftModel.from_pretrained(_tiny_model(), str(pulled))
    tokens = torch.tensor([[1, 5, 9, 13, 17]])
    with torch.no_grad():
        want, got = tuned(tokens).logits, loaded(tokens).logits
        base = _tiny_model()(tokens).logits
    assert torch.allclose(want, got, atol=1e-6)
    assert not torch.allclose(base, got, atol=1e-4), "the adapter changed nothing: the test would prove nothing"

    # A pull without credentials is refused: the secret is what makes the pull work.
    refused = subprocess.run(["skopeo", "copy", f"docker://{ref}", f"dir:{tmp_path / 'anon'}"], env=skopeo_env,
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower(), refused.stderr


def test_rendered_continue_from_puller_fetches_the_adapter(registry, skopeo_env, tmp_path):
    """The Job's own pull script (continueFrom) against the registry: data/ lands where the trainer reads it."""
    from trainer.package import package_adapter

    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    package_adapter(adapter, tmp_path / "ctx")
    secrets = tmp_path / "push"
    secrets.mkdir()
    _docker_config(secrets / "config.json", registry)
    ref = f"{registry}/adapters/previous:v3"
    _oras_push(["--registry-config", str(secrets / "config.json"), "--config",
                f"config.json:{bundled.CONFIG_MEDIA_TYPE}", "--annotation-file", "annotations.json", ref,
                f"layer.tar.gz:{bundled.LAYER_MEDIA_TYPE}"], tmp_path / "ctx", registry)

    w = _workload("next", {"continueFrom": {"image": ref}})
    puller = _container(bundled.job(_env(registry, w), w, {}), "pull-previous-adapter")
    auth_dir, continue_dir = tmp_path / "pull-secrets", tmp_path / "continue"
    auth_dir.mkdir()
    _docker_config(auth_dir / "team-data.json", registry, password="wrong")  # tried first, fails
    _docker_config(auth_dir / "zz-acr-pull.json", registry)
    args = [_localize(a, {"/mnt/continue": continue_dir, bundled.PULL_AUTH_DIR: auth_dir}) for a in puller["args"]]
    assert args[0] == ref
    proc = subprocess.run(puller["command"] + args, env=skopeo_env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (continue_dir / "data" / "adapter_model.safetensors").read_bytes() == b"weights"
    assert json.loads((continue_dir / "data" / "adapter_config.json").read_text())["r"] == 2


def test_rendered_weights_pull_lands_where_the_trainer_loads_the_model(registry, tmp_path, monkeypatch):
    """A preset's weights as an OCI artifact (one file per layer, as KAITO ships them since 0.2.0), pulled with
    the rendered `oras pull` arguments and the read secret: transformers loads the model from the trainer's path."""
    import oras.provider
    from transformers import AutoModelForCausalLM

    from trainer.config import DEFAULT_WEIGHTS_PATH

    saved = tmp_path / "saved"
    _tiny_model().save_pretrained(saved)
    secret = _docker_config(tmp_path / "read.json", registry)
    monkeypatch.setattr(bundled, "PRESET_REGISTRY", f"{registry}/aks/kaito")
    w = _workload("weights", {})
    puller = _container(bundled.job(_env(registry, w), w, {}), "model-weights")
    ref = puller["args"][puller["args"].index("--") + 1]
    files = sorted(p.name for p in saved.iterdir())
    _oras_push(["--registry-config", str(secret), ref, *files], saved, registry)

    cli = argparse.ArgumentParser(prog="oras pull", exit_on_error=False)
    cli.add_argument("--registry-config")
    cli.add_argument("--output")
    cli.add_argument("ref")
    weights = tmp_path / "weights"
    auth_dir = tmp_path / "pull-secrets"
    auth_dir.mkdir()
    shutil.copy(secret, auth_dir / "acr-adapter-pull.json")
    parsed = cli.parse_args([_localize(a, {bundled.PULL_AUTH_DIR: auth_dir, DEFAULT_WEIGHTS_PATH: weights})
                             for a in puller["args"]])
    assert parsed.ref == ref and parsed.output == str(weights)
    client = oras.provider.Registry(hostname=registry, insecure=True, auth_backend="basic")
    with pytest.raises(ValueError, match="Unauthorized"):  # the artifact is private: no secret, no weights
        client.pull(target=parsed.ref, config_path=str(_docker_config(tmp_path / "none.json", registry, "x", "y")),
                    outdir=str(tmp_path / "refused"))
    client = oras.provider.Registry(hostname=registry, insecure=True, auth_backend="basic")
    client.pull(target=parsed.ref, config_path=parsed.registry_config, outdir=parsed.output)
    assert sorted(p.name for p in weights.iterdir()) == files
    AutoModelForCausalLM.from_pretrained(str(weights), local_files_only=True)
