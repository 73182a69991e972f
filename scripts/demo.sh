#!/usr/bin/env bash
# One command for a new user: install everything, then read the sample envelopes in sample_docs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/docsort process sample_docs --out out/sample_docs --overlays
echo >&2
echo "Results: out/sample_docs/results.json, out/sample_docs/results.csv, overlays in out/sample_docs/overlays/" >&2
