#!/usr/bin/env bash
# Idempotent set-up of a fresh Debian/Ubuntu machine for behavior_lab (quick no-op when done):
#  1. Debian packages MuJoCo needs to render on the CPU (Mesa EGL + OSMesa);
#  2. .venv with the pinned CPU torch wheel installed FIRST (an unpinned resolve pulls a multi-GB
#     CUDA build), then the package + test extras under constraints.txt, then openpi-client
#     (the reference websocket client, test-only) with --no-deps: its numpy<2 cap is stale.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.setup-stamp
WANT=$(cat pyproject.toml constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] && .venv/bin/python -c "import behavior_lab, torch, mujoco" 2>/dev/null; then
  exit 0
fi

DEB_PKGS=(libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libglvnd0 libosmesa6)
missing=()
for p in "${DEB_PKGS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "[setup] installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
echo "[setup] installing Python packages into .venv (first time: ~3 min)"
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
.venv/bin/python -m pip install -q --no-deps openpi-client==0.1.2
echo "$WANT" > "$STAMP"
echo "[setup] done: $(.venv/bin/python -c 'import torch, mujoco; print("torch", torch.__version__, "| mujoco", mujoco.__version__)')"
