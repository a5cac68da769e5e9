"""Trained models that last: weights, config, vocabulary and training song in one safe file.

A nabiya model file is a plain `safetensors <https://huggingface.co/docs/safetensors>`_
file (``.safetensors``), so any safetensors reader can open it and nothing in it is ever
unpickled:

- the **tensors** are the model's arrays, named by their place in the model
  (``cell.weight_ih``, ``head.bias``, ``mlp.layers.0.weight``, and ``features``, the
  fixed feature table through which the model reads its tokens), float32;
- the string **metadata** header holds ``format`` (``"nabiya-model"``),
  ``format_version`` (``"3"``), ``nabiya``, one JSON document describing the model, and
  ``sha256``, a SHA-256 of the format, the version and the document's exact text.
  The document holds ``family`` (which kind of model: ``"tutorial"`` for the tutorial's
  MLP and LSTMs), ``weights_sha256`` (a SHA-256 of every tensor's name, dtype, shape and
  bytes) and what the family needs: for the tutorial family the run config (whose
  ``model.stateful`` says how the model runs), the vocabulary,
  ``n_features``/``n_classes``/``window``, the training song (note codes, title, tempo,
  meter, key and pickup, so generation can start where training did) and the training
  summary. So the checksums cover the whole file: one changed byte of the vocabulary is
  refused, as is one flipped bit of a weight (safetensors itself notices neither).

Loading is in two parts:

1. **Generic** (:func:`load_model`, the same for every family): a bounded read (a regular
   file of at most ``MAX_MODEL_BYTES``; a FIFO or ``/dev/zero`` is refused without
   blocking), the safetensors header, the format name, the version (``1`` … ``3``), the
   document parsed as strict JSON (no NaN or Infinity, bounded numbers), the family's
   JSON Schema (types and ranges of every field), then the family's builder; last, the
   checksums.
2. **Per family**: a :class:`ModelFamily` registered with :func:`register_family` gives
   the JSON Schema of its document and a ``build(document, tensors, info)`` function that
   makes the loaded object (for the tutorial family a :class:`SavedModel`: it rebuilds the
   model's skeleton with :func:`nabiya.models.make_model` under ``eval_shape`` and fills
   in its arrays by name, checking every name, shape and dtype). A second family (say,
   corpus models over a token vocabulary) registers itself and writes its files with
   :func:`write_model_file`, without touching the generic part::

       register_family(ModelFamily("corpus", schema=CORPUS_SCHEMA, build=build_corpus_model))
       write_model_file(path, tensors, {"vocabulary": ..., ...}, family="corpus")
       load_model(path)   # -> whatever build_corpus_model returns

Files of format versions 1 and 2 are still read (as the tutorial family; their checksum
covers the weights only). Version 1 (nabiya 0.1) kept ``stateful`` under ``train`` and had
no feature table: the table is rebuilt from the vocabulary.

Any problem with a file is one :class:`~nabiya.errors.NabiyaError`, ``cannot load model
'PATH': …``, naming the file and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import struct
from fractions import Fraction
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from nabiya.config import (
    MAX_EPOCHS,
    MAX_HIDDEN_SIZE,
    MAX_MODEL_BYTES,
    MAX_SEED,
    MAX_WINDOW,
    MODEL_KINDS,
    RunConfig,
)
from nabiya.encoding import FEATURE_ENCODINGS, Vocabulary
from nabiya.errors import NabiyaError
from nabiya.fileio import atomic_path, read_regular_file
from nabiya.models import Model, make_model
from nabiya.music.limits import MAX_SONG_NOTES, MAX_TEMPO_BPM, MIN_TEMPO_BPM
from nabiya.music.song import Song

FORMAT_NAME = "nabiya-model"
FORMAT_VERSION = 3  # 3: the header's checksum covers the document; a family field
READABLE_VERSIONS = (1, 2, 3)
DEFAULT_FAMILY = "tutorial"  # files of versions 1 and 2 hold tutorial models
# safetensors caps its JSON header at 100 MB; anything larger is not a header.
_MAX_HEADER_BYTES = 100_000_000
# A vocabulary of more tokens than this is not one a melody model reads.
MAX_VOCABULARY = 100_000


@dataclass(frozen=True)
class ModelFileInfo:
    """What the generic part of loading learned about a file, for a family's builder."""

    path: Path
    format_version: int


