"""Songs that need more memory: the training setting a run chooses from the song's analysis.

The tutorial's stateful presets train one window per Adam step, with no gradient into the
state a window receives (see :mod:`nabiya.training`). A song whose identical passages are told
apart only by notes far before the window (verdict ``'beyond'`` in :mod:`nabiya.analysis`) is
then not reliably memorised. For such a song, and only then, a run backpropagates through
``CHOSEN_BACKPROP_WINDOWS`` windows per step (``TrainConfig.backprop_windows``) for
``CHOSEN_EPOCHS_FACTOR`` times the epochs at most: on ten such tunes of music21's ABC books and 4
seeds each, that memorised 30 of 40 (stopping once memorised, below; 27 without the stop) where 32
windows per step alone memorised 14 and the tutorial's setting 12; on two reels, 4 of 4 where a
state twice as wide memorised 3 (at about twice the cost) and twice the epochs alone 2
(``benchmarks/memory_settings.py``; the tables are in benchmarks/README.md). An epoch through 32
windows per step costs about 0.74 of the tutorial's, and the runs stopped after 2,200 epochs on average.
Such a run also stops once the song is memorised (checked after each block of 100 epochs with the
block's weights: every one-step prediction right, so that the continuation replays the song too),
rather than train on and risk losing it to one of Adam's late spikes: with twice the epochs, some
seeds reached 100% and lost it by the end. Every other song, 나비야 among them, trains exactly as the tutorial's presets do.

The choice is made before training, from the notes alone (no JAX), and said in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

from nabiya.config import MAX_EPOCHS, RunConfig

# Windows per Adam step chosen for songs beyond one-window training, and how many times the
# config's epochs they train for (unless epochs are given): see the module docstring.
CHOSEN_BACKPROP_WINDOWS = 32
CHOSEN_EPOCHS_FACTOR = 2


@dataclass(frozen=True)
class TrainingChoice:
    """The config a run trains with, and why.

    Attributes:
        config: the run config to train with (the given one, or with ``backprop_windows`` set).
        chosen: whether the analysis changed the setting (False when it was kept or given).
        reason: one line for a person when the analysis changed it, else ``''``.
    """

    config: RunConfig
    chosen: bool = False
    reason: str = ""

    @property
    def stops_when_memorised(self) -> bool:
        """A chosen setting trains until the song is memorised, at most its epochs (see :func:`choose_training`)."""
        return self.chosen

    def to_json(self) -> dict:
        """What ``summary.json`` records: the windows per step, and whether and why they were chosen."""
        return {"backprop_windows": self.config.train.backprop_windows, "chosen": self.chosen, "reason": self.reason,
                "stops_when_memorised": self.stops_when_memorised}  # fmt: skip


def choose_training(config: RunConfig, notes: Sequence[Hashable], *, backprop_windows: int | None = None,
                    epochs_given: bool = False, title: str = "") -> TrainingChoice:  # fmt: skip
    """The training setting for a song: the config's own, unless its song needs more memory.

    Args:
        config: the preset's config.
        notes: the song's notes (any hashable tokens, e.g. ``song.notes``).
        backprop_windows: an explicit setting; it overrides the choice (``1``: the
            tutorial's one window per step, whatever the song).
        epochs_given: the config's epochs were asked for: keep them. Otherwise a chosen
            setting trains ``CHOSEN_EPOCHS_FACTOR`` times as many (one Adam step per
            ``CHOSEN_BACKPROP_WINDOWS`` windows makes fewer steps per epoch).
        title: the song's title, for the reason.

    Returns:
        A :class:`TrainingChoice`. The config changes only for a stateful config that trains
        one window per step on a song the analysis finds ``'beyond'`` its reach.

    Raises:
        NabiyaError: for an explicit setting that is not a whole number from 1, or more than
            one window for a stateless preset.

    Example:
        >>> from nabiya.config import preset
        >>> phrase = list(range(25))
        >>> choice = choose_training(preset("stateful2"), phrase + ["x"] + phrase + ["y"])
        >>> choice.config.train.backprop_windows, choice.chosen
        (32, True)
        >>> choose_training(preset("stateful2"), list("abcabd")).chosen
        False
    """
    from nabiya.analysis import assess, assess_preset

    if backprop_windows is not None:
        return TrainingChoice(config.replace(backprop_windows=backprop_windows))
    if not config.model.stateful or config.train.backprop_windows != 1:
        return TrainingChoice(config)
    before = assess_preset(notes, config, title=title)
    if before.verdict != "beyond":
        return TrainingChoice(config)
    epochs = config.train.epochs if epochs_given else min(MAX_EPOCHS, config.train.epochs * CHOSEN_EPOCHS_FACTOR)
    chosen = config.replace(backprop_windows=CHOSEN_BACKPROP_WINDOWS, epochs=epochs)
    after = assess(notes, chosen.window, stateful=True, gradient_notes=before.window + CHOSEN_BACKPROP_WINDOWS - 1)
    reason = (
        f"{title or 'the song'} needs {before.memory_notes} notes of memory, {before.untrained_notes} beyond the "
        f"{before.gradient_notes} one window per step trains (nabiya analyze: beyond): training through "
        f"{CHOSEN_BACKPROP_WINDOWS} windows per step instead, which reach {after.gradient_notes}"
        + f", until it is memorised (at most {epochs} epochs)"
        + " (--backprop-windows 1: the tutorial's)"
    )
    return TrainingChoice(chosen, True, reason)
