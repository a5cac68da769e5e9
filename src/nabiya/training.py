"""Training loops, compiled whole: one ``jit`` runs a block of epochs with ``lax.scan``.

Two regimes, as in the tutorial:

- **batched** (``stateful=False``): each epoch shuffles the windows (Keras's ``fit``
  default), cuts them into batches of ``batch_size`` (the last one smaller), and takes
  one Adam step per batch. Every window starts from a reset state.
- **stateful** (``stateful=True``, batch 1): the windows go in song order, one Adam
  step each, and the LSTM state at the end of one window is the initial state of the
  next; the state is reset at the start of each epoch. As in Keras, the state handed on
  is the one computed by the forward pass, before that step's update, and no gradient
  flows back into it (truncated backpropagation over one window).
- **stateful, through several windows** (``backprop_windows = K > 1``, not the tutorial's):
  the windows still go in song order with the state carried, but ``K`` consecutive windows
  make one Adam step, the gradient flowing back through the state carried between them
  (truncated backpropagation through time over ``K`` windows); between two such chunks the
  state is carried without gradient. For songs whose identical passages are told apart only
  by notes further back than one window (see :mod:`nabiya.analysis`). ``K = 1`` is the
  regime above, bit for bit.

Which regime a model trains in is the model's own ``stateful`` flag (see
:mod:`nabiya.models`). The trainer knows nothing of melodies: it sees windows of token
indices and target indices. Python sees only the end of each block (for the progress bar),
never a single step.

Only what changes array shapes or the program's structure is compiled in (the batch size,
shuffling, epochs per block, the model's structure); the number of epochs, the learning rate
and Adam's other hyperparameters are arguments of the compiled block, so changing them
does not compile again.
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nabiya.config import TrainConfig
from nabiya.errors import NabiyaError
from nabiya.models import Model, trainable

# on_progress(epochs_done, epochs_total, last_loss, last_accuracy)
ProgressCallback = Callable[[int, int, float, float], None]


@dataclass(frozen=True)
class TrainResult:
    """What training gives back.

    Attributes:
        model: the trained model.
        loss_history: mean training loss of each epoch, shape ``(epochs,)``, as Keras reports it
            (the mean over the epoch's windows, each computed with the weights of its step).
        accuracy_history: the fraction of the epoch's windows predicted right during training,
            shape ``(epochs,)``.
        seconds: wall time of training, compilation included.
    """

    model: Model
    loss_history: np.ndarray
    accuracy_history: np.ndarray
    seconds: float


# XLA:CPU options for the training loop, measured on the stateful LSTM (batch 1, 100,000
# sequential Adam steps of ~70k parameters; benchmarks/bench_train.py):
# - prefer 512-bit vectors: XLA's default is 256 even on AVX-512 CPUs; Adam's per-element
#   divisions and square root, which bound its update, then take half the instructions
#   (-35% per step on a Zen 5 EPYC). Ignored where the CPU has no 512-bit vectors.
# - no parallel task assignment: it splits Adam's 512x128 updates over the intra-op threads,
#   and the hand-off costs more than it saves: 44.5 µs per step on one thread against 49.4 on
#   two on a quiet 2-core machine, 45 against 75 while another process is busy.
# Both change only how the same float32 operations are scheduled and vectorised; the
# vector width may change the order of a dot's additions (round-off).
_XLA_CPU_OPTIONS = {
    "xla_cpu_prefer_vector_width": 512,
    "xla_disable_hlo_passes": "cpu-parallel-task-assigner",
}


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam with the config's (Keras's default) hyperparameters."""
    return _adam(config.learning_rate, config.beta1, config.beta2, config.epsilon)


def _adam(learning_rate, b1, b2, eps) -> optax.GradientTransformation:
    """Adam; the hyperparameters may be traced scalars, so that changing them does not compile again."""
    return optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)


