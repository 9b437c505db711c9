"""Load an environment's workload specs: strict YAML, JSON Schema, then the rules
KAITO's admission webhook applies and the ones it does not (presets, GPU fit,
references, quotas, secrets, unsafe URLs). Every problem in every file is
collected before anything is reported.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from infra import catalog, kaito_rules, schemas, urls
from trainer.credentials import CREDENTIAL, SIGNED_URL
from infra.diagnostics import Diagnostic, SpecError
from infra.model import (
    API_VERSION,
    DEFAULTS_KIND,
    INFERENCE_KIND,
    TUNING_KIND,
    Environment,
    Workload,
)
from infra.render.bundled import MOUNTS
from infra.render.names import KAITO_SUPPORTED_MINORS, KAITO_TARGET
from infra.render.tuning import CONTINUE_DIR, VALIDATION_DIR
from infra.yamlload import Document, child_path, load_file

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKLOADS_DIR = REPO_ROOT / "workloads"
DEFAULTS_FILE = "_defaults.yaml"
DEFAULT_MAX_TRAINING_HOURS = 72  # schemas/environment-defaults.schema.json maxTrainingHours
SCHEMA_FILES = {
    TUNING_KIND: "tuning-job.schema.json",
    INFERENCE_KIND: "inference-deployment.schema.json",
    DEFAULTS_KIND: "environment-defaults.schema.json",
}
MAX_ADAPTERS = 10
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")  # fullmatch only: $ would take "name\n"
WORKLOAD_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # a Service (DNS-1035 label) takes the name
# Mounts of the tuning pod besides outputDir: the bundled engine's Job, and KAITO's tuning Job, which mounts
# /mnt/config, /mnt/data (KAITO pkg/utils/common_preset.go) and /mnt/output (pkg/workspace/tuning/preset_tuning.go).
OTHER_MOUNTS = {MOUNTS["config"]: "the training config", MOUNTS["data"]: "the training data",
                VALIDATION_DIR: "the validation data", CONTINUE_DIR: "the adapter to continue from",
                MOUNTS["output"]: "the output volume",
                MOUNTS["registry-pull"]: "the registry pull credentials",
                MOUNTS["registry-push"]: "the registry push credentials"}
MAX_WORKLOAD_NAME = 52  # a StatefulSet's pods get the label <name>-<10-character hash>, at most 63 characters
SECRET_KEYS = re.compile(r"(password|passwd|pwd|token|clientsecret|connectionstring"
                         r"|(api|access|account|storage|private|secret|ssh|sas)[-_]?key)$", re.I)


@dataclass
class _Collector:
    """Diagnostics for one environment, with the document each path points into."""

    problems: list[Diagnostic] = field(default_factory=list)
    notices: list[Diagnostic] = field(default_factory=list)  # suggestions that never fail validation

    def add(self, doc: Document, json_path: str, message: str, hint: str = "") -> None:
        self.problems.append(Diagnostic(doc.path, doc.line(json_path), json_path, message, hint))


def display_path(path: Path) -> str:
    """Paths relative to the working directory when possible: shorter, and clickable in editors."""
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def environments(root: Path | None = None) -> list[str]:
    root = WORKLOADS_DIR if root is None else root
    try:
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    except OSError:  # no workloads/ folder, or an unreadable one: no environments
        return []


def workload_files(env_dir: Path) -> list[Path]:
    """The environment's spec files: plain files only, links never followed (`_unreadable_entries` reports them)."""
    files = []
    for folder, dirs, names in os.walk(env_dir):
        dirs[:] = sorted(d for d in dirs if not Path(folder, d).is_symlink())
        for name in names:
            path = Path(folder, name)
            if path.suffix in (".yaml", ".yml") and not name.startswith("_") and _regular(path):
                files.append(path)
    return sorted(files)


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(path.lstat().st_mode)
    except OSError:
        return False


LINK_REFUSED = "a symbolic link, which kaito-gitops does not follow"
LINK_HINT = "replace the link with the file or folder itself: specs must be plain files in the repository"


