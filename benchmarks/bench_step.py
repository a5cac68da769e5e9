"""One stateful2 training step, formulated several ways: which Adam is fastest, and which is exact.

Usage::

    python benchmarks/bench_step.py                    # 100 epochs (5,000 steps) per timing, 5 interleaved repeats
    python benchmarks/bench_step.py --epochs 50 --repeats 3

Each variant is the training loop of ``nabiya.training`` (one window per step, state carried,
the same XLA:CPU options), compiled once, timed on the same initial weights:

- ``optax``: ``optax.adam`` as nabiya trains (the reference);
- ``fused``: a hand-written Adam with optax's exact formula, per parameter array:
  ``m/(1-b1^t) / (sqrt(v/(1-b2^t)) + eps) * -lr``;
- ``flat``: the same, over all parameters raveled into one flat vector;
- ``folded``: the bias corrections folded into two scalars per step:
  ``p - lr*sqrt(1-b2^t)/(1-b1^t) * m / (sqrt(v) + eps*sqrt(1-b2^t))`` (mathematically identical);
- ``rsqrt``: an approximation, ``m * rsqrt(v + eps_hat^2)`` in place of ``m / (sqrt(v) + eps_hat)``;
- ``sgd``: plain SGD, to show the LSTM's own forward and backward cost.

Printed per variant: whether its loss history equals optax's bit for bit (else the largest
relative difference, which grows chaotically over the epochs), the first epoch at 100%, and the
median CPU and wall time per step. CPU time is the process's, which other work on a shared
machine disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import resource

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

from machine import cpu_name  # benchmarks/machine.py
from nabiya.config import preset
from nabiya.experiment import build_model, prepare, resolve_song
from nabiya.models import trainable
from nabiya.training import _XLA_CPU_OPTIONS

VARIANTS = ("optax", "fused", "flat", "folded", "rsqrt", "sgd")


def make_loop(kind: str, static, windows, targets, epochs: int):
    def loss_fn(params, window, target, state):
        logits, state = eqx.combine(params, static)(window, state)
        return optax.softmax_cross_entropy_with_integer_labels(logits, target), (state, logits)

    @functools.partial(jax.jit, compiler_options=_XLA_CPU_OPTIONS)
    def loop(params, lr, b1, b2, eps):
        if kind == "flat":
            params, unravel = ravel_pytree(params)
            loss = lambda flat, *args: loss_fn(unravel(flat), *args)  # noqa: E731
        else:
            loss = loss_fn
        zeros = jax.tree.map(jnp.zeros_like, params)
        opt = (jnp.zeros([], jnp.int32), zeros, zeros)

        def update(grads, opt, params):
            count, mu, nu = opt
            if kind == "sgd":
                return jax.tree.map(lambda p, g: p - lr * g, params, grads), opt
            if kind == "optax":
                state = (optax.ScaleByAdamState(count, mu, nu), optax.EmptyState())
                updates, (state, _) = optax.adam(lr, b1=b1, b2=b2, eps=eps).update(grads, state, params)
                return optax.apply_updates(params, updates), (state.count, state.mu, state.nu)
            count = count + 1
            mu = jax.tree.map(lambda g, m: (1 - b1) * g + b1 * m, grads, mu)
            nu = jax.tree.map(lambda g, v: (1 - b2) * (g**2) + b2 * v, grads, nu)
            c1, c2 = 1 - b1**count, 1 - b2**count
            if kind in ("fused", "flat"):
                step = lambda p, m, v: p + ((m / c1) / (jnp.sqrt(v / c2) + eps)) * (-lr)  # noqa: E731
            elif kind == "folded":
                size, eps_hat = lr * jnp.sqrt(c2) / c1, eps * jnp.sqrt(c2)
                step = lambda p, m, v: p - size * m / (jnp.sqrt(v) + eps_hat)  # noqa: E731
            else:  # rsqrt
                size, eps_hat = lr * jnp.sqrt(c2) / c1, eps * jnp.sqrt(c2)
                step = lambda p, m, v: p - size * m * jax.lax.rsqrt(v + eps_hat * eps_hat)  # noqa: E731
            return jax.tree.map(step, params, mu, nu), (count, mu, nu)

        def epoch(carry, _):
            params, opt = carry

            def one(carry, sample):
                params, opt, state = carry
                (value, (state, logits)), grads = jax.value_and_grad(loss, has_aux=True)(params, *sample, state)
                params, opt = update(grads, opt, params)
                return (params, opt, state), (value, jnp.argmax(logits) == sample[1])

            initial = eqx.combine(params if kind != "flat" else unravel(params), static).initial_state()
            (params, opt, _), (losses, correct) = jax.lax.scan(one, (params, opt, initial), (windows, targets))
            return (params, opt), (losses.mean(), correct.mean())

        _, (losses, accuracies) = jax.lax.scan(epoch, (params, opt), None, length=epochs)
        return losses, accuracies

    return loop


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    args = parser.parse_args(argv)

    config = preset("stateful2")
    data = prepare(config, resolve_song(None))
    model, _ = build_model(config, data)
    params, static = eqx.partition(model, trainable(model))
    windows, targets = jnp.asarray(data.windows.inputs), jnp.asarray(data.windows.targets)
    hyper = tuple(jnp.float32(v) for v in (1e-3, 0.9, 0.999, 1e-7))
    loops = {kind: make_loop(kind, static, windows, targets, args.epochs) for kind in args.variants}
    histories = {kind: [np.asarray(x) for x in jax.block_until_ready(loop(params, *hyper))] for kind, loop in loops.items()}

    def cpu():
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    times = {kind: [] for kind in loops}
    steps = args.epochs * len(targets)
    for _ in range(args.repeats):  # interleaved
        for kind, loop in loops.items():
            wall, used = -datetime.datetime.now().timestamp(), -cpu()
            jax.block_until_ready(loop(params, *hyper))
            times[kind].append(((wall + datetime.datetime.now().timestamp()) / steps * 1e6, (used + cpu()) / steps * 1e6))
    print(f"stateful2 step variants, {args.epochs} epochs = {steps:,} steps per timing, {args.repeats} repeats")
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores; jax {jax.__version__}, optax {optax.__version__}; "
          f"{datetime.date.today().isoformat()}; load average {os.getloadavg()[0]:.2f}")
    reference = histories.get("optax", next(iter(histories.values())))[0]
    print(f"{'variant':<8} {'CPU µs/step':>12} {'wall µs/step':>13}  {'first 100%':>10}  loss history vs optax")
    for kind in loops:
        losses, accuracies = histories[kind]
        cpu_us = np.median([t[1] for t in times[kind]])
        wall_us = np.median([t[0] for t in times[kind]])
        reached = np.flatnonzero(accuracies >= 1.0)
        same = np.array_equal(losses, reference)
        difference = "bit-identical" if same else f"differs: max relative {np.max(np.abs(losses / reference - 1)):.1e}"
        print(f"{kind:<8} {cpu_us:>12.1f} {wall_us:>13.1f}  {int(reached[0]) + 1 if reached.size else '—':>10}  {difference}")


if __name__ == "__main__":
    main()
