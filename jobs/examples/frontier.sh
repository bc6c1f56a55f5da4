#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on frontier. Rendered by `hpcflow jobs render`; change jobs/systems/frontier.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#SBATCH --job-name=hpcflow-phi4_flow_32x32
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --cpus-per-task=7
#SBATCH --time=01:00:00
#SBATCH --output=hpcflow-phi4_flow_32x32-%j.out
#SBATCH --signal=TERM@120
#SBATCH --partition=batch
#SBATCH --account=YOUR_ACCOUNT
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --core-spec=8

set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
module load olcf-container-tools apptainer-enable-mpi
export OMP_NUM_THREADS=7
srun -n 16 -c 7 --gpus-per-task=1 --gpu-bind=closest --cpu-bind=threads apptainer exec --rocm --bind /lustre/orion hpcflow-mpich.sif python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
srun -n 16 -c 7 --gpus-per-task=1 --gpu-bind=closest --cpu-bind=threads apptainer exec --rocm --bind /lustre/orion hpcflow-mpich.sif python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
apptainer exec --rocm --bind /lustre/orion hpcflow-mpich.sif python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
