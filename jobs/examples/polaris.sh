#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on polaris. Rendered by `hpcflow jobs render`; change jobs/systems/polaris.toml
# or the run card, not this file. Each stage resumes from its checkpoints when the job is resubmitted.
#PBS -N hpcflow-phi4_flow_32x32
#PBS -l select=2:ncpus=32:ngpus=4
#PBS -l place=scatter
#PBS -l walltime=01:00:00
#PBS -j oe
#PBS -o hpcflow-phi4_flow_32x32.out
#PBS -q debug
#PBS -A YOUR_ACCOUNT
#PBS -l filesystems=home:eagle

set -euo pipefail
cd "${PBS_O_WORKDIR:-.}"
module use /soft/modulefiles
module load spack-pe-base/0.8.1 apptainer
export OMP_NUM_THREADS=8
mpiexec -n 8 --ppn 4 --depth 8 --cpu-bind depth apptainer exec --nv --bind /eagle hpcflow-mpich.sif python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
mpiexec -n 8 --ppn 4 --depth 8 --cpu-bind depth apptainer exec --nv --bind /eagle hpcflow-mpich.sif python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
apptainer exec --nv --bind /eagle hpcflow-mpich.sif python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
