"""Training corpus models: compiled blocks of steps, batches made ahead, checkpoints that survive a kill.

:func:`train` (``nabiya.train``) trains a corpus preset on the training tunes of a corpus
and leaves a **run folder**:

=========================== =========================================================================
``config.json``             the run's :class:`~nabiya.corpus_config.CorpusRunConfig`
``split.json``              which tunes are for training, validation and test (their ids)
``vocabulary.json``         the tokens (a resumed run checks it gets the same)
``checkpoint.safetensors``  the training state, every ``checkpoint_every`` steps (see :mod:`nabiya.corpus_checkpoint`)
``model.safetensors``       the best model so far, by validation NLL: for ``nabiya generate`` and ``evaluate``
``curves.json``, ``.png``   train and validation NLL per note against steps, the n-gram's validation NLL drawn in
``summary.json``            steps, seconds, notes per second, best validation NLL, why it stopped
=========================== =========================================================================

**The batches.** The LSTM trains by truncated backpropagation through time on
:class:`~nabiya.batches.TuneStreams`: ``B`` streams of tunes side by side, ``T`` tokens a
chunk; the state at the end of a chunk starts the next (``stop_gradient``: no gradient
crosses a chunk), is reset where a tune starts (the batch's ``resets``), and padding is
masked out of the loss. The transformer trains on :class:`~nabiya.batches.PackedWindows`:
rows of ``T`` tokens packed with whole tunes, attention kept within each tune; a tune
longer than a row is cut into overlapping windows, each position trained on once. Packing
wastes almost nothing (rows are full but for their ends), and a tune's first token is
always read with position 0, as in generation.

**The loop.** Every step's loss is the mean cross-entropy over the positions of the whole
batch (axis 0 of every array is the batch, so it can be sharded across devices without a
change here). ``steps_per_block`` steps run in one ``jit`` as a ``lax.scan`` over a stack of
batches, which a background thread makes ahead (:func:`nabiya.batches.prefetch`); Python
sees each block's end only, to report progress, validate, checkpoint and stop. AdamW with
the global gradient norm clipped, a linear warm-up and a cosine decay (optax). Validation
every ``validate_every`` steps on every validation tune; the best weights are the model
file; early stopping after ``patience`` validations without a new best.

**Determinism.** Batch ``s`` depends on the data, the config and ``s`` alone; dropout's key
at step ``s`` is ``fold_in(key(seed), s)``. So a run killed at any moment and resumed from
its last checkpoint (``resume=``) ends with the same weights, bit for bit on one machine, as
a run never interrupted. Ctrl-C stops after the running block with a checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nabiya.batches import Batch, PackedWindows, TuneStreams, prefetch
from nabiya.corpus_checkpoint import (
    TrainingState,
    token_parts,
    load_corpus_model,
    read_checkpoint,
    save_corpus_model,
    write_checkpoint,
)
from nabiya.corpus_config import (
    DEFAULT_CORPUS_PRESET,
    CorpusRunConfig,
    CorpusTrainConfig,
    corpus_preset,
)
from nabiya.corpus_models import CorpusModel, make_corpus_model, parameter_count
from nabiya.distributed import Cluster, current_cluster, fingerprint, rows_value_and_grad
from nabiya.errors import NabiyaError
from nabiya.fileio import ensure_directory, write_text

BATCH_FIELDS = ("inputs", "targets", "mask", "score_mask", "resets")
STOP_REASONS = ("finished", "early stopping", "time limit", "interrupted")
RUN_FILES = ("config.json", "split.json", "vocabulary.json")


# --- optimizer ----------------------------------------------------------------------------------------


def learning_rate_schedule(config: CorpusTrainConfig, total_steps=None) -> optax.Schedule:
    """Linear warm-up from 0 to ``learning_rate``, then a cosine decay to ``final_learning_rate`` of it at the last step.

    Args:
        config: the training config.
        total_steps: the run's length (default ``config.steps``); may be a traced value, so that
            a run whose length is planned from its measured speed (``minutes=``) compiles once.

    Example:
        >>> schedule = learning_rate_schedule(CorpusTrainConfig(steps=100, learning_rate=1e-3, warmup_steps=10))
        >>> [round(float(schedule(step)), 6) for step in (0, 5, 10, 100)]
        [0.0, 0.0005, 0.001, 5e-05]
    """
    total = config.steps if total_steps is None else total_steps
    peak, warmup = config.learning_rate, config.warmup_steps

    def schedule(count):
        count = jnp.asarray(count, jnp.float32)
        total_f = jnp.asarray(total, jnp.float32)
        warm = jnp.minimum(jnp.float32(warmup), jnp.maximum(total_f - 1, 0))  # a run shorter than its warm-up
        rising = peak * count / jnp.maximum(warm, 1.0)
        progress = jnp.clip((count - warm) / jnp.maximum(total_f - warm, 1.0), 0.0, 1.0)
        floor = config.final_learning_rate
        decaying = peak * (floor + (1 - floor) * 0.5 * (1 + jnp.cos(jnp.pi * progress)))
        return jnp.where(count < warm, rising, decaying)

    return schedule


def make_optimizer(config: CorpusTrainConfig, total_steps=None) -> optax.GradientTransformation:
    """Clip the global gradient norm, then AdamW (weight decay on matrices only) on the schedule."""
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(learning_rate_schedule(config, total_steps), b1=0.9, b2=config.beta2, eps=1e-8,
                    weight_decay=config.weight_decay,
                    mask=lambda params: jax.tree_util.tree_map(lambda p: p.ndim >= 2, params)),  # fmt: skip
    )


# --- one step, one block ----------------------------------------------------------------------------


def batch_loss(params, static, batch: dict, carry, key: jax.Array | None):
    """The mean cross-entropy over a batch's trained positions, and what training reports.

    Args:
        params, static: the model, as ``eqx.partition(model, eqx.is_inexact_array)``.
        batch: ``inputs``, ``targets`` ``(B, T)`` int32; ``mask``, ``score_mask``, ``resets`` ``(B, T)`` bool.
        carry: the state each row starts from (``(h, c)`` of ``(B, L, H)`` for the LSTM, ``()`` else).
        key: dropout's key (None: no dropout), or ``(B,)`` keys, one per row.

    Returns:
        ``loss`` (a scalar: the sum over ``mask`` divided by its count, over the whole batch)
        and ``(carry after the rows (no gradient), NLL summed over score_mask, score_mask's count)``.
    """
    model = eqx.combine(params, static)
    rows = batch["inputs"].shape[0]
    # [distributed] keys (B,): one per row already (a device's rows of the batch's keys: nabiya.distributed)
    keys = None if key is None else key if key.ndim else jax.random.split(key, rows)

    def row_logits(tokens, state, resets, row_key):
        return model.sequence_logits(tokens, state, resets, key=row_key)

    logits, carry = jax.vmap(row_logits, in_axes=(0, 0, 0, None if keys is None else 0))(
        batch["inputs"], carry, batch["resets"], keys
    )  # logits (B, T, V)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])  # (B, T)
    mask, scored = batch["mask"], batch["score_mask"]
    loss = jnp.sum(jnp.where(mask, nll, 0.0)) / jnp.maximum(jnp.sum(mask), 1)
    return loss, (jax.lax.stop_gradient(carry), jnp.sum(jnp.where(scored, nll, 0.0)), jnp.sum(scored))


def train_block(params, opt_state, carry, batches: dict, first_step, total_steps, root_key: jax.Array, static,
                config: CorpusTrainConfig, mesh=None):  # fmt: skip
    """Run the steps ``first_step .. first_step + K - 1`` (those below ``total_steps``) in one compiled scan.

    Args:
        params, opt_state, carry: the training state.
        batches: the ``(K, B, T)`` arrays of ``K`` steps' batches (:data:`BATCH_FIELDS`).
        first_step: the first step's number.
        total_steps: the run's length (the schedule's end; steps from it on are skipped).
        root_key: ``key(seed)``; step ``s`` uses ``fold_in(root_key, s)``.
        static: the model's static part.
        config: the training config (compiled in, but for its step counts).
        mesh: the device mesh of a data-parallel run (:mod:`nabiya.distributed`; None on one device).

    Returns:
        ``params, opt_state, carry`` after the block, and per step ``(nll_sum, scored, loss, grad_norm)``
        (zeros and NaN for steps past the end).
    """
    # What only the loop around the block reads is left out of the compiled program's key.
    compiled = dataclasses.replace(config, steps=1, validate_every=config.steps_per_block,
                                   checkpoint_every=config.steps_per_block, patience=0)  # fmt: skip
    return _train_block(params, opt_state, carry, batches, jnp.int32(first_step), jnp.int32(total_steps), root_key,
                        static, compiled, mesh)  # fmt: skip


# 512-bit vectors where the CPU has them (XLA prefers 256 even on AVX-512): ~8% faster steps, measured on
# folk-lstm (see nabiya.training for the same option in the tutorial's loop). Other platforms ignore it.
@eqx.filter_jit(compiler_options={"xla_cpu_prefer_vector_width": 512})
def _train_block(params, opt_state, carry, batches, first_step, total_steps, root_key, static, config, mesh):
    optimizer = make_optimizer(config, total_steps)
    # [distributed] on several devices each computes its rows' gradients, then one all-reduce sums them
    value_and_grad = jax.value_and_grad(batch_loss, has_aux=True) if mesh is None else rows_value_and_grad(batch_loss, mesh)

    def step(state, inputs):
        batch, offset = inputs
        number = first_step + offset

        def run(state):
            params, opt_state, carry = state
            key = jax.random.fold_in(root_key, number)
            (loss, (carry, nll_sum, scored)), grads = value_and_grad(params, static, batch, carry, key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (params, opt_state, carry), (nll_sum, scored.astype(jnp.float32), loss, optax.tree.norm(grads))

        def skip(state):
            return state, (jnp.float32(0), jnp.float32(0), jnp.float32(jnp.nan), jnp.float32(jnp.nan))

        return jax.lax.cond(number < total_steps, run, skip, state)

    offsets = jnp.arange(batches["inputs"].shape[0], dtype=jnp.int32)
    (params, opt_state, carry), metrics = jax.lax.scan(step, (params, opt_state, carry), (batches, offsets))
    return params, opt_state, carry, metrics


@eqx.filter_jit
def _score_chunks(model: CorpusModel, batches: dict, carry):
    """Summed NLL and count over the scored positions of ``(N, B, T)`` chunks, in order, state carried."""

    def step(carry, batch):
        logits, carry = jax.vmap(model.sequence_logits)(batch["inputs"], carry, batch["resets"])
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
        return carry, (jnp.sum(jnp.where(batch["score_mask"], nll, 0.0)), jnp.sum(batch["score_mask"]))

    _, (sums, counts) = jax.lax.scan(step, carry, batches)
    return sums.sum(), counts.sum()


@eqx.filter_jit
def _chunk_log_probs(model: CorpusModel, batch: dict, carry):
    logits, carry = jax.vmap(model.sequence_logits)(batch["inputs"], carry, batch["resets"])
    return jax.nn.log_softmax(logits, axis=-1), carry


def initial_carry(model: CorpusModel, batch_size: int):
    """The state every row starts from: the model's reset state, once per row (``()`` for a stateless model)."""
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (batch_size, *x.shape)), model.initial_state())


