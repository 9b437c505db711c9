"""Trainer throughput: our recipe against a baseline set up like KAITO's default, same hardware, same data.

    .venv/bin/python benchmarks/bench_trainer.py                       # CPU, tiny Phi-3, anywhere (< 2 min)
    python benchmarks/bench_trainer.py --device cuda --model phi-3-mini   # one A100/H100 GPU

Both sides load the model and attach LoRA through the trainer's own code (trainer/model.py) from a
training_config parsed by trainer/config.py, and train with the same loop and optimizer on the same
synthetic dolly-like examples (random token ids; prompt+response lengths lognormal, mean about 220
tokens, long tail; speed does not depend on weight or token values). Only the recipe differs:

  ours      padding-free batches filled in order to a 2,048-token budget (about 9 examples;
            trainer/collate.py), LoRA on every linear layer, loss on the response tokens only,
            gradient checkpointing without reentrancy
  kaito     batch size 1 padded to 1024 tokens, loss on every token, LoRA on o_proj and down_proj only
            (what KAITO's default target list matches on Phi-3), no gradient checkpointing
  kaito-np  the same without padding, to separate the cost of padding from the rest

Each variant runs in its own process so peak memory is its own. MFU counts 4*N_frozen + 6*N_trainable
FLOPs per real token against the GPU's dense bf16 peak; the CPU has no such figure and shows n/a.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
DOLLY_EXAMPLES = 15011
# Dense bf16 tensor-core peaks (NVIDIA datasheets): A100 SXM/PCIe 312 TFLOP/s, H100 SXM 989, H100 PCIe 756, H200 989.
PEAK_BF16 = {"A100": 312e12, "H100 PCIe": 756e12, "H100": 989e12, "H200": 989e12}
MODELS = {
    # Phi-3-mini's architecture (config.json of microsoft/Phi-3-mini-128k-instruct), random weights.
    "phi-3-mini": dict(vocab_size=32064, hidden_size=3072, intermediate_size=8192, num_hidden_layers=32,
                       num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
    "tiny": dict(vocab_size=512, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048),
}
VARIANTS = {
    "ours": dict(batch=8, max_tokens=2048, padding_free=True, pad_to=None, loss_on="response", targets=None, checkpointing=True),
    "kaito": dict(batch=1, padding_free=False, pad_to=1024, loss_on="all", targets=["o_proj", "down_proj"],
                  checkpointing=False),
    "kaito-np": dict(batch=1, padding_free=False, pad_to=None, loss_on="all", targets=["o_proj", "down_proj"],
                     checkpointing=False),
}


def dolly_like(n: int, vocab: int, seed: int, max_len: int = 1024) -> list[dict]:
    """Examples with dolly-like lengths: prompt ~60 and response ~160 tokens on average, long tail."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        prompt = min(max_len // 2, max(4, int(rng.lognormvariate(3.8, 0.7))))
        response = min(max_len - prompt, max(2, int(rng.lognormvariate(4.8, 0.8))))
        ids = [rng.randrange(10, vocab) for _ in range(prompt + response)]
        out.append({"input_ids": ids, "prompt_len": prompt})
    return out


def save_random_model(model: str, directory: Path) -> None:
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    torch.manual_seed(0)
    config = Phi3Config(**MODELS[model], pad_token_id=0, bos_token_id=1, eos_token_id=2)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        net = Phi3ForCausalLM(config).to(torch.bfloat16)
    net.save_pretrained(directory)


def training_config(model_dir: Path, method: str, variant: dict) -> dict:
    quantization = {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_compute_dtype": "bfloat16",
                    "bnb_4bit_use_double_quant": True} if method == "qlora" else {"load_in_4bit": False}
    lora = {"r": 8, "lora_alpha": 8, "lora_dropout": 0.0}
    if variant["targets"]:
        lora["target_modules"] = variant["targets"]
    return {"training_config": {
        "ModelConfig": {"pretrained_model_name_or_path": str(model_dir), "torch_dtype": "bfloat16"},
        "QuantizationConfig": quantization, "LoraConfig": lora,
        "TrainingArguments": {"output_dir": "/tmp/bench-out", "per_device_train_batch_size": variant["batch"]},
    }}


def batches(examples: list[dict], variant: dict, collator) -> list[dict]:
    from trainer.collate import token_budget_batches

    if variant.get("max_tokens"):
        groups = token_budget_batches([len(e["input_ids"]) for e in examples], variant["max_tokens"])
    else:
        groups = [range(start, min(start + variant["batch"], len(examples)))
                  for start in range(0, len(examples), variant["batch"])]
    out = []
    for group in groups:
        features = []
        for ex in (examples[i] for i in group):
            ids = ex["input_ids"]
            labels = list(ids) if variant["loss_on"] == "all" else [-100] * ex["prompt_len"] + ids[ex["prompt_len"]:]
            features.append({"input_ids": ids, "labels": labels})
        if variant["pad_to"]:
            for f in features:  # what a max_length-padding tokenizer hands the model
                pad = variant["pad_to"] - len(f["input_ids"])
                f["attention_mask"] = [1] * len(f["input_ids"]) + [0] * pad
                f["input_ids"] = f["input_ids"] + [0] * pad
                f["labels"] = f["labels"] + [-100] * pad
        out.append(collator(features))
    return out


