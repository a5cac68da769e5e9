#!/usr/bin/env bash
# nabiya on a GPU, in one run (the README's "On a GPU" figures): corpus training throughput, the PyTorch
# twins on the same device, the tutorial's four presets, and one process of the distributed benchmark.
#
#   bash benchmarks/gpu_check.sh            # logs into $OUT (default: ./gpu-results)
#
# The GPU machine it was made for is offline: wheels of what it lacks (music21 10.5.1, jsonschema and their
# pure-Python needs) wait in ./.whl, and the corpus is a .jsonl file (CORPUS=...).
set -o pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}; mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=$PWD/src:/tmp/site PYTHONUNBUFFERED=1 MPLBACKEND=Agg
CORPUS=${CORPUS:-runs/gpu/folk_corpus.jsonl}   # a .jsonl corpus: the device machine has no music21 books
{ nvidia-smi -L; nproc; python3 -c "import jax, equinox, optax; print('jax', jax.__version__, jax.devices())"; } 2>&1 | tee $OUT/machine.log
echo "== corpus throughput (nabiya)"
timeout 170 python3 benchmarks/bench_corpus_train.py --corpus $CORPUS --blocks 10 2>&1 | tee $OUT/corpus_nabiya.log
echo "== corpus throughput and quality (PyTorch twins on the GPU)"
timeout 200 python3 benchmarks/bench_corpus_torch.py --corpus $CORPUS --steps 100 2>&1 | tee $OUT/corpus_torch.log
echo "== the tutorial's four presets on the GPU"
timeout 150 python3 - <<'PY' 2>&1 | tee $OUT/tutorial.log
import time, nabiya
for preset in ("stateful2", "stateful", "lstm", "mlp"):
    start = time.perf_counter()
    result = nabiya.run(preset, progress=False)
    print(preset, f"accuracy {result.accuracy:.4f}", f"one-step {result.one_step.matches}/50",
          f"full song {result.full_song.matches}/50", f"{time.perf_counter() - start:.1f} s", flush=True)
PY
echo "== one process on the GPU (distributed benchmark)"
timeout 100 python3 benchmarks/bench_distributed.py --corpus $CORPUS --steps 40 --configurations "1 process" 2>&1 | tee $OUT/distributed.log
