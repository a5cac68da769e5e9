"""Time the stateful2 training (2000 epochs, 100,000 Adam steps) against plain PyTorch eager.

Usage::

    python benchmarks/bench_train.py                        # 3 repeats; PyTorch timed on 200 epochs
    python benchmarks/bench_train.py --torch-epochs 2000    # PyTorch in full (~1.5 min a run), accuracy checked
    python benchmarks/bench_train.py --repeats 5 --epochs 500
    python benchmarks/bench_train.py --skip-torch           # nabiya only

What is measured, per repeat, each in a fresh Python process (so compilation is paid every time,
as a user's first run pays it; the JAX persistent compilation cache is switched off):

- **nabiya**: the tutorial's ``stateful2`` preset through the public API, from ``make_model`` to
  trained parameters ready (``train`` returns them synchronised). Reported apart: the model build
  (its initialisation compiles too), the compilation of the training block (the first block's
  time less a steady block's), and the steady-state time per Adam step (median over the blocks
  after the first). Importing JAX and building the song's arrays are not counted.
- **PyTorch eager**: the same training written the plain PyTorch way: ``nn.LSTM(2, 128,
  batch_first=True)`` and ``nn.Linear(128, 12)`` starting from nabiya's initial weights (so the
  first window's loss is the same), Adam (lr 1e-3, betas 0.9/0.999, eps 1e-7), batch 1, the 50 windows in
  song order, ``(h, c)`` carried from window to window with ``.detach()`` and reset each epoch,
  ``torch.set_num_threads(1)`` (on a small shared machine more threads make this workload far
  slower). Timed from building the modules to the last step. With ``--torch-epochs`` fewer than
  ``--epochs`` the time is extrapolated linearly (per-step cost is constant in eager mode), and
  the output says so; the 100%-accuracy check needs the full run.

The table shows medians over ``--repeats``; the machine's load average is printed because other
work on a shared machine shows up in the timings. PyTorch is a benchmark-only dependency
(``pip install torch==2.13.0``, the ``bench`` extra); the package never imports it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

from machine import cpu_name  # benchmarks/machine.py

PRESET = "stateful2"
TARGET_SECONDS = 5.0


def tutorial_data():
    """The preset's config, its token windows and targets, make_model's arguments, keys, and the windows' features."""
    import jax

    from nabiya.config import preset
    from nabiya.data import count_classes, make_windows
    from nabiya.encoding import Vocabulary
    from nabiya.music.songs import nabiya

    config = preset(PRESET)
    song = nabiya()
    vocabulary = Vocabulary.for_notes(song.notes)
    windows = make_windows(vocabulary.encode(song.notes), config.window)
    table = vocabulary.feature_table(config.model.features)
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    model_args = dict(feature_table=table, window=config.window, n_classes=count_classes(windows))
    return config, windows.inputs, windows.targets, model_args, init_key, train_key, windows.features(table)


def first_perfect_epoch(accuracies) -> int | None:
    """1-based epoch of the first 100% training accuracy, or None."""
    for epoch, accuracy in enumerate(accuracies, start=1):
        if accuracy == 1.0:
            return epoch
    return None


# ---------------------------------------------------------------------------------------------
# Workers: each runs in its own process and prints one JSON line.


def nabiya_worker(epochs: int) -> dict:
    import dataclasses

    import jax
    import numpy as np

    from nabiya.models import make_model
    from nabiya.training import train

    config, inputs, targets, model_args, init_key, train_key, _ = tutorial_data()
    train_config = dataclasses.replace(config.train, epochs=epochs)
    block_ends = []

    started = time.perf_counter()
    model = jax.block_until_ready(make_model(config.model, key=init_key, **model_args))
    built = time.perf_counter()
    result = train(model, inputs, targets, train_config, key=train_key,
                   on_progress=lambda *_: block_ends.append(time.perf_counter()))
    finished = time.perf_counter()

    # Block times: the first includes compilation; the other full blocks are steady state (a
    # shorter last block still runs the whole compiled block, skipping its extra epochs).
    blocks = np.diff([built, *block_ends])
    full_blocks = train_config.epochs // train_config.epochs_per_block
    steady = float(np.median(blocks[1:full_blocks])) if full_blocks > 1 else float("nan")
    steps_per_block = train_config.epochs_per_block * len(targets)
    return {
        "total_s": finished - started,
        "build_s": built - started,
        "compile_s": float(blocks[0] - steady),
        "train_s": result.seconds,
        "us_per_step": steady / steps_per_block * 1e6,
        "first_loss": float(result.loss_history[0]),
        "perfect_epoch": first_perfect_epoch(result.accuracy_history),
        "final_accuracy": float(result.accuracy_history[-1]),
    }


