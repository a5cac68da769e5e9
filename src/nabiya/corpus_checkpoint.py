"""Corpus models on disk: training checkpoints that survive a kill, and model files for generation and evaluation.

**Training checkpoints** (``checkpoint.safetensors`` in a run folder) hold everything a run
needs to continue exactly where it was: the weights, the optimizer's state (Adam's moments
and step count), the LSTM state carried from one chunk to the next (one row per stream),
the step, the learning curves so far and the early-stopping counters. Nothing else is
hidden: the batch of step ``s`` is a function of the data, the config and ``s`` (see
:mod:`nabiya.batches`), and the random key of step ``s`` is ``fold_in(key(seed), s)``.
A checkpoint is written to a temporary file beside the old one, flushed to disk, and
renamed over it, so a kill at any moment leaves either the old checkpoint or the new one,
never a torn one; a full disk leaves the old one and raises a :class:`NabiyaError`.

**Model files** (``model.safetensors``: the best weights, by validation NLL) are nabiya model
files (:mod:`nabiya.checkpoint`: format 3, its generic checks and checksums) of the family
``"corpus"``, registered here: the document holds the run config (model, tokens, corpus
spec and split seed, so :func:`nabiya.evaluate` rebuilds the same test split), the
:class:`~nabiya.tokens.TuneVocabulary` and the keys of the training tunes (to draw a tonic
for new tunes), checked against :data:`CORPUS_SCHEMA`; ``nabiya.load_model`` reads them too.
Both kinds are safetensors files: named tensors and a JSON document in the header, with a
SHA-256 of the tensors; no pickle anywhere.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.checkpoint import (
    ModelFamily,
    ModelFileInfo,
    _array_name,
    _mismatch,
    _read_header,
    load_model,
    read_metadata,
    register_family,
    write_model_file,
)
from nabiya.config import MAX_MODEL_BYTES
from nabiya.corpus_config import CorpusRunConfig
from nabiya.corpus_models import CorpusModel
from nabiya.errors import NabiyaError
from nabiya.tokens import TuneVocabulary

CHECKPOINT_FORMAT = "nabiya-training-checkpoint"
CHECKPOINT_VERSION = 1
FAMILY = "corpus"
# A checkpoint holds the weights and Adam's two moments of each: three model files' worth.
MAX_CHECKPOINT_BYTES = 4 * MAX_MODEL_BYTES


# --- named arrays ----------------------------------------------------------------------------------


def named_arrays(tree, prefix: str) -> dict[str, np.ndarray]:
    """``{"prefix.cells.0.weight_ih": array, ...}``: every array leaf of a pytree, by its place."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(tree, eqx.is_array))
    return {f"{prefix}.{_array_name(path)}" if path else prefix: np.asarray(leaf) for path, leaf in leaves}


def fill_arrays(skeleton, tensors: Mapping[str, np.ndarray], prefix: str, *, wanted_by: str):
    """``skeleton`` with its array leaves replaced by ``tensors[prefix.name]`` (names, shapes, dtypes checked).

    Raises:
        NabiyaError: naming the first missing, unexpected or misshapen tensor.
    """
    params, static = eqx.partition(skeleton, lambda leaf: eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct))
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    expected = {(f"{prefix}.{_array_name(path)}" if path else prefix): leaf for path, leaf in leaves}
    mine = {name: array for name, array in tensors.items() if name == prefix or name.startswith(prefix + ".")}
    problem = _mismatch(expected, mine, wanted_by=wanted_by)
    if problem:
        raise NabiyaError(problem)
    filled = [jnp.asarray(mine[name]) for name in expected]
    return eqx.combine(jax.tree_util.tree_unflatten(treedef, filled), static)


