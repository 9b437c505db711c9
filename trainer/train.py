"""One fine-tuning run: config → data → model + adapter → train (resumable) → adapter, metrics.

Outputs in TrainingArguments.output_dir, in this order so that a reader can trust the marker:
adapter_config.json + adapter_model.safetensors, train_log.jsonl, loss_curve.png, metrics.json,
and last fine_tuning_completed.txt (KAITO's completion marker).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

from trainer import distributed
from trainer.checkpoint import (CompleteCheckpoints, JsonLinesLog, StopOnSigterm, fingerprint,
                                latest_complete_checkpoint)
from trainer.config import ConfigError, TrainerConfig
from trainer.data import unreadable
from trainer.evaluate import evaluate, plot_losses
from trainer.model import attach_adapter, bf16_supported, check_kernels, load_base_model, load_tokenizer

log = logging.getLogger(__name__)

DATA_EXTENSIONS = (".parquet", ".jsonl", ".json", ".csv")
COMPLETED_MARKER = "fine_tuning_completed.txt"


class Interrupted(Exception):
    """SIGTERM arrived; a checkpoint was written and the run must exit non-zero to be retried."""


def resolve_data_path(configured: str | None, data_dir: Path, key: str, exclude: Path | None = None) -> Path:
    """A data file: the configured one (relative paths under data_dir), or the first found under it.

    "First" prefers shallower files, so /mnt/data/train.parquet wins over anything in a
    subdirectory, and never picks from `exclude` (the validation data mounted under /mnt/data).
    """
    path = data_dir if configured is None else Path(configured)
    if not path.is_absolute():
        path = data_dir / path
    try:
        return _find_data_file(path, data_dir, key, exclude)
    except OSError as err:  # a folder the pod's user cannot read: fix the volume, retrying cannot help
        if (problem := unreadable(Path(err.filename or path), err)) is None:
            raise
        raise ConfigError([f"{key}: {problem}"]) from None


def _find_data_file(path: Path, data_dir: Path, key: str, exclude: Path | None) -> Path:
    if path.is_file():
        return path
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in DATA_EXTENSIONS
                        and not (exclude and p.is_relative_to(exclude))),
                       key=lambda p: (len(p.relative_to(path).parts), str(p)))
        if files:
            return files[0]
        raise ConfigError([f"{key}: no {', '.join(DATA_EXTENSIONS)} file under {path}; mount the data there or "
                           "set the key to the data file"])
    raise ConfigError([f"{key}: {path} does not exist; set it to the data file (relative paths are under "
                       f"--data {data_dir})"])


def _training_arguments(cfg: TrainerConfig, has_eval: bool):
    import torch
    from transformers import TrainingArguments

    t = cfg.training
    own = {f.name: getattr(t, f.name) for f in dataclasses.fields(t)
           if f.name not in ("extra", "output_dir", "save_total_limit", "resume_from_checkpoint", "bf16",
                             "gradient_checkpointing", "gradient_checkpointing_kwargs")}
    if t.eval_strategy != "no" and not has_eval:
        raise ConfigError(["TrainingArguments.eval_strategy: evaluation during training needs evaluation data; "
                           "set DatasetConfig.train_test_split below 1 or BundledConfig.validation_path"])
    extra = dict(t.extra)
    if not torch.cuda.is_available():
        extra.setdefault("use_cpu", True)  # without it accelerate runs CPU ranks as separate single-process runs
    try:
        return TrainingArguments(
            **own, **extra,
            output_dir=str(cfg.checkpoint_dir),
            bf16=bf16_supported() and not t.fp16 if t.bf16 is None else t.bf16,
            save_total_limit=None,  # CompleteCheckpoints rotates, after the newest is marked complete
            # KAITO's names; transformers 5 calls them activation checkpointing.
            activation_checkpointing=t.gradient_checkpointing,
            activation_checkpointing_kwargs=t.gradient_checkpointing_kwargs,
        )
    except (ValueError, TypeError) as err:
        raise ConfigError([f"TrainingArguments: {err}"]) from None


def _resume_point(cfg: TrainerConfig, run_fingerprint: str) -> Path | None:
    explicit = cfg.training.resume_from_checkpoint
    if explicit:
        if not Path(explicit).is_dir():
            raise ConfigError([f"TrainingArguments.resume_from_checkpoint: {explicit} is not a directory"])
        return Path(explicit)
    return latest_complete_checkpoint(cfg.checkpoint_dir, run_fingerprint)


# Keys that change where results go or how often they are logged, not what is trained.
_NOT_FINGERPRINTED = {
    "TrainingArguments": {"output_dir", "resume_from_checkpoint", "logging_steps", "save_strategy", "save_steps",
                          "save_total_limit", "report_to", "eval_strategy", "eval_steps",
                          "per_device_eval_batch_size", "dataloader_num_workers"},
    "BundledConfig": {"checkpoint_dir", "evaluate", "validation_path"},
}


def _run_fingerprint(cfg: TrainerConfig, train_examples: list[dict]) -> str:
    sections = {}
    for name, section in (("ModelConfig", cfg.model), ("QuantizationConfig", cfg.quantization),
                          ("LoraConfig", cfg.lora), ("TrainingArguments", cfg.training),
                          ("DataCollator", cfg.collator), ("DatasetConfig", cfg.dataset),
                          ("BundledConfig", cfg.bundled)):
        values = dataclasses.asdict(section)
        sections[name] = {k: v for k, v in values.items() if k not in _NOT_FINGERPRINTED.get(name, ())}
    return fingerprint(sections, train_examples, distributed.world_size())


def _batch_sampler(cfg: TrainerConfig, train_examples: list[dict]):
    """Token-budget packs for the training data loader; None: the Trainer's batches of N examples."""
    from trainer.collate import TokenBudgetSampler

    budget = cfg.bundled.max_tokens_per_batch
    if budget is None:
        return None
    lengths = [len(e["input_ids"]) for e in train_examples]
    sampler = TokenBudgetSampler(lengths, budget, cfg.bundled.max_examples_per_batch,
                                 seed=cfg.training.data_seed if cfg.training.data_seed is not None else cfg.training.seed)
    log.info("packing %d examples into %d batches of at most %d tokens (%.1f examples, %.0f tokens per batch "
             "on average) over %d process(es)", len(lengths), len(sampler), budget, len(lengths) / len(sampler),
             sum(lengths) / len(sampler), distributed.world_size())
    return sampler


