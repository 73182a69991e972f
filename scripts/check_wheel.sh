#!/usr/bin/env bash
# The wheel as a user installs it: built from this checkout, installed WITHOUT the training extra
# into a fresh virtual environment (its dependencies from PyPI), away from the repository. There
# TensorFlow must be absent, `docsort process sample_docs` must read every sample envelope right,
# and `docsort train` must name the extra it needs (exit code 4).
# Needs Tesseract (scripts/install.sh installs it) and access to PyPI.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/docsort-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
"$py" -m pip wheel -q --no-deps -w "$work/dist" "$repo"
wheel=$(ls "$work"/dist/docsort-*.whl)
echo "built $(basename "$wheel") ($(du -h "$wheel" | cut -f1))"
"$py" -m pip install -q "$wheel"

cd "$work"
if "$py" -c "import tensorflow" 2>/dev/null; then
  echo "error: the base install can import tensorflow" >&2
  exit 1
fi
echo "base install: tensorflow not importable; $("$py" -m pip list --format=freeze 2>/dev/null | wc -l) packages"

started=$(date +%s)
"$work/venv/bin/docsort" process "$repo/sample_docs" --out "$work/out" --jobs 2
echo "process took $(( $(date +%s) - started )) s"
"$py" - "$repo/sample_docs/truth.json" "$work/out/results.json" <<'EOF'
import json, sys

truth = {e["file"]: e["destination_code"] for e in json.load(open(sys.argv[1]))["envelopes"]}
results = json.load(open(sys.argv[2]))
read = {d["file"].split("/")[-1]: (d["pages"][0]["postal_code"] or {}).get("value") if d["pages"] else None
        for d in results["documents"]}
right = sum(read.get(name) == code for name, code in truth.items())
print(f"sample envelopes read right: {right} of {len(truth)}")
sys.exit(0 if right == len(truth) == len(read) else 1)
EOF

set +e
message=$("$work/venv/bin/docsort" train digits 2>&1)
code=$?
set -e
echo "docsort train digits: exit code $code: $message"
[ "$code" -eq 4 ] && [ "$message" = "docsort: error: docsort train needs the training extra: pip install 'docsort[train]'" ]
echo "wheel check passed"