def log_probs_of(model: CorpusModel, batches: Sequence[Batch]) -> Iterator[tuple[np.ndarray, Batch]]:
    """``(log-probabilities (B, T, V), batch)`` for batches read in order, the state carried from each to the next.

    For evaluation: ``batches`` are one pass over tunes (``TuneStreams`` / ``PackedWindows`` with
    ``shuffle=False``), so every scored position appears once, in its ``score_mask``.
    """
    carry = None
    for batch in batches:
        if carry is None:
            carry = initial_carry(model, batch.inputs.shape[0])
        log_probs, carry = _chunk_log_probs(model, _arrays(batch), carry)
        yield np.asarray(log_probs), batch


def _arrays(batch: Batch) -> dict:
    return {name: jnp.asarray(getattr(batch, name)) for name in BATCH_FIELDS}


def _stack(batches: Sequence[Batch]) -> dict:
    return {name: np.stack([getattr(batch, name) for batch in batches]) for name in BATCH_FIELDS}


def make_batches(config: CorpusRunConfig, sequences, scored: np.ndarray, *, shuffle: bool = True):
    """The batcher a model kind trains (``shuffle=True``) and is evaluated (``shuffle=False``) on."""
    train = config.train
    kind = TuneStreams if config.model.kind == "lstm" else PackedWindows
    return kind(sequences, scored, batch_size=train.batch_size, length=train.length, seed=train.seed, shuffle=shuffle)