def torch_worker(epochs: int, adam: str) -> dict:
    import numpy as np
    import torch
    from torch import nn
    from torch.nn import functional

    torch.set_num_threads(1)
    config, _, targets, model_args, init_key, _, inputs = tutorial_data()
    from nabiya.models import make_model

    initial = make_model(config.model, key=init_key, **model_args)  # same starting weights
    inputs = torch.as_tensor(np.asarray(inputs, np.float32))  # (50, 4, 2)
    targets = torch.as_tensor(np.asarray(targets), dtype=torch.long)  # (50,)
    train_config = config.train

    started = time.perf_counter()
    lstm = nn.LSTM(inputs.shape[-1], config.model.hidden_size, batch_first=True)
    head = nn.Linear(config.model.hidden_size, model_args["n_classes"])
    with torch.no_grad():
        # Same layouts as Equinox: (4H, F) and (4H, H), gates i, f, g, o; one bias.
        lstm.weight_ih_l0.copy_(torch.as_tensor(np.asarray(initial.cell.weight_ih)))
        lstm.weight_hh_l0.copy_(torch.as_tensor(np.asarray(initial.cell.weight_hh)))
        lstm.bias_ih_l0.copy_(torch.as_tensor(np.asarray(initial.cell.bias)))
        lstm.bias_hh_l0.zero_()
        head.weight.copy_(torch.as_tensor(np.asarray(initial.head.weight)))
        head.bias.copy_(torch.as_tensor(np.asarray(initial.head.bias)))
    optimizer = torch.optim.Adam(
        [*lstm.parameters(), *head.parameters()],
        lr=train_config.learning_rate,
        betas=(train_config.beta1, train_config.beta2),
        eps=train_config.epsilon,
        fused=True if adam == "fused" else None,  # None: PyTorch picks, as a plain script gets
    )
    losses, accuracies = [], []
    for _ in range(epochs):
        state = None  # reset_states(): zeros
        loss_sum, correct = 0.0, 0
        for index in range(len(targets)):
            outputs, (h, c) = lstm(inputs[index : index + 1], state)  # (1, 4, H)
            logits = head(outputs[:, -1])  # (1, C)
            loss = functional.cross_entropy(logits, targets[index : index + 1])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state = (h.detach(), c.detach())  # carry the state, no gradient into it
            loss_sum += loss.item()
            correct += int(logits.argmax(-1).item() == targets[index].item())
        losses.append(loss_sum / len(targets))
        accuracies.append(correct / len(targets))
    finished = time.perf_counter()
    return {
        "total_s": finished - started,
        "us_per_step": (finished - started) / (epochs * len(targets)) * 1e6,
        "first_loss": losses[0],
        "perfect_epoch": first_perfect_epoch(accuracies),
        "final_accuracy": accuracies[-1],
    }


