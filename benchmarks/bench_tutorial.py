"""Side by side: the tutorial's own Keras code, PyTorch eager and nabiya on stateful2 (one run, interleaved).

Usage::

    python -m venv /tmp/kerasenv && /tmp/kerasenv/bin/pip install keras tensorflow-cpu   # benchmark only
    pip install torch==2.13.0                                                            # benchmark only
    python benchmarks/bench_tutorial.py --keras-python /tmp/kerasenv/bin/python
    python benchmarks/bench_tutorial.py --keras-python /tmp/kerasenv/bin/python --repeats 3 --keras-epochs 12

What is measured, each in a fresh process, the three interleaved ``--repeats`` times so that all
see the same background load:

- **Keras**: the tutorial's stateful2 code (section "입력 속성이 여러 개인 모델 구성", 전체 소스),
  adapted minimally to Keras 3: ``np_utils.to_categorical`` -> ``keras.utils.to_categorical``,
  ``batch_input_shape=(1, 4, 2)`` -> ``keras.Input(batch_shape=(1, 4, 2))``, ``model.reset_states()`` ->
  ``model.layers[0].reset_state()``, ``verbose=0`` instead of printing every epoch, and ``--keras-epochs`` epochs of its loop (``fit(epochs=1, batch_size=1,
  shuffle=False)`` then ``reset_states()``) instead of 2000. The steady per-epoch time is the median
  over the epochs after the first two (which build and trace); the 2000-epoch figure is
  extrapolated from it, plus the measured start-up (imports, model build, first epochs).
- **PyTorch eager**: ``bench_train.py``'s worker (one thread), ``--torch-epochs`` epochs, extrapolated.
- **nabiya**: ``nabiya run stateful2 --quiet`` end to end (the process's wall time, the JAX
  compilation cache warm, as a user's second run), and its training time as it prints it.

The ratios printed are Keras / nabiya and PyTorch / nabiya, for the whole run and for training
alone. The package never imports Keras, TensorFlow or PyTorch.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

from machine import cpu_name  # benchmarks/machine.py

HERE = os.path.dirname(os.path.abspath(__file__))

KERAS_CODE = r'''
import json, sys, time
started = time.perf_counter()
import numpy as np
import keras
from keras.models import Sequential
from keras.layers import Dense, LSTM

np.random.seed(5)
keras.utils.set_random_seed(5)

def seq2dataset(seq, window_size):
    dataset_X, dataset_Y = [], []
    for i in range(len(seq) - window_size):
        subset = seq[i : (i + window_size + 1)]
        for si in range(len(subset) - 1):
            dataset_X.append(code2features(subset[si]))
        dataset_Y.append([code2idx[subset[window_size]]])
    return np.array(dataset_X), np.array(dataset_Y)

def code2features(code):
    return [code2scale[code[0]] / float(max_scale_value), code2length[code[1]]]

code2scale = {'c':0, 'd':1, 'e':2, 'f':3, 'g':4, 'a':5, 'b':6}
code2length = {'4':0, '8':1}
code2idx = {'c4':0, 'd4':1, 'e4':2, 'f4':3, 'g4':4, 'a4':5, 'b4':6,
            'c8':7, 'd8':8, 'e8':9, 'f8':10, 'g8':11, 'a8':12, 'b8':13}
max_scale_value = 6.0
seq = ['g8', 'e8', 'e4', 'f8', 'd8', 'd4', 'c8', 'd8', 'e8', 'f8', 'g8', 'g8', 'g4',
       'g8', 'e8', 'e8', 'e8', 'f8', 'd8', 'd4', 'c8', 'e8', 'g8', 'g8', 'e8', 'e8', 'e4',
       'd8', 'd8', 'd8', 'd8', 'd8', 'e8', 'f4', 'e8', 'e8', 'e8', 'e8', 'e8', 'f8', 'g4',
       'g8', 'e8', 'e4', 'f8', 'd8', 'd4', 'c8', 'e8', 'g8', 'g8', 'e8', 'e8', 'e4']
x_train, y_train = seq2dataset(seq, window_size=4)
x_train = np.reshape(x_train, (50, 4, 2))
y_train = keras.utils.to_categorical(y_train)            # Keras 3: was np_utils.to_categorical
one_hot_vec_size = y_train.shape[1]

model = Sequential()
model.add(keras.Input(batch_shape=(1, 4, 2)))             # Keras 3: was batch_input_shape=(1, 4, 2)
model.add(LSTM(128, stateful=True))
model.add(Dense(one_hot_vec_size, activation='softmax'))
model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['accuracy'])

epoch_seconds = []
for epoch_idx in range(int(sys.argv[1])):
    t = time.perf_counter()
    model.fit(x_train, y_train, epochs=1, batch_size=1, verbose=0, shuffle=False)
    model.layers[0].reset_state()                          # Keras 3: was model.reset_states()
    epoch_seconds.append(time.perf_counter() - t)
print(json.dumps({"total_s": time.perf_counter() - started, "epoch_s": epoch_seconds,
                  "keras": keras.__version__, "backend": keras.backend.backend()}))
'''


def run_keras(python: str, epochs: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(KERAS_CODE)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow")}
    try:
        done = subprocess.run([python, handle.name, str(epochs)], capture_output=True, text=True, env=env)
    finally:
        os.unlink(handle.name)
    if done.returncode:
        raise SystemExit(f"the Keras code failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    steady = statistics.median(result["epoch_s"][2:])
    startup = result["total_s"] - steady * (epochs - 2)  # imports, build, the first two epochs
    return {**result, "steady_epoch_s": steady, "startup_s": startup}


def run_nabiya(cache: str) -> dict:
    env = {**os.environ, "NABIYA_CACHE_DIR": cache}
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "nabiya", "run", "stateful2", "--quiet", "--out", out + "/run"],
                              capture_output=True, text=True, env=env)
        total = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"nabiya run failed:\n{done.stderr[-3000:]}")
    line = done.stdout.strip().splitlines()[-1]  # "stateful2: accuracy 100%, ..., 100% at epoch 78, 4.5 s"
    return {"total_s": total, "train_s": float(re.findall(r"([\d.]+) s", line)[-1]), "line": line}


def run_torch(epochs: int) -> dict:
    done = subprocess.run([sys.executable, os.path.join(HERE, "bench_train.py"), "--worker", "torch",
                           "--epochs", str(epochs), "--torch-adam", "default"], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the PyTorch worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keras-python", required=True, help="a Python with keras and tensorflow-cpu installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keras-epochs", type=int, default=12, help="epochs Keras runs (>= 5); 2000 extrapolated")
    parser.add_argument("--torch-epochs", type=int, default=100, help="epochs PyTorch runs; 2000 extrapolated")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args(argv)

    epochs = 2000
    print(f"the tutorial's stateful2 (LSTM 128, batch 1, 50 windows, {epochs} epochs), side by side; "
          f"medians of {args.repeats} interleaved runs")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {datetime.date.today().isoformat()}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    cache = tempfile.mkdtemp(prefix="nabiya-bench-cache-")
    run_nabiya(cache)  # fill the compilation cache: the runs below are a user's second run
    keras_runs, torch_runs, nabiya_runs = [], [], []
    for repeat in range(args.repeats):
        keras_runs.append(run_keras(args.keras_python, args.keras_epochs))
        nabiya_runs.append(run_nabiya(cache))
        if not args.skip_torch:
            torch_runs.append(run_torch(args.torch_epochs))
        print(f"  run {repeat + 1}: Keras {keras_runs[-1]['steady_epoch_s'] * 1e3:.0f} ms/epoch, "
              f"nabiya {nabiya_runs[-1]['total_s']:.2f} s end to end ({nabiya_runs[-1]['train_s']:.2f} s training)"
              + (f", PyTorch {torch_runs[-1]['us_per_step']:.0f} µs/step" if torch_runs else ""), flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")

    med = statistics.median
    keras_epoch = med(r["steady_epoch_s"] for r in keras_runs)
    keras_train = keras_epoch * epochs
    keras_total = keras_train + med(r["startup_s"] for r in keras_runs)
    nabiya_total = med(r["total_s"] for r in nabiya_runs)
    nabiya_train = med(r["train_s"] for r in nabiya_runs)
    rows = [("", "end to end, s", "training, s", "per epoch, ms"),
            (f"Keras {keras_runs[0]['keras']} ({keras_runs[0]['backend']}), extrapolated", f"{keras_total:.0f}",
             f"{keras_train:.0f}", f"{keras_epoch * 1e3:.1f}"),
            ("nabiya run (warm cache)", f"{nabiya_total:.2f}", f"{nabiya_train:.2f}", f"{nabiya_train / epochs * 1e3:.2f}")]
    if torch_runs:
        torch_train = med(r["us_per_step"] for r in torch_runs) * 50 * epochs / 1e6
        rows.insert(2, ("PyTorch eager, 1 thread, extrapolated", "", f"{torch_train:.0f}",
                        f"{torch_train / epochs * 1e3:.1f}"))
    width = max(len(row[0]) for row in rows)
    for row in rows:
        print(f"{row[0]:<{width}}  {row[1]:>14}  {row[2]:>12}  {row[3]:>14}")
    print(f"\nKeras / nabiya: {keras_total / nabiya_total:.0f}x end to end, {keras_train / nabiya_train:.0f}x training "
          "(goal: at least 60x end to end)")
    if torch_runs:
        print(f"PyTorch / nabiya: {torch_train / nabiya_train:.0f}x training")


if __name__ == "__main__":
    main()
