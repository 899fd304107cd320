#!/bin/bash
# Kubernetes Jobs have no dependencies of their own: start the scoring Job, wait for it, then merge + select.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
kubectl apply -f "$here/score-indexed-job.yaml"
kubectl wait --for=condition=complete job/dlc-prune-score --timeout=48h
kubectl apply -f "$here/merge-select-job.yaml"
kubectl wait --for=condition=complete job/dlc-prune-merge-select --timeout=4h
