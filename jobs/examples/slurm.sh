#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on slurm. Rendered by `hpcflow jobs render`; change jobs/systems/slurm.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#SBATCH --job-name=hpcflow-phi4_flow_32x32
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=2
#SBATCH --cpus-per-task=1
#SBATCH --time=00:30:00
#SBATCH --output=hpcflow-phi4_flow_32x32-%j.out
#SBATCH --signal=TERM@120
#SBATCH --partition=debug

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
source "${HPCFLOW_VENV:?set HPCFLOW_VENV to the environment of scripts/install.sh}/bin/activate"
srun -n 2 -c 1 --mpi=pmix --overcommit python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
srun -n 2 -c 1 --mpi=pmix --overcommit python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
