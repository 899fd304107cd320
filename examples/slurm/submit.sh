#!/bin/bash
# Submits the scoring array (SHARDS_N tasks) and the merge + select job that waits for all of it.
#   CPU cluster:  SHARDS_N=3 CONFIG=configs/alpaca.yaml examples/slurm/submit.sh
#   GPU cluster:  SHARDS_N=8 SCORE_OPTS="--gres=gpu:1 --cpus-per-task=8 --mem=64G" examples/slurm/submit.sh --partition=gpu
# Arguments go to both sbatch calls (--partition, --account, --time ...); SCORE_OPTS to the scoring tasks only,
# MERGE_OPTS to the merge only. CONFIG, DEVICE, SHARDS, DLC_PRUNE_DIR and DLC_PRUNE_BIN reach the jobs
# (README "Scaling out").
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export SHARDS_N="${SHARDS_N:-8}"
# Split on spaces (an option whose value holds a space cannot be passed this way: pass it as an argument).
# ${a[@]+"${a[@]}"}: an empty array under set -u on bash 4.2/4.3.
read -r -a score_opts <<<"${SCORE_OPTS:-}"
read -r -a merge_opts <<<"${MERGE_OPTS:-}"

array_job=$(sbatch --parsable --array="0-$((SHARDS_N - 1))" ${score_opts[@]+"${score_opts[@]}"} "$@" "$here/score-array.sbatch")
array_job="${array_job%%;*}" # --parsable prints JOBID or JOBID;CLUSTER
# --kill-on-invalid-dep: when a task fails or is cancelled, the merge is cancelled rather than left pending
# forever (DependencyNeverSatisfied). Requeue the task (scontrol requeue JOB_K), then submit the merge again.
merge_job=$(sbatch --parsable --dependency="afterok:${array_job}" --kill-on-invalid-dep=yes ${merge_opts[@]+"${merge_opts[@]}"} "$@" \
  "$here/merge-select.sbatch")
echo "scoring: job array ${array_job} (${SHARDS_N} shards); merge + select: job ${merge_job}"
