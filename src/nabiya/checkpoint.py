"""Trained models that last: weights, config, vocabulary and training song in one safe file.

A nabiya model file is a plain `safetensors <https://huggingface.co/docs/safetensors>`_
file, so any safetensors reader can open it and nothing in it is ever unpickled:

- the **tensors** are the model's arrays, named by their place in the model
  (``cell.weight_ih``, ``head.bias``, ``mlp.layers.0.weight``, and ``features``, the
  fixed feature table through which the model reads its tokens), float32;
- the string **metadata** header holds ``format`` (``"nabiya-model"``),
  ``format_version`` (``"2"``) and ``nabiya``, one JSON document with the run config
  (whose ``model.stateful`` says how the model runs), the vocabulary,
  ``n_features``/``n_classes``/``window``, the training song (note codes, title, tempo,
  meter, key and pickup, so generation can start where training did), the training
  summary, and a SHA-256 of the tensors (safetensors itself does not notice a flipped bit
  in the weights).

Files of format version 1 (nabiya 0.1, whose config kept ``stateful`` under ``train`` and
whose tensors had no feature table) are still read: the table is rebuilt from the vocabulary.

Loading rebuilds the model's skeleton with :func:`nabiya.models.make_model` (shapes only,
under ``eval_shape``) and fills in its arrays by name, checking every name, shape and
dtype. Any problem with a file is one :class:`~nabiya.errors.NabiyaError` naming the file
and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.config import RunConfig
from nabiya.encoding import Vocabulary
from nabiya.errors import NabiyaError
from nabiya.fileio import atomic_path
from nabiya.models import Model, make_model
from nabiya.music.song import Song

FORMAT_NAME = "nabiya-model"
FORMAT_VERSION = 2
# safetensors caps its JSON header at 100 MB; anything larger is not a header.
_MAX_HEADER_BYTES = 100_000_000


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A model loaded from a file, with everything needed to use it.

    Attributes:
        model: the trained model, ready to call (it knows its window and whether it is stateful).
        config: the run config it was trained with.
        vocabulary: the tokens it reads and predicts.
        n_classes: the model's output size (token indices ``0 … n_classes - 1``).
        song: the song it was trained on, or ``None`` if the file has none.
        summary: the training summary saved with it (epochs, losses, …), possibly empty.
        path: the file it came from.
        format_version: the file's format version.
    """

    model: Model
    config: RunConfig
    vocabulary: Vocabulary
    n_classes: int
    song: Song | None = None
    summary: dict = field(default_factory=dict)
    path: Path | None = None
    format_version: int = FORMAT_VERSION

    @property
    def window(self) -> int:
        return self.model.window

    @property
    def stateful(self) -> bool:
        return self.model.stateful

    @property
    def feature_table(self) -> np.ndarray:
        """The features of every token, shape ``(len(vocabulary), n_features)``."""
        return np.asarray(self.model.features)

    @property
    def n_features(self) -> int:
        return int(self.feature_table.shape[1])