def tensors_digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and little-endian bytes, in name order."""
    from nabiya.checkpoint import _digest

    return _digest(tensors)


def _write_atomically(path: Path, data: bytes, what: str, *, keep_note: str = "") -> None:
    """Write ``data`` to ``path`` via a flushed temporary file and a rename; a full disk is a NabiyaError."""
    path = Path(path)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(name, path)
    except OSError as error:
        Path(name).unlink(missing_ok=True)
        reason = "the disk is full" if error.errno in (errno.ENOSPC, errno.EDQUOT) else (error.strerror or str(error))
        raise NabiyaError(f"cannot write {what} {str(path)!r}: {reason}{keep_note}") from None
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    try:  # the rename itself must reach the disk too
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    except OSError:
        pass


def _serialise(tensors: Mapping[str, np.ndarray], format_name: str, version: int, document: dict) -> bytes:
    import safetensors.numpy

    document = {**document, "tensors_sha256": tensors_digest(tensors)}
    metadata = {"format": format_name, "format_version": str(version),
                "nabiya": json.dumps(document, ensure_ascii=False, default=_to_json)}  # fmt: skip
    return safetensors.numpy.save(dict(tensors), metadata=metadata)


def _deserialise(path: Path, format_name: str, max_version: int, what: str) -> tuple[dict, dict]:
    """``(document, tensors)`` of a file written by :func:`_serialise`, every check done."""
    name = str(path)

    def fail(problem: str) -> NabiyaError:
        return NabiyaError(f"cannot load {what} {name!r}: {problem}")

    from nabiya.fileio import read_regular_file

    try:
        data = read_regular_file(path, limit=MAX_CHECKPOINT_BYTES, what=what)
    except NabiyaError as error:
        raise fail(str(error).split(": ", 1)[-1]) from None
    header = _read_header(data, fail)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != format_name:
        raise fail(f"not a {what} (its metadata has no format {format_name!r})")
    version = metadata.get("format_version", "")
    if not (isinstance(version, str) and version.isdigit() and 1 <= int(version) <= max_version):
        raise fail(f"format version {version!r}: this nabiya reads versions up to {max_version}")
    try:
        document = json.loads(metadata["nabiya"])
        if not isinstance(document, dict):
            raise ValueError("not an object")
    except (KeyError, ValueError) as error:
        raise fail(f"its metadata is corrupt ({error})") from None
    try:
        import safetensors.numpy

        tensors = safetensors.numpy.load(data)
    except Exception as error:  # safetensors raises its own types; the user needs one line
        raise fail(f"its tensors are corrupt ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    if tensors_digest(tensors) != document.get("tensors_sha256"):
        raise fail("its tensors are corrupt (their SHA-256 does not match the one saved with them)")
    return document, tensors


def _to_json(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} {value!r} cannot be stored as JSON")


# --- training checkpoints ------------------------------------------------------------------------------


@dataclass
class TrainingState:
    """Where a run is: what a checkpoint holds (see the module docstring).

    Attributes:
        step: optimizer steps done.
        params: the model's trained arrays (``eqx.partition(model, eqx.is_inexact_array)[0]``).
        opt_state: the optimizer's state.
        carry: the state carried into the next chunk: for the LSTM ``(h, c)``, each ``(B, L, H)``; else ``()``.
        history: ``train_steps``, ``train_nll`` (the mean NLL of the scored positions of each block
            of steps, at its last step), ``valid_steps``, ``valid_nll``.
        best_step, best_valid_nll: the best validation so far (its weights are the model file's).
        bad_validations: validations since the best (early stopping counts them).
        seconds: training time so far, over every session of the run.
        trained_positions: positions trained on so far.
    """

    step: int
    params: Any
    opt_state: Any
    carry: Any
    history: dict = field(default_factory=lambda: {"train_steps": [], "train_nll": [], "valid_steps": [],
                                                   "valid_nll": []})  # fmt: skip
    best_step: int | None = None
    best_valid_nll: float | None = None
    bad_validations: int = 0
    seconds: float = 0.0
    trained_positions: int = 0


def write_checkpoint(path: str | os.PathLike, state: TrainingState, config: CorpusRunConfig) -> Path:
    """Write a training checkpoint atomically (see the module docstring).

    Raises:
        NabiyaError: when it cannot be written (a full disk: the previous checkpoint is intact).
    """
    path = Path(path)
    tensors = {**named_arrays(state.params, "params"), **named_arrays(state.opt_state, "optimizer"),
               **named_arrays(state.carry, "carry")}  # fmt: skip
    document = {
        "step": int(state.step),
        "config": config.to_json(),
        "history": state.history,
        "best_step": state.best_step,
        "best_valid_nll": state.best_valid_nll,
        "bad_validations": int(state.bad_validations),
        "seconds": float(state.seconds),
        "trained_positions": int(state.trained_positions),
        "random_state": f"none saved: the key of step s is fold_in(key({config.train.seed}), s)",
        "data_position": f"step {int(state.step)}: the batch of step s is made from the data, the config and s",
    }
    data = _serialise(tensors, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, document)
    previous = _previous_step(path)
    keep = f"; the last good checkpoint (step {previous}) is intact" if previous is not None else ""
    _write_atomically(path, data, f"the checkpoint of step {state.step}", keep_note=keep)
    return path


def _previous_step(path: Path) -> int | None:
    try:
        from nabiya.checkpoint import _read_header as read_header

        with open(path, "rb") as file:
            head = file.read(8)
            size = int.from_bytes(head, "little") if len(head) == 8 else 0
            data = head + file.read(min(size, 100_000_000))
        metadata = read_header(data, lambda problem: NabiyaError(problem), whole_file=False).get("__metadata__", {})
        return int(json.loads(metadata["nabiya"])["step"])
    except (OSError, NabiyaError, KeyError, ValueError, TypeError):
        return None


def read_checkpoint(path: str | os.PathLike, skeleton: TrainingState, config: CorpusRunConfig) -> TrainingState:
    """The training state a checkpoint holds, shaped like ``skeleton`` (a fresh state of the same config).

    Raises:
        NabiyaError: when the file is not a checkpoint, is corrupt, or was written for another config.
    """
    path = Path(path)
    document, tensors = _deserialise(path, CHECKPOINT_FORMAT, CHECKPOINT_VERSION, "training checkpoint")
    where = f"cannot resume from {str(path)!r}"
    try:
        saved = CorpusRunConfig.from_json(document["config"])
    except (KeyError, NabiyaError) as error:
        raise NabiyaError(f"{where}: its config is unreadable ({error})") from None
    differences = config.differences(saved)
    if differences:
        name, asked, had = differences[0]
        raise NabiyaError(f"{where}: it was written for another config ({name} is {had!r} there, {asked!r} here)")
    try:
        params = fill_arrays(skeleton.params, tensors, "params", wanted_by="the model")
        opt_state = fill_arrays(skeleton.opt_state, tensors, "optimizer", wanted_by="the optimizer")
        carry = fill_arrays(skeleton.carry, tensors, "carry", wanted_by="the carried state")
    except NabiyaError as error:
        raise NabiyaError(f"{where}: {error}") from None
    history = document.get("history") or skeleton.history
    return TrainingState(
        step=int(document["step"]), params=params, opt_state=opt_state, carry=carry, history=history,
        best_step=document.get("best_step"), best_valid_nll=document.get("best_valid_nll"),
        bad_validations=int(document.get("bad_validations", 0)), seconds=float(document.get("seconds", 0.0)),
        trained_positions=int(document.get("trained_positions", 0)),
    )  # fmt: skip


# --- model files ------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SavedCorpusModel:
    """A corpus model loaded from a file, with what it needs to be used.

    Attributes:
        model: the trained model (the model contract; ``sequence_logits`` too).
        config: the run config it was trained with (model, tokens, corpus spec and split seed).
        vocabulary: its tokens.
        keys: ``{"D major": tunes, ...}``, the keys of the training tunes (for drawing a tonic).
        summary: facts about its training (step, validation NLL, seconds, ...).
        path: the file it came from.
    """

    model: CorpusModel
    config: CorpusRunConfig
    vocabulary: TuneVocabulary
    keys: dict = field(default_factory=dict)
    summary: dict = field(default_factory=dict)
    path: Path | None = None

    @property
    def window(self) -> int:
        return self.model.window

    @property
    def stateful(self) -> bool:
        return self.model.stateful


def save_corpus_model(path: str | os.PathLike, model: CorpusModel, *, config: CorpusRunConfig,
                      vocabulary: TuneVocabulary, keys: Mapping[str, int] | None = None,
                      summary: Mapping[str, Any] | None = None) -> Path:  # fmt: skip
    """Write a corpus model and what it needs to one model file, atomically (see the module docstring).

    Raises:
        NabiyaError: when the file cannot be written, or the model does not match its config.

    Example:
        >>> save_corpus_model("model.safetensors", model, config=config, vocabulary=data.vocab)  # doctest: +SKIP
    """
    path = Path(path)
    tensors = named_arrays(eqx.filter(model, eqx.is_array), "model")
    try:
        fill_arrays(_model_skeleton(config, vocabulary), tensors, "model", wanted_by="its config")
    except NabiyaError as error:
        raise NabiyaError(f"cannot save {str(path)!r}: the model does not match its config: {error}") from None
    document = {
        "config": config.to_json(),
        "vocabulary": vocabulary.to_json(),
        "keys": dict(keys or {}),
        "summary": json.loads(json.dumps(dict(summary or {}), default=_to_json)),
    }
    return write_model_file(path, tensors, document, family=FAMILY)


def load_corpus_model(path: str | os.PathLike) -> SavedCorpusModel:
    """Read a corpus model file (:func:`nabiya.load_model` does the same for any family);
    its predictions are the saved model's, bit for bit.

    Raises:
        NabiyaError: naming the file, when it is missing, corrupt, or a model of another family.

    Example:
        >>> saved = load_corpus_model("runs/folk/model.safetensors")          # doctest: +SKIP
        >>> saved.config.preset, saved.model.window                           # doctest: +SKIP
        ('folk-lstm', 1)
    """
    loaded = load_model(path)
    if not isinstance(loaded, SavedCorpusModel):
        raise NabiyaError(f"{str(path)!r} is a model of the tutorial, not a corpus model of 'nabiya train'")
    return loaded


def is_corpus_model_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a corpus model file (by its header alone; False for anything unreadable)."""
    try:
        return Path(path).is_file() and read_metadata(path).get("family") == FAMILY
    except NabiyaError:
        return False


def _build_corpus_model(document: dict, tensors: Mapping[str, np.ndarray], info: ModelFileInfo) -> SavedCorpusModel:
    """A :class:`SavedCorpusModel` from a document that matched :data:`CORPUS_SCHEMA` (the family's builder)."""
    config = CorpusRunConfig.from_json(document["config"])
    vocabulary = TuneVocabulary.from_json(document["vocabulary"])
    model = fill_arrays(_model_skeleton(config, vocabulary), tensors, "model", wanted_by="its config")
    if config.model.factored and not np.array_equal(np.asarray(model.parts), _parts(config, vocabulary)):
        raise NabiyaError("its pitch and duration table is not its vocabulary's")
    keys = {str(key): int(count) for key, count in dict(document.get("keys") or {}).items()}
    return SavedCorpusModel(model, config, vocabulary, keys, dict(document.get("summary") or {}), info.path)


def _whole(low: int, high: int) -> dict:
    return {"type": "integer", "minimum": low, "maximum": high}


_NUMBER = {"type": "number"}
MAX_CORPUS_WIDTH = 65_536
MAX_CORPUS_CONTEXT = 65_536

CORPUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["config", "vocabulary", "weights_sha256"],
    "properties": {
        "family": {"const": FAMILY},
        "config": {
            "type": "object",
            "required": ["format", "preset", "model", "train", "tokens", "corpus"],
            "properties": {
                "format": {"const": "nabiya-corpus-run"},
                "preset": {"type": "string", "maxLength": 100},
                "model": {
                    "type": "object",
                    "required": ["kind", "size", "layers", "embedding_size", "dropout", "heads", "context", "mlp_ratio"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"enum": ["lstm", "transformer"]},
                        "size": _whole(1, MAX_CORPUS_WIDTH),
                        "layers": _whole(1, 256),
                        "embedding_size": _whole(1, MAX_CORPUS_WIDTH),
                        "dropout": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
                        "heads": _whole(1, MAX_CORPUS_WIDTH),
                        "context": _whole(1, MAX_CORPUS_CONTEXT),
                        "mlp_ratio": _whole(1, 64),
                        "tied": {"type": "boolean"},
                        "factored": {"type": "boolean"},
                    },
                },
                "train": {"type": "object"},
                "tokens": {"type": "object", "required": ["transpose", "min_count", "rare"]},
                "corpus": {
                    "type": "object",
                    "required": ["sources", "min_notes", "split", "split_seed"],
                    "properties": {
                        "sources": {"type": "array", "items": {"type": "string", "maxLength": 4096}, "maxItems": 1000},
                        "min_notes": _whole(0, 10**9),
                        "split": {"type": "array", "items": {**_NUMBER, "minimum": 0, "maximum": 1}, "minItems": 3,
                                  "maxItems": 3},
                        "split_seed": _whole(-(2**63), 2**63 - 1),
                    },
                },
            },
        },
        "vocabulary": {
            "type": "object",
            "required": ["format", "tokens", "config"],
            "properties": {"tokens": {"type": "array", "items": {"type": "string", "maxLength": 64}, "minItems": 5,
                                      "maxItems": 100_000}},
        },
        "keys": {"type": "object", "additionalProperties": _whole(0, 10**9)},
        "summary": {"type": "object"},
        "weights_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "nabiya_version": {"type": "string", "maxLength": 100},
    },
}