def train(
    model: Model,
    windows: np.ndarray,
    targets: np.ndarray,
    config: TrainConfig,
    *,
    key: jax.Array,
    on_progress: ProgressCallback | None = None,
    stop: Callable[[Model, float], bool] | None = None,
) -> TrainResult:
    """Train ``model`` to predict ``targets`` from ``windows``, stateful or not as the model is.

    Args:
        model: any model of :mod:`nabiya.models`.
        windows: token indices of each window, shape ``(n_samples, window)``, int, in song order.
        targets: the token after each window, shape ``(n_samples,)``, int.
        config: epochs, batch size, shuffling, optimizer.
        key: PRNG key for the shuffles; the same key gives the same history, bit for bit.
        on_progress: called after each block of epochs.
        stop: called after each block but the last with the model so far and its last
            epoch's accuracy; ``True`` ends the training there (the histories then hold the
            epochs trained, and ``on_progress`` hears once more that the epochs done are all
            of them). Without it, every epoch of ``config.epochs`` trains.

    Returns:
        The trained model and its per-epoch loss and accuracy.

    Example:
        >>> result = train(model, windows.inputs, windows.targets, TrainConfig(epochs=10),
        ...                key=jax.random.key(5))                                  # doctest: +SKIP
    """
    _check_regime(model, config)
    started = time.perf_counter()
    windows = jnp.asarray(windows, dtype=jnp.int32)
    targets = jnp.asarray(targets, dtype=jnp.int32)
    params, static = eqx.partition(model, trainable(model))
    opt_state = _init_optimizer_state(params)
    hyperparameters, structure, total = _block_arguments(config)
    losses, accuracies = [], []
    for first_epoch in range(0, config.epochs, config.epochs_per_block):
        params, opt_state, block_losses, block_accuracies = _compiled_block(
            params, opt_state, static, windows, targets, key, jnp.asarray(first_epoch, dtype=jnp.int32), total,
            hyperparameters, structure,
        )  # fmt: skip
        active = min(config.epochs_per_block, config.epochs - first_epoch)
        losses.append(np.asarray(block_losses)[:active])
        accuracies.append(np.asarray(block_accuracies)[:active])
        if on_progress is not None:
            on_progress(first_epoch + active, config.epochs, float(losses[-1][-1]), float(accuracies[-1][-1]))
        done = first_epoch + active
        if stop is not None and done < config.epochs and stop(eqx.combine(params, static), float(accuracies[-1][-1])):
            if on_progress is not None:  # the training's end: done of done
                on_progress(done, done, float(losses[-1][-1]), float(accuracies[-1][-1]))
            break
    trained = eqx.combine(jax.block_until_ready(params), static)
    return TrainResult(
        model=trained,
        loss_history=np.concatenate(losses),
        accuracy_history=np.concatenate(accuracies),
        seconds=time.perf_counter() - started,
    )


