"""Load an environment's workload specs: strict YAML, JSON Schema, then the rules
KAITO's admission webhook applies and the ones it does not (presets, GPU fit,
references, quotas, secrets, unsafe URLs). Every problem in every file is
collected before anything is reported.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import os
import posixpath
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from jsonschema import Draft202012Validator

from infra import catalog
from infra.credentials import CREDENTIAL
from infra.diagnostics import Diagnostic, SpecError
from infra.model import (
    API_VERSION,
    DEFAULTS_KIND,
    INFERENCE_KIND,
    TUNING_KIND,
    Environment,
    Workload,
)
from infra.render.names import KAITO_SUPPORTED_MINORS, KAITO_TARGET
from infra.yamlload import Document, child_path, load_file

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKLOADS_DIR = REPO_ROOT / "workloads"
SCHEMAS_DIR = REPO_ROOT / "schemas"
DEFAULTS_FILE = "_defaults.yaml"
SCHEMA_FILES = {
    TUNING_KIND: "tuning-job.schema.json",
    INFERENCE_KIND: "inference-deployment.schema.json",
    DEFAULTS_KIND: "environment-defaults.schema.json",
}
MAX_ADAPTERS = 10
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SECRET_KEYS = re.compile(r"(password|passwd|pwd|token|clientsecret|connectionstring"
                         r"|(api|access|account|storage|private|secret|ssh|sas)[-_]?key)$", re.I)
UNSAFE_HOST_SUFFIXES = (".local", ".internal", ".localhost", ".localdomain")
UNSAFE_HOSTS = {"localhost", "metadata"}
# Hosts an HTTP client may read as an IPv4 address although ipaddress does not: 2852039166, 0xa9fea9fe, 0251.0.0.1
NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")


@dataclass
class _Collector:
    """Diagnostics for one environment, with the document each path points into."""

    problems: list[Diagnostic] = field(default_factory=list)

    def add(self, doc: Document, json_path: str, message: str, hint: str = "") -> None:
        self.problems.append(Diagnostic(doc.path, doc.line(json_path), json_path, message, hint))


@cache
def _validator(kind: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / SCHEMA_FILES[kind]).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def display_path(path: Path) -> str:
    """Paths relative to the working directory when possible: shorter, and clickable in editors."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def environments(root: Path = WORKLOADS_DIR) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def workload_files(env_dir: Path) -> list[Path]:
    files = [p for p in env_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()]
    return sorted(p for p in files if not p.name.startswith("_"))


def load_environment(env: str, root: Path = WORKLOADS_DIR) -> Environment:
    """The validated environment, or SpecError with every problem found."""
    env_dir = root / env
    if not env_dir.is_dir():
        known = ", ".join(environments(root)) if root.is_dir() else "none"
        raise SpecError([Diagnostic(display_path(env_dir), 1, "$", f"no environment {env!r}",
                                    f"environments: {known}")])
    out = _Collector()
    defaults = _load_defaults(env_dir, out)
    docs: list[tuple[Path, Document]] = []
    for path in workload_files(env_dir):
        doc = _read(path, out)
        if doc.data is not None and _check_schema(doc, out):
            docs.append((path, doc))
    pairs = [(_workload(env_dir, path, doc, defaults, out), doc) for path, doc in docs] if defaults else []
    if defaults:
        _check_environment(pairs, defaults, out)
    workloads = [w for w, _ in pairs]
    if out.problems:
        raise SpecError(sorted(set(out.problems)))
    return Environment(name=env, defaults=defaults, workloads=sorted(workloads, key=lambda w: (w.kind, w.name)))


def _read(path: Path, out: _Collector) -> Document:
    """Load one file; secrets are looked for before any schema check, so a broken file still reports them."""
    doc, problems = load_file(path, display_path(path))
    out.problems += problems
    if doc.data is not None:
        _check_secrets(doc, doc.data, "$", out)
    return doc