register_family(ModelFamily(FAMILY, schema=CORPUS_SCHEMA, build=_build_corpus_model))


def token_parts(vocabulary: TuneVocabulary) -> np.ndarray:
    """``(V, 2)`` int32: each token's pitch and duration as ids from 0 (``<eos>``, ``<unk>`` and the
    tokens no model predicts have ids of their own), for a factored model (see :mod:`nabiya.corpus_models`)."""
    columns = []
    for groups, _ in (vocabulary.pitch_groups, vocabulary.duration_groups):
        columns.append(np.where(groups < 0, groups.max() + 1, groups))
    return np.stack(columns, axis=1).astype(np.int32)


def _parts(config: CorpusRunConfig, vocabulary: TuneVocabulary):
    from nabiya.corpus_models import part_table

    return part_table(config.model, len(vocabulary), token_parts(vocabulary))


def _model_skeleton(config: CorpusRunConfig, vocabulary: TuneVocabulary):
    """The model's structure, arrays as shapes only (nothing computed, nothing compiled)."""
    from nabiya.corpus_models import initialise

    config.model.validate()
    parts = _parts(config, vocabulary)
    count = 0 if parts is None else int(parts.max()) + 1
    return eqx.filter_eval_shape(initialise, config.model, len(vocabulary), jax.random.key(0), parts, count)
