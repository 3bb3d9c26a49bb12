#!/usr/bin/env bash
# Set up (if needed) and run a dry run on the bundled sample: writes the merge
# plan, the evidence and report.html to out/sample/. Sends nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
rm -rf out/sample
.venv/bin/profile-dedup --input examples/sample_profiles.jsonl --output out/sample "$@"
.venv/bin/python -m pipeline.evaluate --plan out/sample/merge_plan.jsonl --truth examples/sample_truth.csv | tail -1
