#!/usr/bin/env bash
# Run HERE, before benchmarks/gpu_check.sh goes to a lent GPU machine (no GPU needed): puts
# into the checkout that the device tool sends what that machine lacks, in two folders git
# ignores and the call must carry:
#   .whl/       wheels of captum, torchinfo and graphviz (the Python package), which its
#               image lacks (torch, matplotlib, tqdm, numpy, pytest, hypothesis are there);
#   .gpu-data/  Fashion-MNIST's four .gz files (Debian's dataset-fashion-mnist), since
#               nothing can be downloaded there.
# Then: run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpu-data"], timeout_s=580)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
mkdir -p .whl .gpu-data
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux2014_x86_64 -d .whl \
    captum==0.9.0 torchinfo==1.8.0 graphviz==0.21
cp "$DATA"/*-ubyte.gz .gpu-data/
du -sh .whl .gpu-data
