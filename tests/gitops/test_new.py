"""`kaito-gitops new`: what it writes validates; bad input is refused with exit 1 or 2 and nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.cli import main
from infra.model import INFERENCE_KIND, TUNING_KIND
from infra.specs import load_environment


@pytest.mark.parametrize("kind, schema, model_kind", [
    ("tuning", "tuning-job.schema.json", TUNING_KIND),
    ("inference", "inference-deployment.schema.json", INFERENCE_KIND),
])
def test_writes_a_spec_that_validates(workloads: Path, capsys, kind, schema, model_kind):
    assert main(["new", kind, "--team", "search-ranking", "--name", "ranker-v2"]) == 0
    path = workloads / "dev" / "search-ranking" / "ranker-v2.yaml"
    text = path.read_text()
    assert text.splitlines()[0] == f"# yaml-language-server: $schema=../../../schemas/{schema}"
    assert yaml.safe_load(text)["metadata"] == {"name": "ranker-v2", "team": "search-ranking"}
    created = load_environment("dev", workloads).by_name("ranker-v2")
    assert created is not None and created.kind == model_kind and created.team == "search-ranking"
    assert "wrote" in capsys.readouterr().out


def test_schema_path_points_at_the_real_schema():
    """The relative schema line resolves from the written file's folder to the repository's schemas/."""
    from infra.schemas import SCHEMAS_DIR
    from infra.specs import WORKLOADS_DIR
    assert (WORKLOADS_DIR / "dev" / "any-team" / "../../../schemas/tuning-job.schema.json").resolve() == \
        SCHEMAS_DIR / "tuning-job.schema.json"


def test_preset_and_env_are_used(workloads: Path):
    assert main(["new", "inference", "--team", "ml-platform", "--name", "mistral", "--env", "prod",
                 "--preset", "mistral-7b"]) == 0
    spec = load_environment("prod", workloads).by_name("mistral").spec
    assert spec["preset"] == "mistral-7b"


def test_refuses_to_overwrite(workloads: Path, capsys):
    path = workloads / "dev" / "ml-platform" / "phi3-dolly.yaml"
    before = path.read_text()
    assert main(["new", "inference", "--team", "ml-platform", "--name", "phi3-dolly"]) == 1
    assert path.read_text() == before
    assert "already exists" in capsys.readouterr().err


def test_refuses_a_name_taken_in_another_folder(workloads: Path, capsys):
    assert main(["new", "tuning", "--team", "search-ranking", "--name", "phi3-dolly"]) == 1
    assert "already used by" in capsys.readouterr().err
    assert not (workloads / "dev" / "search-ranking").exists()


@pytest.mark.parametrize("name", ["My-Job", "job_1", "-job", "job-", "a" * 64, "job.v2"])
def test_refuses_names_that_are_not_dns_labels(workloads: Path, capsys, name):
    assert main(["new", "tuning", "--team", "ml-platform", f"--name={name}"]) == 1
    err = capsys.readouterr().err
    assert "is not a DNS-1123 label" in err and "Traceback" not in err
    assert not list((workloads / "dev" / "ml-platform").glob("*[A-Z_.]*.yaml"))


def test_refuses_a_team_without_a_quota(workloads: Path, capsys):
    assert main(["new", "tuning", "--team", "vision", "--name", "x"]) == 1
    assert "team 'vision' may not deploy to dev" in capsys.readouterr().err
    assert not (workloads / "dev" / "vision").exists()


@pytest.mark.parametrize("preset, message", [
    ("no-such-model", "'no-such-model' is not a KAITO preset ("),
    ("llama-3.1-8b-instruct", "'llama-3.1-8b-instruct' is not a KAITO preset that supports tuning"),
    ("falcon-7b", "'falcon-7b' is not a KAITO preset ("),  # listed in supported_models.yaml, refused by KAITO v0.12
])
def test_refuses_a_preset_that_cannot_be_tuned(workloads: Path, capsys, preset, message):
    assert main(["new", "tuning", "--team", "ml-platform", "--name", "x", "--preset", preset]) == 1
    assert message in capsys.readouterr().err
    assert not (workloads / "dev" / "ml-platform" / "x.yaml").exists()


def test_refuses_a_spec_that_would_break_the_quota(workloads: Path, capsys):
    """search-ranking may run one tuning job in dev: the second is refused and not left behind."""
    assert main(["new", "tuning", "--team", "search-ranking", "--name", "first"]) == 0
    assert main(["new", "tuning", "--team", "search-ranking", "--name", "second"]) == 1
    err = capsys.readouterr().err
    assert "maxConcurrentTuningJobs" in err and "not written" in err
    assert not (workloads / "dev" / "search-ranking" / "second.yaml").exists()


def test_usage_errors_exit_2(workloads: Path, capsys):
    assert main(["new", "tuning", "--team", "ml-platform", "--name", "x", "--env", "staging"]) == 2
    assert "unknown environment 'staging'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["new", "training", "--team", "ml-platform", "--name", "x"])
    assert exit_.value.code == 2