def _blocks(batches, start: int, total: int, per_block: int, rows: slice | None = None) -> Iterator[dict]:
    """Stacks of ``per_block`` batches (their ``rows``) from step ``start``; steps past ``total`` are zeros
    (skipped by the block)."""
    step = start
    empty = None
    while step < total:
        stack = []
        for number in range(step, step + per_block):
            if number < total:
                stack.append(batches.batch(number, rows))
            else:
                empty = empty or dataclasses.replace(stack[0], **{name: np.zeros_like(getattr(stack[0], name))
                                                                  for name in BATCH_FIELDS})  # fmt: skip
                stack.append(empty)
        yield _stack(stack)
        step += per_block


# --- the data of a run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusData:
    """A corpus read, split and turned into tokens for a run.

    Attributes:
        corpus: the tunes (:class:`nabiya.music.corpus.Corpus`).
        tokens: the :class:`nabiya.tokens.TokenizedCorpus` (vocabulary, train/valid/test sequences, split).
        keys: ``{"D major": tunes}`` of the training tunes (for drawing a tonic for new tunes).
    """

    corpus: Any
    tokens: Any
    keys: dict


def prepare_data(config: CorpusRunConfig, *, corpus=None, vocabulary=None, progress: bool = False) -> CorpusData:
    """Read the corpus of ``config.corpus`` (or use ``corpus``), split it and make its tokens.

    Args:
        config: the run config (its corpus spec, split and token config).
        corpus: an already loaded :class:`~nabiya.music.corpus.Corpus` (then ``config.corpus.sources`` is a label).
        vocabulary: tokenize with this vocabulary (a saved model's) instead of building one.
        progress: a progress bar while tunes are read.
    """
    from nabiya.music.corpus import load_corpus
    from nabiya.tokens import tokenize_corpus

    spec = config.corpus
    if corpus is None:
        corpus = load_corpus(list(spec.sources) or None, min_notes=spec.min_notes, progress=progress)
    split = corpus.split(spec.split, seed=spec.split_seed)
    if not split.valid:
        raise NabiyaError(f"the split {_shares(spec.split)} of {len(corpus)} tunes leaves no validation tune: "
                          "give validation a larger share (--split)")  # fmt: skip
    tokens = tokenize_corpus(corpus, config.tokens, split=split, vocab=vocabulary)
    if not tokens.valid:
        raise NabiyaError("no validation tune is left after the rare-token policy: use --rare unk")
    keys: dict[str, int] = {}
    for song in corpus.songs_of(split, "train"):
        if song.key:
            keys[song.key] = keys.get(song.key, 0) + 1
    return CorpusData(corpus, tokens, dict(sorted(keys.items(), key=lambda item: (-item[1], item[0]))))


def _shares(split) -> str:
    return "/".join(f"{100 * share:g}" for share in split)


