#!/bin/bash
# hpcflow: ${card} on ${system}. Rendered by `hpcflow jobs render`; change jobs/systems/${system}.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#SBATCH --job-name=${job_name}
#SBATCH --nodes=${nodes}
#SBATCH --ntasks-per-node=${ranks_per_node}
#SBATCH --cpus-per-task=${cpus_per_rank}
#SBATCH --time=${walltime}
#SBATCH --output=${log}
#SBATCH --signal=TERM@120
${directives}
set -euo pipefail
cd "$${SLURM_SUBMIT_DIR:-.}"
${setup}
${stages}
