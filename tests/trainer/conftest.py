"""Shared fixtures for the trainer tests: a tiny random Phi-3 model and a chat tokenizer.

Nothing is downloaded. The model has the real Phi-3 module names (qkv_proj, o_proj,
gate_up_proj, down_proj) so that LoRA target detection is tested against the architecture
we serve, but it is small enough (hidden 64, 2 layers, vocab ~300) to train in seconds on CPU.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

# The trainer runs in subprocesses on a 2-core machine shared with other suites: one thread per
# process avoids OpenMP oversubscription, which slowed a tiny-model run tenfold; it costs nothing here.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Phi-3-mini's chat template, as the model ships it: the trainer must not rely on
# `{% generation %}` markers, which real presets do not have.
PHI3_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]

_WORDS = (
    "the a capital of france paris is city river red blue green what why how when "
    "model train data answer question tell me about cat dog sun moon water fire "
    "one two three four five yes no maybe always never please thanks hello world"
).split()


def make_chat_rows(n: int, seed: int = 0) -> list[dict]:
    """`n` random chat conversations in the `messages` layout KAITO documents."""
    rng = random.Random(seed)

    def sentence(k: int) -> str:
        return " ".join(rng.choice(_WORDS) for _ in range(k))

    rows = []
    for _ in range(n):
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": sentence(4)})
        for _ in range(rng.randint(1, 2)):
            messages.append({"role": "user", "content": sentence(rng.randint(3, 8)) + "?"})
            messages.append({"role": "assistant", "content": sentence(rng.randint(3, 10)) + "."})
        rows.append({"messages": messages})
    return rows


def write_chat_parquet(path: Path, n: int, seed: int = 0) -> Path:
    """Write `n` chat rows to a parquet file (the format KAITO's docs use)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(make_chat_rows(n, seed)), path)
    return path


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = [" ".join(_WORDS)] * 4 + [m["content"] for r in make_chat_rows(50) for m in r["messages"]]
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        chat_template=PHI3_CHAT_TEMPLATE,
    )


@pytest.fixture(scope="session")
def tiny_tokenizer():
    """A byte-level BPE tokenizer (vocab ~300) with Phi-3's special tokens and chat template."""
    return _build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A directory laid out like KAITO's /workspace/tfs/weights: config, safetensors, tokenizer."""
    import torch
    from transformers import Phi3Config, Phi3ForCausalLM

    torch.manual_seed(0)
    config = Phi3Config(
        vocab_size=len(tiny_tokenizer),
        hidden_size=64,  # bitsandbytes' CPU 4-bit inference path needs in_features % 64 == 0
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=tiny_tokenizer.pad_token_id,
        bos_token_id=tiny_tokenizer.eos_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
    )
    model = Phi3ForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-phi3")
    model.save_pretrained(out)
    tiny_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def chat_parquet(tmp_path_factory) -> Path:
    """120 chat conversations in one parquet file: enough for the ≥50 usable examples rule."""
    return write_chat_parquet(tmp_path_factory.mktemp("data") / "train.parquet", 120)


@pytest.fixture(scope="session")
def make_chat_parquet():
    """`make_chat_parquet(path, n, seed=0)` writes n random chat rows (test modules cannot import conftest)."""
    return write_chat_parquet