def _unreadable_entries(env_dir: Path) -> list[Diagnostic]:
    """One policy for every command: anything under workloads/ that is a link, or not a plain file or folder,
    is refused rather than followed, so what is validated is exactly what git holds."""
    problems: list[Diagnostic] = []

    def refuse(path: Path, message: str, hint: str) -> None:
        problems.append(Diagnostic(display_path(path), 1, "$", message, hint))

    def folder_error(error: OSError) -> None:
        refuse(Path(error.filename or env_dir), f"cannot read this folder ({error.strerror or error})",
               "make it readable, or remove it")

    for folder, dirs, names in os.walk(env_dir, onerror=folder_error):
        for name in sorted(dirs + names):
            path = Path(folder, name)
            if path.is_symlink():
                refuse(path, LINK_REFUSED, LINK_HINT)
            elif name in names and (name.endswith((".yaml", ".yml"))) and not _regular(path):
                refuse(path, "not a plain file (a device, pipe or socket)", "replace it with a plain YAML file")
    return problems


def load_environment(env: str, root: Path | None = None, base: Environment | None = None) -> Environment:
    """The validated environment, or SpecError with every problem found.

    `base`: the environment at the ref a change is compared with (a pull request's target); a quota breach
    is then reported on the workloads the change adds or alters, not on whichever sorts last.
    """
    root = WORKLOADS_DIR if root is None else root
    env_dir = root / env
    for path in (root, env_dir):
        if path.is_symlink():
            raise SpecError([Diagnostic(display_path(path), 1, "$", LINK_REFUSED, LINK_HINT)])
    if not env_dir.is_dir():
        known = ", ".join(environments(root)) if root.is_dir() else "none"
        raise SpecError([Diagnostic(display_path(env_dir), 1, "$", f"no environment {env!r}",
                                    f"environments: {known}")])
    out = _Collector()
    out.problems += _unreadable_entries(env_dir)
    defaults = _load_defaults(env_dir, out)
    docs: list[tuple[Path, Document]] = []
    for path in workload_files(env_dir):
        doc = _read(path, out)
        if doc.data is not None and _check_schema(doc, out):
            docs.append((path, doc))
    pairs = [(_workload(env_dir, path, doc, defaults, out), doc) for path, doc in docs] if defaults else []
    if defaults:
        _check_environment(pairs, defaults, out, _settled(pairs, base))
        _check_kind_swaps(pairs, base, out)
    workloads = [w for w, _ in pairs]
    if out.problems:
        raise SpecError(sorted(set(out.problems)))
    return Environment(name=env, defaults=defaults, workloads=sorted(workloads, key=lambda w: (w.kind, w.name)),
                       notices=sorted(set(out.notices)))


def _read(path: Path, out: _Collector) -> Document:
    """Load one file; secrets are looked for before any schema check, so a broken file still reports them."""
    try:
        doc, problems = load_file(path, display_path(path))
    except OSError as error:
        out.problems.append(Diagnostic(display_path(path), 1, "$", f"cannot read this file ({error.strerror or error})",
                                       "make it a readable plain file"))
        return Document(display_path(path))
    out.problems += problems
    if doc.data is not None:
        _check_secrets(doc, doc.data, "$", out)
    for line, comment in doc.comments:
        if CREDENTIAL.search(comment) or SIGNED_URL.search(comment):
            out.problems.append(Diagnostic(doc.path, line, "$", "a comment holds a credential (token, key or signed URL)",
                                           "remove it and rotate it: git history keeps every version of the file"))
    return doc


def _load_defaults(env_dir: Path, out: _Collector) -> dict[str, Any]:
    path = env_dir / DEFAULTS_FILE
    if path.is_symlink() or (path.exists() and not _regular(path) and not path.is_dir()):
        return {}  # refused by _unreadable_entries
    if path.is_dir():
        out.problems.append(Diagnostic(display_path(path), 1, "$", f"{DEFAULTS_FILE} is a folder, not a file",
                                       f"replace it with a file with kind: {DEFAULTS_KIND}"))
        return {}
    if not path.is_file():
        out.problems.append(Diagnostic(display_path(path), 1, "$", "the environment has no defaults file",
                                       f"create {DEFAULTS_FILE} with kind: {DEFAULTS_KIND}"))
        return {}
    doc = _read(path, out)
    if doc.data is None or not _check_schema(doc, out, kind=DEFAULTS_KIND):
        return {}
    data = dict(doc.data)
    data.setdefault("namespace", "{team}")
    data.setdefault("maxTrainingHours", DEFAULT_MAX_TRAINING_HOURS)
    _check_namespaces(doc, data, out)
    data["kaito"] = {"version": KAITO_TARGET, "nodeProvisioning": "auto", **data.get("kaito", {})}
    _check_kaito(doc, data, out)
    _check_instance_type(doc, "$.instanceType", data["instanceType"], out)
    for team, quota in data["teams"].items():
        for i, name in enumerate(quota.get("allowedInstanceTypes", [])):
            _check_instance_type(doc, child_path(child_path(child_path("$.teams", team), "allowedInstanceTypes"), i),
                                 name, out)
    return data if len(out.problems) == 0 else {}


