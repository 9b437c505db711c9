"""training_config.yaml parsing: KAITO's ConfigMaps are accepted, mistakes name section and key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from trainer.config import ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]
KAITO_TEMPLATES = ["qlora-params.yaml", "lora-params.yaml"]


def kaito_training_config(name: str) -> str:
    """The training_config.yaml text of one of KAITO's vendored ConfigMap templates."""
    text = (REPO / "infra/data/kaito" / name).read_text().replace("{{ .Release.Namespace }}", "default")
    return yaml.safe_load(text)["data"]["training_config.yaml"]


@pytest.mark.parametrize("name", KAITO_TEMPLATES)
def test_kaito_default_configmaps_are_accepted(name):
    cfg = load_config(kaito_training_config(name))
    assert cfg.training.output_dir == "/mnt/results"
    assert cfg.model.pretrained_model_name_or_path == "/workspace/tfs/weights"
    assert cfg.quantization.load_in_4bit is (name == "qlora-params.yaml")
    assert cfg.collator.mlm is False  # KAITO's template says true; causal LMs cannot use it
    assert cfg.checkpoint_dir == Path("/mnt/results/checkpoints")


def test_every_kaito_key_of_each_section_is_known():
    """Keys of KAITO's cli.py dataclasses (ModelConfig, QuantizationConfig, DatasetConfig, LoRA extras)."""
    text = """
training_config:
  ModelConfig: {pretrained_model_name_or_path: /w, state_dict: null, cache_dir: /c, from_tf: false,
    force_download: false, resume_download: false, proxies: null, output_loading_info: false,
    local_files_only: true, revision: main, trust_remote_code: false, load_in_4bit: false,
    load_in_8bit: false, torch_dtype: bfloat16, device_map: auto, chat_template: /t.jinja}
  QuantizationConfig: {quant_method: bitsandbytes, load_in_8bit: false, load_in_4bit: true,
    llm_int8_threshold: 6.0, llm_int8_skip_modules: [lm_head], llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false, bnb_4bit_compute_dtype: float32, bnb_4bit_quant_type: fp4,
    bnb_4bit_use_double_quant: false}
  LoraConfig: {r: 16, lora_alpha: 32, lora_dropout: 0.05, init_lora_weights: true,
    target_modules: [qkv_proj], layers_to_transform: [0, 1], layers_pattern: [layers], loftq_config: {}}
  TrainingArguments: {output_dir: /o, num_train_epochs: 1, ddp_find_unused_parameters: false,
    save_strategy: "no", per_device_train_batch_size: 2, evaluation_strategy: "no", warmup_ratio: 0.1,
    logging_dir: /logs, save_safetensors: true, adam_beta2: 0.95}
  DataCollator: {mlm: true, mlm_probability: 0.15, pad_to_multiple_of: 8}
  DatasetConfig: {dataset_path: d.parquet, dataset_extension: parquet, shuffle_dataset: true, shuffle_seed: 7,
    context_column: c, response_column: r, messages_column: m, train_test_split: 0.9}
"""
    cfg = load_config(text)
    assert cfg.lora.extra == {"layers_to_transform": [0, 1], "layers_pattern": ["layers"], "loftq_config": {}}
    assert cfg.training.eval_strategy == "no" and cfg.training.warmup_steps == 0.1
    assert cfg.training.extra == {"adam_beta2": 0.95}
    assert any("logging_dir" in w and "ignored" in w for w in cfg.warnings)
    assert any("evaluation_strategy" in w and "eval_strategy" in w for w in cfg.warnings)


def test_strings_kaito_would_accept_are_converted():
    # PyYAML reads 2e-4 as a string; KAITO passes every value through argparse, which converts it.
    cfg = load_config("training_config:\n  TrainingArguments:\n    learning_rate: 2e-4\n    bf16: 'true'\n")
    assert cfg.training.learning_rate == pytest.approx(2e-4)
    assert cfg.training.bf16 is True


