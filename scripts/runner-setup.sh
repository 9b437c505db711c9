#!/usr/bin/env bash
# Runs on the runner VM as root (scripts/deploy-runner.sh sends it with `az vm run-command invoke`): installs
# what the workflows' jobs call that a bare Ubuntu lacks (az, make, git, jq) and the GitHub runner as a service
# of its own user, registered on the repository with one label. Safe to run again.
#
# Usage: runner-setup.sh <owner/name> <registration token> <label>
set -euo pipefail

REPO=${1:?repository}
TOKEN=${2:?registration token}
LABEL=${3:?label}
USER_NAME=github-runner
DIR=/home/$USER_NAME/actions-runner

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates curl git jq make
# Microsoft's documented one-line install of the Azure CLI on Ubuntu (learn.microsoft.com/cli/azure/install-azure-cli-linux).
command -v az >/dev/null || curl -fsSL https://aka.ms/InstallAzureCLIDeb | bash

id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME"
if [[ -f $DIR/.runner ]]; then
  echo "runner already registered in $DIR"
  exit 0
fi
# The latest release: a registered runner updates itself anyway (GitHub docs, "About self-hosted runners").
VERSION=$(curl -fsSL https://api.github.com/repos/actions/runner/releases/latest | jq -r .tag_name)
VERSION=${VERSION#v}
sudo -u "$USER_NAME" mkdir -p "$DIR"
curl -fsSL "https://github.com/actions/runner/releases/download/v$VERSION/actions-runner-linux-x64-$VERSION.tar.gz" \
  | sudo -u "$USER_NAME" tar -xz -C "$DIR"
"$DIR/bin/installdependencies.sh"
cd "$DIR"
sudo -u "$USER_NAME" ./config.sh --url "https://github.com/$REPO" --token "$TOKEN" --labels "$LABEL" \
  --name "$(hostname)" --unattended
./svc.sh install "$USER_NAME"
./svc.sh start
