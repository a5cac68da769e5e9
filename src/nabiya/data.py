"""Windows: every ``window`` consecutive notes predict the next (the tutorial's seq2dataset)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nabiya.errors import NabiyaError


@dataclass(frozen=True)
class Windows:
    """A song cut into training samples.

    Attributes:
        inputs: token indices, shape ``(n_samples, window)``, int32.
        targets: the token after each window, shape ``(n_samples,)``, int32.
    """

    inputs: np.ndarray
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)

    def features(self, feature_table: np.ndarray) -> np.ndarray:
        """The inputs as features, shape ``(n_samples, window, n_features)``, float32."""
        return feature_table[self.inputs]


def make_windows(indices: np.ndarray, window: int, *, source: str = "the song") -> Windows:
    """Cut a sequence of token indices into (window, next token) samples.

    Sample ``i`` is ``indices[i : i + window]`` -> ``indices[i + window]``, so a song of
    ``L`` notes gives ``L - window`` samples, in song order.

    Args:
        indices: token indices, shape ``(L,)``.
        window: notes per input, at least 1.

    Raises:
        NabiyaError: when the song has fewer than ``window + 1`` notes.

    Example:
        >>> make_windows(np.arange(6), 4).inputs.tolist()
        [[0, 1, 2, 3], [1, 2, 3, 4]]
    """
    indices = np.asarray(indices, dtype=np.int32)
    if window < 1:
        raise NabiyaError(f"the window must be at least 1 note, not {window}")
    if len(indices) < window + 1:
        raise NabiyaError(
            f"{source} has {len(indices)} notes: a window of {window} needs at least {window + 1}"
        )
    count = len(indices) - window
    inputs = np.stack([indices[start : start + window] for start in range(count)])
    return Windows(inputs=inputs, targets=indices[window:].copy())


def count_classes(windows: Windows) -> int:
    """The model's output size: ``max(target) + 1``, as the tutorial's ``to_categorical`` makes it.

    For 나비야 this is 12 (the highest target is g8, index 11), the tutorial's
    ``one_hot_vec_size``.
    """
    return int(windows.targets.max()) + 1