def _load_defaults(env_dir: Path, out: _Collector) -> dict[str, Any]:
    path = env_dir / DEFAULTS_FILE
    if not path.is_file():
        out.problems.append(Diagnostic(display_path(path), 1, "$", "the environment has no defaults file",
                                       f"create {DEFAULTS_FILE} with kind: {DEFAULTS_KIND}"))
        return {}
    doc = _read(path, out)
    if doc.data is None or not _check_schema(doc, out, kind=DEFAULTS_KIND):
        return {}
    data = dict(doc.data)
    data.setdefault("namespace", "{team}")
    data["kaito"] = {"version": KAITO_TARGET, "nodeProvisioning": "auto", **data.get("kaito", {})}
    _check_kaito(doc, data, out)
    _check_instance_type(doc, "$.instanceType", data["instanceType"], out)
    for team, quota in data["teams"].items():
        for i, name in enumerate(quota.get("allowedInstanceTypes", [])):
            _check_instance_type(doc, child_path(child_path(child_path("$.teams", team), "allowedInstanceTypes"), i),
                                 name, out)
    return data if len(out.problems) == 0 else {}


def _check_kaito(doc: Document, defaults: dict[str, Any], out: _Collector) -> None:
    version = defaults["kaito"]["version"].removeprefix("v")
    if ".".join(version.split(".")[:2]) not in KAITO_SUPPORTED_MINORS:
        minors = ", ".join(m + ".x" for m in KAITO_SUPPORTED_MINORS)
        out.add(doc, "$.kaito.version", f"the manifests are written for KAITO {KAITO_TARGET} ({minors}), not {version}",
                "run KAITO 0.12 on the cluster (the AKS add-on may ship an older one; see docs/rendering.md, "
                "'KAITO version') and set kaito.version to what it runs")
    if defaults["kaito"]["nodeProvisioning"] == "byo" and not defaults.get("nodePool"):
        out.add(doc, "$.kaito.nodeProvisioning", "byo nodes need the GPU pool Workspaces run on",
                "set nodePool to a pool of this stack")


def _check_schema(doc: Document, out: _Collector, kind: str | None = None) -> bool:
    """Schema errors (and YAML 1.1 ambiguities) for one document; True if it is usable."""
    data = doc.data
    before = len(out.problems)
    kind = kind or data.get("kind")
    for path, value in doc.ambiguous.items():
        out.add(doc, path, value.reason, f"quote it (\"{value}\") if you mean a string, or write the value plainly")
    if data.get("apiVersion") != API_VERSION:
        found = f"not {data['apiVersion']!r}" if "apiVersion" in data else "missing"
        out.add(doc, "$.apiVersion", f"apiVersion must be {API_VERSION!r}, {found}", "set apiVersion: " + API_VERSION)
    if kind not in SCHEMA_FILES or (kind == DEFAULTS_KIND) != (doc.path.endswith(DEFAULTS_FILE)):
        allowed = DEFAULTS_KIND if doc.path.endswith(DEFAULTS_FILE) else f"{TUNING_KIND} or {INFERENCE_KIND}"
        out.add(doc, "$.kind", f"unknown kind {data.get('kind')!r}", f"use {allowed}")
        return False
    for error in _validator(kind).iter_errors(data):
        path = error.json_path
        if path in doc.ambiguous or path in doc.rejected or path == "$.apiVersion":
            continue
        message, hint = _explain(error)
        if error.validator == "additionalProperties":
            for extra in _unexpected_keys(error):
                out.add(doc, child_path(path, extra), f"unknown field {extra!r}",
                        "allowed: " + ", ".join(sorted(error.schema.get("properties", {}))))
            continue
        if error.validator == "required":
            missing = error.message.split("'")[1]
            out.add(doc, path, f"missing required field {missing!r}",
                    error.schema.get("properties", {}).get(missing, {}).get("description", ""))
            continue
        out.add(doc, path, message, hint)
    return len(out.problems) == before and not doc.rejected