def _trainer(batch_sampler, **kwargs):
    """transformers' Trainer, drawing its training batches from `batch_sampler` when there is one."""
    from torch.utils.data import DataLoader
    from transformers import Trainer

    class PackedTrainer(Trainer):
        def get_train_dataloader(self):
            if batch_sampler is None:
                return super().get_train_dataloader()
            loader = DataLoader(self.train_dataset, batch_sampler=batch_sampler, collate_fn=self.data_collator,
                                num_workers=self.args.dataloader_num_workers,
                                pin_memory=self.args.dataloader_pin_memory)
            return self.accelerator.prepare(loader)  # shards the packs over the ranks

    return PackedTrainer(**kwargs)


def _prepare_data(cfg: TrainerConfig, tokenizer, data_dir: Path):
    """Train and evaluation examples via the data module.

    Contract with trainer.data (owned by the data engineer):
    prepare_datasets(dataset_cfg, tokenizer, max_seq_length, seed, validation_path=None)
        -> (train_examples, eval_examples, report); examples are dicts with input_ids and labels
        (-100 on non-assistant tokens); eval_examples is empty when there is no evaluation data.
    """
    from trainer.data import prepare_datasets

    validation = exclude = None
    if cfg.bundled.validation_path:
        validation = resolve_data_path(cfg.bundled.validation_path, data_dir, "BundledConfig.validation_path")
        exclude = data_dir / cfg.bundled.validation_path  # an absolute path replaces data_dir
    ds = dataclasses.replace(cfg.dataset, dataset_path=str(resolve_data_path(
        cfg.dataset.dataset_path, data_dir, "DatasetConfig.dataset_path", exclude=exclude)))
    return prepare_datasets(ds, tokenizer, cfg.bundled.max_seq_length, cfg.training.seed,
                            validation_path=validation)


def _make_collator(cfg: TrainerConfig, tokenizer):
    from trainer.collate import make_collator

    return make_collator(tokenizer, padding_free=cfg.bundled.padding_free,
                         pad_to_multiple_of=cfg.collator.pad_to_multiple_of,
                         flash_attention=cfg.bundled.attn_implementation == "flash_attention_2")


