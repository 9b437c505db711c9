"""Seconds per hostile input: what bounded loading and linear patterns cost on the worst inputs we know.

    .venv/bin/python benchmarks/bench_hostile.py [--repeat 3]

Each case builds its input, then times the code a user's input reaches (the spec loader, `dataset check`,
the trainer's config loader, the URL check); the best of --repeat runs is reported. The `before` rows run
the patterns this repository used until issue 10 on small inputs, to show the growth that made them hang.
Prints a markdown table and writes benchmarks/out/hostile.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from infra import urls
from infra.specs import load_environment
from infra.yamlload import load_file, load_text
from trainer.config import ConfigError, load_config
from trainer.dataset_check import check_file

OUT = Path(__file__).resolve().parent / "out"
REPO = Path(__file__).resolve().parents[1]
DEFAULTS = REPO / "tests" / "fixtures" / "hostile" / "_base" / "minimal" / "workloads" / "dev" / "_defaults.yaml"
# The patterns before issue 10, kept here only to measure them.
OLD_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
OLD_UNDERSCORE_NUMBER = re.compile(r"^[-+]?[0-9][0-9_]*_[0-9_]*(\.[0-9_]*)?$")


def _laughs(levels: int, fan: int, leaf: str) -> str:
    lines = [f"l0: &l0 [{', '.join([leaf] * fan)}]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * fan)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def _spec_tree(tmp: Path, body: str) -> Path:
    env = tmp / "workloads" / "dev"
    (env / "ml-platform").mkdir(parents=True, exist_ok=True)
    shutil.copy(DEFAULTS, env / "_defaults.yaml")
    (env / "ml-platform" / "job.yaml").write_text(body)
    return tmp / "workloads"


def _validate(root: Path) -> None:
    try:
        load_environment("dev", root)
    except Exception:  # noqa: BLE001 - a SpecError is the expected outcome; its cost is what is measured
        pass


def _dataset_row(tmp: Path, hostile: str) -> Path:
    rows = [{"prompt": f"question {i}?", "completion": f"answer {i}."} for i in range(60)]
    rows.append({"prompt": "x", "completion": hostile})
    path = tmp / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _trainer_config(tmp: Path, text: str) -> None:
    path = tmp / "training_config.yaml"
    path.write_text(text)
    try:
        load_config(path)
    except ConfigError:
        pass


def cases(tmp: Path) -> list[tuple[str, str, Callable[[], object]]]:
    """(name, input size, callable) for each hostile case; inputs are built before timing."""
    five_mb = "a" * 1_000_000 + "a@" + "a." * 500_000 + "A" * 1_000_000 + "1 " * 500_000 + "-----BEGIN " + "A " * 250_000
    data = _dataset_row(tmp, five_mb)
    sparse = tmp / "huge.yaml"
    with sparse.open("wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # 100 MiB, sparse: refused from its size, never read
    max_spec = "#" + "x" * (256 * 1024 - 300) + "\n" + "apiVersion: kaito-gitops.dev/v1alpha1\nkind: TuningJob\n"
    roots = {name: _spec_tree(tmp / name, body) for name, body in {
        "max-size": max_spec,
        "underscore": "seed: 1" + "_" * 200_000 + "x\n",
        "comment": "#" + "#A" * 120_000 + "\nkind: TuningJob\n",
    }.items()}
    laughs = _laughs(9, 9, "lol")
    scalar = "s: &s " + "x" * 200_000 + "\nl: [" + ", ".join(["*s"] * 16) + "]\n"
    deep = "".join("  " * i + f"k{i}:\n" for i in range(32)) + "  " * 32 + "v: 1\n"
    url = "https://" + "ｅｘａｍｐｌｅ．" * 100 + "com/" + "a" * 1800
    return [
        ("billion laughs (9 levels x 9 aliases) in a spec", f"{len(laughs)} B", lambda: load_text(laughs, "x")),
        ("16 aliases of a 200 KB scalar in a spec", f"{len(scalar)} B", lambda: load_text(scalar, "x")),
        ("32-deep nesting in a spec", f"{len(deep)} B", lambda: load_text(deep, "x")),
        ("100 MiB spec file (sparse)", "100 MiB", lambda: load_file(sparse)),
        ("validate a spec at the 256 KiB limit", "256 KiB", lambda: _validate(roots["max-size"])),
        ("validate a 200 KB digits-and-underscores scalar", "200 KB", lambda: _validate(roots["underscore"])),
        ("validate a 240 KB comment of '#' and base64", "240 KB", lambda: _validate(roots["comment"])),
        ("URL check: full-width host, 2 KB URL", f"{len(url)} chars", lambda: urls.problems(url)),
        ("dataset check: one 5 MB pathological row", f"{data.stat().st_size} B", lambda: check_file(data)),
        ("trainer config: billion laughs", f"{len(laughs)} B", lambda: _trainer_config(tmp, "training_config: {}\n" + laughs)),
        ("trainer config: 16 aliases of a 200 KB scalar", f"{len(scalar)} B", lambda: _trainer_config(tmp, scalar)),
    ] + [(f"before: e-mail pattern on a {n // 1000} KB run without '@'", f"{n} B",
          (lambda n=n: OLD_EMAIL.search("a" * n))) for n in (10_000, 20_000, 40_000)] + [
        (f"before: YAML 1.1 underscore pattern on {n // 1000} KB", f"{n} B",
         (lambda n=n: OLD_UNDERSCORE_NUMBER.match("1" + "_" * n + "x"))) for n in (5_000, 10_000, 20_000)]


def main() -> None:
    parser = argparse.ArgumentParser(description="Seconds per hostile input.")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case; the best is reported")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    rows = []
    try:
        for name, size, run in cases(tmp):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - start)
            rows.append({"case": name, "input": size, "seconds": round(best, 4)})
    finally:
        shutil.rmtree(tmp)
    print("| case | input | seconds |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row['case']} | {row['input']} | {row['seconds']:.4f} |")
    OUT.mkdir(exist_ok=True)
    result = {"cases": rows, "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count()}
    (OUT / "hostile.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
