#!/usr/bin/env bash
# Install docsort and what it needs on a fresh Debian/Ubuntu machine:
# Tesseract and fonts from apt, then a virtual environment in .venv with the package, its training
# extra (TensorFlow), its test tools and the benchmarks' peers: everything the tests and benchmarks use.
# Reading mail alone needs only the base install (pip install docsort, no TensorFlow).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  python3 python3-venv python3-pip
  tesseract-ocr tesseract-ocr-eng
  fonts-dejavu fonts-liberation fonts-freefont-ttf fonts-noto-core fonts-urw-base35
  # Handwriting fonts: real people's hands for the digit readers' training and a held-out measure
  # (docsort.training.synth.font_hands); reading mail does not need them.
  fonts-bwht fonts-dkg-handwriting fonts-breip fonts-kristi fonts-humor-sans fonts-seto fonts-yusei-magic
  fonts-kiloji fonts-sjfonts fonts-rufscript fonts-kaushanscript fonts-navilu
)

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing with apt-get: ${missing[*]}" >&2
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[train,test,bench]"
echo "docsort installed in .venv ($(.venv/bin/docsort --version); $(tesseract --version 2>&1 | head -n1))" >&2
