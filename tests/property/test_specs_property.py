"""Property tests generated from our own schemas (schemas/*.json) with hypothesis-jsonschema.

For any YAML text, and any document the schemas describe (raw, or narrowed to this environment's teams,
presets and sizes so that many of them validate): loading and `kaito-gitops validate` never raise, exit
with 0 or 1, and print only `file:line: $.path: message` lines; whatever validates renders to objects
that pass Kubernetes' strict schemas (kubernetes-validate) or KAITO's CRDs, with names and labels within
Kubernetes' limits and no mount path used twice in a container. Examples are capped so that the file runs
in well under a minute on two cores; a failure prints the smallest example hypothesis found.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from unittest import mock

import kubernetes_validate
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import utils as conjecture_utils

import hypothesis_jsonschema._from_schema as from_schema_module
from hypothesis_jsonschema import from_schema
from infra import catalog, specs
from infra.cli import main
from infra.crd import crd_errors, is_kaito
from infra.render import render_environment
from infra.schemas import SCHEMAS_DIR
from infra.yamlload import load_text

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = REPO / "tests" / "fixtures" / "hostile" / "_base" / "minimal" / "workloads" / "dev" / "_defaults.yaml"
KUBERNETES_VERSION = str(yaml.safe_load((REPO / "Pulumi.dev.yaml").read_text())["config"]["kaito-gitops:kubernetesVersion"])
DIAGNOSTIC = re.compile(r"\S[^:]*:\d+: \$\S*: .+")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
SETTINGS = settings(max_examples=25, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large])


class _Many:
    """hypothesis-jsonschema 0.23.1 (the latest release) drives Hypothesis' private `many` as
    `while elements.more()`; current Hypothesis made `many` a context manager iterated with `for`.
    This adapter gives the old interface on top of the new one."""

    def __init__(self, data, **sizes) -> None:
        self._many = conjecture_utils.many(data, **sizes).__enter__()
        self._elements = iter(self._many)

    def more(self) -> bool:
        return next(self._elements, False) is None  # each element yields None; exhausted gives False

    def reject(self, why: str | None = None) -> None:
        self._many.reject(why)


if not hasattr(conjecture_utils.many, "more"):
    from_schema_module.cu = type("conjecture_utils", (), {"many": _Many})


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))


def _narrowed(name: str) -> dict:
    """The schema narrowed to values this environment knows, and to one choice where the code (not the
    schema) wants exactly one of several keys, so that many examples validate."""
    kind, _, engine = name.partition(":")
    schema = copy.deepcopy(_schema(kind))
    props = schema["properties"]
    if "metadata" in props:
        props["metadata"]["properties"]["team"] = {"const": "ml-platform"}
        spec = props["spec"]["properties"]
        spec["placement"]["properties"]["instanceType"] = {"enum": ["Standard_NC24ads_A100_v4",
                                                                    "Standard_NC48ads_A100_v4"]}
    if kind == "tuning-job.schema.json":
        spec["engine"] = {"const": engine}
        spec["baseModel"] = {"enum": catalog.tuning_presets()}
        spec["placement"]["properties"]["nodePool"] = {"const": "gpua100"}
        spec["outputDir"] = {"enum": ["/mnt/results", "/mnt/tuned"]}
        del spec["continueFrom"]  # a reference to another job: the example is one file
        if engine == "kaito":  # KAITO's Workspace has no place for these (a rule of infra/specs.py)
            del spec["data"]["properties"]["validation"], spec["hyperparameters"]["properties"]["maxSeqLength"]
        source = schema["$defs"]["dataSource"]
        urls = {"enum": ["https://huggingface.co/datasets/a/resolve/main/train.parquet",
                         "https://example.com/data/validation.jsonl"]}
        image = {"const": "kaitogitopsdev.azurecr.io/data/dolly:v1"}
        schema["$defs"]["dataSource"] = {"anyOf": [_only(source, "urls", urls=dict(source["properties"]["urls"], items=urls)),
                                                   _only(source, "image", image=image), _only(source, "volume")]}
        output = spec["output"]
        spec["output"] = {"anyOf": [_only(output, "image"), _only(output, "volume")]}
    if kind == "inference-deployment.schema.json":
        spec["preset"] = {"enum": catalog.supported_presets()}
        adapter = schema["$defs"]["adapter"]
        del adapter["properties"]["tuningJob"]
        adapter["properties"]["image"] = {"const": "kaitogitopsdev.azurecr.io/adapters/a:v1"}
        adapter["required"] = ["name", "image"]
    if kind == "environment-defaults.schema.json":
        props["instanceType"] = {"enum": ["Standard_NC24ads_A100_v4", "Standard_NC48ads_A100_v4"]}
        quota = props["teams"]["additionalProperties"]["properties"]
        quota["allowedInstanceTypes"]["items"] = {"enum": ["Standard_NC24ads_A100_v4"]}
    return schema


def _only(schema: dict, key: str, **replaced) -> dict:
    """`schema` (an object) with `key` as its one required choice among the mutually exclusive keys."""
    out = copy.deepcopy(schema)
    for other in ("urls", "image", "volume"):
        if other != key:
            out["properties"].pop(other, None)
    out["properties"].update(replaced)
    out["required"] = [key]
    if key != "image":
        out["properties"].pop("pullSecrets", None)
    return out


def _validate(files: dict[str, str]) -> tuple[int, str, str, Path]:
    """`kaito-gitops validate` on a tree of `files` (relative to workloads/dev/); a raised exception fails the test."""
    root = Path(tempfile.mkdtemp(prefix="property-")) / "workloads"
    for relative, text in files.items():
        path = root / "dev" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(specs, "WORKLOADS_DIR", root), redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(["validate"])
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 2
    return code, out.getvalue(), err.getvalue(), root


def _workload_files(instance: dict) -> dict[str, str]:
    meta = instance.get("metadata", {})
    team, name = meta.get("team"), meta.get("name")
    folder = team if isinstance(team, str) and DNS_LABEL.fullmatch(team) else "ml-platform"
    file = name if isinstance(name, str) and DNS_LABEL.fullmatch(name) else "workload"
    return {"_defaults.yaml": DEFAULTS.read_text(encoding="utf-8"),
            f"{folder}/{file}.yaml": yaml.safe_dump(instance, sort_keys=False, allow_unicode=True)}


def _check_outcome(code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, out + err
    assert code in (0, 1), f"exit {code}\n{out}{err}"
    for line in out.splitlines():
        assert DIAGNOSTIC.fullmatch(line) or code == 0 and line.startswith("ok: "), f"not a diagnostic line: {line!r}"


def _check_kubernetes(objects: list[dict]) -> None:
    """Strict schemas, plus the name, label and mount rules the API server applies beyond the schemas."""
    for obj in objects:
        name, kind = obj["metadata"]["name"], obj["kind"]
        if is_kaito(obj):
            assert not crd_errors(obj), (kind, name, crd_errors(obj))
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        if kind in ("Namespace", "Job", "Workspace", "InferenceSet"):  # become label values or Service names
            assert len(name) <= 63 and DNS_LABEL.fullmatch(name), (kind, name)
        else:
            assert len(name) <= 253 and all(DNS_LABEL.fullmatch(part) for part in name.split(".")), (kind, name)
        for value in obj["metadata"].get("labels", {}).values():
            assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), (kind, name, value)
        pod = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("initContainers", []) + pod.get("containers", []):
            paths = [m["mountPath"] for m in container.get("volumeMounts", [])]
            assert len(paths) == len(set(paths)), (name, container["name"], paths)


YAMLISH = st.lists(st.sampled_from(list(":-[]{}&*!|>'\"#%@`,?\n\t a0.~\u2028") + ["<<", "---", "&a", "*a", ".nan"]),
                   max_size=120).map("".join)


@SETTINGS
@given(st.one_of(YAMLISH, st.text(max_size=300)))
def test_loading_any_text_gives_diagnostics_not_exceptions(text):
    doc, problems = load_text(text, "x.yaml")
    assert doc.data is None or isinstance(doc.data, dict)
    for problem in problems:
        assert problem.line >= 1 and problem.message


@pytest.mark.parametrize("name", ["tuning-job.schema.json", "inference-deployment.schema.json"])
def test_any_document_the_schema_describes_validates_without_a_traceback(name):
    @SETTINGS
    @given(from_schema(_schema(name)))
    def check(instance):
        code, out, err, _ = _validate(_workload_files(instance))
        _check_outcome(code, out, err)

    check()


@pytest.mark.parametrize("name", ["tuning-job.schema.json:kaito", "tuning-job.schema.json:bundled",
                                  "inference-deployment.schema.json", "environment-defaults.schema.json"])
def test_whatever_validates_renders_to_valid_kubernetes_objects(name):
    validated = []

    @SETTINGS
    @given(from_schema(_narrowed(name)))
    def check(instance):
        if name.startswith("environment-defaults"):
            files = {"_defaults.yaml": yaml.safe_dump(instance, sort_keys=False)}
        else:
            files = _workload_files(instance)
        code, out, err, root = _validate(files)
        _check_outcome(code, out, err)
        if code == 0:
            validated.append(instance)
            _check_kubernetes(render_environment(specs.load_environment("dev", root)))

    check()
    assert validated, "no generated example validated: the property above was never exercised"
