"""Time a 50-note continuation: one compiled loop per melody against one jitted call per note.

Usage::

    python benchmarks/bench_generate.py                 # freshly initialised stateful2 model
    python benchmarks/bench_generate.py --trained       # train it first (2000 epochs, ~10 s)
    python benchmarks/bench_generate.py --repeats 1000

The model is the tutorial's stateful2 LSTM(128) with 나비야's vocabulary. By default its
weights are freshly initialised: the work per note (four LSTM steps over the window, a
softmax, a sort for top-p, a top-k over width x classes for beam search) does not depend on
the weights, so neither does the time. Every strategy is run once to compile it, then timed
``--repeats`` times through the public :func:`nabiya.generation.generate`, results copied back
to numpy; the table shows the median and the fastest run.

"One jitted call per note" is the tutorial's style: Python runs the loop, calls the compiled
model once per note, and brings each prediction back to pick the next note with ``np.argmax``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.config import preset
from nabiya.data import count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.generation import Beam, Greedy, TopP, continue_greedy, generate
from nabiya.models import make_model
from nabiya.music.songs import nabiya
from nabiya.training import train

from machine import cpu_name  # benchmarks/machine.py

STEPS = 50
TARGET_MS = 2.0

@eqx.filter_jit
def _one_step(model, tokens, state):
    """One note of the tutorial's loop: the window's logits, and the state after it."""
    return model(tokens, state)


def per_note_greedy(model, primer, steps: int) -> np.ndarray:
    """The tutorial's full-song prediction: a Python loop, one compiled call and one argmax per note."""
    window = [int(token) for token in primer]
    initial_state = model.initial_state()
    state = initial_state
    out = []
    for _ in range(steps):
        logits, next_state = _one_step(model, jnp.asarray(window, jnp.int32), state)
        token = int(np.argmax(np.asarray(logits)))
        out.append(token)
        window = window[1:] + [token]
        state = next_state if model.stateful else initial_state
    return np.asarray(out, dtype=np.int32)


def time_ms(run, repeats: int) -> tuple[float, float]:
    run()  # compile
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times), min(times)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=300, help="timed runs per strategy (default 300)")
    parser.add_argument("--trained", action="store_true", help="train the model for 2000 epochs first")
    args = parser.parse_args(argv)

    song = nabiya()
    vocabulary = Vocabulary.for_notes(song.notes)
    indices = vocabulary.encode(song.notes)
    config = preset("stateful2")
    windows = make_windows(indices, config.window)
    table = vocabulary.feature_table(config.model.features)
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    model = make_model(
        config.model, feature_table=table, window=config.window, n_classes=count_classes(windows), key=init_key
    )
    if args.trained:
        model = train(model, windows.inputs, windows.targets, config.train, key=train_key).model
    primer = indices[: config.window]
    key = jax.random.key(0)

    # The per-note loop must compute what the compiled one does, or the comparison means nothing.
    reference = continue_greedy(model, primer, STEPS)
    assert np.array_equal(per_note_greedy(model, primer, STEPS), reference)
    assert np.array_equal(generate(model, primer, STEPS), reference)

    cases = [
        ("greedy, one compiled scan", lambda: generate(model, primer, STEPS, strategy=Greedy())),
        ("top-p 0.9, one compiled scan", lambda: generate(model, primer, STEPS, strategy=TopP(0.9), key=key)),
        ("beam width 4, one compiled scan", lambda: generate(model, primer, STEPS, strategy=Beam(4))),
        ("greedy, one jitted call per note (tutorial style)", lambda: per_note_greedy(model, primer, STEPS)),
    ]  # fmt: skip

    weights = "trained 2000 epochs" if args.trained else "freshly initialised"
    print(f"nabiya generate: a {STEPS}-note continuation, stateful2 LSTM({config.model.hidden_size}), {weights}")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} cores; jax {jax.__version__} on {jax.default_backend()}; "
        f"{datetime.date.today().isoformat()}; {args.repeats} runs each after compiling"
    )
    if hasattr(os, "getloadavg"):  # other work on the machine shows up in the medians
        print(f"load average at start: {os.getloadavg()[0]:.2f}")
    print()
    width = max(len(name) for name, _ in cases)
    print(f"{'strategy':<{width}}  {'median ms':>9}  {'min ms':>7}  {'per note µs':>11}")
    for name, run in cases:
        median, fastest = time_ms(run, args.repeats)
        print(f"{name:<{width}}  {median:>9.3f}  {fastest:>7.3f}  {median / STEPS * 1e3:>11.1f}")
    print(f"\ntarget: under {TARGET_MS:g} ms for a compiled {STEPS}-note continuation")


if __name__ == "__main__":
    main()
