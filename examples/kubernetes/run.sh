#!/bin/bash
# Kubernetes Jobs have no dependencies of their own: start the scoring Job, wait for it, then merge + select.
# A finished Job of the same name would not run again when applied (and the merge would read its old shards),
# so the Jobs of an earlier run are deleted first. Stops as soon as a Job fails.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
POLL_SECONDS="${POLL_SECONDS:-30}"

# Waits until job $1 is Complete (0) or Failed (1), at most $2 seconds.
wait_for() {
  local end=$((SECONDS + $2)) state
  while ((SECONDS < end)); do
    # A failed look (the API server busy) is not the end of the wait.
    state=" $(kubectl get "job/$1" -o jsonpath='{.status.conditions[?(@.status=="True")].type}' || true) "
    case "$state" in
      *" Complete "*) return 0 ;;
      *" Failed "*)
        echo "job $1 failed: kubectl describe job/$1; kubectl logs job/$1" >&2
        return 1
        ;;
    esac
    sleep "$POLL_SECONDS"
  done
  echo "job $1: not finished after $2 s" >&2
  return 1
}

# --cascade=foreground: returns once the old pods are gone too, not only the Job objects.
kubectl delete job dlc-prune-score dlc-prune-merge-select --ignore-not-found --cascade=foreground --wait=true
kubectl apply -f "$here/score-indexed-job.yaml"
wait_for dlc-prune-score $((48 * 3600))
kubectl apply -f "$here/merge-select-job.yaml"
wait_for dlc-prune-merge-select $((4 * 3600))