def _explain(error) -> tuple[str, str]:
    description = error.schema.get("description", "") if isinstance(error.schema, dict) else ""
    if error.validator == "enum":
        return f"{error.instance!r} is not allowed", "use one of: " + ", ".join(map(str, error.validator_value))
    if error.validator == "const":
        return f"{error.instance!r} is not allowed", f"use {error.validator_value!r}"
    if error.validator == "pattern" and error.validator_value == DNS_LABEL.pattern:
        return (f"{error.instance!r} is not a DNS-1123 label",
                "lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63 characters")
    if error.validator == "pattern" and error.validator_value == "^https://":
        return f"{error.instance!r} is not an https URL", "data is fetched over https only"
    return error.message, description


def _unexpected_keys(error) -> list[str]:
    allowed = set(error.schema.get("properties", {}))
    return sorted(k for k in error.instance if k not in allowed)


def _workload(env_dir: Path, path: Path, doc: Document, defaults: dict[str, Any], out: _Collector) -> Workload:
    data = doc.data
    meta, spec = data["metadata"], json.loads(json.dumps(data["spec"]))  # deep copy, plain types
    relative = path.relative_to(env_dir).parts
    if len(relative) > 1 and relative[0] != meta["team"]:
        out.add(doc, "$.metadata.team", f"team {meta['team']!r} does not match the team folder {relative[0]!r}",
                f"set team: {relative[0]}, or move the file to the {meta['team']}/ folder")
    if data["kind"] == TUNING_KIND:
        _apply_tuning_defaults(spec, defaults)
    else:
        _apply_inference_defaults(spec, defaults)
    namespace = defaults["namespace"].replace("{team}", meta["team"])
    return Workload(kind=data["kind"], name=meta["name"], team=meta["team"], namespace=namespace, spec=spec,
                    path=path)


def _apply_tuning_defaults(spec: dict[str, Any], defaults: dict[str, Any]) -> None:
    spec.setdefault("engine", "kaito")
    if spec["method"] == "qlora":
        spec.setdefault("quantization", "4bit")
    spec.setdefault("outputDir", "/mnt/results")
    image = spec["output"].get("image")
    if image is not None and "pushSecret" in defaults:
        image.setdefault("pushSecret", defaults["pushSecret"])
    placement = spec.setdefault("placement", {})
    placement.setdefault("instanceType", defaults["instanceType"])
    if "nodePool" in defaults:
        placement.setdefault("nodePool", defaults["nodePool"])
    spec.setdefault("hyperparameters", {})


def _apply_inference_defaults(spec: dict[str, Any], defaults: dict[str, Any]) -> None:
    placement = spec.setdefault("placement", {})
    placement.setdefault("instanceType", defaults["instanceType"])
    placement.setdefault("count", 1)
    for adapter in spec.setdefault("adapters", []):
        if "tuningJob" in adapter:
            adapter.setdefault("name", adapter["tuningJob"])
        adapter.setdefault("strength", 1.0)


def _check_environment(pairs: list[tuple[Workload, Document]], defaults: dict[str, Any], out: _Collector) -> None:
    by_name: dict[str, Workload] = {}
    for w, doc in pairs:
        if w.name in by_name:
            out.add(doc, "$.metadata.name", f"name {w.name!r} is already used by {display_path(by_name[w.name].path)}",
                    "names are unique per environment, across kinds")
        else:
            by_name[w.name] = w
    for w, doc in pairs:
        _check_team(w, doc, defaults, out)
        if w.kind == TUNING_KIND:
            _check_tuning(w, doc, by_name, defaults, out)
        else:
            _check_inference(w, doc, by_name, out)
    _check_quotas(pairs, defaults, out)


def _check_team(w: Workload, doc: Document, defaults: dict[str, Any], out: _Collector) -> None:
    teams = defaults["teams"]
    if w.team not in teams:
        out.add(doc, "$.metadata.team", f"team {w.team!r} may not deploy to this environment",
                "teams in _defaults.yaml: " + (", ".join(sorted(teams)) or "none"))


def _check_instance_type(doc: Document, path: str, name: str, out: _Collector) -> bool:
    sku = catalog.sku(name)
    if sku is None or not sku.gpus:
        out.add(doc, path, f"unknown GPU instance type {name!r}", "known: " + ", ".join(catalog.gpu_skus()))
        return False
    return True