def train_many(
    models: Sequence[Model],
    windows: np.ndarray,
    targets: np.ndarray,
    config: TrainConfig,
    *,
    keys: Sequence[jax.Array],
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    stop: Callable[[Model, float], bool] | None = None,
) -> list[TrainResult]:
    """Train several models of one structure (one per seed, say) on the same windows at once.

    Each model trains exactly as :func:`train` trains it alone, bit for bit: one compiled
    program maps that same training over a group of models (``lax.map``), so a model's
    arithmetic does not depend on the others. The models are split into ``workers`` equal
    groups, and the groups run at the same time in as many threads (JAX releases the GIL
    while a compiled program runs): one program, compiled once, on every core.

    Why not ``vmap`` over the models: their weights differ, so a batch of models shares no
    data: vmapping turns each matrix-vector product into a batched one with no reuse and
    makes the working set (weights, gradients and Adam's two moments, ~1.1 MB a model for
    ``stateful2``) spill out of the core's cache, and it changes the order of additions, so
    a model's loss history would no longer equal :func:`train`'s (see benchmarks/README.md).

    Args:
        models: models with the same structure and shapes (e.g. one preset, several seeds).
        windows, targets, config: as in :func:`train`, shared by all the models.
        keys: one PRNG key per model, as :func:`train`'s ``key``.
        workers: threads (default: the CPU count, at most one per model).
        on_progress: called after each block of epochs with the mean of the models' last
            epoch's loss and accuracy.
        stop: as :func:`train`'s, asked for each model still training: a model it stops
            keeps that block's weights and histories, as :func:`train` would end it (the
            group's program goes on with the others; it ends when every model stopped).

    Returns:
        One :class:`TrainResult` per model, in order; each ``seconds`` is the wall time of
        the whole group's training.

    Example:
        >>> results = train_many([model_a, model_b], windows.inputs, windows.targets, TrainConfig(epochs=10),
        ...                      keys=[jax.random.key(0), jax.random.key(1)])   # doctest: +SKIP
    """
    if not models or len(models) != len(keys):
        raise NabiyaError(f"train_many needs one key per model: {len(models)} models, {len(keys)} keys")
    for model in models:
        _check_regime(model, config)
    started = time.perf_counter()
    windows = jnp.asarray(windows, dtype=jnp.int32)
    targets = jnp.asarray(targets, dtype=jnp.int32)
    parts = [eqx.partition(model, trainable(model)) for model in models]
    static = parts[0][1]
    if any(jax.tree.structure(params) != jax.tree.structure(parts[0][0]) for params, _ in parts):
        raise NabiyaError("train_many trains models of one structure: build them from one config")
    n_models = len(models)
    workers = max(1, min(workers or os.cpu_count() or 1, n_models))
    group_size = math.ceil(n_models / workers)
    # Equal groups, so one program serves them all; the last is padded with copies of its last model.
    padded = [parts[min(i, n_models - 1)][0] for i in range(group_size * workers)]
    padded_keys = [keys[min(i, n_models - 1)] for i in range(group_size * workers)]
    groups = []
    for start in range(0, len(padded), group_size):
        params = jax.tree.map(lambda *leaves: jnp.stack(leaves), *padded[start : start + group_size])
        group_keys = jnp.stack(padded_keys[start : start + group_size])
        groups.append([params, jax.vmap(_init_optimizer_state)(params), group_keys])
    hyperparameters, structure, total = _block_arguments(config)
    losses, accuracies = [], []
    stopped: dict[int, tuple] = {}  # model index -> (its parameters when stopped, epochs trained)

    def run_group(group, first_epoch):
        params, opt_state, group_keys = group
        return _compiled_blocks(params, opt_state, static, windows, targets, group_keys, first_epoch, total,
                                hyperparameters, structure)  # fmt: skip

    with ThreadPoolExecutor(max_workers=len(groups)) as pool:
        for first_epoch in range(0, config.epochs, config.epochs_per_block):
            first = jnp.asarray(first_epoch, dtype=jnp.int32)
            if first_epoch == 0 and len(groups) > 1:  # compile once, before the threads share the program
                outputs = [run_group(groups[0], first)]
                outputs += list(pool.map(lambda group: run_group(group, first), groups[1:]))
            else:
                outputs = list(pool.map(lambda group: run_group(group, first), groups))
            active = min(config.epochs_per_block, config.epochs - first_epoch)
            for group, (params, opt_state, _, _) in zip(groups, outputs):
                group[0], group[1] = params, opt_state
            losses.append(np.concatenate([np.asarray(out[2])[:, :active] for out in outputs])[:n_models])
            accuracies.append(np.concatenate([np.asarray(out[3])[:, :active] for out in outputs])[:n_models])
            done = first_epoch + active
            if on_progress is not None:
                on_progress(done, config.epochs, float(np.mean(losses[-1][:, -1])),
                            float(np.mean(accuracies[-1][:, -1])))  # fmt: skip
            if stop is not None and done < config.epochs:
                for index in range(n_models):
                    if index in stopped:
                        continue
                    params = _member(groups, group_size, index)
                    if stop(eqx.combine(params, static), float(accuracies[-1][index, -1])):
                        stopped[index] = (params, done)
                if len(stopped) == n_models:
                    break
    seconds = time.perf_counter() - started
    jax.block_until_ready([group[0] for group in groups])
    loss_history, accuracy_history = np.concatenate(losses, axis=1), np.concatenate(accuracies, axis=1)
    results = []
    for index in range(n_models):
        params, epochs = stopped.get(index) or (_member(groups, group_size, index), loss_history.shape[1])
        results.append(TrainResult(eqx.combine(params, static), loss_history[index, :epochs],
                                   accuracy_history[index, :epochs], seconds))  # fmt: skip
    return results


