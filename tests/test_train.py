"""Training: the compiled loops against a step-by-step reference, determinism, and the tutorial's results."""

import dataclasses
import re

import equinox as eqx
import jax
import numpy as np
import optax
import pytest

from nabiya.config import preset
from nabiya.data import count_classes, make_windows
from nabiya.encoding import Vocabulary
from nabiya.models import make_model, trainable
from nabiya.music.songs import nabiya
from nabiya.training import make_optimizer, train


def _setup(name):
    config = preset(name)
    song = nabiya()
    vocabulary = Vocabulary.for_notes(song.notes)
    windows = make_windows(vocabulary.encode(song.notes), 4)
    table = vocabulary.feature_table(config.model.features)
    model = make_model(config.model, feature_table=table, window=4, n_classes=count_classes(windows),
                       key=jax.random.key(5))
    return config, model, windows.inputs, windows.targets


@pytest.mark.slow
def test_stateful_training_equals_a_step_by_step_reference():
    """Windows in song order, state carried window to window (no gradient into it), reset each epoch."""
    config, model, inputs, targets = _setup("stateful2")
    train_config = dataclasses.replace(config.train, epochs=3)
    compiled = train(model, inputs, targets, train_config, key=jax.random.key(0))

    optimizer = make_optimizer(train_config)
    params, static = eqx.partition(model, trainable(model))
    opt_state = optimizer.init(params)

    def loss_fn(params, window, target, state):
        logits, state = eqx.combine(params, static)(window, state)
        return optax.softmax_cross_entropy_with_integer_labels(logits, target), state

    grad_fn = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))
    history = []
    for _ in range(3):
        state = model.initial_state()  # reset_states() at each epoch
        losses = []
        for window, target in zip(inputs, targets):
            (loss, state), grads = grad_fn(params, window, target, state)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            losses.append(float(loss))
        history.append(np.mean(losses))
    np.testing.assert_allclose(compiled.loss_history, history, rtol=1e-4)
    reference = eqx.combine(params, static)
    np.testing.assert_allclose(compiled.model.cell.weight_hh, reference.cell.weight_hh, rtol=1e-3, atol=1e-5)


@pytest.mark.slow
def test_batched_training_equals_a_step_by_step_reference():
    """Batches of 14 in order (shuffle off), the last batch of 8 a true smaller batch, each window from reset."""
    config, model, inputs, targets = _setup("lstm")
    train_config = dataclasses.replace(config.train, epochs=2, shuffle=False)
    compiled = train(model, inputs, targets, train_config, key=jax.random.key(0))

    optimizer = make_optimizer(train_config)
    params, static = eqx.partition(model, trainable(model))
    opt_state = optimizer.init(params)

    def loss_fn(params, windows, batch_targets):
        m = eqx.combine(params, static)
        logits = jax.vmap(lambda w: m(w, m.initial_state())[0])(windows)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch_targets).mean()

    history = []
    for _ in range(2):
        total = 0.0
        for start in range(0, 50, 14):
            batch = slice(start, start + 14)
            loss, grads = jax.value_and_grad(loss_fn)(params, inputs[batch], targets[batch])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            total += float(loss) * len(targets[batch])
        history.append(total / 50)
    np.testing.assert_allclose(compiled.loss_history, history, rtol=1e-4)


@pytest.mark.slow
def test_blocks_of_epochs_do_not_change_the_result():
    """The last, shorter block is skipped past its end: 7 epochs in blocks of 3 == one block of 7."""
    config, model, inputs, targets = _setup("stateful")
    one = train(model, inputs, targets, dataclasses.replace(config.train, epochs=7, epochs_per_block=7),
                key=jax.random.key(0))
    seen = []
    blocks = train(model, inputs, targets, dataclasses.replace(config.train, epochs=7, epochs_per_block=3),
                   key=jax.random.key(0), on_progress=lambda done, total, loss, acc: seen.append((done, total)))
    assert len(blocks.loss_history) == 7 and not np.isnan(blocks.loss_history).any()
    np.testing.assert_array_equal(one.loss_history, blocks.loss_history)
    assert seen == [(3, 7), (6, 7), (7, 7)]


