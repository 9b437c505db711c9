"""The trainer image ships only trainer/ (trainer/Dockerfile), so nothing in it may import infra."""

from __future__ import annotations

import ast
from pathlib import Path

TRAINER = Path(__file__).resolve().parents[2] / "trainer"


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def test_trainer_never_imports_infra() -> None:
    files = sorted(TRAINER.rglob("*.py"))
    assert len(files) > 5, files
    bad = [f"{path.relative_to(TRAINER.parent)}:{line}: imports {name}"
           for path in files for line, name in _imported(ast.parse(path.read_text(encoding="utf-8")))
           if name == "infra" or name.startswith("infra.")]
    assert not bad, "\n".join(bad)


def test_the_scan_sees_imports_of_every_form() -> None:
    source = "import infra.specs\nfrom infra import x\nimportlib.import_module('infra.cli')\nfrom . import infra\n"
    assert [name for _, name in _imported(ast.parse(source))] == ["infra.specs", "infra", "infra.cli"]


def test_the_dockerfile_copies_only_trainer() -> None:
    copies = [line.split()[1:-1] for line in (TRAINER / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY ")]
    assert ["trainer"] in copies and not any("infra" in " ".join(c) for c in copies), copies
