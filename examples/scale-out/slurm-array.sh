#!/usr/bin/env bash
# A sharded dataset build as a Slurm job array: 4 tasks, one per shard, on a shared filesystem.
#
#   sbatch examples/scale-out/slurm-array.sh
#   # when the array is done (sbatch --dependency=afterok:JOBID for a follow-up job):
#   batchgen merge out/dataset --verify
#   batchgen status out/dataset/shards/2-of-4       # one shard, any time
#   sbatch --array=2 examples/scale-out/slurm-array.sh   # rerun one shard alone
#
# Without --shard, batchgen reads the shard from SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN and
# SLURM_ARRAY_TASK_COUNT. That is right for the whole array, but a rerun of one index
# (--array=2) sees a count of 1; so this script names the shard itself (0-based array ids, a
# fixed count) and hides the variables, which batchgen would otherwise check --shard against.
# --rpm and --budget-usd are per task: 4 tasks x 12 rpm = 48 rpm under a 50 rpm plan, and
# 4 x $10 = $40 at most in total.
#SBATCH --job-name=batchgen-dataset
#SBATCH --array=0-3
#SBATCH --cpus-per-task=1
#SBATCH --mem=1G
#SBATCH --time=24:00:00
set -euo pipefail
SHARD_COUNT=4
SHARD_INDEX=${SLURM_ARRAY_TASK_ID:?run with sbatch --array}
unset SLURM_ARRAY_TASK_ID SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_COUNT
batchgen run jobs/dataset.yaml --out out/dataset --shard "$SHARD_INDEX/$SHARD_COUNT" \
    --rpm 12 --concurrency 8 --budget-usd 10 --quiet
