"""End to end through `python -m trainer` on the CPU, with KAITO's default ConfigMaps pointed at
a tiny random Phi-3 and a small parquet file: LoRA, QLoRA, SIGTERM + resume, continuing an
adapter, the errors a bad config gets; token-budget packs in the production entry point, on one
and on two CPU processes (gloo): ranks that write one adapter, a SIGTERM agreed across ranks and
resumed, and checkpoints of another config ignored."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[2]


def kaito_config(template: str, model_dir: Path, data_file: Path, out: Path, **sections) -> dict:
    """KAITO's vendored ConfigMap content with paths and the given keys overridden."""
    text = (REPO / "infra/data/kaito" / template).read_text().replace("{{ .Release.Namespace }}", "default")
    cfg = yaml.safe_load(yaml.safe_load(text)["data"]["training_config.yaml"])
    body = cfg["training_config"]
    body["ModelConfig"]["pretrained_model_name_or_path"] = str(model_dir)
    body["DatasetConfig"]["dataset_path"] = str(data_file)
    body["TrainingArguments"].update(output_dir=str(out), max_steps=8, logging_steps=1,
                                     per_device_train_batch_size=4, save_strategy="steps", save_steps=4)
    for section, keys in sections.items():
        body.setdefault(section, {}).update(keys)
    return cfg


def start(cfg: dict, tmp_path: Path, nproc: int = 1) -> subprocess.Popen:
    path = tmp_path / "training_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return subprocess.Popen([sys.executable, "-m", "trainer", "--nproc-per-node", str(nproc), "--config", str(path),
                             "--data", str(tmp_path)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def run_trainer(cfg: dict, tmp_path: Path) -> tuple[int, str]:
    proc = start(cfg, tmp_path)
    output, _ = proc.communicate(timeout=300)
    return proc.returncode, output


def sigterm_after_first_log(proc: subprocess.Popen, out: Path) -> str:
    """SIGTERM once the first step is logged (training is under way); the run's output."""
    log = out / "train_log.jsonl"
    deadline = time.monotonic() + 180
    while not (log.is_file() and log.read_text().strip()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=180)[0]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def qlora_run(tmp_path_factory, tiny_model_dir, chat_parquet):
    """One QLoRA run with KAITO's default QLoRA ConfigMap (plus a held-out split)."""
    tmp = tmp_path_factory.mktemp("qlora")
    before = {p.name: digest(p) for p in tiny_model_dir.iterdir()}
    cfg = kaito_config("qlora-params.yaml", tiny_model_dir, chat_parquet, tmp / "results",
                       DatasetConfig={"train_test_split": 0.8})
    code, output = run_trainer(cfg, tmp)
    return {"code": code, "output": output, "out": tmp / "results", "before": before, "tmp": tmp}


