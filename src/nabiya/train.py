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

The trainer knows nothing of melodies: it sees feature arrays and target indices. Python
sees only the end of each block (for the progress bar), never a single step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nabiya.config import TrainConfig
from nabiya.models import Model

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
    return optax.adam(config.learning_rate, b1=config.beta1, b2=config.beta2, eps=config.epsilon)


def train(
    model: Model,
    inputs: np.ndarray,
    targets: np.ndarray,
    config: TrainConfig,
    *,
    key: jax.Array,
    on_progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train ``model`` to predict ``targets`` from ``inputs``.

    Args:
        model: any model of :mod:`nabiya.models`.
        inputs: windows as features, shape ``(n_samples, window, n_features)``, float32,
            in song order.
        targets: the token after each window, shape ``(n_samples,)``, int.
        config: epochs, batch size, regime, optimizer.
        key: PRNG key for the shuffles; the same key gives the same history, bit for bit.
        on_progress: called after each block of epochs.

    Returns:
        The trained model and its per-epoch loss and accuracy.

    Example:
        >>> result = train(model, windows.features(table), windows.targets, TrainConfig(epochs=10),
        ...                key=jax.random.key(5))                                  # doctest: +SKIP
    """
    config.validate()
    started = time.perf_counter()
    inputs = jnp.asarray(inputs, dtype=jnp.float32)
    targets = jnp.asarray(targets, dtype=jnp.int32)
    params, static = eqx.partition(model, eqx.is_array)
    opt_state = _init_optimizer_state(params, config)
    total = jnp.asarray(config.epochs, dtype=jnp.int32)
    losses, accuracies = [], []
    for first_epoch in range(0, config.epochs, config.epochs_per_block):
        params, opt_state, block_losses, block_accuracies = _train_block(
            params, opt_state, static, inputs, targets, key, jnp.asarray(first_epoch, dtype=jnp.int32), total, config
        )
        active = min(config.epochs_per_block, config.epochs - first_epoch)
        losses.append(np.asarray(block_losses)[:active])
        accuracies.append(np.asarray(block_accuracies)[:active])
        if on_progress is not None:
            on_progress(first_epoch + active, config.epochs, float(losses[-1][-1]), float(accuracies[-1][-1]))
    trained = eqx.combine(jax.block_until_ready(params), static)
    return TrainResult(
        model=trained,
        loss_history=np.concatenate(losses),
        accuracy_history=np.concatenate(accuracies),
        seconds=time.perf_counter() - started,
    )


# Compiled once per config: run eagerly, the zeros of each parameter's shape compile one by one.
@eqx.filter_jit
def _init_optimizer_state(params, config: TrainConfig) -> optax.OptState:
    return make_optimizer(config).init(params)


@eqx.filter_jit(compiler_options=_XLA_CPU_OPTIONS)
def _train_block(params, opt_state, static, inputs, targets, key, first_epoch, total_epochs, config: TrainConfig):
    """Run ``config.epochs_per_block`` epochs from ``first_epoch``; epochs past the total are skipped.

    Returns the new parameters and optimizer state and, per epoch of the block, the mean
    loss and accuracy (NaN for skipped epochs). One compilation serves every block,
    the last, shorter one included.
    """
    optimizer = make_optimizer(config)
    n_samples = targets.shape[0]

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
            step, (params, opt_state, initial_state), (inputs, targets)
        )
        return params, opt_state, losses.mean(), correct.mean()

    def batched_epoch(params, opt_state, epoch):
        batch_size = config.batch_size
        n_batches = -(-n_samples // batch_size)
        padding = n_batches * batch_size - n_samples
        if config.shuffle:
            order = jax.random.permutation(jax.random.fold_in(key, epoch), n_samples)
        else:
            order = jnp.arange(n_samples)
        # Pad to whole batches; the mask keeps padding out of the loss, so the last batch
        # is a true smaller batch as in Keras.
        batches = jnp.concatenate([order, jnp.zeros(padding, order.dtype)]).reshape(n_batches, batch_size)
        masks = jnp.concatenate([jnp.ones(n_samples), jnp.zeros(padding)]).reshape(n_batches, batch_size)

        def batch_loss(params, windows, batch_targets, mask):
            model = eqx.combine(params, static)
            initial_state = model.initial_state()
            logits = jax.vmap(lambda window: model(window, initial_state)[0])(windows)
            losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch_targets)
            return jnp.sum(losses * mask) / jnp.sum(mask), (losses, logits)

        def step(carry, batch):
            params, opt_state = carry
            indices, mask = batch
            batch_targets = targets[indices]
            (_, (losses, logits)), grads = jax.value_and_grad(batch_loss, has_aux=True)(
                params, inputs[indices], batch_targets, mask
            )
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            correct = (jnp.argmax(logits, axis=-1) == batch_targets) * mask
            return (params, opt_state), (jnp.sum(losses * mask), jnp.sum(correct))

        (params, opt_state), (loss_sums, correct_sums) = jax.lax.scan(step, (params, opt_state), (batches, masks))
        return params, opt_state, loss_sums.sum() / n_samples, correct_sums.sum() / n_samples

    run_epoch = stateful_epoch if config.stateful else batched_epoch

    def epoch_body(carry, epoch):
        params, opt_state = carry

        def active(operands):
            params, opt_state = operands
            params, opt_state, loss, accuracy = run_epoch(params, opt_state, epoch)
            return (params, opt_state), (loss.astype(jnp.float32), accuracy.astype(jnp.float32))

        def skipped(operands):
            return operands, (jnp.float32(jnp.nan), jnp.float32(jnp.nan))

        return jax.lax.cond(epoch < total_epochs, active, skipped, (params, opt_state))

    epochs = first_epoch + jnp.arange(config.epochs_per_block, dtype=jnp.int32)
    (params, opt_state), (losses, accuracies) = jax.lax.scan(epoch_body, (params, opt_state), epochs)
    return params, opt_state, losses, accuracies