def _check_tuning(w: Workload, doc: Document, workloads: dict[str, Workload], defaults: dict[str, Any],
                  out: _Collector) -> None:
    spec = w.spec
    preset = catalog.preset(spec["baseModel"])
    if preset is None or not preset.tuning:
        why = "is not a KAITO preset" if preset is None else "does not support tuning in KAITO"
        out.add(doc, "$.spec.baseModel", f"{spec['baseModel']!r} {why}",
                "presets that support tuning: " + ", ".join(catalog.tuning_presets()))
    if spec["method"] == "lora" and "quantization" in spec:
        out.add(doc, "$.spec.quantization", "lora trains on unquantized weights and must not set quantization",
                "remove quantization, or use method: qlora")
    for part in ("train", "validation"):
        if part in spec["data"]:
            _check_data_source(doc, f"$.spec.data.{part}", spec["data"][part], out)
    output = spec["output"]
    _check_exactly_one(doc, "$.spec.output", output, ("image", "volume"), out)
    if "image" in output and not output["image"].get("pushSecret"):
        out.add(doc, "$.spec.output.image", "an image output needs a push secret",
                "set output.image.pushSecret or pushSecret in _defaults.yaml")
    output_dir = spec["outputDir"]
    normal = posixpath.normpath(output_dir)
    if not normal.startswith("/mnt/") or ".." in output_dir.split("/"):
        out.add(doc, "$.spec.outputDir", f"outputDir {output_dir!r} is not under /mnt",
                "KAITO mounts results under /mnt; use e.g. /mnt/results")
    if "continueFrom" in spec:
        _check_adapter_reference(doc, "$.spec.continueFrom", spec["continueFrom"], workloads, out, itself=w.name)
    if spec["engine"] == "kaito":
        _check_kaito_engine_limits(doc, spec, out)
        if defaults["kaito"]["nodeProvisioning"] == "byo" and not w.retired:
            out.add(doc, "$.spec.engine", "KAITO 0.12 cannot tune on bring-your-own nodes",
                    "its tuning Job sizes GPUs from resource.instanceType, which must be empty on byo nodes; "
                    "set engine: bundled")
    if spec["engine"] == "bundled":
        if not spec["placement"].get("nodePool"):
            out.add(doc, "$.spec.placement", "the bundled engine needs a node pool",
                    "set placement.nodePool or nodePool in _defaults.yaml")
    if _check_instance_type(doc, "$.spec.placement.instanceType", spec["placement"]["instanceType"], out) and preset:
        need = catalog.tuning_memory_gib(spec["baseModel"], spec["method"], spec.get("quantization"))
        _check_fit(doc, spec["placement"], need, f"{spec['method']} tuning of {spec['baseModel']}",
                   ("use qlora, or " if spec["method"] == "lora" else "use ") + "one of: ", out)


def _check_kaito_engine_limits(doc: Document, spec: dict[str, Any], out: _Collector) -> None:
    """KAITO's tuning Workspace has no place for these; our trainer does."""
    unsupported = {
        "$.spec.data.validation": "validation" in spec["data"],
        "$.spec.continueFrom": "continueFrom" in spec,
        "$.spec.hyperparameters.maxSeqLength": "maxSeqLength" in spec["hyperparameters"],
    }
    for path, present in unsupported.items():
        if present:
            out.add(doc, path, f"{path.rsplit('.', 1)[-1]} is not supported by the kaito engine",
                    "set engine: bundled, or remove it")


def _check_fit(doc: Document, placement: dict[str, Any], need: float | None, what: str, hint: str,
               out: _Collector) -> None:
    """The instance type (times the node count) has the GPU memory `what` needs."""
    sku, count = catalog.sku(placement["instanceType"]), placement.get("count", 1)
    have = sku.total_gpu_memory_gib * count
    if need is not None and need > have:
        fitting = sorted((n for n in catalog.gpu_skus() if catalog.sku(n).total_gpu_memory_gib >= need),
                         key=lambda n: (catalog.sku(n).total_gpu_memory_gib, n))  # smallest first
        nodes = f"{count} x " if count > 1 else ""
        out.add(doc, "$.spec.placement.instanceType",
                f"{what} needs about {need:g} GiB of GPU memory; {nodes}{sku.name} has {have:g} GiB",
                hint + ", ".join(fitting[:6]))


