"""Shared fixtures: the tutorial's four presets trained once per test session (real 2000-epoch runs)."""

from __future__ import annotations

import os

import pytest

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
