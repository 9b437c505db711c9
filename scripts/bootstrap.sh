#!/usr/bin/env bash
# What must exist before the first `pulumi up` of one environment, created with the Azure CLI and safe to
# run again (every step looks before it creates):
#   - the state backend: a storage account (Entra ID auth only, versioning, soft delete) with one container
#     per environment, `pulumi-<env>`;
#   - the secrets key: the Key Vault and RSA key named by `secretsprovider` in Pulumi.<env>.yaml;
#   - the identities GitHub Actions logs in as, with federated credentials for this repository:
#     `id-kaito-gitops-<env>-deploy` (subject repo:<repo>:environment:<env>) and the shared, read-only
#     `id-kaito-gitops-preview` (subjects repo:<repo>:pull_request and repo:<repo>:ref:refs/heads/main);
#   - their rights on state and key, and on Azure: deploy: Contributor and Role Based Access Control
#     Administrator on the subscription (with --narrow, after the stack's first `up`: on the stack's
#     resource group only); preview: Reader on the subscription;
#   - the stack, `pulumi stack init <env>`, which writes `encryptedkey` into Pulumi.<env>.yaml: commit it.
# It prints the GPU quota of the region and the GitHub variables to set. See docs/infrastructure.md.
#
# Usage: scripts/bootstrap.sh <env> --repo <owner/name> --state-account <storage account name>
#        [--group <resource group, default kaito-gitops-bootstrap>] [--narrow]
# --narrow, after the stack's first `up`: the deploy identity's rights move to the stack's resource group.
set -euo pipefail

usage() {
  echo "usage: scripts/bootstrap.sh <env> --repo <owner/name> --state-account <name> [--group <resource group>] [--narrow]" >&2
  exit 2
}

ENVIRONMENT=${1:-}
[[ -n $ENVIRONMENT && $ENVIRONMENT != -* ]] || usage
shift
REPO="" STATE_ACCOUNT="" GROUP=kaito-gitops-bootstrap NARROW=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --repo) REPO=${2:-}; shift 2 ;;
    --state-account) STATE_ACCOUNT=${2:-}; shift 2 ;;
    --group) GROUP=${2:-}; shift 2 ;;
    --narrow) NARROW=1; shift ;;
    *) usage ;;
  esac