# --- results ---------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class CorpusTrainResult:
    """What :func:`train` gives back; it plots its learning curves and shows itself in Jupyter.

    Attributes:
        config: the run config.
        model: the best model (lowest validation NLL).
        vocabulary: its tokens.
        folder: the run folder.
        history: ``train_steps``, ``train_nll``, ``valid_steps``, ``valid_nll`` (nats per note).
        best_step, best_valid_nll: where the best model was.
        ngram_valid_nll: the n-gram baseline's validation NLL (its order chosen on validation), or None.
        ngram_order: that n-gram's order.
        steps: steps done; stopped: why training stopped (one of :data:`STOP_REASONS`).
        seconds: training time (compilation included, every session of the run).
        notes_per_second: trained positions per second of this session, compilation excluded.
        parameters: the model's trained numbers.
        corpus: ``tunes`` (kept), ``skipped`` (by reason) and ``split`` (tunes per part) of the corpus read.
    """

    config: CorpusRunConfig
    model: CorpusModel
    vocabulary: Any
    folder: Path
    history: dict
    best_step: int | None
    best_valid_nll: float | None
    ngram_valid_nll: float | None
    ngram_order: int | None
    steps: int
    stopped: str
    seconds: float
    notes_per_second: float
    parameters: int
    corpus: dict = dataclasses.field(default_factory=dict)

    @property
    def model_path(self) -> Path:
        return self.folder / "model.safetensors"

    @property
    def resume_command(self) -> str:
        return f"nabiya train --resume {self.folder}"

    def summary(self) -> dict:
        """The run as JSON-able data (``summary.json``)."""
        return {
            "preset": self.config.preset,
            "steps": self.steps,
            "steps_planned": self.config.train.steps,
            "stopped": self.stopped,
            "best_step": self.best_step,
            "best_valid_nll_nats": self.best_valid_nll,
            "ngram_valid_nll_nats": self.ngram_valid_nll,
            "ngram_order": self.ngram_order,
            "seconds": round(self.seconds, 2),
            "notes_per_second": round(self.notes_per_second, 1),
            "parameters": self.parameters,
            "vocabulary_size": len(self.vocabulary),
            "corpus": self.corpus,
            "model_file": "model.safetensors",
            "config": self.config.to_json(),
        }

    def plot(self, ax=None):
        """The learning curves: train and validation NLL per note against steps, the n-gram's line drawn in."""
        return plot_curves(self.history, ngram_nll=self.ngram_valid_nll, ngram_order=self.ngram_order,
                           title=f"{self.config.preset}: learning curves", ax=ax)  # fmt: skip

    def evaluate(self, **options):
        """:func:`nabiya.evaluate` of the best model on its test split (options as there)."""
        from nabiya.corpus_eval import evaluate

        return evaluate(self.model_path, **options)

    def generate(self, count: int = 1, **options):
        """:func:`nabiya.corpus_eval.generate_tunes` with the best model (options as there)."""
        from nabiya.corpus_eval import generate_tunes

        return generate_tunes(self.model_path, count=count, **options)

    def __repr__(self) -> str:
        best = f"{self.best_valid_nll:.4f}" if self.best_valid_nll is not None else "—"
        return (f"CorpusTrainResult({self.config.preset}, {self.steps} steps, best validation NLL {best} nats "
                f"at step {self.best_step}, {self.stopped}, {self.folder})")  # fmt: skip

    def _repr_html_(self) -> str:
        from nabiya.corpus_eval import figure_html

        rows = "".join(f"<tr><th style='text-align:left'>{name}</th><td>{value}</td></tr>" for name, value in (
            ("preset", self.config.preset), ("steps", f"{self.steps} of {self.config.train.steps} ({self.stopped})"),
            ("best validation NLL", f"{self.best_valid_nll:.4f} nats/note at step {self.best_step}"
             if self.best_valid_nll is not None else "—"),
            ("n-gram validation NLL", f"{self.ngram_valid_nll:.4f} (order {self.ngram_order})"
             if self.ngram_valid_nll is not None else "—"),
            ("training", f"{self.seconds / 60:.1f} min, {self.notes_per_second:,.0f} notes/s"),
            ("run folder", str(self.folder)),
        ))  # fmt: skip
        return f"<table>{rows}</table>{figure_html(self.plot())}"


def plot_curves(history: dict, *, ngram_nll: float | None = None, ngram_order: int | None = None,
                title: str = "learning curves", ax=None):  # fmt: skip
    """Train and validation NLL (nats per note) against steps, and the n-gram's validation NLL as a line."""
    from nabiya.plots import _pyplot

    plt = _pyplot()
    if ax is None:
        figure, ax = plt.subplots(figsize=(7, 4))
    else:
        figure = ax.figure
    ax.plot(history["train_steps"], history["train_nll"], label="train (dropout on)", linewidth=1.0, alpha=0.8)
    ax.plot(history["valid_steps"], history["valid_nll"], label="validation", linewidth=1.6, marker="o", markersize=3)
    if ngram_nll is not None:
        ax.axhline(ngram_nll, color="gray", linestyle="--", linewidth=1.0,
                   label=f"{ngram_order}-gram (Kneser–Ney), validation")  # fmt: skip
        ax.axhline(0.85 * ngram_nll, color="gray", linestyle=":", linewidth=1.0, label="15% below the n-gram")
    values = [v for v in list(history["train_nll"]) + list(history["valid_nll"]) if v is not None and math.isfinite(v)]
    if values:
        low = min(values + ([0.85 * ngram_nll] if ngram_nll else []))
        ax.set_ylim(max(low - 0.1, 0), min(max(values), low + 2.5) + 0.05)
    ax.set_xlabel("step")
    ax.set_ylabel("NLL per note (nats)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right")
    figure.tight_layout()
    return figure


# --- the run folder ----------------------------------------------------------------------------------


def is_run_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "split.json").is_file()


