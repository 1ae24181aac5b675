#!/usr/bin/env bash
# GPU checks in a few minutes: `bash bench/gpu.sh OUT_DIR [ACCURACY_SECONDS]` on a machine with one CUDA GPU.
#   1. smoke: one default run and DER++ + DDN in bf16 on the embedded dataset, on the GPU (stops here on failure)
#   2. accuracy: online Split CIFAR-10 runs of bench/run.py's cifar_online suite, several processes sharing
#      the GPU, until ACCURACY_SECONDS (default 300) have passed; unfinished runs are dropped
#   3. cost: Split CIFAR-10, offline ResNet-18 (nf 64, batch 32 + 32) and online (nf 20, batch 10 + 10), 100
#      steps of task 1 with a full buffer: samples/s and peak GPU memory, ER vs ER + DDN (head; full scope in
#      fp32), fp32 and bf16; online fp32 also profiled (torch ops, GPU kernel time and busy share, syncs per step),
#      and again with ddn.hypergrad=analytic (BENCHMARKS 4f).
#      Each measurement is a fresh process (20–28 s on the H200, start-up included): about 11 minutes in all
# Needs the CIFAR-10 folder in data/cifar10 (`make data`), or .gpu/cifar10-jpeg.tar.gz; Python packages that
# the machine lacks can sit in .gpu/site (pure-Python hydra-core, omegaconf, antlr4).
# Everything lands in OUT_DIR: log.txt, env.txt, cost.md, accuracy.md and runs.tgz (every run's results.json).
# Variables: WORKERS (parallel runs, 11), ONLY_ACCURACY=1 (phase 2 alone), ONLY_COST=1 (phases 1 and 3), JOBS_FILE
# (lines "TAG SEED" to run instead of the default list), COST_S / STEPS (phase 3: seconds per cell, default
# 30 per process; steps per measurement), CELLS (phase 3's cells, comma-separated "SETTING PRECISION [OVERRIDE]",
# default all five below), FULL=0 (no full-scope variant: a shorter lease), TRAINER=cpu STEPS=2 (a dry run without
# a GPU).
set -u
OUT_DIR=${1:?usage: bash bench/gpu.sh OUT_DIR [ACCURACY_SECONDS]}
ACC_S=${2:-300}
PY=${PY:-python3}
mkdir -p "$OUT_DIR"
export PYTHONUNBUFFERED=1
[ -d .gpu/site ] && export PYTHONPATH=$PWD/.gpu/site${PYTHONPATH:+:$PYTHONPATH}
LOG=$OUT_DIR/log.txt
say() { echo "[$(date +%T)] $*" | tee -a "$LOG"; }

{ nvidia-smi; $PY -c "import torch, pytorch_lightning as pl, hydra, omegaconf; print('torch', torch.__version__,
'cuda', torch.version.cuda, torch.cuda.get_device_name(), '| lightning', pl.__version__, '| hydra', hydra.__version__)";
  nproc; } > "$OUT_DIR/env.txt" 2>&1
say "env: $(tail -2 "$OUT_DIR/env.txt" | tr '\n' ' ')"

# data: decode CIFAR-10 once (cache) while the smoke runs use the GPU
if [ ! -d data/cifar10 ] && [ -f .gpu/cifar10-jpeg.tar.gz ]; then mkdir -p data && tar -xzf .gpu/cifar10-jpeg.tar.gz -C data/; fi
$PY -c "from src.data.sources import load_cifar; load_cifar('data/cifar10', 'cifar10')" >> "$LOG" 2>&1 &
CACHE_PID=$!

TRAINER=${TRAINER:-gpu}  # TRAINER=cpu STEPS=2 runs this script as a dry run without a GPU
if [ -z "${ONLY_ACCURACY:-}" ]; then  # ONLY_ACCURACY=1: phase 2 alone
say "1. smoke"
COMMON="logger=none trainer.enable_progress_bar=false trainer=$TRAINER"
if ! $PY -m src.train $COMMON output_dir=/tmp/gpu_smoke/er >> "$LOG" 2>&1 ||
   ! $PY -m src.train $COMMON baseline=derpp labels=ddn trainer.precision=bf16-mixed output_dir=/tmp/gpu_smoke/derpp_ddn_bf16 >> "$LOG" 2>&1; then
  say "smoke FAILED (see above)"; exit 1
