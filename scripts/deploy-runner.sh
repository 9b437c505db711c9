#!/usr/bin/env bash
# One of an environment's two self-hosted GitHub runners, each a small Ubuntu VM without a public IP in the
# stack's runner subnet (`runnerSubnetCidr`), whose outbound traffic leaves through the NAT gateway IP that
# the program adds to the API server's authorized ranges:
#   --role deploy     label kaito-gitops-<env>-deploy: only deploy.yml's `deploy-prod` job, which holds the
#                     deploy identity (Contributor and RBAC Administrator), runs here;
#   --role read-only  label kaito-gitops-<env>: pull request previews, the drift check and retire, none of
#                     which may deploy. Code from a pull request runs on this one, never on the deploy VM.
# With --runner-group the runner registers on the organization, in that runner group, instead of on the
# repository: restrict the group to deploy.yml on main (docs/infrastructure.md, "Reaching the API server").
# Run it after the stack's first `pulumi up`, as someone who may create VMs in the bootstrap resource
# group and register runners (`gh auth login`). Safe to run again: an existing VM is reused and an already
# registered runner is kept. It exits 0 only once GitHub lists the runner as online.
#
# Usage: scripts/deploy-runner.sh <env> --role deploy|read-only --repo <owner/name> [--runner-group <name>]
#        [--group <resource group, default kaito-gitops-bootstrap>] [--size <VM size, default Standard_D2s_v5>]
set -euo pipefail

usage() {
  echo "usage: scripts/deploy-runner.sh <env> --role deploy|read-only --repo <owner/name> [--runner-group <name>]" \
    "[--group <resource group>] [--size <VM size>]" >&2
  exit 2
}

ENVIRONMENT=${1:-}
[[ -n $ENVIRONMENT && $ENVIRONMENT != -* ]] || usage
shift
REPO="" ROLE="" RUNNER_GROUP="" GROUP=kaito-gitops-bootstrap SIZE=Standard_D2s_v5
while [[ $# -gt 0 ]]; do
  case $1 in
    --repo) REPO=${2:-}; shift 2 ;;
    --role) ROLE=${2:-}; shift 2 ;;
    --runner-group) RUNNER_GROUP=${2:-}; shift 2 ;;
    --group) GROUP=${2:-}; shift 2 ;;
    --size) SIZE=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
[[ $REPO =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || { echo "deploy-runner: --repo must be <owner>/<name>" >&2; usage; }
case $ROLE in
  deploy) LABEL="kaito-gitops-$ENVIRONMENT-deploy" ;;
  read-only) LABEL="kaito-gitops-$ENVIRONMENT" ;;
  *) echo "deploy-runner: --role must be deploy (deploy.yml's deploy job) or read-only (every other job)" >&2; usage ;;
esac
VM="$LABEL-runner"

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK_FILE="$ROOT/Pulumi.$ENVIRONMENT.yaml"
[[ -f $STACK_FILE ]] || { echo "deploy-runner: no stack file $STACK_FILE" >&2; exit 2; }
LOCATION=$(sed -n 's/^ *kaito-gitops:location: *//p' "$STACK_FILE")

# The subnet the program created; the stack has none without runnerSubnetCidr. pulumi's own error is shown.
if ! SUBNET=$(pulumi stack output runner_subnet_id --stack "$ENVIRONMENT" --cwd "$ROOT") || [[ -z $SUBNET ]]; then
  echo "deploy-runner: stack $ENVIRONMENT has no output runner_subnet_id: set kaito-gitops:runnerSubnetCidr in" \
    "Pulumi.$ENVIRONMENT.yaml and run pulumi up first (docs/infrastructure.md, \"Reaching the API server\")" >&2
  exit 1
fi

if az vm show --resource-group "$GROUP" --name "$VM" --output none 2>/dev/null; then
  echo "VM $VM exists"
else
  # No public IP and no NSG of its own: nothing reaches it from outside; it only calls out (GitHub, Azure).
  # Its NIC and disk go with it, so `az vm delete` frees the subnet for `pulumi destroy`.
  az vm create --resource-group "$GROUP" --name "$VM" --location "$LOCATION" \
    --image Canonical:ubuntu-24_04-lts:server:latest --size "$SIZE" --subnet "$SUBNET" --public-ip-address "" \
    --nsg "" --nic-delete-option Delete --os-disk-delete-option Delete --admin-username azureuser \
    --generate-ssh-keys --output none
fi

# An organization's runner group holds only organization runners (GitHub docs, "Managing access to
# self-hosted runners using groups").
if [[ -n $RUNNER_GROUP ]]; then
  API="orgs/${REPO%%/*}/actions/runners" URL="https://github.com/${REPO%%/*}"
else
  API="repos/$REPO/actions/runners" URL="https://github.com/$REPO"
fi
# Runner status from GitHub: online, offline, or "" when no runner has that name.
runner_status() {
  gh api --paginate "$API" --jq ".runners[] | select(.name == \"$VM\") | .status"
}
# A registered runner is left alone: no new registration token is made, so none can show up on a VM where
# jobs already run (a token registers any runner, under any label, for an hour).
STATUS=$(runner_status)
if [[ $STATUS == online ]]; then
  echo "Runner $VM is already registered and online with the label $LABEL."
  exit 0
elif [[ -n $STATUS ]]; then
  echo "deploy-runner: runner $VM is registered but $STATUS: look at the VM, or remove the runner on GitHub" \
    "(Settings > Actions > Runners) and run this again to register it anew" >&2
  exit 1
fi

# A registration token is valid for an hour (GitHub REST API, "Create a registration token"). az reads an
# argument written @<file> from that file (azure-cli azure/cli/core/commands/__init__.py,
# _expand_file_prefixed_files), so the token is in no command line on this machine.
TOKEN_FILE=$(mktemp)
trap 'rm -f "$TOKEN_FILE"' EXIT
gh api --method POST "$API/registration-token" --jq .token > "$TOKEN_FILE"
PARAMETERS=("$URL" "@$TOKEN_FILE" "$LABEL" "$VM")
[[ -z $RUNNER_GROUP ]] || PARAMETERS+=("$RUNNER_GROUP")
# The Linux RunCommand extension reports success even when the script failed (Azure/azure-cli#14425): its
# output is shown, and only GitHub listing the runner online counts as success.
az vm run-command invoke --resource-group "$GROUP" --name "$VM" --command-id RunShellScript \
  --scripts "@$ROOT/scripts/runner-setup.sh" --parameters "${PARAMETERS[@]}" --query 'value[0].message' -o tsv

# 30 looks 10 s apart by default; the variables shorten the wait where nothing real is waited for.
ATTEMPTS=${DEPLOY_RUNNER_ATTEMPTS:-30} INTERVAL=${DEPLOY_RUNNER_INTERVAL:-10}
for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
  STATUS=$(runner_status) || STATUS=""
  if [[ $STATUS == online ]]; then
    echo "Runner $VM is online with the label $LABEL."
    exit 0
  fi
  sleep "$INTERVAL"
done
echo "deploy-runner: runner $VM is not online on $URL after $((ATTEMPTS * INTERVAL)) s (status: ${STATUS:-not registered});" \
  "the setup output above says why" >&2
exit 1
