"""Training throughput of the corpus presets: notes (trained positions) per second, compilation excluded.

Usage::

    python benchmarks/bench_corpus_train.py                          # both presets, the default corpus
    python benchmarks/bench_corpus_train.py --preset folk-lstm --blocks 20
    python benchmarks/bench_corpus_train.py --corpus miscFolk --set size=128 batch_size=16

Runs the real training step (:func:`nabiya.corpus_train.train_block`: a block of
``steps_per_block`` AdamW steps in one ``jit``) on the preset's own batches, after one block
that compiles, and prints per preset: parameters, batch, the compile time, and the median
time per block and notes per second over ``--blocks`` timed blocks (a note is a trained
position: a token whose next token is predicted, padding excluded). The batches are made
before timing, so this is the device's speed; ``nabiya train`` makes them ahead on a thread.

A PyTorch twin of the same size is easy to build from the printed config: the LSTM is
embedding (V, E) -> dropout -> ``torch.nn.LSTM(E, H, num_layers=L, dropout=p)`` (gate order
i, f, g, o; one bias: put it in ``bias_ih``, ``bias_hh = 0``) -> dropout -> a head (V, H) plus
a bias (V,), the state carried across chunks with ``detach()`` and zeroed where ``resets``.
Factored (the presets): a token's input vector is ``E[t] + P[parts[t, 0]] + P[parts[t, 1]]``
and its head row ``W[t] + Q[parts[t, 0]] + Q[parts[t, 1]]`` (``parts``: each token's pitch id
and duration id, see ``nabiya.corpus_checkpoint.token_parts``). The transformer is a pre-LN
``TransformerEncoder`` (``norm_first=True``, GELU, 4·D feed-forward, learned positions, head
tied to the embedding) with a causal mask that also keeps attention within each tune
(``segments``). The loss is the mean cross-entropy over ``mask``; AdamW (β 0.9/``beta2``, ε
1e-8, weight decay on matrices), global-norm clipping, linear warm-up then cosine decay.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402


def _value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", action="append", help="folk-lstm and/or folk-transformer (default: both)")
    parser.add_argument("--corpus", nargs="*", default=None)
    parser.add_argument("--blocks", type=int, default=10, help="timed blocks (after the one that compiles)")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="config settings, e.g. size=128")
    args = parser.parse_args()

    import equinox as eqx
    import jax
    import numpy as np

    import nabiya
    from nabiya.corpus_config import corpus_preset
    from nabiya.corpus_checkpoint import token_parts
    from nabiya.corpus_models import make_corpus_model, parameter_count
    from nabiya.corpus_train import _blocks, initial_carry, make_batches, make_optimizer, train_block
    from nabiya.tokens import tokenize_corpus

    print(f"machine: {describe()}, load average {os.getloadavg()[0]:.1f}, jax {jax.__version__}")
    corpus = nabiya.load_corpus(args.corpus)
    settings = {name: _value(value) for name, value in (item.split("=", 1) for item in args.set)}
    print("| preset | parameters | batch B × T | compile (s) | s / block (median) | notes / s |")
    print("|---|---|---|---|---|---|")
    for name in args.preset or ["folk-lstm", "folk-transformer"]:
        config = corpus_preset(name).replace(**settings)
        data = tokenize_corpus(corpus, config.tokens, split=corpus.split(config.corpus.split, seed=config.corpus.split_seed))
        train = config.train
        model = make_corpus_model(config.model, vocab_size=len(data.vocab), key=jax.random.key(train.seed),
                                  token_parts=token_parts(data.vocab))
        params, static = eqx.partition(model, eqx.is_inexact_array)
        opt_state = make_optimizer(train).init(params)
        carry = initial_carry(model, train.batch_size)
        batches = make_batches(config, data.train, data.vocab.is_scored)
        total = train.steps_per_block * (args.blocks + 1)
        stacks = list(_blocks(batches, 0, total, train.steps_per_block))
        key = jax.random.key(1)
        times, notes = [], []
        for index, stack in enumerate(stacks):
            started = time.perf_counter()
            params, opt_state, carry, metrics = train_block(params, opt_state, carry, stack,
                                                            index * train.steps_per_block, total, key, static, train)
            jax.block_until_ready(metrics)
            times.append(time.perf_counter() - started)
            notes.append(int(np.asarray(stack["mask"]).sum()))
        block = statistics.median(times[1:])
        rate = statistics.median(n / t for n, t in zip(notes[1:], times[1:]))
        print(f"| {name} | {parameter_count(model):,} | {train.batch_size} × {train.length} | {times[0]:.1f} | "
              f"{block:.2f} ({train.steps_per_block} steps) | {rate:,.0f} |", flush=True)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