@pytest.mark.parametrize("text, expected", [
    ("training_config:\n  LoraConfig:\n    lora_alpa: 8\n", "LoraConfig.lora_alpa: unknown key; did you mean 'lora_alpha'?"),
    ("training_config:\n  LoraConfig:\n    r: eight\n", "LoraConfig.r: expected an integer, got 'eight'"),
    ("training_config:\n  TrainingArguments:\n    save_steps: [1]\n", "TrainingArguments.save_steps: expected a number"),
    ("training_config:\n  DatasetConfig:\n    train_test_split: 1.5\n", "DatasetConfig.train_test_split: must be in (0, 1]"),
    ("training_config:\n  LoraConfigs: {}\n", "training_config.LoraConfigs: unknown section; did you mean 'LoraConfig'?"),
    ("training_config:\n  QuantizationConfig: {load_in_4bit: true, load_in_8bit: true}\n",
     "QuantizationConfig.load_in_4bit/load_in_8bit: set only one of them"),
    ("training_config:\n  TrainingArguments: {bf16: true, fp16: true}\n", "TrainingArguments.bf16/fp16: set only one"),
    ("training_config:\n  ModelConfig: {torch_dtype: float64}\n", "ModelConfig.torch_dtype: 'float64' is not one of"),
    ("training_config:\n  TrainingArguments: {evaluation_strategy: steps, eval_strategy: steps}\n",
     "TrainingArguments.evaluation_strategy: both evaluation_strategy and eval_strategy are set"),
    ("training_config:\n  TrainingArguments: {save_strategy: no}\n",
     "TrainingArguments.save_strategy: expected a string, got False (quote it: YAML reads yes/no/on/off as booleans)"),
    ("training_config:\n  LoraConfig: {target_modules: [1]}\n",
     "LoraConfig.target_modules: expected a string or a list of strings or null, got [1]"),
    ("model: x\n", "the document must have a top-level `training_config:` mapping"),
    ("training_config: [1]\n", "training_config: must be a mapping"),
    ("training_config:\n  LoraConfig: [r]\n", "LoraConfig: must be a mapping of keys to values, got list"),
    ("training_config:\n  LoraConfig: {r: 8\n",
     "line 3: YAML syntax error at column 1 (the end of the file): did not find expected ',' or '}' (close the bracket"),
    ("training_config:\n\tLoraConfig: {}\n", "line 2: YAML syntax error at column 1 (character '\\t')"),
    ("training_config:\n  TrainingArguments: {learning_rate: .nan}\n", "line 2: `.nan` is not a finite number"),
    ("training_config:\n  TrainingArguments: {learning_rate: -.inf}\n", "line 2: `-.inf` is not a finite number"),
    ("training_config:\n  TrainingArguments: {learning_rate: 'nan'}\n",
     "TrainingArguments.learning_rate: expected a number, got 'nan' (write a finite number below 2**63"),
    ("training_config:\n  TrainingArguments: {weight_decay: 1e999}\n",
     "TrainingArguments.weight_decay: expected a number, got '1e999'"),
    ("training_config:\n  TrainingArguments: {seed: 9223372036854775808}\n",
     "TrainingArguments.seed: expected an integer, got 9223372036854775808"),
    ("training_config:\n  TrainingArguments: {seed: " + "9" * 5000 + "}\n", "line 2: the number 99999999999999999999... is too large"),
    ("training_config:\n  LoraConfig: {r: !!python/name:os.system 8}\n", "tag 'tag:yaml.org,2002:python/name:os.system' is not allowed"),
    ("training_config:\n  LoraConfig: {r: 8, r: 16}\n", "line 2: duplicate key 'r'"),
    ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
     "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n",
     "line 1: through aliases the document expands to more than 20000 values"),
    ("s: &s " + "x" * 100_000 + "\nl: [" + ", ".join(["*s"] * 15) + "]\n", "or 524288 characters"),
    ("a: &a [*a]\n", "line 1: an alias refers to a node that contains it"),
])
def test_mistakes_name_section_and_key(text, expected):
    with pytest.raises(ConfigError) as err:
        load_config(text)
    assert expected in str(err.value)


