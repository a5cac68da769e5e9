"""Time a sweep of many seeds against one seed, side by side in one run (stateful2 on 나비야).

Usage::

    python benchmarks/bench_sweep.py                     # 32 seeds x 2000 epochs against one seed, 2 repeats
    python benchmarks/bench_sweep.py --epochs 200 --repeats 1
    python benchmarks/bench_sweep.py --vectorized 8      # also time 8 seeds vmapped (the road not taken)

Each measurement is a fresh process (the persistent compilation cache off, so each pays its
compilation), interleaved with the others so that all see the same background load:

- **one seed**: ``nabiya.run("stateful2", seed=0)``'s training (``train_seconds``);
- **sweep**: ``nabiya.sweep("stateful2", seeds=range(N))``'s training (``train_seconds``: model
  builds, compilation and every seed's 2000 epochs);
- with ``--vectorized K``: K seeds trained with ``jax.vmap`` over the models of ``train``'s own
  compiled block (one program, one thread), the formulation ``train_many`` does not use; its
  per-seed loss histories are compared with ``train``'s.

Printed: wall and CPU seconds, the ratio sweep / one seed (the goal was at most 4 for 32 seeds),
and the time per seed-step. The load average is printed because other work shows in every figure.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from machine import cpu_name  # benchmarks/machine.py


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def worker(kind: str, seeds: int, epochs: int) -> dict:
    import nabiya

    started, cpu = time.perf_counter(), _cpu()
    if kind == "one":
        result = nabiya.run("stateful2", seed=0, epochs=epochs, progress=False)
        train = result.train_seconds
    elif kind == "sweep":
        result = nabiya.sweep("stateful2", seeds=range(seeds), epochs=epochs, progress=False)
        train = result.train_seconds
    else:
        return vectorized(seeds, epochs)
    return {"train_s": train, "wall_s": time.perf_counter() - started, "cpu_s": _cpu() - cpu}


def vectorized(seeds: int, epochs: int) -> dict:
    """K seeds through jax.vmap of the single-model block: time, and whether each seed's history equals train's."""
    import dataclasses

    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from nabiya.config import preset
    from nabiya.experiment import build_model, prepare, resolve_song
    from nabiya.models import trainable
    from nabiya.training import _XLA_CPU_OPTIONS, _block_arguments, _init_optimizer_state, _train_block, train

    config = preset("stateful2").replace(epochs=epochs)
    data = prepare(config, resolve_song(None))
    started, cpu = time.perf_counter(), _cpu()
    built = [build_model(config.replace(seed=seed), data) for seed in range(seeds)]
    parts = [eqx.partition(model, trainable(model)) for model, _ in built]
    static = parts[0][1]
    params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[p for p, _ in parts])
    opt_state = jax.vmap(_init_optimizer_state)(params)
    keys = jnp.stack([key for _, key in built])
    windows, targets = jnp.asarray(data.windows.inputs), jnp.asarray(data.windows.targets)
    hyperparameters, structure, total = _block_arguments(config.train)

    def block(params, opt_state, first):
        return jax.vmap(lambda p, o, k: _train_block(p, o, static, windows, targets, k, first, total,
                                                      hyperparameters, structure))(params, opt_state, keys)

    block = jax.jit(block, compiler_options=_XLA_CPU_OPTIONS)
    losses = []
    for first in range(0, epochs, config.train.epochs_per_block):
        params, opt_state, block_losses, _ = block(params, opt_state, jnp.int32(first))
        losses.append(np.asarray(block_losses))
    seconds, cpu_seconds = time.perf_counter() - started, _cpu() - cpu
    history = np.concatenate(losses, axis=1)[:, :epochs]
    model, key = built[0]
    alone = train(model, data.windows.inputs, data.windows.targets,
                  dataclasses.replace(config.train, epochs=min(epochs, 20)), key=key).loss_history
    return {"train_s": seconds, "wall_s": seconds, "cpu_s": cpu_seconds,
            "equal_to_train": bool(np.array_equal(history[0, : len(alone)], alone)),
            "max_relative_difference": float(np.max(np.abs(history[0, : len(alone)] / alone - 1)))}


def run_worker(kind: str, seeds: int, epochs: int) -> dict:
    env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--seeds", str(seeds),
               "--epochs", str(epochs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the {kind} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--vectorized", type=int, default=0, metavar="K", help="also time K seeds vmapped")
    parser.add_argument("--worker", choices=("one", "sweep", "vmap"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.seeds, args.epochs)))
        return

    print(f"nabiya sweep benchmark: stateful2 on 나비야, {args.epochs} epochs x 50 windows; {args.seeds} seeds "
          f"against one; medians of {args.repeats} interleaved runs")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {datetime.date.today().isoformat()}; "
          f"load average at start {os.getloadavg()[0]:.2f}")
    runs: dict[str, list[dict]] = {"one": [], "sweep": [], "vmap": []}
    for repeat in range(args.repeats):
        runs["one"].append(run_worker("one", 1, args.epochs))
        runs["sweep"].append(run_worker("sweep", args.seeds, args.epochs))
        if args.vectorized:
            runs["vmap"].append(run_worker("vmap", args.vectorized, args.epochs))
        print(f"  run {repeat + 1}: " + ", ".join(f"{kind} {values[-1]['train_s']:.1f} s" for kind, values in runs.items()
                                                  if values), flush=True)
    print(f"load average at end {os.getloadavg()[0]:.2f}\n")

    def med(kind, key):
        return statistics.median(run[key] for run in runs[kind])

    steps = args.epochs * 50
    one = med("one", "train_s")
    print(f"{'':<28}{'training s':>11}{'CPU s':>8}{'µs per seed-step':>18}{'ratio to one seed':>19}")
    print(f"{'one seed (nabiya.run)':<28}{one:>11.1f}{med('one', 'cpu_s'):>8.1f}{one / steps * 1e6:>18.1f}{1:>19.1f}")
    sweep = med("sweep", "train_s")
    print(f"{f'{args.seeds} seeds (nabiya.sweep)':<28}{sweep:>11.1f}{med('sweep', 'cpu_s'):>8.1f}"
          f"{sweep / steps / args.seeds * 1e6:>18.1f}{sweep / one:>19.1f}")
    if runs["vmap"]:
        vmap = med("vmap", "train_s")
        k = args.vectorized
        print(f"{f'{k} seeds vmapped':<28}{vmap:>11.1f}{med('vmap', 'cpu_s'):>8.1f}{vmap / steps / k * 1e6:>18.1f}"
              f"{vmap / one:>19.1f}   (seed 0's history equal to train's: {runs['vmap'][0]['equal_to_train']}, "
              f"max relative difference {runs['vmap'][0]['max_relative_difference']:.1e} in 20 epochs)")
    print(f"\ngoal: {args.seeds} seeds in at most 4x one seed's time; measured {sweep / one:.1f}x")


if __name__ == "__main__":
    main()