def run_worker(kind: str, epochs: int, adam: str) -> dict:
    """Run one timed training in a fresh interpreter, so that it compiles from scratch."""
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
    command = [sys.executable, os.path.abspath(__file__), "--worker", kind, "--epochs", str(epochs),
               "--torch-adam", adam]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"the {kind} worker failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def seconds(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN: one block, no steady state


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3); medians shown")
    parser.add_argument("--epochs", type=int, default=2000, help="epochs of nabiya's run (default 2000)")
    parser.add_argument("--torch-epochs", type=int, default=200,
                        help="epochs PyTorch actually runs; fewer than --epochs are extrapolated (default 200)")
    parser.add_argument("--torch-adam", choices=("default", "fused"), default="default",
                        help="torch.optim.Adam's implementation: the default, or fused=True")
    parser.add_argument("--skip-torch", action="store_true", help="time nabiya only")
    parser.add_argument("--worker", choices=("nabiya", "torch"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker == "nabiya":
        print(json.dumps(nabiya_worker(args.epochs)))
        return
    if args.worker == "torch":
        print(json.dumps(torch_worker(args.epochs, args.torch_adam)))
        return

    import jax

    with_torch = not args.skip_torch
    torch_epochs = min(args.torch_epochs, args.epochs)
    scale = args.epochs / torch_epochs
    print(f"nabiya train benchmark: preset {PRESET}, {args.epochs} epochs x 50 windows = "
          f"{args.epochs * 50:,} sequential Adam steps, batch 1; "
          + (f"medians of {args.repeats} runs" if args.repeats > 1 else "one run"))
    versions = f"jax {jax.__version__}"
    if with_torch:
        import torch

        versions += f", torch {torch.__version__} (1 thread, Adam {args.torch_adam})"
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; {versions}; {datetime.date.today().isoformat()}")
    if hasattr(os, "getloadavg"):  # other processes' work shows up in the timings
        print(f"load average at start: {os.getloadavg()[0]:.2f}")

    nabiya_runs, torch_runs = [], []
    for repeat in range(args.repeats):  # interleaved, so both see the same background load
        nabiya_runs.append(run_worker("nabiya", args.epochs, args.torch_adam))
        line = f"  run {repeat + 1}/{args.repeats}: nabiya {nabiya_runs[-1]['total_s']:.2f} s"
        if with_torch:
            torch_runs.append(run_worker("torch", torch_epochs, args.torch_adam))
            line += f", PyTorch {torch_runs[-1]['total_s'] * scale:.1f} s"
        print(line, flush=True)
    print()

    n_total, n_step = median(nabiya_runs, "total_s"), median(nabiya_runs, "us_per_step")
    n_perfect = nabiya_runs[0]["perfect_epoch"]  # the same every run: training is deterministic
    rows = [
        ("", "nabiya (JAX)", "PyTorch eager", "PyTorch / nabiya"),
        ("wall time, s (build to trained)", f"{n_total:.2f}", "", ""),
        ("  model build, s", f"{median(nabiya_runs, 'build_s'):.2f}", "", ""),
        ("  compilation, s", seconds(median(nabiya_runs, "compile_s")), "", ""),
        ("steady state, µs per step", seconds(n_step, 1), "", ""),
        ("mean loss, epoch 1", f"{nabiya_runs[0]['first_loss']:.4f}", "", ""),
        ("100% training accuracy from", f"epoch {n_perfect}" if n_perfect else "never", "", ""),
    ]
    if with_torch:
        t_total, t_step = median(torch_runs, "total_s") * scale, median(torch_runs, "us_per_step")
        t_perfect = torch_runs[0]["perfect_epoch"]
        torch_cells = [
            f"{t_total:.1f}" + ("" if scale == 1 else " *"),
            "",
            "none",
            f"{t_step:.0f}",
            f"{torch_runs[0]['first_loss']:.4f}",
            (f"epoch {t_perfect}" if t_perfect else "never") if scale == 1 else "not run in full",
        ]
        ratios = {1: f"{t_total / n_total:.1f}x", 4: f"{t_step / n_step:.1f}x" if n_step == n_step else ""}
        rows = [rows[0]] + [
            (label, ours, torch_cells[i], ratios.get(i + 1, "")) for i, (label, ours, _, _) in enumerate(rows[1:])
        ]
    else:
        rows = [row[:2] for row in rows]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        cells = [f"{row[0]:<{widths[0]}}"] + [f"{cell:>{width}}" for cell, width in zip(row[1:], widths[1:])]
        print("  ".join(cells).rstrip())
    if with_torch and scale != 1:
        print(f"\n* PyTorch ran {torch_epochs} epochs a run, timed and extrapolated x{scale:g}; "
              f"--torch-epochs {args.epochs} runs it in full and checks its accuracy")
    if with_torch and scale == 1:
        print(f"\nPyTorch training accuracy in its last epoch: {torch_runs[0]['final_accuracy']:.0%}")
    if args.epochs == 2000:
        print(f"target: nabiya in under {TARGET_SECONDS:g} s, build and compilation included")


if __name__ == "__main__":
    main()