def _member(groups: list, group_size: int, index: int):
    """Model ``index``'s parameters, taken out of its group's stacked parameters (a copy)."""
    group, offset = divmod(index, group_size)
    return jax.tree.map(lambda leaf: leaf[offset], groups[group][0])


def _check_regime(model: Model, config: TrainConfig) -> None:
    config.validate()
    if model.stateful and (config.batch_size != 1 or config.shuffle):
        raise NabiyaError("a stateful model trains with batch size 1 and no shuffling: its windows go in song order")


def _block_arguments(config: TrainConfig):
    """The compiled block's arguments that come from the config: traced hyperparameters, the static structure."""
    hyperparameters = tuple(
        jnp.float32(value) for value in (config.learning_rate, config.beta1, config.beta2, config.epsilon)
    )
    structure = _BlockStructure(config.epochs_per_block, config.batch_size, config.shuffle, config.backprop_windows)
    return hyperparameters, structure, jnp.asarray(config.epochs, dtype=jnp.int32)


@dataclass(frozen=True)
class _BlockStructure:
    """What the compiled block is specialised on: the settings that change shapes or structure."""

    epochs_per_block: int
    batch_size: int
    shuffle: bool
    backprop_windows: int = 1


# Compiled once per model structure: run eagerly, the zeros of each parameter's shape compile
# one by one. Adam's state does not depend on its hyperparameters.
@eqx.filter_jit
def _init_optimizer_state(params) -> optax.OptState:
    return _adam(1e-3, 0.9, 0.999, 1e-7).init(params)


