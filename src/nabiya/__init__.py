"""nabiya: teach sequence models to play melodies, and hear, see and extend what they learned.

The notebook API, in a few lines::

    import nabiya
    result = nabiya.run("stateful2")     # the tutorial's best model on 나비야
    result.plot_loss()
    result.play("full_song")
    comparison = nabiya.compare()        # all four models, one table

    result = nabiya.train(preset="folk-lstm", minutes=15)   # a model of 4,187 folk tunes
    nabiya.evaluate(result.model_path, samples=20)           # test NLL against the n-gram
    result.generate(4, meter="6/8", key="D").play(0)         # new jigs in D

Heavy modules (JAX, music21, matplotlib) load on first use, so importing nabiya is quick.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it; resolved on first access.
_EXPORTS = {
    "run": "nabiya.experiment",
    "compare": "nabiya.experiment",
    "analyze": "nabiya.experiment",
    "SongAnalysis": "nabiya.analysis",
    "sweep": "nabiya.sweeps",
    "SweepResult": "nabiya.sweeps",
    "RunResult": "nabiya.experiment",
    "Prediction": "nabiya.experiment",
    "Comparison": "nabiya.experiment",
    "preset": "nabiya.config",
    "PRESETS": "nabiya.config",
    "RunConfig": "nabiya.config",
    "ModelConfig": "nabiya.config",
    "TrainConfig": "nabiya.config",
    "Note": "nabiya.music.note",
    "Song": "nabiya.music.song",
    "get_song": "nabiya.music.songs",
    "song_names": "nabiya.music.songs",
    "read_song": "nabiya.music.formats",
    "write_song": "nabiya.music.formats",
    "convert": "nabiya.music.formats",
    "load_model": "nabiya.checkpoint",
    "save_model": "nabiya.checkpoint",
    "SavedModel": "nabiya.checkpoint",
    "generate": "nabiya.generation",
    "continue_song": "nabiya.generation",
    "make_strategy": "nabiya.generation",
    "Greedy": "nabiya.generation",
    "Temperature": "nabiya.generation",
    "TopK": "nabiya.generation",
    "TopP": "nabiya.generation",
    "Beam": "nabiya.generation",
    "Vocabulary": "nabiya.encoding",
    "NabiyaError": "nabiya.errors",
    # corpora: many tunes, their tokens, batches and baselines
    "load_corpus": "nabiya.music.corpus",
    "corpus_names": "nabiya.music.corpus",
    "Corpus": "nabiya.music.corpus",
    "Split": "nabiya.music.corpus",
    "read_split": "nabiya.music.corpus",
    "TokenConfig": "nabiya.tokens",
    "TuneVocabulary": "nabiya.tokens",
    "tokenize_corpus": "nabiya.tokens",
    "TuneStreams": "nabiya.batches",
    "PackedWindows": "nabiya.batches",
    "Metrics": "nabiya.metrics",
    # corpus models: train, evaluate against the baselines, make new tunes
    "train": "nabiya.corpus_train",
    "evaluate": "nabiya.corpus_eval",
    "generate_tunes": "nabiya.corpus_eval",
    "load_corpus_model": "nabiya.corpus_checkpoint",
    "corpus_preset": "nabiya.corpus_config",
    "CORPUS_PRESETS": "nabiya.corpus_config",
    "CorpusRunConfig": "nabiya.corpus_config",
    "CorpusModelConfig": "nabiya.corpus_config",
    "CorpusTrainConfig": "nabiya.corpus_config",
    "CorpusTrainResult": "nabiya.corpus_train",
    "CorpusEvaluation": "nabiya.corpus_eval",
    "GeneratedTunes": "nabiya.corpus_eval",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nabiya' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
