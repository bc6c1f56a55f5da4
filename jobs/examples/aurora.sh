#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on aurora. Rendered by `hpcflow jobs render`; change jobs/systems/aurora.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#PBS -N hpcflow-phi4_flow_32x32
#PBS -l select=2:ncpus=96
#PBS -l place=scatter
#PBS -l walltime=01:00:00
#PBS -j oe
#PBS -o hpcflow-phi4_flow_32x32.out
#PBS -q debug
#PBS -A YOUR_ACCOUNT
#PBS -l filesystems=home:flare

set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
module load frameworks
source "${HPCFLOW_VENV:?set HPCFLOW_VENV to the environment of scripts/install.sh}/bin/activate"
mpiexec -n 24 --ppn 12 --depth 8 --cpu-bind depth python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
mpiexec -n 24 --ppn 12 --depth 8 --cpu-bind depth python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
