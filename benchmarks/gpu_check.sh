#!/usr/bin/env bash
# Issue 14.4: everything that needs a GPU, in one call, on a machine that has one. Never run yet.
#   bash benchmarks/gpu_check.sh [OUT_DIR]      (from the repository root; OUT_DIR default $OUT or /tmp/gpu_check)
# 1. the `gpu` tests (the CUDA advantage kernel against the reference and the CPU kernel);
# 2. the CUDA kernel vs the CPU kernel on random inputs of several sizes: max abs difference and time;
# 3. benchmarks/train.py breakout on the GPU for 60 s (agent-steps/s, score curve; targets: mean score
#    >= 800 within 60 s, >= 1M agent-steps/s), more envs so that the GPU has work.
# Needs a CUDA build of torch (the shared venv holds the CPU build: set PYTHON to one with CUDA).
# Each step's output goes to OUT_DIR/*.log; a summary is printed at the end. A failing step does not
# stop the others.
set -u
OUT_DIR=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$OUT_DIR"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python}
summary=()

nvidia-smi > "$OUT_DIR/nvidia-smi.log" 2>&1
"$PY" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(),
torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')" 2>&1 | tee "$OUT_DIR/torch.log"
if [ ! -e pufferlib/trainer/_advantage*.so ]; then "$PY" setup.py build_ext --inplace -q > "$OUT_DIR/build.log" 2>&1; fi

timeout 900 "$PY" -m pytest -q -m gpu tests/test_advantage.py > "$OUT_DIR/gpu_tests.log" 2>&1
summary+=("gpu tests: rc $? ($(tail -1 "$OUT_DIR/gpu_tests.log"))")

timeout 600 "$PY" - > "$OUT_DIR/kernel.log" 2>&1 <<'EOF'
import time
import torch
from pufferlib.trainer.advantage import compute_advantage

def inputs(segments, horizon, device, seed):
    g = torch.Generator().manual_seed(seed)
    t = dict(values=torch.randn(segments, horizon + 1, generator=g),
             rewards=torch.randn(segments, horizon + 1, generator=g),
             terminals=(torch.rand(segments, horizon + 1, generator=g) < 0.05).float(),
             truncations=(torch.rand(segments, horizon + 1, generator=g) < 0.02).float(),
             importance=torch.rand(segments, horizon, generator=g) * 2,
             advantages=torch.zeros(segments, horizon))
    return {k: v.to(device).contiguous() for k, v in t.items()}

def run(t, reps):
    args = (t['values'], t['rewards'], t['terminals'], t['truncations'], t['importance'],
            t['advantages'], 0.995, 0.9, 1.0, 1.0)
    compute_advantage(*args)
    if t['values'].is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(reps):
        compute_advantage(*args)
    if t['values'].is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / reps

worst = 0.0
for segments, horizon in ((1, 1), (7, 3), (1024, 64), (16384, 64), (65536, 64), (4096, 256)):
    cpu, gpu = inputs(segments, horizon, 'cpu', segments), inputs(segments, horizon, 'cuda', segments)
    t_cpu, t_gpu = run(cpu, 20), run(gpu, 200)
    diff = (gpu['advantages'].cpu() - cpu['advantages']).abs().max().item()
    scale = cpu['advantages'].abs().max().item()
    worst = max(worst, diff / max(scale, 1.0))
    n = segments * horizon
    print(f'{segments:>6} x {horizon:<4} max |cuda - cpu| {diff:.2e} (max |A| {scale:.3g})  '
          f'cpu {n / t_cpu / 1e6:9.1f} M/s  cuda {n / t_gpu / 1e6:9.1f} M/s', flush=True)
print(f'KERNEL {"OK" if worst < 1e-4 else "MISMATCH"}: worst relative difference {worst:.2e}')
EOF
summary+=("kernel: rc $? ($(tail -1 "$OUT_DIR/kernel.log"))")

timeout 900 "$PY" benchmarks/train.py breakout --minutes 1 --eval-episodes 100 --out "$OUT_DIR" \
    --train.device cuda --env.num_envs 4096 --train.minibatch_size 32768 \
    > "$OUT_DIR/train_breakout_gpu.log" 2>&1
summary+=("train breakout on cuda: rc $? ($(grep -E 'agent-steps/s on average|target' "$OUT_DIR/train_breakout_gpu.log" | tr '\n' ' '))")

echo "==== gpu_check summary ($(date -u)) ====" | tee "$OUT_DIR/summary.txt"
printf '%s\n' "${summary[@]}" | tee -a "$OUT_DIR/summary.txt"