@dataclass(frozen=True)
class ModelFamily:
    """A kind of model the file format holds, and how to load it.

    Attributes:
        name: the document's ``family`` value.
        schema: the JSON Schema (draft 2020-12) its document must match: types and
            ranges of every field, so ``build`` meets only well-formed values.
        build: ``build(document, tensors, info) -> loaded object``; raises
            :class:`~nabiya.errors.NabiyaError` with the problem (the file name is added).
            ``tensors`` maps names to numpy arrays; the weights' checksum is checked
            after ``build`` returns, by the generic part.
    """

    name: str
    schema: Mapping[str, Any]
    build: Callable[[dict, Mapping[str, np.ndarray], ModelFileInfo], Any]


FAMILIES: dict[str, ModelFamily] = {}
# Families defined in other modules, imported when a file of theirs is first read.
FAMILY_MODULES = {"corpus": "nabiya.corpus_checkpoint"}


def register_family(family: ModelFamily) -> ModelFamily:
    """Make ``load_model`` read files of this family (replacing one of the same name).

    Example:
        >>> register_family(ModelFamily("corpus", schema={"type": "object"}, build=build))   # doctest: +SKIP
    """
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(family.schema)  # a bad schema is a bug: fail at registration
    FAMILIES[family.name] = family
    return family


