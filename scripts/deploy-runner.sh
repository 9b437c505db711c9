#!/usr/bin/env bash
# The self-hosted GitHub runner that every job talking to an environment's API server runs on (prod:
# `runs-on: [self-hosted, kaito-gitops-prod]`). It is a small Ubuntu VM without a public IP in the stack's
# runner subnet (`runnerSubnetCidr`), whose outbound traffic leaves through the NAT gateway IP that the
# program adds to the API server's authorized ranges. Run it once after the stack's first `pulumi up`, as
# someone who may create VMs in the bootstrap resource group and register runners on the repository
# (`gh auth login`). Safe to run again: an existing VM is reused and an already registered runner is kept.
#
# Usage: scripts/deploy-runner.sh <env> --repo <owner/name> [--group <resource group, default
#        kaito-gitops-bootstrap>] [--size <VM size, default Standard_D2s_v5>]
set -euo pipefail

usage() {
  echo "usage: scripts/deploy-runner.sh <env> --repo <owner/name> [--group <resource group>] [--size <VM size>]" >&2
  exit 2
}

ENVIRONMENT=${1:-}
[[ -n $ENVIRONMENT && $ENVIRONMENT != -* ]] || usage
shift
REPO="" GROUP=kaito-gitops-bootstrap SIZE=Standard_D2s_v5
while [[ $# -gt 0 ]]; do
  case $1 in
    --repo) REPO=${2:-}; shift 2 ;;
    --group) GROUP=${2:-}; shift 2 ;;
    --size) SIZE=${2:-}; shift 2 ;;
    *) usage ;;
  esac
done
[[ $REPO =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || { echo "deploy-runner: --repo must be <owner>/<name>" >&2; usage; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK_FILE="$ROOT/Pulumi.$ENVIRONMENT.yaml"
[[ -f $STACK_FILE ]] || { echo "deploy-runner: no stack file $STACK_FILE" >&2; exit 2; }
LOCATION=$(sed -n 's/^ *kaito-gitops:location: *//p' "$STACK_FILE")
LABEL="kaito-gitops-$ENVIRONMENT"
VM="$LABEL-runner"

# The subnet the program created; the stack has none without runnerSubnetCidr.
SUBNET=$(pulumi stack output runner_subnet_id --stack "$ENVIRONMENT" 2>/dev/null) || SUBNET=""
if [[ -z $SUBNET ]]; then
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

# A registration token is valid for an hour (GitHub REST API, "Create a registration token for a repository").
TOKEN=$(gh api --method POST "repos/$REPO/actions/runners/registration-token" --jq .token)
az vm run-command invoke --resource-group "$GROUP" --name "$VM" --command-id RunShellScript \
  --scripts "@$ROOT/scripts/runner-setup.sh" --parameters "$REPO" "$TOKEN" "$LABEL" --query 'value[0].message' -o tsv
echo "Runner $VM registered with the label $LABEL: check Settings > Actions > Runners on $REPO."
