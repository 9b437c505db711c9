#!/usr/bin/env bash
# Runs on a runner VM as root (scripts/deploy-runner.sh sends it with `az vm run-command invoke`): installs
# every tool the prod jobs' run steps call that a bare Ubuntu 24.04 lacks and no action of theirs installs
# (RUNNER_TOOLS, checked against the workflows by tests/gitops/test_workflows.py), then the GitHub runner,
# verified against its published SHA-256, as a service of its own user, registered with one label.
# Safe to run again. It fails (exit 1) when a tool is still missing after installation or the download does
# not match its checksum; deploy-runner.sh then sees no runner come online.
#
# Usage: runner-setup.sh <registration URL: https://github.com/<owner>[/<name>]> <registration token> <label>
#        <runner name> [<runner group>]
set -euo pipefail

URL=${1:?registration URL}
TOKEN=${2:?registration token}
LABEL=${3:?label}
NAME=${4:?runner name}
RUNNER_GROUP=${5:-}
USER_NAME=github-runner
# The release pinned, and its linux-x64 archive's SHA-256 as GitHub's release notes for v2.329.0 list it. A
# registered runner updates itself afterwards (GitHub docs, "About self-hosted runners"); bump both when
# GitHub stops accepting this version.
RUNNER_VERSION=2.329.0
RUNNER_SHA256=194f1e1e4bd02f80b7e9633fc546084d8d4e19f3928a324d512ea53430102e1d
# pulumi, python and kubelogin come from actions in the jobs (pulumi/actions, actions/setup-python,
# azure/use-kubelogin); the rest must be here.
RUNNER_TOOLS=(az curl gh git jq kubectl make)

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends ca-certificates curl git jq make
# Microsoft's documented one-line install of the Azure CLI on Ubuntu (learn.microsoft.com/cli/azure/install-azure-cli-linux).
command -v az >/dev/null || curl -fsSL https://aka.ms/InstallAzureCLIDeb | bash
# kubectl and kubelogin into /usr/local/bin (learn.microsoft.com/cli/azure/aks, `az aks install-cli`).
command -v kubectl >/dev/null || az aks install-cli --only-show-errors
if ! command -v gh >/dev/null; then
  # GitHub's own apt repository (cli/cli docs/install_linux.md, "Debian, Ubuntu Linux").
  install -d -m 755 /etc/apt/keyrings
  curl -fsSL -o /etc/apt/keyrings/githubcli-archive-keyring.gpg https://cli.github.com/packages/githubcli-archive-keyring.gpg
  chmod go+r /etc/apt/keyrings/githubcli-archive-keyring.gpg
  echo "deb [arch=$(dpkg --print-architecture) signed-by=/etc/apt/keyrings/githubcli-archive-keyring.gpg] https://cli.github.com/packages stable main" \
    > /etc/apt/sources.list.d/github-cli.list
  apt-get update -q
  apt-get install -y -q gh
fi
for tool in "${RUNNER_TOOLS[@]}"; do
  command -v "$tool" >/dev/null || { echo "runner-setup: $tool is still missing after installation" >&2; exit 1; }
done

id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME"
DIR="$(getent passwd "$USER_NAME" | cut -d: -f6)/actions-runner"
if [[ -f $DIR/.runner ]]; then
  echo "runner already registered in $DIR"
  exit 0
fi
ARCHIVE=$(mktemp)
trap 'rm -f "$ARCHIVE"' EXIT
curl -fsSL -o "$ARCHIVE" \
  "https://github.com/actions/runner/releases/download/v$RUNNER_VERSION/actions-runner-linux-x64-$RUNNER_VERSION.tar.gz"
echo "$RUNNER_SHA256  $ARCHIVE" | sha256sum --check --strict - \
  || { echo "runner-setup: the runner archive does not match its published SHA-256; nothing installed" >&2; exit 1; }
sudo -u "$USER_NAME" mkdir -p "$DIR"
sudo -u "$USER_NAME" tar -xzf "$ARCHIVE" -C "$DIR"
"$DIR/bin/installdependencies.sh"
cd "$DIR"
# config.sh reads any option from ACTIONS_RUNNER_INPUT_<NAME> (actions/runner
# src/Runner.Listener/CommandSettings.cs), so the token stays out of its command line.
export ACTIONS_RUNNER_INPUT_TOKEN=$TOKEN
GROUP_ARGS=()
[[ -z $RUNNER_GROUP ]] || GROUP_ARGS=(--runnergroup "$RUNNER_GROUP")
sudo --preserve-env=ACTIONS_RUNNER_INPUT_TOKEN -u "$USER_NAME" ./config.sh --url "$URL" --labels "$LABEL" \
  --name "$NAME" "${GROUP_ARGS[@]}" --unattended
unset ACTIONS_RUNNER_INPUT_TOKEN
./svc.sh install "$USER_NAME"
./svc.sh start
