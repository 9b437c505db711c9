"""The Pulumi CLI's project-config rules, applied to Pulumi.yaml and every stack file.

`pulumi preview` / `up` first validate the project (pulumi/pulumi sdk/go/common/workspace/project.go,
`Project.Validate`, `ValidateConfigValue`) and then merge each stack's config with it
(pkg/workspace/config.go, `ValidateStackConfigAndApplyProjectConfig` -> `mergeConfig`): a key the
project declares without a default or value and the stack does not set stops the run ("Stack 'dev' is
missing configuration value ..."), and a typed key whose stack value does not match stops it too.
Stack values reach the check as text: YAML scalars become strings (sdk/go/common/resource/config/
object.go, `MarshalString`), lists and maps JSON. The rules below mirror that code at pulumi/pulumi
1b594989 (2026-08-21).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from infra.config import KEYS, NAMESPACE, from_values
from infra.plan import stacks
from infra.specs import REPO_ROOT

PROJECT = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text())
PROJECT_NAME = PROJECT["name"]


def namespaced_by_project(key: str) -> bool:
    return ":" not in key or key.startswith(PROJECT_NAME + ":")


def full_key(key: str) -> str:
    return key if ":" in key else f"{PROJECT_NAME}:{key}"


def valid_value(type_name: str, items: dict | None, value: Any) -> bool:
    """workspace.ValidateConfigValue."""
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "integer":
        if isinstance(value, bool):
            return False
        if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
            return True
        if isinstance(value, str):
            try:
                int(value)
            except ValueError:
                return False
            return True
        return False
    if type_name == "boolean":
        return value in ("true", "false") or isinstance(value, bool)
    if type_name == "object":
        return isinstance(value, dict)
    if not isinstance(value, list) or items is None:
        return False
    return all(valid_value(items["type"], items.get("items"), item) for item in value)


def project_problems(project: dict) -> list[str]:
    """Project.Validate, for the config block."""
    problems = []
    for key, spec in (project.get("config") or {}).items():
        if not isinstance(spec, dict):  # short form: a default (project key) or a value (other namespace)
            continue
        if "default" in spec and "value" in spec:
            problems.append(f"{key}: cannot have both a 'default' and 'value' attribute")
        if namespaced_by_project(key):
            if spec.get("type") == "array" and "items" not in spec:
                problems.append(f"{key}: declares an array but no 'items' type")
            if "type" in spec and spec.get("default") is not None and not valid_value(
                    spec["type"], spec.get("items"), spec["default"]):
                problems.append(f"{key}: default is not of type {spec['type']}")
        else:
            if "type" in spec:
                problems.append(f"{key}: not namespaced by the project and should not define a type")
            if "default" in spec:
                problems.append(f"{key}: not namespaced by the project and should not define a default value")
            if "value" not in spec:
                problems.append(f"{key}: namespaced and must provide an attribute 'value'")
    return problems


def parse_key(key: str) -> bool:
    """config.ParseKey: `<namespace>:<name>`, or the old `<namespace>:config:<name>`."""
    parts = key.split(":")
    return len(parts) == 2 or (len(parts) == 3 and parts[1] == "config")


def as_pulumi_text(value: Any) -> tuple[Any, bool]:
    """How a stack value reaches validation: (content, secure). Scalars as text, lists and maps as JSON data."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        return value["secure"], True
    if isinstance(value, bool):
        return json.dumps(value), False
    if isinstance(value, (int, float)):
        return json.dumps(value), False
    if isinstance(value, str):
        return value, False
    return json.loads(json.dumps(value)), False


def stack_problems(stack: str, project: dict, stack_file: dict) -> list[str]:
    """mergeConfig + validateStackConfigValues for one stack file."""
    problems = []
    config = stack_file.get("config") or {}
    for key in config:
        if not parse_key(key):
            problems.append(f"{key}: configuration keys should be of the form <namespace>:<name>")
    values = {full_key(k): v for k, v in config.items()}
    missing = []
    for key, spec in sorted((project.get("config") or {}).items()):
        spec = spec if isinstance(spec, dict) else {"default": spec}
        name = full_key(key)
        if name not in values:
            if spec.get("default") is None and spec.get("value") is None and name.startswith(PROJECT_NAME + ":"):
                missing.append(key)
            continue
        if "type" in spec:
            content, secure = as_pulumi_text(values[name])
            if spec.get("secret") and not secure:
                problems.append(f"Stack '{stack}' with configuration key '{key}' must be encrypted as it's secret")
            if not valid_value(spec["type"], spec.get("items"), content):
                problems.append(f"Stack '{stack}' with configuration key '{key}' must be of type '{spec['type']}'")
    if missing:
        problems.insert(0, f"Stack '{stack}' is missing configuration values {missing}")
    return problems


