#!/usr/bin/env bash
# GPU check of the fast defaults, to run where a CUDA GPU is available.
# Usage (from anywhere; OUT defaults to a temporary folder):
#   bash tools/analysis/gpu_check.sh [OUT]
# 0. tests/test_models/test_cuda.py: predictions, losses, gradients and the
#    FLOP count on the GPU against the CPU; an fp16 (--amp) train step.
# 1. The benchmark of the R50 recipe at 448 px, batch 2, on CUDA: with no
#    option (fp32, channels-last, cudnn.benchmark as the recipe sets it),
#    then with --amp (fp16 autocast + dynamic loss scaling).
# 2. One tools/train.py iteration of configs/scrim/scrim_r50_cub.py (--amp)
#    on a generated CUB-layout set of random-looking birds (4 classes x 2
#    images, 448 px; no ImageNet weights: the machine may be offline).
# Prints the figures the README asks for. Every step runs even when an
# earlier one failed; the check exits non-zero if any step failed.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
OUT=${1:-$(mktemp -d)}
PYTHON=${PYTHON:-python}
mkdir -p "$OUT"
cd "$REPO"

"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU"
print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN",
      torch.backends.cudnn.version(), torch.cuda.get_device_name())' || exit 1

FAILED=()
step() {  # step NAME COMMAND...: run, and remember a failure
    local name=$1
    shift
    echo "== $name"
    "$@" || { echo "!! $name failed (exit $?)"; FAILED+=("$name"); }
}

step "CUDA tests" "$PYTHON" -m pytest -q -p no:cacheprovider \
    tests/test_models/test_cuda.py

for opts in "" "--amp"; do
    step "benchmark --device cuda $opts" \
        "$PYTHON" tools/analysis/benchmark.py configs/scrim/scrim_r50_cub.py \
        --input-size 448 --batch-size 2 --device cuda --iters 20 \
        --warmup 5 $opts --json "$OUT/benchmark${opts:+_amp}.json"
done

step "demo images for the training step" \
    "$PYTHON" tools/misc/make_demo_dataset.py --layout cub --out "$OUT/cub" \
    --num-classes 4 --train-per-class 2 --test-per-class 1 --img-size 448
step "one training iteration of the R50 recipe (--amp)" \
    "$PYTHON" tools/train.py configs/scrim/scrim_r50_cub.py --amp \
    --no-validate --work-dir "$OUT/train" --cfg-options \
    "train_dataloader.dataset.data_root=$OUT/cub" \
    train_dataloader.num_workers=2 train_cfg.max_epochs=1 \
    model.backbone.init_cfg=None default_hooks.checkpoint.save_best=None \
    default_hooks.logger.interval=1
step "checkpoint written" test -f "$OUT/train/epoch_1.pth"
echo "== done: results in $OUT"
if [ ${#FAILED[@]} -gt 0 ]; then
    printf '!! failed: %s\n' "${FAILED[@]}"
    exit 1
fi