def _check_exactly_one(doc: Document, path: str, value: dict[str, Any], keys: tuple[str, ...], out: _Collector) -> bool:
    present = [k for k in keys if k in value]
    if len(present) != 1:
        found = "none" if not present else " and ".join(present)
        out.add(doc, path, f"exactly one of {', '.join(keys)} is required, found {found}",
                "keep one source" if present else f"add one of: {', '.join(keys)}")
        return False
    return True


def _check_data_source(doc: Document, path: str, source: dict[str, Any], out: _Collector) -> None:
    if not _check_exactly_one(doc, path, source, ("urls", "image", "volume"), out):
        return
    if "pullSecrets" in source and "image" not in source:
        out.add(doc, f"{path}.pullSecrets", "pullSecrets apply only to an image source", "remove pullSecrets")
    for i, url in enumerate(source.get("urls", [])):
        _check_url(doc, f"{path}.urls[{i}]", url, out)


def _check_url(doc: Document, path: str, url: str, out: _Collector) -> None:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ipv6
        out.add(doc, path, f"not a valid URL: {exc}", "write it as https://host/path")
        return
    if parts.scheme != "https":
        return  # the schema's pattern reports it
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.username or parts.password:
        out.add(doc, path, "the URL carries credentials", "never put credentials in a spec; use an image source with pullSecrets")
    query = {key.lower() for key in parse_qs(parts.query, keep_blank_values=True)}
    if "sig" in query or {"sv", "se"} <= query:
        out.add(doc, path, "the URL carries a SAS token (sig= or sv=/se=)",
                "never put tokens in a spec; grant the cluster read access or use an image source")
    reason = _unsafe_host(host)
    if reason:
        out.add(doc, path, f"host {host!r} is {reason}", "data must come from a public https endpoint")


def _unsafe_host(host: str) -> str:
    if not host:
        return "missing"
    if host in UNSAFE_HOSTS or host.startswith("metadata.") or host.endswith(UNSAFE_HOST_SUFFIXES):
        return "local or a metadata endpoint"
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return "a numeric address in a form clients read differently" if NUMERIC_HOST.match(host) else ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped  # ::ffff:169.254.169.254 reaches the IPv4 address
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "link-local (cloud metadata lives there)"
    if not ip.is_global or ip.is_multicast:  # private, shared address space, documentation, reserved
        return "a private or reserved address"
    return ""


def _check_secrets(doc: Document, value: Any, path: str, out: _Collector) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            sub_path = child_path(path, key)
            if SECRET_KEYS.search(key) and sub not in (None, ""):
                out.add(doc, sub_path, f"field {key!r} looks like a secret in plain text",
                        "store secrets in Kubernetes Secrets and reference them by name")
            else:
                _check_secrets(doc, sub, sub_path, out)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            _check_secrets(doc, sub, child_path(path, i), out)
    elif isinstance(value, str) and CREDENTIAL.search(value):
        out.add(doc, path, "the value looks like a credential (token or key)",
                "remove it and rotate it; reference secrets by name instead")


def _check_adapter_reference(doc: Document, path: str, ref: dict[str, Any], workloads: dict[str, Workload],
                             out: _Collector, itself: str | None = None) -> None:
    if not _check_exactly_one(doc, path, ref, ("tuningJob", "image"), out):
        return
    name = ref.get("tuningJob")
    if name is None:
        return
    target = workloads.get(name)
    tuning = sorted(n for n, w in workloads.items() if w.kind == TUNING_KIND and n != itself)
    if name == itself:
        out.add(doc, f"{path}.tuningJob", "a tuning job cannot continue from itself", "name an earlier job")
    elif target is None or target.kind != TUNING_KIND:
        out.add(doc, f"{path}.tuningJob", f"no TuningJob named {name!r} in this environment",
                "tuning jobs here: " + (", ".join(tuning) or "none"))
    elif "image" not in target.spec["output"]:
        out.add(doc, f"{path}.tuningJob", f"TuningJob {name!r} writes its adapter to a volume, not an image",
                "reference an image instead, or give that job an image output")


