"""Shared fixtures: the tutorial's four presets trained once per test session (real 2000-epoch runs)."""

from __future__ import annotations

import pytest


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
