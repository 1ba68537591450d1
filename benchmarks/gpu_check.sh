#!/usr/bin/env bash
# Every GPU check of issue 22 in ONE call of the device tool (a lent machine starts bare
# and device time is short). Prepare here first: bash benchmarks/gpu_prepare.sh; then
#   run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpu-data"], timeout_s=580)
# It installs the project from the working tree as a user would (pip install -e, no
# dependencies fetched: the carried wheels and the image's torch), gives it Fashion-MNIST,
# and writes under $OUT: env.txt, cuda-tests.log (tests/test_cuda.py), gpu.log
# (benchmarks/gpu.py), speedrun.log (+ speedrun-gpu.json/png: the ladder, one seed),
# suite.log (the whole pytest suite). Each step has its own time
# limit, so one that hangs leaves the others' results; the exit status is the first failure.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/archlab-gpu-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg
status=0
step() {  # step NAME SECONDS COMMAND...: run it, log to $OUT/NAME.log, keep the first failure
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local started=$SECONDS
    timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
    local rc=$?
    echo "   rc=$rc in $((SECONDS - started))s; tail:"
    tail -n 8 "$OUT/$name.log" | sed 's/^/   /'
    [ "$status" -ne 0 ] || status=$rc
}

# the project and the packages the image lacks (no index can be reached there)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1 \
    || { cat "$OUT/install.log"; exit 1; }

# Fashion-MNIST: where the realdata tests look (Debian's path) and as $ARCHLAB_DATA
mkdir -p /usr/share/datasets/fashion-mnist /tmp/archlab-data
cp .gpu-data/*.gz /usr/share/datasets/fashion-mnist/
cp .gpu-data/*.gz /tmp/archlab-data/
export ARCHLAB_DATA=/tmp/archlab-data

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    python3 -c "import torch, captum, archlab; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'captum', captum.__version__, 'archlab', archlab.__version__, 'at', archlab.__file__)"
    git log -1 --format='commit %H %s' 2>/dev/null || true
    date -u
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

step cuda-tests 150 python3 -m pytest -p no:cacheprovider -q -rs tests/test_cuda.py
step gpu 170 python3 benchmarks/gpu.py
# issue 34: the speedrun ladder's times on the GPU (one seed; the CPU's are in benchmarks/README.md)
step speedrun 100 python3 benchmarks/speedrun.py --only ladder --seeds 1 --out /tmp/speedrun \
    --json "$OUT/speedrun-gpu.json" --figure "$OUT/speedrun-gpu.png"
step suite 200 python3 -m pytest -p no:cacheprovider -q -rs -n 12
echo "status=$status"
exit "$status"
