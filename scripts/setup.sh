#!/usr/bin/env bash
# Set up photonqd on a fresh machine, then run the default depth study.
#   scripts/setup.sh                  set up, then `photonqd study -o results.h5 --plots plots`
#   scripts/setup.sh ARGS...          set up, then `photonqd study ARGS...`
#   scripts/setup.sh --setup-only     set up only
# On Debian/Ubuntu (as root, or with sudo) it installs the OpenCL CPU runtime (PoCL) and Python's
# venv module; elsewhere install an OpenCL driver yourself (see README). Then it creates .venv
# with every extra the examples and tests need.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(pocl-opencl-icd ocl-icd-libopencl1 python3-venv)
if command -v apt-get >/dev/null && command -v dpkg >/dev/null; then
    if ! dpkg -s "${packages[@]}" >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then sudo=(); elif command -v sudo >/dev/null; then sudo=(sudo); else sudo=(none); fi
        if [ "${sudo[0]:-}" = none ]; then
            echo "setup: not root and no sudo: ask an administrator for: apt-get install ${packages[*]}" >&2
        else
            echo "setup: installing ${packages[*]}" >&2
            "${sudo[@]}" apt-get update -qq
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${packages[@]}" >/dev/null
        fi
    fi
else
    echo "setup: no apt-get here: install an OpenCL driver (your GPU vendor's, or PoCL for the CPU)" \
         "or CuPy for an NVIDIA GPU, else photonqd runs on NumPy (slow)" >&2
fi

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || { echo "setup: photonqd needs Python >= 3.11, found $(python3 --version 2>&1)" >&2; exit 1; }
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[opencl,plot,test,mie]"
.venv/bin/photonqd devices

if [ "${1:-}" = --setup-only ]; then
    exit 0
fi
if [ $# -eq 0 ]; then
    set -- -o results.h5 --plots plots
fi
exec .venv/bin/photonqd study "$@"