fi
grep -h "^final" "$LOG" | tail -2
fi
wait $CACHE_PID || { say "CIFAR-10 cache FAILED"; exit 1; }

if [ -z "${ONLY_COST:-}" ]; then  # ONLY_COST=1: phases 1 and 3
say "2. accuracy (${ACC_S}s)"
# several processes share the GPU; MPS (when it starts) lets their small kernels run concurrently
if [ "$TRAINER" = gpu ] && command -v nvidia-cuda-mps-control >/dev/null && nvidia-cuda-mps-control -d 2>>"$LOG"; then
  $PY -c "import torch; torch.zeros(1, device='cuda').sum().item()" 2>>"$LOG" && say "MPS on" ||
    { echo quit | nvidia-cuda-mps-control; say "MPS off (client failed)"; }
fi
pack() { (cd bench/out && find cifar_online_gpu -name results.json | tar -czf "$OUT_DIR/runs.tgz.tmp" -T -) 2>/dev/null &&
         mv "$OUT_DIR/runs.tgz.tmp" "$OUT_DIR/runs.tgz"; }
# most-wanted first: ER, DER++, ER-ACE with and without DDN (3 seeds), then ER seeds 3-4, then CLS-ER
jobs=()
for seed in 0 1 2; do for m in er derpp erace; do for l in hard ddn; do jobs+=("${m}_$l $seed"); done; done; done
for seed in 3 4; do jobs+=("er_hard $seed" "er_ddn $seed"); done
for seed in 0 1 2; do jobs+=("clser_hard $seed" "clser_ddn $seed"); done
[ -n "${JOBS_FILE:-}" ] && mapfile -t jobs < "$JOBS_FILE"  # "TAG SEED" per line, to run another share
printf '%s\n' "${jobs[@]}" | timeout "$ACC_S" xargs -P "${WORKERS:-11}" -L 1 sh -c \
  "$PY bench/run.py cifar_online --out cifar_online_gpu --no-report --threads 1 --only \$0 --first-seed \$1 --seeds 1 --extra trainer=$TRAINER checkpoint.enabled=false >> '$LOG' 2>&1" &
ACC_PID=$!
while kill -0 $ACC_PID 2>/dev/null; do sleep 20; pack; done
pkill -f "bench/run.py cifar_online" 2>/dev/null  # timeout stops xargs, not the runs it started
pack
$PY -m src.report bench/out/cifar_online_gpu > "$OUT_DIR/accuracy.md" 2>> "$LOG"
pgrep -f nvidia-cuda-mps >/dev/null && { echo quit | nvidia-cuda-mps-control; sleep 2; }
fi
[ -n "${ONLY_ACCURACY:-}" ] && { say "done"; exit 0; }
say "3. cost"
# the second cell: the opt-in closed-form hypergradient (BENCHMARKS 4f), measured only by op count so far
CELLS=${CELLS:-"online 32-true,online 32-true ddn.hypergrad=analytic,offline 32-true,online bf16-mixed,offline bf16-mixed"}
IFS=, read -ra cells <<< "$CELLS"
CELL_TXT=$(mktemp)  # one cell's output; private, so two runs of this script at once do not mix their cells
for spec in "${cells[@]}"; do
  set -- $spec
  extra=${3:-}
  echo "cell: $spec" >> "$OUT_DIR/cost.md"
  variants=("er+ddn (head)")
  [ "$2" = 32-true ] && [ -z "$extra" ] && [ "${FULL:-1}" = 1 ] && variants+=("er+ddn (full)")  # fp32 only
  profiled=(); [ "$1 $2" = "online 32-true" ] && profiled=(--count-ops)
  n=$(( (${#variants[@]} + 1) * (2 + ${#profiled[@]}) ))  # fresh processes in this cell, 20–28 s each on the H200
  timeout ${COST_S:-$((30 * n))} $PY bench/cost.py --steps ${STEPS:-100} --repeats 2 "${profiled[@]}" --variants "${variants[@]}" \
    --extra trainer=$TRAINER setting=$1 trainer.precision=$2 $extra > "$CELL_TXT" 2>> "$LOG" || say "cost $spec FAILED"
  cat "$CELL_TXT" >> "$LOG"; grep -E "^(\||seq_)" "$CELL_TXT" | tee -a "$OUT_DIR/cost.md"
done
rm -f "$CELL_TXT"

say "done"