def _check_namespaces(doc: Document, defaults: dict[str, Any], out: _Collector) -> None:
    """The namespace template gives a valid namespace (a DNS-1123 label of at most 63 characters) for every team."""
    template = defaults["namespace"]
    for team in defaults["teams"]:
        namespace = template.replace("{team}", team)
        if len(namespace) > 63 or not DNS_LABEL.fullmatch(namespace):
            why = f"{len(namespace)} characters, over 63" if len(namespace) > 63 else "not a DNS-1123 label"
            out.add(doc, "$.namespace", f"namespace template {template!r} gives {namespace!r} for team "
                    f"{team!r}: {why}", "shorten the template or the team name; the result must start and end with "
                    "a letter or digit")


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
    if not isinstance(kind, str) or kind not in SCHEMA_FILES or (kind == DEFAULTS_KIND) != doc.path.endswith(DEFAULTS_FILE):
        allowed = DEFAULTS_KIND if doc.path.endswith(DEFAULTS_FILE) else f"{TUNING_KIND} or {INFERENCE_KIND}"
        out.add(doc, "$.kind", f"unknown kind {schemas.show(data.get('kind'))}",
                schemas.did_you_mean(str(data.get("kind")), [str(k) for k in allowed.split(" or ")], "use"))
        return False
    for error in schemas.validator(SCHEMA_FILES[kind]).iter_errors(data):
        if error.json_path in doc.ambiguous or error.json_path in doc.rejected or error.json_path == "$.apiVersion":
            continue
        for path, message, hint in schemas.explain(error):
            out.add(doc, path, message, hint)
    return len(out.problems) == before and not doc.rejected


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
    spec.setdefault("runtime", "vllm")
    spec.setdefault("replicas", 1)
    placement = spec.setdefault("placement", {})
    placement.setdefault("instanceType", defaults["instanceType"])
    for adapter in spec.setdefault("adapters", []):
        if "tuningJob" in adapter:
            adapter.setdefault("name", adapter["tuningJob"])


def _settled(pairs: list[tuple[Workload, Document]], base: Environment | None) -> set[str]:
    """Names of the workloads exactly as they are at the base: they held their quota before the change."""
    if base is None:
        return set()
    def same(w: Workload, b: Workload | None) -> bool:
        return b is not None and (b.kind, b.team, b.namespace, b.spec) == (w.kind, w.team, w.namespace, w.spec)

    return {w.name for w, _ in pairs if same(w, base.by_name(w.name))}


def _check_kind_swaps(pairs: list[tuple[Workload, Document]], base: Environment | None, out: _Collector) -> None:
    """A name that was a TuningJob at the base and is now an InferenceDeployment (or the reverse) would turn a
    deployed Workspace from tuning to inference, which KAITO's webhook refuses (Workspace.validateUpdate)."""
    for w, doc in pairs:
        before = base.by_name(w.name) if base else None
        if before is not None and before.kind != w.kind and not before.retired:
            out.add(doc, "$.kind", f"{w.name!r} is a deployed {before.kind}; KAITO cannot turn its Workspace into "
                    f"a {w.kind}'s", "use a new name (or retire or remove the old one in an earlier change)")


def _check_environment(pairs: list[tuple[Workload, Document]], defaults: dict[str, Any], out: _Collector,
                       settled: set[str]) -> None:
    by_name: dict[str, Workload] = {}
    for w, doc in pairs:
        if w.name in by_name:
            out.add(doc, "$.metadata.name", f"name {w.name!r} is already used by {display_path(by_name[w.name].path)}",
                    "rename one of them: names are unique per environment, across kinds")
        else:
            by_name[w.name] = w
    for w, doc in pairs:
        _check_team(w, doc, defaults, out)
        if w.kind == TUNING_KIND:
            _check_tuning(w, doc, by_name, defaults, out)
        else:
            _check_inference(w, doc, by_name, defaults["registry"], out)
    _check_continue_cycles(pairs, out)
    _check_quotas(pairs, defaults, out, settled)