def test_a_stop_rule_ends_training_after_the_block_it_accepts_and_is_never_asked_after_the_last():
    config, model, inputs, targets = _setup("mlp")
    train_config = dataclasses.replace(config.train, epochs=7, epochs_per_block=3)
    asked = []

    def second_block(model_so_far, accuracy):
        asked.append(accuracy)
        return len(asked) == 2

    heard = []
    stopped = train(model, inputs, targets, train_config, key=jax.random.key(0), stop=second_block,
                    on_progress=lambda done, total, loss, accuracy: heard.append((done, total)))  # fmt: skip
    assert len(asked) == 2 and len(stopped.loss_history) == 6 and stopped.accuracy_history[-1] == asked[-1]
    assert heard == [(3, 7), (6, 7), (6, 6)]  # the progress hears where training ended
    never = train(model, inputs, targets, train_config, key=jax.random.key(0), stop=lambda *_: False)
    assert len(never.loss_history) == 7
    np.testing.assert_array_equal(never.loss_history[:6], stopped.loss_history)  # the same epochs, up to the stop


@pytest.mark.slow
def test_same_seed_same_history_and_predictions_other_seed_differs():
    import nabiya

    first = nabiya.run("lstm", epochs=150, progress=False)
    again = nabiya.run("lstm", epochs=150, progress=False)
    other = nabiya.run("lstm", epochs=150, seed=6, progress=False)
    np.testing.assert_array_equal(first.loss_history, again.loss_history)
    assert first.one_step.notes == again.one_step.notes and first.full_song.notes == again.full_song.notes
    assert not np.array_equal(first.loss_history, other.loss_history)


@pytest.mark.parametrize("name", ["stateful", "stateful2"])
def test_stateful_models_learn_the_whole_song(trained, name):
    result = trained(name)
    assert result.config.train.epochs == 2000 and result.config.seed == 5
    assert result.accuracy == 1.0
    assert result.one_step.matches == 50
    assert result.full_song.matches == 50
    assert [n.code for n in result.full_song.notes] == nabiya().codes[4:]


def test_two_features_learn_faster_than_one(trained):
    assert trained("stateful2").epochs_to_perfect < trained("stateful").epochs_to_perfect


def test_mlp_reaches_the_92_percent_ceiling(trained):
    result = trained("mlp")
    assert result.accuracy == pytest.approx(0.92)
    assert result.full_song.matches < 50


def test_lstm_reaches_at_least_86_percent_and_no_more_than_the_ceiling(trained):
    result = trained("lstm")
    assert 0.86 <= result.accuracy <= 0.92
    assert result.full_song.matches < 50


def test_four_windows_need_state_to_be_told_apart():
    """The song itself caps a 4-note-window model at 92%: 4 windows occur with two continuations."""
    song = nabiya()
    windows = make_windows(Vocabulary.for_notes(song.notes).encode(song.notes), 4)
    continuations = {}
    for window, target in zip(map(tuple, windows.inputs), windows.targets):
        continuations.setdefault(window, []).append(int(target))
    ambiguous = sum(1 for targets in continuations.values() if len(set(targets)) > 1)
    best = sum(max(targets.count(t) for t in set(targets)) for targets in continuations.values())
    assert ambiguous == 4 and best / 50 == 0.92


def test_other_epochs_seeds_and_learning_rates_do_not_compile_the_training_loop_again(caplog):
    """Only shapes and structure are compiled in: epochs, learning rate and Adam's constants are arguments."""
    import logging

    config, model, inputs, targets = _setup("stateful2")
    train(model, inputs, targets, dataclasses.replace(config.train, epochs=3), key=jax.random.key(0))
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING, logger="jax"):
            changed = dataclasses.replace(config.train, epochs=5, learning_rate=2e-3, beta1=0.8, epsilon=1e-6)
            train(model, inputs, targets, changed, key=jax.random.key(1))
    finally:
        jax.config.update("jax_log_compiles", False)
    compiled = [record.getMessage() for record in caplog.records if "Compiling" in record.getMessage()]
    assert not [message for message in compiled if "_train_block" in message], compiled


def test_a_second_run_with_other_epochs_and_seed_compiles_nothing(caplog):
    """The whole run, not only the training loop: model build, training, both predictions."""
    import logging

    import nabiya

    nabiya.run("stateful2", epochs=2, progress=False)
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.DEBUG, logger="jax"):
            nabiya.run("stateful2", epochs=3, seed=11, progress=False)
    finally:
        jax.config.update("jax_log_compiles", False)
    compiled = [record.getMessage() for record in caplog.records if "Compiling" in record.getMessage()]
    seconds = [float(m.group(1)) for record in caplog.records
               if (m := re.search(r"Finished XLA compilation of .* in ([\d.e-]+) sec", record.getMessage()))]
    assert sum(seconds) <= 0.1, compiled
    assert not compiled, compiled
