#!/bin/bash
# hpcflow: ${card} on ${system}. Rendered by `hpcflow jobs render`; change jobs/systems/${system}.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#PBS -N ${job_name}
#PBS -l select=${nodes}:ncpus=${cpus_per_node}${gpu_select}
#PBS -l place=scatter
#PBS -l walltime=${walltime}
#PBS -j oe
#PBS -o ${log}
${directives}
set -euo pipefail
cd "$${PBS_O_WORKDIR:-.}"
${setup}
${stages}