def _check_continue_cycles(pairs: list[tuple[Workload, Document]], out: _Collector) -> None:
    """continueFrom chains end: a cycle of any length (a -> b -> a) is reported once, on each job in it."""
    docs = {w.name: doc for w, doc in pairs}
    after = {w.name: w.spec["continueFrom"]["tuningJob"] for w, _ in pairs
             if w.kind == TUNING_KIND and "tuningJob" in w.spec.get("continueFrom", {})}
    reported: set[str] = set()
    for start in sorted(after):
        chain, name = [], start
        while name in after and name not in chain and name not in reported:
            chain.append(name)
            name = after[name]
        if name in chain and len(chain[chain.index(name):]) > 1:  # one job continuing itself is reported apart
            cycle = chain[chain.index(name):]
            shown = " -> ".join(cycle + [cycle[0]])
            for job in cycle:
                out.add(docs[job], "$.spec.continueFrom.tuningJob", f"continueFrom forms a cycle: {shown}",
                        "start the chain from a job without continueFrom, or from an adapter image")
            reported.update(cycle)
        reported.update(chain)


def _check_team(w: Workload, doc: Document, defaults: dict[str, Any], out: _Collector) -> None:
    teams = defaults["teams"]
    if w.team not in teams:
        out.add(doc, "$.metadata.team", f"team {w.team!r} may not deploy to this environment",
                schemas.did_you_mean(w.team, sorted(teams), "add it under teams in _defaults.yaml, or use one of"))


def _check_instance_type(doc: Document, path: str, name: str, out: _Collector) -> bool:
    sku = catalog.sku(name)
    if sku is None or not sku.gpus:
        out.add(doc, path, f"{schemas.show(name)} is not a GPU size KAITO can run",
                schemas.did_you_mean(name, catalog.gpu_skus(), "KAITO's sizes", list_up_to=100))
        return False
    return True


def _check_tuning(w: Workload, doc: Document, workloads: dict[str, Workload], defaults: dict[str, Any],
                  out: _Collector) -> None:
    spec = w.spec
    preset = catalog.preset(spec["baseModel"])
    if preset is None or not preset.tuning:
        why = "is not a KAITO preset" if preset is None else "does not support tuning in KAITO"
        out.add(doc, "$.spec.baseModel", f"{schemas.show(spec['baseModel'])} {why}",
                schemas.did_you_mean(spec["baseModel"], catalog.tuning_presets(), "presets that support tuning"))
    if spec["method"] == "lora" and "quantization" in spec:
        out.add(doc, "$.spec.quantization", "lora trains on unquantized weights and must not set quantization",
                "remove quantization, or use method: qlora")
    if not w.retired and (hint := catalog.method_hint(spec)):
        out.notices.append(Diagnostic(doc.path, doc.line("$.spec.method"), "$.spec.method", f"notice: {hint}",
                                      "optional: set method: lora and remove quantization; the method is never "
                                      "changed for you"))
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
    else:
        _check_output_dir_mounts(doc, normal, out)
    if "continueFrom" in spec:
        _check_adapter_reference(doc, "$.spec.continueFrom", spec["continueFrom"], workloads, out, itself=w.name)
    if spec["engine"] == "kaito":
        _check_kaito_engine_limits(doc, spec, out)
        if defaults["kaito"]["nodeProvisioning"] == "byo" and not w.retired:
            out.add(doc, "$.spec.engine", "KAITO 0.12 cannot tune on bring-your-own nodes",
                    "its tuning Job sizes GPUs from resource.instanceType, which must be empty on byo nodes; "
                    "set engine: bundled")
    kaito_rules.check_tuning(w, defaults["registry"],
                             lambda path, message, hint="": out.add(doc, path, message, hint))
    if spec["engine"] == "bundled":
        if not spec["placement"].get("nodePool"):
            out.add(doc, "$.spec.placement", "the bundled engine needs a node pool",
                    "set placement.nodePool or nodePool in _defaults.yaml")
    if _check_instance_type(doc, "$.spec.placement.instanceType", spec["placement"]["instanceType"], out) and preset:
        need = catalog.tuning_memory_gib(spec["baseModel"], spec["method"], spec.get("quantization"))
        _check_fit(doc, spec["placement"], need, f"{spec['method']} tuning of {spec['baseModel']}",
                   ("use qlora, or " if spec["method"] == "lora" else "use ") + "one of: ", out)