def read_run_config(folder: str | os.PathLike) -> CorpusRunConfig:
    """The config of a run folder.

    Raises:
        NabiyaError: when the folder is not a run of ``nabiya train``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise NabiyaError(f"{str(folder)!r} is not a run folder: {'no such folder' if not folder.exists() else 'a file'}")
    if not is_run_folder(folder):
        raise NabiyaError(f"{str(folder)!r} is not a run folder of 'nabiya train' (it has no config.json and split.json)")
    try:
        return CorpusRunConfig.from_json(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    except (OSError, ValueError) as error:
        raise NabiyaError(f"{str(folder / 'config.json')!r}: unreadable ({error})") from None


def _check_new_folder(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise NabiyaError(f"cannot write run folder {str(folder)!r}: a file of that name exists")
    if folder.is_dir() and is_run_folder(folder):
        raise NabiyaError(f"{str(folder)!r} is already a run: resume it with 'nabiya train --resume {folder}' "
                          "or choose another --out")  # fmt: skip
    if folder.is_dir() and any(folder.iterdir()):
        raise NabiyaError(f"cannot start a run in {str(folder)!r}: the folder is not empty")
    parent = folder.parent if str(folder.parent) else Path(".")
    if parent.exists() and not os.access(parent, os.W_OK):
        raise NabiyaError(f"cannot write to folder {str(parent)!r}: permission denied")


def _write_json(path: Path, data: dict) -> None:
    write_text(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


# --- progress ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _progress(description: str, total: int, start: int, enabled: bool):
    """The progress line, 80 columns wide: ``folk-lstm ━━━━╸━━ 600/1310 valid 2.046 · 10-gram 2.380 7:02 eta 8:10``.

    Yields ``report(step, text, total=None)``. In a terminal a rich bar on standard error; in
    Jupyter one text output updated in place (IPython's display handles, no ipywidgets).
    """
    if not enabled:
        yield lambda step, text, total=None: None
        return
    from nabiya.progress import _in_notebook

    if _in_notebook():
        from IPython.display import display

        from nabiya.progress import _clock, _Text

        started = time.perf_counter()
        handle = display(_Text(f"{description}: {start}/{total} compiling…"), display_id=True)
        totals = [total]

        def report(step: int, text: str, total: int | None = None) -> None:
            totals[0] = total or totals[0]
            handle.update(_Text(f"{description}: {step}/{totals[0]} {text} · {_clock(time.perf_counter() - started)}"))

        yield report
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(bar_width=10), MofNCompleteColumn(),
        TextColumn("{task.fields[text]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
        console=Console(stderr=True), transient=False,
    )  # fmt: skip
    with progress:
        task = progress.add_task(description, total=total, completed=start, text="compiling…")

        def report(step: int, text: str, total: int | None = None) -> None:
            progress.update(task, completed=step, text=text, **({"total": total} if total else {}))

        yield report


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C (the loop stops after its block); a second Ctrl-C interrupts at once."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)

    signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


# --- training ----------------------------------------------------------------------------------------


def train(
    corpus=None,
    *,
    preset: str | CorpusRunConfig | None = None,
    out: str | os.PathLike | None = None,
    resume: str | os.PathLike | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    progress: bool = True,
    ngram: bool = True,
    **settings,
) -> CorpusTrainResult:
    """Train a corpus model on the training tunes of a corpus; the notebook twin of ``nabiya train``.

    Args:
        corpus: a corpus spec (book names, folders, files: see :func:`nabiya.load_corpus`), a loaded
            :class:`~nabiya.music.corpus.Corpus`, or None for the default corpus.
        preset: ``"folk-lstm"`` (the default; when resuming, the run's own), ``"folk-transformer"``,
            or a :class:`CorpusRunConfig`.
        out: the run folder (default: a new folder under ``./runs/``); must be new or empty.
        resume: a run folder to continue from its last checkpoint; then ``corpus``, ``preset`` and
            ``settings`` may only repeat the run's own config (a difference is refused, named).
        steps: optimizer steps (the schedule's length); default the preset's.
        minutes: a time budget for training (compilation included; reading the corpus and fitting
            the n-gram not). Without ``steps`` the run *plans* its length: it measures its speed on
            its first blocks (during the warm-up, so the schedule is the one ``steps=`` would give)
            and sets ``steps`` to what fits, the learning rate decaying over them. Either way it
            stops, with a checkpoint, when the time is up; a stopped run can be resumed.
        progress: a progress bar on standard error.
        ngram: fit the n-gram baseline first, for the learning curves' line.
        settings: any field of the config by name (``size=256``, ``batch_size=16``, ``seed=3``,
            ``dropout=0.2``, ``transpose=False``, ``split=(0.8, 0.1, 0.1)``, ...).

    Returns:
        A :class:`CorpusTrainResult` (the best model, the curves, the run folder).

    Raises:
        NabiyaError: for bad settings, an unknown corpus, an empty one, a folder that is not a
            run (``resume``), a config that differs from the resumed run's, or a checkpoint
            that cannot be written (a full disk; the last good one is kept).

    Example:
        >>> result = nabiya.train("miscFolk", preset="folk-lstm", steps=300)      # doctest: +SKIP
        >>> result.best_valid_nll, result.plot()                                    # doctest: +SKIP
    """
    corpus_object = None
    if corpus is not None and not isinstance(corpus, (str, os.PathLike, list, tuple)):
        corpus_object = corpus  # a Corpus
    if steps is not None:
        settings["steps"] = steps
    # [distributed] Every process of a run (one, unless nabiya.distributed.join came first) runs this function;
    # the cluster's agree / shared / on_writer keep them in step, and process 0 alone touches the run folder.
    cluster = current_cluster()
    with cluster.watching():
        return _start(cluster, corpus, corpus_object, preset, out, resume, steps, minutes, progress, ngram, settings)


def _start(cluster: Cluster, corpus, corpus_object, preset, out, resume, steps, minutes, progress, ngram,
           settings) -> CorpusTrainResult:  # fmt: skip
    def asked() -> dict:
        if minutes is not None and not (isinstance(minutes, (int, float)) and minutes > 0):
            raise NabiyaError(f"minutes must be a number above 0, not {minutes!r}")
        if resume is None:
            config = _asked_config(preset, corpus, corpus_object, settings, base=None)
        else:
            config = _asked_config(preset, corpus, corpus_object, settings, base=run_config)
            differences = config.differences(run_config)
            if differences:
                name, wanted, had = differences[0]
                more = f" and {len(differences) - 1} more" if len(differences) > 1 else ""
                raise NabiyaError(f"cannot resume {str(resume)!r} with another config: {name} is {had!r} in the "
                                  f"run, {wanted!r} asked{more} (resume with the run's own settings, or start a new "
                                  "run)")  # fmt: skip
        cluster.check_batch_size(config.train.batch_size)
        return {**config.to_json(), "run": {"minutes": minutes, "resume": None if resume is None else str(resume)}}

    if resume is not None:
        if out is not None:
            raise NabiyaError("--resume continues a run in its own folder: leave out --out")
        folder = Path(resume)
        run_config = CorpusRunConfig.from_json(cluster.shared(lambda: read_run_config(folder).to_json()))
        config = CorpusRunConfig.from_json(cluster.agree(asked, what="the settings"))
    else:
        config = CorpusRunConfig.from_json(cluster.agree(asked, what="the settings"))
        from nabiya.experiment import default_run_folder

        def new_folder() -> str:
            folder = Path(out) if out is not None else default_run_folder(config.preset)
            _check_new_folder(folder)
            return str(folder)

        folder = Path(cluster.shared(new_folder))
    plan = minutes is not None and steps is None and "steps" not in settings and resume is None
    with cluster.watching(f"nabiya train --resume {folder}"):
        return _run(config, folder, corpus_object=corpus_object, resuming=resume is not None, minutes=minutes,
                    plan=plan, progress=progress and cluster.is_writer, fit_ngram=ngram, cluster=cluster)  # fmt: skip


def _asked_config(preset, corpus, corpus_object, settings: dict, *, base: CorpusRunConfig | None):
    """The config the arguments ask for (from ``base``, a resumed run's, unless they name a preset)."""
    if isinstance(preset, CorpusRunConfig):
        config = preset.validate()
    elif preset is None:
        config = base if base is not None else corpus_preset(DEFAULT_CORPUS_PRESET)  # resuming: the run's own
    else:
        config = corpus_preset(preset)
    if corpus_object is not None:
        config = config.replace(sources=tuple(corpus_object.sources), min_notes=corpus_object.min_notes)
    elif corpus is not None:
        sources = (str(corpus),) if isinstance(corpus, (str, os.PathLike)) else tuple(str(c) for c in corpus)
        config = config.replace(sources=sources)
    if settings:
        config = config.replace(**settings)
    return config


# Blocks timed (after the first, which compiles) before a run plans its length from its speed; fewer when
# the warm-up is shorter, so that the schedule is the one an explicit step count would give.
PLANNING_BLOCKS = 6


def _run(config: CorpusRunConfig, folder: Path, *, corpus_object, resuming: bool, minutes: float | None, plan: bool,
         progress: bool, fit_ngram: bool, cluster: Cluster) -> CorpusTrainResult:  # fmt: skip
    from nabiya.music.corpus import read_split
    from nabiya.tokens import TuneVocabulary

    vocabulary = None
    if resuming:
        def read_vocabulary() -> dict:
            try:
                return json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as error:
                raise NabiyaError(f"cannot resume {str(folder)!r}: its vocabulary.json is unreadable ({error})") from None

        vocabulary = TuneVocabulary.from_json(cluster.shared(read_vocabulary))  # [distributed] read by process 0
    prepared: list[CorpusData] = []

    def prepare() -> dict:
        prepared.append(prepare_data(config, corpus=corpus_object, vocabulary=vocabulary, progress=progress))
        return _data_fingerprint(prepared[0])

    cluster.agree(prepare, what="the data")  # [distributed] every process reads the corpus: all get the same tokens
    data = prepared[0]
    tokens = data.tokens

    def check_split() -> None:
        saved_split = read_split(folder)
        if (saved_split.train, saved_split.valid, saved_split.test) != (tokens.split.train, tokens.split.valid,
                                                                          tokens.split.test):  # fmt: skip
            raise NabiyaError(f"cannot resume {str(folder)!r}: the corpus has changed since the run started "
                              "(its split differs from split.json)")  # fmt: skip

    def write_run_files() -> None:  # the folder is made only now that the corpus is read: bad input leaves nothing
        ensure_directory(folder)
        _write_json(folder / "config.json", config.to_json())
        tokens.split.write(folder)
        _write_json(folder / "vocabulary.json", tokens.vocab.to_json())

    cluster.on_writer(check_split if resuming else write_run_files)

    train_config = config.train
    scored = tokens.vocab.is_scored
    init_key, dropout_root = jax.random.split(jax.random.key(train_config.seed))
    model = make_corpus_model(config.model, vocab_size=len(tokens.vocab), key=init_key,
                              token_parts=token_parts(tokens.vocab))  # fmt: skip
    params, static = eqx.partition(model, eqx.is_inexact_array)
    state = TrainingState(step=0, params=params, opt_state=make_optimizer(train_config).init(params),
                          carry=initial_carry(model, train_config.batch_size))  # fmt: skip
    checkpoint_path = folder / "checkpoint.safetensors"
    if resuming:
        state = _shared_state(cluster, lambda: read_checkpoint(checkpoint_path, state, config)
                              if checkpoint_path.exists() else state, like=state)  # fmt: skip
    state = _placed(cluster, state)  # [distributed] weights on every device, the carried state split by rows

    baseline = cluster.shared(lambda: _ngram_line(tokens) if fit_ngram else None)  # [distributed] fitted once
    rows = cluster.rows(train_config.batch_size)  # [distributed] this process makes only its rows of every batch
    train_batches = make_batches(config, tokens.train, scored)
    valid_stack = cluster.put_rows({name: jnp.asarray(array) for name, array in
                                    _stack(list(make_batches(config, tokens.valid, scored, shuffle=False).epoch(0, rows))
                                           ).items()}, axis=1)  # fmt: skip
    valid_carry = cluster.split_rows(initial_carry(model, train_config.batch_size))

    def validate(params) -> float:
        total, count = _score_chunks(eqx.combine(params, static), valid_stack, valid_carry)
        return float(total) / max(float(count), 1.0)

    def write_model(params, step: int, valid_nll: float) -> None:
        summary = {"step": step, "valid_nll_nats": valid_nll, "preset": config.preset,
                   "ngram_valid_nll_nats": baseline[0] if baseline else None}  # fmt: skip
        cluster.on_writer(lambda: save_corpus_model(folder / "model.safetensors", eqx.combine(params, static),
                                                    config=config, vocabulary=tokens.vocab, keys=data.keys,
                                                    summary=summary))  # fmt: skip

    per_block = train_config.steps_per_block
    total = train_config.steps
    timed_blocks = max(1, min(PLANNING_BLOCKS, train_config.warmup_steps // per_block - 2))
    planning_at = state.step + per_block * (1 + timed_blocks) if plan else None
    started = time.perf_counter()  # the time budget counts from here: compilation in, reading and the n-gram out
    session_positions, timed_from, timed_from_step, session_blocks = 0, None, state.step, 0
    stopped = "finished"
    if state.step < total and train_config.patience and state.best_step is not None \
            and state.bad_validations >= train_config.patience:  # fmt: skip
        stopped = "early stopping"
    with _stop_on_interrupt() as interrupt, _progress(config.preset, total, state.step, progress) as report:
        blocks = _Prefetched(train_batches, state.step, total, per_block, rows)
        try:
            while state.step < total and stopped == "finished":
                block = blocks.next()
                params, opt_state, carry, metrics = train_block(
                    state.params, state.opt_state, state.carry, cluster.put_rows(block, axis=1), state.step, total,
                    dropout_root, static, train_config, cluster.mesh if cluster.spread else None,
                )  # fmt: skip
                nll_sums, counts = (np.asarray(x, dtype=np.float64) for x in metrics[:2])
                done = min(per_block, total - state.step)
                positions = cluster.total(int(block["mask"][:done].sum()))  # [distributed] every process's rows
                now = time.perf_counter()
                if timed_from is None:
                    timed_from, timed_from_step = now, state.step + done  # the first block compiles: time from its end
                else:
                    session_positions += positions
                state = dataclasses.replace(state, step=state.step + done, params=params, opt_state=opt_state,
                                            carry=carry, trained_positions=state.trained_positions + positions)  # fmt: skip
                if not np.isfinite(nll_sums[:done]).all():
                    raise NabiyaError(f"training diverged at step {state.step} (the loss is not finite): "
                                      "lower the learning rate")  # fmt: skip
                history = state.history
                history["train_steps"].append(state.step)
                history["train_nll"].append(float(nll_sums[:done].sum() / max(counts[:done].sum(), 1)))
                if planning_at is not None and state.step >= planning_at:
                    seconds_per_step = (now - timed_from) / max(state.step - timed_from_step, 1)
                    validation_started = time.perf_counter()
                    validate(state.params)  # its time (compilation included) is part of the plan
                    seconds_per_validation = time.perf_counter() - validation_started
                    total = cluster.shared(lambda: _planned_steps(  # [distributed] process 0's clock plans
                        state.step, per_block, seconds_per_step, seconds_per_validation, train_config.validate_every,
                        60 * minutes - (time.perf_counter() - started)))  # fmt: skip
                    planning_at = None
                    config = config.replace(steps=total)
                    train_config = config.train
                    cluster.on_writer(lambda: _write_json(folder / "config.json", config.to_json()))
                    blocks.close()
                    blocks = _Prefetched(train_batches, state.step, total, per_block, rows)
                    report(state.step, _status(history, baseline), total=total)
                if state.step % train_config.validate_every == 0 or state.step >= total:
                    valid_nll = validate(state.params)
                    history["valid_steps"].append(state.step)
                    history["valid_nll"].append(valid_nll)
                    if state.best_valid_nll is None or valid_nll < state.best_valid_nll:
                        state.best_step, state.best_valid_nll, state.bad_validations = state.step, valid_nll, 0
                        write_model(state.params, state.step, valid_nll)
                    else:
                        state.bad_validations += 1
                        if train_config.patience and state.bad_validations >= train_config.patience:
                            stopped = "early stopping"
                session_blocks += 1
                # [distributed] Ctrl-C in any process, or a scheduler's SIGTERM (JAX's preemption sync), stops all
                if cluster.any(interrupt.is_set()) | cluster.preempted(session_blocks):
                    stopped = "interrupted"
                elif minutes is not None and state.step < total and cluster.shared(
                        lambda: time.perf_counter() - started >= 60 * minutes):  # [distributed] process 0's clock
                    stopped = "time limit"
                periodic = state.step % train_config.checkpoint_every == 0 and planning_at is None
                if periodic or state.step >= total or stopped != "finished":
                    seconds = state.seconds + time.perf_counter() - started
                    on_host = _on_host(cluster, state)  # [distributed] the carried state's rows of every process
                    cluster.on_writer(lambda: write_checkpoint(checkpoint_path, dataclasses.replace(
                        on_host, seconds=seconds), config))  # fmt: skip
                    cluster.on_writer(lambda: _write_curves(folder, state.history, baseline))
                report(state.step, _status(history, baseline))
        finally:
            blocks.close()
    seconds = state.seconds + time.perf_counter() - started
    measured = time.perf_counter() - timed_from if timed_from is not None else 0.0
    rate = session_positions / measured if measured > 0 else 0.0
    if state.best_step is None:  # stopped before its first validation: validate now, so there is a model file
        state.best_step, state.best_valid_nll = state.step, validate(state.params)
        write_model(state.params, state.step, state.best_valid_nll)
    best_params = cluster.shared_arrays(  # [distributed] read by process 0
        lambda: eqx.filter(load_corpus_model(folder / "model.safetensors").model, eqx.is_inexact_array), like=params)
    best_model = eqx.combine(jax.tree_util.tree_map(jnp.asarray, best_params), static)
    result = CorpusTrainResult(
        config=config, model=best_model, vocabulary=tokens.vocab, folder=folder, history=state.history,
        best_step=state.best_step, best_valid_nll=state.best_valid_nll,
        ngram_valid_nll=baseline[0] if baseline else None, ngram_order=baseline[1] if baseline else None,
        steps=state.step, stopped=stopped, seconds=seconds, notes_per_second=rate,
        parameters=parameter_count(best_model),
        corpus={"tunes": len(data.corpus), "skipped": data.corpus.skipped(),
                "split": {part: len(tokens.split.part(part)) for part in ("train", "valid", "test")}},
    )  # fmt: skip
    cluster.on_writer(lambda: (_write_json(folder / "summary.json", result.summary()),
                               _write_curves(folder, state.history, baseline, plot=True)))  # fmt: skip
    return result


# --- [distributed] the training state across processes (see nabiya.distributed) ------------------------------


def _data_fingerprint(data: CorpusData) -> dict:
    """What every process of a run must have alike: the tunes of each part and the vocabulary."""
    tokens = data.tokens
    return {"tunes": {part: fingerprint(list(tokens.split.part(part))) for part in ("train", "valid", "test")},
            "vocabulary": fingerprint(tokens.vocab.to_json()),
            "train_tokens": fingerprint([np.asarray(sequence).tolist() for sequence in tokens.train])}  # fmt: skip


def _placed(cluster: Cluster, state: TrainingState) -> TrainingState:
    """The weights and optimizer state on every device, the carried state split by rows (streams)."""
    return dataclasses.replace(state, params=cluster.replicate(state.params),
                               opt_state=cluster.replicate(state.opt_state), carry=cluster.split_rows(state.carry))  # fmt: skip


def _on_host(cluster: Cluster, state: TrainingState) -> TrainingState:
    """The state with the carried state whole (its rows gathered from every process), for a checkpoint."""
    return dataclasses.replace(state, carry=cluster.to_host(state.carry))


def _shared_state(cluster: Cluster, read, like: TrainingState) -> TrainingState:
    """Process 0 reads a training state; every process gets it."""
    if cluster.process_count == 1:
        return read()
    read_state: list[TrainingState] = []

    def facts_read() -> dict:
        read_state.append(read())
        return _state_facts(read_state[0])

    facts = cluster.shared(facts_read)
    arrays = cluster.shared_arrays(lambda: (read_state[0].params, read_state[0].opt_state, read_state[0].carry),
                                   like=(like.params, like.opt_state, like.carry))  # fmt: skip
    params, opt_state, carry = jax.tree_util.tree_map(jnp.asarray, arrays)
    return dataclasses.replace(like, params=params, opt_state=opt_state, carry=carry, **facts)


def _state_facts(state: TrainingState) -> dict:
    return {field.name: getattr(state, field.name) for field in dataclasses.fields(state)
            if field.name not in ("params", "opt_state", "carry")}  # fmt: skip


def _planned_steps(step: int, per_block: int, seconds_per_step: float, seconds_per_validation: float,
                   validate_every: int, seconds_left: float) -> int:  # fmt: skip
    """The run's length when its remaining time goes to steps and validations at the speed measured so far,
    with 5% to spare (checkpoints, a busier machine); whole blocks, at least one more."""
    per_step = seconds_per_step + seconds_per_validation / validate_every
    more = int(0.95 * max(seconds_left, 0.0) / per_step) // per_block * per_block
    return step + max(more, per_block)


class _Prefetched:
    """Stacks of batches (their ``rows``) made ahead on a thread (:func:`nabiya.batches.prefetch`), from a step
    to ``total``."""

    def __init__(self, batches, start: int, total: int, per_block: int, rows: slice | None = None) -> None:
        self._iterator = prefetch(_blocks(batches, start, total, per_block, rows), depth=2)

    def next(self) -> dict:
        return next(self._iterator)

    def close(self) -> None:
        self._iterator.close()


def _ngram_line(tokens) -> tuple[float, int]:
    """The n-gram's validation NLL and order (fitted on the training tunes, order chosen on validation)."""
    from nabiya import ngram

    baseline = ngram.fit(tokens.train, tokens.vocab, validation=tokens.valid)
    return baseline.validation_nll[baseline.order], baseline.order


def _status(history: dict, baseline) -> str:
    """``valid 2.046 · 10-gram 2.380`` (the last validation NLL; before the first, the training NLL)."""
    if history["valid_nll"]:
        text = f"valid {history['valid_nll'][-1]:.3f}"
    else:
        text = f"train {history['train_nll'][-1]:.3f}" if history["train_nll"] else ""
    if baseline:
        text += f" · {baseline[1]}-gram {baseline[0]:.3f}"
    return text


def _write_curves(folder: Path, history: dict, baseline, *, plot: bool = False) -> None:
    _write_json(folder / "curves.json", {**history, "unit": "nats per note (scored positions)",
                                         "ngram_valid_nll": baseline[0] if baseline else None,
                                         "ngram_order": baseline[1] if baseline else None})  # fmt: skip
    if plot:
        from nabiya.plots import save_figure

        figure = plot_curves(history, ngram_nll=baseline[0] if baseline else None,
                             ngram_order=baseline[1] if baseline else None,
                             title=f"{folder.name}: learning curves")  # fmt: skip
        save_figure(figure, folder / "curves.png")
