"""The pull-request plan: one markdown comment reviewers read before they merge.

Per environment it names the workloads added, changed and removed (with the
rendered diff folded away), the Azure resources and what changes in them,
estimated GPU hours and cost, and warnings a reviewer should not miss. The
marker on the first line lets the workflow update the same comment in place.

`python -m infra.review envs --base REF` prints (JSON) the environments a
change touches; `python -m infra.review comment --base REF` writes the comment
for them, appending the `pulumi preview` outputs the workflow collected.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra import pricing
from infra.cli import guarded
from infra.diagnostics import escape
from infra.diff import RefError, check_ref
from infra.model import INFERENCE_KIND, TUNING_KIND, Environment, Workload
from infra.render.names import COMPONENT_LABEL, TEAM_LABEL
from infra.specs import gpus_held

PROG = "python -m infra.review"
MARKER = "<!-- kaito-gitops-plan -->"
NAME_LABEL = "app.kubernetes.io/name"
# Changes outside workloads/ that change what every environment deploys.
ALL_ENV_PATHS = ("infra/", "schemas/", "trainer/", "pyproject.toml", "Makefile", ".github/workflows/")
# GitHub rejects comments over 65,536 characters; the diff is cut first.
MAX_COMMENT = 60_000


# --- escaping: text from specs, file names, refs and stack files stays inert in the comment --------------


def md_code(text: Any) -> str:
    """Inline code no backtick, line break or table pipe in `text` can end early (GitHub renders no HTML
    or markdown inside it)."""
    text = escape(str(text)).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def md_fence(lines: list[str], info: str = "") -> list[str]:
    """A fenced block whose fence is longer than any backtick run inside, so no line can close it early."""
    body = [escape(line) for line in lines]
    longest = max((len(run) for line in body for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + info, *body, fence]


# --- which environments a change touches ---------------------------------------------------------------


def affected_environments(changed: list[str], known: list[str]) -> list[str]:
    """workloads/<env>/… plans that env; infrastructure, schema, trainer or pipeline changes plan all."""
    if any(path.startswith(ALL_ENV_PATHS) or Path(path).name.startswith("Pulumi.") for path in changed):
        return sorted(known)
    touched = {path.split("/")[1] for path in changed if path.startswith("workloads/") and path.count("/") >= 2}
    return sorted(touched & set(known))


def changed_files(base: str, repo: Path) -> list[str]:
    """Files changed on this branch since it left `base` (what the pull request shows)."""
    check_ref(base)
    # -z: names exactly as they are (no quoting, no splitting at spaces or newlines), NUL-separated
    out = subprocess.run(["git", "-C", str(repo), "diff", "--name-only", "-z", f"{base}...HEAD", "--"],
                         capture_output=True)
    if out.returncode != 0:
        problem = out.stderr.decode("utf-8", "replace").strip() or "unknown ref"
        raise RefError(f"cannot diff against {base!r}: {problem}")
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "-z", "--untracked-files=all"],
                            capture_output=True).stdout.decode("utf-8", "surrogateescape").split("\0")
    uncommitted, renamed_from = set(), False
    for entry in status:  # "XY path", and after a rename or copy one more entry: the old path (touched too)
        if renamed_from:
            uncommitted.add(entry)
            renamed_from = False
        elif entry:
            uncommitted.add(entry[3:])
            renamed_from = entry[0] in "RC"
    committed = out.stdout.decode("utf-8", "surrogateescape").split("\0")
    return sorted({p for p in committed if p} | uncommitted)


# --- what changes in one environment -------------------------------------------------------------------


@dataclass
class WorkloadChange:
    action: str  # added | changed | removed
    name: str
    kind: str  # TuningJob | InferenceDeployment (removed ones: as rendered, e.g. Workspace)
    team: str
    workload: Workload | None  # None when removed
    replaced: list[str] = field(default_factory=list)  # "Kind: field" that cannot change in place


@dataclass
class EnvReview:
    """Everything the comment says about one environment; `problems` set when its specs do not validate."""

    name: str
    base: str
    problems: list[str] = field(default_factory=list)
    env: Environment | None = None
    changes: list = field(default_factory=list)  # infra.diff.Change
    workloads: list[WorkloadChange] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    base_note: str = ""


def _owner(obj: dict[str, Any]) -> str | None:
    return obj["metadata"].get("labels", {}).get(NAME_LABEL)


def workload_changes(env: Environment, old: list[dict], new: list[dict], changes: list) -> list[WorkloadChange]:
    """Object changes grouped by the workload that owns them (the objects' app.kubernetes.io/name label)."""
    from infra.diff import object_id

    before = {object_id(o): o for o in old}
    after = {object_id(o): o for o in new}
    old_names = {n for n in map(_owner, old) if n}
    touched = {_owner(after.get(c.id) or before[c.id]) for c in changes} - {None}
    out = []
    for name in sorted(touched):
        current = env.by_name(name)
        replaced = [f"{c.id[1]}: {field_}" for c in changes if c.action == "replaced"
                    and _owner(after[c.id]) == name for field_ in c.replaced]
        if current is not None and current.retired:
            out.append(WorkloadChange("retired", name, current.kind, current.team, current))
        elif current is not None:
            action = "replaced" if replaced else "changed" if name in old_names else "added"
            out.append(WorkloadChange(action, name, current.kind, current.team, current, replaced))
        else:
            labels = next(o for o in old if _owner(o) == name)["metadata"]["labels"]
            kind = TUNING_KIND if labels.get(COMPONENT_LABEL) == "tuning" else INFERENCE_KIND
            out.append(WorkloadChange("removed", name, kind, labels.get(TEAM_LABEL, ""), None))
    return out


def review_environment(name: str, base: str, repo: Path | None = None, root: Path | None = None) -> EnvReview:
    """Validate `name`, render it and diff it against `base` (rendered at that ref with the current code)."""
    from infra.diagnostics import SpecError
    from infra.diff import diff_objects, environment_at_ref
    from infra.render import render_environment
    from infra.specs import REPO_ROOT, WORKLOADS_DIR, load_environment

    review = EnvReview(name, base)
    try:  # the base first, so a quota breach is reported on what the change adds or alters
        base_env = environment_at_ref(name, base, repo or REPO_ROOT)
    except SpecError as error:
        review.base_note = (f"The specs at {md_code(base)} do not validate ({len(error.diagnostics)} problem(s)); "
                            "everything is shown as added.")
        base_env = None
    try:
        review.env = load_environment(name, root or WORKLOADS_DIR, base=base_env)
    except SpecError as error:
        review.problems = [str(d) for d in sorted(set(error.diagnostics))]
        return review
    old = render_environment(base_env) if base_env is not None else []
    new = render_environment(review.env)
    review.changes = diff_objects(old, new)
    review.workloads = workload_changes(review.env, old, new, review.changes)
    review.warnings = quota_warnings(review.env) + retirement_warnings(review.env) + deadline_warnings(review.env)
    return review


def quota_warnings(env: Environment) -> list[str]:
    """Teams at the limit of a quota: the next workload they add will be refused."""
    out = []
    for team, quota in sorted(env.defaults.get("teams", {}).items()):
        mine = [w for w in env.workloads if w.team == team]
        used = {"maxGPUs": sum(map(gpus_held, mine)),
                "maxConcurrentTuningJobs": sum(w.kind == TUNING_KIND for w in mine)}
        for key, value in used.items():
            if key in quota and value >= quota[key]:
                out.append(f"team `{team}` is at its `{key}` quota ({value} of {quota[key]}): "
                           "adding to it here will be refused")
    return out


# --- markdown ------------------------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.2f}"


def _hours(value: float | None) -> str:
    return "unknown size" if value is None else f"{value:,.1f}"


def _price_note(price: pricing.Price | None, instance: str) -> str:
    if price is None:
        return f" (no price kept for {instance})"
    return f" ({price.region} price: none kept for {price.requested})" if price.fallback else ""


def cost_tables(env: Environment, names: set[str], region: str | None) -> list[str]:
    """Markdown tables of estimated cost for the named workloads."""
    lines: list[str] = []
    tuning = [w for w in env.workloads if w.kind == TUNING_KIND and w.name in names]
    inference = [w for w in env.workloads if w.kind == INFERENCE_KIND and w.name in names]
    if tuning:
        lines += ["", "**Tuning jobs** (estimated; per run)", "",
                  "| job | instance | GPUs | examples × epochs | GPU hours | cost pay-as-you-go | cost Spot "
                  "| after it ends |",
                  "|---|---|---|---|---|---|---|---|"]
        for w in tuning:
            e = pricing.estimate_tuning(w, region)
            size = "unknown size" if e.examples is None else f"{e.examples:,} × {e.epochs:g}"
            if e.hours is None:
                payg = f"{_money(e.price.regular if e.price else None)}/h"
                spot = f"{_money(e.price.spot if e.price else None)}/h"
            else:
                payg, spot = _money(e.cost("regular")), _money(e.cost("spot"))
            lines.append(f"| `{w.name}` | {e.instance_type}{_price_note(e.price, e.instance_type)} | {e.gpus} | "
                         f"{size} | {_hours(e.gpu_hours)} | {payg} | {spot} | {_after_job(w, e.price)} |")
    if inference:
        lines += ["", "**Inference deployments** (estimated; while running)", "",
                  "| deployment | instance × count | GPUs | per hour pay-as-you-go | per hour Spot |",
                  "|---|---|---|---|---|"]
        for w in inference:
            e = pricing.estimate_inference(w, region)
            lines.append(f"| `{w.name}` | {e.instance_type} × {e.count}{_price_note(e.price, e.instance_type)} | "
                         f"{e.gpus} | {_money(e.per_hour('regular'))} | {_money(e.per_hour('spot'))} |")
    return lines


def _after_job(w: Workload, price: pricing.Price | None) -> str:
    """What keeps billing once training is done: KAITO keeps a tuning Workspace's node until it is deleted."""
    if w.spec["engine"] == "bundled":
        return "pool scales to zero"
    return (f"node stays up, {_money(price.regular if price else None)}/h, until `retired: true` "
            "(the retire workflow's pull request)")


MAIN_ACTIONS = ("added", "changed", "removed")  # counted in the summary even when zero
ICONS = {"added": "➕", "changed": "✏️", "replaced": "🔁", "retired": "🏁", "removed": "➖"}
ACTION_NOTES = {
    "replaced": "deleted and created again: {fields} cannot change in place",
    "retired": "finished: its objects are deleted, its adapter image stays",
}


def environment_section(review: EnvReview, region: str | None = None, resources: list[str] | None = None,
                        warnings: list[str] | None = None, preview: str | None = None) -> list[str]:
    """The markdown for one environment."""
    lines = [f"### {md_code(review.name)}", ""]
    if review.problems:
        lines += [f"❌ **The specs do not validate** ({len(review.problems)} problem(s)); nothing here can deploy:",
                  ""] + md_fence(review.problems)
        return lines
    if review.base_note:
        lines += [f"> {review.base_note}", ""]
    counts = {a: sum(c.action == a for c in review.workloads) for a in ICONS}
    if review.workloads:
        lines += ["**Workloads**: " + ", ".join(f"{n} {a}" for a, n in counts.items() if n or a in MAIN_ACTIONS), "",
                  "| | workload | kind | team | note |", "|---|---|---|---|---|"]
        lines += [f"| {ICONS[c.action]} {c.action} | {md_code(c.name)} | {c.kind} | {c.team} | "
                  f"{ACTION_NOTES.get(c.action, '').format(fields=', '.join(f'`{f}`' for f in c.replaced))} |"
                  for c in review.workloads]
    else:
        lines.append("**Workloads**: no change.")
    costed = {c.name for c in review.workloads if c.action not in ("removed", "retired")}
    lines += cost_tables(review.env, costed, region)
    lines += resources or []
    all_warnings = (warnings or []) + review.warnings
    if all_warnings:
        lines += ["", "**Warnings**", ""] + [f"- ⚠️ {w}" for w in all_warnings]
    if review.changes:
        lines += ["", f"<details><summary>Rendered Kubernetes objects: {len(review.changes)} change(s)</summary>", ""]
        for change in review.changes:
            lines += [f"**{change.action}**: {md_code(change.title)}", ""] \
                + md_fence(change.diff.rstrip("\n").split("\n"), "diff") + [""]
        lines.append("</details>")
    if preview is not None:
        opened = " open" if preview.startswith(PREVIEW_FAILED) else ""
        lines += ["", f"<details{opened}><summary>pulumi preview</summary>", ""] \
            + md_fence(preview.rstrip("\n").split("\n")) + ["", "</details>"]
    return lines


def comment(sections: list[list[str]], base: str, envs: list[str], failed_previews: list[str] | None = None) -> str:
    """The whole comment: marker, heading, failed previews first, a section per environment, the estimate's source."""
    head = [MARKER, "## kaito-gitops plan", ""]
    if failed_previews:
        head += [f"❌ **`pulumi preview` failed for {', '.join(map(md_code, failed_previews))}**: the "
                 "`plan comment` check fails until it succeeds. The error is in that environment's section.", ""]
    if envs:
        head.append(f"Against {md_code(base)}; environments touched: " + ", ".join(map(md_code, envs)) + ".")
    else:
        head.append(f"Against {md_code(base)}: this change touches no environment (no workload, infrastructure, "
                    "schema, trainer or pipeline change), so nothing will deploy.")
    body = head + [line for section in sections for line in [""] + section]
    body += ["", "---", f"<sub>{pricing.source_note()} Merging deploys dev, then prod after approval.</sub>", ""]
    text = "\n".join(body)
    if len(text) > MAX_COMMENT:
        cut = text[:MAX_COMMENT - 200]
        text = cut + "\n```\n\n</details>\n\n… cut: the plan is longer than a comment can be; run " \
                     "`kaito-gitops diff` locally for the rest.\n"
    return text


def pool_warnings(plan) -> list[str]:
    """Bundled-engine jobs run on our GPU pools (KAITO provisions its own nodes): does each fit one?"""
    out = []
    pools = {p.name: p for p in plan.pools}
    for w in plan.environment.workloads:
        if w.kind != TUNING_KIND or w.spec.get("engine") != "bundled":
            continue
        pool = pools.get(w.spec["placement"].get("nodePool"))
        instance = w.spec["placement"]["instanceType"]
        if pool is None:
            out.append(f"`{w.name}` runs on node pool `{w.spec['placement'].get('nodePool')}`, which this stack does "
                       f"not create (pools: {', '.join(sorted(pools)) or 'none'}); the Job would stay pending.")
        elif pool.vm_size != instance:
            out.append(f"`{w.name}` asks for {instance} but pool `{pool.name}` has {pool.vm_size} nodes.")
        elif pool.max_nodes < 1:
            out.append(f"`{w.name}`: pool `{pool.name}` may not scale above 0 nodes.")
    return out


def resource_lines(plan) -> list[str]:
    """The Azure side of the plan: what the stack creates, by type."""
    counts: dict[str, int] = {}
    for r in plan.resources:
        if r.type.startswith("azure-native:"):
            short = r.type.split(":")[-1]
            counts[short] = counts.get(short, 0) + 1
    pools = ", ".join(f"`{p.name}` {p.vm_size} {p.min_nodes}-{p.max_nodes} nodes ({p.max_gpus} GPUs max, "
                      f"{'Spot' if p.spot else 'regular'})" for p in plan.pools)
    return ["", f"**Azure resources** ({plan.config.location}, from `kaito-gitops plan --env {plan.env}`): "
            + ", ".join(f"{n} {t}" for t, n in sorted(counts.items())), "", f"GPU pools: {pools}."] \
        + gpu_node_lines(plan)


def gpu_node_lines(plan) -> list[str]:
    """Every GPU node the environment has or will have, when it bills, and what stays up regardless."""
    rows = plan.gpu_nodes
    standing = [n.standing_per_hour() for n in rows]
    total = None if None in standing else sum(standing)
    lines = ["", f"**GPU nodes** ({plan.kaito}); standing cost after this change: {_money(total)}/h", "",
             "| nodes of | size | nodes | bills | standing cost |", "|---|---|---|---|---|"]
    for n, cost in zip(rows, standing):
        size = f"{n.instance_type}{' Spot' if n.spot else ''}{_price_note(n.price, n.instance_type)}"
        lines.append(f"| {n.owner} | {size} | {n.nodes} | {n.billing} | {_money(cost)}/h |")
    return lines


def retirement_warnings(env: Environment) -> list[str]:
    """KAITO tuning Workspaces keep their GPU node until deleted: say who retires the finished ones."""
    return [f"`{w.name}` (engine kaito) keeps a {w.spec['placement']['instanceType']} node after its job ends, "
            "until its spec is retired: the retire workflow opens that pull request within 15 minutes of KAITO "
            "reporting the end, set to merge itself once checks and reviews pass (it needs the retire GitHub App and "
            "identity, docs/gitops.md)"
            for w in env.workloads
            if w.kind == TUNING_KIND and w.spec["engine"] == "kaito" and not w.retired
            and env.defaults["kaito"]["nodeProvisioning"] == "auto"]


def deadline_warnings(env: Environment) -> list[str]:
    """Bundled jobs whose estimated run is longer than the Job's deadline (maxTrainingHours): Kubernetes would
    stop them before they finish."""
    limit = env.defaults["maxTrainingHours"]
    out = []
    for w in env.workloads:
        if w.kind != TUNING_KIND or w.spec["engine"] != "bundled" or w.retired:
            continue
        hours = pricing.estimate_tuning(w, None).hours
        if hours is not None and hours > limit:
            out.append(f"`{w.name}` (engine bundled) is estimated at {hours:.0f} h, longer than maxTrainingHours "
                       f"({limit} h, _defaults.yaml): its Job would be stopped at the deadline; raise "
                       "maxTrainingHours, or train fewer epochs or examples per job")
    return out


def capacity_warnings(plan) -> list[str]:
    """Bundled jobs (and, on byo nodes, Workspaces) that together, or alone, need more GPUs than their pool
    can ever have."""
    out = []
    env = plan.environment
    byo_pool = env.defaults["nodePool"] if env.defaults["kaito"]["nodeProvisioning"] == "byo" else None
    for pool in plan.pools:
        jobs = [w for w in env.workloads if w.kind == TUNING_KIND and w.spec.get("engine") == "bundled"
                and w.spec["placement"].get("nodePool") == pool.name]
        if pool.name == byo_pool:
            jobs += [w for w in env.workloads if w.kind != TUNING_KIND]
        need = sum(gpus_held(w) for w in jobs)
        if need > pool.max_gpus:
            what = "bundled jobs" + (" and KAITO Workspaces" if pool.name == byo_pool else "")
            out.append(f"{what} on pool `{pool.name}` need {need} GPUs at once but it scales to "
                       f"{pool.max_gpus} ({pool.max_nodes} × {pool.vm_size}); "
                       f"{', '.join(f'`{w.name}`' for w in jobs)} will queue")
    return out


def stack_config_lines(env: str, base: str, repo: Path | None = None) -> list[str]:
    """What changes in `Pulumi.<env>.yaml` (location, pools, registry…) against `base`: the Azure-side change."""
    from infra.specs import REPO_ROOT

    repo = repo or REPO_ROOT
    name = f"Pulumi.{env}.yaml"
    current_file = repo / name
    current = _stack_config(current_file.read_bytes()) if current_file.is_file() else {}
    shown = subprocess.run(["git", "-C", str(repo), "show", f"{base}:{name}"], capture_output=True)
    if shown.returncode != 0:
        return ["", f"**Stack config**: `{name}` is new against {md_code(base)}: every Azure resource is created."]
    old = _stack_config(shown.stdout)
    if old is None or current is None:
        return ["", f"**Stack config**: `{name}` at {md_code(base)} is not a valid stack file; "
                "Azure resources change only as shown by the preview."]
    keys = sorted(k for k in old.keys() | current.keys() if old.get(k) != current.get(k))
    if not keys:
        return ["", f"**Stack config**: no change in `{name}`; Azure resources change only as shown by the preview."]
    lines = ["", f"**Stack config changes** in `{name}` (pools, cluster, registry):", "",
             "| key | before | after |", "|---|---|---|"]
    for key in keys:
        lines.append(f"| {md_code(key)} | {_short(old.get(key))} | {_short(current.get(key))} |")
    return lines


def _stack_config(raw: bytes) -> dict[str, Any] | None:
    """A stack file's `config` mapping; None if the file is not YAML, or not shaped like a stack file.

    Read with the spec loader's limits: a pull request can change the stack file, and nested aliases
    would otherwise expand when the values are compared and printed."""
    from trainer import safe_yaml

    try:
        if len(raw) > safe_yaml.MAX_BYTES:
            return None
        data = safe_yaml.load(raw.decode("utf-8")) or {}
    except (UnicodeDecodeError, safe_yaml.Refused):
        return None
    config = data.get("config") or {} if isinstance(data, dict) else None
    return config if isinstance(config, dict) and all(isinstance(k, str) for k in config) else None


def _short(value: Any) -> str:
    if value is None:
        return "(unset)"
    text = json.dumps(value, sort_keys=True)
    return md_code(text if len(text) <= 120 else text[:117] + "...")


def format_markdown(plans: list, base: str, previews: Path | None = None, repo: Path | None = None) -> str:
    """The pull-request comment for plans built by infra.plan.build_plan, compared with `base`."""
    sections = [plan_section(plan, base, previews, repo) for plan in plans]
    return comment(sections, base, [plan.env for plan in plans])


def plan_section(plan, base: str, previews: Path | None = None, repo: Path | None = None) -> list[str]:
    return environment_section(review_environment(plan.env, base, repo=repo), region=plan.config.location,
                                resources=resource_lines(plan) + stack_config_lines(plan.env, base, repo),
                                warnings=pool_warnings(plan) + capacity_warnings(plan),
                                preview=_previews(previews, plan.env))


def env_section(env: str, base: str, previews: Path | None = None) -> list[str]:
    """One environment's section, also when its stack config or specs do not load (the comment says why)."""
    from infra.config import ConfigError
    from infra.diagnostics import SpecError
    from infra.plan import build_plan

    try:
        return plan_section(build_plan(env), base, previews)
    except SpecError:  # review_environment reports every spec problem
        return environment_section(review_environment(env, base), preview=_previews(previews, env))
    except ConfigError as error:
        return [f"### {md_code(env)}", "", f"❌ **{md_code(f'Pulumi.{env}.yaml')} is invalid**; nothing here can deploy:",
                ""] + md_fence([str(p) for p in error.problems])


# --- command line --------------------------------------------------------------------------------------


PREVIEW_FAILED = "pulumi preview did not succeed"


def preview_status(folder: Path, env: str) -> str:
    """The preview step's outcome the workflow wrote (success, failure, cancelled, skipped), or `missing`."""
    outcome = folder / f"{env}.outcome"
    return outcome.read_text(errors="replace").strip() if outcome.is_file() else "missing"


def _previews(folder: Path | None, env: str) -> str | None:
    if folder is None:
        return None
    text = folder / f"{env}.txt"
    status = preview_status(folder, env)
    if status != "success":
        return f"{PREVIEW_FAILED} ({status}); see the workflow run.\n" + (_read(text) or "")
    return _read(text)


def _read(path: Path) -> str | None:
    """A preview's output as text, whatever bytes the tool wrote."""
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    from infra.specs import REPO_ROOT, WORKLOADS_DIR, environments

    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    envs_cmd = sub.add_parser("envs", help="print the environments the change touches, as a JSON list")
    envs_cmd.add_argument("--base", required=True, help="git ref the pull request merges into, e.g. origin/main")
    out_cmd = sub.add_parser("comment", help="write the plan comment (markdown)")
    out_cmd.add_argument("--base", required=True, help="git ref the pull request merges into, e.g. origin/main")
    out_cmd.add_argument("--env", action="append", help="environment (repeatable; default: those the change touches)")
    out_cmd.add_argument("--previews", type=Path, help="folder with <env>.txt / <env>.outcome from pulumi preview")
    out_cmd.add_argument("--out", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    return guarded(PROG, lambda: _run(args, environments(WORKLOADS_DIR), REPO_ROOT))


def _run(args: argparse.Namespace, known: list[str], repo_root: Path) -> int:
    try:
        touched = affected_environments(changed_files(args.base, repo_root), known)
    except RefError as exc:
        print(f"{PROG}: {escape(str(exc))}", file=sys.stderr)
        return 2
    if args.command == "envs":
        print(json.dumps(touched))
        return 0
    unknown = sorted(set(args.env or []) - set(known))
    if unknown:
        print(f"{PROG}: unknown environment(s) {escape(', '.join(unknown))}; "
              f"environments: {escape(', '.join(known))}",
              file=sys.stderr)
        return 2
    envs = args.env or touched
    sections = [env_section(e, args.base, args.previews) for e in envs]
    failed = [e for e in envs if args.previews and preview_status(args.previews, e) != "success"]
    text = comment(sections, args.base, envs, failed)
    if args.out:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as error:
            print(f"{PROG}: --out {escape(str(args.out))}: cannot write: {escape(error.strerror or str(error))}",
                  file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
