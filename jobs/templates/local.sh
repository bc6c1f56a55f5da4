#!/bin/bash
# hpcflow: ${card} on ${system}. Rendered by `hpcflow jobs render`: the stages of a job script,
# run directly (no scheduler). Each stage resumes from its checkpoints when rerun.
set -euo pipefail
${setup}
${stages}
