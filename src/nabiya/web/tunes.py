"""The "New tunes" panel's server side: corpus models the server offers, and requests for new tunes.

Corpus models (``nabiya train``) reach the page in two ways, and never by a path from the
browser:

- **offered by the server**: ``nabiya serve --models DIR`` lists the corpus model files in
  DIR (``NAME.safetensors``, and ``NAME/model.safetensors``, a run folder), by name;
- **uploaded**: the page sends a model file's bytes; the server keeps them under a name it
  makes, and a worker process reads them with the safe reader
  (:func:`nabiya.load_corpus_model`: checksums, schema, every tensor's shape), so that a
  bad file gets the one-line message the CLI prints.

This module never imports JAX (the server never does): a model's facts for the page (its
meters and keys) come from the JSON document in the file's safetensors header, read with
``safetensors`` alone; the model itself is read, checked and used in a worker
(:mod:`nabiya.web.worker`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from nabiya.config import MAX_SEED, check_whole_number
from nabiya.errors import NabiyaError
from nabiya.web import fields

MAX_MODEL_UPLOAD_BYTES = 64 * 1024 * 1024  # a folk-lstm file is about 4 MB
MAX_TUNES = 16  # tunes per request
MAX_TUNE_TOKENS = 1024  # the length limit of one tune, in tokens
DEFAULT_TUNE_TOKENS = 256
# New tunes are sampled (beam search needs a primer, which the panel does not take).
TUNE_STRATEGIES = ("temperature", "top-k", "top-p", "greedy")
MODEL_SUFFIX = ".safetensors"


def model_facts(document: dict, name: str) -> dict:
    """What the page shows of a corpus model and offers to choose, from its file's JSON document.

    Returns:
        ``name``, ``preset``, ``meters`` (the meters of its training tunes, the most common
        first), ``keys`` (``"D major"``, … likewise), ``modes`` (``{meter: [mode, …]}``, the
        modes its training tunes have in each meter: a key of another mode in that meter is
        refused by :func:`nabiya.generate_tunes`), ``step`` and ``valid_nll`` (when known).

    Raises:
        NabiyaError: when the document is not a corpus model's.

    Example:
        >>> document = {"family": "corpus", "config": {"preset": "folk-lstm"}, "keys": {"G major": 1, "D major": 3},
        ...             "vocabulary": {"conditions": [[["6/8", "major", "", "0"], 3], [["4/4", "major", "", "0"], 1]]},
        ...             "summary": {"step": 40}}
        >>> facts = model_facts(document, "jigs")
        >>> facts["meters"], facts["keys"]
        (['6/8', '4/4'], ['D major', 'G major'])
    """
    if not isinstance(document, dict) or document.get("family") != "corpus":
        raise NabiyaError(f"{name}: not a corpus model (made by 'nabiya train'); the playground's own models "
                          "make music in 'Make new music'")  # fmt: skip
    try:
        meters: dict[str, int] = {}
        modes: dict[str, list[str]] = {}
        for values, count in document["vocabulary"].get("conditions", ()):
            meter, mode = str(values[0]), str(values[1])
            if meter and meter != "?":
                meters[meter] = meters.get(meter, 0) + int(count)
                if mode not in modes.setdefault(meter, []):
                    modes[meter].append(mode)
        keys = {str(key): int(count) for key, count in dict(document.get("keys") or {}).items()}
        summary = dict(document.get("summary") or {})
        preset = str(document["config"].get("preset", "custom"))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise NabiyaError(f"{name}: its metadata is corrupt") from None
    facts = {
        "name": name,
        "preset": preset,
        "meters": sorted(meters, key=lambda meter: (-meters[meter], meter)),
        "keys": sorted(keys, key=lambda key: (-keys[key], key)),
        "modes": modes,
    }
    if isinstance(summary.get("step"), int):
        facts["step"] = summary["step"]
    if isinstance(summary.get("valid_nll_nats"), (int, float)):
        facts["valid_nll"] = round(float(summary["valid_nll_nats"]), 4)
    return facts


def peek_model(path: str | os.PathLike, name: str) -> dict:
    """:func:`model_facts` of a model file, from its header alone (no JAX; the weights are not read or checked).

    Raises:
        NabiyaError: for a file that is not a nabiya corpus model.
    """
    import safetensors

    try:
        with safetensors.safe_open(str(path), framework="numpy") as file:
            metadata = dict(file.metadata() or {})
        document = json.loads(metadata["nabiya"])
    except Exception:  # safetensors raises its own error types; the person needs one line
        raise NabiyaError(f"{name}: not a nabiya model file") from None
    return model_facts(document, name)


def find_models(folder: str | os.PathLike) -> dict[str, dict]:
    """The corpus models in ``folder``, by name: ``{name: {"path": Path, "facts": {...}}}``.

    ``NAME.safetensors`` is named NAME; a run folder ``NAME/`` holding ``model.safetensors``
    (what ``nabiya train --out NAME`` writes) is named NAME too. Other files are passed over.

    Raises:
        NabiyaError: when ``folder`` is not a folder, or holds no corpus model.

    Example:
        >>> find_models("runs")                                    # doctest: +SKIP
        {'folk': {'path': PosixPath('runs/folk/model.safetensors'), 'facts': {...}}}
    """
    return ModelFolder(folder).models(required=True)


class ModelFolder:
    """The folder ``nabiya serve --models DIR`` offers, looked at again whenever it is asked.

    A model trained or copied there while the server runs is offered from the next look,
    and a model removed is no longer offered; a file is read again only when its size or
    modification time changed (a look at an unchanged folder reads no file).

    Example:
        >>> folder = ModelFolder("runs")                           # doctest: +SKIP
        >>> sorted(folder.models())                                # doctest: +SKIP
        ['folk']
    """

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._read: dict[tuple, dict | None] = {}  # (name, path, size, mtime) -> facts, None: not a corpus model

    def models(self, *, required: bool = False) -> dict[str, dict]:
        """The corpus models there now, as :func:`find_models` gives them.

        Raises:
            NabiyaError: the folder is gone, or (``required``) holds no corpus model.
        """
        if not self.folder.is_dir():
            raise NabiyaError(f"--models {self.folder}: no such folder")
        models, read = {}, {}
        for name, path in self._candidates():
            if name in models:
                continue
            try:
                status = path.stat()
            except OSError:  # removed meanwhile
                continue
            key = (name, str(path), status.st_size, status.st_mtime_ns)
            if key in self._read:
                facts = self._read[key]
            else:
                try:
                    facts = peek_model(path, name)
                except NabiyaError:
                    facts = None  # a tutorial model, a checkpoint, something else: not offered
            read[key] = facts
            if facts is not None:
                models[name] = {"path": path, "facts": facts}
        self._read = read
        if required and not models:
            raise NabiyaError(f"--models {self.folder}: no corpus model there (NAME.safetensors or "
                              "NAME/model.safetensors written by 'nabiya train')")  # fmt: skip
        return models

    def _candidates(self) -> list[tuple[str, Path]]:
        candidates = []
        for entry in sorted(self.folder.iterdir()):
            if entry.is_file() and entry.suffix.lower() == MODEL_SUFFIX:
                candidates.append((entry.stem, entry))
            elif entry.is_dir() and (entry / f"model{MODEL_SUFFIX}").is_file():
                candidates.append((entry.name, entry / f"model{MODEL_SUFFIX}"))
        return candidates


def tunes_task(body: dict, facts: dict) -> dict:
    """A request for new tunes, checked against the model's facts (so that bad input never waits in the queue).

    Body keys: ``meter`` and ``key`` (one of the model's, or empty: drawn from the corpus),
    ``count``, ``strategy`` (:data:`TUNE_STRATEGIES`), ``temperature``, ``top_k``, ``top_p``,
    ``length`` (tokens per tune at most), ``seed``. The strategy's options are checked by the
    worker, with the CLI's messages.

    Example:
        >>> facts = {"name": "jigs", "meters": ["6/8"], "keys": ["D major"]}
        >>> tunes_task({"meter": "6/8", "count": 2, "strategy": "top-p", "top_p": 0.9}, facts)["count"]
        2
    """
    task: dict = {"name": facts["name"]}
    for field, plural in (("meter", "meters"), ("key", "keys")):
        value = fields.optional_text(body, field)
        if value is not None and value not in facts[plural]:
            offered = ", ".join(facts[plural]) or "none"
            raise NabiyaError(f"{facts['name']} has no {field} {value!r}: its training tunes' {plural} are {offered}")
        task[field] = value
    task["count"] = fields.whole(body, "count", 1)
    if not 1 <= task["count"] <= MAX_TUNES:
        raise NabiyaError(f"count must be from 1 to {MAX_TUNES} tunes here, not {task['count']}")
    task["max_tokens"] = fields.whole(body, "length", DEFAULT_TUNE_TOKENS)
    if not 2 <= task["max_tokens"] <= MAX_TUNE_TOKENS:
        raise NabiyaError(f"length must be from 2 to {MAX_TUNE_TOKENS:,} tokens, not {task['max_tokens']:,}")
    task["seed"] = fields.whole(body, "seed", 0)
    check_whole_number(task["seed"], "the seed", minimum=0, maximum=MAX_SEED)
    strategy = fields.optional_text(body, "strategy") or "temperature"
    if strategy not in TUNE_STRATEGIES:
        raise NabiyaError(f"new tunes are made with {', '.join(TUNE_STRATEGIES)}, not {strategy!r}")
    task["strategy"] = strategy
    for name, kind in (("temperature", float), ("top_p", float), ("top_k", int)):
        if body.get(name) is not None and body.get(name) != "":
            task[name] = fields.number(body, name, kind)
    return task