def test_config_files_over_the_size_limit_are_refused_before_reading(tmp_path):
    path = tmp_path / "training_config.yaml"
    path.write_text("training_config: {}\n#" + "x" * 300_000 + "\n")
    with pytest.raises(ConfigError, match="the config is 300022 bytes, over the 262144-byte limit"):
        load_config(path)
    with pytest.raises(ConfigError, match="the config is not a regular file"):
        load_config(tmp_path)


def test_sections_check_themselves_when_built_in_code():
    from trainer.config import LoraConfig

    with pytest.raises(ConfigError, match="LoraConfig.r: must be at least 1, got 0"):
        LoraConfig(r=0)


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as err:
        parse_config({"training_config": {"LoraConfig": {"r": "x", "alpha": 3}, "BundledConfig": {"foo": 1}}})
    assert len(err.value.problems) == 3


def test_missing_file_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="pass --config"):
        load_config(tmp_path / "nope.yaml")


def test_config_module_imports_without_torch():
    """The renderer checks ConfigMaps with trainer.config on machines without torch."""
    code = ("import sys, trainer.config as c; c.load_config('training_config:\\n  LoraConfig: {r: 4}\\n');"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


@pytest.mark.parametrize("text, code, stream", [
    ("training_config:\n  LoraConfig: {r: 4}\n", 0, "ok"),
    ("training_config:\n  LoraConfig: {rr: 4}\n", 2, "LoraConfig.rr: unknown key"),
])
def test_check_command_exit_codes(tmp_path, text, code, stream):
    path = tmp_path / "training_config.yaml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "trainer", "check", "--config", str(path)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == code
    assert stream in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_passthrough_keys_exist_in_transformers():
    """Every TrainingArguments / LoraConfig key we forward is one the installed libraries accept."""
    import dataclasses

    import peft
    import transformers

    from trainer.config import LoraConfig, TrainingArguments

    ta = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    ours = {f.name for f in dataclasses.fields(TrainingArguments)} - {"extra", "gradient_checkpointing",
                                                                       "gradient_checkpointing_kwargs"}
    assert set(TrainingArguments.PASSTHROUGH) | ours <= ta
    assert not set(TrainingArguments.LEGACY) & ta, "a legacy key still exists: forward it instead"
    lora = {f.name for f in dataclasses.fields(peft.LoraConfig) if f.init}
    assert set(LoraConfig.PASSTHROUGH) | ({f.name for f in dataclasses.fields(LoraConfig)} - {"extra"}) <= lora


def test_keys_values_and_paths_from_the_file_are_escaped(tmp_path):
    path = tmp_path / "conf\x1b[31m.yaml"
    path.write_text('training_config:\n  LoraConfig: {"r\\e]0;title\\a": 4, lora_alpha: "\\u202e8"}\n')
    proc = subprocess.run([sys.executable, "-m", "trainer", "check", "--config", str(path)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") or line.startswith(str(tmp_path)) for line in lines)
    assert "conf\\x1b[31m.yaml: LoraConfig.r\\x1b]0;title\\x07: unknown key" in proc.stderr
    assert not any(ch in proc.stderr for ch in "\x1b\x07\u202e"), proc.stderr


def test_the_trainers_log_lines_are_escaped_and_library_lines_left_alone():
    import logging

    from trainer.__main__ import _escape_trainer_records

    ours = logging.LogRecord("trainer.train", logging.INFO, __file__, 1, "resuming from %s", ("/pvc/\x1b[2J\n",), None)
    theirs = logging.LogRecord("transformers.trainer", logging.INFO, __file__, 1, "table\n%s", ("row",), None)
    assert _escape_trainer_records(ours) and _escape_trainer_records(theirs)
    assert ours.getMessage() == "resuming from /pvc/\\x1b[2J\\n" and theirs.getMessage() == "table\nrow"
