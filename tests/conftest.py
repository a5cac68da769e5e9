"""Shared fixtures: the tutorial's four presets trained once per test session (real 2000-epoch runs)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Property-based tests draw the same examples on every run (a red CI run is a bug, never a lottery);
# NABIYA_HYPOTHESIS=explore draws new ones each run, to hunt for more (what found the unreached-ending bug).
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("NABIYA_HYPOTHESIS") == "explore" else "repeatable")

# The CLI keeps compiled programs between runs; tests keep theirs out of the user's home.
os.environ.setdefault("NABIYA_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"nabiya-test-xla-{os.getpid()}"))
# … and their corpus readings too.
os.environ.setdefault("NABIYA_CORPUS_CACHE", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"nabiya-test-corpus-{os.getpid()}"))


def pytest_collection_modifyitems(items):
    """Every test that needs a full 2000-epoch training (the ``trained`` fixture) is slow: ``-m "not slow"``
    is the quick development loop, CI runs everything."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def trained():
    """``trained(preset)`` -> the RunResult of the preset's full tutorial run on 나비야, cached."""
    import nabiya

    cache = {}

    def get(preset: str):
        if preset not in cache:
            cache[preset] = nabiya.run(preset, progress=False)
        return cache[preset]

    return get


def save_untrained_model(preset_name: str, path):
    """A valid saved model of a preset on 나비야, untrained (no training compile): for tests of files."""
    import jax

    from nabiya.checkpoint import save_model
    from nabiya.config import preset
    from nabiya.data import count_classes, make_windows
    from nabiya.encoding import Vocabulary
    from nabiya.models import make_model
    from nabiya.music.songs import nabiya

    song, config = nabiya(), preset(preset_name)
    vocabulary = Vocabulary.for_notes(song.notes)
    windows = make_windows(vocabulary.encode(song.notes), config.window)
    table = vocabulary.feature_table(config.model.features)
    model = make_model(config.model, feature_table=table, window=config.window, n_classes=count_classes(windows),
                       key=jax.random.key(0))  # fmt: skip
    return save_model(path, model, config=config, vocabulary=vocabulary, song=song, summary={"epochs": 0})


@pytest.fixture(scope="session")
def model_file(tmp_path_factory):
    """A valid saved stateful2 model (untrained), shared read-only."""
    return save_untrained_model("stateful2", tmp_path_factory.mktemp("model") / "nabiya.safetensors")


# --- corpus models: one tiny run shared by the tests of training, evaluation and generation ---------------

TINY_CORPUS = [os.path.join(os.path.dirname(__file__), "data", "corpus"),
               os.path.join(os.path.dirname(__file__), "data", "folk_corpus_sample.jsonl")]
# 19 tunes (7 more skipped: broken, chords, voices, ...): split 60/20/20 with seed 4 gives 12 / 4 / 3.
TINY_CORPUS_RUN = dict(steps=40, size=24, layers=1, embedding_size=8, batch_size=4, length=16, steps_per_block=5,
                       validate_every=10, checkpoint_every=10, split=(0.6, 0.2, 0.2), split_seed=4, min_count=1)


@pytest.fixture(scope="session")
def tiny_corpus_run(tmp_path_factory):
    """A folk-lstm of 24 units trained 40 steps on the 19 small test tunes (a CorpusTrainResult)."""
    from nabiya.corpus_train import train

    return train(TINY_CORPUS, preset="folk-lstm", out=tmp_path_factory.mktemp("corpus") / "run", progress=False,
                 **TINY_CORPUS_RUN)


def save_untrained_corpus_model(path):
    """A folk-lstm of 16 units, untrained, over the tokens of six small tunes (meters 6/8, 3/4, 4/4; keys D major,
    G major, E minor), saved through the API: a corpus model file in well under a second of work."""
    import jax

    from nabiya.corpus_checkpoint import save_corpus_model, token_parts
    from nabiya.corpus_config import corpus_preset
    from nabiya.corpus_models import make_corpus_model
    from nabiya.music.song import Song
    from nabiya.tokens import build_vocabulary

    tunes = [
        Song.from_codes("d8 e8 f#8 a4 f#8 e8 d8 e8 d4.", meter="6/8", key="D major"),
        Song.from_codes("a8 b8 a8 f#4 d8 e4. d4.", meter="6/8", key="D major"),
        Song.from_codes("g4 b4 d'4 c'4 b4 a4 g2.", meter="3/4", key="G major"),
        Song.from_codes("e4 g4 b4 e'4 d'4 b4 g4 e4", meter="4/4", key="E minor"),
        Song.from_codes("d4 f#4 a4 f#4 e4 d4 d2", meter="4/4", key="D major"),
        Song.from_codes("g8 a8 b8 d'4 b8 a8 g8 a8 g4.", meter="6/8", key="G major"),
    ]
    config = corpus_preset("folk-lstm").replace(size=16, layers=1, embedding_size=8, min_count=1)
    vocabulary = build_vocabulary(tunes, config.tokens)
    model = make_corpus_model(config.model, vocab_size=len(vocabulary), key=jax.random.key(0),
                              token_parts=token_parts(vocabulary))
    keys = {"D major": 3, "G major": 2, "E minor": 1}
    return save_corpus_model(path, model, config=config, vocabulary=vocabulary, keys=keys,
                             summary={"step": 0, "preset": "folk-lstm"})


@pytest.fixture(scope="session")
def corpus_model_file(tmp_path_factory):
    """An untrained tiny corpus model file (see :func:`save_untrained_corpus_model`), shared read-only."""
    return save_untrained_corpus_model(tmp_path_factory.mktemp("corpus_model") / "jigs.safetensors")