def run_variant(name: str, model_dir: Path, method: str, device: str, steps: int, examples: list[dict]) -> dict:
    import torch

    from trainer.collate import make_collator
    from trainer.config import parse_config
    from trainer.model import attach_adapter, load_base_model

    variant = VARIANTS[name]
    cfg = parse_config(training_config(model_dir, method, variant))
    model = attach_adapter(load_base_model(cfg), cfg)
    if variant["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    trainable, total = model.get_nb_trainable_parameters()

    class _Tok:  # the padded path only needs a pad id; the real tokenizer is not part of the timing
        pad_token_id, eos_token, padding_side = 0, None, "right"

        def pad(self, features, **kw):
            keys = features[0].keys()
            return {k: torch.tensor([f[k] for f in features]) for k in keys}

    collator = make_collator(None, padding_free=True) if variant["padding_free"] else _Tok().pad
    work = batches(examples, variant, collator)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    warmup = 2
    real = slots = 0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = None
    for i, batch in enumerate(work[: warmup + steps]):
        if i == warmup:
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            real = slots = 0
        inputs = {k: v.to(device) for k, v in batch.items() if hasattr(v, "to")}
        with torch.autocast(device_type=device, dtype=dtype, enabled=device == "cuda"):
            loss = model(**inputs, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        mask = batch.get("attention_mask")
        real += int(mask.sum()) if mask is not None else batch["input_ids"].numel()
        slots += batch["input_ids"].numel()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    peak = (torch.cuda.max_memory_allocated() if device == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"variant": name, "real_tokens_per_s": real / seconds, "padding_efficiency": real / slots,
            "peak_memory_gib": peak / 2**30, "trainable": trainable, "frozen": total - trainable,
            "steps": steps, "seconds": seconds}


def gpu_peak() -> tuple[str, float | None]:
    import torch

    if not torch.cuda.is_available():
        return platform.processor() or platform.machine(), None
    name = torch.cuda.get_device_name()
    for key in sorted(PEAK_BF16, key=len, reverse=True):
        if all(part in name for part in key.split()):
            return name, PEAK_BF16[key]
    return name, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", choices=tuple(MODELS), default="tiny")
    parser.add_argument("--method", choices=("qlora", "lora"), default="qlora")
    parser.add_argument("--steps", type=int, default=None, help="timed optimizer steps per variant")
    parser.add_argument("--variants", default="ours,kaito,kaito-np")
    parser.add_argument("--out", type=Path, default=OUT / "trainer.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    steps = args.steps or (20 if args.device == "cpu" else 30)

    if args.child:  # one variant, in its own process
        variant = VARIANTS[args.child]
        # A 2,048-token budget holds about 9 dolly-like examples; 16 per step leaves room for short ones.
        n = (steps + 2) * (16 if variant.get("max_tokens") else variant["batch"])
        examples = dolly_like(n, MODELS[args.model]["vocab_size"], seed=0)
        print(json.dumps(run_variant(args.child, args.model_dir, args.method, args.device, steps, examples)))
        return

    with tempfile.TemporaryDirectory() as tmp:
        save_random_model(args.model, Path(tmp))
        results = []
        for name in args.variants.split(","):
            child = subprocess.run([sys.executable, __file__, "--child", name, "--model-dir", tmp, "--model", args.model,
                                    "--method", args.method, "--device", args.device, "--steps", str(steps)],
                                   capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
            if child.returncode != 0:
                sys.exit(f"variant {name} failed:\n{child.stderr[-3000:]}")
            results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    hardware, peak = gpu_peak() if args.device == "cuda" else (platform.processor() or platform.machine(), None)
    mean_len = sum(len(e["input_ids"]) for e in dolly_like(2000, 1000, seed=1)) / 2000
    base = next((r for r in results if r["variant"] == "kaito"), results[-1])
    print(f"hardware: {hardware}; model: {args.model} ({args.method}); dolly-like mean {mean_len:.0f} tokens/example")
    print("| variant | real tokens/s | vs kaito | padding efficiency | peak memory GiB | epoch (15k dolly) | MFU |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        flops = 4 * r["frozen"] + 6 * r["trainable"]
        r["mfu"] = r["real_tokens_per_s"] * flops / peak if peak else None
        r["epoch_hours"] = DOLLY_EXAMPLES * mean_len / r["real_tokens_per_s"] / 3600
        r["speedup_vs_kaito"] = r["real_tokens_per_s"] / base["real_tokens_per_s"]
        print(f"| {r['variant']} | {r['real_tokens_per_s']:,.0f} | {r['speedup_vs_kaito']:.2f}x | "
              f"{r['padding_efficiency']:.1%} | {r['peak_memory_gib']:.2f} | {r['epoch_hours']:.2f} h | "
              f"{'n/a' if r['mfu'] is None else format(r['mfu'], '.1%')} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"hardware": hardware, "model": args.model, "method": args.method,
                                    "device": args.device, "mean_tokens": mean_len, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