def _check_inference(w: Workload, doc: Document, workloads: dict[str, Workload], out: _Collector) -> None:
    spec = w.spec
    if catalog.preset(spec["preset"]) is None:
        close = difflib.get_close_matches(spec["preset"], catalog.supported_presets(), n=3, cutoff=0.6)
        out.add(doc, "$.spec.preset", f"{spec['preset']!r} is not a KAITO preset",
                (f"did you mean {' or '.join(close)}? " if close else "")
                + "KAITO's presets are listed in infra/data/kaito/supported_models.yaml")
    adapters = spec["adapters"]
    if len(adapters) > MAX_ADAPTERS:
        out.add(doc, "$.spec.adapters", f"{len(adapters)} adapters, KAITO allows at most {MAX_ADAPTERS}",
                "split into several deployments")
    names: dict[str, int] = {}
    for i, adapter in enumerate(adapters):
        path = f"$.spec.adapters[{i}]"
        _check_adapter_reference(doc, path, {k: adapter[k] for k in ("tuningJob", "image") if k in adapter},
                                 workloads, out)
        if "image" in adapter and "name" not in adapter:
            out.add(doc, path, "an image adapter needs a name", "add name: <dns-label>")
        name = adapter.get("name")
        if name in names:
            out.add(doc, f"{path}.name", f"adapter name {name!r} is used twice (also adapters[{names[name]}])",
                    "give each adapter its own name")
        elif name:
            names[name] = i
        strength = adapter["strength"]
        if isinstance(strength, (int, float)) and not 0 <= strength <= 1:
            out.add(doc, f"{path}.strength", f"strength {strength} is outside 0..1", "use a value between 0 and 1")
    if _check_instance_type(doc, "$.spec.placement.instanceType", spec["placement"]["instanceType"], out):
        _check_fit(doc, spec["placement"], catalog.serving_memory_gib(spec["preset"]),
                   f"serving {spec['preset']} (its bf16 weights)", "use more nodes or one of: ", out)


def gpus_held(w: Workload) -> int:
    """GPUs a workload holds while it runs: the quota unit (a retired job holds none)."""
    if w.retired:
        return 0
    sku = catalog.sku(w.spec["placement"]["instanceType"])
    count = w.spec["placement"].get("count", 1)
    return (sku.gpus if sku else 0) * count


def _check_quotas(pairs: list[tuple[Workload, Document]], defaults: dict[str, Any], out: _Collector) -> None:
    docs = {id(w): doc for w, doc in pairs}
    for team, quota in defaults["teams"].items():
        mine = [w for w, _ in pairs if w.team == team]
        allowed = quota.get("allowedInstanceTypes")
        for w in mine:
            instance = w.spec["placement"]["instanceType"]
            if allowed is not None and instance not in allowed and catalog.sku(instance):  # unknown: reported once
                out.add(docs[id(w)], "$.spec.placement.instanceType",
                        f"team {team!r} may not use {instance}", "allowed for the team: " + ", ".join(allowed))
        _check_limit(mine, "maxGPUs", quota, gpus_held, "GPUs", docs, out)
        tuning = [w for w in mine if w.kind == TUNING_KIND and not w.retired]
        _check_limit(tuning, "maxConcurrentTuningJobs", quota, lambda w: 1, "tuning jobs", docs, out)


def _check_limit(items: list[Workload], key: str, quota: dict[str, Any], cost, unit: str,
                 docs: dict[int, Document], out: _Collector) -> None:
    """Reports the workload that pushes the team past its quota, and every one after it."""
    limit = quota.get(key)
    if limit is None:
        return
    used = 0
    for w in sorted(items, key=lambda w: w.name):
        used += cost(w)
        if used > limit:
            out.add(docs[id(w)], "$.metadata.team",
                    f"team {w.team!r} is over its {key} quota: {used} {unit} with this workload, limit {limit}",
                    f"raise teams.{w.team}.{key} in _defaults.yaml or remove a workload")
