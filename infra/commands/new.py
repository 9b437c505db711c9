"""`kaito-gitops new tuning|inference --team T --name N [--env dev] [--preset P]`: a valid starting spec.

Writes `workloads/<env>/<team>/<name>.yaml` with the schema line editors use for
completion, so a new user starts from something that already validates and
only has to point it at their data.
"""

from __future__ import annotations

import argparse
import os
import sys

DEFAULT_PRESET = "phi-3-mini-128k-instruct"
# A public chat-format data set (KAITO's fine-tuning walk-through) so the spec validates as written.
EXAMPLE_DATA = ("https://huggingface.co/datasets/philschmid/dolly-15k-oai-style/resolve/main/data/"
                "train-00000-of-00001-54e3756291ca09c6.parquet")

TUNING = """\
# yaml-language-server: $schema={schema}
# Written by `kaito-gitops new tuning`. Point data.train at your data set, then:
#   kaito-gitops validate {path}   and   kaito-gitops plan --env {env} --format markdown
apiVersion: kaito-gitops.dev/v1alpha1
kind: TuningJob
metadata:
  name: {name}
  team: {team}
spec:
  baseModel: {preset}
  method: qlora
  data:
    train:
      urls:
        - {data}    # replace with your data (chat "messages" format)
      examples: 15011    # approximate number of examples; only used for the cost estimate
  output:
    image:
      repository: adapters/{name}
      tag: v1
  hyperparameters:
    epochs: 1
"""

INFERENCE = """\
# yaml-language-server: $schema={schema}
# Written by `kaito-gitops new inference`. To serve a tuned adapter, add:
#   adapters:
#     - tuningJob: <a TuningJob in this environment>
# then run: kaito-gitops validate {path}
apiVersion: kaito-gitops.dev/v1alpha1
kind: InferenceDeployment
metadata:
  name: {name}
  team: {team}
spec:
  preset: {preset}
  runtime: vllm  # each adapter is its own model, chosen per request by name; transformers merges them
  replicas: 1
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser("new", help="write a starting TuningJob or InferenceDeployment spec")
    parser.add_argument("kind", choices=("tuning", "inference"), help="what to create")
    parser.add_argument("--team", required=True, help="your team (a team listed in the environment's _defaults.yaml)")
    parser.add_argument("--name", required=True, help="workload name: a DNS-1123 label, unique in the environment")
    parser.add_argument("--env", default="dev", help="environment (a folder under workloads/; default dev)")
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"KAITO preset (default {DEFAULT_PRESET})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from infra import catalog
    from infra.diagnostics import SpecError, escape
    from infra.specs import DNS_LABEL, SCHEMA_FILES, WORKLOADS_DIR, display_path, environments, load_environment
    from infra.model import INFERENCE_KIND, TUNING_KIND

    def refuse(message: str, hint: str) -> int:
        print(f"kaito-gitops new: {message} ({hint})", file=sys.stderr)
        return 1

    if args.env not in environments(WORKLOADS_DIR):
        print(f"kaito-gitops new: unknown environment {args.env!r}; environments: "
              f"{escape(', '.join(environments(WORKLOADS_DIR)))}", file=sys.stderr)
        return 2
    for field, value in (("--name", args.name), ("--team", args.team)):
        if len(value) > 63 or not DNS_LABEL.fullmatch(value):
            return refuse(f"{field} {value!r} is not a DNS-1123 label",
                          "lower-case letters, digits and '-', starting and ending with a letter or digit, "
                          "at most 63 characters")
    kind = TUNING_KIND if args.kind == "tuning" else INFERENCE_KIND
    preset = catalog.preset(args.preset)
    if preset is None or (kind == TUNING_KIND and not preset.tuning):
        known = catalog.tuning_presets() if kind == TUNING_KIND else sorted(catalog.presets())
        return refuse(f"--preset {args.preset!r} is not a KAITO preset{' that supports tuning' if preset else ''}",
                      "use one of: " + ", ".join(known))

    path = WORKLOADS_DIR / args.env / args.team / f"{args.name}.yaml"
    if path.exists():
        return refuse(f"{display_path(path)} already exists", "pick another --name, or edit that file")
    try:
        env = load_environment(args.env, WORKLOADS_DIR)
    except SpecError as error:
        return refuse(f"the {args.env} environment does not validate ({len(error.diagnostics)} problem(s))",
                      f"fix them first: kaito-gitops validate workloads/{args.env}")
    teams = env.defaults.get("teams", {})
    if args.team not in teams:
        return refuse(f"team {args.team!r} may not deploy to {args.env}",
                      "teams in _defaults.yaml: " + (", ".join(sorted(teams)) or "none")
                      + "; ask the platform team to add yours")
    taken = env.by_name(args.name)
    if taken is not None:
        return refuse(f"the name {args.name!r} is already used by {display_path(taken.path)}",
                      "names are unique per environment, across kinds")

    relative = path.relative_to(WORKLOADS_DIR)
    # schemas/ sits next to workloads/: one "../" per level from the file's folder up to the repository root
    schema = "../" * len(relative.parts) + "schemas/" + SCHEMA_FILES[kind]
    template = TUNING if kind == TUNING_KIND else INFERENCE
    text = template.format(schema=schema, name=args.name, team=args.team, preset=args.preset, env=args.env,
                           data=EXAMPLE_DATA, path=f"workloads/{relative.as_posix()}")
    new_folder = not path.parent.exists()
    try:
        path.parent.mkdir(exist_ok=True)
        if path.parent.is_symlink() or path.parent.resolve() != WORKLOADS_DIR.resolve() / args.env / args.team:
            return refuse(f"{display_path(path.parent)} leads out of workloads/", "remove the link")
        # O_EXCL and O_NOFOLLOW: never overwrite, never write through a link, even one made in a race
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as error:
        return refuse(f"cannot write {display_path(path)} ({error.strerror or error})",
                      "pick another --name, or check the folder")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    try:  # the environment as a whole decides, e.g. the team's quotas
        load_environment(args.env, WORKLOADS_DIR)
    except SpecError as error:
        path.unlink()
        if new_folder:
            path.parent.rmdir()
        for problem in sorted(set(error.diagnostics)):
            print(problem, file=sys.stderr)
        return refuse(f"not written: {display_path(path)} would not validate", "see the problems above")
    print(f"wrote {display_path(path)}")
    return 0