@dataclass(frozen=True, eq=False)
class SavedModel:
    """A tutorial-family model loaded from a file, with everything needed to use it.

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


# --- the generic part: any family ---------------------------------------------------------


def write_model_file(
    path: str | os.PathLike, tensors: Mapping[str, np.ndarray], document: Mapping[str, Any], *, family: str
) -> Path:
    """Write one model file, atomically: tensors plus a JSON document, with checksums.

    Adds ``family``, ``weights_sha256`` and ``nabiya_version`` to the document, and the
    header's ``sha256``. Nothing is written unless the whole file is.

    Raises:
        NabiyaError: for an unregistered family, a document JSON cannot hold, a document
            its family's schema refuses (a bug: the file would not load), or a place that
            cannot be written.
    """
    import safetensors.numpy

    path = Path(path)
    if family not in FAMILIES:
        raise NabiyaError(f"cannot save {str(path)!r}: no model family {family!r} is registered")
    arrays = {name: np.ascontiguousarray(np.asarray(array)) for name, array in tensors.items()}
    full = {"family": family, **document, "weights_sha256": _digest(arrays), "nabiya_version": _nabiya_version()}
    try:
        text = json.dumps(full, ensure_ascii=False, default=_to_json, allow_nan=False)
    except ValueError as error:
        raise NabiyaError(f"cannot save {str(path)!r}: {error}") from None
    problem = _schema_problem(json.loads(text), FAMILIES[family].schema)
    if problem:
        raise NabiyaError(f"cannot save {str(path)!r}: the model's description is invalid: {problem}")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "nabiya": text,
        "sha256": _header_digest(FORMAT_VERSION, text),
    }
    data = safetensors.numpy.save(arrays, metadata=metadata)
    with atomic_path(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as error:
            raise NabiyaError(f"cannot write model file {str(path)!r}: {error.strerror or error}") from None
    return path


def load_model(path: str | os.PathLike) -> SavedModel | Any:
    """Read a model file written by :func:`save_model` (or another family's writer).

    The generic checks run first, then the family's schema and builder, then the
    checksums (see the module docstring). For the tutorial family the model is rebuilt
    from the saved config and its predictions are bit for bit those of the model that
    was saved (on the same machine).

    Returns:
        A :class:`SavedModel` for the tutorial family; what its builder returns for another.

    Raises:
        NabiyaError: naming the file, when it is missing, not a regular file, too large,
            empty, truncated, corrupt, not a nabiya model, of a newer format version or
            an unknown family, or when any header value is out of its type or range.

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
        data = read_regular_file(path, limit=MAX_MODEL_BYTES, what="model")
    except NabiyaError as error:
        raise fail(str(error).split(": ", 1)[-1]) from None
    header = _read_header(data, fail)
    metadata = header.get("__metadata__")
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise fail("a safetensors file, but not a nabiya model (its metadata has no format 'nabiya-model')")
    version = _format_version(metadata.get("format_version"), fail)
    text = metadata.get("nabiya")
    if not isinstance(text, str):
        raise fail("its metadata is corrupt (no 'nabiya' document)")
    try:
        document = _strict_json(text)
    except ValueError as error:
        raise fail(f"its metadata is corrupt ({_first_line(error)})") from None
    if not isinstance(document, dict):
        raise fail("its metadata is corrupt (the 'nabiya' document is not an object)")
    family_name = document.get("family", DEFAULT_FAMILY) if version >= 3 else DEFAULT_FAMILY
    if version >= 3 and "family" not in document:
        raise fail("its metadata is invalid: 'family' is a required property")
    if isinstance(family_name, str) and family_name not in FAMILIES and family_name in FAMILY_MODULES:
        importlib.import_module(FAMILY_MODULES[family_name])  # the module registers its family
    if not isinstance(family_name, str) or family_name not in FAMILIES:
        raise fail(f"a model of family {_shown(family_name)}, which this nabiya does not know: upgrade nabiya")
    family = FAMILIES[family_name]
    problem = _schema_problem(document, family.schema)
    if problem:
        raise fail(f"its metadata is invalid: {problem}")

    try:
        import safetensors.numpy

        tensors = safetensors.numpy.load(data)
    except Exception as error:  # safetensors raises its own error types; the user needs one line
        raise fail(f"its tensors are corrupt ({_first_line(error) or type(error).__name__})") from None
    info = ModelFileInfo(path=path, format_version=version)
    try:
        loaded = family.build(document, tensors, info)
    except NabiyaError as error:
        raise fail(str(error)) from None
    except (KeyError, TypeError, ValueError, ArithmeticError, IndexError, AttributeError, RecursionError) as error:
        # The schema should make these impossible; a file must still never give a traceback.
        raise fail(f"its metadata is invalid ({type(error).__name__}: {_first_line(error)})") from None

    if version >= 3 and metadata.get("sha256") != _header_digest(version, text):
        raise fail("its header is corrupt (its SHA-256 does not match the one saved with it)")
    if _digest(tensors) != document.get("weights_sha256"):  # the tensors as the file holds them
        raise fail("its weights are corrupt (their SHA-256 does not match the one saved with them)")
    return loaded


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON document saved with a model (config, vocabulary, song, summary, …), without the weights.

    Raises:
        NabiyaError: as :func:`load_model` does for a file that is not a nabiya model.
    """
    path = Path(path)

    def fail(problem: str) -> NabiyaError:
        return NabiyaError(f"cannot read model {str(path)!r}: {problem}")

    try:
        data = read_regular_file(path, limit=MAX_MODEL_BYTES, what="model")
    except NabiyaError as error:
        raise fail(str(error).split(": ", 1)[-1]) from None
    metadata = _read_header(data, fail, whole_file=False).get("__metadata__") or {}
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise fail("not a nabiya model")
    try:
        document = _strict_json(metadata["nabiya"])
    except (KeyError, TypeError, ValueError):
        raise fail("its metadata is corrupt") from None
    if not isinstance(document, dict):
        raise fail("its metadata is corrupt")
    return document


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
    except (UnicodeDecodeError, ValueError, RecursionError):
        if data[8:9] != b"{":
            raise fail("not a nabiya model file (it does not start with a safetensors header)") from None
        raise fail("its header is corrupt (not valid JSON)") from None
    if not isinstance(header, dict):
        raise fail("its header is corrupt (not a JSON object)")
    if whole_file:
        try:
            ends = [int(info["data_offsets"][1]) for key, info in header.items() if key != "__metadata__"]
            end = max(ends, default=0)
        except (KeyError, TypeError, ValueError, IndexError, OverflowError):
            raise fail("its header is corrupt (bad tensor offsets)") from None
        available = len(data) - 8 - size
        if end > available:
            raise fail(f"the file is truncated ({len(data)} bytes; its tensors need {8 + size + end})")
        if end < available:
            raise fail(f"the file is corrupt ({available - end} bytes after its last tensor)")
    return header


def _format_version(text, fail) -> int:
    # ASCII digits only ("¹".isdigit() is true), and few of them (int() of 5,000 digits raises).
    if not (isinstance(text, str) and re.fullmatch(r"[0-9]{1,6}", text) and int(text) >= 1):
        raise fail(f"unknown format version {_shown(text)}")
    version = int(text)
    if version > FORMAT_VERSION:
        raise fail(
            f"written in model format version {version} by a newer nabiya; this one reads "
            f"versions 1 to {FORMAT_VERSION}: upgrade nabiya"
        )
    return version


def _strict_json(text: str) -> Any:
    """JSON as the standard says: no NaN or Infinity, no number that overflows, no deep nesting."""

    def refuse_constant(name: str):
        raise ValueError(f"{name} is not a JSON number")

    def finite_float(digits: str) -> float:
        value = float(digits)
        if not math.isfinite(value):
            raise ValueError(f"the number {_shown(digits)} is too large")
        return value

    def bounded_int(digits: str) -> int:
        if len(digits) > 40:
            raise ValueError(f"a number of {len(digits)} digits")
        return int(digits)

    try:
        return json.loads(text, parse_constant=refuse_constant, parse_float=finite_float, parse_int=bounded_int)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _schema_problem(document: Any, schema: Mapping[str, Any]) -> str | None:
    """The first way ``document`` breaks ``schema``, in one line naming the field, or None."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    try:
        error = best_match(Draft202012Validator(schema).iter_errors(document))
    except RecursionError:
        return "nested too deeply"
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path)
    message = _first_line(error.message)
    if len(message) > 200:
        message = message[:200] + "…"
    return f"{where}: {message}" if where else message