def test_qlora_run_writes_adapter_and_kaito_marker(qlora_run):
    assert qlora_run["code"] == 0, qlora_run["output"][-3000:]
    out = qlora_run["out"]
    for name in ("adapter_config.json", "adapter_model.safetensors", "fine_tuning_completed.txt",
                 "metrics.json", "train_log.jsonl", "loss_curve.png"):
        assert (out / name).is_file(), name
    assert (out / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_adapter_weights_change(qlora_run, tiny_model_dir):
    from safetensors.torch import load_file

    assert {p.name: digest(p) for p in tiny_model_dir.iterdir()} == qlora_run["before"]
    weights = load_file(qlora_run["out"] / "adapter_model.safetensors")
    assert weights and all(".lora_A." in k or ".lora_B." in k for k in weights), sorted(weights)[:5]
    # all linear layers of Phi-3, not only o_proj/down_proj as KAITO's default target list gives
    adapted = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in weights}
    assert adapted == {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
    assert any(v.abs().sum() > 0 for k, v in weights.items() if ".lora_B." in k), "lora_B never trained"


def test_adapter_loads_with_peft_and_changes_the_output(qlora_run, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([[5, 17, 42, 99, 7, 120]])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        before = base(input_ids=ids).logits
        tuned = PeftModel.from_pretrained(base, qlora_run["out"]).eval()
        after = tuned(input_ids=ids).logits
    assert not torch.allclose(before, after, atol=1e-6)


def test_metrics_compare_base_and_tuned_on_held_out_data(qlora_run):
    metrics = json.loads((qlora_run["out"] / "metrics.json").read_text())
    for which in ("base", "tuned"):
        m = metrics[which]
        assert m["tokens"] > 0 and 0 <= m["token_accuracy"] <= 1
        assert m["perplexity"] == pytest.approx(2.718281828 ** m["loss"], rel=1e-6)
    assert metrics["base"]["loss"] != metrics["tuned"]["loss"]
    assert metrics["eval_examples"] > 0 and metrics["train"]["global_step"] == 8
    log = [json.loads(line) for line in (qlora_run["out"] / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == list(range(1, 9))


def test_the_default_schedule_is_cosine_after_a_warm_up(qlora_run):
    """KAITO's QLoRA ConfigMap sets no schedule: ours applies, 3% warm-up (one of 8 steps), then cosine to 0."""
    from torch.optim import SGD
    from transformers import get_cosine_schedule_with_warmup

    optimizer = SGD([torch.zeros(1, requires_grad=True)], lr=2e-4)
    schedule = get_cosine_schedule_with_warmup(optimizer, num_warmup_steps=1, num_training_steps=8)
    expected = []
    for _ in range(8):
        expected.append(schedule.get_last_lr()[0])
        optimizer.step()
        schedule.step()
    log = [json.loads(line) for line in (qlora_run["out"] / "train_log.jsonl").read_text().splitlines()]
    rates = [r["learning_rate"] for r in log if "loss" in r]
    assert rates == pytest.approx(expected, rel=1e-6) and rates[0] < rates[1] > rates[-1]
    assert "lr_scheduler" not in (REPO / "infra/data/kaito/qlora-params.yaml").read_text()


def test_lora_run_is_reproducible_with_a_seed(tmp_path, tiny_model_dir, chat_parquet):
    adapters = []
    for name in ("a", "b"):
        cfg = kaito_config("lora-params.yaml", tiny_model_dir, chat_parquet, tmp_path / name / "results",
                           TrainingArguments={"seed": 7, "max_steps": 4, "save_strategy": "no"})
        (tmp_path / name).mkdir()
        code, output = run_trainer(cfg, tmp_path / name)
        assert code == 0, output[-3000:]
        assert "no bf16-capable GPU: computing in float32" in output
        adapters.append(digest(tmp_path / name / "results" / "adapter_model.safetensors"))
    assert adapters[0] == adapters[1]


def test_sigterm_checkpoints_exits_nonzero_and_the_rerun_resumes(tmp_path, tiny_model_dir, chat_parquet):
    out = tmp_path / "results"
    cfg = kaito_config("lora-params.yaml", tiny_model_dir, chat_parquet, out,
                       TrainingArguments={"max_steps": 150, "save_steps": 1000, "save_strategy": "steps"},
                       BundledConfig={"checkpoint_dir": str(tmp_path / "pvc")})
    proc = start(cfg, tmp_path)
    output = sigterm_after_first_log(proc, out)
    assert proc.returncode == 143, output[-3000:]
    checkpoints = sorted((tmp_path / "pvc").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "checkpoint_complete.json").is_file(), output[-3000:]
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 0 < stopped_at < 150
    assert not (out / "fine_tuning_completed.txt").exists()

    # A checkpoint the kill interrupted half-way: newer, but without its completion marker.
    (tmp_path / "pvc" / "checkpoint-149").mkdir()
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    assert "ignoring incomplete checkpoint" in output and "checkpoint-149" in output
    assert f"resuming from checkpoint {checkpoints[0]} (step {stopped_at})" in output
    assert steps_logged(out) == list(range(1, 151))
    assert (out / "fine_tuning_completed.txt").is_file()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["resumed_from_step"] == stopped_at

    # A pod retried after training finished (e.g. the push failed) reuses the final checkpoint.
    adapter = digest(out / "adapter_model.safetensors")
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    assert "training had finished at step 150: reusing its adapter" in output
    assert digest(out / "adapter_model.safetensors") == adapter


def test_continue_from_an_earlier_adapter_evaluated_on_validation_data(qlora_run, tmp_path, tiny_model_dir,
                                                                        chat_parquet, make_chat_parquet):
    from safetensors.torch import load_file

    previous = qlora_run["out"]
    make_chat_parquet(tmp_path / "validation" / "val.parquet", 60, seed=99)
    cfg = kaito_config("lora-params.yaml", tiny_model_dir, chat_parquet, tmp_path / "results",
                       TrainingArguments={"max_steps": 3, "save_strategy": "no"},
                       BundledConfig={"continue_from": str(previous), "validation_path": "validation"})
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    assert f"continuing training of the adapter in {previous}" in output
    metrics = json.loads((tmp_path / "results" / "metrics.json").read_text())
    assert metrics["eval_examples"] == 60 and metrics["data"]["validation_file"]["usable"] == 60
    assert metrics["train"]["examples"] == 120  # train_test_split 1: the validation file is the eval set
    old, new = load_file(previous / "adapter_model.safetensors"), load_file(tmp_path / "results" / "adapter_model.safetensors")
    assert old.keys() == new.keys()
    assert any(not torch.equal(old[k], new[k]) for k in old), "the adapter was not trained further"
    # it started from the old adapter, not from a fresh one: lora_A moved only a little
    key = next(k for k in old if ".lora_A." in k)
    assert (new[key] - old[key]).abs().max() < 0.05


@pytest.mark.parametrize("change, message", [
    ({"LoraConfig": {"lora_alpa": 16}}, "LoraConfig.lora_alpa: unknown key; did you mean 'lora_alpha'?"),
    ({"TrainingArguments": {"num_train_epochs": "three"}}, "TrainingArguments.num_train_epochs: expected a number"),
    ({"ModelConfig": {"pretrained_model_name_or_path": "/nonexistent/weights"}},
     "ModelConfig.pretrained_model_name_or_path: /nonexistent/weights has no config.json"),
    ({"LoraConfig": {"target_modules": ["q_proj", "o_proj"]}},
     "LoraConfig.target_modules: q_proj match no linear layer of this model; its linear layers are "
     "down_proj, gate_up_proj, o_proj, qkv_proj"),
    ({"DatasetConfig": {"dataset_path": "missing.parquet"}}, "DatasetConfig.dataset_path:"),
])
def test_bad_config_exits_2_with_a_clear_error(tmp_path, tiny_model_dir, chat_parquet, change, message):
    cfg = kaito_config("qlora-params.yaml", tiny_model_dir, chat_parquet, tmp_path / "results", **change)
    code, output = run_trainer(cfg, tmp_path)
    assert code == 2, output[-3000:]
    assert message in output
    assert "Traceback" not in output


def test_too_little_usable_data_exits_2(tmp_path, tiny_model_dir, make_chat_parquet):
    data = make_chat_parquet(tmp_path / "small.parquet", 20)
    code, output = run_trainer(kaito_config("lora-params.yaml", tiny_model_dir, data, tmp_path / "results"), tmp_path)
    assert code == 2, output[-3000:]
    assert "20 usable training examples, at least 50 are needed" in output and "Traceback" not in output


@pytest.mark.parametrize("error, code", [("PermissionError(13, 'Permission denied')", 2),
                                         ("OSError(5, 'Input/output error')", 1)])
def test_unreadable_data_fails_the_job_at_once_and_an_io_error_is_retried(tmp_path, tiny_model_dir, chat_parquet,
                                                                          error, code):
    """Exit 2 is what the Job's podFailurePolicy fails at once (infra/render/bundled.py); 1 is retried. Tests run
    as root, for whom no permission bit makes a file unreadable: the read fails in a fresh interpreter instead."""
    import pyarrow.parquet as pq

    from infra.render.bundled import TRAINER_CONFIG_ERROR_EXIT

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in pq.read_table(chat_parquet).to_pylist()))
    path = tmp_path / "training_config.yaml"
    path.write_text(yaml.safe_dump(kaito_config("lora-params.yaml", tiny_model_dir, data, tmp_path / "results")))
    script = ("import pathlib, sys\n"
              "original = pathlib.Path.read_bytes\n"
              "def read_bytes(self):\n"
              f"    if str(self) == {str(data)!r}:\n"
              f"        raise {error}\n"
              "    return original(self)\n"
              "pathlib.Path.read_bytes = read_bytes\n"
              "from trainer.__main__ import main\n"
              f"sys.exit(main(['--config', {str(path)!r}, '--data', {str(tmp_path)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == code, proc.stderr[-3000:]
    if code == 2:
        assert code == TRAINER_CONFIG_ERROR_EXIT
        assert f"error: {data}: cannot read the data file (Permission denied)" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_out_of_gpu_memory_is_not_retried(tmp_path, monkeypatch, capsys):
    """The same seed and data pack the same batches, so a rerun runs out of memory again: exit 2, which the
    bundled Job's podFailurePolicy turns into a failed Job instead of six more GPU runs."""
    import torch

    import trainer.train
    from infra.render.bundled import TRAINER_CONFIG_ERROR_EXIT
    from trainer.__main__ import main

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\x1b[31m")

    monkeypatch.setattr(trainer.train, "run", oom)
    config = tmp_path / "training_config.yaml"
    config.write_text("training_config: {}\n")
    assert main(["--config", str(config), "--data", str(tmp_path)]) == TRAINER_CONFIG_ERROR_EXIT == 2
    err = capsys.readouterr().err
    assert "error: out of GPU memory (CUDA out of memory. Tried to allocate 2.00 GiB\\x1b[31m); retrying would" in err
    assert "max_tokens_per_batch" in err


def test_missing_config_file_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "trainer", "--config", str(tmp_path / "none.yaml")],
                          capture_output=True, text=True, cwd=REPO, env={**os.environ})
    assert proc.returncode == 2
    assert "cannot read the config file" in proc.stderr and "Traceback" not in proc.stderr


def test_data_file_resolution_prefers_top_level_and_skips_validation(tmp_path):
    from trainer.config import ConfigError
    from trainer.train import resolve_data_path

    for name in ("validation/a.parquet", "shards/b.jsonl", "z.parquet", "notes.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert resolve_data_path(None, tmp_path, "k") == tmp_path / "z.parquet"
    (tmp_path / "z.parquet").unlink()
    assert resolve_data_path(None, tmp_path, "k", exclude=tmp_path / "validation") == tmp_path / "shards/b.jsonl"
    assert resolve_data_path("validation", tmp_path, "k") == tmp_path / "validation/a.parquet"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="DatasetConfig.dataset_path: no .parquet, .jsonl, .json, .csv file"):
        resolve_data_path(None, tmp_path / "empty", "DatasetConfig.dataset_path")


def test_a_data_folder_the_pod_cannot_read_is_a_config_error(tmp_path, monkeypatch):
    from trainer.config import ConfigError
    from trainer.train import resolve_data_path

    denied = tmp_path / "private"
    monkeypatch.setattr(Path, "rglob", lambda self, pattern: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied", str(denied))))
    with pytest.raises(ConfigError, match=f"DatasetConfig.dataset_path: {denied}: cannot read the data file "
                                          r"\(Permission denied\)"):
        resolve_data_path(None, tmp_path, "DatasetConfig.dataset_path")


BUDGET = 512  # tokens per pack: about six of the tiny chat examples (80 tokens on average)


def packed_config(model_dir: Path, data: Path, out: Path, **training) -> dict:
    return kaito_config("lora-params.yaml", model_dir, data, out,
                        TrainingArguments={"save_strategy": "no", "seed": 5, "learning_rate": 5e-3, **training},
                        BundledConfig={"max_tokens_per_batch": BUDGET, "evaluate": False})


def adapter(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(out / "adapter_model.safetensors")


def steps_logged(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines() if '"loss"' in line]


def test_the_production_entry_point_packs_many_examples_per_step(tmp_path, tiny_model_dir, chat_parquet):
    out = tmp_path / "results"
    cfg = packed_config(tiny_model_dir, chat_parquet, out, num_train_epochs=1, max_steps=-1, logging_steps=1)
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    packs = next(line for line in output.splitlines() if "packing 120 examples into" in line)
    batches = int(packs.split("into ")[1].split()[0])
    assert 120 / batches >= 3, packs  # several examples per step, not KAITO's one
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["global_step"] == batches  # one epoch: one optimizer step per pack
    assert steps_logged(out) == list(range(1, batches + 1))


# What a CPU test changes in a rendered ConfigMap: where things are, and the two GPU-only kernels.
CPU_OVERRIDES = {("ModelConfig", "pretrained_model_name_or_path"), ("TrainingArguments", "output_dir"),
                 ("BundledConfig", "checkpoint_dir"), ("BundledConfig", "attn_implementation"),
                 ("TrainingArguments", "use_liger_kernel")}


@pytest.mark.parametrize("batch_size", [8, None], ids=["spec-batchSize-8", "no-batchSize"])
def test_the_rendered_dev_config_run_by_the_production_entry_point_packs_many_examples_per_step(
        tmp_path, tiny_model_dir, chat_parquet, batch_size):
    """The dev environment's bundled TuningJob rendered (infra/render) and run by `python -m trainer` as the Job
    runs it (data found under --data): the rendered token budget packs examples; batchSize caps them."""
    import copy
    import dataclasses
    import shutil

    from infra.render import tuning
    from infra.specs import load_environment

    env = load_environment("dev")
    w = env.by_name("phi3-dolly-bundled")
    hyper = {k: v for k, v in w.spec["hyperparameters"].items() if k != "batchSize"}
    if batch_size is not None:
        hyper["batchSize"] = batch_size
    w = dataclasses.replace(w, spec={**w.spec, "hyperparameters": hyper})
    rendered = yaml.safe_load(tuning.config_map(env, w)["data"]["training_config.yaml"])
    body = rendered["training_config"]
    budget = body["BundledConfig"]["max_tokens_per_batch"]
    assert budget > 4096 and body["TrainingArguments"]["num_train_epochs"] == 1  # the plan's budget, not batch 1
    cfg = copy.deepcopy(rendered)
    out = tmp_path / "results"
    cfg["training_config"]["ModelConfig"]["pretrained_model_name_or_path"] = str(tiny_model_dir)
    cfg["training_config"]["TrainingArguments"].update(output_dir=str(out), use_liger_kernel=False)
    cfg["training_config"]["BundledConfig"].update(checkpoint_dir=str(tmp_path / "pvc"), attn_implementation="sdpa")
    changed = {(section, key) for section, keys in cfg["training_config"].items() for key, value in keys.items()
               if body.get(section, {}).get(key, "<unset>") != value}
    assert changed == CPU_OVERRIDES
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(chat_parquet, data / "000-train.parquet")  # the name the Job's download step gives it
    path = tmp_path / "training_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "trainer", "--nproc-per-node", "1", "--config", str(path),
                           "--data", str(data)], cwd=REPO, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    packs = next(line for line in output.splitlines() if "packing 120 examples into" in line)
    batches = int(packs.split("into ")[1].split()[0])
    assert f"of at most {budget} tokens" in packs
    if batch_size is None:  # the budget alone decides: the 120 short examples fit one pack
        assert batches == 1, packs
    else:  # batchSize keeps its meaning: at most that many examples per step
        assert batches == 120 // batch_size, packs
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train"]["global_step"] == batches  # one epoch, one optimizer step per pack
    assert (out / "fine_tuning_completed.txt").is_file() and (out / "adapter_model.safetensors").is_file()


def test_two_processes_write_the_adapter_one_process_writes_with_the_same_global_batch(
        tmp_path, tiny_model_dir, chat_parquet):
    runs = {}
    for name, nproc, accumulation in (("one", 1, 2), ("two", 2, 1), ("one-half-batch", 1, 1)):
        tmp = tmp_path / name
        tmp.mkdir()
        cfg = packed_config(tiny_model_dir, chat_parquet, tmp / "results", max_steps=4,
                            gradient_accumulation_steps=accumulation)
        proc = start(cfg, tmp, nproc)
        output, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, output[-3000:]
        runs[name] = (tmp / "results", output)
    two_out, two_log = runs["two"]
    assert json.loads((two_out / "metrics.json").read_text())["train"]["processes"] == 2
    assert steps_logged(two_out) == [1, 2, 3, 4]  # one log, written by rank 0 only
    assert (two_out / "fine_tuning_completed.txt").is_file()
    one, two, half = (adapter(runs[n][0]) for n in ("one", "two", "one-half-batch"))
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], rtol=1e-3, atol=1e-6)
    # the comparison can fail: half the global batch trains a different adapter
    assert any(not torch.allclose(half[k], one[k], rtol=1e-3, atol=1e-6) for k in one)


def test_sigterm_stops_both_ranks_at_one_checkpoint_and_the_rerun_resumes(tmp_path, tiny_model_dir, chat_parquet):
    out = tmp_path / "results"
    cfg = packed_config(tiny_model_dir, chat_parquet, out, max_steps=200, save_strategy="steps", save_steps=1000,
                        logging_steps=1)
    cfg["training_config"]["BundledConfig"]["checkpoint_dir"] = str(tmp_path / "pvc")
    proc = start(cfg, tmp_path, 2)
    output = sigterm_after_first_log(proc, out)
    assert proc.returncode == 143, output[-3000:]
    assert output.count("exiting with 143") == 2  # both ranks stopped, none hangs
    checkpoints = sorted((tmp_path / "pvc").glob("checkpoint-*"))
    assert len(checkpoints) == 1 and (checkpoints[0] / "checkpoint_complete.json").is_file(), output[-3000:]
    stopped_at = int(checkpoints[0].name.split("-")[1])
    assert 0 < stopped_at < 200

    proc = start(cfg, tmp_path, 2)
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output[-3000:]
    assert f"resuming from checkpoint {checkpoints[0]} (step {stopped_at})" in output
    assert steps_logged(out) == list(range(1, 201))
    assert json.loads((out / "metrics.json").read_text())["train"]["resumed_from_step"] == stopped_at


def run_two_ranks_with(hook: str, cfg: dict, tmp_path: Path) -> tuple[int, str]:
    """`--nproc-per-node 2` with `hook` as a sitecustomize module in the ranks' path (each rank runs it first)."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(hook)
    path = tmp_path / "training_config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "hook"), str(REPO),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "trainer", "--nproc-per-node", "2", "--config", str(path),
                           "--data", str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


RANK_1_CONFIG_ERROR = """
import atexit
import os

if os.environ.get("RANK") == "1":
    import trainer.train
    from trainer.config import ConfigError

    def attach_adapter(model, cfg):
        import torch.distributed as dist

        if not dist.is_initialized():
            raise RuntimeError("the process group should exist by now")
        raise ConfigError(["LoraConfig.target_modules: rank 1 refuses the adapter"])

    trainer.train.attach_adapter = attach_adapter
    atexit.register(lambda: open(os.environ["RANK_1_TORN_DOWN"], "w").write("interpreter teardown ran"))
"""


def test_a_config_error_on_one_rank_after_the_process_group_exists_exits_2(tmp_path, tiny_model_dir, chat_parquet,
                                                                          monkeypatch):
    """Rank 1 raises a config error with the gloo group alive. It leaves without the interpreter's teardown
    (where gloo's threads can abort the process with 134), its message flushed. Rank 0 then fails in its next
    collective (exit 1, "Connection closed by peer") moments later: the launcher exits with the cause's 2,
    which the Job's podFailurePolicy does not retry."""
    torn_down = tmp_path / "rank-1-torn-down"
    monkeypatch.setenv("RANK_1_TORN_DOWN", str(torn_down))
    cfg = packed_config(tiny_model_dir, chat_parquet, tmp_path / "results", max_steps=4)
    code, output = run_two_ranks_with(RANK_1_CONFIG_ERROR, cfg, tmp_path)
    assert "rank 1 refuses the adapter" in output, output[-3000:]
    assert code == 2, (code, output[-3000:])
    assert not torn_down.exists()  # atexit handlers did not run: os._exit skipped the teardown


SLOW_RANK_0_WRITES = """
import atexit
import os
import time

if os.environ.get("RANK") == "0":
    import trainer.train

    plot_losses = trainer.train.plot_losses

    def slow_plot_losses(*args):
        time.sleep(3)
        return plot_losses(*args)

    trainer.train.plot_losses = slow_plot_losses
elif os.environ.get("RANK") == "1":
    atexit.register(lambda: open(os.environ["RANK_1_EXITED"], "w").write(repr(time.time())))
"""


def test_the_other_ranks_leave_only_after_rank_0_wrote_its_results(tmp_path, tiny_model_dir, chat_parquet,
                                                                   monkeypatch):
    """Rank 0's evaluation and writes (slowed by 3 s here) come after save_model: rank 1 waits for them."""
    out, exited = tmp_path / "results", tmp_path / "rank-1-exited"
    monkeypatch.setenv("RANK_1_EXITED", str(exited))
    code, output = run_two_ranks_with(SLOW_RANK_0_WRITES, packed_config(tiny_model_dir, chat_parquet, out,
                                                                        max_steps=2), tmp_path)
    assert code == 0, output[-3000:]
    assert float(exited.read_text()) >= (out / "fine_tuning_completed.txt").stat().st_mtime


def test_a_checkpoint_of_another_config_or_data_is_ignored(tmp_path, tiny_model_dir, chat_parquet,
                                                           make_chat_parquet):
    import shutil

    out = tmp_path / "results"
    data = shutil.copy(chat_parquet, tmp_path / "train.parquet")
    cfg = packed_config(tiny_model_dir, data, out, max_steps=4, save_strategy="steps", save_steps=2)
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    finished = out / "checkpoints" / "checkpoint-4"
    assert finished.is_dir()

    code, output = run_trainer(cfg, tmp_path)  # the same run: its final checkpoint is reused
    assert code == 0 and "training had finished at step 4: reusing its adapter" in output, output[-3000:]

    cfg["training_config"]["TrainingArguments"]["learning_rate"] = 1e-3
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    assert f"ignoring checkpoint {finished}: it was written for another config or data" in output
    assert "no complete checkpoint" in output and "reusing its adapter" not in output
    assert json.loads((out / "metrics.json").read_text())["train"]["resumed_from_step"] == 0

    code, output = run_trainer(cfg, tmp_path)  # that run finished in turn: reused
    assert code == 0 and "training had finished at step 4: reusing its adapter" in output, output[-3000:]
    make_chat_parquet(data, 120, seed=3)  # the same file name and config, other rows
    code, output = run_trainer(cfg, tmp_path)
    assert code == 0, output[-3000:]
    assert f"ignoring checkpoint {finished}: it was written for another config or data" in output
    assert "reusing its adapter" not in output
    assert json.loads((out / "metrics.json").read_text())["train"]["resumed_from_step"] == 0


@pytest.mark.parametrize("section, key, value, message", [
    ("TrainingArguments", "use_liger_kernel", True, "TrainingArguments.use_liger_kernel: needs a CUDA GPU"),
    ("BundledConfig", "attn_implementation", "flash_attention_2",
     "BundledConfig.attn_implementation: flash_attention_2: needs a CUDA GPU"),
])
def test_a_kernel_that_cannot_run_is_a_config_error(tmp_path, tiny_model_dir, chat_parquet, section, key, value,
                                                    message):
    cfg = packed_config(tiny_model_dir, chat_parquet, tmp_path / "results")
    cfg["training_config"].setdefault(section, {})[key] = value
    code, output = run_trainer(cfg, tmp_path)
    assert code == 2, output[-3000:]
    assert message in output and "Traceback" not in output
