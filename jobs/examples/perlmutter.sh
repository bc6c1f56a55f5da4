#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on perlmutter. Rendered by `hpcflow jobs render`; change jobs/systems/perlmutter.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#SBATCH --job-name=hpcflow-phi4_flow_32x32
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=01:00:00
#SBATCH --output=hpcflow-phi4_flow_32x32-%j.out
#SBATCH --signal=TERM@120
#SBATCH --account=YOUR_ACCOUNT
#SBATCH --qos=regular
#SBATCH --constraint=gpu
#SBATCH --gpus-per-node=4
#SBATCH --exclusive

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
module load python
source "${HPCFLOW_VENV:?set HPCFLOW_VENV to the environment of scripts/install.sh}/bin/activate"
export MPICH_GPU_SUPPORT_ENABLED=0
srun -n 8 -c 32 --gpus-per-task=1 --gpu-bind=none --cpu-bind=cores python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
srun -n 8 -c 32 --gpus-per-task=1 --gpu-bind=none --cpu-bind=cores python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