def _header_digest(version: int, text: str) -> str:
    return hashlib.sha256(f"{FORMAT_NAME}\0{version}\0".encode() + text.encode("utf-8")).hexdigest()


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 30 else f"{text[:20]}… ({len(text)} characters)"


def _first_line(error) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else ""


# --- the tutorial family: the tutorial's MLP and LSTMs --------------------------------------

_WHOLE = {"type": "integer"}
_NUMBER = {"type": "number"}
_TEXT = {"type": "string", "maxLength": 1000}
_CODES = {"type": "array", "items": {"type": "string", "maxLength": 64}}

TUTORIAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["config", "vocabulary", "n_features", "n_classes", "window", "weights_sha256"],
    "properties": {
        "family": {"const": "tutorial"},
        "config": {
            "type": "object",
            "required": ["preset", "model", "train", "window", "seed"],
            "additionalProperties": False,
            "properties": {
                "preset": {"type": "string", "maxLength": 100},
                "model": {
                    "type": "object",
                    "required": ["kind", "hidden_size", "features"],
                    "additionalProperties": False,
                    "properties": {
                        "kind": {"type": "string", "maxLength": 20},
                        "hidden_size": {**_WHOLE, "minimum": 1, "maximum": MAX_HIDDEN_SIZE},
                        "features": {"type": "string", "maxLength": 20},
                        "stateful": {"type": "boolean"},
                    },
                },
                "train": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "epochs": {**_WHOLE, "minimum": 1, "maximum": MAX_EPOCHS},
                        "batch_size": {**_WHOLE, "minimum": 1, "maximum": MAX_SONG_NOTES},
                        "shuffle": {"type": "boolean"},
                        "learning_rate": {**_NUMBER, "exclusiveMinimum": 0, "maximum": 1e6},
                        "beta1": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
                        "beta2": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
                        "epsilon": {**_NUMBER, "exclusiveMinimum": 0, "maximum": 1e6},
                        "epochs_per_block": {**_WHOLE, "minimum": 1, "maximum": MAX_EPOCHS},
                        "stateful": {"type": "boolean"},  # nabiya 0.1 (format 1) kept it here
                    },
                },
                "window": {**_WHOLE, "minimum": 1, "maximum": MAX_WINDOW},
                "seed": {**_WHOLE, "minimum": 0, "maximum": MAX_SEED},
            },
        },
        "vocabulary": {
            "type": "object",
            "required": ["codes"],
            "properties": {
                "name": {"type": "string", "maxLength": 100},
                "codes": {**_CODES, "minItems": 1, "maxItems": MAX_VOCABULARY},
            },
        },
        "n_features": {**_WHOLE, "minimum": 1, "maximum": MAX_VOCABULARY},
        "n_classes": {**_WHOLE, "minimum": 1, "maximum": MAX_VOCABULARY},
        "window": {**_WHOLE, "minimum": 1, "maximum": MAX_WINDOW},
        "song": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "required": ["codes"],
                    "properties": {
                        "title": _TEXT,
                        "tempo_bpm": {**_NUMBER, "minimum": MIN_TEMPO_BPM, "maximum": MAX_TEMPO_BPM},
                        "codes": {**_CODES, "maxItems": MAX_SONG_NOTES},
                        "meter": {"type": ["string", "null"], "maxLength": 20},
                        "key": {"type": ["string", "null"], "maxLength": 40},
                        "pickup": {"type": ["string", "integer", "null"], "maxLength": 40},
                    },
                },
            ]
        },
        "summary": {"type": "object"},
        "weights_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "nabiya_version": {"type": "string", "maxLength": 100},
    },
}


