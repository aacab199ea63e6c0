#!/usr/bin/env bash
# A large fibjax sweep as a Slurm job array: each array task trains one disjoint shard of the
# grid, then one dependent job merges the shards and writes the report.
#
#   sbatch experiments/sweep_slurm.sh            # submits the array of $SHARDS tasks
#   ... when it is done, the merge job has written results/sweep-big/report.md
#
# Every task runs the same command with its own --shard K/N; a task that fails or is preempted
# is simply submitted again (sbatch --array=K experiments/sweep_slurm.sh): --resume trains only
# the arms its folder is missing. Edit GRID for the sweep you want, or set it when submitting
# (FIBJAX_GRID="--cell gru --window 10,20" sbatch ...); keep it the same in every task: fibjax
# merge refuses shards of different sweeps. FIBJAX_SWEEP_OUT sets the output folder.
#
#SBATCH --job-name=fibjax-sweep
#SBATCH --array=1-8
#SBATCH --cpus-per-task=4
#SBATCH --mem=8G
#SBATCH --time=02:00:00
#SBATCH --output=logs/fibjax-sweep-%A_%a.out
set -euo pipefail

DEFAULT_GRID="--cell simple,gru,lstm --models attention,additive,dot --hidden 2,8
 --window 10,20,40 --scaling minmax,log --learning-rate 1e-3,1e-2 --seeds 64"
read -r -a GRID <<< "$(echo ${FIBJAX_GRID:-$DEFAULT_GRID})"
OUT=${FIBJAX_SWEEP_OUT:-results/sweep-big}
SHARDS=${SLURM_ARRAY_TASK_COUNT:-8}
K=${SLURM_ARRAY_TASK_ID:?run this script with sbatch --array}
PART="$OUT/shards/$K-of-$SHARDS"

mkdir -p "$OUT/shards" logs
# Each task keeps its own compilation cache on node-local disk.
export FIBJAX_CACHE_DIR="${TMPDIR:-/tmp}/fibjax-cache-${USER:-$(id -u)}"

if [ -f "$PART/sweep.json" ]; then
    fibjax sweep --resume "$PART"
else
    fibjax sweep "${GRID[@]}" --shard "$K/$SHARDS" --out "$PART"
fi

# Task 1 submits one merge job that waits for the whole array and runs only if every task
# succeeded. After resubmitting a failed task, merge by hand: fibjax merge OUT/merged OUT/shards/*
# (it refuses, naming the shards still missing, until every part is there).
if [ "$K" = "1" ]; then
    sbatch --dependency="afterok:$SLURM_ARRAY_JOB_ID" --job-name=fibjax-merge \
        --output=logs/fibjax-merge-%j.out \
        --wrap="fibjax merge $OUT/merged $OUT/shards/*-of-$SHARDS"
fi
