#!/bin/bash
# hpcflow: jobs/cards/phi4_flow_32x32.toml on local. Rendered by `hpcflow jobs render`: the stages of a job script,
# run directly (no scheduler). Each stage resumes from its checkpoints when rerun.

set -euo pipefail
python3 -m hpcflow.cli --no-progress train jobs/cards/phi4_flow_32x32.toml
python3 -m hpcflow.cli --no-progress sample jobs/cards/phi4_flow_32x32.toml
python3 -m hpcflow.cli --no-progress analyze runs/phi4_flow_32x32