def run(cfg: TrainerConfig, data_dir: Path) -> dict:
    """Train, save the adapter and metrics; raise Interrupted after a SIGTERM checkpoint.

    Under `--nproc-per-node N` every rank runs this; only rank 0 writes the log, metrics, marker and adapter.
    """
    import torch
    from transformers import set_seed

    main = distributed.is_main_process()
    for warning in cfg.warnings:
        log.warning("%s", warning)
    check_kernels(cfg)
    out = Path(cfg.training.output_dir)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / COMPLETED_MARKER).unlink(missing_ok=True)
    set_seed(cfg.training.seed)

    tokenizer = load_tokenizer(cfg)
    train_examples, eval_examples, report = _prepare_data(cfg, tokenizer, data_dir)
    log.info("data: %d training and %d evaluation examples", len(train_examples), len(eval_examples))
    collator = _make_collator(cfg, tokenizer)
    args = _training_arguments(cfg, has_eval=bool(eval_examples))

    model = attach_adapter(load_base_model(cfg), cfg)
    trainable, total = model.get_nb_trainable_parameters()
    log.info("trainable parameters: %d of %d (%.3f%%)", trainable, total, 100 * trainable / total)

    run_fingerprint = _run_fingerprint(cfg, train_examples)
    resume = _resume_point(cfg, run_fingerprint)
    resumed_step, finished = 0, False
    if resume is not None:
        state = json.loads((resume / "trainer_state.json").read_text())
        resumed_step = state["global_step"]
        finished = 0 < state.get("max_steps", 0) <= resumed_step
        log.info("resuming from checkpoint %s (step %d)", resume, resumed_step)
    else:
        log.info("no complete checkpoint in %s: starting from step 0", cfg.checkpoint_dir)

    stop = StopOnSigterm()
    callbacks = [CompleteCheckpoints(cfg.training.save_total_limit, run_fingerprint), stop]
    if main:
        callbacks.append(JsonLinesLog(out / "train_log.jsonl", resumed_step))
    trainer = _trainer(
        _batch_sampler(cfg, train_examples),
        model=model, args=args, data_collator=collator, train_dataset=train_examples,
        eval_dataset=eval_examples or None, callbacks=callbacks,
    )
    started = time.monotonic()
    if finished:
        # The Trainer would take one more step from a final checkpoint; a retried pod (say, after a
        # failed push) only needs the trained weights back.
        from peft import load_peft_weights, set_peft_model_state_dict

        log.info("training had finished at step %d: reusing its adapter", resumed_step)
        set_peft_model_state_dict(model, load_peft_weights(str(resume), device=str(args.device)))
        training_loss, runtime = None, None
    else:
        stop.install()
        try:
            result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
            training_loss, runtime = result.training_loss, result.metrics.get("train_runtime")
        finally:
            stop.uninstall()
        if stop.received:
            raise Interrupted(f"stopped by SIGTERM at step {trainer.state.global_step}; checkpoint in "
                              f"{cfg.checkpoint_dir}")

    trainer.save_model(str(out))  # writes on rank 0 only
    metrics: dict = {}
    if main:  # base and tuned evaluation, loss curve, metrics.json and KAITO's completion marker
        metrics = {
            "train": {"loss": training_loss, "global_step": max(trainer.state.global_step, resumed_step),
                      "resumed_from_step": resumed_step, "seconds": round(time.monotonic() - started, 1),
                      "examples": len(train_examples), "processes": distributed.world_size(),
                      "fingerprint": run_fingerprint},
            "data": report,
        }
        tokens = trainer.state.num_input_tokens_seen
        if tokens and runtime:  # counted with TrainingArguments.include_num_input_tokens_seen
            metrics["train"].update(input_tokens=tokens, tokens_per_second=round(tokens / runtime, 1))
        if cfg.bundled.evaluate and eval_examples:
            batch = cfg.training.per_device_eval_batch_size
            dtype = torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else None
            with model.disable_adapter():
                metrics["base"] = evaluate(model, eval_examples, collator, batch, autocast_dtype=dtype)
            metrics["tuned"] = evaluate(model, eval_examples, collator, batch, autocast_dtype=dtype)
            metrics["eval_examples"] = len(eval_examples)
            log.info("eval loss: base %.4f, tuned %.4f", metrics["base"]["loss"], metrics["tuned"]["loss"])
        if plot_losses(out / "train_log.jsonl", out / "loss_curve.png"):
            metrics["loss_curve"] = "loss_curve.png"
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, default=str) + "\n")
        (out / COMPLETED_MARKER).write_text(f"Fine-Tuning completed at {time.strftime('%Y-%m-%d-%H-%M-%S')}\n")
        log.info("adapter and metrics written to %s", out)
    # Every rank leaves together: the others wait here while rank 0 evaluates and writes, rather than tearing
    # down their side of the group under it (ncclCommAbort must be called collectively: pytorch/pytorch#122358,
    # which wrote the "Shutdown" section of torch.distributed's docs). TrainingArguments.ddp_timeout (1,800 s by
    # default) bounds the wait.
    distributed.barrier()
    return metrics
