#!/bin/bash
# Submits the scoring array (one GPU per shard) and the merge + select job that waits for all of it.
#   SHARDS_N=8 CONFIG=configs/alpaca.yaml examples/slurm/submit.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
n="${SHARDS_N:-8}"

array_job=$(sbatch --parsable --array="0-$((n - 1))" "$here/score-array.sbatch")
merge_job=$(sbatch --parsable --dependency="afterok:${array_job}" "$here/merge-select.sbatch")
echo "scoring: job array ${array_job} (${n} shards); merge + select: job ${merge_job}"
