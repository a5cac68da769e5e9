"""Shared fixtures: the tutorial's four presets trained once per test session (real 2000-epoch runs)."""

from __future__ import annotations

import os

import pytest

# The CLI keeps compiled programs between runs; tests keep theirs out of the user's home.
os.environ.setdefault("NABIYA_CACHE_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"nabiya-test-xla-{os.getpid()}"))
# … and their corpus readings too.
os.environ.setdefault("NABIYA_CORPUS_CACHE", os.path.join(os.environ.get("TMPDIR", "/tmp"), f"nabiya-test-corpus-{os.getpid()}"))


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
