"""Training throughput of ``nabiya train`` on 1 process, 2 processes, and 1 process with 2 devices, side by side.

Usage::

    python benchmarks/bench_distributed.py                        # folk-lstm on the shared corpus, 50 steps
    python benchmarks/bench_distributed.py --steps 100 --repeats 3 --set --size 128
    python benchmarks/bench_distributed.py --corpus miscFolk --preset folk-transformer
    python benchmarks/bench_distributed.py --only-sizes              # the figures of a plan, no training runs

Each configuration runs the real command, as a user runs it, with the same global batch
(the preset's ``batch_size`` rows, split among the devices), in fresh processes:

- ``1 process``: ``nabiya train ...``
- ``2 processes``: ``nabiya train ... --coordinator 127.0.0.1:PORT --num-processes 2 --process-id I`` (gloo
  over loopback; each process makes half the rows of every batch)
- ``1 process × 2 devices``: ``XLA_FLAGS=--xla_force_host_platform_device_count=2 nabiya train ...``

and reads the figure the command prints, ``N notes/s`` (trained positions per second, the
first block, which compiles, left out). The configurations take turns (``--repeats`` rounds),
so a machine shared with other work slows each alike; the table gives every figure, the
median, and its ratio to one process. On a machine of C cores every configuration shares the
same C cores: this measures the overhead of the split (collectives, smaller matrices per
device), not a speed-up, which needs more cores or machines.

Then (and alone with ``--only-sizes``) the figures a plan for more devices starts from: the
preset's parameters, the bytes each all-reduce sums (the gradients, float32), the tokens of
a step, and how fast one CPU core makes batches (:func:`nabiya.corpus_train.make_batches`,
tokens per second), which bounds the steps per second of a larger run.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import describe  # noqa: E402

SHARED_CORPUS = "/work/shared/data/folk_corpus.jsonl"
CONFIGURATIONS = ("1 process", "2 processes", "1 process × 2 devices")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(**extra: str) -> dict:
    source = str(Path(__file__).resolve().parents[1] / "src")
    return dict(os.environ, PYTHONPATH=source + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra)


def _notes_per_second(stdout: str) -> float:
    found = re.search(r"([\d,]+) notes/s", stdout)
    if not found:
        raise SystemExit(f"no 'notes/s' in the command's output: {stdout!r}")
    return float(found.group(1).replace(",", ""))


def run(configuration: str, train_args: list[str], folder: Path, timeout: float) -> float:
    """One run of ``nabiya train`` in ``configuration``; its notes/s (process 0's line)."""
    command = [sys.executable, "-m", "nabiya", "train", *train_args, "--quiet", "--out"]
    if configuration == "2 processes":
        port = _free_port()
        processes = [subprocess.Popen([*command, str(folder), "--coordinator", f"127.0.0.1:{port}",
                                       "--num-processes", "2", "--process-id", str(index)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_environment())
                     for index in range(2)]  # fmt: skip
        try:
            outputs = [process.communicate(timeout=timeout) for process in processes]
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
        for process, (_, err) in zip(processes, outputs):
            if process.returncode:
                raise SystemExit(f"{configuration}: exit status {process.returncode}: {err.strip()}")
        return _notes_per_second(outputs[0][0])
    extra = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"} if "devices" in configuration else {}
    done = subprocess.run([*command, str(folder)], capture_output=True, text=True, env=_environment(**extra),
                          timeout=timeout)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{configuration}: exit status {done.returncode}: {done.stderr.strip()}")
    return _notes_per_second(done.stdout)


def sizes(preset: str, corpus: list[str], batches: int = 50) -> None:
    """The preset's parameters and all-reduce bytes, tokens per step, and the speed of making batches."""
    import nabiya
    from nabiya.corpus_checkpoint import token_parts
    from nabiya.corpus_config import corpus_preset
    from nabiya.corpus_models import make_corpus_model, parameter_count
    from nabiya.corpus_train import make_batches
    from nabiya.tokens import tokenize_corpus

    import jax

    loaded = nabiya.load_corpus(corpus)
    for name in (preset, *(other for other in ("folk-lstm", "folk-transformer") if other != preset)):
        config = corpus_preset(name)
        data = tokenize_corpus(loaded, config.tokens, split=loaded.split(config.corpus.split,
                                                                         seed=config.corpus.split_seed))  # fmt: skip
        model = make_corpus_model(config.model, vocab_size=len(data.vocab), key=jax.random.key(0),
                                  token_parts=token_parts(data.vocab))  # fmt: skip
        parameters = parameter_count(model)
        train = config.train
        maker = make_batches(config, data.train, data.vocab.is_scored)
        maker.batch(0)  # the epoch's layout
        started = time.perf_counter()
        for step in range(1, batches + 1):
            maker.batch(step)
        seconds = (time.perf_counter() - started) / batches
        tokens = sum(len(sequence) for sequence in data.train)
        print(f"{name}: {parameters:,} parameters = {4 * parameters / 1e6:.1f} MB per all-reduce (float32); "
              f"{train.batch_size} × {train.length} = {train.batch_size * train.length:,} tokens a step; "
              f"training tokens {tokens:,}; one core makes a batch in {1e3 * seconds:.1f} ms "
              f"= {train.batch_size * train.length / seconds:,.0f} tokens/s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="folk-lstm")
    parser.add_argument("--corpus", nargs="+", default=None,
                        help=f"the corpus (default: {SHARED_CORPUS} where it exists, else miscFolk)")
    parser.add_argument("--steps", type=int, default=50, help="steps of each run (the first block compiles)")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of all the configurations")
    parser.add_argument("--configurations", nargs="+", default=list(CONFIGURATIONS), choices=CONFIGURATIONS)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    parser.add_argument("--only-sizes", action="store_true", help="no training runs: only the figures of a plan")
    parser.add_argument("--set", nargs=argparse.REMAINDER, default=[], help="more options of nabiya train, last")
    args = parser.parse_args()

    corpus = args.corpus or ([SHARED_CORPUS] if os.path.exists(SHARED_CORPUS) else ["miscFolk"])
    train_args = ["--corpus", *corpus, "--preset", args.preset, "--steps", str(args.steps), *args.set]
    print(f"machine: {describe()}")
    if args.only_sizes:
        sizes(args.preset, corpus)
        return
    print(f"command: nabiya train {' '.join(train_args)} --quiet --out RUN  [+ the configuration's options]")
    figures: dict[str, list[float]] = {name: [] for name in args.configurations}
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as scratch:
        for round_number in range(args.repeats):
            for name in args.configurations:
                started = time.perf_counter()
                folder = Path(scratch) / f"{round_number}-{len(figures[name])}-{name.replace(' ', '_')}"
                figures[name].append(run(name, train_args, folder, args.timeout))
                print(f"  round {round_number + 1}, {name}: {figures[name][-1]:,.0f} notes/s "
                      f"({time.perf_counter() - started:.0f} s in all)", flush=True)
    base = statistics.median(figures[args.configurations[0]])
    print(f"\n{'configuration':<24} {'notes/s (each run)':<28} {'median':>8} {'ratio':>6}")
    for name, values in figures.items():
        median = statistics.median(values)
        each = ", ".join(f"{value:,.0f}" for value in values)
        print(f"{name:<24} {each:<28} {median:>8,.0f} {median / base:>6.2f}")
    print()
    sizes(args.preset, corpus)


if __name__ == "__main__":
    main()