def _check_output_dir_mounts(doc: Document, output_dir: str, out: _Collector) -> None:
    """outputDir is a volume mount of its own: it may not be, hold or sit inside another mount of the pod."""
    for mount, what in OTHER_MOUNTS.items():
        if output_dir == mount or output_dir.startswith(mount + "/") or mount.startswith(output_dir + "/"):
            out.add(doc, "$.spec.outputDir", f"outputDir {output_dir!r} overlaps {mount}, where {what} is mounted",
                    "use a folder of its own, e.g. /mnt/results")


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
        fitting = sorted((n for n in catalog.gpu_skus() if catalog.sku(n).total_gpu_memory_gib >= need
                          and catalog.sku(n).cuda),
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
    for message, hint in urls.problems(url):
        out.add(doc, path, message, hint)


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
    elif isinstance(value, str) and SIGNED_URL.search(value):
        out.add(doc, path, "the URL is signed (sig=, X-Amz-Signature=, X-Goog-Signature= or Signature=): "
                "whoever reads it can fetch the data", "revoke the signature; grant the cluster read access or use "
                "an image source")
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
                schemas.did_you_mean(name, tuning, "tuning jobs here") if tuning else "tuning jobs here: none")
    elif "image" not in target.spec["output"]:
        out.add(doc, f"{path}.tuningJob", f"TuningJob {name!r} writes its adapter to a volume, not an image",
                "reference an image instead, or give that job an image output")


def _check_inference(w: Workload, doc: Document, workloads: dict[str, Workload], registry: str,
                     out: _Collector) -> None:
    spec = w.spec
    if catalog.preset(spec["preset"]) is None:
        out.add(doc, "$.spec.preset", f"{schemas.show(spec['preset'])} is not a KAITO preset",
                schemas.did_you_mean(spec["preset"], catalog.supported_presets(), "KAITO's presets"))
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
    kaito_rules.check_inference(w, registry, lambda path, message, hint="": out.add(doc, path, message, hint))
    if _check_instance_type(doc, "$.spec.placement.instanceType", spec["placement"]["instanceType"], out):
        _check_fit(doc, {"instanceType": spec["placement"]["instanceType"]}, catalog.serving_memory_gib(spec["preset"]),
                   f"serving {spec['preset']} (its bf16 weights) on one node", "use one of: ", out)


def gpus_held(w: Workload) -> int:
    """GPUs a workload holds while it runs: the quota unit (a retired job holds none)."""
    if w.retired:
        return 0
    sku = catalog.sku(w.spec["placement"]["instanceType"])
    return (sku.gpus if sku else 0) * w.spec.get("replicas", 1)


def _check_quotas(pairs: list[tuple[Workload, Document]], defaults: dict[str, Any], out: _Collector,
                  settled: set[str]) -> None:
    docs = {id(w): doc for w, doc in pairs}
    for team, quota in defaults["teams"].items():
        mine = [w for w, _ in pairs if w.team == team]
        allowed = quota.get("allowedInstanceTypes")
        for w in mine:
            instance = w.spec["placement"]["instanceType"]
            if allowed is not None and instance not in allowed and catalog.sku(instance):  # unknown: reported once
                out.add(docs[id(w)], "$.spec.placement.instanceType",
                        f"team {team!r} may not use {instance}", "allowed for the team: " + ", ".join(allowed))
        _check_limit(mine, "maxGPUs", quota, gpus_held, "GPUs", docs, out, settled)
        tuning = [w for w in mine if w.kind == TUNING_KIND and not w.retired]
        _check_limit(tuning, "maxConcurrentTuningJobs", quota, lambda w: 1, "tuning jobs", docs, out, settled)


def _check_limit(items: list[Workload], key: str, quota: dict[str, Any], cost, unit: str,
                 docs: dict[int, Document], out: _Collector, settled: set[str]) -> None:
    """Reports the workload that pushes the team past its quota, and every one after it; workloads the change
    leaves as they were at the base count first, so the breach lands on what the change adds or alters."""
    limit = quota.get(key)
    if limit is None:
        return
    used = 0
    for w in sorted(items, key=lambda w: (w.name not in settled, w.name)):
        used += cost(w)
        if used > limit:
            out.add(docs[id(w)], "$.metadata.team",
                    f"team {w.team!r} is over its {key} quota: {used} {unit} with this workload, limit {limit}",
                    f"raise teams.{w.team}.{key} in _defaults.yaml or remove a workload")
