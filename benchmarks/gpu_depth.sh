#!/usr/bin/env bash
# BTS's GPU profile on the default synthetic data, on a machine with one GPU and its own PyTorch
# (the device machine of docs/performance.md): render and rasterize the default data there, then
# train the `gpu_*` settings of benchmarks/exp_depth_quality.py. Packages that machine lacks travel
# as wheels in .whl/ (zarr, numcodecs, dask, pycocotools, pydantic, ...).
#     OUT=results/ bash benchmarks/gpu_depth.sh
set -euo pipefail
OUT=${OUT:-/tmp/gpu_depth}
mkdir -p "$OUT"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi -L || true
python3 -c "import torch, zarr, dask; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'zarr', zarr.__version__)"
# Same data as params.yaml (the renderer's bytes do not depend on the worker count), more workers.
sed -e 's/^  workers: 2 .*/  workers: 12/' -e 's/^  workers: 2$/  workers: 12/' params.yaml > /tmp/params.yaml
start=$SECONDS
[ -d data/prepared/val.zarr ] || {
python3 -m stages.synth data/raw/synth --params /tmp/params.yaml
for split in train val; do
    python3 -m stages.rasterize data/raw/synth data/prepared/$split.zarr --split $split --params /tmp/params.yaml
done
}
echo "data: $((SECONDS - start)) s"
for name in "$@"; do
    DAISNET_EXP_RESULTS=$OUT/depth_quality_gpu.jsonl timeout "${RUN_LIMIT:-300}" \
        python3 benchmarks/exp_depth_quality.py "$name" 2>&1 | tee -a "$OUT/log.txt" || echo "$name: stopped ($?)"
done
