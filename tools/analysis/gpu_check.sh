#!/usr/bin/env bash
# GPU check of the fast defaults, to run where a CUDA GPU is available.
# Usage (from anywhere; OUT defaults to a temporary folder):
#   bash tools/analysis/gpu_check.sh [OUT]
# 1. The benchmark of the R50 recipe at 448 px, batch 2, on CUDA: with no
#    option (fp32, channels-last, cudnn.benchmark as the recipe sets it),
#    then with --amp (fp16 autocast + dynamic loss scaling).
# 2. One tools/train.py iteration of configs/scrim/scrim_r50_cub.py (--amp)
#    on a generated CUB-layout set of random-looking birds (4 classes x 2
#    images, 448 px; no ImageNet weights: the machine may be offline).
# Prints the figures the README asks for; exits non-zero on any failure.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/../.." && pwd)"
OUT=${1:-$(mktemp -d)}
PYTHON=${PYTHON:-python}
mkdir -p "$OUT"
cd "$REPO"

"$PYTHON" -c 'import torch; assert torch.cuda.is_available(), "no CUDA GPU"
print("torch", torch.__version__, "CUDA", torch.version.cuda, "cuDNN",
      torch.backends.cudnn.version(), torch.cuda.get_device_name())'

for opts in "" "--amp"; do
    echo "== benchmark --device cuda $opts"
    "$PYTHON" tools/analysis/benchmark.py configs/scrim/scrim_r50_cub.py \
        --input-size 448 --batch-size 2 --device cuda --iters 20 \
        --warmup 5 $opts --json "$OUT/benchmark${opts:+_amp}.json"
done

echo "== one training iteration of the R50 recipe (--amp)"
"$PYTHON" tools/misc/make_demo_dataset.py --layout cub --out "$OUT/cub" \
    --num-classes 4 --train-per-class 2 --test-per-class 1 --img-size 448
"$PYTHON" tools/train.py configs/scrim/scrim_r50_cub.py --amp \
    --no-validate --work-dir "$OUT/train" --cfg-options \
    "train_dataloader.dataset.data_root=$OUT/cub" \
    train_dataloader.num_workers=2 train_cfg.max_epochs=1 \
    model.backbone.init_cfg=None default_hooks.checkpoint.save_best=None \
    default_hooks.logger.interval=1
test -f "$OUT/train/epoch_1.pth"
echo "== done: results in $OUT"
