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