def merged_values(project: dict, stack_file: dict) -> dict[str, Any]:
    """What the program's pulumi.Config.get returns: stack values, else the project default, as text."""
    out = {}
    values = {full_key(k): v for k, v in (stack_file.get("config") or {}).items()}
    for key, spec in (project.get("config") or {}).items():
        name = full_key(key)
        raw = values[name] if name in values else spec.get("default")
        if raw is None or not name.startswith(f"{NAMESPACE}:"):
            continue
        if isinstance(raw, (list, dict)):
            out[name.split(":", 1)[1]] = json.dumps(raw)
        else:
            out[name.split(":", 1)[1]] = as_pulumi_text(raw)[0] if not isinstance(raw, bool) else str(raw).lower()
    return out


def stack_file(stack: str) -> dict:
    return yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}


def test_the_project_file_passes_pulumis_project_validation():
    assert project_problems(PROJECT) == []


@pytest.mark.parametrize("stack", stacks())
def test_every_required_key_is_set_and_typed_right_in_the_stack(stack):
    assert stack_problems(stack, PROJECT, stack_file(stack)) == [], f"Pulumi.{stack}.yaml"


@pytest.mark.parametrize("stack", stacks())
def test_the_program_accepts_what_pulumi_passes_it(stack):
    """Defaults applied and values turned to text as the CLI does; infra/config.py must accept them."""
    from_values(stack, merged_values(PROJECT, stack_file(stack)))


def test_defaults_in_pulumi_yaml_are_the_programs_defaults():
    for key, (_, default) in KEYS.items():
        declared = PROJECT["config"][f"{NAMESPACE}:{key}"].get("default")
        assert declared == default, f"Pulumi.yaml kaito-gitops:{key}: default {declared!r}, infra/config.py {default!r}"


def test_every_key_has_a_type_so_pulumi_checks_its_value():
    untyped = [k for k, spec in PROJECT["config"].items() if "type" not in spec]
    assert untyped == [], "Pulumi.yaml: keys without 'type' are neither checked nor defaulted by the CLI"


def test_a_key_without_default_missing_from_a_stack_is_reported():
    """The rule that stopped `pulumi preview` before: adminGroupObjectIds had no default and no stack set it."""
    project = {"name": PROJECT_NAME, "config": {"kaito-gitops:adminGroupObjectIds": {"description": "groups"}}}
    assert stack_problems("dev", project, {"config": {}}) == [
        "Stack 'dev' is missing configuration values ['kaito-gitops:adminGroupObjectIds']"]


@pytest.mark.parametrize("spec,value", [
    ({"type": "integer"}, "two"),
    ({"type": "boolean"}, "yes"),
    ({"type": "array", "items": {"type": "string"}}, "10.0.0.0/8"),
    ({"type": "array", "items": {"type": "object"}}, ["gpua100"]),
    ({"type": "string"}, {"nested": True}),
    ({"type": "string", "secret": True}, "plain"),
])
def test_a_value_of_the_wrong_type_is_reported(spec, value):
    project = {"name": PROJECT_NAME, "config": {"kaito-gitops:k": spec}}
    assert stack_problems("dev", project, {"config": {"kaito-gitops:k": value}}), (spec, value)


@pytest.mark.parametrize("config,message", [
    ({"azure-native:location": {"type": "string", "value": "westus3"}}, "should not define a type"),
    ({"azure-native:location": {"default": "westus3"}}, "should not define a default value"),
    ({"kaito-gitops:pools": {"type": "array"}}, "no 'items' type"),
    ({"kaito-gitops:count": {"type": "integer", "default": "many"}}, "default is not of type integer"),
])
def test_project_rules_reject_what_the_cli_rejects(config, message):
    problems = project_problems({"name": PROJECT_NAME, "config": config})
    assert any(message in p for p in problems), problems


def test_an_unquoted_minor_version_would_lose_its_zero():
    """YAML reads 1.30 as a float; Pulumi passes the text "1.3", which config.py rejects."""
    content, _ = as_pulumi_text(yaml.safe_load("v: 1.30")["v"])
    assert content == "1.3"