done
[[ $REPO =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || { echo "bootstrap: --repo must be <owner>/<name>" >&2; usage; }
[[ $STATE_ACCOUNT =~ ^[a-z0-9]{3,24}$ ]] || { echo "bootstrap: --state-account: 3-24 lower-case letters and digits" >&2; usage; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STACK_FILE="$ROOT/Pulumi.$ENVIRONMENT.yaml"
[[ -f $STACK_FILE ]] || { echo "bootstrap: no stack file $STACK_FILE" >&2; exit 2; }

# The one secrets provider of this environment, as the stack file names it.
SECRETS_PROVIDER=$(sed -n 's/^secretsprovider: *//p' "$STACK_FILE")
if [[ ! $SECRETS_PROVIDER =~ ^azurekeyvault://([a-z0-9-]+)\.vault\.azure\.net/keys/([A-Za-z0-9-]+)$ ]]; then
  echo "bootstrap: $STACK_FILE: secretsprovider must be azurekeyvault://<vault>.vault.azure.net/keys/<key>" >&2
  exit 2
fi
VAULT=${BASH_REMATCH[1]} KEY=${BASH_REMATCH[2]}
LOCATION=$(sed -n 's/^ *kaito-gitops:location: *//p' "$STACK_FILE")
CONTAINER="pulumi-$ENVIRONMENT"
ISSUER=https://token.actions.githubusercontent.com

step() { printf '\n== %s\n' "$*"; }

# Creates a role assignment unless the same one exists (az reports an existing one as an error).
assign() {
  local principal=$1 type=$2 role=$3 scope=$4
  if [[ -z $(az role assignment list --assignee "$principal" --role "$role" --scope "$scope" --query '[0].id' -o tsv) ]]; then
    az role assignment create --assignee-object-id "$principal" --assignee-principal-type "$type" \
      --role "$role" --scope "$scope" -o none
  fi
  echo "  $role -> $principal on ${scope##*/providers/}"
}

# Removes a role assignment where one exists.
unassign() {
  local principal=$1 role=$2 scope=$3
  if [[ -n $(az role assignment list --assignee "$principal" --role "$role" --scope "$scope" --query '[0].id' -o tsv) ]]; then
    az role assignment delete --assignee "$principal" --role "$role" --scope "$scope"
    echo "  $role -> $principal removed from ${scope}"
  fi
}

# Creates a user-assigned identity (PUT: idempotent) and prints its principal ID.
identity() {
  az identity create --name "$1" --resource-group "$GROUP" --location "$LOCATION" --query principalId -o tsv
}

# Adds a GitHub federated credential to an identity unless one with that name exists.
federate() {
  local identity=$1 name=$2 subject=$3
  if ! az identity federated-credential show --name "$name" --identity-name "$identity" \
      --resource-group "$GROUP" -o none 2>/dev/null; then
    az identity federated-credential create --name "$name" --identity-name "$identity" --resource-group "$GROUP" \
      --issuer "$ISSUER" --subject "$subject" --audiences api://AzureADTokenExchange -o none
  fi
  echo "  $identity trusts $subject"
}

SUBSCRIPTION=$(az account show --query id -o tsv)
TENANT=$(az account show --query tenantId -o tsv)
ME=$(az ad signed-in-user show --query id -o tsv)

step "GPU quota in $LOCATION (request more in the portal: Quotas > Compute, if a limit is below what the pools need)"
az vm list-usage --location "$LOCATION" \
  --query "[?name.value=='standardNCADSA100v4Family' || name.value=='lowPriorityCores' || name.value=='cores'].{quota:localName, used:currentValue, limit:limit}" \
  -o table

step "resource group $GROUP"
az group create --name "$GROUP" --location "$LOCATION" -o none

step "state: storage account $STATE_ACCOUNT, container $CONTAINER"
if ! az storage account show --name "$STATE_ACCOUNT" --resource-group "$GROUP" -o none 2>/dev/null; then
  az storage account create --name "$STATE_ACCOUNT" --resource-group "$GROUP" --location "$LOCATION" \
    --sku Standard_ZRS --kind StorageV2 --min-tls-version TLS1_2 --allow-blob-public-access false \
    --allow-shared-key-access false -o none
fi
az storage account blob-service-properties update --account-name "$STATE_ACCOUNT" --resource-group "$GROUP" \
  --enable-versioning true --enable-delete-retention true --delete-retention-days 30 -o none
if [[ $(az storage container-rm exists --storage-account "$STATE_ACCOUNT" --name "$CONTAINER" --query exists -o tsv) != true ]]; then
  az storage container-rm create --storage-account "$STATE_ACCOUNT" --name "$CONTAINER" -o none
fi
STATE_SCOPE="$(az storage account show --name "$STATE_ACCOUNT" --resource-group "$GROUP" --query id -o tsv)/blobServices/default/containers/$CONTAINER"

step "secrets: Key Vault $VAULT, key $KEY"
if ! az keyvault show --name "$VAULT" -o none 2>/dev/null; then
  az keyvault create --name "$VAULT" --resource-group "$GROUP" --location "$LOCATION" \
    --enable-rbac-authorization true --enable-purge-protection true -o none
fi
VAULT_ID=$(az keyvault show --name "$VAULT" --query id -o tsv)
assign "$ME" User "Key Vault Crypto Officer" "$VAULT_ID"
assign "$ME" User "Storage Blob Data Contributor" "$STATE_SCOPE"
if ! az keyvault key show --vault-name "$VAULT" --name "$KEY" -o none 2>/dev/null; then
  # A new role assignment can take minutes to apply.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    az keyvault key create --vault-name "$VAULT" --name "$KEY" --kty RSA --size 3072 --ops encrypt decrypt -o none && break
    [[ $attempt == 10 ]] && exit 1
    echo "  waiting for the Key Vault role assignment to apply ($attempt)"; sleep 30
  done
fi
KEY_SCOPE="$VAULT_ID/keys/$KEY"

step "identities and GitHub federated credentials"
DEPLOY="id-kaito-gitops-$ENVIRONMENT-deploy"
PREVIEW="id-kaito-gitops-preview"
DEPLOY_PRINCIPAL=$(identity "$DEPLOY")
PREVIEW_PRINCIPAL=$(identity "$PREVIEW")
federate "$DEPLOY" "github-environment-$ENVIRONMENT" "repo:$REPO:environment:$ENVIRONMENT"
federate "$PREVIEW" github-pull-request "repo:$REPO:pull_request"
federate "$PREVIEW" github-main "repo:$REPO:ref:refs/heads/main"

step "stack $ENVIRONMENT"
BACKEND="azblob://$CONTAINER?storage_account=$STATE_ACCOUNT"
STACK_GROUP=""
if command -v pulumi >/dev/null; then
  pulumi login "$BACKEND"
  if [[ $NARROW == 1 ]]; then
    STACK_GROUP=$(pulumi stack output resource_group_name --stack "$ENVIRONMENT" --cwd "$ROOT" 2>/dev/null) || STACK_GROUP=""
    [[ -n $STACK_GROUP ]] || { echo "bootstrap: --narrow: stack $ENVIRONMENT has no resource_group_name output yet; run its first pulumi up" >&2; exit 1; }
  fi
  if ! pulumi stack select "$ENVIRONMENT" --cwd "$ROOT" 2>/dev/null; then
    pulumi stack init "$ENVIRONMENT" --secrets-provider "$SECRETS_PROVIDER" --cwd "$ROOT"
    echo "  Pulumi.$ENVIRONMENT.yaml now has its encryptedkey: commit it."
  fi
else
  echo "  no pulumi CLI: install it, then run: pulumi login '$BACKEND' &&" \
    "pulumi stack init $ENVIRONMENT --secrets-provider '$SECRETS_PROVIDER'"
fi

step "rights: the deploy identity writes state, the preview identity only reads it"
assign "$DEPLOY_PRINCIPAL" ServicePrincipal "Storage Blob Data Contributor" "$STATE_SCOPE"
assign "$DEPLOY_PRINCIPAL" ServicePrincipal "Key Vault Crypto User" "$KEY_SCOPE"
# Azure resources: until the stack's first `up` the program must create its resource group, and Azure
# registers resource providers, both subscription-wide actions; once the group exists, everything the
# program creates is inside it (docs/infrastructure.md, "Identities and rights"), so --narrow after the
# first `up` moves the deploy identity's rights from the subscription to that group.
SUBSCRIPTION_SCOPE="/subscriptions/$SUBSCRIPTION"
DEPLOY_SCOPE=$SUBSCRIPTION_SCOPE
[[ -z $STACK_GROUP ]] || DEPLOY_SCOPE=$(az group show --name "$STACK_GROUP" --query id -o tsv)
for role in Contributor "Role Based Access Control Administrator"; do
  assign "$DEPLOY_PRINCIPAL" ServicePrincipal "$role" "$DEPLOY_SCOPE"
  [[ $DEPLOY_SCOPE == "$SUBSCRIPTION_SCOPE" ]] || unassign "$DEPLOY_PRINCIPAL" "$role" "$SUBSCRIPTION_SCOPE"
done
assign "$PREVIEW_PRINCIPAL" ServicePrincipal "Storage Blob Data Reader" "$STATE_SCOPE"
assign "$PREVIEW_PRINCIPAL" ServicePrincipal "Key Vault Crypto User" "$KEY_SCOPE"
assign "$PREVIEW_PRINCIPAL" ServicePrincipal Reader "$SUBSCRIPTION_SCOPE"

step "GitHub: Settings > Secrets and variables > Actions > Variables"
echo "  repository: AZURE_TENANT_ID=$TENANT AZURE_SUBSCRIPTION_ID=$SUBSCRIPTION PULUMI_STATE_ACCOUNT=$STATE_ACCOUNT"
echo "  repository: AZURE_PREVIEW_CLIENT_ID=$(az identity show --name "$PREVIEW" --resource-group "$GROUP" --query clientId -o tsv)"
echo "  environment $ENVIRONMENT: AZURE_CLIENT_ID=$(az identity show --name "$DEPLOY" --resource-group "$GROUP" --query clientId -o tsv)"
echo "  Pulumi.$ENVIRONMENT.yaml: kaito-gitops:previewPrincipalId: $PREVIEW_PRINCIPAL (deploy identity: $DEPLOY_PRINCIPAL)"
