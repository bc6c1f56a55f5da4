#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on pbs. Rendered by `hpcflow jobs render`; change jobs/systems/pbs.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#PBS -N hpcflow-phi4_flow_32x32
#PBS -l select=1:ncpus=2
#PBS -l place=scatter
#PBS -l walltime=00:30:00
#PBS -j oe
#PBS -o hpcflow-phi4_flow_32x32.out
#PBS -q workq

set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
source "${HPCFLOW_VENV:?set HPCFLOW_VENV to the environment of scripts/install.sh}/bin/activate"
mpiexec -n 2 python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
mpiexec -n 2 python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
