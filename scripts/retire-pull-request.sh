#!/usr/bin/env bash
# Keep one pull request per stack that retires the tuning jobs `python -m infra.retire --write` edited.
# Run by .github/workflows/retire.yml after the tool, in the checkout of main, with GH_TOKEN set to a GitHub
# App token (a pull request made with GITHUB_TOKEN would start no workflow, so no plan check would run).
#   scripts/retire-pull-request.sh ENVIRONMENT REPORT
# ENVIRONMENT: the stack; REPORT: the tool's text output, quoted in the pull request.
# No edit: an open retire pull request of the stack is closed (nothing is left to retire). An edit: the branch
# retire/<stack> is set to main plus the edit and force-pushed (only when that changes it), and the pull
# request is opened or its text updated, and set to merge itself (squash) once the branch protection's required
# checks and reviews pass: the GPU nodes stop billing without anyone watching for the job to end. Where the
# repository does not allow auto-merge, the pull request waits for a person and the run says so.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 ENVIRONMENT REPORT" >&2
  exit 2
fi
environment=$1
report=$2
branch="retire/$environment"

open=$(gh pr list --head "$branch" --state open --json number --jq '.[0].number // empty')
if git diff --quiet -- workloads/; then
  if [ -n "$open" ]; then
    gh pr close "$open" --delete-branch \
      --comment "No tuning job in $environment is left to retire (see the latest retire workflow run)."
  fi
  exit 0
fi

git switch --quiet --create "$branch"
git add -- workloads/
git -c user.name="kaito-gitops-retire[bot]" -c user.email="kaito-gitops-retire@users.noreply.github.com" \
  commit --quiet --message "Retire the finished tuning jobs in $environment"
if [ -n "$open" ] && git fetch --quiet origin "$branch" 2>/dev/null && git diff --quiet FETCH_HEAD HEAD; then
  exit 0 # the open pull request already proposes exactly this (a branch with no open pull request gets one)
fi
git push --quiet --force origin "$branch"

body=$(mktemp)
trap 'rm -f "$body"' EXIT
{
  printf 'KAITO reports these tuning runs in %s as ended; their GPU nodes bill until this merges.\n\n' \
    "$environment"
  # An indented code block: no line of cluster-supplied text can end it (each is one escaped line).
  grep -E ': (succeeded|failed): ' "$report" | sed 's/^/    /' || true
  printf '\nMade by the retire workflow, which updates or closes this pull request on its next runs.\n'
} >"$body"
if [ -n "$open" ]; then
  gh pr edit "$open" --body-file "$body"
else
  gh pr create --base main --head "$branch" --title "Retire finished tuning jobs in $environment" --body-file "$body"
fi
if ! gh pr merge "$branch" --auto --squash; then
  echo "::warning::auto-merge is off for this repository (Settings > General > Allow auto-merge): the retire pull request for $environment waits for someone to merge it, and its GPU nodes bill until then"
fi