def _train_block(
    params, opt_state, static, windows, targets, key, first_epoch, total_epochs, hyperparameters,
    structure: _BlockStructure,
):  # fmt: skip
    """Run ``structure.epochs_per_block`` epochs from ``first_epoch``; epochs past the total are skipped.

    Returns the new parameters and optimizer state and, per epoch of the block, the mean
    loss and accuracy (NaN for skipped epochs). One compilation serves every block,
    the last, shorter one included, and any number of epochs and any learning rate.
    """
    optimizer = _adam(*hyperparameters)
    n_samples = targets.shape[0]
    stateful = eqx.combine(params, static).stateful

    def loss_and_state(params, window, target, state):
        model = eqx.combine(params, static)
        logits, state = model(window, state)
        return optax.softmax_cross_entropy_with_integer_labels(logits, target), (state, logits)

    def stateful_epoch(params, opt_state, epoch):
        def step(carry, sample):
            params, opt_state, state = carry
            window, target = sample
            (loss, (state, logits)), grads = jax.value_and_grad(loss_and_state, has_aux=True)(
                params, window, target, state
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state, state), (loss, jnp.argmax(logits) == target)

        initial_state = eqx.combine(params, static).initial_state()
        (params, opt_state, _), (losses, correct) = jax.lax.scan(
            step, (params, opt_state, initial_state), (windows, targets)
        )
        return params, opt_state, losses.mean(), correct.mean()

    def chunked_epoch(params, opt_state, epoch):
        # k consecutive windows per Adam step, the state carried through them with its gradient;
        # between chunks the state is carried without one. The last chunk is padded and masked.
        k = min(structure.backprop_windows, n_samples)  # more than the song's windows: the whole song per step
        n_chunks = -(-n_samples // k)
        padding = n_chunks * k - n_samples
        chunk_windows = jnp.concatenate([windows, jnp.zeros((padding, windows.shape[1]), windows.dtype)])
        chunk_windows = chunk_windows.reshape(n_chunks, k, windows.shape[1])
        chunk_targets = jnp.concatenate([targets, jnp.zeros(padding, targets.dtype)]).reshape(n_chunks, k)
        masks = jnp.concatenate([jnp.ones(n_samples), jnp.zeros(padding)]).reshape(n_chunks, k)

        def chunk_loss(params, state, chunk_windows, chunk_targets, mask):
            model = eqx.combine(params, static)
            logits, state = model.run_windows(chunk_windows, state)  # (k, C): window by window, the state carried
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, chunk_targets)
            return jnp.sum(losses * mask) / jnp.sum(mask), (state, losses, logits)

        def step(carry, chunk):
            params, opt_state, state = carry
            chunk_windows, chunk_targets, mask = chunk
            (_, (state, losses, logits)), grads = jax.value_and_grad(chunk_loss, has_aux=True)(
                params, state, chunk_windows, chunk_targets, mask
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            correct = (jnp.argmax(logits, axis=-1) == chunk_targets) * mask
            return (params, opt_state, jax.lax.stop_gradient(state)), (jnp.sum(losses * mask), jnp.sum(correct))

        initial_state = eqx.combine(params, static).initial_state()
        (params, opt_state, _), (loss_sums, correct_sums) = jax.lax.scan(
            step, (params, opt_state, initial_state), (chunk_windows, chunk_targets, masks)
        )
        return params, opt_state, loss_sums.sum() / n_samples, correct_sums.sum() / n_samples

    def batched_epoch(params, opt_state, epoch):
        batch_size = structure.batch_size
        n_batches = -(-n_samples // batch_size)
        padding = n_batches * batch_size - n_samples
        if structure.shuffle:
            order = jax.random.permutation(jax.random.fold_in(key, epoch), n_samples)
        else:
            order = jnp.arange(n_samples)
        # Pad to whole batches; the mask keeps padding out of the loss, so the last batch
        # is a true smaller batch as in Keras.
        batches = jnp.concatenate([order, jnp.zeros(padding, order.dtype)]).reshape(n_batches, batch_size)
        masks = jnp.concatenate([jnp.ones(n_samples), jnp.zeros(padding)]).reshape(n_batches, batch_size)

        def batch_loss(params, batch_windows, batch_targets, mask):
            model = eqx.combine(params, static)
            initial_state = model.initial_state()
            logits = jax.vmap(lambda window: model(window, initial_state)[0])(batch_windows)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch_targets)
            return jnp.sum(losses * mask) / jnp.sum(mask), (losses, logits)

        def step(carry, batch):
            params, opt_state = carry
            indices, mask = batch
            batch_targets = targets[indices]
            (_, (losses, logits)), grads = jax.value_and_grad(batch_loss, has_aux=True)(
                params, windows[indices], batch_targets, mask
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            correct = (jnp.argmax(logits, axis=-1) == batch_targets) * mask
            return (params, opt_state), (jnp.sum(losses * mask), jnp.sum(correct))

        (params, opt_state), (loss_sums, correct_sums) = jax.lax.scan(step, (params, opt_state), (batches, masks))
        return params, opt_state, loss_sums.sum() / n_samples, correct_sums.sum() / n_samples

    if not stateful:
        run_epoch = batched_epoch
    elif structure.backprop_windows == 1:
        run_epoch = stateful_epoch  # the tutorial's: kept as it was, bit for bit
    else:
        run_epoch = chunked_epoch

    def epoch_body(carry, epoch):
        params, opt_state = carry

        def active(operands):
            params, opt_state = operands
            params, opt_state, loss, accuracy = run_epoch(params, opt_state, epoch)
            return (params, opt_state), (loss.astype(jnp.float32), accuracy.astype(jnp.float32))

        def skipped(operands):
            return operands, (jnp.float32(jnp.nan), jnp.float32(jnp.nan))

        return jax.lax.cond(epoch < total_epochs, active, skipped, (params, opt_state))

    epochs = first_epoch + jnp.arange(structure.epochs_per_block, dtype=jnp.int32)
    (params, opt_state), (losses, accuracies) = jax.lax.scan(epoch_body, (params, opt_state), epochs)
    return params, opt_state, losses, accuracies


def _train_blocks(params, opt_state, static, windows, targets, keys, first_epoch, total_epochs, hyperparameters,
                  structure: _BlockStructure):  # fmt: skip
    """:func:`_train_block` for a group of models (a leading axis on params, optimizer state and keys), one by one."""

    def one(arguments):
        params, opt_state, key = arguments
        return _train_block(params, opt_state, static, windows, targets, key, first_epoch, total_epochs,
                            hyperparameters, structure)  # fmt: skip

    return jax.lax.map(one, (params, opt_state, keys))


_compiled_block = eqx.filter_jit(_train_block, compiler_options=_XLA_CPU_OPTIONS)
_compiled_blocks = eqx.filter_jit(_train_blocks, compiler_options=_XLA_CPU_OPTIONS)