def save_model(
    path: str | os.PathLike,
    model: Model,
    *,
    config: RunConfig,
    vocabulary: Vocabulary,
    song: Song | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write a trained model and what it needs to run to one file, atomically.

    Nothing is written unless the whole file is: a failure leaves ``path`` as it was.

    Args:
        path: the file to write (``.safetensors`` is a good suffix; any is accepted).
        model: the trained model.
        config: the run config it was built and trained with.
        vocabulary: the vocabulary of its inputs and outputs.
        song: the training song; its first window and length become the defaults of
            :func:`nabiya.generate.continue_song`.
        summary: JSON-serialisable facts about training (numpy scalars and arrays are
            converted), stored as they are.

    Returns:
        ``path``.

    Raises:
        NabiyaError: when the folder cannot be written, or the model does not match
            ``config`` and ``vocabulary``.

    Example:
        >>> save_model("nabiya.safetensors", result.model, config=cfg, vocabulary=vocab,
        ...            song=song)                                          # doctest: +SKIP
    """
    path = Path(path)
    config.validate()
    table = vocabulary.feature_table(config.model.features)
    if not np.array_equal(np.asarray(model.features), table):
        raise NabiyaError(
            f"cannot save {str(path)!r}: the model does not read its tokens through the {config.model.features!r} "
            f"features of its {len(vocabulary)}-token vocabulary"
        )
    if model.stateful != config.model.stateful or model.window != config.window:
        raise NabiyaError(f"cannot save {str(path)!r}: the model's window or statefulness differs from its config's")
    n_features, n_classes = table.shape[1], _n_classes(model)
    # Every saved file must load: check the model against the skeleton loading will build.
    expected = _named_arrays(_skeleton(config, table, n_classes=n_classes))
    tensors = {name: np.asarray(array) for name, array in _named_arrays(model).items()}
    problem = _mismatch(expected, tensors, wanted_by="its config")
    if problem:
        raise NabiyaError(f"cannot save {str(path)!r}: the model does not match its config: {problem}")

    document = {
        "config": config.to_json(),
        "vocabulary": vocabulary.to_json(),
        "n_features": int(n_features),
        "n_classes": int(n_classes),
        "window": int(config.window),
        "song": None
        if song is None
        else {"title": song.title, "tempo_bpm": float(song.tempo_bpm), "codes": song.codes,
              "meter": song.meter, "key": song.key, "pickup": str(song.pickup)},
        "summary": dict(summary or {}),
        "weights_sha256": _digest(tensors),
        "nabiya_version": _nabiya_version(),
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "nabiya": json.dumps(document, ensure_ascii=False, default=_to_json),
    }
    import safetensors.numpy

    data = safetensors.numpy.save(tensors, metadata=metadata)
    with atomic_path(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as error:
            raise NabiyaError(f"cannot write model file {str(path)!r}: {error.strerror or error}") from None
    return path


def load_model(path: str | os.PathLike) -> SavedModel:
    """Read a model written by :func:`save_model`.

    The model is rebuilt with :func:`nabiya.models.make_model` from the saved config and
    its arrays are filled in by name; its predictions are bit for bit those of the model
    that was saved (on the same machine).

    Raises:
        NabiyaError: naming the file, when it is missing, empty, truncated, corrupt, not a
            nabiya model, of a newer format version, or lacks or misshapes a tensor.

    Example:
        >>> saved = load_model("nabiya.safetensors")                       # doctest: +SKIP
        >>> saved.config.preset, saved.window, saved.stateful              # doctest: +SKIP
        ('stateful2', 4, True)
    """
    path = Path(path)
    name = str(path)

    def fail(problem: str) -> NabiyaError:
        return NabiyaError(f"cannot load model {name!r}: {problem}")

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail("no such file") from None
    except IsADirectoryError:
        raise fail("it is a folder, not a file") from None
    except OSError as error:
        raise fail(error.strerror or str(error)) from None

    header = _read_header(data, fail)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise fail("a safetensors file, but not a nabiya model (its metadata has no format 'nabiya-model')")
    version_text = metadata.get("format_version", "")
    if not (isinstance(version_text, str) and version_text.isdigit() and int(version_text) >= 1):
        raise fail(f"unknown format version {version_text!r}")
    version = int(version_text)
    if version > FORMAT_VERSION:
        raise fail(
            f"written in model format version {version} by a newer nabiya; this one reads "
            f"version {FORMAT_VERSION}: upgrade nabiya"
        )
    try:
        document = json.loads(metadata["nabiya"])
        if not isinstance(document, dict):
            raise ValueError("not an object")
        config = RunConfig.from_json(document["config"])
        vocabulary = Vocabulary.from_json(document["vocabulary"])
        n_features = int(document["n_features"])
        n_classes = int(document["n_classes"])
        window = int(document["window"])
        song_data = document.get("song")
        song = None
        if song_data is not None:
            song = Song.from_codes(
                song_data["codes"], title=song_data.get("title", ""), tempo_bpm=song_data.get("tempo_bpm", 120.0),
                meter=song_data.get("meter"), key=song_data.get("key"), pickup=Fraction(song_data.get("pickup") or 0),
            )
        summary = document.get("summary") or {}
        digest = document["weights_sha256"]
    except NabiyaError as error:
        raise fail(f"its metadata is invalid: {error}") from None
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as error:
        detail = f"missing {error}" if isinstance(error, KeyError) else str(error).splitlines()[0]
        raise fail(f"its metadata is corrupt ({detail})") from None

    if window != config.window:
        raise fail(f"its window ({window}) differs from its config's ({config.window})")
    table = vocabulary.feature_table(config.model.features)
    if table.shape[1] != n_features:
        raise fail(f"its vocabulary gives {table.shape[1]} features per note, but the model reads {n_features}")
    if not 1 <= n_classes <= len(vocabulary):
        raise fail(f"it predicts {n_classes} classes, but its vocabulary has {len(vocabulary)} tokens")

    try:
        import safetensors.numpy

        tensors = safetensors.numpy.load(data)
    except Exception as error:  # safetensors raises its own error types; the user needs one line
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise fail(f"its tensors are corrupt ({detail})") from None

    saved_tensors = tensors
    if version == 1:  # nabiya 0.1 kept no feature table: it followed from the vocabulary
        tensors = {**tensors, "features": table}
    skeleton = _skeleton(config, table, n_classes=n_classes)
    params, static = eqx.partition(skeleton, _is_array)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    expected = {_array_name(key_path): leaf for key_path, leaf in leaves}
    problem = _mismatch(expected, tensors)
    if problem:
        raise fail(problem)
    if _digest(saved_tensors) != digest:
        raise fail("its weights are corrupt (their SHA-256 does not match the one saved with them)")
    if not np.array_equal(tensors["features"], table):
        raise fail(f"its feature table is not the {config.model.features!r} features of its vocabulary")
    filled = [jnp.asarray(tensors[_array_name(key_path)]) for key_path, _ in leaves]
    model = eqx.combine(jax.tree_util.tree_unflatten(treedef, filled), static)
    return SavedModel(
        model=model,
        config=config,
        vocabulary=vocabulary,
        n_classes=n_classes,
        song=song,
        summary=summary,
        path=path,
        format_version=version,
    )


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON document saved with a model (config, vocabulary, song, summary, …), without the weights.

    Raises:
        NabiyaError: as :func:`load_model` does for a file that is not a nabiya model.
    """
    path = Path(path)

    def fail(problem: str) -> NabiyaError:
        return NabiyaError(f"cannot read model {str(path)!r}: {problem}")

    try:
        with open(path, "rb") as file:
            head = file.read(8)
            size = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            data = head + file.read(min(size, _MAX_HEADER_BYTES))
    except OSError as error:
        raise fail(error.strerror or str(error)) from None
    metadata = _read_header(data, fail, whole_file=False).get("__metadata__") or {}
    if metadata.get("format") != FORMAT_NAME:
        raise fail("not a nabiya model")
    try:
        return json.loads(metadata["nabiya"])
    except (KeyError, ValueError):
        raise fail("its metadata is corrupt") from None


def _read_header(data: bytes, fail, *, whole_file: bool = True) -> dict:
    """The safetensors JSON header of ``data``, checked enough to trust its offsets."""
    if len(data) == 0:
        raise fail("the file is empty")
    if len(data) < 8:
        raise fail(f"not a nabiya model file (only {len(data)} bytes)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > _MAX_HEADER_BYTES or (size > len(data) - 8 and not data[8:9] == b"{"):
        raise fail("not a nabiya model file (it does not start with a safetensors header)")
    if size > len(data) - 8:
        raise fail(f"the file is truncated ({len(data)} bytes; its header alone needs {8 + size})")
    try:
        header = json.loads(data[8 : 8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        if data[8:9] != b"{":
            raise fail("not a nabiya model file (it does not start with a safetensors header)") from None
        raise fail("its header is corrupt (not valid JSON)") from None
    if not isinstance(header, dict):
        raise fail("its header is corrupt (not a JSON object)")
    if whole_file:
        try:
            ends = [int(info["data_offsets"][1]) for key, info in header.items() if key != "__metadata__"]
            end = max(ends, default=0)
        except (KeyError, TypeError, ValueError, IndexError):
            raise fail("its header is corrupt (bad tensor offsets)") from None
        available = len(data) - 8 - size
        if end > available:
            raise fail(f"the file is truncated ({len(data)} bytes; its tensors need {8 + size + end})")
        if end < available:
            raise fail(f"the file is corrupt ({available - end} bytes after its last tensor)")
    return header


def _skeleton(config: RunConfig, feature_table: np.ndarray, *, n_classes: int) -> Model:
    """A model of the right structure whose arrays are ``jax.ShapeDtypeStruct`` placeholders.

    ``make_model`` under ``eval_shape`` computes no weights: building real ones only to
    replace them costs seconds of compilation in a fresh process.
    """
    return eqx.filter_eval_shape(
        make_model, config.model, feature_table=feature_table, window=config.window, n_classes=n_classes,
        key=jax.random.key(0),
    )  # fmt: skip


def _n_classes(model: Model) -> int:
    """A model's output size, from the shape of its logits."""
    tokens = jax.ShapeDtypeStruct((model.window,), jnp.int32)
    return int(eqx.filter_eval_shape(lambda m, t: m(t, m.initial_state())[0], model, tokens).shape[0])


def _is_array(leaf) -> bool:
    return eqx.is_array(leaf) or isinstance(leaf, jax.ShapeDtypeStruct)


def _array_name(key_path) -> str:
    """A stable name for an array's place in the model: ``cell.weight_ih``, ``mlp.layers.0.bias``.

    Built from the key entries rather than ``jax.tree_util.keystr``, whose format is
    JAX's to change; these names are part of the file format.
    """
    parts = []
    for entry in key_path:
        if isinstance(entry, jax.tree_util.GetAttrKey):
            parts.append(entry.name)
        elif isinstance(entry, jax.tree_util.SequenceKey):
            parts.append(str(entry.idx))
        elif isinstance(entry, jax.tree_util.DictKey):
            parts.append(str(entry.key))
        else:
            parts.append(str(entry))
    return ".".join(parts)


def _named_arrays(model: Model) -> dict[str, jax.Array]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(model, _is_array))
    return {_array_name(key_path): leaf for key_path, leaf in leaves}


def _mismatch(expected: Mapping[str, Any], tensors: Mapping[str, Any], *, wanted_by: str = "the model") -> str | None:
    """What is wrong with ``tensors`` as the arrays of a model shaped like ``expected``, if anything."""
    missing = [name for name in expected if name not in tensors]
    if missing:
        return f"missing tensor{'s' if len(missing) > 1 else ''} {', '.join(repr(n) for n in missing)}"
    unexpected = [name for name in tensors if name not in expected]
    if unexpected:
        return f"unexpected tensor{'s' if len(unexpected) > 1 else ''} {', '.join(repr(n) for n in unexpected)}"
    for name, want in expected.items():
        have = tensors[name]
        if tuple(have.shape) != tuple(want.shape):
            return f"tensor {name!r} has shape {tuple(have.shape)}, {wanted_by} needs {tuple(want.shape)}"
        if np.dtype(have.dtype) != np.dtype(want.dtype):
            return f"tensor {name!r} is {np.dtype(have.dtype).name}, {wanted_by} needs {np.dtype(want.dtype).name}"
    return None


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and little-endian bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        digest.update(f"{name}\0{little.dtype.str}\0{list(array.shape)}\0".encode())
        digest.update(np.ascontiguousarray(little).tobytes())
    return digest.hexdigest()


def _to_json(value: Any) -> Any:
    """numpy and JAX values in a summary, as JSON can hold them."""
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        return np.asarray(value).tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"a model summary holds {type(value).__name__} {value!r}, which JSON cannot store")


def _nabiya_version() -> str:
    try:
        from importlib.metadata import version

        return version("nabiya")
    except Exception:  # an uninstalled checkout has no version; the file does not need one
        return "unknown"