def save_model(
    path: str | os.PathLike,
    model: Model,
    *,
    config: RunConfig,
    vocabulary: Vocabulary,
    song: Song | None = None,
    summary: Mapping[str, Any] | None = None,
) -> Path:
    """Write a trained tutorial-family model and what it needs to run to one file, atomically.

    Nothing is written unless the whole file is: a failure leaves ``path`` as it was.

    Args:
        path: the file to write (``.safetensors`` by convention; any name is accepted).
        model: the trained model.
        config: the run config it was built and trained with.
        vocabulary: the vocabulary of its inputs and outputs.
        song: the training song; its first window and length become the defaults of
            :func:`nabiya.generation.continue_song`.
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
    }
    return write_model_file(path, tensors, document, family=DEFAULT_FAMILY)


def _build_tutorial_model(document: dict, tensors: Mapping[str, np.ndarray], info: ModelFileInfo) -> SavedModel:
    """A :class:`SavedModel` from a document that matched :data:`TUTORIAL_SCHEMA` (the tutorial family's builder)."""
    try:
        config = RunConfig.from_json(document["config"])
    except TypeError as error:  # a field the dataclasses do not know
        raise NabiyaError(f"its config is invalid ({_first_line(error)})") from None
    except NabiyaError as error:
        raise NabiyaError(f"its metadata is invalid: {error}") from None
    if config.model.kind not in MODEL_KINDS or config.model.features not in FEATURE_ENCODINGS:
        raise NabiyaError("its metadata is invalid: unknown model kind or features")
    if "stateful" not in document["config"]["model"] and "stateful" not in document["config"]["train"]:
        raise NabiyaError("its metadata is invalid: config.model: 'stateful' is a required property")
    try:
        vocabulary = Vocabulary.from_json(document["vocabulary"])
    except NabiyaError as error:
        raise NabiyaError(f"its vocabulary is invalid: {error}") from None
    if len(set(vocabulary.tokens)) != len(vocabulary.tokens):
        raise NabiyaError("its vocabulary is invalid: it names one note twice")
    n_features, n_classes, window = document["n_features"], document["n_classes"], document["window"]
    song = None
    if document.get("song") is not None:
        song_data = document["song"]
        try:
            pickup = Fraction(song_data.get("pickup") or 0)
        except (ValueError, ZeroDivisionError, TypeError):
            raise NabiyaError(f"its song's pickup {_shown(song_data.get('pickup'))} is not a fraction") from None
        try:
            song = Song.from_codes(
                song_data["codes"], title=song_data.get("title", ""), tempo_bpm=song_data.get("tempo_bpm", 120.0),
                meter=song_data.get("meter"), key=song_data.get("key"), pickup=pickup,
            )  # fmt: skip
        except NabiyaError as error:
            raise NabiyaError(f"its training song is invalid: {error}") from None
    summary = document.get("summary") or {}

    if window != config.window:
        raise NabiyaError(f"its window ({window}) differs from its config's ({config.window})")
    table = vocabulary.feature_table(config.model.features)
    if table.shape[1] != n_features:
        raise NabiyaError(f"its vocabulary gives {table.shape[1]} features per note, but the model reads {n_features}")
    if not 1 <= n_classes <= len(vocabulary):
        raise NabiyaError(f"it predicts {n_classes} classes, but its vocabulary has {len(vocabulary)} tokens")

    if info.format_version == 1:  # nabiya 0.1 kept no feature table: it followed from the vocabulary
        tensors = {**tensors, "features": table}
    skeleton = _skeleton(config, table, n_classes=n_classes)
    params, static = eqx.partition(skeleton, _is_array)
    leaves, treedef = jax.tree_util.tree_flatten_with_path(params)
    expected = {_array_name(key_path): leaf for key_path, leaf in leaves}
    problem = _mismatch(expected, tensors)
    if problem:
        raise NabiyaError(problem)
    if not np.array_equal(tensors["features"], table):
        raise NabiyaError(f"its feature table is not the {config.model.features!r} features of its vocabulary")
    filled = [jnp.asarray(tensors[_array_name(key_path)]) for key_path, _ in leaves]
    model = eqx.combine(jax.tree_util.tree_unflatten(treedef, filled), static)
    return SavedModel(
        model=model,
        config=config,
        vocabulary=vocabulary,
        n_classes=n_classes,
        song=song,
        summary=summary,
        path=info.path,
        format_version=info.format_version,
    )


register_family(ModelFamily(DEFAULT_FAMILY, schema=TUTORIAL_SCHEMA, build=_build_tutorial_model))


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
